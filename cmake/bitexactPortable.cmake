# cmake/bitexactPortable.cmake - one build of a compiled artifact that runs every ISA of the CPU
# at full speed, with the same bits (OpenBLAS DYNAMIC_ARCH / Highway style, made ODR-safe).
#
#   bitexact_add_portable_library(<name>
#     KERNELS  <sources>   compiled once per variant into MODULE lib<name>_<variant>.so
#     DISPATCH <sources>   the front library lib<name>.so (SHARED, baseline flags, no arithmetic)
#     ENTRY    <symbol>    the one extern "C" symbol each variant exports (e.g. a function table)
#     EXPORTS  <patterns>  symbols the front library exports (version-script globs; default <name>_*)
#     [LINK_LIBRARIES <libs>]  linked to every variant module (e.g. torch)
#     [VARIANTS <list>])   default: sse2 avx2 avx512 on x86-64, neon on aarch64, else scalar
#
# Why modules: inline functions and templates (bitexact's, xsimd's, the standard library's)
# compiled with -mavx512f in one translation unit and baseline flags in another are one
# symbol to the linker, which keeps one copy: an AVX-512 copy reached from baseline code
# raises SIGILL on an older CPU, and a baseline copy in a kernel changes its code path. Here
# each variant is its own shared object, compiled with only its flags, -fvisibility=hidden,
# and linked with a version script exporting only ENTRY: every other symbol is local, bound
# inside the module at link time. The front library loads the module with dlopen(RTLD_LOCAL)
# (bitexact/portable/dispatch.hpp), so no module's symbols reach another's lookup either.
#
# The front library gets BITEXACT_PORTABLE_MODULE_PREFIX ("lib<name>_"),
# BITEXACT_PORTABLE_VARIANTS ("sse2,avx2,avx512") and BITEXACT_PORTABLE_ENTRY (ENTRY) as
# compile definitions for bitexact::portable::dispatcher. Each module gets
# BITEXACT_PORTABLE_VARIANT=<variant>. The modules are written next to the front library
# (and installed next to it by whoever installs it).
include_guard(GLOBAL)
find_package(Threads REQUIRED)

function(bitexact_portable_variant_flags variant out)
  if(variant STREQUAL "avx2")
    set(flags -mavx2 -mfma)
  elseif(variant STREQUAL "avx512")
    set(flags -mavx512f -mavx512cd -mavx512dq -mavx512bw -mavx2 -mfma)
  else()  # sse2 (x86-64 baseline), neon (aarch64 baseline), scalar
    set(flags)
  endif()
  set(${out} ${flags} PARENT_SCOPE)
endfunction()

function(bitexact_add_portable_library name)
  cmake_parse_arguments(P "" "ENTRY" "KERNELS;DISPATCH;EXPORTS;LINK_LIBRARIES;VARIANTS" ${ARGN})
  if(NOT P_KERNELS OR NOT P_DISPATCH OR NOT P_ENTRY)
    message(FATAL_ERROR "bitexact_add_portable_library(${name}): KERNELS, DISPATCH and ENTRY are required")
  endif()
  if(NOT CMAKE_SYSTEM_NAME MATCHES "Linux|BSD|GNU")
    message(FATAL_ERROR "bitexact_add_portable_library(${name}): needs ELF shared objects and dlopen")
  endif()
  if(NOT P_VARIANTS)
    if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64|amd64")
      set(P_VARIANTS sse2 avx2 avx512)
    elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
      set(P_VARIANTS neon)
    else()
      set(P_VARIANTS scalar)
    endif()
  endif()
  if(NOT P_EXPORTS)
    set(P_EXPORTS "${name}_*")
  endif()
  set(gen ${CMAKE_CURRENT_BINARY_DIR}/${name}_portable)
  file(WRITE ${gen}/module.map "{ global: ${P_ENTRY}; local: *; };\n")
  list(JOIN P_EXPORTS "; " exports)
  file(WRITE ${gen}/front.map "{ global: ${exports}; local: *; };\n")

  add_library(${name} SHARED ${P_DISPATCH})
  target_link_libraries(${name} PRIVATE bitexact::bitexact ${CMAKE_DL_LIBS})
  list(JOIN P_VARIANTS "," variants_csv)
  target_compile_definitions(${name} PRIVATE BITEXACT_PORTABLE_MODULE_PREFIX="lib${name}_"
    BITEXACT_PORTABLE_VARIANTS="${variants_csv}" BITEXACT_PORTABLE_ENTRY="${P_ENTRY}")
  set_target_properties(${name} PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_link_options(${name} PRIVATE -Wl,--version-script=${gen}/front.map -Wl,--no-undefined)
  set_property(TARGET ${name} APPEND PROPERTY LINK_DEPENDS ${gen}/front.map)

  foreach(v IN LISTS P_VARIANTS)
    set(mod ${name}_${v})
    add_library(${mod} MODULE ${P_KERNELS})
    bitexact_portable_variant_flags(${v} flags)
    target_compile_options(${mod} PRIVATE ${flags})
    target_compile_definitions(${mod} PRIVATE BITEXACT_PORTABLE_VARIANT="${v}")
    target_link_libraries(${mod} PRIVATE bitexact::bitexact Threads::Threads ${P_LINK_LIBRARIES})
    set_target_properties(${mod} PROPERTIES PREFIX "lib" CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
    target_link_options(${mod} PRIVATE -Wl,--version-script=${gen}/module.map -Wl,--no-undefined)
    set_property(TARGET ${mod} APPEND PROPERTY LINK_DEPENDS ${gen}/module.map)
    add_dependencies(${name} ${mod})
  endforeach()
  set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}
    BITEXACT_PORTABLE_VARIANTS "${P_VARIANTS}")
endfunction()
