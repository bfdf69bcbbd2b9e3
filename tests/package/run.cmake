# Configures, builds and runs tests/package/consumer against bitexact, either through
# add_subdirectory (MODE=subdirectory) or from an install prefix (MODE=find_package).
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}")
  endif()
endfunction()
set(consumer ${SRC}/tests/package/consumer)
if(MODE STREQUAL "subdirectory")
  run(${CMAKE_COMMAND} -S ${consumer} -B ${WORK}/build -DBITEXACT_SOURCE_DIR=${SRC} -DBITEXACT_ENABLE_CUDA=OFF)
else()
  # The header-only package: the compiled artifacts (BLAS, torch ops, examples) are not built here.
  run(${CMAKE_COMMAND} -S ${SRC} -B ${WORK}/lib -DBITEXACT_BUILD_TESTS=OFF -DBITEXACT_BUILD_BENCHMARKS=OFF
      -DBITEXACT_BUILD_BLAS=OFF -DBITEXACT_BUILD_TORCH=OFF -DBITEXACT_BUILD_EXAMPLES=OFF
      -DBITEXACT_BUILD_TOOLS=OFF -DBITEXACT_ENABLE_CUDA=OFF -DBITEXACT_INSTALL=ON -DCMAKE_INSTALL_PREFIX=${WORK}/prefix)
  run(${CMAKE_COMMAND} --install ${WORK}/lib)
  run(${CMAKE_COMMAND} -S ${consumer} -B ${WORK}/build -DCMAKE_PREFIX_PATH=${WORK}/prefix)
endif()
# The consumer builds for the x86-64 baseline: configure says so in one line (bitexactIsaCheck);
# with -mavx2 -mfma it says nothing.
if(CMAKE_HOST_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  foreach(flags "" "-mavx2 -mfma")
    execute_process(COMMAND ${CMAKE_COMMAND} -S ${consumer} -B ${WORK}/build "-DCMAKE_CXX_FLAGS=${flags}"
                    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "reconfigure failed: ${err}")
    endif()
    string(FIND "${out}${err}" "bitexact: warning: C++ flags target the x86-64 baseline" at)
    if(flags STREQUAL "" AND at EQUAL -1)
      message(FATAL_ERROR "no ISA warning for a baseline consumer:\n${out}${err}")
    elseif(NOT flags STREQUAL "" AND NOT at EQUAL -1)
      message(FATAL_ERROR "ISA warning although the consumer builds with ${flags}")
    endif()
  endforeach()
endif()
run(${CMAKE_COMMAND} --build ${WORK}/build)
run(${WORK}/build/consumer)
