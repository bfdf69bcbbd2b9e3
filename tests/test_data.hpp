// Where the tests find tests/data (known-answer vectors, golden hashes).
//
// The build does not compile the data folder's absolute path into the tests: a clone at another
// path would then compile every test again (the path is part of each object's command line, and
// ccache's base_dir does not rewrite macro values). CMake passes BITEXACT_TEST_DATA_RELDIR, the
// folder relative to the test executable's own folder, which is the same in every clone; the
// environment variable BITEXACT_TEST_DATA_DIR, when set, overrides it (a test binary copied
// elsewhere).
#pragma once
#include <cstdlib>
#include <string>

#if defined(__linux__)
#include <unistd.h>
#endif

#ifndef BITEXACT_TEST_DATA_RELDIR
#error "tests/CMakeLists.txt defines BITEXACT_TEST_DATA_RELDIR (tests/data relative to the test binary)"
#endif

namespace bitexact_test {

/// The folder of the running executable, or "." where it cannot be read.
inline std::string executable_dir() {
#if defined(__linux__)
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n > 0) {
    const std::string exe(buf, static_cast<std::size_t>(n));
    const std::size_t slash = exe.rfind('/');
    if (slash != std::string::npos) return exe.substr(0, slash == 0 ? 1 : slash);
  }
#endif
  return ".";
}

/// tests/data: $BITEXACT_TEST_DATA_DIR if set, else BITEXACT_TEST_DATA_RELDIR next to the binary.
inline std::string data_dir() {
  if (const char* env = std::getenv("BITEXACT_TEST_DATA_DIR"); env != nullptr && *env != '\0') return env;
  return executable_dir() + "/" + BITEXACT_TEST_DATA_RELDIR;
}

/// The path of a file under tests/data.
inline std::string data_path(const std::string& file) { return data_dir() + "/" + file; }

}  // namespace bitexact_test
