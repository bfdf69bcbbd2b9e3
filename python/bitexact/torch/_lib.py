"""Loads the op library (torch.ops.bitexact.*) built by CMake from the public headers.

Search order: $BITEXACT_TORCH_LIBRARY, then libbitexact_torch.so next to this file (where the
CMake target writes it)."""
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
    return path


LIBRARY_PATH = _load()
ops = torch.ops.bitexact


def set_isa(name):
    """Use this SIMD instruction set ('scalar', 'sse2', 'avx2', 'avx512', 'auto'); never changes bits."""
    ops.set_isa(name)


def isa():
    """The ISA bitexact's ops use now."""
    return ops.isa()


def tag_of(name):
    """32-bit FNV-1a tag of a string, as bitexact::tag_of."""
    return int(ops.tag_of(name)) & 0xFFFFFFFF
