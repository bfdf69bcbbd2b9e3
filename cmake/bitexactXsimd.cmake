# Debian's xsimd 8.1 exports a target that links a non-existent 'xtl' target (xtl is only
# needed for xsimd's optional xtl::xcomplex support, which bitexact does not use). Provide an
# empty stand-in before finding xsimd so its imported target resolves.
if(NOT TARGET xtl)
  add_library(xtl INTERFACE IMPORTED)
endif()
find_package(xsimd 8 REQUIRED)
