"""numpy (Debian's python3-numpy, linked against libblas.so.3) under LD_PRELOAD=libbitexact_blas.so:
matmul, dot and matrix-vector products equal bitexact::gemm / bitexact::dot bit for bit.

Environment: BITEXACT_BLAS_LIB (the library's path), BLAS_GEMM_REF (tests/blas/blas_gemm_ref).
The library's call counters (bitexact_blas_calls) prove numpy reached our symbols: run without
LD_PRELOAD, the test fails (CTest's numpy_blas_not_preloaded checks that it does).
"""
import ctypes
import os
import subprocess
import sys
import tempfile

import numpy as np

lib = ctypes.CDLL(os.environ["BITEXACT_BLAS_LIB"])
lib.bitexact_blas_calls.restype = ctypes.c_ulonglong
lib.bitexact_blas_calls.argtypes = [ctypes.c_char_p]
lib.bitexact_blas_isa.restype = ctypes.c_char_p
REF = os.environ["BLAS_GEMM_REF"]
failures = []


def values(shape, seed, dtype):
    # 20-bit values in [-1, 1): exact in float32
    # 20-bit values in [-1, 1) (exact in float32); float64 gets full-precision normals, since
    # 20-bit doubles would make every product and sum exact and any order would agree.
    rng = np.random.default_rng(seed)
    if dtype == np.float64:
        return rng.standard_normal(shape)
    return ((rng.integers(0, 1 << 20, size=shape) / 524288.0) - 1.0).astype(dtype)


def ref(op, dtype, dims, arrays, out_n):
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, a in enumerate(arrays):
            p = os.path.join(d, f"in{i}.bin")
            np.ascontiguousarray(a).tofile(p)
            paths.append(p)
        out = os.path.join(d, "out.bin")
        tag = "f32" if dtype == np.float32 else "f64"
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        subprocess.run([REF, op, tag] + [str(x) for x in dims] + paths + [out], check=True, env=env)
        return np.fromfile(out, dtype=dtype, count=out_n)


def check(name, got, want, routines, before):
    after = sum(lib.bitexact_blas_calls(r.encode()) for r in routines)
    if after <= before:
        failures.append(f"{name}: numpy did not call libbitexact_blas ({'/'.join(routines)} count {before} -> {after})")
    g = np.ascontiguousarray(got).tobytes()
    w = np.ascontiguousarray(want).tobytes()
    if g != w:
        diff = np.count_nonzero(np.ascontiguousarray(got).ravel() != np.ascontiguousarray(want).ravel())
        failures.append(f"{name}: {diff} elements differ from bitexact")
    else:
        print(f"ok {name}")


def count(routines):
    return sum(lib.bitexact_blas_calls(r.encode()) for r in routines)


for dtype, p in ((np.float32, "s"), (np.float64, "d")):
    for (m, n, k) in ((67, 300, 600), (257, 129, 300), (1, 513, 257), (130, 1, 1000), (384, 256, 520)):
        a = values((m, k), m * 7 + k, dtype)
        b = values((k, n), n * 5 + k, dtype)
        want = ref("gemm", dtype, (m, n, k), (a, b), m * n).reshape(m, n)
        rs = [p + "gemm", p + "gemv", p + "dot"]
        before = count(rs)
        check(f"{dtype.__name__} A@B {m}x{n}x{k}", a @ b, want, rs, before)
        # Transposed storage: numpy passes CblasTrans (or swaps operands) - the same bits.
        at = np.ascontiguousarray(a.T).T
        bt = np.ascontiguousarray(b.T).T
        before = count(rs)
        check(f"{dtype.__name__} A^T-stored @ B^T-stored {m}x{n}x{k}", at @ bt, want, rs, before)
        before = count(rs)
        check(f"{dtype.__name__} np.dot {m}x{n}x{k}", np.dot(a, b), want, rs, before)
    # Matrix-vector and vector-vector products.
    m, k = 300, 1001
    a = values((m, k), 11, dtype)
    x = values((k,), 12, dtype)
    want = ref("gemm", dtype, (m, 1, k), (a, x), m)
    before = count([p + "gemv", p + "gemm"])
    check(f"{dtype.__name__} A@x {m}x{k}", a @ x, want, [p + "gemv", p + "gemm"], before)
    y = values((k,), 13, dtype)
    want = ref("dot", dtype, (k,), (x, y), 1)
    before = count([p + "dot"])
    check(f"{dtype.__name__} x@y {k}", np.array([x @ y], dtype=dtype), want, [p + "dot"], before)

print(f"libbitexact_blas: isa {lib.bitexact_blas_isa().decode()}, {lib.bitexact_blas_calls(None)} calls, "
      f"BITEXACT_NUM_THREADS={os.environ.get('BITEXACT_NUM_THREADS')}")
for f in failures:
    print("FAIL", f)
sys.exit(1 if failures else 0)
