import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import bitexact.torch as bt  # noqa: E402


def available_isas():
    out = []
    for name in ("scalar", "sse2", "avx2", "avx512"):
        try:
            bt.set_isa(name)
            out.append(name)
        except (RuntimeError, ValueError):  # std::invalid_argument reaches Python as ValueError
            pass
    bt.set_isa("auto")
    return out


ISAS = available_isas()
THREADS = (1, 2, 3, 4, 7)


def bits(t):
    t = t.detach().contiguous().reshape(-1)
    if t.dtype == torch.float32:
        return t.view(torch.int32).clone()
    if t.dtype == torch.float64:
        return t.view(torch.int64).clone()
    return t.clone()


def same_bits(a, b):
    return a.shape == b.shape and a.dtype == b.dtype and torch.equal(bits(a), bits(b))


@pytest.fixture(autouse=True)
def _threads():
    old = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(old)
    bt.set_isa("auto")
