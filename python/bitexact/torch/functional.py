"""Deterministic ops with autograd, each forward a call into the C++ library (torch.ops.bitexact).

Backward passes use the same ops (sums along dims, index_add, scatter) plus element-wise IEEE
arithmetic (+, -, *, /, sqrt: correctly rounded, so the same bits on every ISA and thread count);
never a torch reduction, a float atomic or a libm transcendental.

Dtypes: float32 and float64 (gradcheck runs in float64). Devices: CPU.
"""
import torch

from ._lib import ops, tag_of
from . import _keys


def _dims(x, dim):
    if dim is None:
        return []
    if isinstance(dim, int):
        return [dim]
    return list(dim)


def _expand_back(g, shape, dims, keepdim):
    if not keepdim and dims:
        nd = len(shape)
        for d in sorted(dd % nd for dd in dims):
            g = g.unsqueeze(d)
    elif not keepdim:
        g = g.reshape([1] * len(shape))
    return g.expand(shape)


class _Sum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dims, keepdim, mean, exact):
        ctx.shape, ctx.dims, ctx.keepdim, ctx.mean = x.shape, dims, keepdim, mean
        ctx.count = 1
        nd = max(x.dim(), 1)
        for d in (dims if dims else range(x.dim())):
            ctx.count *= x.shape[d % nd] if x.dim() else 1
        return ops.sum(x, dims, keepdim, mean, exact)

    @staticmethod
    def backward(ctx, g):
        gx = _expand_back(g, ctx.shape, ctx.dims, ctx.keepdim)
        if ctx.mean:
            gx = gx / ctx.count
        return gx.contiguous(), None, None, None, None


def sum(x, dim=None, keepdim=False, *, exact=False):
    """Sum over `dim` (all dims when None): the bits of bitexact::sum of each reduced slice."""
    return _Sum.apply(x, _dims(x, dim), keepdim, False, exact)


def mean(x, dim=None, keepdim=False, *, exact=False):
    """Mean over `dim`: the bitexact sum divided by the count (one rounded division)."""
    return _Sum.apply(x, _dims(x, dim), keepdim, True, exact)


class _Softmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, log):
        ctx.dim, ctx.log = dim, log
        y = ops.log_softmax(x, dim) if log else ops.softmax(x, dim)
        ctx.save_for_backward(x if log else y)
        return y

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        if ctx.log:  # d log_softmax: g - softmax(x) * sum(g)
            p = ops.softmax(t, ctx.dim)
            return g - p * ops.sum(g, [ctx.dim], True, False, False), None, None
        # d softmax: y * (g - sum(g * y))
        return t * (g - ops.sum(g * t, [ctx.dim], True, False, False)), None, None


def softmax(x, dim):
    return _Softmax.apply(x, dim, False)


def log_softmax(x, dim):
    return _Softmax.apply(x, dim, True)


class _Norm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, n, w, b, eps, layer):
        ctx.n, ctx.eps, ctx.layer = n, eps, layer
        ctx.has_w, ctx.has_b = w is not None, b is not None
        ctx.save_for_backward(x, w)
        if layer:
            return ops.layer_norm(x, n, w, b, eps)
        return ops.rms_norm(x, n, w, eps)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        n = ctx.n
        x2 = x.reshape(-1, n)
        g2 = g.reshape(-1, n)
        gw = g2 * w.reshape(1, n) if ctx.has_w else g2
        if ctx.layer:
            d = x2 - ops.sum(x2, [1], True, True, False)
            inv = 1.0 / torch.sqrt(ops.sum(d * d, [1], True, True, False) + ctx.eps)
            xhat = d * inv
            a = ops.sum(gw, [1], True, True, False)
            c = ops.sum(gw * xhat, [1], True, True, False)
            gx = inv * (gw - a - xhat * c)
        else:
            inv = 1.0 / torch.sqrt(ops.sum(x2 * x2, [1], True, True, False) + ctx.eps)
            xhat = x2 * inv
            c = ops.sum(gw * x2, [1], True, True, False)
            gx = inv * gw - x2 * (inv * inv * inv) * c
        gweight = ops.sum(g2 * xhat, [0], False, False, False).reshape(w.shape) if ctx.has_w else None
        gbias = ops.sum(g2, [0], False, False, False).reshape(w.shape if ctx.has_w else (n,)) if ctx.has_b else None
        return gx.reshape(x.shape), None, gweight, gbias, None, None


def _numel(shape):
    if isinstance(shape, int):
        return shape
    n = 1
    for s in shape:
        n *= s
    return n


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    return _Norm.apply(x, _numel(normalized_shape), weight, bias, eps, True)


def rms_norm(x, normalized_shape, weight=None, eps=1e-6):
    return _Norm.apply(x, _numel(normalized_shape), weight, None, eps, False)


class _NllLoss(torch.autograd.Function):
    """nll_loss of log-probabilities logp (M, C) and class indices t (M,): the losses
    -(logp[i, t_i] * w_i), w_i = 0 where t_i == ignore_index, else 1 or weight[t_i], then
    reduced by bitexact sums ('sum'; 'mean' divides by the sum of the w_i). One autograd node for
    the whole loss (a chain of small ops costs more than the loss itself at training batch
    sizes). The gradient is the composed ops' one, to the bit: (-(g / sum w)) * w_i ('mean'),
    (-g) * w_i ('sum'), (-g_i) * w_i ('none'), added into +0 at [i, t_i]; +0 elsewhere."""

    @staticmethod
    def forward(ctx, logp, t, weight, ignore_index, reduction, exact):
        c = logp.shape[1]
        valid = t != ignore_index
        safe = t * valid  # ignored targets read class 0, with weight 0
        if safe.numel():
            lo, hi = torch.aminmax(safe)
            if int(lo) < 0 or int(hi) >= c:
                bad = int(torch.nonzero((safe < 0) | (safe >= c))[0, 0])
                raise IndexError("bitexact.nll_loss: target %d at position %d out of range [0, %d)" % (int(t[bad]), bad, c))
        picked = logp.gather(1, safe.unsqueeze(1)).squeeze(1)
        w = valid.to(logp.dtype)
        if weight is not None:
            w = w * weight[safe]
        losses = -(picked * w)
        ctx.c, ctx.reduction, ctx.denom = c, reduction, None
        ctx.save_for_backward(safe, w)
        if reduction == "none":
            return losses
        total = ops.sum(losses, [], False, False, exact)
        if reduction == "sum":
            return total
        ctx.denom = ops.sum(w, [], False, False, exact)
        return total / ctx.denom

    @staticmethod
    def backward(ctx, g):
        safe, w = ctx.saved_tensors
        if ctx.reduction == "mean":
            g = g / ctx.denom
        gl = (-g).expand(w.shape) * w
        gx = torch.zeros(safe.shape[0], ctx.c, dtype=w.dtype).scatter_add_(1, safe.unsqueeze(1), gl.unsqueeze(1))
        return gx, None, None, None, None, None


class _CrossEntropy(torch.autograd.Function):
    """cross_entropy of (N, C) logits and class indices in one C++ call each way
    (torch.ops.bitexact.cross_entropy): the arithmetic of log_softmax followed by _NllLoss, in the
    same operations and order, so the same bits as that composition (values and gradients)."""

    @staticmethod
    def forward(ctx, x, t, weight, ignore_index, reduction, exact):
        code = {"none": 0, "sum": 1, "mean": 2}[reduction]
        out, safe, w, denom = ops.cross_entropy(x, t, weight, ignore_index, code, exact)
        ctx.code = code
        ctx.save_for_backward(x, safe, w, denom)
        return out

    @staticmethod
    def backward(ctx, g):
        x, safe, w, denom = ctx.saved_tensors
        return ops.cross_entropy_backward(g, x, safe, w, denom, ctx.code), None, None, None, None, None


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean", *, exact=False):
    """torch's nll_loss (input (N, C) or (N, C, d...)): gathers, then bitexact sums."""
    if reduction not in ("none", "sum", "mean"):
        raise ValueError("bitexact.nll_loss: reduction must be 'none', 'sum' or 'mean', got %r" % (reduction,))
    if target.dtype != torch.long:
        raise TypeError("bitexact.nll_loss: target must be int64, got %s" % target.dtype)
    if input.dim() == 1:
        input, target = input.unsqueeze(0), target.reshape(1)
    c = input.shape[1]
    logp = input.movedim(1, -1).reshape(-1, c)
    t = target.reshape(-1)
    if logp.shape[0] != t.shape[0]:
        raise ValueError("bitexact.nll_loss: input %s and target %s do not match" % (tuple(input.shape), tuple(target.shape)))
    losses_or_total = _NllLoss.apply(logp, t, weight, ignore_index, reduction, exact)
    return losses_or_total.reshape(target.shape) if reduction == "none" else losses_or_total


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0, *, exact=False):
    """log_softmax over dim 1, then nll_loss (class indices) or -sum(p * logp) (probabilities)."""
    if (input.dim() == 2 and not target.dtype.is_floating_point and not label_smoothing and target.dim() == 1
            and target.dtype == torch.long and (weight is None or weight.dtype == input.dtype)
            and reduction in ("none", "sum", "mean")):
        return _CrossEntropy.apply(input, target, weight, ignore_index, reduction, exact)  # the common case, fused
    logp = log_softmax(input, 1 if input.dim() > 1 else 0)
    if target.dtype.is_floating_point:  # class probabilities
        if weight is not None or label_smoothing:
            raise NotImplementedError("bitexact.cross_entropy: weight/label_smoothing with probability targets")
        losses = -sum(logp * target, 1 if input.dim() > 1 else 0)
        if reduction == "none":
            return losses
        return sum(losses) if reduction == "sum" else mean(losses)
    nll = nll_loss(logp, target, weight, ignore_index, reduction, exact=exact)
    if not label_smoothing:
        return nll
    if weight is not None:
        raise NotImplementedError("bitexact.cross_entropy: label_smoothing together with weight")
    c = logp.shape[1]
    smooth = -sum(logp.movedim(1, -1), -1) / c
    valid = (target != ignore_index).to(input.dtype)
    smooth = smooth * valid
    if reduction == "sum":
        smooth = sum(smooth)
    elif reduction == "mean":
        smooth = sum(smooth) / sum(valid)
    return nll * (1.0 - label_smoothing) + smooth * label_smoothing


class _Embedding(torch.autograd.Function):
    @staticmethod
    def forward(ctx, ids, weight, padding_idx):
        if ids.dtype not in (torch.long, torch.int):
            raise TypeError("bitexact.embedding: indices must be int64 or int32, got %s" % ids.dtype)
        flat = ids.reshape(-1).long()
        v = weight.shape[0]
        if flat.numel() and bool(((flat < 0) | (flat >= v)).any()):
            bad = int(torch.nonzero((flat < 0) | (flat >= v))[0, 0])
            raise IndexError("bitexact.embedding: index %d at position %d out of range [0, %d)" % (int(flat[bad]), bad, v))
        ctx.save_for_backward(flat)
        ctx.v, ctx.padding_idx = v, padding_idx
        return weight.index_select(0, flat).reshape(*ids.shape, weight.shape[1])

    @staticmethod
    def backward(ctx, g):
        (flat,) = ctx.saved_tensors
        g2 = g.reshape(-1, g.shape[-1])
        if ctx.padding_idx is not None:
            keep = flat != ctx.padding_idx
            flat, g2 = flat[keep], g2[keep]
        base = torch.zeros(ctx.v, g2.shape[1], dtype=g.dtype)
        return None, ops.index_add(base, 0, flat, g2.contiguous(), False), None


def embedding(input, weight, padding_idx=None, max_norm=None, norm_type=2.0, scale_grad_by_freq=False, sparse=False):
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("bitexact.embedding: max_norm, scale_grad_by_freq and sparse are not supported")
    if padding_idx is not None and padding_idx < 0:
        padding_idx += weight.shape[0]
    return _Embedding.apply(input, weight, padding_idx)


_MODES = {"sum": 0, "mean": 1, "max": 2}


class _EmbeddingBag(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, idx, offsets, mode, psw, exact):
        out, pos = ops.embedding_bag(weight, idx, offsets, mode, psw, exact)
        ctx.save_for_backward(weight, idx, offsets, psw if psw is not None else torch.empty(0), pos)
        ctx.mode, ctx.exact, ctx.has_psw = mode, exact, psw is not None
        return out

    @staticmethod
    def backward(ctx, g):
        weight, idx, offsets, psw, pos = ctx.saved_tensors
        psw = psw if ctx.has_psw else None
        gw = ops.embedding_bag_backward(g, idx, offsets, weight.shape[0], ctx.mode, psw, pos, ctx.exact)
        gpsw = None
        if ctx.has_psw and ctx.needs_input_grad[4]:
            n = idx.numel()
            bag_of = torch.bucketize(torch.arange(n), offsets, right=True) - 1
            rows = weight.index_select(0, idx)
            gpsw = ops.sum(g.index_select(0, bag_of) * rows, [1], False, False, False)
        return gw, None, None, None, gpsw, None


def embedding_bag(input, weight, offsets=None, max_norm=None, norm_type=2, scale_grad_by_freq=False, mode="mean",
                  sparse=False, per_sample_weights=None, include_last_offset=False, padding_idx=None, *, exact=False):
    if max_norm is not None or scale_grad_by_freq or sparse or padding_idx is not None:
        raise NotImplementedError("bitexact.embedding_bag: max_norm, scale_grad_by_freq, sparse and padding_idx "
                                  "are not supported")
    if mode not in _MODES:
        raise ValueError("bitexact.embedding_bag: mode must be sum, mean or max, got %r" % (mode,))
    if per_sample_weights is not None and mode != "sum":
        raise ValueError("bitexact.embedding_bag: per_sample_weights only with mode='sum'")
    if input.dim() == 2:
        if offsets is not None:
            raise ValueError("bitexact.embedding_bag: offsets must be None for 2-D input")
        b, l = input.shape
        offsets = torch.arange(0, b * l, l, dtype=torch.long) if b else torch.zeros(0, dtype=torch.long)
        input = input.reshape(-1)
    elif offsets is None:
        raise ValueError("bitexact.embedding_bag: 1-D input needs offsets")
    offsets = offsets.long()
    if include_last_offset:
        offsets = offsets[:-1]
    if per_sample_weights is not None:
        per_sample_weights = per_sample_weights.reshape(-1)
    return _EmbeddingBag.apply(weight, input.long(), offsets, _MODES[mode], per_sample_weights, exact)


class _IndexAdd(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, index, source, exact):
        ctx.dim = dim
        ctx.save_for_backward(index)
        return ops.index_add(x, dim, index, source, exact)

    @staticmethod
    def backward(ctx, g):
        (index,) = ctx.saved_tensors
        gsrc = g.index_select(ctx.dim, index.long()) if g.dim() else g
        return g, None, None, gsrc, None


def index_add(input, dim, index, source, *, alpha=1, exact=False):
    """torch.index_add: the row form of bitexact::index_add_rows along dim (source * alpha first)."""
    if alpha != 1:
        source = source * alpha
    return _IndexAdd.apply(input, dim, index, source, exact)


def _src_region(src, index):
    return src[tuple(slice(0, s) for s in index.shape)] if src.dim() else src


class _ScatterReduce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, dim, index, src, reduce, include_self, exact):
        out = ops.scatter_reduce(x, dim, index, src, reduce, include_self, exact)
        ctx.dim, ctx.reduce, ctx.include_self, ctx.src_shape = dim, reduce, include_self, src.shape
        ctx.save_for_backward(x, index, src, out)
        return out

    @staticmethod
    def backward(ctx, g):
        x, index, src, out = ctx.saved_tensors
        dim, red = ctx.dim, ctx.reduce
        region = _src_region(src, index)
        ones = torch.ones_like(region)
        hits = ops.scatter_reduce(torch.zeros_like(x), dim, index, ones, "sum", True, False)
        touched = hits > 0
        if red == "sum":
            gx = g if ctx.include_self else torch.where(touched, torch.zeros_like(g), g)
            gs = g.gather(dim, index)
        elif red == "mean":
            n = hits + (1 if ctx.include_self else 0)
            n = torch.where(touched, n, torch.ones_like(n))
            gn = g / n
            gx = gn if ctx.include_self else torch.where(touched, torch.zeros_like(g), g)
            gs = gn.gather(dim, index)
        elif red in ("amax", "amin"):
            sel_src = (region == out.gather(dim, index)).to(g.dtype)
            sel_self = (x == out).to(g.dtype) if ctx.include_self else torch.zeros_like(x)
            ties = ops.scatter_reduce(sel_self, dim, index, sel_src, "sum", True, False)
            share = g / torch.where(touched, ties, torch.ones_like(ties))
            gx = torch.where(touched, sel_self * share, g)
            gs = sel_src * share.gather(dim, index)
        else:
            raise NotImplementedError("bitexact.scatter_reduce: backward of reduce='%s' is not implemented" % red)
        gsrc = torch.zeros(ctx.src_shape, dtype=g.dtype)
        _src_region(gsrc, index).copy_(gs)
        return gx, None, None, gsrc, None, None, None


def scatter_reduce(input, dim, index, src, reduce, *, include_self=True, exact=False):
    """torch.scatter_reduce (sum, prod, mean, amax, amin): contributions by index position."""
    return _ScatterReduce.apply(input, dim, index, src, reduce, include_self, exact)


def scatter_add(input, dim, index, src, *, exact=False):
    return _ScatterReduce.apply(input, dim, index, src, "sum", True, exact)


class _Dropout(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, p, seed, step, tag, ids):
        y, mask = ops.dropout(x, p, seed, step, tag, ids)
        ctx.save_for_backward(mask)
        ctx.scale = 1.0 / (1.0 - p)
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, g):
        (mask,) = ctx.saved_tensors
        return torch.where(mask.bool(), g * ctx.scale, torch.zeros_like(g)), None, None, None, None, None


def dropout(input, p=0.5, training=True, inplace=False, *, tag=None, key=None):
    """Inverted dropout whose mask is keyed by (seed, step, tag, global sample index).

    The key comes from `key` (a bitexact.torch.Key) or the innermost `with bitexact.torch.keyed(...)`.
    `tag`: a string naming the layer (default: the call's ordinal inside the keyed block)."""
    if not training or p == 0.0:
        return input
    if not 0.0 <= p < 1.0:
        raise ValueError("bitexact.dropout: p must be in [0, 1), got %r" % (p,))
    k = key or _keys.current("dropout")
    t = tag_of(tag) if isinstance(tag, str) else (tag if tag is not None else tag_of("dropout#%d" % k.next_call()))
    batch = input.shape[0] if input.dim() else 1
    ids = k.sample_ids(batch)
    y = _Dropout.apply(input, float(p), k.seed, k.step, t, ids)
    if inplace:
        with torch.no_grad():
            input.copy_(y)
        return input
    return y


# ---- matrix products and convolution (gemm.hpp, conv.hpp) ----------------------------------

class _Linear(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, exact):
        ctx.save_for_backward(x, w)
        ctx.has_b, ctx.exact = b is not None, exact
        return ops.linear(x, w, b, exact)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        dx, dw, db = ops.linear_backward(g, x, w, ctx.has_b, ctx.exact)
        return dx, dw, (db if ctx.has_b else None), None


def linear(input, weight, bias=None, *, exact=False):
    """y = x W^T + b (bitexact::linear_forward); each y[i, j] depends on row i of x alone."""
    return _Linear.apply(input, weight, bias, exact)


class _MM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, exact):
        ctx.save_for_backward(a, b)
        ctx.exact = exact
        return (ops.bmm if a.dim() == 3 else ops.mm)(a, b, exact)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        f = ops.bmm if a.dim() == 3 else ops.mm
        da = f(g, b.transpose(-1, -2), ctx.exact) if ctx.needs_input_grad[0] else None
        db = f(a.transpose(-1, -2), g, ctx.exact) if ctx.needs_input_grad[1] else None
        return da, db, None


def mm(input, mat2, *, exact=False):
    return _MM.apply(input, mat2, exact)


def bmm(input, mat2, *, exact=False):
    return _MM.apply(input, mat2, exact)


class _Broadcast(torch.autograd.Function):
    """x.expand(shape) whose backward sums the broadcast dims with bitexact's sum."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return x.expand(shape).contiguous()

    @staticmethod
    def backward(ctx, g):
        lead = g.dim() - len(ctx.shape)
        dims = list(range(lead)) + [lead + i for i, s in enumerate(ctx.shape) if s == 1 and g.shape[lead + i] != 1]
        if dims:
            g = ops.sum(g, dims, False, False, False)
        return g.reshape(ctx.shape), None


def matmul(a, b, *, exact=False):
    """torch.matmul over bitexact's gemm (1-D, 2-D and broadcast batched operands)."""
    if a.dim() == 1 and b.dim() == 1:
        return mm(a.unsqueeze(0), b.unsqueeze(1), exact=exact).reshape(())
    if a.dim() == 1:
        return matmul(a.unsqueeze(0), b, exact=exact).squeeze(-2)
    if b.dim() == 1:
        return matmul(a, b.unsqueeze(1), exact=exact).squeeze(-1)
    if b.dim() == 2:  # (..., m, k) @ (k, n): one product of all rows (rows are independent)
        return mm(a.reshape(-1, a.shape[-1]), b, exact=exact).reshape(*a.shape[:-1], b.shape[-1])
    batch = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    ae = a if a.shape[:-2] == batch else _Broadcast.apply(a, batch + a.shape[-2:])
    be = b if b.shape[:-2] == batch else _Broadcast.apply(b, batch + b.shape[-2:])
    out = bmm(ae.reshape(-1, *a.shape[-2:]), be.reshape(-1, *b.shape[-2:]), exact=exact)
    return out.reshape(*batch, a.shape[-2], b.shape[-1])


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class _Conv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups, exact):
        ctx.save_for_backward(x, w)
        ctx.args = (stride, padding, dilation, groups)
        ctx.has_b, ctx.exact = b is not None, exact
        return ops.conv2d(x, w, b, stride, padding, dilation, groups, exact)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        need_input = ctx.needs_input_grad[0]  # e.g. a network's first layer: no dx to compute
        dx, dw, db = ops.conv2d_backward(g, x, w, *ctx.args, ctx.has_b, ctx.exact, need_input)
        return (dx if need_input else None), dw, (db if ctx.has_b else None), None, None, None, None, None


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, exact=False):
    """torch's conv2d over bitexact::conv2d_forward/backward_data/backward_weight (zero padding)."""
    stride, dilation = list(_pair(stride)), list(_pair(dilation))
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same" and all(s == 1 for s in stride) and all(d * (k - 1) % 2 == 0 for d, k in
                                                                        zip(dilation, weight.shape[2:])):
            padding = tuple(d * (k - 1) // 2 for d, k in zip(dilation, weight.shape[2:]))
        else:
            raise NotImplementedError("bitexact.conv2d: padding=%r with this stride/kernel" % (padding,))
    unbatched = input.dim() == 3
    if unbatched:
        input = input.unsqueeze(0)
    y = _Conv2d.apply(input, weight, bias, stride, list(_pair(padding)), dilation, groups, exact)
    return y.squeeze(0) if unbatched else y


def _pool_args(kernel_size, stride, padding, dilation, what):
    if _pair(dilation) != (1, 1):
        raise NotImplementedError("bitexact.%s: dilation != 1" % what)
    k = _pair(kernel_size)
    s = _pair(stride) if stride not in (None, [], ()) else k
    return list(k), list(s), list(_pair(padding))


class _MaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k, s, p, ceil_mode):
        y, idx = ops.max_pool2d(x, k, s, p, ceil_mode)
        ctx.save_for_backward(x, idx)
        ctx.args = (k, s, p, ceil_mode)
        ctx.mark_non_differentiable(idx)
        return y, idx

    @staticmethod
    def backward(ctx, g, _gi):
        x, idx = ctx.saved_tensors
        return ops.max_pool2d_backward(g, idx, x, *ctx.args), None, None, None, None


class _AvgPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, k, s, p, ceil_mode, count_include_pad):
        ctx.save_for_backward(x)
        ctx.args = (k, s, p, ceil_mode, count_include_pad)
        return ops.avg_pool2d(x, k, s, p, ceil_mode, count_include_pad)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return ops.avg_pool2d_backward(g, x, *ctx.args), None, None, None, None, None


class _AdaptiveAvgPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, out):
        ctx.save_for_backward(x)
        ctx.out = out
        return ops.adaptive_avg_pool2d(x, out)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return ops.adaptive_avg_pool2d_backward(g, x, ctx.out), None


def _unbatched(fn, input, *args):
    if input.dim() == 3:
        out = fn(input.unsqueeze(0), *args)
        return tuple(o.squeeze(0) for o in out) if isinstance(out, tuple) else out.squeeze(0)
    return fn(input, *args)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    """bitexact::max_pool2d_forward/backward (pool.hpp): the first maximum of each window,
    PyTorch's indices; the backward adds each element's contributions by output index."""
    k, s, p = _pool_args(kernel_size, stride, padding, dilation, "max_pool2d")
    y, idx = _unbatched(lambda t: _MaxPool.apply(t, k, s, p, ceil_mode), input)
    return (y, idx) if return_indices else y


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """bitexact::avg_pool2d_forward/backward (pool.hpp): the window sum in window order, one division."""
    if divisor_override is not None:
        raise NotImplementedError("bitexact.avg_pool2d: divisor_override")
    k, s, p = _pool_args(kernel_size, stride, padding, 1, "avg_pool2d")
    return _unbatched(lambda t: _AvgPool.apply(t, k, s, p, ceil_mode, count_include_pad), input)


def adaptive_avg_pool2d(input, output_size):
    """bitexact::adaptive_avg_pool2d_forward/backward (pool.hpp): PyTorch's windows."""
    h, w = input.shape[-2:]
    oh, ow = _pair(output_size)
    out = [oh if oh is not None else h, ow if ow is not None else w]
    return _unbatched(lambda t: _AdaptiveAvgPool.apply(t, out), input)
