// bitexact/tier.hpp - the two tiers of every reducing op (DESIGN 2).
#pragma once

namespace bitexact {

enum class tier {
  /// A documented canonical order of floating-point operations (core/fixed_order.hpp for the
  /// reductions): the same bits for any threads, ISA, GPU or launch shape. The default.
  fixed_order,
  /// The correctly rounded value of the exact result (core/exact.hpp): additionally independent
  /// of the order and partition of the inputs (threads, blocks, ranks).
  exact,
};

}  // namespace bitexact
