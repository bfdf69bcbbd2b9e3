// bitexact/portable/dispatch.hpp - run-time choice of a per-ISA kernel module, for compiled
// artifacts (a BLAS library, a torch op library) that must run at full speed on any CPU from
// one build, with the same bits (DESIGN 2: the ISA never changes a bit).
//
// Header-only users compile bitexact with their own flags (README, "Portable builds"). A
// compiled artifact instead builds its kernels once per ISA variant, each into its own shared
// module (cmake/bitexactPortable.cmake: bitexact_add_portable_library), and a thin front
// library compiled for the baseline ISA loads the right one with dlopen(RTLD_LOCAL):
//   * each module is compiled with only its variant's flags, -fvisibility=hidden, and linked
//     with a version script that exports one C symbol (the entry): every inline function and
//     template instantiation (bitexact's, xsimd's and the standard library's) stays local to
//     its module, so the linker never merges an AVX-512 copy with a baseline one (the ODR/COMDAT
//     trap of mixing -m flags across translation units of one binary), and RTLD_LOCAL keeps the
//     modules out of each other's symbol lookup;
//   * the front library is compiled without -m flags and does no arithmetic: it reads the CPU's
//     features, picks the variant and forwards calls through the entry's function table, passing
//     the ISA explicitly (bitexact::execution), so the kernels never consult global state.
// Choice: the ISA given to select(), else the environment variable BITEXACT_ISA, else the best
// ISA of this CPU among the variants built. ISA -> variant: scalar runs in the baseline variant
// (the first one), every other ISA in the variant named after it.
//
// Linux and other ELF systems (dlopen, dladdr). Not part of bitexact.hpp.
#pragma once
#include <dlfcn.h>
#include <stdlib.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "../cpu/isa.hpp"

namespace bitexact {
namespace portable {

/// One artifact's variants and modules, as bitexact_add_portable_library defines them for the
/// front library: module_prefix "libbitexact_ops_", variants "sse2,avx2,avx512", entry symbol.
class dispatcher {
 public:
  /// `anchor`: the address of any function in the front library (its folder holds the modules).
  dispatcher(const char* module_prefix, const char* variants_csv, const char* entry, const void* anchor)
      : prefix_(module_prefix), entry_(entry) {
    std::string v = variants_csv;
    for (std::size_t p = 0; p <= v.size();) {
      const std::size_t q = v.find(',', p);
      const std::string name = v.substr(p, q == std::string::npos ? std::string::npos : q - p);
      if (!name.empty()) variants_.push_back(name);
      if (q == std::string::npos) break;
      p = q + 1;
    }
    Dl_info info{};
    if (anchor != nullptr && dladdr(anchor, &info) != 0 && info.dli_fname != nullptr) {
      // The real file's folder: a library reached through a symlink elsewhere (Debian's
      // update-alternatives link for libblas.so.3) still finds its modules.
      char* real = ::realpath(info.dli_fname, nullptr);
      dir_ = real != nullptr ? real : info.dli_fname;
      std::free(real);
      const std::size_t slash = dir_.rfind('/');
      dir_ = slash == std::string::npos ? std::string(".") : dir_.substr(0, slash);
    }
  }

  /// The variant that runs `i` (scalar: the baseline variant), or "" if none was built.
  std::string variant_for(isa i) const {
    if (variants_.empty()) return "";
    if (i == isa::scalar) return variants_.front();
    for (const auto& v : variants_)
      if (v == isa_name(i)) return v;
    return "";
  }

  /// ISAs this CPU has and this artifact has a variant for, narrowest first.
  std::vector<isa> available() const {
    std::vector<isa> out;
    for (isa i : {isa::scalar, isa::sse2, isa::avx2, isa::avx512, isa::neon})
      // (the avx512 variant is compiled with AVX2+FMA too, as xsimd's avx512bw arch needs)
      if (cpu_has_isa(i) && (i != isa::avx512 || cpu_has_isa(isa::avx2)) && !variant_for(i).empty()) out.push_back(i);
    return out;
  }

  /// The ISA for a request (isa::automatic: BITEXACT_ISA, else the best available); throws
  /// std::invalid_argument when the CPU or the artifact lacks it.
  isa resolve(isa requested) const {
    if (requested == isa::automatic) {
      const char* env = std::getenv("BITEXACT_ISA");
      if (env != nullptr && *env != '\0') requested = parse_isa(env);
    }
    const std::vector<isa> av = available();
    if (requested == isa::automatic) {
      if (av.empty()) throw std::runtime_error("bitexact: no kernel variant of " + prefix_ + " runs on this CPU");
      return av.back();
    }
    for (isa i : av)
      if (i == requested) return i;
    throw std::invalid_argument(std::string("bitexact: ISA '") + isa_name(requested) + "' is not available (" +
                                (cpu_has_isa(requested) ? "no kernel variant built for it" : "this CPU lacks it") + ")");
  }

  /// The entry of the variant running `i` (its module loaded once, RTLD_LOCAL); throws
  /// std::runtime_error with dlerror()'s text when the module cannot be loaded.
  void* entry_for(isa i) {
    const std::string v = variant_for(i);
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& m : loaded_)
      if (m.first == v) return m.second;
    const std::string path = dir_ + "/" + prefix_ + v + ".so";
    void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) throw std::runtime_error(std::string("bitexact: cannot load ") + path + ": " + dlerror());
    void* e = dlsym(h, entry_.c_str());
    if (e == nullptr) throw std::runtime_error("bitexact: " + path + " has no entry " + entry_);
    loaded_.emplace_back(v, e);
    return e;
  }

  const std::string& folder() const { return dir_; }

 private:
  std::string prefix_, entry_, dir_ = ".";
  std::vector<std::string> variants_;
  std::mutex mutex_;
  std::vector<std::pair<std::string, void*>> loaded_;
};

}  // namespace portable
}  // namespace bitexact
