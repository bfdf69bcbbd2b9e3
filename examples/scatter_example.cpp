// scatter_example: embedding gradients that do not change with the thread count.
//
// A batch of token ids looks up rows of an embedding table (embedding_bag, sum mode); the
// backward pass scatters the output gradient back into the table's gradient. With float
// atomics (what frameworks do on GPUs) the sums change from run to run; here they are a pure
// function of the inputs, in the canonical order (or exactly, with tier::exact).
#include <bitexact/bitexact.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

int main() {
  const std::size_t vocab = 1000, width = 64, bags = 256, per_bag = 20, n = bags * per_bag;
  auto s = bitexact::stream<bitexact::philox4x32_10>::from_seed(42, /*step=*/0, /*rank=*/0, bitexact::tag_of("example"));

  std::vector<float> table(vocab * width);
  bitexact::generate_normal(s, 0, table.data(), table.size());
  std::vector<std::uint32_t> ids(n);
  bitexact::generate_uniform_int(s, 0, ids.data(), n, static_cast<std::uint32_t>(vocab));
  std::vector<std::int64_t> indices(ids.begin(), ids.end()), offsets(bags);
  for (std::size_t b = 0; b < bags; ++b) offsets[b] = static_cast<std::int64_t>(b * per_bag);

  // forward
  std::vector<float> out(bags * width);
  bitexact::embedding_bag(out.data(), table.data(), vocab, width, indices.data(), n, offsets.data(), bags,
                          bitexact::bag_mode::sum);
  // backward, with 1 and with 4 threads: the same bits
  std::vector<float> grad_out(out.size(), 0.01f), g1(table.size(), 0.0f), g4(table.size(), 0.0f);
  bitexact::embedding_bag_backward(g1.data(), vocab, width, grad_out.data(), indices.data(), n, offsets.data(), bags,
                                   bitexact::bag_mode::sum, static_cast<const float*>(nullptr),
                                   bitexact::tier::fixed_order, bitexact::execution{1});
  bitexact::embedding_bag_backward(g4.data(), vocab, width, grad_out.data(), indices.data(), n, offsets.data(), bags,
                                   bitexact::bag_mode::sum, static_cast<const float*>(nullptr),
                                   bitexact::tier::fixed_order, bitexact::execution{4});
  const bool same = std::memcmp(g1.data(), g4.data(), g1.size() * sizeof(float)) == 0;

  // index_add, exact tier: the correctly rounded sum whatever the order of the sources
  std::vector<float> hist(10, 0.0f), w(n, 0.1f);
  std::vector<std::int64_t> bins(n);
  for (std::size_t i = 0; i < n; ++i) bins[i] = static_cast<std::int64_t>(ids[i] % 10);
  bitexact::index_add(hist.data(), hist.size(), bins.data(), w.data(), n, bitexact::tier::exact);

  std::printf("out[0][0] = %.9g, grad rows equal on 1 and 4 threads: %s, bin 0 = %.9g\n", out[0], same ? "yes" : "NO",
              hist[0]);
  return same ? 0 : 1;
}
