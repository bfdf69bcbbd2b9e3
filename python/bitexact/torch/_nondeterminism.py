"""find_nondeterminism(model, inputs, loss_fn=None): which module and op change bits, and when.

Runs forward and backward of `model` on `inputs` under several configurations and compares every
module's output, every op's output, the gradient reaching every module's output and every
parameter's gradient with a baseline run (the first thread count), bit for bit:
  - threads=t          torch.set_num_threads(t) for each t in `threads`;
  - repeat             the baseline configuration run again;
  - batch split        each sample alone (batch of 1) against its row in the batch: forward
                       values of every module/op whose first dim is the batch, and (default
                       loss, a sum, whose gradient is separable) the output gradients.
For each configuration it reports the first module (and the first torch op inside it, when
torch's TorchFunctionMode is available) whose output bits differ, the first gradient that
differs, and how many values changed. Then the same under bitexact.torch.patch(strict=False).

Command line:
    python3 -m bitexact.torch.find_nondeterminism --model pkg.module:factory [--threads 1,2,3]
where factory() returns (model, inputs) or (model, inputs, loss_fn);
`--demo` runs the built-in digits CNN of examples/torch_digits.py (needs python3-sklearn).
"""
import argparse
import copy
import importlib
import sys
import warnings

import torch

from . import _keys
from .functional import sum as _bsum
from ._lib import ops as _ops

try:
    from torch.overrides import TorchFunctionMode as _Mode
except ImportError:  # older torch: module-level report only
    _Mode = None


def _float_tensor(t):
    return isinstance(t, torch.Tensor) and t.dtype.is_floating_point


def _first_tensor(o):
    if _float_tensor(o):
        return o
    if isinstance(o, (tuple, list)):
        for x in o:
            t = _first_tensor(x)
            if t is not None:
                return t
    return None


class _Recorder:
    def __init__(self):
        self.stack = []
        self.ops = []      # (module, op name, tensor)
        self.outputs = []  # (module, class, tensor) in forward completion order
        self.grads = []    # (module, tensor) in backward order


if _Mode is not None:
    class _OpMode(_Mode):
        def __init__(self, rec):
            super().__init__()
            self.rec = rec

        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            t = _first_tensor(out)
            name = getattr(func, "__name__", str(func))
            if t is not None and not name.startswith("__") and name not in ("detach", "clone", "contiguous"):
                self.rec.ops.append((self.rec.stack[-1] if self.rec.stack else "", name, t.detach().clone()))
            return out


def _default_loss(out, first_sample):
    """sum(out * R), R keyed normals addressed by the sample's global index: a gradient that is
    neither constant nor batch dependent (rows of R follow the samples)."""
    t = _first_tensor(out)
    rn = t[0].numel() if t.dim() else 1
    r = _ops.random(list(t.shape), "normal", 0, 0, 1, first_sample * rn, t.dtype == torch.float64)
    return _bsum(t * r)


def _run(model, state, inputs, loss_fn, threads, first_sample=0, record_ops=True):
    torch.set_num_threads(threads)
    model.load_state_dict(state)
    model.zero_grad(set_to_none=True)
    rec = _Recorder()
    handles = []
    for name, m in model.named_modules():
        name = name or "(model)"

        def pre(mod, inp, name=name):
            rec.stack.append(name)

        def post(mod, inp, out, name=name):
            rec.stack.pop()
            t = _first_tensor(out)
            if t is None:
                return
            rec.outputs.append((name, type(mod).__name__, t.detach().clone()))
            if t.requires_grad:
                cls = "(%s)" % type(mod).__name__
                t.register_hook(lambda g, name=name, cls=cls: rec.grads.append((name, cls, g.detach().clone())))
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    torch.manual_seed(0)  # stock torch's hidden generator starts from the same state every run
    try:
        with _keys.keyed(0, 0, first_sample=first_sample):
            if record_ops and _Mode is not None:
                with _OpMode(rec):
                    out = model(*inputs)
            else:
                out = model(*inputs)
            loss = loss_fn(out) if loss_fn is not None else _default_loss(out, first_sample)
            loss.backward()
    finally:
        for h in handles:
            h.remove()
    owner = {}
    for mname, m in model.named_modules():
        for pname, _ in m.named_parameters(recurse=False):
            owner[(mname + "." if mname else "") + pname] = "(backward of %s)" % type(m).__name__
    pgrads = [(n, owner.get(n, ""), p.grad.detach().clone()) for n, p in model.named_parameters()
              if p.grad is not None]
    return rec, pgrads


def _diff(a, b):
    if a.shape != b.shape:
        return "shape %s vs %s" % (tuple(a.shape), tuple(b.shape))
    av, bv = a.detach().reshape(-1), b.detach().reshape(-1)
    if av.dtype in (torch.float32, torch.float64):
        ai = av.view(torch.int32 if av.dtype == torch.float32 else torch.int64)
        bi = bv.view(torch.int32 if bv.dtype == torch.float32 else torch.int64)
        ne = ai != bi
    else:
        ne = av != bv
    n = int(ne.count_nonzero())
    if n == 0:
        return None
    d = (av.double() - bv.double()).abs()
    d = d[torch.isfinite(d)]
    md = float(d.max()) if d.numel() else float("nan")
    return "%d of %d values differ (max |diff| %.3g)" % (n, av.numel(), md)


def _first(pairs_a, pairs_b, label, rows=None):
    """First entry whose tensors differ; rows: (i, batch) compares row i of a with all of b."""
    for ea, eb in zip(pairs_a, pairs_b):
        ta, tb = ea[-1], eb[-1]
        if rows is not None:
            i, batch = rows
            if ta.dim() == 0 or ta.shape[0] != batch or tb.dim() == 0 or tb.shape[0] != 1:
                continue
            ta = ta[i:i + 1]
        d = _diff(ta, tb)
        if d:
            what = " ".join(str(x) for x in ea[:-1])
            return "%s %s: %s" % (label, what, d)
    if len(pairs_a) != len(pairs_b) and rows is None:
        return "%s: %d vs %d entries (different code path)" % (label, len(pairs_a), len(pairs_b))
    return None


def _compare(base, other, rows=None, grads=True):
    ra, pa = base
    rb, pb = other
    found = []
    ops = _first(ra.ops, rb.ops, "forward op", rows)
    mod = _first([(n, "(%s)" % c, t) for n, c, t in ra.outputs], [(n, "(%s)" % c, t) for n, c, t in rb.outputs],
                 "forward module", rows)
    if mod:
        found.append(mod)
    if ops:
        found.append(ops)
    if grads:
        g = _first(ra.grads, rb.grads, "gradient at output of", rows)
        if g:
            found.append(g)
        if rows is None:
            p = _first(list(reversed(pa)), list(reversed(pb)), "parameter gradient")
            if p:
                found.append(p)
    return found


def _split(inputs, i):
    return tuple(x[i:i + 1] if isinstance(x, torch.Tensor) else x for x in inputs)


def find_nondeterminism(model, inputs, loss_fn=None, *, threads=(1, 2, 3, 4), repeats=1, batch_split=True,
                        with_patch=True, max_samples=4, verbose=True):
    """Returns {mode: [(configuration, [findings...]), ...]} for mode 'torch' and 'bitexact.patch'."""
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    inputs = tuple(inputs)
    model = copy.deepcopy(model)
    state = copy.deepcopy(model.state_dict())
    old_threads = torch.get_num_threads()
    report = {}
    modes = [("torch", None)]
    if with_patch:
        modes.append(("bitexact.patch", True))
    try:
        for mode, use_patch in modes:
            p = None
            if use_patch:
                from .patch import patch
                p = patch(strict=False)
            unsupported = []
            try:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    rows = []
                    base = _run(model, state, inputs, loss_fn, threads[0])
                    for t in threads[1:]:
                        rows.append(("threads=%d vs %d" % (t, threads[0]),
                                     _compare(base, _run(model, state, inputs, loss_fn, t))))
                    for r in range(repeats):
                        rows.append(("repeat #%d" % (r + 1), _compare(base, _run(model, state, inputs, loss_fn,
                                                                                 threads[0]))))
                    if batch_split:
                        batch = inputs[0].shape[0]
                        found = []
                        for i in range(min(batch, max_samples)):
                            one = _run(model, state, _split(inputs, i), loss_fn, threads[0], first_sample=i)
                            f = _compare(base, one, rows=(i, batch), grads=loss_fn is None)
                            if f:
                                found = ["sample %d alone: %s" % (i, x) for x in f]
                                break
                        rows.append(("sample alone vs in batch of %d" % batch, found))
                    unsupported = sorted({str(w.message) for w in caught if "bitexact.torch.patch" in str(w.message)})
            finally:
                if p is not None:
                    p.close()
            report[mode] = {"rows": rows, "unsupported": unsupported}
    finally:
        torch.set_num_threads(old_threads)
    if verbose:
        print(format_report(report))
    return report


def format_report(report):
    lines = []
    for mode, r in report.items():
        lines.append("== %s ==" % mode)
        for conf, found in r["rows"]:
            if not found:
                lines.append("  %-34s bit-identical" % conf)
            else:
                lines.append("  %-34s %s" % (conf, found[0]))
                for f in found[1:]:
                    lines.append("  %-34s %s" % ("", f))
        for u in r["unsupported"]:
            lines.append("  note: " + u)
        if mode == "torch" and any(f for _, f in r["rows"]):
            lines.append("  -> run the model under bitexact.torch.patch() (next section: what remains)")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m bitexact.torch.find_nondeterminism", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", help="pkg.module:factory returning (model, inputs[, loss_fn])")
    ap.add_argument("--demo", action="store_true", help="the digits CNN of examples/torch_digits.py")
    ap.add_argument("--threads", default="1,2,3,4")
    ap.add_argument("--no-patch", action="store_true")
    a = ap.parse_args(argv)
    if a.demo:
        import os
        sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples"))
        factory = importlib.import_module("torch_digits").nondeterminism_case
    elif a.model:
        mod, _, fn = a.model.partition(":")
        factory = getattr(importlib.import_module(mod), fn)
    else:
        ap.error("give --model pkg.module:factory or --demo")
    case = factory()
    model, inputs = case[0], case[1]
    loss_fn = case[2] if len(case) > 2 else None
    r = find_nondeterminism(model, inputs, loss_fn, threads=tuple(int(x) for x in a.threads.split(",")),
                            with_patch=not a.no_patch)
    bad = any(f for _, f in r.get("bitexact.patch", r["torch"])["rows"])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
