#pragma once
// A log-bucket histogram in fixed memory, like HdrHistogram with 2 significant binary digits
// more than a plain power-of-two histogram: every bucket is at most 1/64 (1.6 %) of its value
// wide, values below 128 are exact. 3776 counters cover the whole uint64 range.
#include <array>
#include <cstdint>

namespace roomcast::loadgen {

class log_histogram {
 public:
  static constexpr unsigned sub_bits = 6;
  static constexpr std::size_t bucket_count = (64 - sub_bits + 1) << sub_bits;

  void record(std::uint64_t value) noexcept {
    ++counts_[index_of(value)];
    ++total_;
    sum_ += static_cast<double>(value);
    if (value > max_) max_ = value;
    if (value < min_) min_ = value;
  }

  std::uint64_t count() const noexcept { return total_; }
  std::uint64_t max() const noexcept { return total_ == 0 ? 0 : max_; }
  std::uint64_t min() const noexcept { return total_ == 0 ? 0 : min_; }
  double mean() const noexcept { return total_ == 0 ? 0.0 : sum_ / static_cast<double>(total_); }

  /// The highest value equivalent to the sample at `percent` (0 < percent <= 100): at least
  /// that share of the samples are at or below it. 0 when empty.
  std::uint64_t percentile(double percent) const noexcept;

  static std::size_t index_of(std::uint64_t value) noexcept;
  static std::uint64_t lowest_in(std::size_t index) noexcept;
  static std::uint64_t highest_in(std::size_t index) noexcept;

 private:
  std::array<std::uint64_t, bucket_count> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  double sum_ = 0;
};

}  // namespace roomcast::loadgen
