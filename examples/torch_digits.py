"""Reproducible training and prediction with bitexact.torch on sklearn's digits.

    PYTHONPATH=python /usr/bin/python3 examples/torch_digits.py [--epochs 4] [--quick]

A small CNN (conv, ReLU, max-pool, dropout, linear, cross-entropy), unchanged torch modules run
under bitexact.torch.patch(strict=True); shuffling by bitexact's Sampler (seed, epoch), dropout
keyed by (seed, step, layer, sample index), initial weights keyed by (seed, parameter name).
Prints:
  1. stock torch: what find_nondeterminism finds, and the final weights' hash at threads 1, 2, 3;
  2. bitexact: the final weights' hash at threads 1, 2, 3 and every ISA (equal); training stopped
     at an epoch boundary, saved with torch.save, resumed in a new process: the same final
     weights; predictions of the reloaded model on the whole evaluation set in batches of 1, 7
     and 64 equal those made at the end of training, bit for bit.
Exit status 1 if any bitexact row disagrees.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import tempfile

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
import bitexact.torch as bt  # noqa: E402

SEED = 2024
BATCH = 32


def load_data():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    order = bt.data.epoch_order(len(y), SEED, 0)  # a fixed train/eval split
    tr, ev = order[:1500], order[1500:]
    return x[tr], y[tr], x[ev], y[ev]


def make_model():
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Dropout(0.25), torch.nn.Linear(32 * 2 * 2, 10))


def weights_hash(model):
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def new_run():
    model = make_model()
    bt.init.reset_parameters(model, SEED)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    return model, opt


def train(model, opt, xtr, ytr, first_epoch, last_epoch, use_bitexact=True, n_train=None):
    """Epochs [first_epoch, last_epoch); the global step is epoch * steps_per_epoch + k."""
    n = n_train or len(ytr)
    sampler = bt.Sampler(n, SEED)
    steps_per_epoch = (n + BATCH - 1) // BATCH
    ctx = bt.patch(strict=True) if use_bitexact else None
    try:
        model.train()
        for epoch in range(first_epoch, last_epoch):
            sampler.set_epoch(epoch)
            for k, idx in enumerate(sampler.batches(BATCH)):
                step = epoch * steps_per_epoch + k
                with bt.keyed(SEED, step, sample_ids=idx):
                    loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
    finally:
        if ctx is not None:
            ctx.close()
    return model


@torch.no_grad()
def predict(model, x, batch):
    model.eval()
    with bt.patch(strict=True):
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])


def same(a, b):
    return a.shape == b.shape and torch.equal(a.view(torch.int32), b.view(torch.int32))


def nondeterminism_case():
    """(model, inputs) for `python3 -m bitexact.torch.find_nondeterminism --demo`."""
    _, _, xev, _ = load_data()
    model, _ = new_run()
    return model.train(), (xev[:64],)


def resume_main(ckpt, out, epochs, n_train):
    """In a fresh process: load the checkpoint, finish training, save weights and predictions."""
    xtr, ytr, xev, _ = load_data()
    state = torch.load(ckpt)
    model, opt = new_run()
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optim"])
    assert state["seed"] == SEED
    train(model, opt, xtr, ytr, state["epoch"], epochs, n_train=n_train)
    torch.save({"model": model.state_dict(), "pred": predict(model, xev, 64)}, out)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="fewer samples and configurations (tests)")
    ap.add_argument("--resume", nargs=2, metavar=("CKPT", "OUT"), help=argparse.SUPPRESS)
    ap.add_argument("--n-train", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.resume:
        resume_main(a.resume[0], a.resume[1], a.epochs, a.n_train)
        return 0
    n_train = 320 if a.quick else None
    xtr, ytr, xev, yev = load_data()
    old_threads = torch.get_num_threads()
    rows, ok = [], True

    # 1. stock torch
    model, _ = new_run()
    report = bt.find_nondeterminism(model.train(), (xev[:64],), threads=(1, 2, 3), with_patch=False, verbose=False)
    for conf, found in report["torch"]["rows"]:
        rows.append(("stock torch, find_nondeterminism: " + conf, found[0] if found else "bit-identical"))
    stock = []
    for th in (1, 2, 3):
        torch.set_num_threads(th)
        torch.manual_seed(SEED)
        m, o = new_run()
        stock.append(weights_hash(train(m, o, xtr, ytr, 0, a.epochs, use_bitexact=False, n_train=n_train)))
    rows.append(("stock torch, final weights at threads 1/2/3", " ".join(stock)))

    # 2. bitexact: threads x ISAs
    isas = bt.available_isas()  # every ISA this CPU has (each runs in its own kernel module)
    configs = [(th, i) for i in isas for th in (1, 2, 3)]
    if a.quick:
        configs = [(1, isas[-1]), (2, isas[0]), (3, isas[-1])]
    hashes = {}
    for th, isa in configs:
        bt.set_isa(isa)
        torch.set_num_threads(th)
        m, o = new_run()
        hashes[(th, isa)] = weights_hash(train(m, o, xtr, ytr, 0, a.epochs, n_train=n_train))
    bt.set_isa("auto")
    torch.set_num_threads(2)
    equal = len(set(hashes.values())) == 1
    ok &= equal
    rows.append(("bitexact, final weights at threads %s x ISAs %s" % (
        "/".join(str(t) for t in sorted({t for t, _ in configs})), "/".join(sorted({i for _, i in configs}))),
        "%s (%d runs, %s)" % (next(iter(hashes.values())), len(hashes), "all equal" if equal else "DIFFER: %s" % hashes)))

    # uninterrupted run, its end-of-training predictions; checkpoint at an epoch boundary
    full, fo = new_run()
    half = a.epochs // 2
    train(full, fo, xtr, ytr, 0, half, n_train=n_train)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt, out = os.path.join(tmp, "ckpt.pt"), os.path.join(tmp, "resumed.pt")
        torch.save({"model": full.state_dict(), "optim": fo.state_dict(), "seed": SEED, "epoch": half}, ckpt)
        train(full, fo, xtr, ytr, half, a.epochs, n_train=n_train)
        pred = predict(full, xev, 64)
        cmd = [sys.executable, os.path.abspath(__file__), "--epochs", str(a.epochs), "--resume", ckpt, out]
        if n_train:
            cmd += ["--n-train", str(n_train)]
        subprocess.run(cmd, check=True)
        resumed = torch.load(out)
        r_model, _ = new_run()
        r_model.load_state_dict(resumed["model"])
    resume_ok = weights_hash(r_model) == weights_hash(full)
    ok &= resume_ok
    rows.append(("bitexact, stopped after epoch %d, torch.save, resumed in a new process" % half,
                 "%s vs uninterrupted %s: %s" % (weights_hash(r_model), weights_hash(full),
                                                 "equal" if resume_ok else "DIFFER")))
    preds_ok = same(resumed["pred"], pred)
    for b in (1, 7, 64):
        preds_ok &= same(predict(r_model, xev, b), pred)
    ok &= preds_ok
    acc = float((pred.argmax(1) == yev).float().mean())
    rows.append(("bitexact, reloaded model's predictions (%d images) in batches 1/7/64" % len(yev),
                 ("equal to end of training, bit for bit" if preds_ok else "DIFFER") + " (accuracy %.3f)" % acc))
    torch.set_num_threads(old_threads)

    w = max(len(r[0]) for r in rows)
    print("torch %s, BLAS: %s, CPU: %s" % (torch.__version__, blas_name(), cpu_model()))
    for k, v in rows:
        print("%-*s  %s" % (w, k, v))
    return 0 if ok else 1


def blas_name():
    try:
        return os.path.realpath("/etc/alternatives/libblas.so.3-x86_64-linux-gnu")
    except OSError:
        return "unknown"


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


if __name__ == "__main__":
    sys.exit(main())
