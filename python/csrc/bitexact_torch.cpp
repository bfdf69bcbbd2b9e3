// bitexact_torch.cpp - the PyTorch op library: the one place that maps a torch call to a
// bitexact call. Every op is registered under torch.ops.bitexact.* with one schema
// (TORCH_LIBRARY, shared by torch 1.13 and 2.x); autograd lives in python/bitexact/torch/.
//
// Each op checks what the library cannot see (device, dtype, shapes, index ranges along a dim)
// and raises a clear error naming the op before anything is computed; non-contiguous inputs are
// made contiguous; outputs are fresh tensors (inputs are never written). The thread count of
// every call is torch's (at::get_num_threads()), handed to bitexact::execution, so
// torch.set_num_threads changes who computes a canonical chunk, never the bits.
//
// Portable build (cmake/bitexactPortable.cmake): this file is the front library
// libbitexact_torch.so, compiled without -m flags and with no arithmetic on tensor values; the
// bitexact calls live in torch_kernels.cpp, compiled once per ISA into
// libbitexact_torch_<variant>.so next to it. At load the front picks the ISA (BITEXACT_ISA,
// else the best this CPU has; set_isa() below changes it) and its module, and passes the ISA
// explicitly in every call, so one build runs at full speed on any CPU with the same bits.
//
// The ref_* ops run the scalar reference (include/bitexact/reference/), the specification, on
// the same tensors, for the tests.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <bitexact/portable/dispatch.hpp>
#include <bitexact/core/keys.hpp>
#include <bitexact/core/scatter.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <mutex>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "torch_table.hpp"

namespace {

using at::Tensor;

// ---- the kernel module ---------------------------------------------------------------------------

void anchor() {}

// The ISA and the module that runs it, read together by each call (set_isa may run meanwhile).
struct choice {
  bitexact::isa isa;
  const bitexact_torch::kernels_v1* k;
};
struct state {
  bitexact::portable::dispatcher d{BITEXACT_PORTABLE_MODULE_PREFIX, BITEXACT_PORTABLE_VARIANTS,
                                   BITEXACT_PORTABLE_ENTRY, reinterpret_cast<const void*>(&anchor)};
  std::mutex m;
  std::deque<choice> made;  // every choice made (a few at most), never freed: calls may hold one
  std::atomic<const choice*> now{nullptr};
  std::string load_error;  // why the choice at load failed (a bad BITEXACT_ISA), else ""
  std::atomic<bool> torch_threads{true};  // parallel regions on torch's threads (else bitexact's pool)
};
state& st() {
  static state s;
  return s;
}

// bitexact's parallel regions on torch's intra-op threads: job t of a region is one index of
// at::parallel_for(0, n, 1) (with torch's threads, n <= at::get_num_threads(), each thread gets
// one). Otherwise bitexact's workers and torch's (OpenMP threads spin after each region)
// would contend for the same cores between the ops of a step. Job t computes the same canonical
// chunks whichever thread runs it: this changes no result bit.
void torch_region_runner(void*, int n, const std::function<void(int)>& job) {
  at::parallel_for(0, n, 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t t = b; t < e; ++t) job(static_cast<int>(t));
  });
}

// Picks the ISA and loads its module; throws std::invalid_argument / std::runtime_error.
void choose(bitexact::isa requested) {
  state& s = st();
  const bitexact::isa i = s.d.resolve(requested);
  using entry_fn = const bitexact_torch::kernels_v1* (*)();
  const auto* k = reinterpret_cast<entry_fn>(s.d.entry_for(i))();
  k->set_region_runner(s.torch_threads.load() ? torch_region_runner : nullptr, nullptr);
  std::lock_guard<std::mutex> lock(s.m);
  for (const choice& c : s.made)
    if (c.isa == i && c.k == k) return s.now.store(&c);
  s.made.push_back(choice{i, k});
  s.now.store(&s.made.back());
}

// At load: the best ISA of this CPU or BITEXACT_ISA's; a failure is reported by every op.
const bool chosen_at_load = [] {
  try {
    choose(bitexact::isa::automatic);
  } catch (const std::exception& e) {
    const char* env = std::getenv("BITEXACT_ISA");
    st().load_error = std::string(env != nullptr && *env != '\0' ? "BITEXACT_ISA='" + std::string(env) + "': " : "") +
                      e.what();
  }
  return true;
}();

const choice& current() {
  const choice* c = st().now.load();
  TORCH_CHECK(c != nullptr, "no kernel module loaded: ", st().load_error,
              " (BITEXACT_ISA names one of scalar, sse2, avx2, avx512, neon that this CPU has; unset, the best one)");
  return *c;
}
template <class T>
const bitexact_torch::typed_v1<T>& typed(const choice& c) {
  if constexpr (std::is_same_v<T, float>) return c.k->f;
  else return c.k->d;
}
int threads_arg() { return std::max(1, at::get_num_threads()); }

// A kernel's failure, rethrown as the exception type the bitexact call threw.
void done(const choice& c, const char* err) {
  if (err == nullptr) return;
  const std::string m = err;
  switch (c.k->error_kind()) {
    case bitexact_torch::invalid_argument: throw std::invalid_argument(m);
    case bitexact_torch::out_of_range: throw std::out_of_range(m);
    default: throw std::runtime_error(m);
  }
}
// Runs kernel `fn` for element type T with the current (ISA, module) and torch's thread count.
#define BX_RUN(T, fn, ...)                                                                          \
  do {                                                                                             \
    const choice& bx_c = current();                                                                \
    done(bx_c, typed<T>(bx_c).fn(static_cast<int>(bx_c.isa), threads_arg(), __VA_ARGS__));         \
  } while (0)

void check_float(const Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "bitexact.", op, ": ", name, " is on ", t.device(),
              "; bitexact's torch ops run on the CPU only");
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kDouble, "bitexact.", op, ": ", name,
              " has dtype ", t.scalar_type(), "; supported: float32, float64");
}
void check_same_dtype(const Tensor& a, const Tensor& b, const char* op, const char* na, const char* nb) {
  TORCH_CHECK(a.scalar_type() == b.scalar_type(), "bitexact.", op, ": ", na, " (", a.scalar_type(), ") and ", nb,
              " (", b.scalar_type(), ") must have the same dtype");
}
Tensor check_index(const Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.device().is_cpu(), "bitexact.", op, ": ", name, " is on ", t.device(), "; CPU only");
  TORCH_CHECK(t.scalar_type() == at::kLong || t.scalar_type() == at::kInt, "bitexact.", op, ": ", name,
              " has dtype ", t.scalar_type(), "; indices must be int64 (or int32)");
  return t.to(at::kLong).contiguous();
}
int64_t wrap_dim(int64_t d, int64_t ndim, const char* op) {
  const int64_t n = ndim == 0 ? 1 : ndim;
  TORCH_CHECK(d >= -n && d < n, "bitexact.", op, ": dim ", d, " out of range for a tensor of ", ndim, " dims");
  return d < 0 ? d + n : d;
}

#define BITEXACT_FLOATING(T, DT, ...)                     \
  [&] {                                                   \
    if ((DT) == at::kDouble) {                            \
      using T = double;                                   \
      return __VA_ARGS__();                               \
    } else {                                              \
      using T = float;                                    \
      return __VA_ARGS__();                               \
    }                                                     \
  }()

// ---- execution ---------------------------------------------------------------------------------

// set_isa("auto") picks again as at load (BITEXACT_ISA, else the best of this CPU).
void set_isa(std::string name) { choose(bitexact::parse_isa(name)); }
std::string isa_name() { return bitexact::isa_name(current().isa); }
std::string isa_variant() { return current().k->variant; }
// Whose threads run the parallel regions: "torch" (at::parallel_for, the default) or "pool"
// (bitexact's own workers). Never changes a bit; for tests and measurements.
std::string threads_backend() { return current().k->region_runner_now() == torch_region_runner ? "torch" : "pool"; }
void set_threads_backend(const std::string& b) {
  TORCH_CHECK(b == "torch" || b == "pool", "bitexact::set_threads_backend: '", b, "' is not 'torch' or 'pool'");
  state& s = st();
  std::lock_guard<std::mutex> lock(s.m);
  s.torch_threads.store(b == "torch");
  for (const choice& c : s.made) c.k->set_region_runner(b == "torch" ? torch_region_runner : nullptr, nullptr);
}
std::vector<std::string> available_isas() {
  std::vector<std::string> out;
  for (bitexact::isa i : st().d.available()) out.emplace_back(bitexact::isa_name(i));
  return out;
}
int64_t tag_of(std::string s) { return static_cast<int64_t>(bitexact::tag_of(s.c_str())); }

// ---- sums and means over dims ------------------------------------------------------------------

// out[kept] = the 1-D bitexact sum of the reduced elements in row-major order of the reduced
// dims (the same bits as bitexact::sum of that slice): rows of a contiguous (kept, reduced)
// view when the reduced dims are trailing, columns when they are leading, else a permuted copy.
Tensor sum(const Tensor& self, std::vector<int64_t> dims, bool keepdim, bool mean, bool exact) {
  const char* op = mean ? "mean" : "sum";
  check_float(self, op, "input");
  const int64_t nd = self.dim();
  std::vector<bool> red(std::max<int64_t>(nd, 1), dims.empty());
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, nd, op);
    TORCH_CHECK(!red[w] || dims.empty(), "bitexact.", op, ": dim ", d, " appears twice");
    red[w] = true;
  }
  std::vector<int64_t> kept_dims, red_dims, out_shape;
  int64_t rows = 1, cols = 1;
  for (int64_t d = 0; d < nd; ++d) {
    if (red[d]) {
      red_dims.push_back(d);
      cols *= self.size(d);
      if (keepdim) out_shape.push_back(1);
    } else {
      kept_dims.push_back(d);
      rows *= self.size(d);
      out_shape.push_back(self.size(d));
    }
  }
  Tensor out = at::empty({rows}, self.options());
  bool leading = true;  // reduced dims are 0..k-1
  for (std::size_t i = 0; i < red_dims.size(); ++i) leading = leading && red_dims[i] == static_cast<int64_t>(i);
  bool trailing = true;
  for (std::size_t i = 0; i < kept_dims.size(); ++i) trailing = trailing && kept_dims[i] == static_cast<int64_t>(i);
  BITEXACT_FLOATING(T, self.scalar_type(), [&] {
    T* o = out.data_ptr<T>();
    if (leading && !trailing) {  // x is (cols reduced) x (rows kept): column sums
      const Tensor x = self.contiguous();
      BX_RUN(T, sum, x.data_ptr<T>(), cols, rows, 1, mean, exact, o);
    } else {
      std::vector<int64_t> perm(kept_dims);
      perm.insert(perm.end(), red_dims.begin(), red_dims.end());
      const Tensor x = (trailing ? self : self.permute(perm)).contiguous();
      BX_RUN(T, sum, x.data_ptr<T>(), rows, cols, 0, mean, exact, o);
    }
  });
  return out.reshape(out_shape);
}

// ---- row-wise ops along one dim -----------------------------------------------------------------

// Moves `dim` last and views the tensor as (rows, cols) contiguous.
Tensor rows_view(const Tensor& x, int64_t dim, int64_t& rows, int64_t& cols) {
  const Tensor m = x.dim() == 0 ? x.reshape({1}) : x.movedim(dim, -1).contiguous();
  cols = m.dim() == 0 ? 1 : m.size(-1);
  rows = cols == 0 ? 0 : m.numel() / cols;
  return m;
}
Tensor back_from_rows(const Tensor& y, const Tensor& x, int64_t dim) {
  return x.dim() == 0 ? y.reshape({}) : y.movedim(-1, dim).contiguous();
}

Tensor softmax_like(const Tensor& self, int64_t dim, bool log) {
  const char* op = log ? "log_softmax" : "softmax";
  check_float(self, op, "input");
  dim = wrap_dim(dim, self.dim(), op);
  int64_t rows, cols;
  const Tensor x = rows_view(self, dim, rows, cols);
  Tensor y = at::empty_like(x);
  BITEXACT_FLOATING(T, self.scalar_type(), [&] {
    BX_RUN(T, softmax, x.data_ptr<T>(), rows, cols, log, y.data_ptr<T>());
  });
  return back_from_rows(y, self, dim);
}
Tensor softmax(const Tensor& self, int64_t dim) { return softmax_like(self, dim, false); }
Tensor log_softmax(const Tensor& self, int64_t dim) { return softmax_like(self, dim, true); }

// cross_entropy of (N, C) logits and int64 class indices, log_softmax over dim 1 then nll_loss,
// in one call with the composed ops' bits (python/bitexact/torch/functional.py, _CrossEntropy).
// reduction: 0 none, 1 sum, 2 mean. Returns the loss (N values, or one), the targets with ignored
// rows at class 0, each row's weight, and the sum of the weights (mean; else empty).
std::tuple<Tensor, Tensor, Tensor, Tensor> cross_entropy(const Tensor& input, const Tensor& target,
                                                         const c10::optional<Tensor>& weight, int64_t ignore_index,
                                                         int64_t reduction, bool exact) {
  const char* op = "cross_entropy";
  check_float(input, op, "input");
  TORCH_CHECK(input.dim() == 2, "bitexact.cross_entropy: input must be (N, C), got ", input.dim(), " dims");
  TORCH_CHECK(reduction >= 0 && reduction <= 2, "bitexact.cross_entropy: reduction code ", reduction);
  TORCH_CHECK(target.device().is_cpu() && target.scalar_type() == at::kLong,
              "bitexact.nll_loss: target must be int64 on the CPU, got ", target.scalar_type(), " on ", target.device());
  const int64_t n = input.size(0), c = input.size(1);
  TORCH_CHECK(target.dim() == 1 && target.size(0) == n, "bitexact.nll_loss: input ", input.sizes(), " and target ",
              target.sizes(), " do not match");
  Tensor wc;
  if (weight && weight->defined()) {
    check_float(*weight, op, "weight");
    check_same_dtype(input, *weight, op, "input", "weight");
    TORCH_CHECK(weight->dim() == 1 && weight->size(0) == c, "bitexact.cross_entropy: weight has shape ",
                weight->sizes(), ", expected (", c, ")");
    wc = weight->contiguous();
  }
  const Tensor t = target.contiguous();
  Tensor safe = at::empty({n}, t.options());
  Tensor valid = at::empty({n}, t.options().dtype(at::kByte));
  const int64_t* tp = t.data_ptr<int64_t>();
  int64_t* sp = safe.data_ptr<int64_t>();
  std::uint8_t* vp = valid.data_ptr<std::uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    vp[i] = tp[i] != ignore_index;
    sp[i] = vp[i] ? tp[i] : 0;
    TORCH_CHECK_INDEX(sp[i] >= 0 && sp[i] < c, "bitexact.nll_loss: target ", tp[i], " at position ", i,
                      " out of range [0, ", c, ")");
  }
  const Tensor x = input.contiguous();
  Tensor w = at::empty({n}, input.options());
  Tensor out = at::empty({reduction == 0 ? n : 2}, input.options());
  BITEXACT_FLOATING(T, input.scalar_type(), [&] {
    BX_RUN(T, cross_entropy, x.data_ptr<T>(), n, c, sp, vp, wc.defined() ? wc.data_ptr<T>() : nullptr,
           static_cast<int>(reduction), exact ? 1 : 0, w.data_ptr<T>(), out.data_ptr<T>());
  });
  if (reduction == 0) return {out, safe, w, at::empty({0}, input.options())};
  return {out.select(0, 0).clone(), safe, w, reduction == 2 ? out.select(0, 1).clone() : at::empty({0}, input.options())};
}
Tensor cross_entropy_backward(const Tensor& grad, const Tensor& input, const Tensor& safe, const Tensor& w,
                              const Tensor& denom, int64_t reduction) {
  const char* op = "cross_entropy_backward";
  check_float(grad, op, "grad");
  check_same_dtype(grad, input, op, "grad", "input");
  TORCH_CHECK(input.dim() == 2 && safe.size(0) == input.size(0) && w.size(0) == input.size(0),
              "bitexact.cross_entropy_backward: shapes do not match");
  TORCH_CHECK(grad.numel() == (reduction == 0 ? input.size(0) : 1), "bitexact.cross_entropy_backward: grad has ",
              grad.numel(), " values");
  const int64_t n = input.size(0), c = input.size(1);
  const Tensor x = input.contiguous(), g = grad.contiguous(), s = safe.contiguous(), wc = w.contiguous();
  Tensor dx = at::empty({n, c}, input.options());
  if (dx.numel() == 0) return dx;
  BITEXACT_FLOATING(T, input.scalar_type(), [&] {
    BX_RUN(T, cross_entropy_backward, x.data_ptr<T>(), n, c, s.data_ptr<int64_t>(), wc.data_ptr<T>(), g.data_ptr<T>(),
           static_cast<int>(reduction), reduction == 2 ? denom.data_ptr<T>() : nullptr, dx.data_ptr<T>());
  });
  return dx;
}

// Normalisation over the trailing `normalized_numel` elements (torch's normalized_shape).
Tensor norm_rows(const Tensor& self, int64_t normalized_numel, const c10::optional<Tensor>& w,
                 const c10::optional<Tensor>& b, double eps, bool layer) {
  const char* op = layer ? "layer_norm" : "rms_norm";
  check_float(self, op, "input");
  TORCH_CHECK(normalized_numel > 0 && self.numel() % normalized_numel == 0, "bitexact.", op,
              ": normalized shape of ", normalized_numel, " elements does not divide the input's ", self.numel());
  const int64_t cols = normalized_numel, rows = self.numel() / cols;
  Tensor wc, bc;
  if (w && w->defined()) {
    check_float(*w, op, "weight");
    check_same_dtype(self, *w, op, "input", "weight");
    TORCH_CHECK(w->numel() == cols, "bitexact.", op, ": weight has ", w->numel(), " elements, expected ", cols);
    wc = w->contiguous();
  }
  if (b && b->defined()) {
    check_float(*b, op, "bias");
    check_same_dtype(self, *b, op, "input", "bias");
    TORCH_CHECK(b->numel() == cols, "bitexact.", op, ": bias has ", b->numel(), " elements, expected ", cols);
    bc = b->contiguous();
  }
  const Tensor x = self.contiguous();
  Tensor y = at::empty_like(x);
  BITEXACT_FLOATING(T, self.scalar_type(), [&] {
    const T* wp = wc.defined() ? wc.data_ptr<T>() : nullptr;
    const T* bp = bc.defined() ? bc.data_ptr<T>() : nullptr;
    BX_RUN(T, norm, x.data_ptr<T>(), rows, cols, wp, bp, eps, layer, y.data_ptr<T>());
  });
  return y;
}
Tensor layer_norm(const Tensor& self, int64_t n, const c10::optional<Tensor>& w, const c10::optional<Tensor>& b,
                  double eps) {
  return norm_rows(self, n, w, b, eps, true);
}
Tensor rms_norm(const Tensor& self, int64_t n, const c10::optional<Tensor>& w, double eps) {
  return norm_rows(self, n, w, c10::nullopt, eps, false);
}

// ---- scatter ------------------------------------------------------------------------------------

bitexact::scatter_op parse_reduce(const std::string& r, const char* op) {
  if (r == "sum") return bitexact::scatter_op::sum;
  if (r == "prod") return bitexact::scatter_op::prod;
  if (r == "mean") return bitexact::scatter_op::mean;
  if (r == "amax") return bitexact::scatter_op::max;
  if (r == "amin") return bitexact::scatter_op::min;
  TORCH_CHECK(false, "bitexact.", op, ": unknown reduce '", r, "' (sum, prod, mean, amax, amin)");
  return bitexact::scatter_op::sum;
}

// out = self with self[..., index[i], ...] (along dim) += source[..., i, ...]: the row form of
// index_add with dim moved first; each element's contributions combine by source position.
Tensor index_add(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& source, bool exact) {
  const char* op = "index_add";
  check_float(self, op, "input");
  check_float(source, op, "source");
  check_same_dtype(self, source, op, "input", "source");
  const Tensor idx = check_index(index, op, "index");
  TORCH_CHECK(idx.dim() <= 1, "bitexact.index_add: index must be 1-D, got ", idx.dim(), " dims");
  dim = wrap_dim(dim, self.dim(), op);
  const Tensor s0 = self.dim() == 0 ? self.reshape({1}) : self;
  const Tensor src0 = source.dim() == 0 ? source.reshape({1}) : source;
  TORCH_CHECK(src0.dim() == s0.dim(), "bitexact.index_add: source has ", source.dim(), " dims, input ", self.dim());
  for (int64_t d = 0; d < s0.dim(); ++d)
    TORCH_CHECK(d == dim ? src0.size(d) == idx.numel() : src0.size(d) == s0.size(d), "bitexact.index_add: source shape ",
                source.sizes(), " does not match input ", self.sizes(), " and ", idx.numel(), " indices along dim ", dim);
  Tensor out = s0.movedim(dim, 0).contiguous().clone();
  const Tensor src = src0.movedim(dim, 0).contiguous();
  const int64_t n_out = out.size(0), width = n_out == 0 ? 0 : out.numel() / n_out, n = idx.numel();
  if (n > 0 && width > 0) {
    BITEXACT_FLOATING(T, self.scalar_type(), [&] {
      BX_RUN(T, index_add_rows, out.data_ptr<T>(), n_out, width, idx.data_ptr<int64_t>(), src.data_ptr<T>(), n, exact);
    });
  } else if (n > 0) {
    // nothing to add, but a bad index is still an error
    const int64_t* p = idx.data_ptr<int64_t>();
    for (int64_t i = 0; i < n; ++i)
      TORCH_CHECK_INDEX(p[i] >= 0 && p[i] < n_out, "bitexact.index_add: index ", p[i], " at position ", i,
                        " out of range [0, ", n_out, ")");
  }
  out = out.movedim(0, dim).contiguous();
  return self.dim() == 0 ? out.reshape({}) : out;
}

// torch's scatter_reduce / scatter_add: out = self; for every position p of index (row-major),
// out[p with p[dim] replaced by index[p]] op= src[p]. Mapped to the 1-D scatter_reduce over
// self's flat elements, contributions by position p: the canonical order of scatter.hpp.
Tensor scatter_reduce(const Tensor& self, int64_t dim, const Tensor& index, const Tensor& src, std::string reduce,
                      bool include_self, bool exact) {
  const char* op = reduce == "sum" && include_self ? "scatter_add" : "scatter_reduce";
  const bitexact::scatter_op sop = parse_reduce(reduce, op);
  check_float(self, op, "input");
  check_float(src, op, "src");
  check_same_dtype(self, src, op, "input", "src");
  TORCH_CHECK(index.device().is_cpu() && index.scalar_type() == at::kLong, "bitexact.", op,
              ": index must be an int64 CPU tensor, got ", index.scalar_type(), " on ", index.device());
  const Tensor idx = index.contiguous();
  const int64_t nd = std::max<int64_t>(self.dim(), 1);
  dim = wrap_dim(dim, self.dim(), op);
  TORCH_CHECK(std::max<int64_t>(idx.dim(), 1) == nd && std::max<int64_t>(src.dim(), 1) == nd, "bitexact.", op,
              ": input, index and src must have the same number of dims (", self.dim(), ", ", index.dim(), ", ",
              src.dim(), ")");
  const Tensor s1 = self.reshape(self.dim() == 0 ? at::IntArrayRef{1} : self.sizes());
  const Tensor i1 = idx.reshape(idx.dim() == 0 ? at::IntArrayRef{1} : idx.sizes());
  const Tensor r1 = src.reshape(src.dim() == 0 ? at::IntArrayRef{1} : src.sizes());
  for (int64_t d = 0; d < nd; ++d) {
    TORCH_CHECK(i1.size(d) <= r1.size(d), "bitexact.", op, ": index size ", i1.size(d), " > src size ", r1.size(d),
                " at dim ", d);
    TORCH_CHECK(d == dim || i1.size(d) <= s1.size(d), "bitexact.", op, ": index size ", i1.size(d),
                " > input size ", s1.size(d), " at dim ", d);
  }
  Tensor out = s1.contiguous().clone();
  const int64_t n = i1.numel();
  if (n == 0) return out.reshape(self.sizes());
  // flat targets and the gathered source values, by position p of index
  std::vector<int64_t> target(n);
  const Tensor vals = r1.as_strided(i1.sizes(), r1.strides(), r1.storage_offset()).contiguous();
  const int64_t* ip = i1.data_ptr<int64_t>();
  std::vector<int64_t> coord(nd, 0), ostride(nd);
  for (int64_t d = nd - 1, s = 1; d >= 0; --d) {
    ostride[d] = s;
    s *= s1.size(d);
  }
  const int64_t bound = s1.size(dim);
  for (int64_t p = 0; p < n; ++p) {
    const int64_t v = ip[p];
    TORCH_CHECK_INDEX(v >= 0 && v < bound, "bitexact.", op, ": index ", v, " at position ", p,
                      " out of range [0, ", bound, ") along dim ", dim);
    int64_t f = 0;
    for (int64_t d = 0; d < nd; ++d) f += (d == dim ? v : coord[d]) * ostride[d];
    target[p] = f;
    for (int64_t d = nd - 1; d >= 0; --d) {
      if (++coord[d] < i1.size(d)) break;
      coord[d] = 0;
    }
  }
  BITEXACT_FLOATING(T, self.scalar_type(), [&] {
    BX_RUN(T, scatter_reduce, out.data_ptr<T>(), out.numel(), target.data(), vals.data_ptr<T>(), n,
           static_cast<int>(sop), include_self, exact);
  });
  return out.reshape(self.sizes());
}

// ---- embedding bags -----------------------------------------------------------------------------

bitexact::bag_mode parse_mode(int64_t m) {
  TORCH_CHECK(m >= 0 && m <= 2, "bitexact.embedding_bag: mode must be 0 (sum), 1 (mean) or 2 (max)");
  return m == 0 ? bitexact::bag_mode::sum : m == 1 ? bitexact::bag_mode::mean : bitexact::bag_mode::max;
}

// (out, max_positions): out[b] combines table rows indices[offsets[b] .. offsets[b+1]).
std::tuple<Tensor, Tensor> embedding_bag(const Tensor& table, const Tensor& indices, const Tensor& offsets, int64_t mode,
                                         const c10::optional<Tensor>& psw, bool exact) {
  const char* op = "embedding_bag";
  check_float(table, op, "weight");
  TORCH_CHECK(table.dim() == 2, "bitexact.embedding_bag: weight must be 2-D, got ", table.sizes());
  const Tensor idx = check_index(indices, op, "input").reshape({-1});
  const Tensor off = check_index(offsets, op, "offsets").reshape({-1});
  const bitexact::bag_mode bm = parse_mode(mode);
  const Tensor tab = table.contiguous();
  const int64_t n_bags = off.numel(), width = tab.size(1);
  Tensor out = at::empty({n_bags, width}, table.options());
  Tensor pos = at::empty({bm == bitexact::bag_mode::max ? n_bags : 0, width}, table.options().dtype(at::kLong));
  Tensor w;
  if (psw && psw->defined()) {
    check_float(*psw, op, "per_sample_weights");
    check_same_dtype(table, *psw, op, "weight", "per_sample_weights");
    TORCH_CHECK(psw->numel() == idx.numel(), "bitexact.embedding_bag: per_sample_weights has ", psw->numel(),
                " values for ", idx.numel(), " indices");
    w = psw->contiguous();
  }
  if (width == 0) return {out, pos};
  BITEXACT_FLOATING(T, table.scalar_type(), [&] {
    BX_RUN(T, embedding_bag, out.data_ptr<T>(), bm == bitexact::bag_mode::max ? pos.data_ptr<int64_t>() : nullptr,
           tab.data_ptr<T>(), tab.size(0), width, idx.data_ptr<int64_t>(), idx.numel(), off.data_ptr<int64_t>(), n_bags,
           static_cast<int>(bm), w.defined() ? w.data_ptr<T>() : nullptr, exact);
  });
  return {out, pos};
}

Tensor embedding_bag_backward(const Tensor& grad, const Tensor& indices, const Tensor& offsets, int64_t n_rows,
                              int64_t mode, const c10::optional<Tensor>& psw, const Tensor& max_positions, bool exact) {
  const char* op = "embedding_bag_backward";
  check_float(grad, op, "grad");
  const Tensor idx = check_index(indices, op, "input").reshape({-1});
  const Tensor off = check_index(offsets, op, "offsets").reshape({-1});
  const bitexact::bag_mode bm = parse_mode(mode);
  const Tensor g = grad.contiguous();
  const int64_t n_bags = off.numel(), width = g.size(1);
  Tensor out = at::zeros({n_rows, width}, grad.options());
  if (width == 0) return out;
  BITEXACT_FLOATING(T, grad.scalar_type(), [&] {
    if (bm == bitexact::bag_mode::max) {
      const Tensor mp = max_positions.contiguous();
      BX_RUN(T, embedding_bag_backward, out.data_ptr<T>(), n_rows, width, g.data_ptr<T>(), idx.data_ptr<int64_t>(),
             idx.numel(), nullptr, mp.data_ptr<int64_t>(), n_bags, static_cast<int>(bm), nullptr, exact);
    } else {
      Tensor w;
      if (psw && psw->defined()) w = psw->contiguous();
      BX_RUN(T, embedding_bag_backward, out.data_ptr<T>(), n_rows, width, g.data_ptr<T>(), idx.data_ptr<int64_t>(),
             idx.numel(), off.data_ptr<int64_t>(), nullptr, n_bags, static_cast<int>(bm),
             w.defined() ? w.data_ptr<T>() : nullptr, exact);
    }
  });
  return out;
}


// ---- matrix products (gemm.hpp) and convolution (conv.hpp) --------------------------------------

// A (rows x cols) as a gemm operand without a copy when it is row-major or a transposed
// row-major matrix: (data, transpose flag, leading dimension); else a contiguous copy.
struct operand {
  Tensor t;
  int tr;  // 1: the matrix is t's transpose
  int64_t ld;
};
operand as_operand(const Tensor& a) {
  const int64_t r = a.size(-2), c = a.size(-1);
  if (a.stride(-1) == 1 && (a.stride(-2) == c || r <= 1) && a.is_contiguous()) return {a, 0, c};
  const Tensor at = a.transpose(-1, -2);
  if (at.is_contiguous()) return {at, 1, r};
  return {a.contiguous(), 0, c};
}

// C = A B for 2-D A (m x k), B (k x n); batched over the first dim for 3-D (bmm).
Tensor mm_impl(const Tensor& a, const Tensor& b, bool exact, bool batched) {
  const char* op = batched ? "bmm" : "mm";
  check_float(a, op, "self");
  check_float(b, op, "mat2");
  check_same_dtype(a, b, op, "self", "mat2");
  const int64_t nd = batched ? 3 : 2;
  TORCH_CHECK(a.dim() == nd && b.dim() == nd, "bitexact.", op, ": expected ", nd, "-D tensors, got ", a.sizes(), " and ",
              b.sizes());
  TORCH_CHECK(a.size(-1) == b.size(-2), "bitexact.", op, ": shapes ", a.sizes(), " and ", b.sizes(),
              " cannot be multiplied");
  const int64_t batch = batched ? a.size(0) : 1;
  TORCH_CHECK(!batched || b.size(0) == batch, "bitexact.bmm: batch sizes ", a.size(0), " and ", b.size(0), " differ");
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  Tensor c = batched ? at::empty({batch, m, n}, a.options()) : at::empty({m, n}, a.options());
  if (c.numel() == 0) return c;
  const operand A = as_operand(batched ? a.contiguous() : a), B = as_operand(batched ? b.contiguous() : b);
  BITEXACT_FLOATING(T, a.scalar_type(), [&] {
    BX_RUN(T, gemm_batched, A.tr, B.tr, m, n, k, A.t.data_ptr<T>(), A.ld, m * k, B.t.data_ptr<T>(), B.ld, k * n,
           c.data_ptr<T>(), n, m * n, batch, exact);
  });
  return c;
}
Tensor mm(const Tensor& a, const Tensor& b, bool exact) { return mm_impl(a, b, exact, false); }
Tensor bmm(const Tensor& a, const Tensor& b, bool exact) { return mm_impl(a, b, exact, true); }

// y = x W^T + b for x (batch x in), W (out x in): bitexact::linear_forward.
Tensor linear(const Tensor& x, const Tensor& w, const c10::optional<Tensor>& bias, bool exact) {
  const char* op = "linear";
  check_float(x, op, "input");
  check_float(w, op, "weight");
  check_same_dtype(x, w, op, "input", "weight");
  TORCH_CHECK(w.dim() == 2, "bitexact.linear: weight must be 2-D, got ", w.sizes());
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == w.size(1), "bitexact.linear: input ", x.sizes(), " and weight ", w.sizes(),
              " do not match (in_features ", w.size(1), ")");
  Tensor b;
  if (bias && bias->defined()) {
    check_float(*bias, op, "bias");
    check_same_dtype(x, *bias, op, "input", "bias");
    TORCH_CHECK(bias->numel() == w.size(0), "bitexact.linear: bias has ", bias->numel(), " elements, expected ",
                w.size(0));
    b = bias->contiguous();
  }
  const int64_t in = w.size(1), out = w.size(0);
  const Tensor x2 = x.reshape({-1, in}).contiguous(), wc = w.contiguous();
  const int64_t batch = x2.size(0);
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape.back() = out;
  Tensor y = at::empty({batch, out}, x.options());
  if (y.numel() == 0) return y.reshape(shape);
  BITEXACT_FLOATING(T, x.scalar_type(), [&] {
    BX_RUN(T, linear_forward, batch, in, out, x2.data_ptr<T>(), wc.data_ptr<T>(), b.defined() ? b.data_ptr<T>() : nullptr,
           y.data_ptr<T>(), exact);
  });
  return y.reshape(shape);
}

// (dx, dw, db): linear_backward_data / _weight / _bias.
std::tuple<Tensor, Tensor, Tensor> linear_backward(const Tensor& dy, const Tensor& x, const Tensor& w, bool need_bias,
                                                   bool exact) {
  check_float(dy, "linear_backward", "grad");
  const int64_t in = w.size(1), out = w.size(0);
  const Tensor d2 = dy.reshape({-1, out}).contiguous(), x2 = x.reshape({-1, in}).contiguous(), wc = w.contiguous();
  const int64_t batch = x2.size(0);
  Tensor dx = at::zeros({batch, in}, x.options()), dw = at::zeros({out, in}, w.options());
  Tensor db = need_bias ? at::zeros({out}, w.options()) : Tensor();
  BITEXACT_FLOATING(T, x.scalar_type(), [&] {
    BX_RUN(T, linear_backward, batch, in, out, d2.data_ptr<T>(), x2.data_ptr<T>(), wc.data_ptr<T>(), dx.data_ptr<T>(),
           dw.data_ptr<T>(), need_bias ? db.data_ptr<T>() : nullptr, exact);
  });
  return {dx.reshape(x.sizes()), dw, db};
}

bitexact::conv2d_shape conv_shape(const Tensor& x, const Tensor& w, const std::vector<int64_t>& stride,
                                  const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation,
                                  int64_t groups) {
  const char* op = "conv2d";
  TORCH_CHECK(x.dim() == 4, "bitexact.conv2d: input must be 4-D (N, C, H, W), got ", x.sizes());
  TORCH_CHECK(w.dim() == 4, "bitexact.conv2d: weight must be 4-D (out, in/groups, kh, kw), got ", w.sizes());
  TORCH_CHECK(stride.size() == 2 && padding.size() == 2 && dilation.size() == 2, "bitexact.", op,
              ": stride, padding and dilation need 2 values each");
  for (int64_t v : stride) TORCH_CHECK(v > 0, "bitexact.conv2d: stride must be > 0");
  for (int64_t v : dilation) TORCH_CHECK(v > 0, "bitexact.conv2d: dilation must be > 0");
  for (int64_t v : padding) TORCH_CHECK(v >= 0, "bitexact.conv2d: padding must be >= 0");
  TORCH_CHECK(groups > 0 && x.size(1) == w.size(1) * groups, "bitexact.conv2d: input has ", x.size(1),
              " channels, weight expects ", w.size(1), " x ", groups, " groups");
  bitexact::conv2d_shape s;
  s.batch = x.size(0);
  s.in_channels = x.size(1);
  s.in_h = x.size(2);
  s.in_w = x.size(3);
  s.out_channels = w.size(0);
  s.kernel_h = w.size(2);
  s.kernel_w = w.size(3);
  s.stride_h = stride[0];
  s.stride_w = stride[1];
  s.pad_h = padding[0];
  s.pad_w = padding[1];
  s.dilation_h = dilation[0];
  s.dilation_w = dilation[1];
  s.groups = groups;
  TORCH_CHECK(s.out_h() > 0 && s.out_w() > 0, "bitexact.conv2d: kernel ", w.sizes(), " larger than the padded input ",
              x.sizes());
  return s;
}

Tensor conv2d(const Tensor& x, const Tensor& w, const c10::optional<Tensor>& bias, std::vector<int64_t> stride,
              std::vector<int64_t> padding, std::vector<int64_t> dilation, int64_t groups, bool exact) {
  const char* op = "conv2d";
  check_float(x, op, "input");
  check_float(w, op, "weight");
  check_same_dtype(x, w, op, "input", "weight");
  const bitexact::conv2d_shape s = conv_shape(x, w, stride, padding, dilation, groups);
  Tensor b;
  if (bias && bias->defined()) {
    check_float(*bias, op, "bias");
    check_same_dtype(x, *bias, op, "input", "bias");
    TORCH_CHECK(bias->numel() == w.size(0), "bitexact.conv2d: bias has ", bias->numel(), " elements, expected ", w.size(0));
    b = bias->contiguous();
  }
  const Tensor xc = x.contiguous(), wc = w.contiguous();
  Tensor y = at::empty({x.size(0), w.size(0), (int64_t)s.out_h(), (int64_t)s.out_w()}, x.options());
  if (y.numel() == 0) return y;
  BITEXACT_FLOATING(T, x.scalar_type(), [&] {
    BX_RUN(T, conv2d_forward, &s, xc.data_ptr<T>(), wc.data_ptr<T>(), b.defined() ? b.data_ptr<T>() : nullptr,
           y.data_ptr<T>(), exact);
  });
  return y;
}

// (dx, dw, db): conv2d_backward_data (when need_input; else dx is undefined) and
// conv2d_backward_weight (with dbias when need_bias).
std::tuple<Tensor, Tensor, Tensor> conv2d_backward(const Tensor& dy, const Tensor& x, const Tensor& w,
                                                   std::vector<int64_t> stride, std::vector<int64_t> padding,
                                                   std::vector<int64_t> dilation, int64_t groups, bool need_bias,
                                                   bool exact, bool need_input) {
  check_float(dy, "conv2d_backward", "grad");
  const bitexact::conv2d_shape s = conv_shape(x, w, stride, padding, dilation, groups);
  const Tensor dyc = dy.contiguous(), xc = x.contiguous(), wc = w.contiguous();
  // The kernels write every element of dx, dw and db (an empty batch gives dw = db = +0): no
  // zero-fill, except for an empty input, where nothing runs.
  const bool empty = x.numel() == 0;
  auto out = [empty](const Tensor& like) { return empty ? at::zeros_like(like) : at::empty_like(like); };
  Tensor dx = need_input ? out(xc) : Tensor(), dw = out(wc);
  Tensor db = need_bias ? (empty ? at::zeros({w.size(0)}, w.options()) : at::empty({w.size(0)}, w.options())) : Tensor();
  if (empty) return {dx, dw, db};
  BITEXACT_FLOATING(T, x.scalar_type(), [&] {
    BX_RUN(T, conv2d_backward, &s, dyc.data_ptr<T>(), xc.data_ptr<T>(), wc.data_ptr<T>(),
           need_input ? dx.data_ptr<T>() : nullptr, dw.data_ptr<T>(), need_bias ? db.data_ptr<T>() : nullptr, exact);
  });
  return {dx, dw, db};
}


// ---- pooling (pool.hpp) -------------------------------------------------------------------------

bitexact::pool2d_shape pool_shape(const Tensor& x, const std::vector<int64_t>& k, const std::vector<int64_t>& s,
                                  const std::vector<int64_t>& p, bool ceil_mode, bool count_include_pad,
                                  const char* op) {
  TORCH_CHECK(x.dim() == 4, "bitexact.", op, ": input must be 4-D (N, C, H, W), got ", x.sizes());
  TORCH_CHECK(k.size() == 2 && s.size() == 2 && p.size() == 2, "bitexact.", op,
              ": kernel_size, stride and padding need 2 values each");
  for (int64_t v : k) TORCH_CHECK(v > 0, "bitexact.", op, ": kernel_size must be > 0");
  for (int64_t v : s) TORCH_CHECK(v > 0, "bitexact.", op, ": stride must be > 0");
  TORCH_CHECK(p[0] >= 0 && p[1] >= 0 && 2 * p[0] <= k[0] && 2 * p[1] <= k[1], "bitexact.", op,
              ": padding must be >= 0 and at most half the kernel");
  bitexact::pool2d_shape sh;
  sh.batch = x.size(0);
  sh.channels = x.size(1);
  sh.in_h = x.size(2);
  sh.in_w = x.size(3);
  sh.kernel_h = k[0];
  sh.kernel_w = k[1];
  sh.stride_h = s[0];
  sh.stride_w = s[1];
  sh.pad_h = p[0];
  sh.pad_w = p[1];
  sh.ceil_mode = ceil_mode;
  sh.count_include_pad = count_include_pad;
  TORCH_CHECK(sh.out_h() > 0 && sh.out_w() > 0, "bitexact.", op, ": kernel ", k, " larger than the padded input ",
              x.sizes());
  return sh;
}

std::tuple<Tensor, Tensor> max_pool2d(const Tensor& x, std::vector<int64_t> k, std::vector<int64_t> s,
                                      std::vector<int64_t> p, bool ceil_mode) {
  check_float(x, "max_pool2d", "input");
  const bitexact::pool2d_shape sh = pool_shape(x, k, s, p, ceil_mode, true, "max_pool2d");
  const Tensor xc = x.contiguous();
  Tensor y = at::empty({x.size(0), x.size(1), (int64_t)sh.out_h(), (int64_t)sh.out_w()}, x.options());
  Tensor idx = at::empty(y.sizes(), x.options().dtype(at::kLong));
  if (y.numel() == 0) return {y, idx};
  BITEXACT_FLOATING(T, x.scalar_type(), [&] {
    BX_RUN(T, max_pool2d_forward, &sh, xc.data_ptr<T>(), y.data_ptr<T>(), idx.data_ptr<int64_t>());
  });
  return {y, idx};
}
Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Tensor& x, std::vector<int64_t> k,
                           std::vector<int64_t> s, std::vector<int64_t> p, bool ceil_mode) {
  check_float(dy, "max_pool2d_backward", "grad");
  const bitexact::pool2d_shape sh = pool_shape(x, k, s, p, ceil_mode, true, "max_pool2d");
  const Tensor g = dy.contiguous(), ic = indices.contiguous();
  Tensor dx = at::empty(x.sizes(), dy.options());  // the kernel writes every element (+0 first)
  if (dx.numel() == 0) return dx;
  BITEXACT_FLOATING(T, dy.scalar_type(), [&] {
    BX_RUN(T, max_pool2d_backward, &sh, g.data_ptr<T>(), ic.data_ptr<int64_t>(), dx.data_ptr<T>());
  });
  return dx;
}
Tensor avg_pool2d(const Tensor& x, std::vector<int64_t> k, std::vector<int64_t> s, std::vector<int64_t> p, bool ceil_mode,
                  bool count_include_pad) {
  check_float(x, "avg_pool2d", "input");
  const bitexact::pool2d_shape sh = pool_shape(x, k, s, p, ceil_mode, count_include_pad, "avg_pool2d");
  const Tensor xc = x.contiguous();
  Tensor y = at::empty({x.size(0), x.size(1), (int64_t)sh.out_h(), (int64_t)sh.out_w()}, x.options());
  if (y.numel() == 0) return y;
  BITEXACT_FLOATING(T, x.scalar_type(),
                    [&] { BX_RUN(T, avg_pool2d_forward, &sh, xc.data_ptr<T>(), y.data_ptr<T>()); });
  return y;
}
Tensor avg_pool2d_backward(const Tensor& dy, const Tensor& x, std::vector<int64_t> k, std::vector<int64_t> s,
                           std::vector<int64_t> p, bool ceil_mode, bool count_include_pad) {
  check_float(dy, "avg_pool2d_backward", "grad");
  const bitexact::pool2d_shape sh = pool_shape(x, k, s, p, ceil_mode, count_include_pad, "avg_pool2d");
  const Tensor g = dy.contiguous();
  Tensor dx = at::zeros(x.sizes(), dy.options());
  if (dx.numel() == 0) return dx;
  BITEXACT_FLOATING(T, dy.scalar_type(),
                    [&] { BX_RUN(T, avg_pool2d_backward, &sh, g.data_ptr<T>(), dx.data_ptr<T>()); });
  return dx;
}
bitexact::adaptive_pool2d_shape adaptive_shape(const Tensor& x, const std::vector<int64_t>& out) {
  TORCH_CHECK(x.dim() == 4, "bitexact.adaptive_avg_pool2d: input must be 4-D (N, C, H, W), got ", x.sizes());
  TORCH_CHECK(out.size() == 2 && out[0] > 0 && out[1] > 0, "bitexact.adaptive_avg_pool2d: output_size must be 2 "
              "positive values");
  bitexact::adaptive_pool2d_shape sh;
  sh.batch = x.size(0);
  sh.channels = x.size(1);
  sh.in_h = x.size(2);
  sh.in_w = x.size(3);
  sh.out_h = out[0];
  sh.out_w = out[1];
  return sh;
}
Tensor adaptive_avg_pool2d(const Tensor& x, std::vector<int64_t> out) {
  check_float(x, "adaptive_avg_pool2d", "input");
  const auto sh = adaptive_shape(x, out);
  const Tensor xc = x.contiguous();
  Tensor y = at::empty({x.size(0), x.size(1), out[0], out[1]}, x.options());
  if (y.numel() == 0) return y;
  BITEXACT_FLOATING(T, x.scalar_type(),
                    [&] { BX_RUN(T, adaptive_avg_pool2d_forward, &sh, xc.data_ptr<T>(), y.data_ptr<T>()); });
  return y;
}
Tensor adaptive_avg_pool2d_backward(const Tensor& dy, const Tensor& x, std::vector<int64_t> out) {
  check_float(dy, "adaptive_avg_pool2d_backward", "grad");
  const auto sh = adaptive_shape(x, out);
  const Tensor g = dy.contiguous();
  Tensor dx = at::zeros(x.sizes(), dy.options());
  if (dx.numel() == 0) return dx;
  BITEXACT_FLOATING(T, dy.scalar_type(),
                    [&] { BX_RUN(T, adaptive_avg_pool2d_backward, &sh, g.data_ptr<T>(), dx.data_ptr<T>()); });
  return dx;
}

// ---- keyed randomness ---------------------------------------------------------------------------
// Streams keyed by (seed, step, tag): bitexact::stream<philox4x32_10>::from_seed(seed, step, 0, tag).

// (y, mask): sample b of x (its first dim) uses the stream's values
// [sample_ids[b] * n, (sample_ids[b] + 1) * n), n = elements per sample; so a sample's mask
// depends on its global index alone, never on the batch it is in, the rank or the threads.
std::tuple<Tensor, Tensor> dropout(const Tensor& self, double p, int64_t seed, int64_t step, int64_t tag,
                                   const Tensor& sample_ids) {
  const char* op = "dropout";
  check_float(self, op, "input");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "bitexact.dropout: p must be in [0, 1), got ", p);
  const Tensor ids = check_index(sample_ids, op, "sample_ids").reshape({-1});
  const Tensor x = self.contiguous();
  const int64_t batch = x.dim() == 0 ? 1 : x.size(0);
  TORCH_CHECK(ids.numel() == batch, "bitexact.dropout: ", ids.numel(), " sample ids for a batch of ", batch);
  const int64_t n = batch == 0 ? 0 : x.numel() / batch;
  Tensor y = at::empty_like(x);
  Tensor mask = at::empty(x.sizes(), x.options().dtype(at::kByte));
  const double keep = 1.0 - p;
  const int64_t* id = ids.data_ptr<int64_t>();
  for (int64_t b = 0; b < batch; ++b)
    TORCH_CHECK_INDEX(id[b] >= 0, "bitexact.dropout: negative sample id ", id[b], " at position ", b);
  BITEXACT_FLOATING(T, self.scalar_type(), [&] {
    BX_RUN(T, dropout, seed, step, tag, id, batch, n, x.data_ptr<T>(), y.data_ptr<T>(),
           mask.data_ptr<std::uint8_t>(), keep);
  });
  return {y, mask};
}

// Values [first, first + numel) of the (seed, step, tag) stream: uniform [0, 1) or standard normal.
Tensor random_values(std::vector<int64_t> size, std::string dist, int64_t seed, int64_t step, int64_t tag, int64_t first,
              bool dbl) {
  TORCH_CHECK(dist == "uniform" || dist == "normal", "bitexact.random: dist must be 'uniform' or 'normal'");
  Tensor out = at::empty(size, at::TensorOptions().dtype(dbl ? at::kDouble : at::kFloat));
  BITEXACT_FLOATING(T, out.scalar_type(), [&] {
    BX_RUN(T, random, seed, step, tag, first, dist == "normal", out.data_ptr<T>(), out.numel());
  });
  return out;
}

// Standard normal values truncated to [a, b] by rejection (torch_kernels.cpp): element i
// depends on (seed, step, tag, i) only.
Tensor trunc_normal(std::vector<int64_t> size, int64_t seed, int64_t step, int64_t tag, double a, double b, bool dbl) {
  TORCH_CHECK(a < b, "bitexact.trunc_normal: a must be < b");
  Tensor out = at::empty(size, at::TensorOptions().dtype(dbl ? at::kDouble : at::kFloat));
  BITEXACT_FLOATING(T, out.scalar_type(),
                    [&] { BX_RUN(T, trunc_normal, seed, step, tag, a, b, out.data_ptr<T>(), out.numel()); });
  return out;
}

// perm(first), ..., perm(first + count - 1) of bitexact::permutation::for_epoch(n, seed, epoch).
Tensor permutation(int64_t n, int64_t seed, int64_t epoch, int64_t first, int64_t count) {
  TORCH_CHECK(n >= 1, "bitexact.permutation: n must be >= 1");
  Tensor out = at::empty({count}, at::TensorOptions().dtype(at::kLong));
  const choice& c = current();
  done(c, c.k->permutation(static_cast<int>(c.isa), threads_arg(), n, seed, epoch, first, out.data_ptr<int64_t>(), count));
  return out;
}

// ---- the scalar reference, for the tests --------------------------------------------------------

Tensor ref_sum_rows(const Tensor& x2d, bool exact) {
  const Tensor x = x2d.contiguous();
  Tensor out = at::empty({x.size(0)}, x.options());
  BITEXACT_FLOATING(T, x.scalar_type(),
                    [&] { BX_RUN(T, ref_sum_rows, x.data_ptr<T>(), x.size(0), x.size(1), exact, out.data_ptr<T>()); });
  return out;
}
Tensor ref_rowwise(const Tensor& x2d, std::string what, const c10::optional<Tensor>& w, const c10::optional<Tensor>& b,
                   double eps) {
  const Tensor x = x2d.contiguous();
  Tensor y = at::empty_like(x);
  const int64_t rows = x.size(0), cols = x.size(1);
  const int code = what == "softmax" ? 0 : what == "log_softmax" ? 1 : what == "rms_norm" ? 2 : what == "layer_norm" ? 3 : -1;
  TORCH_CHECK(code >= 0, "bitexact.ref_rowwise: unknown op '", what, "'");
  const Tensor wc = w && w->defined() ? w->contiguous() : Tensor();
  const Tensor bc = b && b->defined() ? b->contiguous() : Tensor();
  BITEXACT_FLOATING(T, x.scalar_type(), [&] {
    BX_RUN(T, ref_rowwise, x.data_ptr<T>(), rows, cols, code, wc.defined() ? wc.data_ptr<T>() : nullptr,
           bc.defined() ? bc.data_ptr<T>() : nullptr, eps, y.data_ptr<T>());
  });
  return y;
}
// out (n_out, width) += rows of src by idx.
Tensor ref_index_add_rows(const Tensor& out0, const Tensor& idx0, const Tensor& src0) {
  Tensor out = out0.contiguous().clone();
  const Tensor idx = idx0.contiguous(), src = src0.contiguous();
  BITEXACT_FLOATING(T, out.scalar_type(), [&] {
    BX_RUN(T, ref_index_add_rows, out.data_ptr<T>(), out.size(0), out.size(1), idx.data_ptr<int64_t>(), src.data_ptr<T>(),
           idx.numel());
  });
  return out;
}
Tensor ref_scatter_reduce_1d(const Tensor& out0, const Tensor& idx0, const Tensor& src0, std::string reduce,
                             bool include_self) {
  Tensor out = out0.contiguous().clone();
  const Tensor idx = idx0.contiguous(), src = src0.contiguous();
  const int op = static_cast<int>(parse_reduce(reduce, "ref"));
  BITEXACT_FLOATING(T, out.scalar_type(), [&] {
    BX_RUN(T, ref_scatter_reduce_1d, out.data_ptr<T>(), out.numel(), idx.data_ptr<int64_t>(), src.data_ptr<T>(),
           idx.numel(), op, include_self);
  });
  return out;
}
Tensor ref_embedding_bag(const Tensor& table, const Tensor& idx0, const Tensor& off0, int64_t mode,
                         const c10::optional<Tensor>& psw) {
  const Tensor tab = table.contiguous(), idx = idx0.contiguous(), off = off0.contiguous();
  Tensor out = at::zeros({off.numel(), tab.size(1)}, tab.options());
  const int m = static_cast<int>(parse_mode(mode));
  const Tensor w = psw && psw->defined() ? psw->contiguous() : Tensor();
  BITEXACT_FLOATING(T, tab.scalar_type(), [&] {
    BX_RUN(T, ref_embedding_bag, out.data_ptr<T>(), tab.data_ptr<T>(), tab.size(1), idx.data_ptr<int64_t>(), idx.numel(),
           off.data_ptr<int64_t>(), off.numel(), m, w.defined() ? w.data_ptr<T>() : nullptr);
  });
  return out;
}

Tensor ref_mm(const Tensor& a0, const Tensor& b0) {
  const Tensor a = a0.contiguous(), b = b0.contiguous();
  Tensor c = at::zeros({a.size(0), b.size(1)}, a.options());
  BITEXACT_FLOATING(T, a.scalar_type(), [&] {
    BX_RUN(T, ref_mm, a.data_ptr<T>(), b.data_ptr<T>(), c.data_ptr<T>(), a.size(0), b.size(1), a.size(1));
  });
  return c;
}
// (y, dx, dw, db) of the reference convolution for dy.
std::tuple<Tensor, Tensor, Tensor, Tensor> ref_conv2d(const Tensor& x0, const Tensor& w0, const c10::optional<Tensor>& b0,
                                                      const Tensor& dy0, std::vector<int64_t> stride,
                                                      std::vector<int64_t> padding, std::vector<int64_t> dilation,
                                                      int64_t groups) {
  const Tensor x = x0.contiguous(), w = w0.contiguous(), dy = dy0.contiguous();
  const Tensor b = b0 && b0->defined() ? b0->contiguous() : Tensor();
  const bitexact::conv2d_shape s = conv_shape(x, w, stride, padding, dilation, groups);
  Tensor y = at::zeros({x.size(0), w.size(0), (int64_t)s.out_h(), (int64_t)s.out_w()}, x.options());
  Tensor dx = at::zeros_like(x), dw = at::zeros_like(w), db = at::zeros({w.size(0)}, w.options());
  BITEXACT_FLOATING(T, x.scalar_type(), [&] {
    BX_RUN(T, ref_conv2d, &s, x.data_ptr<T>(), w.data_ptr<T>(), b.defined() ? b.data_ptr<T>() : nullptr, dy.data_ptr<T>(),
           y.data_ptr<T>(), dx.data_ptr<T>(), dw.data_ptr<T>(), db.data_ptr<T>());
  });
  return {y, dx, dw, db};
}

}  // namespace

TORCH_LIBRARY(bitexact, m) {
  m.def("set_isa(str isa) -> ()", &set_isa);
  m.def("isa() -> str", &isa_name);
  m.def("isa_variant() -> str", &isa_variant);
  m.def("threads_backend() -> str", &threads_backend);
  m.def("set_threads_backend(str backend) -> ()", &set_threads_backend);
  m.def("available_isas() -> str[]", &available_isas);
  m.def("tag_of(str name) -> int", &tag_of);
  m.def("sum(Tensor self, int[] dim, bool keepdim, bool mean, bool exact) -> Tensor", &sum);
  m.def("softmax(Tensor self, int dim) -> Tensor", &softmax);
  m.def("log_softmax(Tensor self, int dim) -> Tensor", &log_softmax);
  m.def("cross_entropy(Tensor input, Tensor target, Tensor? weight, int ignore_index, int reduction, bool exact) -> (Tensor, Tensor, Tensor, Tensor)",
        &cross_entropy);
  m.def("cross_entropy_backward(Tensor grad, Tensor input, Tensor safe, Tensor w, Tensor denom, int reduction) -> Tensor",
        &cross_entropy_backward);
  m.def("layer_norm(Tensor self, int normalized_numel, Tensor? weight, Tensor? bias, float eps) -> Tensor", &layer_norm);
  m.def("rms_norm(Tensor self, int normalized_numel, Tensor? weight, float eps) -> Tensor", &rms_norm);
  m.def("index_add(Tensor self, int dim, Tensor index, Tensor source, bool exact) -> Tensor", &index_add);
  m.def("scatter_reduce(Tensor self, int dim, Tensor index, Tensor src, str reduce, bool include_self, bool exact) -> Tensor",
        &scatter_reduce);
  m.def("embedding_bag(Tensor weight, Tensor indices, Tensor offsets, int mode, Tensor? per_sample_weights, bool exact) -> (Tensor, Tensor)",
        &embedding_bag);
  m.def("embedding_bag_backward(Tensor grad, Tensor indices, Tensor offsets, int num_weights, int mode, Tensor? per_sample_weights, Tensor max_positions, bool exact) -> Tensor",
        &embedding_bag_backward);
  m.def("mm(Tensor self, Tensor mat2, bool exact) -> Tensor", &mm);
  m.def("bmm(Tensor self, Tensor mat2, bool exact) -> Tensor", &bmm);
  m.def("linear(Tensor input, Tensor weight, Tensor? bias, bool exact) -> Tensor", &linear);
  m.def("linear_backward(Tensor grad, Tensor input, Tensor weight, bool need_bias, bool exact) -> (Tensor, Tensor, Tensor)",
        &linear_backward);
  m.def("conv2d(Tensor input, Tensor weight, Tensor? bias, int[] stride, int[] padding, int[] dilation, int groups, bool exact) -> Tensor",
        &conv2d);
  m.def("conv2d_backward(Tensor grad, Tensor input, Tensor weight, int[] stride, int[] padding, int[] dilation, int groups, bool need_bias, bool exact, bool need_input=True) -> (Tensor, Tensor, Tensor)",
        &conv2d_backward);
  m.def("max_pool2d(Tensor self, int[] kernel_size, int[] stride, int[] padding, bool ceil_mode) -> (Tensor, Tensor)",
        &max_pool2d);
  m.def("max_pool2d_backward(Tensor grad, Tensor indices, Tensor self, int[] kernel_size, int[] stride, int[] padding, bool ceil_mode) -> Tensor",
        &max_pool2d_backward);
  m.def("avg_pool2d(Tensor self, int[] kernel_size, int[] stride, int[] padding, bool ceil_mode, bool count_include_pad) -> Tensor",
        &avg_pool2d);
  m.def("avg_pool2d_backward(Tensor grad, Tensor self, int[] kernel_size, int[] stride, int[] padding, bool ceil_mode, bool count_include_pad) -> Tensor",
        &avg_pool2d_backward);
  m.def("adaptive_avg_pool2d(Tensor self, int[] output_size) -> Tensor", &adaptive_avg_pool2d);
  m.def("adaptive_avg_pool2d_backward(Tensor grad, Tensor self, int[] output_size) -> Tensor",
        &adaptive_avg_pool2d_backward);
  m.def("dropout(Tensor self, float p, int seed, int step, int tag, Tensor sample_ids) -> (Tensor, Tensor)", &dropout);
  m.def("random(int[] size, str dist, int seed, int step, int tag, int first, bool as_double) -> Tensor", &random_values);
  m.def("trunc_normal(int[] size, int seed, int step, int tag, float a, float b, bool as_double) -> Tensor", &trunc_normal);
  m.def("permutation(int n, int seed, int epoch, int first, int count) -> Tensor", &permutation);
  m.def("ref_sum_rows(Tensor x, bool exact) -> Tensor", &ref_sum_rows);
  m.def("ref_rowwise(Tensor x, str what, Tensor? weight, Tensor? bias, float eps) -> Tensor", &ref_rowwise);
  m.def("ref_index_add_rows(Tensor out, Tensor index, Tensor src) -> Tensor", &ref_index_add_rows);
  m.def("ref_scatter_reduce_1d(Tensor out, Tensor index, Tensor src, str reduce, bool include_self) -> Tensor",
        &ref_scatter_reduce_1d);
  m.def("ref_mm(Tensor a, Tensor b) -> Tensor", &ref_mm);
  m.def("ref_conv2d(Tensor input, Tensor weight, Tensor? bias, Tensor grad, int[] stride, int[] padding, int[] dilation, int groups) -> (Tensor, Tensor, Tensor, Tensor)",
        &ref_conv2d);
  m.def("ref_embedding_bag(Tensor weight, Tensor indices, Tensor offsets, int mode, Tensor? per_sample_weights) -> Tensor",
        &ref_embedding_bag);
}
