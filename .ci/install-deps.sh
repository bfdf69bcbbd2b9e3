#!/usr/bin/env bash
# Installs what a fresh machine lacks (the base image has g++, cmake, GoogleTest, Google
# Benchmark and CUDA). Idempotent; needs root (or sudo) for apt-get.
set -euo pipefail
need=()
[ -f /usr/include/xsimd/xsimd.hpp ] || need+=(libxsimd-dev)
[ -f /usr/include/Random123/philox.h ] || need+=(librandom123-dev)
command -v ccache >/dev/null || need+=(ccache)
# aarch64 cross check (tests/cross): NEON kernels under qemu-user
command -v aarch64-linux-gnu-g++ >/dev/null || need+=(g++-aarch64-linux-gnu)
command -v qemu-aarch64 >/dev/null || need+=(qemu-user)
# MPI for bitexact/mpi.hpp and its mpirun tests (tests/mpi_test.cpp).
[ -f /usr/include/x86_64-linux-gnu/openmpi/mpi.h ] || [ -f /usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h ] || \
  dpkg -s libopenmpi-dev >/dev/null 2>&1 || need+=(libopenmpi-dev)
command -v mpirun >/dev/null || need+=(openmpi-bin)
# OpenBLAS: the cblas_sdot peer of benchmarks/reduce_bench (optional there, installed here).
[ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ] || need+=(libopenblas-dev)
# PyTorch drop-in (python/): Debian's torch 1.13 for /usr/bin/python3, libtorch for the op
# library, pytest for its tests, sklearn for the digits demo.
for p in python3-torch libtorch-dev python3-pytest python3-numpy python3-sklearn; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
