"""The portable op library (cmake/bitexactPortable.cmake): one build, a kernel module per ISA,
chosen at load. Each ISA this CPU has, forced with BITEXACT_ISA in a fresh process, runs in its
own module and gives the same bits for every op (forward and backward) as every other; the
default is the best ISA of this CPU; a bad BITEXACT_ISA is a clear error."""
import hashlib
import os
import platform
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))

# Every op, forward and backward, float32 and float64 (test_ops' helpers), hashed output by output.
_PROGRAM = r"""
import sys, hashlib
sys.path.insert(0, %(tests)r); sys.path.insert(0, %(pkg)r)
import torch, bitexact.torch as bt
from conftest import bits
import test_ops as t

def conv_pool_gemm(dtype):
    x = t.rnd(16, 3, 20, 20, grad=True, dtype=dtype)
    w, b = t.rnd(8, 3, 3, 3, seed=1, grad=True, dtype=dtype), t.rnd(8, seed=2, grad=True, dtype=dtype)
    lw = t.rnd(10, 8 * 9 * 9, seed=3, grad=True, dtype=dtype)
    c = bt.conv2d(x, w, b, 1, 0)
    h = bt.max_pool2d(c, 2)
    a = bt.avg_pool2d(c, 3, 2, 1)
    g = bt.adaptive_avg_pool2d(c, (5, 3))
    y = bt.linear(h.reshape(16, -1), lw)
    loss = bt.sum(y * t.rnd(*y.shape, seed=5, dtype=dtype)) + bt.sum(a) + bt.sum(g * g)
    outs = [c, h, a, g, y] + list(torch.autograd.grad(loss, (x, w, b, lw)))
    p, q = t.rnd(4, 30, 70, seed=6, dtype=dtype), t.rnd(70, 50, seed=7, dtype=dtype)
    outs += [bt.matmul(p, q), bt.bmm(p, t.rnd(4, 70, 9, seed=8, dtype=dtype)), bt.ops.ref_mm(p[0], q)]
    outs += [bt.ops.trunc_normal([5000], 1, 2, 3, -1.0, 1.5, dtype == torch.float64),
             bt.ops.random([5000], "uniform", 1, 2, 3, 7, dtype == torch.float64)]
    return outs

torch.set_num_threads(%(threads)d)
outs = t._all_ops_outputs() + conv_pool_gemm(torch.float32) + conv_pool_gemm(torch.float64)
print(bt.isa(), bt.isa_variant(), " ".join(hashlib.sha256(bits(o).numpy().tobytes()).hexdigest()[:16] for o in outs))
"""


def run(env_isa, threads=2, code=None):
    env = dict(os.environ)
    env.pop("BITEXACT_ISA", None)
    if env_isa is not None:
        env["BITEXACT_ISA"] = env_isa
    code = code or _PROGRAM % {"tests": HERE, "pkg": os.path.join(HERE, ".."), "threads": threads}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=900)


def cpu_flags():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    return set()


def best_isa_of_this_cpu():
    """Read from /proc/cpuinfo, independently of the library's own detection."""
    m = platform.machine()
    if m in ("aarch64", "arm64"):
        return "neon"
    f = cpu_flags()
    if {"avx512f", "avx512cd", "avx512dq", "avx512bw", "avx2", "fma"} <= f:
        return "avx512"
    if {"avx2", "fma"} <= f:
        return "avx2"
    return "sse2"


def isas_of_this_cpu():
    m = platform.machine()
    if m in ("aarch64", "arm64"):
        return ["scalar", "neon"]
    order = ["scalar", "sse2", "avx2", "avx512"]
    return order[:order.index(best_isa_of_this_cpu()) + 1]


def expected_variant(isa):
    return ("neon" if platform.machine() in ("aarch64", "arm64") else "sse2") if isa == "scalar" else isa


def test_library_lists_every_isa_of_this_cpu():
    import bitexact.torch as bt
    assert bt.available_isas() == isas_of_this_cpu()
    assert os.path.basename(bt.LIBRARY_PATH) == "libbitexact_torch.so"
    for isa in bt.available_isas():
        module = os.path.join(os.path.dirname(bt.LIBRARY_PATH), "libbitexact_torch_%s.so" % expected_variant(isa))
        assert os.path.exists(module), module


def test_every_isa_gives_the_same_bits_for_every_op():
    results = {}
    for isa in isas_of_this_cpu():
        r = run(isa, threads=3)
        assert r.returncode == 0, "BITEXACT_ISA=%s:\n%s" % (isa, r.stderr[-3000:])
        name, variant, *hashes = r.stdout.split()
        assert (name, variant) == (isa, expected_variant(isa)), r.stdout[:200]
        results[isa] = hashes
    assert len(results) >= 2
    first = results["scalar"]
    assert len(first) > 60
    for isa, hashes in results.items():
        diff = [i for i, (a, b) in enumerate(zip(first, hashes)) if a != b]
        assert not diff, "BITEXACT_ISA=%s differs from scalar in outputs %s" % (isa, diff)


def test_default_is_the_best_isa_of_this_cpu():
    r = run(None, code="import sys; sys.path.insert(0, %r); import bitexact.torch as bt; print(bt.isa(), bt.isa_variant())"
            % os.path.join(HERE, ".."))
    assert r.returncode == 0, r.stderr
    best = best_isa_of_this_cpu()
    assert r.stdout.split() == [best, best]


@pytest.mark.parametrize("value,reason", [("avx3", "unknown ISA 'avx3'"),
                                          ("neon" if platform.machine() not in ("aarch64", "arm64") else "avx2",
                                           "this CPU lacks it")])
def test_bad_override_is_a_clear_error(value, reason):
    r = run(value, code="import sys; sys.path.insert(0, %r); import bitexact.torch" % os.path.join(HERE, ".."))
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: bitexact.torch:"), last
    assert reason in last and "BITEXACT_ISA" in last, last


def test_set_isa_rejects_what_it_cannot_run():
    import bitexact.torch as bt
    with pytest.raises((RuntimeError, ValueError), match="unknown ISA 'avx3'"):
        bt.set_isa("avx3")
    bt.set_isa("scalar")
    assert (bt.isa(), bt.isa_variant()) == ("scalar", expected_variant("scalar"))
    bt.set_isa("auto")
    assert bt.isa() == (os.environ.get("BITEXACT_ISA") or best_isa_of_this_cpu())


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86-64 register names")
def test_each_module_is_compiled_for_its_isa_and_the_front_for_the_baseline():
    """The front library (torch glue) uses no AVX register; the avx2 module uses ymm, the avx512
    module zmm; in the sse2 module (and zmm in the avx2 one) only the functions the headers
    themselves compile for a wider ISA with __attribute__((target(...))), behind their own CPU
    check (gemm_exact_block_vnni, ...), use them (objdump of the built files)."""
    import re
    import shutil
    import bitexact.torch as bt
    objdump = shutil.which("objdump")
    if objdump is None:
        pytest.skip("objdump not found")
    folder = os.path.dirname(bt.LIBRARY_PATH)
    include = os.path.join(HERE, "..", "..", "include", "bitexact")
    targeted = set()
    for root, _, files in os.walk(include):
        for f in files:
            text = open(os.path.join(root, f)).read()
            for m in re.finditer(r"__attribute__\(\(target\(\"[^\"]*\"\)\)\)", text):
                targeted.add(re.findall(r"(\w+)\s*$", text[m.end():text.index("(", m.end())])[0])

    def mangled_base_name(fn):
        # A name objdump could not demangle (very long template arguments): the last name of
        # its nested name, _ZN[K]<len><name>...<len><name>I... or ...E.
        i = 3
        while i < len(fn) and fn[i] in "KVr":
            i += 1
        name = ""
        while i < len(fn) and fn[i].isdigit():
            j = i
            while fn[j].isdigit():
                j += 1
            n = int(fn[i:j])
            name, i = fn[j:j + n], j + n
        return name

    def base_name(fn):
        # The function's own name: template arguments removed first (they may name other
        # functions, e.g. gemm_exact_b_digits_avx512<float, conv_forward_exact<...>(...)::lambda>),
        # then the parameters, the scopes and the return type.
        if fn.startswith("_ZN"):
            return mangled_base_name(fn)
        prev = None
        while prev != fn:
            prev, fn = fn, re.sub(r"<[^<>]*>", "", fn)
        fn = re.sub(r"\(.*", "", fn).split("::")[-1].split()
        return fn[-1] if fn else ""

    def functions_using(name, regs):
        text = subprocess.run([objdump, "-d", "--no-show-raw-insn", "-C", os.path.join(folder, name)],
                              capture_output=True, text=True, check=True).stdout
        out, fn = set(), None
        for line in text.splitlines():
            m = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
            if m:
                fn = m.group(1)
            elif any(r in line for r in regs):
                out.add(base_name(fn))
        return out

    assert functions_using("libbitexact_torch.so", ("%ymm", "%zmm")) == set()
    assert functions_using("libbitexact_torch_sse2.so", ("%ymm", "%zmm")) <= targeted
    assert functions_using("libbitexact_torch_avx2.so", ("%zmm",)) <= targeted
    assert functions_using("libbitexact_torch_avx2.so", ("%ymm",)) - targeted
    assert functions_using("libbitexact_torch_avx512.so", ("%zmm",)) - targeted
