#!/usr/bin/env bash
# Installs what a fresh machine lacks (the base image has g++, cmake, GoogleTest, Google
# Benchmark and CUDA). Idempotent; needs root (or sudo) for apt-get.
set -euo pipefail
need=()
[ -f /usr/include/xsimd/xsimd.hpp ] || need+=(libxsimd-dev)
[ -f /usr/include/Random123/philox.h ] || need+=(librandom123-dev)
command -v ccache >/dev/null || need+=(ccache)
# OpenBLAS: the cblas_sdot peer of benchmarks/reduce_bench (optional there, installed here).
[ -f /usr/include/x86_64-linux-gnu/cblas.h ] || [ -f /usr/include/cblas.h ] || need+=(libopenblas-dev)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
