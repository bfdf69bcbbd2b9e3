// bitexact/core/config.hpp - compiler guards and portability macros shared by every header.
#pragma once

#if defined(__FAST_MATH__)
#error "bitexact: refusing to compile in fast-math mode (__FAST_MATH__): it reorders and contracts floating-point operations, which breaks the bit-exactness contract."
#endif
#if defined(__USE_FAST_MATH__)
#error "bitexact: refusing to compile under nvcc --use_fast_math: it replaces IEEE operations with approximations."
#endif
#if defined(__FINITE_MATH_ONLY__) && __FINITE_MATH_ONLY__
#error "bitexact: refusing to compile with finite-math-only (__FINITE_MATH_ONLY__)."
#endif

#if defined(__CUDACC__)
#define BITEXACT_HD __host__ __device__
#define BITEXACT_DEVICE_CODE_ENABLED 1
#else
#define BITEXACT_HD
#endif

#if defined(__CUDA_ARCH__)
#define BITEXACT_IN_DEVICE_PASS 1
#endif

#define BITEXACT_VERSION_MAJOR 0
#define BITEXACT_VERSION_MINOR 1
#define BITEXACT_VERSION_PATCH 0

namespace bitexact {
/// Version of the canonical order of the random-number family. Bumped (and called out in
/// CHANGELOG.md) whenever any generated bit changes; golden hashes in tests/random_test.cpp
/// pin it.
inline constexpr int random_order_version = 1;
}  // namespace bitexact
