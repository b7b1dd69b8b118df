// The hub against Trompeloeil mocks of the member interface, on a single-threaded io_context
// driven step by step: who receives what, in which order, and what happens to a slow consumer.
#include "roomcast/hub.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>
#include <catch2/trompeloeil.hpp>

#include "roomcast/net.hpp"

#include "step_runner.hpp"

using namespace roomcast;
using roomcast::testing::step_runner;
using trompeloeil::_;
namespace json = boost::json;

namespace {

struct mock_member : member {
  MAKE_MOCK1(deliver, delivery(const shared_frame&), override);
  MAKE_MOCK0(evict, void(), override);
  // Not a mock: a room may end after the test's expectations are gone (the fixture's shutdown).
  void room_closing() override {
    ++closing_calls;
    if (on_closing) on_closing();
  }
  int closing_calls = 0;
  std::function<void()> on_closing;
  // Not mocks either: counted, for the resume tests.
  void replaced() override { ++replaced_calls; }
  void restart() override { ++restart_calls; }
  int replaced_calls = 0;
  int restart_calls = 0;
};

// The JSON of each WebSocket text frame in `wire`: a newcomer's history and a resume's missed
// events come in one frame object with their welcome, as consecutive frames. Server frames are
// unmasked: a 2-byte header, then a 16- or 64-bit length when the 7-bit one says 126 or 127.
std::vector<json::object> text_frames(const std::string& wire) {
  std::vector<json::object> out;
  std::size_t at = 0;
  while (at + 2 <= wire.size()) {
    std::size_t length = static_cast<unsigned char>(wire[at + 1]) & 0x7FU;
    std::size_t header = 2;
    const int extra = length == 126 ? 2 : length == 127 ? 8 : 0;
    if (extra > 0) {
      length = 0;
      for (int i = 0; i < extra; ++i)
        length = (length << 8) | static_cast<unsigned char>(wire[at + 2 + i]);
      header += extra;
    }
    out.push_back(json::parse(wire.substr(at + header, length)).as_object());
    at += header + length;
  }
  return out;
}

// A mock member that accepts every frame and keeps it, parsed, for later checks.
struct recording_member {
  std::shared_ptr<mock_member> mock = std::make_shared<mock_member>();
  std::vector<json::object> frames;
  delivery answer = delivery::queued;
  std::unique_ptr<trompeloeil::expectation> accept_all =
      NAMED_ALLOW_CALL(*mock, deliver(_)).LR_SIDE_EFFECT(keep(*_1)).LR_RETURN(answer);
  void keep(const frame& got) {
    for (auto& f : text_frames(got.bytes))
      frames.push_back(std::move(f));
  }
  int closing_calls() const { return mock->closing_calls; }

  std::vector<std::string> texts_of(std::string_view event) const {
    std::vector<std::string> texts;
    for (const auto& f : frames) {
      if (f.at("event").as_string() == event) texts.emplace_back(f.at("text").as_string());
    }
    return texts;
  }
};

room_id room_number(std::string_view digits) {
  return *room_id::from_json(json::value(json::string_view(digits.data(), digits.size())));
}

struct hub_fixture {
  hub_fixture() : hub_fixture(hub_options{.room_inbox = 4, .max_rooms = 3, .max_members = 3}) {}
  explicit hub_fixture(const hub_options& options) : rooms(io.get_executor(), options) {}

  net::io_context io;
  hub rooms;

  // Rooms must end before the io_context is destroyed (see hub::shutdown).
  ~hub_fixture() {
    rooms.shutdown();
    io.restart();
    io.poll();
  }

  // Runs a hub call to completion, then lets the rooms handle everything it queued.
  template <class T>
  T run(net::awaitable<T> task) {
    return steps.run(std::move(task));
  }
  template <class Done>
  void drive(Done done) {
    steps.drive(done);
  }
  step_runner steps{io};

  admission admit(room_event_kind kind, std::string_view room, std::string name,
                  const recording_member& who) {
    return run(kind == room_event_kind::create ? rooms.create(room_number(room), name, who.mock)
                                               : rooms.join(room_number(room), name, who.mock));
  }
  membership enter(room_event_kind kind, std::string_view room, std::string name,
                   const recording_member& who) {
    auto result = admit(kind, room, std::move(name), who);
    REQUIRE(std::holds_alternative<membership>(result));
    return std::get<membership>(std::move(result));
  }
  wire_code refused(room_event_kind kind, std::string_view room, std::string name,
                    const recording_member& who) {
    const auto result = admit(kind, room, std::move(name), who);
    REQUIRE(std::holds_alternative<wire_code>(result));
    return std::get<wire_code>(result);
  }
};

// Rooms of more than two members hand their events out through three fan-out lanes, which
// yield after every delivery.
struct big_room_fixture : hub_fixture {
  big_room_fixture()
      : hub_fixture(hub_options{.room_inbox = 4,
                                .max_rooms = 3,
                                .max_members = 8,
                                .fanout_threshold = 2,
                                .fanout_lanes = 3,
                                .fanout_chunk = 1}) {}
};

// The seq of each frame, in the order the member got them.
std::vector<std::int64_t> seqs(const recording_member& who) {
  std::vector<std::int64_t> out;
  for (const auto& f : who.frames)
    out.push_back(f.at("seq").as_int64());
  return out;
}

// Every event from the member's first one on, none missing, none twice, in order.
bool gapless(const recording_member& who) {
  const auto got = seqs(who);
  for (std::size_t i = 1; i < got.size(); ++i) {
    if (got[i] != got[i - 1] + 1) return false;
  }
  return !got.empty();
}

constexpr auto create = room_event_kind::create;
constexpr auto join = room_event_kind::join;

}  // namespace

TEST_CASE_METHOD(hub_fixture, "create makes a room whose creator hears the create event") {
  recording_member alice;
  const auto seat = enter(create, "1234", "alice", alice);
  REQUIRE(alice.frames.size() == 1);
  const auto& frame = alice.frames[0];
  CHECK(frame.at("code") == 200);
  CHECK(frame.at("event") == "create");
  CHECK(frame.at("roomId") == "1234");
  CHECK(frame.at("users") == 1);
  CHECK(frame.at("seq") == 1);
  CHECK(frame.at("members") == json::array{"alice"});
  CHECK(seat.users() == 1);
  CHECK(rooms.counters().rooms == 1);
  CHECK(rooms.counters().members == 1);
}

TEST_CASE_METHOD(hub_fixture, "the seed's admission errors: 5001, 5004, 5002") {
  recording_member alice, bob, carol;
  enter(create, "1234", "alice", alice);
  CHECK(refused(create, "1234", "bob", bob) == wire_code::room_exists);
  CHECK(refused(join, "4321", "bob", bob) == wire_code::no_such_room);
  CHECK(refused(join, "1234", "alice", carol) == wire_code::name_taken);
  CHECK(bob.frames.empty());
  CHECK(carol.frames.empty());
  SECTION("a name is unique per room, not globally") {
    enter(create, "5678", "alice", carol);
    CHECK(carol.frames.size() == 1);
  }
}

TEST_CASE_METHOD(hub_fixture,
                 "a message reaches every member of its room, in order, and no one else") {
  recording_member alice, bob, stranger;
  const auto a = enter(create, "1234", "alice", alice);
  const auto b = enter(join, "1234", "bob", bob);
  enter(create, "9999", "stranger", stranger);
  run(rooms.say(a, "one"));
  run(rooms.say(b, "two"));
  run(rooms.say(a, "three"));

  const std::vector<std::string> expected{"one", "two", "three"};
  CHECK(alice.texts_of("message") == expected);
  CHECK(bob.texts_of("message") == expected);
  CHECK(stranger.texts_of("message").empty());
  REQUIRE(bob.frames.size() == 4);  // its join, then three messages
  CHECK(bob.frames[0].at("event") == "join");
  CHECK(bob.frames[0].at("members") == json::array{"alice", "bob"});  // the newcomer's roster
  REQUIRE(alice.frames.size() == 5);
  CHECK(alice.frames[1].at("event") == "join");
  CHECK_FALSE(alice.frames[1].contains("members"));  // the others only hear who came
  CHECK(bob.frames[1].at("name") == "alice");
  CHECK(bob.frames[2].at("name") == "bob");
  // Sequence numbers and ids increase with no gap; every frame carries the member count.
  for (std::size_t i = 0; i < bob.frames.size(); ++i) {
    CHECK(bob.frames[i].at("seq") == 2 + i);
    CHECK(bob.frames[i].at("users") == 2);
    if (i > 0) CHECK(bob.frames[i].at("id").as_int64() > bob.frames[i - 1].at("id").as_int64());
  }
}

TEST_CASE_METHOD(
    hub_fixture,
    "leave tells the room, frees the name at once, and the last one deletes the room") {
  recording_member alice, bob, bob_again;
  const auto a = enter(create, "1234", "alice", alice);
  const auto b = enter(join, "1234", "bob", bob);
  run(rooms.say(b, "bye"));
  run(rooms.leave(b, leave_reason::left));

  // The leaver's message comes before its leave; the leaver gets the notice as its acknowledgement.
  REQUIRE(alice.frames.size() == 4);
  CHECK(alice.frames[2].at("text") == "bye");
  CHECK(alice.frames[3].at("event") == "leave");
  CHECK(alice.frames[3].at("reason") == "left");
  CHECK(alice.frames[3].at("users") == 1);
  CHECK_FALSE(alice.frames[3].contains("members"));
  CHECK(bob.frames.back().at("event") == "leave");

  const auto again = enter(join, "1234", "bob", bob_again);
  CHECK(again.users() == 2);
  run(rooms.leave(again, leave_reason::disconnected));
  CHECK(alice.frames.back().at("reason") == "disconnected");
  CHECK(bob_again.frames.size() == 1);  // a disconnected member is not sent its own leave

  run(rooms.leave(a, leave_reason::left));
  CHECK(rooms.counters().rooms == 0);
  CHECK(rooms.counters().members == 0);
  SECTION("and its number can be created again") {
    recording_member dora;
    enter(create, "1234", "dora", dora);
    CHECK(dora.frames.at(0).at("seq") == 1);
  }
  SECTION("leaving twice changes nothing") {
    const auto before = alice.frames.size();
    run(rooms.leave(a, leave_reason::left));
    CHECK(alice.frames.size() == before);
  }
}

TEST_CASE_METHOD(hub_fixture, "a member whose outbox is full is evicted and the others hear why") {
  recording_member alice, bob, slow;
  const auto a = enter(create, "1234", "alice", alice);
  enter(join, "1234", "bob", bob);
  enter(join, "1234", "slow", slow);

  slow.answer = delivery::full;
  REQUIRE_CALL(*slow.mock, evict());
  run(rooms.say(a, "are you there?"));

  CHECK(alice.texts_of("message") == std::vector<std::string>{"are you there?"});
  const auto& notice = alice.frames.back();
  CHECK(notice.at("event") == "leave");
  CHECK(notice.at("name") == "slow");
  CHECK(notice.at("reason") == "slow_consumer");
  CHECK(notice.at("users") == 2);
  CHECK(bob.frames.back() == notice);
  CHECK(rooms.counters().evictions == 1);

  SECTION("it receives nothing more, and its name is free again") {
    const auto frames_before = slow.frames.size();
    run(rooms.say(a, "later"));
    CHECK(slow.frames.size() == frames_before);
    recording_member newcomer;
    enter(join, "1234", "slow", newcomer);
  }
}

TEST_CASE_METHOD(hub_fixture,
                 "members found slow together all leave before any of their notices goes out") {
  recording_member alice, slow1, slow2;
  const auto a = enter(create, "1234", "alice", alice);
  enter(join, "1234", "slow1", slow1);
  enter(join, "1234", "slow2", slow2);
  const auto seen_by_slow1 = slow1.frames.size();
  const auto seen_by_slow2 = slow2.frames.size();

  slow1.answer = delivery::full;
  slow2.answer = delivery::full;
  REQUIRE_CALL(*slow1.mock, evict());
  REQUIRE_CALL(*slow2.mock, evict());
  run(rooms.say(a, "anyone?"));

  // Each notice goes to the members that remain, and counts only them.
  REQUIRE(alice.frames.size() >= 3);
  const auto& first = alice.frames[alice.frames.size() - 2];
  const auto& second = alice.frames.back();
  CHECK(first.at("name") == "slow1");
  CHECK(second.at("name") == "slow2");
  for (const auto* notice : {&first, &second}) {
    CHECK(notice->at("reason") == "slow_consumer");
    CHECK(notice->at("users") == 1);
  }
  // The slow members were offered the message only, never a notice.
  CHECK(slow1.frames.size() == seen_by_slow1 + 1);
  CHECK(slow2.frames.size() == seen_by_slow2 + 1);
  CHECK(rooms.counters().evictions == 2);
  CHECK(rooms.counters().members == 1);
}

TEST_CASE_METHOD(hub_fixture, "a member whose connection is closing is skipped, not evicted") {
  recording_member alice, leaving;
  const auto a = enter(create, "1234", "alice", alice);
  const auto l = enter(join, "1234", "leaving", leaving);
  leaving.answer = delivery::closed;
  FORBID_CALL(*leaving.mock, evict());
  run(rooms.say(a, "hello"));
  run(rooms.leave(l, leave_reason::disconnected));
  CHECK(alice.frames.back().at("reason") == "disconnected");
  CHECK(rooms.counters().evictions == 0);
}

TEST_CASE_METHOD(hub_fixture, "senders into a small inbox wait instead of losing messages") {
  recording_member alice, bob;
  const auto a = enter(create, "1234", "alice", alice);
  const auto b = enter(join, "1234", "bob", bob);
  // Two senders, 50 messages each, through an inbox of 4: every message arrives, each sender's
  // own messages in the order it sent them.
  auto burst = [this](const membership& seat, std::string prefix) -> net::awaitable<void> {
    for (int i = 0; i < 50; ++i)
      co_await rooms.say(seat, prefix + std::to_string(i));
  };
  auto from_a = burst(a, "a");
  auto from_b = burst(b, "b");
  bool a_done = false, b_done = false;
  net::co_spawn(io, std::move(from_a), [&](std::exception_ptr) { a_done = true; });
  net::co_spawn(io, std::move(from_b), [&](std::exception_ptr) { b_done = true; });
  drive([&] { return a_done && b_done; });

  const auto received = bob.texts_of("message");
  REQUIRE(received.size() == 100);
  int next_a = 0, next_b = 0;
  for (const auto& text : received) {
    int& next = text[0] == 'a' ? next_a : next_b;
    CHECK(text.substr(1) == std::to_string(next++));
  }
  CHECK(alice.texts_of("message") == received);
}

TEST_CASE_METHOD(hub_fixture, "shutdown ends every room") {
  recording_member alice;
  const auto a = enter(create, "1234", "alice", alice);
  rooms.shutdown();
  io.restart();
  io.poll();
  CHECK(rooms.counters().rooms == 0);
  CHECK(rooms.counters().members == 0);
  CHECK(alice.closing_calls() == 1);
  run(rooms.say(a, "into the void"));  // completes (the inbox is closed) instead of hanging
  CHECK(alice.texts_of("message").empty());
}

TEST_CASE_METHOD(hub_fixture,
                 "shutdown hands out every event the room accepted before telling its members") {
  recording_member alice, bob;
  const auto a = enter(create, "1234", "alice", alice);
  enter(join, "1234", "bob", bob);
  // Accepted by the room (queued in its inbox), not handed out yet.
  int closings_when_said = -1;
  bool said = false;
  net::co_spawn(io, rooms.say(a, "before the drain"),
                [&](const std::exception_ptr&) { said = true; });
  io.restart();
  while (!said)
    io.run_one();
  rooms.shutdown();
  closings_when_said = bob.closing_calls();
  io.restart();
  io.poll();
  CHECK(closings_when_said == 0);
  CHECK(bob.texts_of("message") == std::vector<std::string>{"before the drain"});
  CHECK(bob.closing_calls() == 1);
  CHECK(alice.closing_calls() == 1);
}

TEST_CASE_METHOD(hub_fixture, "room and member caps refuse with their own codes") {
  recording_member a, b, c, d, e, f;
  enter(create, "1111", "a", a);
  enter(create, "2222", "b", b);
  const auto third = enter(create, "3333", "c", c);
  CHECK(refused(create, "4444", "d", d) == wire_code::too_many_rooms);
  enter(join, "1111", "d", d);
  enter(join, "1111", "e", e);
  CHECK(refused(join, "1111", "f", f) == wire_code::room_full);
  SECTION("a room that empties makes space for another") {
    run(rooms.leave(third, leave_reason::left));
    enter(create, "4444", "f", f);
  }
}

TEST_CASE_METHOD(big_room_fixture,
                 "a big room hands out through its lanes: every member gets every event in order") {
  recording_member alice, bob, carol, dave, erin;
  const auto a = enter(create, "1234", "alice", alice);
  const auto b = enter(join, "1234", "bob", bob);
  enter(join, "1234", "carol", carol);  // the third member: the room opens its lanes
  const auto d = enter(join, "1234", "dave", dave);
  enter(join, "1234", "erin", erin);
  CHECK(erin.frames.front().at("members") == json::array{"alice", "bob", "carol", "dave", "erin"});
  for (int i = 0; i < 10; ++i) {
    run(rooms.say(a, "a" + std::to_string(i)));
    run(rooms.say(b, "b" + std::to_string(i)));
  }
  run(rooms.leave(d, leave_reason::left));

  for (const auto* who : {&alice, &bob, &carol, &dave, &erin}) {
    CHECK(gapless(*who));
    CHECK(who->texts_of("message").size() == 20);
  }
  CHECK(carol.texts_of("message") == alice.texts_of("message"));
  // The leaver's acknowledgement comes through its lane after everything before it.
  CHECK(dave.frames.back().at("event") == "leave");
  CHECK(dave.frames.back().at("name") == "dave");
  CHECK(dave.frames.back() == erin.frames.back());
  CHECK(erin.frames.back().at("users") == 4);
  CHECK(alice.frames.back().at("seq") == 26);  // 5 admissions, 20 messages, 1 leave
}

TEST_CASE_METHOD(big_room_fixture,
                 "a member leaving a big room mid-broadcast gets the broadcast, then its leave") {
  recording_member alice, bob, carol, dave, erin, frank;
  const auto a = enter(create, "1234", "alice", alice);
  enter(join, "1234", "bob", bob);
  enter(join, "1234", "carol", carol);
  enter(join, "1234", "dave", dave);
  enter(join, "1234", "erin", erin);
  const auto f = enter(join, "1234", "frank", frank);
  // Queued together: the room hands the message to the lanes and handles the leave while the
  // lanes are still delivering the message, one member per turn.
  bool said = false;
  bool left = false;
  net::co_spawn(io, rooms.say(a, "one"), [&](const std::exception_ptr&) { said = true; });
  net::co_spawn(io, rooms.leave(f, leave_reason::left),
                [&](const std::exception_ptr&) { left = true; });
  drive([&] { return said && left; });

  CHECK(frank.texts_of("message") == std::vector<std::string>{"one"});
  CHECK(frank.frames.back().at("event") == "leave");
  CHECK(frank.frames.back().at("name") == "frank");
  CHECK(gapless(frank));
  for (const auto* who : {&alice, &bob, &carol, &dave, &erin}) {
    CHECK(gapless(*who));
    CHECK(who->frames.back() == frank.frames.back());
  }
}

TEST_CASE_METHOD(big_room_fixture,
                 "slow members of a big room are evicted once, offered nothing after") {
  recording_member alice, bob, carol, slow1, slow2;
  const auto a = enter(create, "1234", "alice", alice);
  enter(join, "1234", "bob", bob);
  enter(join, "1234", "carol", carol);
  enter(join, "1234", "slow1", slow1);
  enter(join, "1234", "slow2", slow2);
  const auto seen_by_slow1 = slow1.frames.size();
  const auto seen_by_slow2 = slow2.frames.size();
  slow1.answer = delivery::full;
  slow2.answer = delivery::full;
  REQUIRE_CALL(*slow1.mock, evict());
  REQUIRE_CALL(*slow2.mock, evict());
  run(rooms.say(a, "anyone?"));

  CHECK(slow1.frames.size() == seen_by_slow1 + 1);
  CHECK(slow2.frames.size() == seen_by_slow2 + 1);
  CHECK(rooms.counters().evictions == 2);
  CHECK(rooms.counters().members == 3);
  for (const auto* who : {&alice, &bob, &carol}) {
    CHECK(gapless(*who));
    const auto& last = who->frames.back();
    CHECK(last.at("event") == "leave");
    CHECK(last.at("reason") == "slow_consumer");
    CHECK(last.at("users") == 3);
  }
  // Their names are free again.
  recording_member again;
  enter(join, "1234", "slow1", again);
}

TEST_CASE_METHOD(big_room_fixture,
                 "shutdown of a big room tells each member after the events queued before it") {
  recording_member alice, bob, carol, dave;
  const auto a = enter(create, "1234", "alice", alice);
  enter(join, "1234", "bob", bob);
  enter(join, "1234", "carol", carol);
  enter(join, "1234", "dave", dave);
  std::vector<std::string> dave_had_at_closing;
  dave.mock->on_closing = [&] { dave_had_at_closing = dave.texts_of("message"); };
  bool said = false;
  net::co_spawn(io, rooms.say(a, "before the drain"),
                [&](const std::exception_ptr&) { said = true; });
  io.restart();
  while (!said)
    io.run_one();
  rooms.shutdown();
  io.restart();
  io.poll();
  CHECK(dave_had_at_closing == std::vector<std::string>{"before the drain"});
  for (const auto* who : {&alice, &bob, &carol, &dave})
    CHECK(who->closing_calls() == 1);
  CHECK(rooms.counters().members == 0);
}

// --- History and resume ----------------------------------------------------------------------

namespace {

// History on, resume after a grace the test ends itself (or 1 ms where it waits for the end).
struct resume_fixture : hub_fixture {
  explicit resume_fixture(std::size_t history = 100,
                          std::chrono::milliseconds grace = std::chrono::minutes(1))
      : hub_fixture(hub_options{.room_inbox = 4,
                                .max_rooms = 3,
                                .max_members = 3,
                                .history_events = history,
                                .resume_grace = grace}) {}

  static constexpr admission_wishes both{.history = true, .resume = true};

  membership enter_with(room_event_kind kind, std::string_view room, std::string name,
                        const recording_member& who, admission_wishes wishes) {
    auto result = run(kind == room_event_kind::create
                          ? rooms.create(room_number(room), name, who.mock, wishes)
                          : rooms.join(room_number(room), name, who.mock, wishes));
    REQUIRE(std::holds_alternative<membership>(result));
    return std::get<membership>(std::move(result));
  }
  admission resume(std::string token, std::uint64_t since, const recording_member& who,
                   std::optional<std::string_view> room = std::nullopt) {
    resume_seat request{std::move(token), since, std::nullopt};
    if (room) request.room = room_number(*room);
    return run(rooms.resume(request, who.mock));
  }
  wire_code resume_refused(std::string token, std::uint64_t since, const recording_member& who,
                           std::optional<std::string_view> room = std::nullopt) {
    const auto result = resume(std::move(token), since, who, room);
    REQUIRE(std::holds_alternative<wire_code>(result));
    return std::get<wire_code>(result);
  }
  // Runs the io_context, timers included, until `done` or a 5 s deadline.
  template <class Done>
  void wait_for(Done done) {
    io.restart();
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < deadline)
      io.run_one_for(std::chrono::milliseconds(100));
    REQUIRE(done());
  }
};

std::string token_of(const json::object& frame) {
  return std::string(frame.at("token").as_string());
}
std::int64_t last_seq(const recording_member& who) {
  return who.frames.back().at("seq").as_int64();
}

}  // namespace

TEST_CASE_METHOD(resume_fixture,
                 "a newcomer who asks for history gets the recent chat, marked, then live events") {
  recording_member alice, bob, carol;
  const auto a = enter_with(create, "1234", "alice", alice, {});
  run(rooms.say(a, "one"));
  run(rooms.say(a, "two"));
  enter_with(join, "1234", "bob", bob, {.history = true});
  run(rooms.say(a, "three"));

  REQUIRE(bob.frames.size() == 4);
  CHECK(bob.frames[0].at("event") == "join");
  CHECK(bob.frames[0].at("members") == json::array{"alice", "bob"});
  CHECK(bob.frames[0].at("epoch").as_string().size() == 16);
  CHECK_FALSE(bob.frames[0].contains("token"));  // it did not ask for resume
  for (int i : {1, 2}) {
    CHECK(bob.frames[i].at("history") == true);
    CHECK(bob.frames[i].at("event") == "message");
  }
  CHECK(bob.frames[1].at("text") == "one");
  CHECK(bob.frames[1].at("seq") == 2);
  CHECK(bob.frames[2].at("text") == "two");
  CHECK_FALSE(bob.frames[3].contains("history"));  // live
  CHECK(bob.frames[3].at("text") == "three");
  CHECK(bob.frames[3].at("seq") == 5);  // after its join (4): nothing missed, nothing twice

  SECTION("without asking, a newcomer gets no history; the epoch is the room's") {
    enter_with(join, "1234", "carol", carol, {});
    REQUIRE(carol.frames.size() == 1);
    CHECK(carol.frames[0].at("epoch") == bob.frames[0].at("epoch"));
  }
}

TEST_CASE("history keeps the last --history chat messages") {
  resume_fixture f(2);
  recording_member alice, bob;
  const auto a = f.enter_with(create, "1234", "alice", alice, {});
  for (const auto* text : {"one", "two", "three"})
    f.run(f.rooms.say(a, text));
  f.enter_with(join, "1234", "bob", bob, {.history = true});
  // Two events kept: "two" and "three" (the create went first).
  CHECK(bob.texts_of("message") == std::vector<std::string>{"two", "three"});
}

TEST_CASE_METHOD(resume_fixture,
                 "a dropped member keeps its seat silently, and a resume replays what it missed") {
  recording_member alice, bob, bob_back;
  const auto a = enter_with(create, "1234", "alice", alice, both);
  const auto b = enter_with(join, "1234", "bob", bob, both);
  const auto token = token_of(bob.frames[0]);
  CHECK(token.size() == 32);
  CHECK(alice.frames[0].at("token") != bob.frames[0].at("token"));
  const auto seen = last_seq(bob);

  run(rooms.leave(b, leave_reason::disconnected));
  const auto alice_before = alice.frames.size();
  run(rooms.say(a, "while you were away"));
  run(rooms.say(a, "and again"));
  REQUIRE(alice.frames.size() == alice_before + 2);  // no leave notice
  CHECK(alice.frames.back().at("users") == 2);       // bob still counts
  CHECK(rooms.counters().held_seats == 1);

  const auto result = resume(token, static_cast<std::uint64_t>(seen), bob_back, "1234");
  REQUIRE(std::holds_alternative<membership>(result));
  const auto& back = std::get<membership>(result);
  REQUIRE(bob_back.frames.size() == 3);
  const auto& ack = bob_back.frames[0];
  CHECK(ack.at("event") == "resume");
  CHECK(ack.at("recovered") == true);
  CHECK(ack.at("missed") == 2);
  CHECK(ack.at("name") == "bob");
  CHECK(ack.at("users") == 2);
  CHECK(ack.at("members") == json::array{"alice", "bob"});
  CHECK(ack.at("epoch") == bob.frames[0].at("epoch"));
  CHECK(ack.at("last") == seen + 2);
  CHECK(token_of(ack) != token);
  CHECK(bob_back.frames[1].at("text") == "while you were away");
  CHECK(bob_back.frames[1].at("seq") == seen + 1);
  CHECK(bob_back.frames[2].at("text") == "and again");
  CHECK(bob_back.frames[2].at("seq") == seen + 2);
  CHECK(rooms.counters().held_seats == 0);
  CHECK(rooms.counters().resumes == 1);

  // Live again, in both directions, and nobody heard bob leave or join.
  run(rooms.say(back, "I'm back"));
  CHECK(bob_back.frames.back().at("text") == "I'm back");
  CHECK(alice.frames.back().at("text") == "I'm back");
  CHECK(alice.texts_of("leave").empty());
  CHECK(alice.frames.back().at("seq") == seen + 3);

  SECTION("a token is good for one resume") {
    recording_member thief;
    CHECK(resume_refused(token, 0, thief) == wire_code::invalid_token);
    CHECK(thief.frames.empty());
  }
  SECTION("the new token works the next time") {
    run(rooms.leave(back, leave_reason::disconnected));
    recording_member again;
    const auto next = resume(token_of(ack), static_cast<std::uint64_t>(seen + 3), again);
    REQUIRE(std::holds_alternative<membership>(next));
    CHECK(again.frames.at(0).at("missed") == 0);
  }
}

TEST_CASE_METHOD(resume_fixture, "bad resumes are refused and take nobody's seat") {
  recording_member alice, bob, carol, mallory;
  enter_with(create, "1234", "alice", alice, both);
  const auto b = enter_with(join, "1234", "bob", bob, both);
  enter_with(create, "5678", "carol", carol, both);
  const auto token = token_of(bob.frames[0]);
  run(rooms.leave(b, leave_reason::disconnected));
  const auto seen = static_cast<std::uint64_t>(last_seq(alice));

  CHECK(resume_refused("not a token", 0, mallory) == wire_code::invalid_token);
  CHECK(resume_refused(std::string(32, 'A'), 0, mallory) == wire_code::invalid_token);
  auto forged = token;  // one character off
  forged[31] = forged[31] == 'A' ? 'B' : 'A';
  CHECK(resume_refused(forged, 0, mallory) == wire_code::invalid_token);
  CHECK(resume_refused(token, seen, mallory, "5678") == wire_code::wrong_room);
  CHECK(resume_refused(token, seen + 1, mallory) == wire_code::since_ahead);
  CHECK(mallory.frames.empty());
  CHECK(rooms.counters().held_seats == 1);

  // None of them used the token up.
  recording_member bob_back;
  REQUIRE(std::holds_alternative<membership>(resume(token, seen, bob_back, "1234")));
  CHECK(bob_back.frames.at(0).at("recovered") == true);
}

TEST_CASE("a held seat whose grace runs out leaves as disconnected, and its token dies") {
  resume_fixture f(100, std::chrono::milliseconds(1));
  recording_member alice, bob, late;
  f.enter_with(create, "1234", "alice", alice, {});
  const auto b = f.enter_with(join, "1234", "bob", bob, resume_fixture::both);
  const auto token = token_of(bob.frames[0]);
  f.run(f.rooms.leave(b, leave_reason::disconnected));
  f.wait_for([&] { return alice.frames.back().at("event") == "leave"; });
  CHECK(alice.frames.back().at("name") == "bob");
  CHECK(alice.frames.back().at("reason") == "disconnected");
  CHECK(alice.frames.back().at("users") == 1);
  CHECK(f.rooms.counters().held_seats == 0);
  CHECK(f.rooms.counters().seats_expired == 1);
  CHECK(f.resume_refused(token, 0, late) == wire_code::invalid_token);
  recording_member bob_again;  // the name is free
  f.enter_with(join, "1234", "bob", bob_again, {});
}

TEST_CASE("a resume whose missed events left the history says so and sends the roster") {
  resume_fixture f(2);
  recording_member alice, bob, bob_back;
  const auto a = f.enter_with(create, "1234", "alice", alice, {});
  const auto b = f.enter_with(join, "1234", "bob", bob, resume_fixture::both);
  const auto seen = static_cast<std::uint64_t>(last_seq(bob));
  f.run(f.rooms.leave(b, leave_reason::disconnected));
  for (const auto* text : {"one", "two", "three"})
    f.run(f.rooms.say(a, text));
  REQUIRE(std::holds_alternative<membership>(f.resume(token_of(bob.frames[0]), seen, bob_back)));
  REQUIRE(bob_back.frames.size() == 1);
  CHECK(bob_back.frames[0].at("recovered") == false);
  CHECK(bob_back.frames[0].at("missed") == 0);
  CHECK(bob_back.frames[0].at("members") == json::array{"alice", "bob"});
  CHECK(bob_back.frames[0].at("last") == seen + 3);
  CHECK(f.rooms.counters().resumes_unrecovered == 1);
}

TEST_CASE_METHOD(resume_fixture,
                 "a resume while the old connection is open replaces it, and the old one is mute") {
  recording_member alice, bob, bob_phone;
  const auto a = enter_with(create, "1234", "alice", alice, {});
  const auto b = enter_with(join, "1234", "bob", bob, both);
  const auto seen = static_cast<std::uint64_t>(last_seq(bob));
  const auto result = resume(token_of(bob.frames[0]), seen, bob_phone);
  REQUIRE(std::holds_alternative<membership>(result));
  CHECK(bob.mock->replaced_calls == 1);
  CHECK(bob_phone.frames.at(0).at("recovered") == true);

  // The old connection's chat and leave no longer speak for bob.
  run(rooms.say(b, "from the old tab"));
  run(rooms.leave(b, leave_reason::disconnected));
  run(rooms.say(a, "hello bob"));
  CHECK(alice.texts_of("message") == std::vector<std::string>{"hello bob"});
  CHECK(alice.texts_of("leave").empty());
  CHECK(bob_phone.texts_of("message") == std::vector<std::string>{"hello bob"});
  CHECK(rooms.counters().held_seats == 0);
}

TEST_CASE_METHOD(resume_fixture,
                 "a held seat keeps its room alive after the others left, and hears why") {
  recording_member alice, bob, bob_back, eve;
  const auto a = enter_with(create, "1234", "alice", alice, {});
  const auto b = enter_with(join, "1234", "bob", bob, both);
  const auto seen = static_cast<std::uint64_t>(last_seq(bob));
  run(rooms.leave(b, leave_reason::disconnected));
  run(rooms.leave(a, leave_reason::left));
  CHECK(rooms.counters().rooms == 1);
  CHECK(refused(join, "1234", "bob", eve) == wire_code::name_taken);  // the seat is bob's
  REQUIRE(std::holds_alternative<membership>(resume(token_of(bob.frames[0]), seen, bob_back)));
  REQUIRE(bob_back.frames.size() == 2);
  CHECK(bob_back.frames[0].at("users") == 1);
  CHECK(bob_back.frames[1].at("event") == "leave");
  CHECK(bob_back.frames[1].at("name") == "alice");
}

TEST_CASE_METHOD(resume_fixture, "with --history 0 nobody gets a token") {
  // The fixture's own hub has history; this one has none.
  hub_fixture off(hub_options{.history_events = 0});
  recording_member alice;
  auto result = off.run(off.rooms.create(room_number("1234"), "alice", alice.mock, both));
  REQUIRE(std::holds_alternative<membership>(result));
  CHECK_FALSE(alice.frames.at(0).contains("token"));
  CHECK(alice.frames.at(0).contains("epoch"));
}
