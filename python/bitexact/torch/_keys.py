"""Keys for randomness with no hidden state: (seed, step) from the caller, a tag per layer and
the global index of each sample. A checkpoint needs (seed, step): two integers."""
import threading

import torch

_local = threading.local()


class Key:
    """(seed, step) and the global sample index of row 0 of the batch (or explicit sample_ids)."""

    def __init__(self, seed, step=0, sample_ids=None, first_sample=0):
        self.seed, self.step = int(seed), int(step)
        self.first_sample = int(first_sample)
        self.ids = None if sample_ids is None else torch.as_tensor(sample_ids, dtype=torch.long).reshape(-1)
        self._calls = 0

    def next_call(self):
        n = self._calls
        self._calls += 1
        return n

    def sample_ids(self, batch):
        if self.ids is not None:
            if self.ids.numel() != batch:
                raise ValueError("bitexact.torch: %d sample ids in the key for a batch of %d" % (self.ids.numel(), batch))
            return self.ids
        return torch.arange(self.first_sample, self.first_sample + batch, dtype=torch.long)

    def __repr__(self):
        return "Key(seed=%d, step=%d)" % (self.seed, self.step)


def _stack():
    if not hasattr(_local, "stack"):
        _local.stack = []
    return _local.stack


class keyed:
    """`with bitexact.torch.keyed(seed, step, sample_ids=batch_indices):` keys every dropout inside.

    sample_ids: the global (data-set) index of each row of the batch, so a sample's mask does not
    depend on the batch it is in or on the rank that runs it; default first_sample + arange."""

    def __init__(self, seed, step=0, sample_ids=None, first_sample=0):
        self.key = Key(seed, step, sample_ids, first_sample)

    def __enter__(self):
        _stack().append(self.key)
        return self.key

    def __exit__(self, *exc):
        _stack().pop()
        return False


def current(what):
    s = _stack()
    if not s:
        raise RuntimeError(
            "bitexact.%s needs a key: wrap the step in `with bitexact.torch.keyed(seed, step, sample_ids=...)` "
            "(randomness has no hidden state; a checkpoint needs only seed and step)" % what)
    return s[-1]
