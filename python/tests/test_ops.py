"""Each op: gradcheck in double, equal to the C++ reference (the specification) bit for bit,
invariant across torch.set_num_threads and every ISA, batch invariant, strided inputs."""
import pytest
import torch
from torch.autograd import gradcheck

import bitexact.torch as bt
from conftest import ISAS, THREADS, same_bits

ops = bt.ops
D = torch.float64


def rnd(*shape, dtype=torch.float32, seed=0, grad=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(tuple(shape), generator=g, dtype=torch.float64) * 3
    return x.to(dtype).requires_grad_(grad)


# ---- gradcheck in double, for every backward ---------------------------------------------------

def test_gradcheck_sum_mean():
    x = rnd(3, 4, 5, dtype=D, grad=True)
    for dim in (None, 0, 1, 2, (0, 2), (1, 2), (0, 1)):
        for keep in (False, True):
            assert gradcheck(lambda a: bt.sum(a, dim, keep), (x,))
            assert gradcheck(lambda a: bt.mean(a, dim, keep), (x,))


def test_gradcheck_softmax_norms():
    x = rnd(4, 3, 6, dtype=D, grad=True)
    for dim in (0, 1, -1):
        assert gradcheck(lambda a: bt.softmax(a, dim), (x,))
        assert gradcheck(lambda a: bt.log_softmax(a, dim), (x,))
    w, b = rnd(3, 6, dtype=D, seed=1, grad=True), rnd(3, 6, dtype=D, seed=2, grad=True)
    assert gradcheck(lambda a, w, b: bt.layer_norm(a, (3, 6), w, b), (x, w, b))
    assert gradcheck(lambda a: bt.layer_norm(a, 6), (x,))
    assert gradcheck(lambda a, w: bt.rms_norm(a, (3, 6), w), (x, w))
    assert gradcheck(lambda a: bt.rms_norm(a, 6), (x,))


def test_gradcheck_losses():
    x = rnd(6, 5, dtype=D, grad=True)
    t = torch.tensor([0, 4, 2, 2, 1, 3])
    w = torch.rand(5, dtype=D) + 0.5
    for red in ("mean", "sum", "none"):
        assert gradcheck(lambda a: bt.cross_entropy(a, t, reduction=red), (x,))
        assert gradcheck(lambda a: bt.cross_entropy(a, t, weight=w, reduction=red, ignore_index=2), (x,))
        assert gradcheck(lambda a: bt.nll_loss(bt.log_softmax(a, 1), t, reduction=red), (x,))
    assert gradcheck(lambda a: bt.cross_entropy(a, t, label_smoothing=0.1), (x,))
    x3 = rnd(2, 5, 3, dtype=D, grad=True)
    t3 = torch.tensor([[0, 1, 4], [3, 3, 2]])
    assert gradcheck(lambda a: bt.cross_entropy(a, t3), (x3,))


def test_losses_match_torch_values():
    x = rnd(6, 5, dtype=D)
    t = torch.tensor([0, 4, 2, 2, 1, 3])
    w = torch.rand(5, dtype=D) + 0.5
    for kw in ({}, {"weight": w}, {"ignore_index": 2}, {"reduction": "sum"}, {"reduction": "none"},
               {"label_smoothing": 0.2}):
        assert torch.allclose(bt.cross_entropy(x, t, **kw), torch.nn.functional.cross_entropy(x, t, **kw))


def test_fused_cross_entropy_equals_composition():
    """cross_entropy of (N, C) class indices runs one C++ op each way (_CrossEntropy); its loss and
    gradient have the bits of the composed ops it replaces, nll_loss(log_softmax(x, 1)), also with
    +-Inf and NaN logits, Inf weights, ignored rows (all of them, too) and an empty batch."""
    for dtype, bits in ((torch.float32, torch.int32), (torch.float64, torch.int64)):
        for case in range(24):
            n, c = (0 if case == 23 else 1 + case % 6), 2 + case % 5
            x = rnd(n, c, dtype=dtype, seed=case) * (10 ** (case % 4))
            if n and case % 5 == 1:
                x.view(-1)[case % x.numel()] = float("inf")
            if n and case % 5 == 2:
                x.view(-1)[case % x.numel()] = float("-inf")
            if n and case % 5 == 3:
                x.view(-1)[case % x.numel()] = float("nan")
            t = torch.randint(0, c, (n,), generator=torch.Generator().manual_seed(case))
            if n and case % 3 == 0:
                t[0] = 1 if case % 6 == 0 else -100  # ignored (with ignore_index=1: every row when n == 1)
            w = torch.rand(c, dtype=dtype, generator=torch.Generator().manual_seed(case)) + 0.5 if case % 2 else None
            if w is not None and case % 7 == 1:
                w[0] = float("inf")
            ign = 1 if case % 6 == 0 else -100
            for red in ("mean", "sum", "none"):
                got = []
                for fused in (True, False):
                    a = x.clone().requires_grad_(True)
                    y = (bt.cross_entropy(a, t, w, ign, red) if fused
                         else bt.nll_loss(bt.log_softmax(a, 1), t, w, ign, red))
                    assert (type(y.grad_fn).__name__ == "_CrossEntropyBackward") == fused  # the path claimed
                    y.backward(rnd(*y.shape, dtype=dtype, seed=99))
                    got.append((y.detach().reshape(-1).view(bits), a.grad.reshape(-1).view(bits)))
                assert torch.equal(got[0][0], got[1][0]), (dtype, case, red, "loss")
                assert torch.equal(got[0][1], got[1][1]), (dtype, case, red, "gradient")


def test_gradcheck_embeddings():
    w = rnd(7, 3, dtype=D, grad=True)
    ids = torch.tensor([[1, 3, 1], [6, 0, 1]])
    assert gradcheck(lambda w: bt.embedding(ids, w), (w,))
    # padding_idx: like torch, the row is read but gets no gradient (so no gradcheck)
    g = torch.autograd.grad(bt.sum(bt.embedding(ids, w, padding_idx=1)), w)[0]
    ref = torch.autograd.grad(torch.nn.functional.embedding(ids, w, padding_idx=1).sum(), w)[0]
    assert torch.equal(g, ref) and not g[1].any()
    idx = torch.tensor([1, 3, 1, 6, 0, 1, 2, 2])
    off = torch.tensor([0, 3, 3, 5])
    psw = rnd(8, dtype=D, seed=3, grad=True)
    for mode in ("sum", "mean", "max"):
        assert gradcheck(lambda w: bt.embedding_bag(idx, w, off, mode=mode), (w,))
    assert gradcheck(lambda w, p: bt.embedding_bag(idx, w, off, mode="sum", per_sample_weights=p), (w, psw))
    assert gradcheck(lambda w: bt.embedding_bag(ids, w, mode="mean"), (w,))
    for mode in ("sum", "mean", "max"):
        ref = torch.nn.functional.embedding_bag(idx, w.detach(), off, mode=mode)
        assert torch.allclose(bt.embedding_bag(idx, w.detach(), off, mode=mode), ref)


def test_gradcheck_scatter():
    x = rnd(4, 5, dtype=D, grad=True)
    src = rnd(3, 5, dtype=D, seed=1, grad=True)
    index = torch.tensor([2, 0, 2])
    assert gradcheck(lambda a, s: bt.index_add(a, 0, index, s, alpha=0.5), (x, src))
    src1 = rnd(4, 3, dtype=D, seed=2, grad=True)
    assert gradcheck(lambda a, s: bt.index_add(a, 1, index, s), (x, src1))
    si = torch.tensor([[0, 1, 0, 3, 0], [3, 3, 2, 0, 1]])
    src2 = rnd(2, 6, dtype=D, seed=4, grad=True)
    assert gradcheck(lambda a, s: bt.scatter_add(a, 0, si, s), (x, src2))
    for red in ("sum", "mean", "amax", "amin"):
        for inc in (True, False):
            assert gradcheck(lambda a, s: bt.scatter_reduce(a, 0, si, s, red, include_self=inc), (x, src2)), red
            ref = torch.scatter_reduce(x.detach(), 0, si, src2.detach(), red, include_self=inc)
            assert torch.allclose(bt.scatter_reduce(x.detach(), 0, si, src2.detach(), red, include_self=inc), ref)


def test_gradcheck_dropout():
    x = rnd(4, 6, dtype=D, grad=True)
    with bt.keyed(seed=5, step=3):
        assert gradcheck(lambda a: bt.dropout(a, 0.3, tag="d"), (x,))


# ---- equal to the C++ reference ------------------------------------------------------------

SHAPES = [(1, 1), (3, 7), (5, 4097), (2, 10007), (37, 129)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sums_equal_reference(dtype):
    for r, c in SHAPES:
        x = rnd(r, c, dtype=dtype)
        assert same_bits(bt.sum(x, 1), ops.ref_sum_rows(x, False))
        assert same_bits(bt.sum(x, 1, exact=True), ops.ref_sum_rows(x, True))
        assert same_bits(bt.sum(x, 0), ops.ref_sum_rows(x.t(), False))            # columns
        assert same_bits(bt.sum(x), ops.ref_sum_rows(x.reshape(1, -1), False)[0])  # all
        assert same_bits(bt.mean(x, 1), ops.ref_sum_rows(x, False) / c)
    x = rnd(3, 4, 5, 6, dtype=dtype)
    ref = ops.ref_sum_rows(x.permute(0, 2, 1, 3).reshape(15, 24), False).reshape(3, 5)
    assert same_bits(bt.sum(x, (1, 3)), ref)                                       # middle dims
    assert same_bits(bt.sum(x, (0, 1)), ops.ref_sum_rows(x.reshape(12, 30).t(), False).reshape(5, 6))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rowwise_equal_reference(dtype):
    for r, c in SHAPES:
        x = rnd(r, c, dtype=dtype)
        w, b = rnd(c, dtype=dtype, seed=1), rnd(c, dtype=dtype, seed=2)
        assert same_bits(bt.softmax(x, 1), ops.ref_rowwise(x, "softmax", None, None, 0.0))
        assert same_bits(bt.log_softmax(x, -1), ops.ref_rowwise(x, "log_softmax", None, None, 0.0))
        assert same_bits(bt.softmax(x.t(), 0), ops.ref_rowwise(x, "softmax", None, None, 0.0).t())
        assert same_bits(bt.layer_norm(x, c, w, b, 1e-5), ops.ref_rowwise(x, "layer_norm", w, b, 1e-5))
        assert same_bits(bt.layer_norm(x, c), ops.ref_rowwise(x, "layer_norm", None, None, 1e-5))
        assert same_bits(bt.rms_norm(x, c, w, 1e-6), ops.ref_rowwise(x, "rms_norm", w, None, 1e-6))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scatter_equal_reference(dtype):
    g = torch.Generator().manual_seed(7)
    for n_out, n, width in ((5, 9000, 3), (1000, 20000, 1), (3, 4097, 17)):
        out = rnd(n_out, width, dtype=dtype)
        idx = torch.randint(0, n_out, (n,), generator=g)
        src = rnd(n, width, dtype=dtype, seed=3)
        assert same_bits(bt.index_add(out, 0, idx, src), ops.ref_index_add_rows(out, idx, src))
        assert same_bits(bt.index_add(out.t(), 1, idx, src.t()), ops.ref_index_add_rows(out, idx, src).t())
        o1, s1 = out[:, 0].contiguous(), src[:, 0].contiguous()
        for red in ("sum", "prod", "mean", "amax", "amin"):
            for inc in (True, False):
                assert same_bits(bt.scatter_reduce(o1, 0, idx, s1, red, include_self=inc),
                                 ops.ref_scatter_reduce_1d(o1, idx, s1, red, inc))
        # 2-D scatter_add along dim 1: flattened targets row * cols + index
        x2 = rnd(4, 6, dtype=dtype)
        i2 = torch.randint(0, 6, (4, 500), generator=g)
        s2 = rnd(4, 500, dtype=dtype, seed=9)
        flat = (i2 + torch.arange(4).unsqueeze(1) * 6).reshape(-1)
        ref = ops.ref_scatter_reduce_1d(x2.reshape(-1), flat, s2.reshape(-1), "sum", True).reshape(4, 6)
        assert same_bits(bt.scatter_add(x2, 1, i2, s2), ref)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_embedding_bag_equal_reference(dtype):
    g = torch.Generator().manual_seed(1)
    table = rnd(50, 9, dtype=dtype)
    idx = torch.randint(0, 50, (6000,), generator=g)
    off = torch.tensor([0, 10, 10, 4200, 5999])
    psw = rnd(6000, dtype=dtype, seed=5)
    for mode, m in (("sum", 0), ("mean", 1), ("max", 2)):
        assert same_bits(bt.embedding_bag(idx, table, off, mode=mode), ops.ref_embedding_bag(table, idx, off, m, None))
    assert same_bits(bt.embedding_bag(idx, table, off, mode="sum", per_sample_weights=psw),
                     ops.ref_embedding_bag(table, idx, off, 0, psw))


def test_dropout_is_the_cpp_op():
    x = rnd(3, 1000) + 100.0  # no zeros in x
    with bt.keyed(seed=1, step=2, sample_ids=[10, 11, 12]):
        y = bt.dropout(x, 0.25, tag="layer")
    kept = y != 0
    assert 0.65 < float(kept.float().mean()) < 0.85
    assert same_bits(y[kept], x[kept] * torch.tensor(1 / 0.75, dtype=torch.float32))
    y2, mask = ops.dropout(x, 0.25, 1, 2, bt.tag_of("layer"), torch.tensor([10, 11, 12]))
    assert same_bits(y, y2) and torch.equal(mask.bool(), kept)


# ---- invariance: threads, ISAs --------------------------------------------------------------

def _all_ops_outputs():
    """Forward and backward of every op on inputs large enough to split among threads."""
    outs = []
    x = rnd(64, 3000, grad=True)
    w, b = rnd(3000, seed=1, grad=True), rnd(3000, seed=2, grad=True)
    t = torch.randint(0, 3000, (64,), generator=torch.Generator().manual_seed(0))
    with bt.keyed(seed=3, step=1):
        ys = [bt.sum(x), bt.sum(x, 0), bt.mean(x, 1), bt.softmax(x, 1), bt.log_softmax(x, 0),
              bt.layer_norm(x, 3000, w, b), bt.rms_norm(x, 3000, w), bt.cross_entropy(x, t),
              bt.dropout(x, 0.5, tag="t")]
    for y in ys:
        gx, gw, gb = torch.autograd.grad(bt.sum(y * rnd(*y.shape, seed=11)), (x, w, b), allow_unused=True)
        outs += [y] + [g for g in (gx, gw, gb) if g is not None]
    table = rnd(500, 64, grad=True)
    idx = torch.randint(0, 500, (40000,), generator=torch.Generator().manual_seed(1))
    off = torch.arange(0, 40000, 100)
    for mode in ("sum", "mean", "max"):
        y = bt.embedding_bag(idx, table, off, mode=mode)
        outs += [y, torch.autograd.grad(bt.sum(y * rnd(*y.shape, seed=12)), table)[0]]
    e = bt.embedding(idx.reshape(400, 100), table)
    outs += [torch.autograd.grad(bt.sum(e * rnd(*e.shape, seed=13)), table)[0]]
    base = rnd(500, 64)
    src = rnd(40000, 64, seed=4)
    outs += [bt.index_add(base, 0, idx, src), bt.scatter_add(base.reshape(-1), 0, idx * 64, src[:, 0].contiguous()),
             bt.scatter_reduce(base.reshape(-1), 0, idx, src[:, 1].contiguous(), "mean")]
    outs += [bt.ops.random([100000], "normal", 1, 2, 3, 0, False), bt.data.epoch_order(100000, 1, 2)]
    return outs


def test_invariant_across_threads_and_isas():
    torch.set_num_threads(1)
    bt.set_isa("auto")
    base = _all_ops_outputs()
    for isa in ISAS:
        bt.set_isa(isa)
        for th in THREADS:
            torch.set_num_threads(th)
            got = _all_ops_outputs()
            for i, (a, b) in enumerate(zip(base, got)):
                assert same_bits(a, b), "output %d differs at isa=%s threads=%d" % (i, isa, th)
    assert len(ISAS) >= 2


def _products_outputs():
    """linear, conv2d and bmm forward and backward, large enough to split among threads."""
    x, w, b = rnd(96, 300, grad=True), rnd(200, 300, seed=1, grad=True), rnd(200, seed=2, grad=True)
    img, k = rnd(8, 6, 20, 20, seed=3, grad=True), rnd(10, 6, 3, 3, seed=4, grad=True)
    p, q = rnd(12, 40, 64, seed=5, grad=True), rnd(12, 64, 30, seed=6, grad=True)
    outs = []
    for y, ins in ((bt.linear(x, w, b), (x, w, b)), (bt.conv2d(img, k, None, 1, 1), (img, k)), (bt.bmm(p, q), (p, q))):
        outs += [y] + list(torch.autograd.grad(bt.sum(y * rnd(*y.shape, seed=14)), ins))
    return outs


def test_threads_backends_give_the_same_bits():
    """Parallel regions run on torch's threads by default (at::parallel_for); bitexact's own pool
    is the other backend. Both give the 1-thread bits at 2 and 3 threads."""
    assert bt.threads_backend() == "torch"
    torch.set_num_threads(1)
    base = _all_ops_outputs() + _products_outputs()
    try:
        for backend in ("pool", "torch"):
            bt.set_threads_backend(backend)
            assert bt.threads_backend() == backend
            for th in (2, 3):
                torch.set_num_threads(th)
                got = _all_ops_outputs() + _products_outputs()
                for i, (a, b) in enumerate(zip(base, got)):
                    assert same_bits(a, b), "output %d differs on %s threads at %d" % (i, backend, th)
    finally:
        bt.set_threads_backend("torch")
    with pytest.raises(RuntimeError, match="set_threads_backend"):
        bt.set_threads_backend("openmp")


def test_bitexact_isa_environment_variable(tmp_path):
    """BITEXACT_ISA=scalar in a fresh process gives the same bits as the default ISA here."""
    import subprocess
    import sys
    import os
    code = ("import sys; sys.path.insert(0, %r); import torch, bitexact.torch as bt; torch.set_num_threads(3); "
            "x = torch.linspace(-3, 3, 300006); print(bt.isa(), bt.sum(x).item().hex(), "
            "bt.softmax(x.reshape(7, -1)[:, :40000], 1).double().sum().item().hex())") % (
        os.path.join(os.path.dirname(__file__), ".."))
    outs = {}
    for isa in ISAS:
        env = dict(os.environ, BITEXACT_ISA=isa)
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        name, *vals = r.stdout.split()
        assert name == isa
        outs[isa] = vals
    assert len(set(map(tuple, outs.values()))) == 1, outs


# ---- batch invariance and strided inputs ----------------------------------------------------

def test_batch_invariance():
    x = rnd(37, 301)
    w, b = rnd(301, seed=1), rnd(301, seed=2)
    t = torch.arange(37) % 301
    with bt.keyed(seed=9, step=4):
        full = [bt.softmax(x, 1), bt.log_softmax(x, 1), bt.layer_norm(x, 301, w, b), bt.rms_norm(x, 301, w),
                bt.sum(x, 1), bt.mean(x, 1), bt.cross_entropy(x, t, reduction="none"), bt.dropout(x, 0.4, tag="a")]
    for i in (0, 5, 36):
        xi = x[i:i + 1]
        with bt.keyed(seed=9, step=4, first_sample=i):
            one = [bt.softmax(xi, 1), bt.log_softmax(xi, 1), bt.layer_norm(xi, 301, w, b), bt.rms_norm(xi, 301, w),
                   bt.sum(xi, 1), bt.mean(xi, 1), bt.cross_entropy(xi, t[i:i + 1], reduction="none"),
                   bt.dropout(xi, 0.4, tag="a")]
        for k, (f, o) in enumerate(zip(full, one)):
            assert same_bits(f[i:i + 1], o), "op %d, row %d" % (k, i)


def test_strided_inputs():
    base = rnd(40, 60, 3)
    x = base[::2, :, 1]          # non-contiguous (20, 60)
    xc = x.contiguous()
    assert not x.is_contiguous()
    w = rnd(60, seed=1)
    for f in (lambda a: bt.sum(a, 1), lambda a: bt.sum(a, 0), lambda a: bt.softmax(a, 1), lambda a: bt.log_softmax(a, 0),
              lambda a: bt.layer_norm(a, 60, w[::1], None), lambda a: bt.rms_norm(a, 60, w)):
        assert same_bits(f(x), f(xc))
    wn = rnd(120, seed=2)[::2]
    assert same_bits(bt.layer_norm(xc, 60, wn, None), bt.layer_norm(xc, 60, wn.contiguous(), None))
    idx = torch.tensor([3, 0, 3, 19])
    src = rnd(60, 4, seed=3).t()  # (4, 60) transposed
    assert same_bits(bt.index_add(x, 0, idx, src), bt.index_add(xc, 0, idx, src.contiguous()))
    table = rnd(9, 20, seed=4).t()  # (20, 9) non-contiguous
    ids = torch.tensor([1, 2, 19, 5])
    assert same_bits(bt.embedding_bag(ids, table, torch.tensor([0, 2]), mode="sum"),
                     bt.embedding_bag(ids, table.contiguous(), torch.tensor([0, 2]), mode="sum"))


# ---- errors: clear, before anything is written ----------------------------------------------

def test_errors_name_the_op_and_leave_inputs_untouched():
    x = rnd(4, 5)
    keep = x.clone()
    with pytest.raises(RuntimeError, match=r"bitexact\.sum: input has dtype Int"):
        bt.sum(torch.ones(3, dtype=torch.int32))
    with pytest.raises(RuntimeError, match=r"bitexact\.softmax: input has dtype BFloat16"):
        bt.softmax(x.bfloat16(), 1)
    with pytest.raises(RuntimeError, match=r"bitexact\.sum: input is on meta"):
        bt.sum(torch.empty(3, device="meta"))
    with pytest.raises(RuntimeError, match=r"dim 2 out of range"):
        bt.sum(x, 2)
    with pytest.raises(RuntimeError, match=r"bitexact\.layer_norm: weight has 4 elements, expected 5"):
        bt.layer_norm(x, 5, torch.ones(4), None)
    with pytest.raises(RuntimeError, match=r"bitexact\.layer_norm: input .* and weight .* same dtype"):
        bt.layer_norm(x, 5, torch.ones(5, dtype=torch.float64), None)
    with pytest.raises(RuntimeError, match=r"bitexact\.index_add: source shape"):
        bt.index_add(x, 0, torch.tensor([0, 1]), rnd(3, 5))
    with pytest.raises(IndexError, match=r"index_add_rows: index 4 at position 1 is outside \[0, 4\)"):
        bt.index_add(x, 0, torch.tensor([0, 4]), rnd(2, 5))
    with pytest.raises(IndexError, match=r"bitexact\.scatter_add: index 9 at position 3 out of range \[0, 5\) along dim 1"):
        bt.scatter_add(x, 1, torch.tensor([[0, 1, 2, 9]]), rnd(1, 4))
    with pytest.raises(RuntimeError, match=r"bitexact\.scatter_(add|reduce): index must be an int64"):
        bt.scatter_reduce(x, 1, torch.tensor([[0, 1]], dtype=torch.int32), rnd(1, 2), "sum")
    with pytest.raises(IndexError, match=r"embedding_bag: index 50 at position 2"):
        bt.embedding_bag(torch.tensor([1, 2, 50]), rnd(50, 3), torch.tensor([0]), mode="sum")
    with pytest.raises(IndexError, match=r"bitexact\.embedding: index 7 at position 1 out of range \[0, 5\)"):
        bt.embedding(torch.tensor([1, 7]), rnd(5, 2))
    with pytest.raises(IndexError, match=r"nll_loss: target 5 at position 0"):
        bt.cross_entropy(x, torch.tensor([5, 0, 0, 0]))
    with pytest.raises(RuntimeError, match=r"bitexact\.dropout needs a key"):
        bt.dropout(x, 0.5)
    assert same_bits(x, keep)


# ---- matrix products, convolution, pooling ------------------------------------------------------

def test_gradcheck_gemm_conv_pool():
    a, w, b = rnd(5, 4, dtype=D, grad=True), rnd(3, 4, dtype=D, seed=1, grad=True), rnd(3, dtype=D, seed=2, grad=True)
    assert gradcheck(lambda a, w, b: bt.linear(a, w, b), (a, w, b))
    assert gradcheck(lambda a, w: bt.linear(a.reshape(1, 5, 4), w), (a, w))
    assert gradcheck(lambda a, w: bt.mm(a, w.t()), (a, w))
    A, B = rnd(2, 1, 3, 4, dtype=D, grad=True), rnd(3, 4, 5, dtype=D, seed=1, grad=True)
    assert gradcheck(lambda a, b: bt.matmul(a, b), (A, B))
    assert gradcheck(lambda a, b: bt.bmm(a, b), (rnd(3, 2, 4, dtype=D, grad=True), B))
    x = rnd(2, 4, 7, 6, dtype=D, grad=True)
    cw, cb = rnd(6, 2, 3, 2, dtype=D, seed=3, grad=True), rnd(6, dtype=D, seed=4, grad=True)
    assert gradcheck(lambda x, w, b: bt.conv2d(x, w, b, stride=(2, 1), padding=1, dilation=(1, 2), groups=2),
                     (x, cw, cb))
    assert gradcheck(lambda x: bt.max_pool2d(x, 3, 2, 1), (x,))
    assert gradcheck(lambda x: bt.avg_pool2d(x, 2), (x,))
    assert gradcheck(lambda x: bt.adaptive_avg_pool2d(x, (1, 3)), (x,))
    tf = torch.nn.functional
    assert torch.allclose(bt.conv2d(x, cw, cb, (2, 1), 1, (1, 2), 2), tf.conv2d(x, cw, cb, (2, 1), 1, (1, 2), 2))
    assert torch.equal(bt.max_pool2d(x, 3, 2, 1), tf.max_pool2d(x, 3, 2, 1))
    y, i = bt.max_pool2d(x, 3, 2, 1, return_indices=True)
    y2, i2 = tf.max_pool2d(x, 3, 2, 1, return_indices=True)
    assert torch.equal(y, y2) and torch.equal(i, i2)
    x5 = rnd(2, 3, 9, 7, dtype=D, grad=True)
    for kw in ({"ceil_mode": True}, {"count_include_pad": False}):
        assert gradcheck(lambda t: bt.avg_pool2d(t, 3, 2, 1, **kw), (x5,))
        assert torch.allclose(bt.avg_pool2d(x5, 3, 2, 1, **kw), tf.avg_pool2d(x5, 3, 2, 1, **kw))
    assert gradcheck(lambda t: bt.max_pool2d(t, 2, ceil_mode=True), (x5,))
    assert gradcheck(lambda t: bt.adaptive_avg_pool2d(t, (4, 3)), (x5,))
    assert torch.allclose(bt.adaptive_avg_pool2d(x5, (4, 3)), tf.adaptive_avg_pool2d(x5, (4, 3)))
    assert torch.allclose(bt.avg_pool2d(x, 3, 2, 1), tf.avg_pool2d(x, 3, 2, 1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gemm_conv_equal_reference(dtype):
    for m, k, n in ((1, 1, 1), (7, 300, 5), (33, 513, 17)):
        a, b = rnd(m, k, dtype=dtype), rnd(k, n, dtype=dtype, seed=1)
        ref = ops.ref_mm(a, b)
        assert same_bits(bt.mm(a, b), ref)
        assert same_bits(bt.mm(a.t().contiguous().t(), b.t().contiguous().t()), ref)  # transposed storage
        assert same_bits(bt.linear(a, b.t().contiguous()), ref)
        assert same_bits(bt.bmm(torch.stack([a, a]), torch.stack([b, b]))[1], ref)
    x = rnd(3, 4, 9, 8, dtype=dtype)
    w, bias = rnd(6, 2, 3, 3, dtype=dtype, seed=2), rnd(6, dtype=dtype, seed=3)
    args = ([2, 1], [1, 2], [1, 1], 2)
    y = bt.conv2d(x, w, bias, *args)
    dy = rnd(*y.shape, dtype=dtype, seed=4)
    ry, rdx, rdw, rdb = ops.ref_conv2d(x, w, bias, dy, *args)
    dx, dw, db = ops.conv2d_backward(dy, x, w, *args, True, False)
    assert same_bits(y, ry) and same_bits(dx, rdx) and same_bits(dw, rdw) and same_bits(db, rdb)
    # An input that needs no gradient (a first layer): dx is skipped, dw and db are the same bits.
    _, dw2, db2 = ops.conv2d_backward(dy, x, w, *args, True, False, False)
    assert same_bits(dw2, rdw) and same_bits(db2, rdb)
    wg, bg = w.clone().requires_grad_(), bias.clone().requires_grad_()
    bt.conv2d(x, wg, bg, *args).backward(dy)
    assert same_bits(wg.grad, rdw) and same_bits(bg.grad, rdb)


def test_gemm_conv_threads_isas_and_batch_invariance():
    x = rnd(16, 3, 20, 20, grad=True)
    w, b = rnd(8, 3, 3, 3, seed=1, grad=True), rnd(8, seed=2, grad=True)
    lw = rnd(10, 8 * 9 * 9, seed=3, grad=True)

    def run():
        h = bt.max_pool2d(bt.conv2d(x, w, b, 1, 0), 2)
        y = bt.linear(h.reshape(16, -1), lw)
        outs = [h, y] + list(torch.autograd.grad(bt.sum(y * rnd(*y.shape, seed=5)), (x, w, b, lw)))
        return outs + [bt.matmul(rnd(4, 30, 70, seed=6), rnd(70, 50, seed=7))]
    torch.set_num_threads(1)
    base = run()
    for isa in ISAS:
        bt.set_isa(isa)
        for th in THREADS:
            torch.set_num_threads(th)
            for i, (p, q) in enumerate(zip(base, run())):
                assert same_bits(p, q), "output %d at isa=%s threads=%d" % (i, isa, th)
    bt.set_isa("auto")
    h1 = bt.max_pool2d(bt.conv2d(x[5:6], w, b, 1, 0), 2)
    assert same_bits(h1, base[0][5:6])
    assert same_bits(bt.linear(h1.reshape(1, -1), lw), base[1][5:6])


def test_gemm_conv_errors():
    with pytest.raises(RuntimeError, match=r"bitexact\.mm: shapes .* cannot be multiplied"):
        bt.mm(rnd(3, 4), rnd(5, 2))
    with pytest.raises(RuntimeError, match=r"bitexact\.linear: input .* and weight .* do not match"):
        bt.linear(rnd(3, 4), rnd(2, 5))
    with pytest.raises(RuntimeError, match=r"bitexact\.conv2d: input has 3 channels, weight expects 2 x 1 groups"):
        bt.conv2d(rnd(1, 3, 5, 5), rnd(4, 2, 3, 3))
    with pytest.raises(RuntimeError, match=r"bitexact\.conv2d: kernel .* larger than the padded input"):
        bt.conv2d(rnd(1, 2, 2, 2), rnd(4, 2, 3, 3))
    with pytest.raises(RuntimeError, match=r"bitexact\.linear: weight has dtype Half"):
        bt.linear(rnd(3, 4), rnd(2, 4).half())
