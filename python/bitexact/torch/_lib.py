"""Loads the op library (torch.ops.bitexact.*) built by CMake from the public headers.

Search order: $BITEXACT_TORCH_LIBRARY, then libbitexact_torch.so next to this file (where the
CMake target writes it). The library is portable: its kernels are built once per ISA into modules
libbitexact_torch_<variant>.so next to it, one of which it loads (BITEXACT_ISA, else the best
ISA of this CPU); a bad BITEXACT_ISA fails the import with the reason."""
import os

import torch

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load():
    path = os.environ.get("BITEXACT_TORCH_LIBRARY") or os.path.join(_HERE, "libbitexact_torch.so")
    if not os.path.exists(path):
        raise ImportError(
            "bitexact.torch: the op library was not found at %s; build it with "
            "`cmake -S . -B build && cmake --build build --target bitexact_torch` "
            "(or set BITEXACT_TORCH_LIBRARY)" % path)
    torch.ops.load_library(path)
    try:
        torch.ops.bitexact.isa()  # the ISA chosen at load; raises if none could be
    except RuntimeError as e:
        raise ImportError("bitexact.torch: %s" % str(e).splitlines()[0]) from None
    return path


LIBRARY_PATH = _load()
ops = torch.ops.bitexact


def set_isa(name):
    """Use this SIMD instruction set ('scalar', 'sse2', 'avx2', 'avx512', 'auto'); never changes bits."""
    ops.set_isa(name)


def isa():
    """The ISA bitexact's ops use now (chosen at load: BITEXACT_ISA, else the best of this CPU)."""
    return ops.isa()


def isa_variant():
    """The kernel module running it: 'sse2', 'avx2', 'avx512' (x86-64), 'neon' (aarch64); 'scalar'
    runs in the baseline module."""
    return ops.isa_variant()


def threads_backend():
    """Whose threads run bitexact's parallel regions: 'torch' (torch's intra-op threads through
    at::parallel_for, the default: one set of threads for torch's ops and ours) or 'pool'
    (bitexact's own workers). Never changes a bit."""
    return ops.threads_backend()


def set_threads_backend(name):
    """'torch' or 'pool' (see threads_backend); never changes bits."""
    ops.set_threads_backend(name)


def available_isas():
    """The ISAs this CPU has and this build has a kernel module for, narrowest first."""
    return list(ops.available_isas())


def tag_of(name):
    """32-bit FNV-1a tag of a string, as bitexact::tag_of."""
    return int(ops.tag_of(name)) & 0xFFFFFFFF
