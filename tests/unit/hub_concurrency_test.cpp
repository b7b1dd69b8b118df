// The hub with its rooms sharded over several strands and an io_context on each of two threads:
// admissions race on different shards and within one, and the limits and name rules still hold.
// The tsan preset runs these under ThreadSanitizer. Every wait has a deadline.
#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include "roomcast/hub.hpp"
#include "roomcast/io_pool.hpp"
#include "roomcast/net.hpp"

using namespace roomcast;
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

// Keeps the JSON of every frame it is handed; a reaction set with `react_with` (at any time: the
// member's lane may be handing it frames already) may act on each.
class listening_member final : public member {
 public:
  delivery deliver(const shared_frame& frame) override {
    const auto parsed = json::parse(frame->payload()).as_object();
    std::function<void(const json::object&)> react;
    {
      const std::lock_guard lock(mutex_);
      frames_.push_back(parsed);
      threads_.insert(std::this_thread::get_id());
      react = on_frame_;
    }
    if (react) react(parsed);
    return full_for_chat.load() && parsed.at("event") == "message" ? delivery::full
                                                                   : delivery::queued;
  }
  void evict() override { evicted.store(true); }
  void room_closing() override {}

  std::vector<json::object> frames() const {
    const std::lock_guard lock(mutex_);
    return frames_;
  }
  /** The threads it was handed frames on. */
  std::set<std::thread::id> threads() const {
    const std::lock_guard lock(mutex_);
    return threads_;
  }

  void react_with(std::function<void(const json::object&)> reaction) {
    const std::lock_guard lock(mutex_);
    on_frame_ = std::move(reaction);
  }
  std::atomic<bool> full_for_chat{false};
  std::atomic<bool> evicted{false};

 private:
  mutable std::mutex mutex_;
  std::function<void(const json::object&)> on_frame_;
  std::vector<json::object> frames_;
  std::set<std::thread::id> threads_;
};

// Every event from the member's first one on, none missing, none twice, in order.
bool gapless(const std::vector<json::object>& frames) {
  for (std::size_t i = 1; i < frames.size(); ++i) {
    if (frames[i].at("seq").as_int64() != frames[i - 1].at("seq").as_int64() + 1) return false;
  }
  return !frames.empty();
}

net::awaitable<int> say_numbers(hub& rooms, const membership& seat, int count) {
  for (int i = 0; i < count; ++i)
    co_await rooms.say(seat, std::to_string(i));
  co_return count;
}

room_id number(int n) {
  return *room_id::from_json(json::value(n));
}

// Two threads, each with an io_context of its own as in the server, and a hub whose rooms are
// spread over `shards` strands on both.
struct threaded_hub {
  explicit threaded_hub(hub_options options) : rooms(io.executors(), options) { io.start(); }
  ~threaded_hub() {
    rooms.shutdown();
    io.release();
    io.join();
  }

  // Starts `task` on a strand of its own, as a connection would; the future has its result.
  template <class T>
  std::future<T> start(net::awaitable<T> task) {
    return start_on(io.next(), std::move(task));
  }
  template <class T>
  std::future<T> start_on(net::io_context& thread, net::awaitable<T> task) {
    auto done = std::make_shared<std::promise<T>>();
    auto future = done->get_future();
    net::co_spawn(net::make_strand(thread), std::move(task),
                  [done](const std::exception_ptr& error, T value) {
                    if (error) {
                      done->set_exception(error);
                    } else {
                      done->set_value(std::move(value));
                    }
                  });
    return future;
  }

  io_pool io{2};
  hub rooms;
};

template <class T>
T wait_for(std::future<T>& f) {
  REQUIRE(f.wait_for(10s) == std::future_status::ready);
  return f.get();
}

// Waits (with a deadline) until `done()` holds; the hub works on other threads meanwhile.
template <class Done>
bool eventually(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::yield();
  }
  return true;
}

}  // namespace

TEST_CASE("creates racing on several shards never exceed --max-rooms", "[hub][threads]") {
  threaded_hub h({.room_inbox = 8, .max_rooms = 10, .max_members = 10, .shards = 4});
  std::vector<std::shared_ptr<listening_member>> creators;
  std::vector<std::future<admission>> results;
  for (int i = 0; i < 200; ++i) {
    creators.push_back(std::make_shared<listening_member>());
    results.push_back(h.start(h.rooms.create(number(1000 + i), "owner", creators.back())));
  }
  int admitted = 0;
  int refused = 0;
  for (auto& r : results) {
    const auto result = wait_for(r);
    if (std::holds_alternative<membership>(result)) {
      ++admitted;
    } else if (std::get<wire_code>(result) == wire_code::too_many_rooms) {
      ++refused;
    }
  }
  CHECK(admitted == 10);
  CHECK(refused == 190);
  CHECK(h.rooms.counters().rooms == 10);
}

TEST_CASE("joins racing for one name and for the last seats: exactly the allowed ones win",
          "[hub][threads]") {
  threaded_hub h({.room_inbox = 8, .max_rooms = 10, .max_members = 5, .shards = 4});
  const auto owner = std::make_shared<listening_member>();
  auto created = h.start(h.rooms.create(number(4242), "owner", owner));
  REQUIRE(std::holds_alternative<membership>(wait_for(created)));

  std::vector<std::shared_ptr<listening_member>> joiners;
  std::vector<std::future<admission>> same_name;
  for (int i = 0; i < 20; ++i) {
    joiners.push_back(std::make_shared<listening_member>());
    same_name.push_back(h.start(h.rooms.join(number(4242), "bob", joiners.back())));
  }
  std::vector<std::future<admission>> distinct;
  for (int i = 0; i < 20; ++i) {
    joiners.push_back(std::make_shared<listening_member>());
    distinct.push_back(
        h.start(h.rooms.join(number(4242), "guest" + std::to_string(i), joiners.back())));
  }
  int bobs = 0;
  for (auto& r : same_name) {
    const auto result = wait_for(r);
    if (std::holds_alternative<membership>(result)) {
      ++bobs;
    } else {
      const auto code = std::get<wire_code>(result);
      CHECK((code == wire_code::name_taken || code == wire_code::room_full));
    }
  }
  int guests = 0;
  for (auto& r : distinct) {
    const auto result = wait_for(r);
    if (std::holds_alternative<membership>(result)) {
      ++guests;
    } else {
      CHECK(std::get<wire_code>(result) == wire_code::room_full);
    }
  }
  CHECK(bobs == 1);
  CHECK(1 + bobs + guests == 5);  // the owner, bob, and the guests that fit
  // Admission returns once the join is queued; the room counts the member when it handles it.
  CHECK(eventually([&] { return h.rooms.counters().members == 5; }));
}

TEST_CASE("rooms on different shards each deliver their own events in order", "[hub][threads]") {
  threaded_hub h({.room_inbox = 4, .max_rooms = 100, .max_members = 10, .shards = 4});
  constexpr int room_count = 8;
  constexpr static int messages = 200;
  std::vector<std::shared_ptr<listening_member>> talkers;
  std::vector<std::shared_ptr<listening_member>> listeners;
  std::vector<membership> seats;
  for (int r = 0; r < room_count; ++r) {
    talkers.push_back(std::make_shared<listening_member>());
    listeners.push_back(std::make_shared<listening_member>());
    auto created = h.start(h.rooms.create(number(2000 + r), "talker", talkers.back()));
    seats.push_back(std::get<membership>(wait_for(created)));
    auto joined = h.start(h.rooms.join(number(2000 + r), "listener", listeners.back()));
    REQUIRE(std::holds_alternative<membership>(wait_for(joined)));
  }
  // Every room's talker says its messages at once, from its own strand.
  auto talk = [](hub& rooms, const membership& seat) -> net::awaitable<int> {
    for (int i = 0; i < messages; ++i) {
      co_await rooms.say(seat, std::to_string(i));
    }
    co_return messages;
  };
  std::vector<std::future<int>> talking;
  for (int r = 0; r < room_count; ++r)
    talking.push_back(h.start(talk(h.rooms, seats[r])));
  for (auto& t : talking)
    CHECK(wait_for(t) == messages);

  for (int r = 0; r < room_count; ++r) {
    const auto& listener = *listeners[r];
    REQUIRE(eventually([&] { return listener.frames().size() == 1 + messages; }));
    const auto frames = listener.frames();
    std::int64_t seq = frames.front().at("seq").as_int64();
    for (int i = 0; i < messages; ++i) {
      const auto& f = frames[1 + i];
      CHECK(f.at("roomId") == number(2000 + r).to_json());
      CHECK(f.at("text").as_string() == std::to_string(i));
      CHECK(f.at("seq").as_int64() == ++seq);
    }
  }
}

TEST_CASE("an evicted member's name is free when its leave event goes out", "[hub][threads]") {
  threaded_hub h({.room_inbox = 8, .max_rooms = 10, .max_members = 10, .shards = 4});
  const auto talker = std::make_shared<listening_member>();
  const auto slow = std::make_shared<listening_member>();
  const auto newcomer = std::make_shared<listening_member>();
  std::mutex rejoin_mutex;
  std::optional<std::future<admission>> rejoin;
  // When the talker hears that "slow" was evicted, a newcomer asks for the name at once. (Not
  // waited for here: this runs on the room's strand, which admits the newcomer next.)
  talker->react_with([&](const json::object& f) {
    if (f.at("event") == "leave" && f.at("name") == "slow") {
      const std::lock_guard lock(rejoin_mutex);
      rejoin = h.start(h.rooms.join(number(3000), "slow", newcomer));
    }
  });
  auto created = h.start(h.rooms.create(number(3000), "talker", talker));
  const auto seat = std::get<membership>(wait_for(created));
  auto joined = h.start(h.rooms.join(number(3000), "slow", slow));
  REQUIRE(std::holds_alternative<membership>(wait_for(joined)));

  slow->full_for_chat.store(true);
  auto said = h.start([](hub& rooms, const membership& s) -> net::awaitable<int> {
    co_await rooms.say(s, "hello");
    co_return 0;
  }(h.rooms, seat));
  wait_for(said);
  REQUIRE(eventually([&] { return slow->evicted.load(); }));
  REQUIRE(eventually([&] {
    const std::lock_guard lock(rejoin_mutex);
    return rejoin.has_value();
  }));
  const std::lock_guard lock(rejoin_mutex);
  const auto result = wait_for(*rejoin);
  CHECK(std::holds_alternative<membership>(result));
  // The others hear the newcomer join under the name, after the evicted member's leave.
  CHECK(eventually([&] {
    const auto frames = talker->frames();
    return frames.back().at("event") == "join" && frames.back().at("name") == "slow";
  }));
}

TEST_CASE("a big room's fan-out runs on both threads, each member's events still in order",
          "[hub][threads]") {
  threaded_hub h({.room_inbox = 8,
                  .max_rooms = 10,
                  .max_members = 64,
                  .shards = 4,
                  .fanout_threshold = 8,
                  .fanout_lanes = 4,
                  .fanout_chunk = 3});
  constexpr int listener_count = 31;
  constexpr int messages = 300;
  const auto talker = std::make_shared<listening_member>();
  auto created = h.start(h.rooms.create(number(5000), "talker", talker));
  const auto seat = std::get<membership>(wait_for(created));
  std::vector<std::shared_ptr<listening_member>> listeners;
  for (int i = 0; i < listener_count; ++i) {
    listeners.push_back(std::make_shared<listening_member>());
    auto joined =
        h.start(h.rooms.join(number(5000), "listener" + std::to_string(i), listeners.back()));
    REQUIRE(std::holds_alternative<membership>(wait_for(joined)));
  }
  auto talking = h.start(say_numbers(h.rooms, seat, messages));
  CHECK(wait_for(talking) == messages);

  std::set<std::thread::id> threads;
  for (int i = 0; i < listener_count; ++i) {
    const auto& listener = *listeners[i];
    // Its own join (with the roster), the joins after it, then every message.
    const auto expected = static_cast<std::size_t>(listener_count - i + messages);
    REQUIRE(eventually([&] { return listener.frames().size() == expected; }));
    const auto frames = listener.frames();
    CHECK(gapless(frames));
    CHECK(frames.back().at("text").as_string() == std::to_string(messages - 1));
    const auto used = listener.threads();
    threads.insert(used.begin(), used.end());
  }
  // Four lanes over two threads: the one room's broadcasts ran on both.
  CHECK(threads.size() == 2);
}

TEST_CASE("members join and leave a big room while it talks: each stream is gapless",
          "[hub][threads]") {
  threaded_hub h({.room_inbox = 8,
                  .max_rooms = 10,
                  .max_members = 64,
                  .shards = 2,
                  .fanout_threshold = 4,
                  .fanout_lanes = 3,
                  .fanout_chunk = 2});
  const auto talker = std::make_shared<listening_member>();
  auto created = h.start(h.rooms.create(number(6000), "talker", talker));
  const auto seat = std::get<membership>(wait_for(created));
  auto talking = h.start(say_numbers(h.rooms, seat, 400));

  // Each visitor joins, hears a little, says one thing and leaves, racing the talker.
  auto visit = [](hub& rooms, int n, std::shared_ptr<listening_member> who) -> net::awaitable<int> {
    auto admitted = co_await rooms.join(number(6000), "visitor" + std::to_string(n), who);
    if (!std::holds_alternative<membership>(admitted)) co_return 0;
    auto visitor = std::get<membership>(std::move(admitted));
    co_await rooms.say(visitor, "hello from " + std::to_string(n));
    co_await rooms.leave(std::move(visitor), leave_reason::left);
    co_return 1;
  };
  std::vector<std::shared_ptr<listening_member>> visitors;
  std::vector<std::future<int>> visits;
  for (int i = 0; i < 40; ++i) {
    visitors.push_back(std::make_shared<listening_member>());
    visits.push_back(h.start(visit(h.rooms, i, visitors.back())));
  }
  for (auto& v : visits)
    CHECK(wait_for(v) == 1);
  CHECK(wait_for(talking) == 400);

  for (int i = 0; i < 40; ++i) {
    const auto& visitor = *visitors[i];
    const auto name = "visitor" + std::to_string(i);
    // Its stream ends with its own leave, the acknowledgement.
    REQUIRE(eventually([&] {
      const auto frames = visitor.frames();
      return !frames.empty() && frames.back().at("event") == "leave"
             && frames.back().at("name").as_string() == name;
    }));
    const auto frames = visitor.frames();
    CHECK(gapless(frames));
    CHECK(frames.front().at("event") == "join");
    CHECK(frames.front().at("name").as_string() == name);
  }
  // The talker heard everything: 1 create, 40 joins, 400 + 40 messages, 40 leaves.
  REQUIRE(eventually([&] { return talker->frames().size() == 1 + 40 + 440 + 40; }));
  CHECK(gapless(talker->frames()));
  CHECK(eventually([&] { return h.rooms.counters().members == 1; }));
}

TEST_CASE("a big room waits for a lane that falls behind instead of queueing without bound",
          "[hub][threads]") {
  // Room 7000 is on shard 0, thread 0; of its two lanes, lane 0 is on thread 0 and lane 1 (odd
  // member ids) on thread 1, where one member's deliver blocks.
  threaded_hub h({.room_inbox = 8,
                  .max_rooms = 10,
                  .max_members = 64,
                  .shards = 2,
                  .fanout_threshold = 2,
                  .fanout_lanes = 2,
                  .fanout_chunk = 4});
  constexpr static int messages = 400;
  std::promise<void> gate;
  const auto open_gate = gate.get_future().share();
  std::atomic<bool> stuck{false};
  const auto talker = std::make_shared<listening_member>();  // id 1
  auto created = h.start(h.rooms.create(number(7000), "talker", talker));
  const auto seat = std::get<membership>(wait_for(created));
  std::vector<std::shared_ptr<listening_member>> members;
  for (int i = 0; i < 4; ++i) {
    members.push_back(std::make_shared<listening_member>());  // ids 2..5
    auto joined = h.start(h.rooms.join(number(7000), "m" + std::to_string(i), members.back()));
    REQUIRE(std::holds_alternative<membership>(wait_for(joined)));
  }
  // Member id 3 (lane 1) blocks on its first chat message until the gate opens.
  members[1]->react_with([&](const json::object& f) {
    if (f.at("event") != "message" || stuck.exchange(true)) return;
    open_gate.wait();
  });
  std::atomic<int> said{0};
  auto talk = [](hub& rooms, const membership& s, std::atomic<int>& count) -> net::awaitable<int> {
    for (int i = 0; i < messages; ++i) {
      co_await rooms.say(s, std::to_string(i));
      count.fetch_add(1);
    }
    co_return messages;
  };
  auto talking = h.start_on(h.io.context(0), talk(h.rooms, seat, said));
  REQUIRE(eventually([&] { return stuck.load(); }));
  // With lane 1 stuck the room stops taking messages once that lane is a full inbox behind, so
  // the sender, whose thread and lane are free, cannot finish.
  CHECK(talking.wait_for(300ms) == std::future_status::timeout);
  CHECK(said.load() < 100);
  gate.set_value();
  CHECK(wait_for(talking) == messages);
  for (const auto& m : members) {
    REQUIRE(eventually([&] { return m->frames().size() >= static_cast<std::size_t>(messages); }));
    CHECK(eventually([&] {
      const auto frames = m->frames();
      return frames.back().at("event") == "message"
             && frames.back().at("text").as_string() == std::to_string(messages - 1);
    }));
    CHECK(gapless(m->frames()));
  }
}
