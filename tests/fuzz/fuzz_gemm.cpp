// libFuzzer: GEMM argument checking and results. Arbitrary small shapes, transposes, leading
// dimensions, batch strides, alpha/beta, tier, execution (threads, ISA), and A, B, C pointers
// into ONE buffer (so that C may overlap A or B) filled with arbitrary bytes (NaN, Inf,
// subnormals). Each call either throws std::invalid_argument with the whole buffer untouched,
// or equals the reference bit for bit: reference::gemm_fixed_order for tier::fixed_order, the
// exact accumulator one product at a time (core::gemm_exact_element_slow) for tier::exact.
// Covers gemm (float, double, bfloat16 -> float), gemm_batched, gemv and linear_forward.
#include <algorithm>
#include <stdexcept>
#include <vector>

#include <bitexact/gemm.hpp>
#include <bitexact/reference/gemm.hpp>

#include "fuzz_input.hpp"

using namespace bitexact;

namespace {

/// The reference of one product, in place on c (valid arguments, C not overlapping A or B).
template <class T, class In>
void reference_gemm(transpose ta, transpose tb, std::size_t m, std::size_t n, std::size_t k, T alpha, const In* a,
                    std::size_t lda, const In* b, std::size_t ldb, T beta, T* c, std::size_t ldc, bool exact) {
  if (!exact) return reference::gemm_fixed_order<T, In>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  reference::gemm_exact<T, In>(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/// Elements spanned by a rows x cols matrix with row stride ld, or SIZE_MAX when ld < cols
/// (the call must then throw before touching memory).
std::size_t extent(std::size_t rows, std::size_t cols, std::size_t ld) {
  if (rows == 0 || cols == 0) return 0;
  if (ld < cols) return SIZE_MAX;
  return (rows - 1) * ld + cols;
}

template <class T>
T scalar_from(fuzz::input& in) {
  const std::uint8_t k = in.take<std::uint8_t>();
  switch (k % 8) {
    case 0: return T(0);
    case 1: return T(1);
    case 2: return T(-1);
    case 3: return T(0.5);
    default: return in.take<T>();  // anything, NaN and Inf included
  }
}

// Buffer of `cap` bytes (held as doubles, so any element type is aligned at its own size).
constexpr std::size_t cap_bytes = 1 << 15;

template <class T, class In>
void run(fuzz::input& in, std::uint8_t mode, std::vector<double>& storage) {
  unsigned char* const base = reinterpret_cast<unsigned char*>(storage.data());
  const std::size_t n_in = cap_bytes / sizeof(In), n_t = cap_bytes / sizeof(T);
  const auto isas = usable_isas();
  const execution ex{1 + in.take<std::uint8_t>() % 4, isas[in.take<std::uint8_t>() % isas.size()]};
  const tier t = (mode & 0x80) ? tier::exact : tier::fixed_order;
  const transpose ta = (mode & 1) ? transpose::yes : transpose::no, tb = (mode & 2) ? transpose::yes : transpose::no;
  const std::uint8_t shape_byte = in.take<std::uint8_t>();
  std::size_t m = in.take<std::uint8_t>() % 24, n = in.take<std::uint8_t>() % 24;
  std::size_t k = in.take<std::uint8_t>() % 40;
  if (shape_byte & 1) k = in.take<std::uint16_t>() % 600;  // across the 256-wide K chunks
  auto ld_from = [&](std::size_t row_len) -> std::size_t {
    const std::uint8_t v = in.take<std::uint8_t>();
    if (v < 200) return row_len + v % 5;  // mostly valid
    return v % 32;                        // anything small (often too small)
  };
  const bool an = ta == transpose::no, bn = tb == transpose::no;
  const std::size_t lda = ld_from(an ? k : m), ldb = ld_from(bn ? n : k), ldc = ld_from(n);
  // Offsets in elements of each operand's type; A and B as In, C as T, all in one buffer.
  const std::size_t oa = in.take<std::uint16_t>() % n_in, ob = in.take<std::uint16_t>() % n_in;
  const std::size_t oc = in.take<std::uint16_t>() % n_t;
  const std::uint8_t op = in.take<std::uint8_t>() % 4;  // gemm, gemm_batched, gemv, linear_forward
  const std::size_t batch = op == 1 ? in.take<std::uint8_t>() % 4 : 1;
  const std::size_t sa = op == 1 ? in.take<std::uint8_t>() % 600 : 0, sb = op == 1 ? in.take<std::uint8_t>() % 600 : 0;
  const std::size_t sc = op == 1 ? in.take<std::uint8_t>() % 600 : 0;
  const T alpha = scalar_from<T>(in), beta = scalar_from<T>(in);
  const std::uint8_t nulls = in.take<std::uint8_t>();
  // The rest of the input is the buffer's bytes.
  std::memset(base, 0, cap_bytes);
  std::memcpy(base, in.p, std::min(in.left(), cap_bytes));
  In* const bin = reinterpret_cast<In*>(base);
  T* const bt = reinterpret_cast<T*>(base);
  const In* a = (nulls & 0xf0) == 0xf0 ? nullptr : bin + oa;
  const In* b = (nulls & 0x0f) == 0x0f ? nullptr : bin + ob;
  T* c = nulls == 0x33 ? nullptr : bt + oc;
  // Everything the call may read or write must lie inside the buffer (the library cannot know
  // the buffer; an ld below the row length must throw before any access).
  auto fits = [&](std::size_t off, std::size_t ext, std::size_t stride, std::size_t total) {
    if (ext == SIZE_MAX) return true;
    if (ext == 0 || batch == 0) return true;
    return off + (batch - 1) * stride + ext <= total;
  };
  std::size_t ea, eb, ec;
  if (op == 2) {  // gemv: A stored m x n, x and y contiguous
    ea = extent(m, n, lda);
    eb = an ? n : m;
    ec = an ? m : n;
  } else if (op == 3) {  // linear_forward(batch = m, in = k, out = n): x m x k, W n x k, b n, y m x n
    ea = extent(m, k, k);
    eb = extent(n, k, k);
    ec = m * n;
  } else {
    ea = extent(an ? m : k, an ? k : m, lda);
    eb = extent(bn ? k : n, bn ? n : k, ldb);
    ec = extent(m, n, ldc);
  }
  if (!fits(oa, ea, sa, n_in) || !fits(ob, eb, sb, n_in) || !fits(oc, ec, sc, n_t)) return;
  if (op == 3 && ob + eb + n > n_in) return;  // the bias: the n elements right after W
  if (op >= 2 && !std::is_same<T, In>::value) return;  // gemv and linear_forward: float and double only
  const bool exact = t == tier::exact;
  fuzz::expect_untouched_or_reference(
      base, cap_bytes,
      [&] {
        switch (op) {
          case 0: gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, t, ex); break;
          case 1: gemm_batched(ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, beta, c, ldc, sc, batch, t, ex); break;
          case 2:
            if constexpr (std::is_same<T, In>::value) gemv(ta, m, n, alpha, a, lda, b, beta, c, t, ex);
            break;
          default:
            if constexpr (std::is_same<T, In>::value) {
              // The bias is B's first n elements past W (any overlap with y must throw).
              linear_forward(m, k, n, a, b, (nulls & 4) || b == nullptr ? nullptr : b + (eb == SIZE_MAX ? 0 : eb), c, t,
                             ex);
            }
        }
      },
      // No throw: the operands were valid and C overlaps neither A nor B (nor another C entry):
      // the reference at the same offsets.
      [&](unsigned char* rbase) {
        const In* ra = a ? reinterpret_cast<const In*>(rbase) + oa : nullptr;
        const In* rb = b ? reinterpret_cast<const In*>(rbase) + ob : nullptr;
        T* rc = c ? reinterpret_cast<T*>(rbase) + oc : nullptr;
        // A null operand (allowed when its matrix is empty) stays null: no offset is applied to it.
        auto shift = [](auto* p, std::size_t off) { return p ? p + off : p; };
        switch (op) {
          case 0: reference_gemm<T, In>(ta, tb, m, n, k, alpha, ra, lda, rb, ldb, beta, rc, ldc, exact); break;
          case 1:
            for (std::size_t q = 0; q < batch; ++q)
              reference_gemm<T, In>(ta, tb, m, n, k, alpha, shift(ra, q * sa), lda, shift(rb, q * sb), ldb, beta, shift(rc, q * sc),
                                    ldc, exact);
            break;
          case 2:
            if (an)
              reference_gemm<T, In>(transpose::no, transpose::yes, 1, m, n, alpha, rb, n, ra, lda, beta, rc, m, exact);
            else
              reference_gemm<T, In>(transpose::no, transpose::no, 1, n, m, alpha, rb, m, ra, lda, beta, rc, n, exact);
            break;
          default: {
            const In* bias = (nulls & 4) ? nullptr : shift(rb, eb == SIZE_MAX ? 0 : eb);
            if (bias)
              for (std::size_t i = 0; i < m; ++i)
                for (std::size_t j = 0; j < n; ++j) rc[i * n + j] = static_cast<T>(core::widen(bias[j]));
            reference_gemm<T, In>(transpose::no, transpose::yes, m, n, k, T(1), ra, k, rb, k, bias ? T(1) : T(0), rc, n, exact);
          }
        }
      },
      [&](unsigned char* rbase) {
        if (!std::getenv("FUZZ_VERBOSE")) return;
        std::fprintf(stderr, "op %d tier %d ta %d tb %d m %zu n %zu k %zu lda %zu ldb %zu ldc %zu oa %zu ob %zu oc %zu batch %zu "
                     "alpha %a beta %a threads %d isa %d\n", op, int(t), int(ta), int(tb), m, n, k, lda, ldb, ldc, oa, ob, oc,
                     batch, double(alpha), double(beta), ex.threads, int(ex.simd));
        for (std::size_t q = 0; q < n_t; ++q)
          if (std::memcmp(bt + q, reinterpret_cast<T*>(rbase) + q, sizeof(T)) != 0)
            std::fprintf(stderr, "  C element %zu: got %a want %a\n", q - oc, double(bt[q]), double(reinterpret_cast<T*>(rbase)[q]));
      });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  static std::vector<double> storage(cap_bytes / sizeof(double));
  fuzz::input in{data, size};
  cpu::detail::set_min_work_per_thread(16);
  const std::uint8_t mode = in.take<std::uint8_t>();
  switch ((mode >> 2) % 3) {
    case 0: run<float, float>(in, mode, storage); break;
    case 1: run<double, double>(in, mode, storage); break;
    default: run<float, bfloat16>(in, mode, storage);
  }
  return 0;
}
