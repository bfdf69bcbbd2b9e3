"""Training-step time with bitexact.torch.patch() against stock torch, at 1 and 2 threads.

    PYTHONPATH=python /usr/bin/python3 benchmarks/torch_bench.py [--steps 15]

Models: the digits CNN of examples/torch_digits.py (batch 32 of 1x8x8 images) and a small
transformer block (batch 8 x 64 tokens x 128 wide: q/k/v/out linears, attention with bmm and
softmax, layer_norm, a 512-wide MLP with ReLU). One step = forward, loss, backward, SGD update.
Prints the median step time of each and the ratio bitexact / stock; names the BLAS that
libblas.so.3 resolves to (stock torch's matrix products on Debian go through it). At 2 threads
it also times bitexact with its regions on its own worker pool (set_threads_backend('pool'))
instead of torch's threads, the default ("pool ms" column)."""
import argparse
import os
import statistics
import sys
import time

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "examples"))
import bitexact.torch as bt  # noqa: E402
import torch_digits  # noqa: E402


class Block(torch.nn.Module):
    def __init__(self, d=128, heads=4):
        super().__init__()
        self.h = heads
        self.qkv = torch.nn.Linear(d, 3 * d)
        self.out = torch.nn.Linear(d, d)
        self.ln1, self.ln2 = torch.nn.LayerNorm(d), torch.nn.LayerNorm(d)
        self.fc1, self.fc2 = torch.nn.Linear(d, 4 * d), torch.nn.Linear(4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=-1)
        q, k, v = (z.reshape(b, t, self.h, d // self.h).transpose(1, 2).reshape(b * self.h, t, d // self.h)
                   for z in (q, k, v))
        a = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * (1.0 / (d // self.h) ** 0.5), dim=-1)
        o = torch.bmm(a, v).reshape(b, self.h, t, d // self.h).transpose(1, 2).reshape(b, t, d)
        x = x + self.out(o)
        return x + self.fc2(torch.relu(self.fc1(self.ln2(x))))


def cnn_case():
    xtr, ytr, _, _ = torch_digits.load_data()
    model, _ = torch_digits.new_run()
    x, y = xtr[:32], ytr[:32]
    return model, lambda m: torch.nn.functional.cross_entropy(m(x), y), True


def block_case():
    model = Block()
    bt.init.reset_parameters(model, 1)
    x = torch.randn(8, 64, 128, generator=torch.Generator().manual_seed(0))
    return model, lambda m: (m(x) ** 2).mean(), False


def time_steps(case, use_patch, threads, steps, backend="torch"):
    torch.set_num_threads(threads)
    bt.set_threads_backend(backend)
    model, loss_of, dropout = case()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    times, cpu = [], []
    p = bt.patch(strict=True) if use_patch else None  # installed once, like a training script would
    try:
        for i in range(steps + 3):
            t0, c0 = time.perf_counter(), time.process_time()
            with bt.keyed(1, i):
                loss = loss_of(model)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if i >= 3:
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
    finally:
        if p is not None:
            p.close()
        bt.set_threads_backend("torch")
    return statistics.median(times), statistics.median(cpu)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=15)
    a = ap.parse_args()
    print("torch %s; libblas.so.3 -> %s; CPU: %s" % (torch.__version__, torch_digits.blas_name(),
                                                   torch_digits.cpu_model()))
    print("load average %.1f on %d CPUs (wall times are only meaningful on a quiet machine; the CPU time"
          " of a 1-thread step is robust to load)" % (os.getloadavg()[0], os.cpu_count()))
    print("%-22s %7s %10s %12s %7s %10s %12s %7s %9s %7s" % ("training step", "threads", "stock ms", "bitexact ms",
                                                             "ratio", "stock cpu", "bitexact cpu", "ratio", "pool ms",
                                                             "ratio"))
    for name, case in (("digits CNN (b=32)", cnn_case), ("transformer block", block_case)):
        for th in (1, 2):
            s, sc = time_steps(case, False, th, a.steps)
            b, bc = time_steps(case, True, th, a.steps)
            pool = "%9s %7s" % ("-", "-")
            if th > 1:
                q, _ = time_steps(case, True, th, a.steps, backend="pool")
                pool = "%9.3f %7.2f" % (q * 1e3, q / s)
            print("%-22s %7d %10.3f %12.3f %7.2f %10.3f %12.3f %7.2f %s" % (name, th, s * 1e3, b * 1e3, b / s, sc * 1e3,
                                                                           bc * 1e3, bc / sc, pool))


if __name__ == "__main__":
    main()
