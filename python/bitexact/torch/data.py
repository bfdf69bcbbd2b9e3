"""A data-set sampler that shuffles by (seed, epoch) with bitexact's random-access permutation.

The global order of epoch e is perm(0), perm(1), ... of bitexact::permutation::for_epoch(n,
seed, e). Rank r of w takes positions r, r + w, r + 2w, ... of that order, so global batch k
(positions [k*B, (k+1)*B)) is the same set of samples on 1 or w ranks (B a multiple of w), and
resuming at an epoch needs only (seed, epoch)."""
import torch

from ._lib import ops


def epoch_order(n, seed, epoch):
    """The whole global order of an epoch (int64 tensor of n data-set indices)."""
    return ops.permutation(int(n), int(seed), int(epoch), 0, int(n))


class Sampler(torch.utils.data.Sampler):
    def __init__(self, data_source_or_len, seed, rank=0, world_size=1):
        self.n = data_source_or_len if isinstance(data_source_or_len, int) else len(data_source_or_len)
        if not 0 <= rank < world_size:
            raise ValueError("bitexact Sampler: rank %d not in [0, %d)" % (rank, world_size))
        self.seed, self.rank, self.world_size, self.epoch = int(seed), rank, world_size, 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def indices(self):
        return epoch_order(self.n, self.seed, self.epoch)[self.rank::self.world_size]

    def __iter__(self):
        return iter(self.indices().tolist())

    def __len__(self):
        return len(range(self.rank, self.n, self.world_size))

    def batches(self, batch_size, drop_last=False):
        """Global batches of this rank: lists of data-set indices (batch_size per rank)."""
        idx = self.indices()
        for s in range(0, idx.numel(), batch_size):
            b = idx[s:s + batch_size]
            if drop_last and b.numel() < batch_size:
                break
            yield b
