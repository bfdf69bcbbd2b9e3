# torch_install (ctest): installs the component `python` of the build BUILD into a fresh PREFIX,
# then imports the installed package with PYTHON (PYTHONPATH = PREFIX/PYDIR only, no
# BITEXACT_TORCH_LIBRARY) and checks that it loaded the library installed next to it, that every
# kernel module this CPU can run was installed, and that an op computes the C++ library's bits.
file(REMOVE_RECURSE "${PREFIX}")
execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BUILD}" --component python --prefix "${PREFIX}"
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --install --component python failed (${rc})")
endif()
set(site "${PREFIX}/${PYDIR}")
set(script "
import math, os, sys
import torch
import bitexact.torch as bt
site = sys.argv[1]
assert os.path.realpath(bt.__file__).startswith(os.path.realpath(site)), bt.__file__
assert os.path.realpath(bt.LIBRARY_PATH).startswith(os.path.realpath(site)), bt.LIBRARY_PATH
isas = bt.available_isas()
assert isas, 'no kernel module loaded'
x = torch.arange(1, 1001, dtype=torch.float32) / 7
want = None
for name in isas:
    bt.set_isa(name)
    got = bt.functional.sum(x).item()
    want = got if want is None else want
    assert got == want, (name, got, want)
exact = torch.tensor(math.fsum(x.double().tolist()), dtype=torch.float32).item()  # no double rounding here
assert bt.functional.sum(x, exact=True).item() == exact, (bt.functional.sum(x, exact=True).item(), exact)
print('installed package at', site, 'ISAs', isas, 'sum', want)
")
execute_process(COMMAND "${CMAKE_COMMAND}" -E env --unset=BITEXACT_TORCH_LIBRARY "PYTHONPATH=${site}"
                "${PYTHON}" -c "${script}" "${site}"
  WORKING_DIRECTORY "${PREFIX}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the installed bitexact.torch failed (${rc})")
endif()
