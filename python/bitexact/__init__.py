"""bitexact: deterministic compute primitives (C++ headers) and their framework bindings.

The PyTorch drop-in lives in ``bitexact.torch`` (needs the op library built by CMake, see the
README)."""

__all__ = ["torch"]
