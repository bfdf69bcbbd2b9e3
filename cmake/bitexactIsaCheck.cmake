# cmake/bitexactIsaCheck.cmake - one line at configure time when the project that uses bitexact
# compiles for the x86-64 baseline only: the header-only library then runs SSE2 kernels even on
# an AVX-512 CPU (ISAs are compiled in from the compiler flags; README "Portable builds").
# Checked once per configure, on the flags every target gets (CMAKE_CXX_FLAGS and those of the
# build type), by compiling a file that needs __AVX2__; flags set on one target only
# (target_compile_options) are not seen: silence with -DBITEXACT_ISA_WARNING=OFF.
include_guard(GLOBAL)
include(CheckCXXSourceCompiles)

function(bitexact_check_isa_flags)
  get_property(done GLOBAL PROPERTY BITEXACT_ISA_CHECK_DONE)
  if(done OR (DEFINED BITEXACT_ISA_WARNING AND NOT BITEXACT_ISA_WARNING))
    return()
  endif()
  set_property(GLOBAL PROPERTY BITEXACT_ISA_CHECK_DONE ON)
  if(NOT CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$" OR NOT CMAKE_CXX_COMPILER_LOADED)
    return()  # aarch64: NEON is the baseline
  endif()
  string(TOUPPER "${CMAKE_BUILD_TYPE}" cfg)
  set(flags "${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${cfg}}")
  string(MD5 key "${CMAKE_CXX_COMPILER};${flags}")
  set(CMAKE_REQUIRED_FLAGS "${CMAKE_CXX_FLAGS_${cfg}}")
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles("#ifndef __AVX2__\n#error baseline\n#endif\nint main() { return 0; }"
                            BITEXACT_FLAGS_AVX2_${key})
  if(NOT BITEXACT_FLAGS_AVX2_${key})
    message(NOTICE "bitexact: warning: C++ flags target the x86-64 baseline, so bitexact runs its SSE2 kernels on any CPU; add -march=native (or -mavx2 -mfma, or the AVX-512 flags in README 'Portable builds'), or -DBITEXACT_ISA_WARNING=OFF")
  endif()
endfunction()
