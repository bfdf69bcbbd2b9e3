#!/usr/bin/env bash
# Installs what a fresh machine lacks (the base image has g++, cmake, GoogleTest, Google
# Benchmark and CUDA). Idempotent; needs root (or sudo) for apt-get.
# Each package is checked by its name (dpkg -s), never by a header or a command that another
# package may also ship (the base image's reference BLAS has cblas.h, for example, so a header
# check never installed OpenBLAS). Add a line per package; say what uses it.
set -euo pipefail
pkgs=(
  libxsimd-dev          # the SIMD layer of the library (xsimd 8)
  librandom123-dev      # Random123: the generators' oracle (random_test) and random_bench's peer
  ccache                # compiler cache used by the CI scripts
  g++-aarch64-linux-gnu # aarch64 cross check (tests/cross): NEON kernels ...
  qemu-user             # ... run under qemu-aarch64
  libopenmpi-dev        # bitexact/mpi.hpp and its mpirun tests (tests/mpi_test.cpp)
  openmpi-bin           # mpirun
  libopenblas-dev       # OpenBLAS: reduce_bench's cblas_sdot peer (and the GEMM peers)
  libdnnl-dev           # oneDNN: convolution peer
  python3-torch         # PyTorch (CPU) for the torch glue and its peers (/usr/bin/python3)
  libtorch-dev          # libtorch: the torch op library
  python3-sklearn       # python tests
  python3-matplotlib    # tools/bench_report.py: the report's charts
  python3-numpy
  python3-pytest        # python tests under CTest (tests/python, python/tests)
  clang                 # libFuzzer harnesses (tests/fuzz, .ci/hardening.sh)
)
need=()
for p in "${pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
