#pragma once
// Two well-behaved members of room 1234, for tests that check that hostile input elsewhere
// costs them nothing.
#include <string>

#include <catch2/catch.hpp>

#include "test_client.hpp"

namespace roomcast::testing {

// A room with two well-behaved members; `check` asserts that both still get every message.
struct bystanders {
  test_client alice;
  test_client bob;
  int said = 0;

  static net::awaitable<bystanders> open(std::uint16_t port) {
    // Each co_await in a statement of its own: g++ 12 mishandles co_await results used as
    // initializers of aggregates, function arguments or conditional operands.
    auto alice = co_await test_client::connect(port);
    auto bob = co_await test_client::connect(port);
    bystanders pair{std::move(alice), std::move(bob)};
    co_await pair.alice.create("1234", "alice");
    co_await pair.bob.join("1234", "bob");
    co_await pair.alice.receive();
    co_return pair;
  }
  net::awaitable<void> check() {
    const auto text = "ok " + std::to_string(++said);
    co_await alice.say(text);
    const auto to_alice = co_await alice.receive();
    CHECK(to_alice.at("text").as_string() == text);
    const auto to_bob = co_await bob.receive();
    CHECK(to_bob.at("text").as_string() == text);
  }
};

}  // namespace roomcast::testing
