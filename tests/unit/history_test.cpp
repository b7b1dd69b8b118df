// A room's history: what is kept under the event and byte caps, and what a resume after a given
// event can be served.
#include "roomcast/history.hpp"

#include <catch2/catch.hpp>

using namespace roomcast;
using kind = room_history::kind;

namespace {

shared_frame event(std::uint64_t seq, std::size_t padding = 0) {
  return make_frame(R"({"type":"message","seq":)" + std::to_string(seq) + R"(,"text":")"
                    + std::string(padding, 'x') + "\"}");
}

std::vector<std::string> payloads(const std::vector<shared_frame>& frames) {
  std::vector<std::string> out;
  for (const auto& f : frames)
    out.emplace_back(f->payload());
  return out;
}

}  // namespace

TEST_CASE("history keeps the last N events and serves every event after a kept one") {
  room_history history({.events = 3, .bytes = 1 << 20});
  for (std::uint64_t seq = 1; seq <= 5; ++seq)
    history.record(seq, event(seq), kind::chat);
  CHECK(history.size() == 3);
  CHECK(history.last_seq() == 5U);

  const auto after_two = history.after(2);  // 3, 4, 5 are kept
  REQUIRE(after_two.has_value());
  CHECK(payloads(*after_two) == payloads({event(3), event(4), event(5)}));
  const auto after_four = history.after(4);
  REQUIRE(after_four.has_value());
  CHECK(payloads(*after_four) == payloads({event(5)}));
  const auto nothing_missed = history.after(5);
  REQUIRE(nothing_missed.has_value());
  CHECK(nothing_missed->empty());

  CHECK_FALSE(history.after(1).has_value());  // event 2 is gone: the gap cannot be served
  CHECK_FALSE(history.after(0).has_value());
  CHECK_FALSE(history.after(6).has_value());  // ahead of the room
}

TEST_CASE("history's byte cap drops the oldest events, and an event over the cap is not kept") {
  const auto size = event(1, 100)->payload().size();
  room_history history({.events = 100, .bytes = 2 * size + size / 2});
  for (std::uint64_t seq = 1; seq <= 4; ++seq)
    history.record(seq, event(seq, 100), kind::chat);
  CHECK(history.size() == 2);  // 3 and 4
  CHECK(history.bytes() == 2 * size);
  CHECK(history.after(2).has_value());
  CHECK_FALSE(history.after(1).has_value());

  history.record(5, event(5, 4 * size), kind::chat);  // larger than the cap on its own
  CHECK(history.size() == 0);
  CHECK(history.bytes() == 0);
  CHECK(history.last_seq() == 5U);
  CHECK_FALSE(history.after(4).has_value());  // event 5 would be missing
  REQUIRE(history.after(5).has_value());      // nothing after 5: nothing to miss
  history.record(6, event(6), kind::chat);
  REQUIRE(history.after(5).has_value());
  CHECK(history.after(5)->size() == 1);
}

TEST_CASE("history's chat is the kept messages only; membership events are kept for resume") {
  room_history history({.events = 10, .bytes = 1 << 20});
  history.record(7, event(7), kind::membership);  // a room may start its history anywhere
  history.record(8, event(8), kind::chat);
  history.record(9, event(9), kind::membership);
  history.record(10, event(10), kind::chat);
  CHECK(payloads(history.chat()) == payloads({event(8), event(10)}));
  REQUIRE(history.after(6).has_value());
  CHECK(history.after(6)->size() == 4);
}

TEST_CASE("history with no events allowed keeps nothing and serves only a resume at the end") {
  room_history history({.events = 0, .bytes = 1 << 20});
  history.record(1, event(1), kind::chat);
  history.record(2, event(2), kind::chat);
  CHECK(history.size() == 0);
  CHECK(history.chat().empty());
  CHECK_FALSE(history.after(1).has_value());
  CHECK(history.after(2).has_value());
}
