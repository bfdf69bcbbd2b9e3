// libFuzzer: scatter ops with arbitrary indices (negative, huge), offsets, sizes, values and
// execution. A call either throws (std::invalid_argument, bitexact::index_error) with out
// untouched, or equals the reference (reference/scatter.hpp) bit for bit.
#include <stdexcept>
#include <vector>

#include <bitexact/reference/scatter.hpp>
#include <bitexact/scatter.hpp>

#include "fuzz_input.hpp"

using namespace bitexact;

namespace {

std::int64_t index_from(fuzz::input& in, std::size_t n_out) {
  const std::uint8_t k = in.take<std::uint8_t>();
  if (k < 240 || n_out == 0) return n_out ? static_cast<std::int64_t>(k % n_out) : 0;  // mostly valid
  return in.take<std::int64_t>();                                                       // anything
}

template <class F>
bool throws_untouched(F call, const std::vector<float>& out_before, std::vector<float>& out) {
  try {
    call();
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(std::memcmp(out.data(), out_before.data(), out.size() * sizeof(float)) == 0);
    return true;
  } catch (const std::out_of_range&) {  // index_error
    FUZZ_CHECK(std::memcmp(out.data(), out_before.data(), out.size() * sizeof(float)) == 0);
    return true;
  }
  return false;
}

bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  fuzz::input in{data, size};
  cpu::detail::set_min_work_per_thread(16);
  const std::uint8_t mode = in.take<std::uint8_t>();
  const auto isas = usable_isas();
  const execution e{1 + in.take<std::uint8_t>() % 8, isas[in.take<std::uint8_t>() % isas.size()]};
  const tier t = (mode & 0x80) ? tier::exact : tier::fixed_order;
  const std::size_t n_out = in.take<std::uint8_t>();       // 0 .. 255
  const std::size_t n = in.take<std::uint16_t>() % 2048;
  std::vector<std::int64_t> idx(n);
  std::vector<float> src(n);
  for (std::size_t i = 0; i < n; ++i) {
    idx[i] = index_from(in, n_out);
    src[i] = in.left() >= 4 ? in.take<float>() : static_cast<float>(i % 7) - 3.0f;
  }
  std::vector<float> out(n_out + 1, 0.25f), want;
  for (std::size_t k = 0; k < out.size(); ++k) out[k] = static_cast<float>(k) * 0.5f - 3.0f;
  const std::vector<float> before = out;
  switch (mode % 5) {
    case 0: {  // index_add
      if (throws_untouched([&] { index_add(out.data(), n_out, idx.data(), src.data(), n, t, e); }, before, out)) break;
      want = before;
      if (t == tier::exact)
        reference::index_add_exact<float, float>(want.data(), n_out, idx.data(), src.data(), n);
      else
        reference::index_add_fixed_order<float, float>(want.data(), n_out, idx.data(), src.data(), n);
      FUZZ_CHECK(same(want, out));
      break;
    }
    case 1: {  // scatter_reduce
      const scatter_op op = static_cast<scatter_op>((mode >> 3) % 5);
      const bool self = mode & 4;
      if (throws_untouched([&] { scatter_reduce(out.data(), n_out, idx.data(), src.data(), n, op, self, t, e); }, before, out))
        break;
      want = before;
      reference::scatter_reduce(want.data(), n_out, idx.data(), src.data(), n, op, self, t == tier::exact);
      FUZZ_CHECK(same(want, out));
      break;
    }
    case 2: {  // segment_reduce, unsorted and sorted
      const scatter_op op = static_cast<scatter_op>((mode >> 3) % 5);
      const bool sorted = mode & 4;
      if (sorted) std::sort(idx.begin(), idx.end());
      if (throws_untouched(
              [&] {
                if (sorted)
                  sorted_segment_reduce(out.data(), n_out, idx.data(), src.data(), n, op, t, e);
                else
                  segment_reduce(out.data(), n_out, idx.data(), src.data(), n, op, t, e);
              },
              before, out))
        break;
      want = before;
      reference::segment_reduce(want.data(), n_out, idx.data(), src.data(), n, op, t == tier::exact);
      FUZZ_CHECK(same(want, out));
      break;
    }
    case 3: {  // embedding_bag with arbitrary offsets
      const std::size_t width = 1 + (mode >> 3) % 4, n_bags = in.take<std::uint8_t>() % 16;
      const bag_mode bm = static_cast<bag_mode>((mode >> 5) % 3);
      std::vector<std::int64_t> offsets(n_bags);
      for (auto& o : offsets) o = in.take<std::uint8_t>() < 230 ? in.take<std::uint16_t>() % (n + 1) : in.take<std::int64_t>();
      std::vector<float> table(n_out * width);
      for (std::size_t k = 0; k < table.size(); ++k) table[k] = src.empty() ? 1.0f : src[k % src.size()];
      std::vector<float> bag_out(n_bags * width + 1, 9.0f);
      const std::vector<float> bag_before = bag_out;
      if (throws_untouched(
              [&] {
                embedding_bag(bag_out.data(), table.data(), n_out, width, idx.data(), n, offsets.data(), n_bags, bm,
                              static_cast<const float*>(nullptr), t, e);
              },
              bag_before, bag_out))
        break;
      want = bag_before;
      reference::embedding_bag(want.data(), table.data(), width, idx.data(), n, offsets.data(), n_bags, bm,
                               static_cast<const float*>(nullptr), t == tier::exact && bm != bag_mode::max);
      FUZZ_CHECK(same(want, bag_out));
      break;
    }
    default: {  // bincount (counts)
      std::vector<std::int64_t> counts(n_out + 1, 5);
      try {
        bincount(counts.data(), n_out, idx.data(), n, e);
      } catch (const std::exception&) {
        for (auto c : counts) FUZZ_CHECK(c == 5);
        break;
      }
      std::vector<std::int64_t> w(n_out + 1, 0);
      w[n_out] = 5;
      for (std::size_t i = 0; i < n; ++i) ++w[static_cast<std::size_t>(idx[i])];
      FUZZ_CHECK(w == counts);
    }
  }
  return 0;
}
