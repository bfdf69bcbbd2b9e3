// blas_gemm_ref - bitexact's answer for numpy_blas_test.py (no BLAS involved):
//   blas_gemm_ref gemm f32|f64 m n k A.bin B.bin C.bin   C = A B (row-major, contiguous)
//   blas_gemm_ref dot  f32|f64 n x.bin y.bin r.bin        r = bitexact::dot(x, y)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <bitexact/gemm.hpp>
#include <bitexact/reduce.hpp>

template <class T>
std::vector<T> load(const char* path, std::size_t n) {
  std::vector<T> v(n);
  FILE* f = std::fopen(path, "rb");
  if (!f || std::fread(v.data(), sizeof(T), n, f) != n) {
    std::fprintf(stderr, "cannot read %zu values from %s\n", n, path);
    std::exit(2);
  }
  std::fclose(f);
  return v;
}
template <class T>
void save(const char* path, const T* v, std::size_t n) {
  FILE* f = std::fopen(path, "wb");
  if (!f || std::fwrite(v, sizeof(T), n, f) != n) std::exit(2);
  std::fclose(f);
}

template <class T>
int run(int argc, char** argv) {
  const std::string op = argv[1];
  const bitexact::execution ex{1, bitexact::isa::scalar};
  if (op == "gemm" && argc == 9) {
    const std::size_t m = std::strtoull(argv[3], nullptr, 10), n = std::strtoull(argv[4], nullptr, 10),
                      k = std::strtoull(argv[5], nullptr, 10);
    const auto a = load<T>(argv[6], m * k), b = load<T>(argv[7], k * n);
    std::vector<T> c(m * n);
    bitexact::gemm<T>(bitexact::transpose::no, bitexact::transpose::no, m, n, k, T(1), a.data(), k, b.data(), n, T(0),
                      c.data(), n, bitexact::tier::fixed_order, ex);
    save(argv[8], c.data(), c.size());
    return 0;
  }
  if (op == "dot" && argc == 7) {
    const std::size_t n = std::strtoull(argv[3], nullptr, 10);
    const auto x = load<T>(argv[4], n), y = load<T>(argv[5], n);
    const T r = bitexact::dot(x.data(), y.data(), n, bitexact::tier::fixed_order, ex);
    save(argv[6], &r, 1);
    return 0;
  }
  std::fprintf(stderr, "usage: blas_gemm_ref gemm|dot f32|f64 ...\n");
  return 2;
}

int main(int argc, char** argv) {
  if (argc < 3) return run<float>(1, argv);
  return std::strcmp(argv[2], "f64") == 0 ? run<double>(argc, argv) : run<float>(argc, argv);
}
