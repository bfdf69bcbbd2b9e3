# Cross-architecture check (DESIGN 2.2 and 2.3 on another CPU family): builds bitexact-audit for
# aarch64 (NEON) with the Debian cross compiler, runs it under qemu-user, and requires
# (1) every configuration on the emulated aarch64 CPU, NEON included, to agree with the
#     reference computed there, and
# (2) the reference hashes there to equal those of the native (x86-64) audit.
# Skips (exit code 77) when aarch64-linux-gnu-g++ or qemu-aarch64 is missing.
# Inputs: -DSRC=<source dir> -DWORK=<scratch dir> -DNATIVE_AUDIT=<path of the native audit>
find_program(CROSS_CXX aarch64-linux-gnu-g++)
find_program(QEMU qemu-aarch64)
if(NOT CROSS_CXX OR NOT QEMU)
  message("SKIP: aarch64-linux-gnu-g++ or qemu-aarch64 not found (apt-get install g++-aarch64-linux-gnu qemu-user)")
  cmake_language(EXIT 77)
endif()
file(MAKE_DIRECTORY ${WORK})
set(N 20011)
execute_process(
  COMMAND ${CROSS_CXX} -std=c++17 -O2 -ffp-contract=off -static -pthread -I${SRC}/include
          ${SRC}/tools/bitexact_audit.cpp -o ${WORK}/bitexact-audit-aarch64
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cross compile failed:\n${err}")
endif()
# The lowered grain (cpu/threads.hpp test hook) makes threads {2, 3, 4, 7, 8} really split
# every family's work at this size; the audit reports the splits that ran.
execute_process(COMMAND ${CMAKE_COMMAND} -E env BITEXACT_MIN_WORK_PER_THREAD=64
                        ${QEMU} ${WORK}/bitexact-audit-aarch64 --n ${N} --no-timing
                RESULT_VARIABLE rc OUTPUT_VARIABLE arm)
message("${arm}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the aarch64 audit found configurations that disagree (exit ${rc})")
endif()
if(NOT arm MATCHES "cpu neon t=")
  message(FATAL_ERROR "the aarch64 audit did not run the NEON kernels")
endif()
foreach(t 2 3 4 7 8)
  if(NOT arm MATCHES "parallel regions ran on threads:[0-9 ]* ${t}[ \n]")
    message(FATAL_ERROR "the aarch64 audit ran no parallel region on ${t} threads")
  endif()
endforeach()
execute_process(COMMAND ${NATIVE_AUDIT} --n ${N} --no-timing RESULT_VARIABLE rc OUTPUT_VARIABLE native)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the native audit failed (exit ${rc})")
endif()
string(REGEX MATCHALL "[^\n]* reference [^\n]*" arm_ref "${arm}")
string(REGEX MATCHALL "[^\n]* reference [^\n]*" native_ref "${native}")
list(LENGTH native_ref count)
if(count EQUAL 0 OR NOT arm_ref STREQUAL native_ref)
  message(FATAL_ERROR "reference hashes differ between aarch64 and this CPU:\naarch64:\n${arm_ref}\nnative:\n${native_ref}")
endif()
message("aarch64 (NEON, under qemu) and this CPU agree on all ${count} reference hashes")
