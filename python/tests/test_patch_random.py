"""patch() routing and strictness, keyed initializers, the sampler, find_nondeterminism."""
import warnings

import pytest
import torch
import torch.nn.functional as TF

import bitexact.torch as bt
from conftest import same_bits


def rnd(*shape, seed=0, dtype=torch.float32):
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed), dtype=dtype)


def test_patch_routes_calls_to_bitexact():
    x = rnd(6, 5000)
    w, b = rnd(5000, seed=1), rnd(5000, seed=2)
    t = torch.tensor([1, 2, 3, 4, 0, 4999])
    orig_sum = torch.sum
    with bt.patch():
        assert torch.sum is not orig_sum
        got = [torch.sum(x), x.sum(1), x.sum(dim=(0, 1), keepdim=True), torch.mean(x, 0), x.mean(),
               TF.softmax(x, dim=1), x.softmax(0), torch.log_softmax(x, 1), TF.log_softmax(x, -1),
               TF.layer_norm(x, (5000,), w, b), torch.nn.LayerNorm(5000)(x), TF.cross_entropy(x, t),
               torch.nn.CrossEntropyLoss()(x, t), TF.nll_loss(x, t), torch.nn.Softmax(1)(x)]
        ints = torch.arange(10).sum()  # integer sums are exact: torch's own
    assert torch.sum is orig_sum
    want = [bt.sum(x), bt.sum(x, 1), bt.sum(x, (0, 1), True), bt.mean(x, 0), bt.mean(x), bt.softmax(x, 1),
            bt.softmax(x, 0), bt.log_softmax(x, 1), bt.log_softmax(x, -1), bt.layer_norm(x, 5000, w, b),
            bt.layer_norm(x, 5000, torch.ones(5000), torch.zeros(5000)), bt.cross_entropy(x, t),
            bt.cross_entropy(x, t), bt.nll_loss(x, t), bt.softmax(x, 1)]
    for i, (g, w_) in enumerate(zip(got, want)):
        assert same_bits(g, w_.detach()), i
    assert int(ints) == 45


def test_patch_scatter_embedding_and_inplace():
    base = rnd(10, 4)
    idx = torch.tensor([1, 9, 1, 0])
    src = rnd(4, 4, seed=3)
    table = rnd(10, 4, seed=4)
    with bt.patch():
        a = torch.index_add(base, 0, idx, src, alpha=2.0)
        b = base.scatter_add(0, idx.unsqueeze(1).expand(4, 4), src)
        c = torch.scatter_reduce(base, 0, idx.unsqueeze(1).expand(4, 4), src, "amax", include_self=False)
        e = torch.nn.Embedding.from_pretrained(table, freeze=False)(idx)
        eb = torch.nn.EmbeddingBag.from_pretrained(table, mode="sum")(idx.reshape(2, 2))
        x = base.clone()
        with pytest.raises(IndexError):
            x.index_add_(0, torch.tensor([0, 1, 2, 10]), src)
        assert same_bits(x, base)  # untouched on error
        x.index_add_(0, idx, src)
    assert same_bits(a, bt.index_add(base, 0, idx, src * 2.0))
    assert same_bits(b, bt.scatter_add(base, 0, idx.unsqueeze(1).expand(4, 4), src))
    assert same_bits(c, bt.scatter_reduce(base, 0, idx.unsqueeze(1).expand(4, 4), src, "amax", include_self=False))
    assert same_bits(e, table[idx]) and same_bits(eb, bt.embedding_bag(idx.reshape(2, 2), table, mode="sum"))
    assert same_bits(x, bt.index_add(base, 0, idx, src))


def test_patch_strict_errors_and_warnings():
    x = rnd(3, 4)
    lin = torch.nn.Linear(4, 2)
    with bt.patch():
        with pytest.raises(bt.UnsupportedOpError, match=r"torch\.addmm is not covered"):
            torch.addmm(torch.zeros(3, 2), x, lin.weight.t())
        with pytest.raises(bt.UnsupportedOpError, match=r"torch\.nn\.functional\.linear .*dtype torch\.float16"):
            torch.nn.Linear(4, 2).half()(x.half())
        with pytest.raises(bt.UnsupportedOpError, match=r"Tensor\.sum .*dtype torch\.bfloat16"):
            x.bfloat16().sum()
        with pytest.raises(bt.UnsupportedOpError, match=r"torch\.nn\.functional\.dropout .*keyed"):
            TF.dropout(x, 0.5, training=True)
        with pytest.raises(bt.UnsupportedOpError, match=r"torch\.exp"):
            torch.exp(x)
        assert same_bits(TF.dropout(x, 0.5, training=False), x)
    p = bt.patch(strict=False)  # plain call
    try:
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            y = torch.addmm(torch.zeros(3, 2), x, lin.weight.t())
        assert any("torch.addmm is not covered" in str(m.message) for m in w)
        assert y.shape == (3, 2)
    finally:
        bt.unpatch()
    assert "bitexact" not in getattr(torch.addmm, "__module__", "") and not hasattr(TF.linear, "__wrapped__")


def test_patched_dropout_keyed_by_sample():
    x = rnd(8, 300) + 10
    with bt.patch():
        m = torch.nn.Sequential(torch.nn.Dropout(0.5), torch.nn.Dropout(0.2)).train()
        with bt.keyed(seed=1, step=7):
            full = m(x)
        with bt.keyed(seed=1, step=7, first_sample=5):
            alone = m(x[5:6])
        with bt.keyed(seed=1, step=8):
            other = m(x)
    assert same_bits(full[5:6], alone)
    assert not torch.equal(full, other)


def test_initializers_keyed_by_seed_and_name():
    a, b = torch.empty(300, 200), torch.empty(300, 200)
    bt.init.kaiming_uniform_(a, a=5 ** 0.5, seed=3, name="fc.weight")
    torch.set_num_threads(3)
    bt.init.kaiming_uniform_(b, a=5 ** 0.5, seed=3, name="fc.weight")
    assert same_bits(a, b)
    bound = 1 / 200 ** 0.5
    assert float(a.abs().max()) <= bound and float(a.abs().max()) > 0.99 * bound
    bt.init.kaiming_uniform_(b, a=5 ** 0.5, seed=3, name="fc2.weight")
    assert not torch.equal(a, b)
    n = torch.empty(100000)
    bt.init.normal_(n, 1.0, 2.0, seed=1, name="e")
    assert abs(float(n.mean()) - 1) < 0.05 and abs(float(n.std()) - 2) < 0.05
    bt.init.trunc_normal_(n, 0.0, 1.0, -0.5, 1.0, seed=1, name="t")
    assert float(n.min()) >= -0.5 and float(n.max()) <= 1.0 and float(n.std()) > 0.3
    bt.init.xavier_uniform_(a, seed=2, name="x")
    assert float(a.abs().max()) <= (6 / 500) ** 0.5
    bt.init.uniform_(a, -1, 1, seed=2, name="u")
    m1 = bt.init.reset_parameters(torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.LayerNorm(3)), seed=9)
    m2 = bt.init.reset_parameters(torch.nn.Sequential(torch.nn.Linear(5, 3), torch.nn.LayerNorm(3)), seed=9)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        assert same_bits(p1.detach(), p2.detach())


def test_sampler_same_global_order_on_1_or_n_ranks():
    n = 1003
    one = bt.Sampler(n, seed=4)
    one.set_epoch(2)
    order = list(one)
    assert sorted(order) == list(range(n))
    for world in (2, 3, 4):
        shards = []
        for r in range(world):
            s = bt.Sampler(n, seed=4, rank=r, world_size=world)
            s.set_epoch(2)
            shards.append(list(s))
        merged = [shards[i % world][i // world] for i in range(n)]
        assert merged == order
        # global batch k = the union of the ranks' k-th batches
        gb = []
        for r in range(world):
            s = bt.Sampler(n, 4, r, world)
            s.set_epoch(2)
            gb.append(list(s.batches(8)))
        assert sorted(sum((b[0].tolist() for b in gb), [])) == sorted(order[:8 * world])
    e3 = bt.Sampler(n, seed=4)
    e3.set_epoch(3)
    assert list(e3) != order


class _GlobalScale(torch.nn.Module):
    def __init__(self, n):
        super().__init__()
        self.w = torch.nn.Parameter(torch.linspace(0.5, 1.5, n))

    def forward(self, x):
        h = x * self.w
        return h * torch.sum(h)


def test_find_nondeterminism_reports_stock_and_clean_patch():
    model = torch.nn.Sequential(_GlobalScale(500000), torch.nn.Softmax(1))
    x = rnd(4, 500000)
    r = bt.find_nondeterminism(model, x, threads=(1, 2, 3), batch_split=False, verbose=False)
    torch_rows = dict(r["torch"]["rows"])
    assert torch_rows["threads=2 vs 1"], r["torch"]
    text = " ".join(torch_rows["threads=2 vs 1"])
    assert "forward module 0 (_GlobalScale)" in text and "forward op 0 sum" in text
    assert all(not f for _, f in r["bitexact.patch"]["rows"]), r["bitexact.patch"]
    out = bt.find_nondeterminism.__module__
    assert out


def test_find_nondeterminism_batch_split():
    model = torch.nn.Sequential(torch.nn.LayerNorm(64), torch.nn.Softmax(1))
    x = rnd(5, 64)
    r = bt.find_nondeterminism(model, x, threads=(1, 2), verbose=False)
    assert all(not f for _, f in r["bitexact.patch"]["rows"])
    assert [c for c, _ in r["torch"]["rows"]] == ["threads=2 vs 1", "repeat #1", "sample alone vs in batch of 5"]


def test_dropout_masks_same_on_1_or_2_ranks():
    """A global batch split over two ranks (each keyed by its samples' global ids) drops the same
    elements as one rank running the whole batch."""
    x = rnd(8, 50, 3) + 10
    ids = torch.arange(100, 108)
    with bt.keyed(seed=3, step=11, sample_ids=ids):
        whole = bt.dropout(x, 0.3, tag="blk.drop")
    parts = []
    for r in range(2):
        with bt.keyed(seed=3, step=11, sample_ids=ids[r::2]):
            parts.append(bt.dropout(x[r::2], 0.3, tag="blk.drop"))
    assert same_bits(whole[0::2], parts[0]) and same_bits(whole[1::2], parts[1])
