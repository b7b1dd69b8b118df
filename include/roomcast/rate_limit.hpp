#pragma once
/** @file
 * A token bucket: at most `burst` events at once, refilled at `rate` per second. Plain code with
 * the clock passed in, so tests drive it with made-up times.
 */
#include <algorithm>
#include <chrono>

namespace roomcast {

class token_bucket {
 public:
  using clock = std::chrono::steady_clock;

  /** `rate` <= 0 means unlimited. The bucket starts full. */
  token_bucket(double rate, double burst) noexcept : rate_(rate), burst_(burst), tokens_(burst) {}

  /** Takes one token if there is one. */
  bool try_take(clock::time_point now) noexcept {
    if (rate_ <= 0) return true;
    if (last_ != clock::time_point{}) {
      const std::chrono::duration<double> elapsed = now - last_;
      tokens_ = std::min(burst_, tokens_ + elapsed.count() * rate_);
    }
    last_ = now;
    if (tokens_ < 1) return false;
    tokens_ -= 1;
    return true;
  }

 private:
  double rate_;
  double burst_;
  double tokens_;
  clock::time_point last_{};
};

}  // namespace roomcast
