#include "histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace roomcast::loadgen {

std::size_t log_histogram::index_of(std::uint64_t value) noexcept {
  constexpr std::uint64_t exact = std::uint64_t{1} << (sub_bits + 1);
  if (value < exact) return static_cast<std::size_t>(value);
  const unsigned msb = 63U - static_cast<unsigned>(std::countl_zero(value));
  const unsigned shift = msb - sub_bits;
  const auto top = value >> shift;  // in [2^sub_bits, 2^(sub_bits+1))
  return (static_cast<std::size_t>(shift) << sub_bits) + static_cast<std::size_t>(top);
}

std::uint64_t log_histogram::lowest_in(std::size_t index) noexcept {
  constexpr std::size_t exact = std::size_t{1} << (sub_bits + 1);
  if (index < exact) return index;
  const auto shift = (index >> sub_bits) - 1;
  const auto top = (index & ((std::size_t{1} << sub_bits) - 1)) + (std::size_t{1} << sub_bits);
  return static_cast<std::uint64_t>(top) << shift;
}

std::uint64_t log_histogram::highest_in(std::size_t index) noexcept {
  if (index + 1 >= bucket_count) return UINT64_MAX;
  return lowest_in(index + 1) - 1;
}

std::uint64_t log_histogram::percentile(double percent) const noexcept {
  if (total_ == 0) return 0;
  const double share = std::clamp(percent, 0.0, 100.0) / 100.0;
  auto rank = static_cast<std::uint64_t>(std::ceil(share * static_cast<double>(total_)));
  rank = std::clamp<std::uint64_t>(rank, 1, total_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < bucket_count; ++i) {
    seen += counts_[i];
    if (seen >= rank) return std::clamp(highest_in(i), min_, max_);
  }
  return max_;
}

}  // namespace roomcast::loadgen
