"""The digits demo (examples/torch_digits.py) in its quick form: bitexact's final weights equal at
several thread counts and ISAs, checkpoint/resume in a new process equal to the uninterrupted run,
reloaded predictions equal in batches of 1, 7 and 64 (the script exits 1 otherwise)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def test_digits_demo_quick():
    pytest.importorskip("sklearn")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "torch_digits.py"), "--quick", "--epochs", "2"],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all equal" in r.stdout
    assert "uninterrupted" in r.stdout and ": equal" in r.stdout
    assert "equal to end of training, bit for bit" in r.stdout


def test_find_nondeterminism_cli_demo():
    pytest.importorskip("sklearn")
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "python"))
    r = subprocess.run([sys.executable, "-m", "bitexact.torch.find_nondeterminism", "--demo", "--threads", "1,2"],
                       capture_output=True, text=True, timeout=600, env=env)
    assert "== torch ==" in r.stdout and "== bitexact.patch ==" in r.stdout, r.stdout + r.stderr
    patched = r.stdout.split("== bitexact.patch ==")[1]
    assert "threads=2 vs 1" in patched and "differ" not in patched, r.stdout
    assert r.returncode == 0
