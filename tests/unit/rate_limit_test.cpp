#include "roomcast/rate_limit.hpp"

#include <catch2/catch.hpp>

using roomcast::token_bucket;
using namespace std::chrono_literals;

TEST_CASE("a token bucket allows a burst, then its rate") {
  token_bucket bucket(10, 3);  // 10 per second, 3 at once
  const auto t0 = token_bucket::clock::time_point{} + 1h;
  CHECK(bucket.try_take(t0));
  CHECK(bucket.try_take(t0));
  CHECK(bucket.try_take(t0));
  CHECK_FALSE(bucket.try_take(t0));
  CHECK_FALSE(bucket.try_take(t0 + 50ms));  // half a token
  CHECK(bucket.try_take(t0 + 100ms));
  CHECK_FALSE(bucket.try_take(t0 + 100ms));
  // A long pause refills up to the burst, not beyond.
  const auto later = t0 + 10s;
  for (int i = 0; i < 3; ++i)
    CHECK(bucket.try_take(later));
  CHECK_FALSE(bucket.try_take(later));
}

TEST_CASE("a rate of zero never limits") {
  token_bucket unlimited(0, 0);
  const auto now = token_bucket::clock::now();
  for (int i = 0; i < 1000; ++i)
    REQUIRE(unlimited.try_take(now));
}
