// roomcast-hub-bench: the hub alone, CPU-bound. Members are in-process stubs that count what they
// are handed (no sockets, no kernel), so the figure is what the rooms themselves cost: numbering,
// serializing, the inbox channel and the hand-out. Each room has one sender that says
// --messages messages as fast as the room's inbox takes them; the run ends when every member has
// every message. Prints one JSON line.
//
//   roomcast-hub-bench --threads 2 --shards 8 --rooms 100 --members 10 --messages 5000
//
// --deliver-ns N makes each delivery cost the stub N ns of busy CPU, the order of a real send():
// what a big room's fan-out lanes are for.
//
//   roomcast-hub-bench --threads 2 --rooms 1 --members 1000 --messages 2000 --deliver-ns 1000
//
// --fanout-threshold N sets the room size above which broadcasts go through lanes (1000000: never).
//
// --placement room puts each sender on its room's thread instead of a random one (what crossing
// threads costs).
//
// With --stalled K, the last K members of each room stop taking frames once the chat starts:
// the run then measures their eviction (the broadcast that finds them full, their leave notices
// to the others) and reports how many deliver calls it took.
//
//   roomcast-hub-bench --rooms 1 --members 1001 --messages 1 --stalled 1000
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/value.hpp>

#include "roomcast/hub.hpp"
#include "roomcast/io_pool.hpp"
#include "roomcast/log.hpp"
#include "roomcast/net.hpp"

#include "flag_values.hpp"

namespace {

using namespace roomcast;
using clock_type = std::chrono::steady_clock;

struct settings {
  unsigned threads = 1;
  std::size_t shards = 1;
  int rooms = 100;
  int members = 10;
  int messages = 5000;
  int stalled = 0;
  bool senders_with_room = false;  // --placement room
  int deliver_ns = 0;              // --deliver-ns: what each delivery costs a stub (busy)
  int fanout_threshold = 128;      // --fanout-threshold: rooms above it use fan-out lanes
};

// A stub's stand-in for the send() a real connection makes.
void busy_for(std::chrono::nanoseconds cost) {
  const auto until = clock_type::now() + cost;
  while (clock_type::now() < until) {
  }
}

// Counts deliveries; the last member to get its last frame (or to be evicted) ends the run.
class counting_member final : public member {
 public:
  counting_member(std::uint64_t expected, std::atomic<int>& unfinished, io_pool& io,
                  const std::atomic<bool>& go, bool stalls, std::chrono::nanoseconds cost)
      : expected_(expected),
        unfinished_(unfinished),
        io_(io),
        go_(go),
        stalls_(stalls),
        cost_(cost) {}

  delivery deliver(const shared_frame& /*frame*/) override {
    // Touched by one strand at a time (the room's, or its lane's): plain counters, no shared
    // cache line between threads.
    if (cost_.count() > 0) busy_for(cost_);
    const bool timed = go_.load(std::memory_order_relaxed);
    if (timed) ++calls_;
    if (stalls_ && timed) return delivery::full;
    if (++received_ == expected_) done();
    return delivery::queued;
  }
  void evict() override {
    if (!stalls_) std::fputs("hub-bench: a member that kept up was evicted\n", stderr);
    done();
  }
  void room_closing() override {}
  /** deliver calls once the clock started. */
  std::uint64_t calls() const noexcept { return calls_; }

 private:
  std::uint64_t received_ = 0;
  std::uint64_t calls_ = 0;
  const std::uint64_t expected_;
  std::atomic<int>& unfinished_;
  io_pool& io_;
  const std::atomic<bool>& go_;  // the clock runs
  const bool stalls_;            // stops taking frames when the clock starts
  const std::chrono::nanoseconds cost_;

  void done() {
    if (unfinished_.fetch_sub(1) == 1) io_.stop();
  }
};

constexpr std::string_view program = "hub-bench";

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    const std::string_view value = bench::value_of(program, argc, argv, i);
    if (flag == "--threads") {
      s.threads = static_cast<unsigned>(bench::parse_int(program, flag, value, 1, 64));
    } else if (flag == "--shards") {
      s.shards = static_cast<std::size_t>(bench::parse_int(program, flag, value, 1, 10'000));
    } else if (flag == "--rooms") {
      s.rooms = bench::parse_int(program, flag, value, 1, 9000);
    } else if (flag == "--members") {
      s.members = bench::parse_int(program, flag, value, 1, 5000);
    } else if (flag == "--messages") {
      s.messages = bench::parse_int(program, flag, value, 1, 10'000'000);
    } else if (flag == "--placement" && (value == "random" || value == "room")) {
      s.senders_with_room = value == "room";
    } else if (flag == "--fanout-threshold") {
      s.fanout_threshold = bench::parse_int(program, flag, value, 0, 1'000'000);
    } else if (flag == "--deliver-ns") {
      s.deliver_ns = bench::parse_int(program, flag, value, 0, 1'000'000);
    } else if (flag == "--stalled") {
      s.stalled = bench::parse_int(program, flag, value, 0, 4999);
    } else {
      std::fprintf(stderr, "hub-bench: unknown option or value: %s %s\n", argv[i - 1], argv[i]);
      std::exit(2);
    }
  }
  if (s.stalled >= s.members) {
    std::fputs("hub-bench: --stalled must be below --members (the sender keeps up)\n", stderr);
    std::exit(2);
  }
  return s;
}

room_id number(int n) {
  return *room_id::from_json(boost::json::value(1000 + n));
}

// Fills one room, then waits for the start signal and says its messages.
net::awaitable<void> fill_and_talk(hub& rooms, const settings& s, int index,
                                   std::vector<std::shared_ptr<counting_member>>& members,
                                   std::atomic<int>& unfilled, std::atomic<bool>& go) {
  std::vector<membership> seats;
  for (int m = 0; m < s.members; ++m) {
    std::string name = "m" + std::to_string(m);
    admission admitted;
    if (m == 0) {
      admitted = co_await rooms.create(number(index), std::move(name), members[m]);
    } else {
      admitted = co_await rooms.join(number(index), std::move(name), members[m]);
    }
    seats.push_back(std::get<membership>(std::move(admitted)));
  }
  unfilled.fetch_sub(1);
  const auto executor = co_await net::this_coro::executor;
  while (!go.load()) {
    // Every room is filled before any message goes out, so the timed part is chat only.
    co_await net::post(executor, net::use_awaitable);
  }
  const std::string text(60, 'x');
  for (int i = 0; i < s.messages; ++i) {
    co_await rooms.say(seats.front(), text);
  }
}

}  // namespace

int main(int argc, char** argv) {
  const settings s = parse(argc, argv);
  set_log_level(log_level::warn);  // not a line per room created
  io_pool io(s.threads);           // as the server runs: an io_context per thread
  hub rooms(io.executors(),
            hub_options{.room_inbox = 64,
                        .max_rooms = 10'000,
                        .max_members = 5000,
                        .shards = s.shards,
                        .fanout_threshold = static_cast<std::size_t>(s.fanout_threshold)});

  std::atomic<int> unfinished(s.rooms * s.members);
  std::atomic<int> unfilled(s.rooms);
  std::atomic<bool> go(false);
  std::vector<std::vector<std::shared_ptr<counting_member>>> members(s.rooms);
  // Each sender lives on a thread drawn at random, as a connection would (about half of them
  // share their room's thread when there are two), or with --placement room on its room's
  // thread: the hub puts room number n on shard n % shards, and shard i on thread i % threads.
  std::mt19937 draw(42);
  std::uniform_int_distribution<std::size_t> random_thread(0, io.size() - 1);
  const auto sender_thread = [&](int r) {
    if (!s.senders_with_room) return random_thread(draw);
    return static_cast<std::size_t>(number(r).key()) % s.shards % io.size();
  };
  for (int r = 0; r < s.rooms; ++r) {
    for (int m = 0; m < s.members; ++m) {
      // Member m sees the joins of m..members-1 (its own with the roster), then every message,
      // and the leave notice of every stalled member.
      const bool stalls = m >= s.members - s.stalled;
      const auto expected = static_cast<std::uint64_t>(s.members - m + s.messages + s.stalled);
      members[r].push_back(std::make_shared<counting_member>(
          expected, unfinished, io, go, stalls, std::chrono::nanoseconds(s.deliver_ns)));
    }
    net::co_spawn(net::make_strand(io.context(sender_thread(r))),
                  fill_and_talk(rooms, s, r, members[r], unfilled, go), net::detached);
  }
  // Fill every room first, then start the clock and the senders.
  io.start();
  while (unfilled.load() > 0)
    std::this_thread::yield();
  const auto started = clock_type::now();
  go.store(true);
  io.join();  // the last member to finish stops the contexts
  const double seconds = std::chrono::duration<double>(clock_type::now() - started).count();
  const double deliveries = double(s.rooms) * (s.members - s.stalled) * s.messages;
  std::uint64_t deliver_calls = 0;  // the threads have ended: the counters are settled
  for (const auto& room_members : members) {
    for (const auto& m : room_members)
      deliver_calls += m->calls();
  }
  std::printf(
      "{\"bench\":\"hub\",\"threads\":%u,\"shards\":%zu,\"rooms\":%d,\"members\":%d,"
      "\"messages\":%d,\"stalled\":%d,\"placement\":\"%s\",\"deliver_ns\":%d,\"fanout_threshold\":%"
      "d,\"deliveries\":%.0f,\"deliver_calls\":%llu,"
      "\"seconds\":%.4f,\"deliveries_per_s\":%.0f}\n",
      s.threads, s.shards, s.rooms, s.members, s.messages, s.stalled,
      s.senders_with_room ? "room" : "random", s.deliver_ns, s.fanout_threshold, deliveries,
      static_cast<unsigned long long>(deliver_calls), seconds, deliveries / seconds);
  rooms.shutdown();
  return unfinished.load() == 0 ? 0 : 1;
}
