"""bitexact.torch.patch(): route matching torch, torch.nn.functional and Tensor calls to
bitexact's ops, so an existing model needs no edits.

    with bt.patch():               # strict (default): an op or dtype we do not cover raises
        train_step(...)            # UnsupportedOpError naming it
    bt.patch(strict=False)         # plain call, stays until bt.unpatch(); uncovered ops warn
                                   # (once per op and reason) and run torch's own kernel

Never a silent fallback: a call either runs bitexact's op, or raises (strict), or warns.
Integer and bool sums pass through to torch unannounced: integer addition is exact, so they are
deterministic already. Ops that do no reduction and no transcendental (add, mul, relu, view,
gather, ...) are deterministic in torch and are not touched."""
import functools
import warnings

import torch
import torch.nn.functional as TF

from . import functional as F
from . import _keys


class UnsupportedOpError(RuntimeError):
    pass


class _Unsupported(Exception):
    pass


_FLOATS = (torch.float32, torch.float64)


def _need_float(name, *ts):
    for t in ts:
        if t is None:
            continue
        if not isinstance(t, torch.Tensor):
            raise _Unsupported("argument of type %s" % type(t).__name__)
        if t.device.type != "cpu":
            raise _Unsupported("device %s (CPU only)" % t.device)
        if t.dtype not in _FLOATS:
            raise _Unsupported("dtype %s (float32, float64)" % t.dtype)


def _sum_like(mean):
    def h(orig, input, dim=None, keepdim=False, *, dtype=None, out=None):
        if out is not None:
            raise _Unsupported("out=")
        if isinstance(input, torch.Tensor) and not input.dtype.is_floating_point and not input.is_complex() and not mean:
            return orig(input, dim, keepdim, dtype=dtype) if dim is not None else orig(input, dtype=dtype)
        if dtype is not None and dtype != input.dtype:
            _need_float("", input)
            input = input.to(dtype)
        _need_float("", input)
        if isinstance(dim, str) or (isinstance(dim, (list, tuple)) and any(isinstance(d, str) for d in dim)):
            raise _Unsupported("named dims")
        return (F.mean if mean else F.sum)(input, dim, keepdim)
    return h


def _softmax_like(log):
    def h(orig, input, dim=None, _stacklevel=3, dtype=None):
        if dim is None:
            raise _Unsupported("dim=None (implicit dim)")
        if dtype is not None:
            input = input.to(dtype)
        _need_float("", input)
        return (F.log_softmax if log else F.softmax)(input, dim)
    return h


def _tensor_softmax_like(log):
    def h(orig, input, dim, dtype=None):
        if dtype is not None:
            input = input.to(dtype)
        _need_float("", input)
        return (F.log_softmax if log else F.softmax)(input, dim)
    return h


def _layer_norm(orig, input, normalized_shape, weight=None, bias=None, eps=1e-5):
    _need_float("", input, weight, bias)
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def _rms_norm(orig, input, normalized_shape, weight=None, eps=None):  # torch >= 2.4
    _need_float("", input, weight)
    return F.rms_norm(input, normalized_shape, weight, torch.finfo(input.dtype).eps if eps is None else eps)


def _cross_entropy(orig, input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                   reduction="mean", label_smoothing=0.0):
    if size_average is not None or reduce is not None:
        raise _Unsupported("legacy size_average/reduce arguments")
    _need_float("", input, weight)
    return F.cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)


def _nll_loss(orig, input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
    if size_average is not None or reduce is not None:
        raise _Unsupported("legacy size_average/reduce arguments")
    _need_float("", input, weight)
    return F.nll_loss(input, target, weight, ignore_index, reduction)


def _embedding(orig, input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False,
               sparse=False):
    _need_float("", weight)
    return F.embedding(input, weight, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse)


def _embedding_bag(orig, input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False,
                   mode="mean", sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None):
    _need_float("", weight, per_sample_weights)
    return F.embedding_bag(input, weight, offsets, max_norm, norm_type, scale_grad_by_freq, mode, sparse,
                           per_sample_weights, include_last_offset, padding_idx)


def _index_add(orig, input, dim, index, source, *, alpha=1, out=None):
    if out is not None:
        raise _Unsupported("out=")
    _need_float("", input, source)
    return F.index_add(input, dim, index, source, alpha=alpha)


def _scatter_add(orig, input, dim, index, src, *, out=None):
    if out is not None or not isinstance(src, torch.Tensor):
        raise _Unsupported("out= or a scalar src")
    _need_float("", input, src)
    return F.scatter_add(input, dim, index, src)


def _scatter_reduce(orig, input, dim, index, src, reduce, *, include_self=True, out=None):
    if out is not None:
        raise _Unsupported("out=")
    _need_float("", input, src)
    return F.scatter_reduce(input, dim, index, src, reduce, include_self=include_self)


def _inplace(fn):
    def h(orig, self, *args, **kw):
        r = fn(orig, self, *args, **kw)
        return self.copy_(r)  # after the op succeeded: on an error self is untouched
    return h


def _dropout(orig, input, p=0.5, training=True, inplace=False):
    if not training or p == 0.0:
        return input
    _need_float("", input)
    if not _keys._stack():
        raise _Unsupported("dropout in training mode outside `with bitexact.torch.keyed(seed, step, ...)` "
                           "(its mask would come from torch's hidden generator)")
    return F.dropout(input, p, training, inplace)


def _linear(orig, input, weight, bias=None):
    _need_float("", input, weight, bias)
    return F.linear(input, weight, bias)


def _matmul(orig, input, other, *, out=None):
    if out is not None:
        raise _Unsupported("out=")
    _need_float("", input, other)
    return F.matmul(input, other)


def _mm_like(nd):
    def h(orig, input, mat2, *, out=None):
        if out is not None:
            raise _Unsupported("out=")
        _need_float("", input, mat2)
        if input.dim() != nd or mat2.dim() != nd:
            raise _Unsupported("%d-D operands expected" % nd)
        return F.mm(input, mat2)
    return h


def _conv2d(orig, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    _need_float("", input, weight, bias)
    return F.conv2d(input, weight, bias, stride, padding, dilation, groups)


def _max_pool2d(orig, input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    _need_float("", input)
    return F.max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices)


def _avg_pool2d(orig, input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
                divisor_override=None):
    _need_float("", input)
    return F.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override)


def _adaptive_avg_pool2d(orig, input, output_size):
    _need_float("", input)
    return F.adaptive_avg_pool2d(input, output_size)


# (owner, attribute, handler); handler(orig, *args, **kw) runs bitexact or raises _Unsupported.
_ROUTES = [
    (torch, "sum", _sum_like(False)), (torch.Tensor, "sum", _sum_like(False)),
    (torch, "mean", _sum_like(True)), (torch.Tensor, "mean", _sum_like(True)),
    (TF, "softmax", _softmax_like(False)), (TF, "log_softmax", _softmax_like(True)),
    (torch, "softmax", _tensor_softmax_like(False)), (torch, "log_softmax", _tensor_softmax_like(True)),
    (torch.Tensor, "softmax", _tensor_softmax_like(False)), (torch.Tensor, "log_softmax", _tensor_softmax_like(True)),
    (TF, "layer_norm", _layer_norm), (TF, "cross_entropy", _cross_entropy), (TF, "nll_loss", _nll_loss),
    (TF, "embedding", _embedding), (TF, "embedding_bag", _embedding_bag),
    (torch, "index_add", _index_add), (torch.Tensor, "index_add", _index_add),
    (torch.Tensor, "index_add_", _inplace(_index_add)),
    (torch, "scatter_add", _scatter_add), (torch.Tensor, "scatter_add", _scatter_add),
    (torch.Tensor, "scatter_add_", _inplace(_scatter_add)),
    (torch, "scatter_reduce", _scatter_reduce), (torch.Tensor, "scatter_reduce", _scatter_reduce),
    (torch.Tensor, "scatter_reduce_", _inplace(_scatter_reduce)),
    (TF, "dropout", _dropout),
    (TF, "linear", _linear), (torch, "matmul", _matmul), (torch.Tensor, "matmul", _matmul),
    (torch.Tensor, "__matmul__", _matmul), (torch, "mm", _mm_like(2)), (torch.Tensor, "mm", _mm_like(2)),
    (torch, "bmm", _mm_like(3)), (torch.Tensor, "bmm", _mm_like(3)),
    (TF, "conv2d", _conv2d), (TF, "max_pool2d", _max_pool2d), (TF, "avg_pool2d", _avg_pool2d),
    (TF, "adaptive_avg_pool2d", _adaptive_avg_pool2d), (TF, "rms_norm", _rms_norm),
]

# Ops whose stock torch kernels may change bits with threads, ISA or batch size, and that
# bitexact does not cover yet.
_UNCOVERED = [
    (torch, "addmm"), (torch, "einsum"), (TF, "conv1d"), (TF, "conv3d"), (TF, "conv_transpose2d"),
    (TF, "batch_norm"), (TF, "group_norm"), (TF, "gelu"), (TF, "silu"), (torch, "exp"), (torch, "log"),
    (torch, "tanh"), (torch, "sigmoid"), (torch.Tensor, "exp"), (torch.Tensor, "log"), (torch.Tensor, "tanh"),
    (torch.Tensor, "sigmoid"), (torch, "cumsum"), (torch.Tensor, "cumsum"), (torch, "norm"), (torch.Tensor, "norm"),
    (torch, "var"), (torch, "std"), (torch.Tensor, "var"), (torch.Tensor, "std"),
]


def supported_ops():
    """Names of the calls patch() routes to bitexact."""
    return ["%s.%s" % (_owner_name(o), a) for o, a, _ in _ROUTES if hasattr(o, a)]


def _owner_name(o):
    return {id(torch): "torch", id(torch.Tensor): "Tensor", id(TF): "torch.nn.functional"}[id(o)]


_active = []  # stack of (saved originals, patch)
_warned = set()


def _unsupported(p, qual, reason, orig, args, kw):
    msg = "bitexact.torch.patch: %s is not covered by bitexact (%s)" % (qual, reason)
    if p.strict:
        raise UnsupportedOpError(msg + "; use patch(strict=False) to run torch's kernel with a warning")
    if (qual, reason) not in _warned:
        _warned.add((qual, reason))
        warnings.warn(msg + "; running torch's own (possibly non-reproducible) kernel", RuntimeWarning, stacklevel=3)
    return orig(*args, **kw)


def _wrap(p, owner, attr, handler, orig):
    qual = "%s.%s" % (_owner_name(owner), attr)

    @functools.wraps(orig)
    def w(*args, **kw):
        try:
            return handler(orig, *args, **kw)
        except (_Unsupported, NotImplementedError) as e:
            return _unsupported(p, qual, str(e), orig, args, kw)
    return w


def _wrap_uncovered(p, owner, attr, orig):
    qual = "%s.%s" % (_owner_name(owner), attr)

    @functools.wraps(orig)
    def w(*args, **kw):
        return _unsupported(p, qual, "no deterministic kernel yet", orig, args, kw)
    return w


class patch:
    """Context manager or plain call; see the module docstring."""

    def __init__(self, strict=True):
        self.strict = strict
        saved = []
        for owner, attr, handler in _ROUTES:
            if not hasattr(owner, attr):  # e.g. F.rms_norm before torch 2.4
                continue
            orig = getattr(owner, attr)
            saved.append((owner, attr, orig))
            setattr(owner, attr, _wrap(self, owner, attr, handler, orig))
        for owner, attr in _UNCOVERED:
            if not hasattr(owner, attr):
                continue
            orig = getattr(owner, attr)
            saved.append((owner, attr, orig))
            setattr(owner, attr, _wrap_uncovered(self, owner, attr, orig))
        _active.append((saved, self))
        self._open = True

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self):
        if not self._open:
            return
        if not _active or _active[-1][1] is not self:
            raise RuntimeError("bitexact.torch.patch: patches must be closed in reverse order")
        saved, _ = _active.pop()
        for owner, attr, orig in reversed(saved):
            setattr(owner, attr, orig)
        self._open = False


def unpatch():
    """Undoes every open patch()."""
    while _active:
        _active[-1][1].close()
