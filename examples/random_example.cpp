// Deterministic dropout and data shuffling that survive restarts, rank counts and thread counts.
#include <bitexact/bitexact.hpp>

#include <cstdio>
#include <vector>

int main() {
  const std::uint64_t seed = 1234, step = 17;
  const std::size_t batch = 4, width = 8;

  // Keyed by (seed, step, tag): resuming at step 17 regenerates exactly these masks.
  const auto s = bitexact::stream<>::from_seed(seed, step, 0, bitexact::tag_of("dropout.fc1"));
  std::vector<float> x(batch * width, 1.0f), y(batch * width);
  // Value index = global sample index * width: any rank holding sample i gets the same mask.
  for (std::size_t sample = 0; sample < batch; ++sample)
    bitexact::dropout(s, sample * width, x.data() + sample * width, y.data() + sample * width, width, 0.75);
  for (std::size_t i = 0; i < batch; ++i) {
    for (std::size_t j = 0; j < width; ++j) std::printf("%5.2f ", y[i * width + j]);
    std::printf("\n");
  }

  // Shuffle 10 items for epoch 3 without storing a permutation.
  const auto perm = bitexact::permutation::for_epoch(10, seed, 3);
  std::printf("epoch 3 order:");
  for (std::uint64_t i = 0; i < 10; ++i) std::printf(" %llu", static_cast<unsigned long long>(perm(i)));
  std::printf("\n");

  // Normal samples: same bits with 1 thread scalar or all threads on the best ISA.
  std::vector<double> a(1000), b(1000);
  bitexact::generate_normal(s, 0, a.data(), a.size(), bitexact::execution{1, bitexact::isa::scalar});
  bitexact::generate_normal(s, 0, b.data(), b.size());
  std::printf("normal: scalar/1 thread == %s/auto threads: %s\n", bitexact::isa_name(bitexact::resolved_isa()),
              a == b ? "yes" : "NO");
  return a == b ? 0 : 1;
}
