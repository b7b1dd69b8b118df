// The Redis client against a real redis-server (tests/support/redis_process): each test starts
// its own server on a unix socket in a directory of its own, so tests and concurrent copies of
// the suite never meet. The io_context runs on two threads; the test's own coroutines share one
// strand, and the connection and subscriber each run on theirs, so every reply crosses strands
// (and the tsan preset, which runs the `integration` label, sees it). Every wait has a deadline;
// nothing sleeps.
//
// No co_await is written inside a CHECK or REQUIRE (docs/architecture.md, "Toolchain traps").
#include "roomcast/redis.hpp"

#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <catch2/catch.hpp>

#include "roomcast/net.hpp"

#include "redis_process.hpp"

using namespace roomcast;
using namespace roomcast::redis;
using namespace std::chrono_literals;
using roomcast::testing::redis_process;

namespace {

using result = std::pair<error_code, reply>;
using test_strand = net::strand<net::io_context::executor_type>;

// Runs `body` on a strand of a two-thread io_context until everything it started is over; fails
// the test when that takes longer than `deadline`, and rethrows what the body threw. The body
// also gets the io_context's executor, for the connections (each makes a strand of its own).
void run_test(const std::function<net::awaitable<void>(test_strand, net::any_io_executor)>& body,
              std::chrono::milliseconds deadline = 10s) {
  net::io_context io(2);
  const auto strand = net::make_strand(io.get_executor());
  std::atomic<bool> done{false};
  std::exception_ptr failure;
  net::co_spawn(strand, body(strand, io.get_executor()), [&](std::exception_ptr error) {
    failure = error;
    done = true;
  });
  std::thread second([&io, deadline] { io.run_for(deadline); });
  io.run_for(deadline);
  second.join();
  if (failure) std::rethrow_exception(failure);
  if (!done) FAIL("the test did not finish within " << deadline.count() << " ms");
}

// Counts arrivals on the test's strand and wakes the one waiter when all have come. The wait
// has a deadline: a timer that is cancelled to wake it early.
class countdown {
 public:
  countdown(const test_strand& strand, std::size_t expected) : timer_(strand), left_(expected) {}

  void arrive() {
    if (left_ > 0 && --left_ == 0) timer_.cancel();
  }
  std::size_t left() const noexcept { return left_; }

  // True when every arrival came within `deadline`.
  net::awaitable<bool> wait(std::chrono::milliseconds deadline) {
    if (left_ == 0) co_return true;
    timer_.expires_after(deadline);
    co_await timer_.async_wait(use_nothrow);
    co_return left_ == 0;
  }

 private:
  net::steady_timer timer_;
  std::size_t left_;
};

net::awaitable<void> execute_into(connection& c, std::vector<std::string> args,
                                  std::optional<result>& out, countdown& done) {
  out = co_await c.execute(std::move(args));
  done.arrive();
}

client_options options(std::chrono::milliseconds command_timeout = 2s,
                       std::size_t max_in_flight = 1024) {
  client_options out;
  out.connect_timeout = 2s;
  out.command_timeout = command_timeout;
  out.max_in_flight = max_in_flight;
  return out;
}

// Messages and losses a subscriber reports, moved to the test's strand in the order it called.
// Shared with the subscriber's callbacks, which may still run while the test ends.
struct inbox {
  inbox(const test_strand& on, std::size_t expected)
      : strand(on), arrived(on, expected), lost_signal(on, 1) {}

  test_strand strand;
  std::vector<std::pair<std::string, std::string>> messages;
  std::vector<error_code> lost;
  countdown arrived;
  countdown lost_signal;
};

std::shared_ptr<inbox> attach_inbox(subscriber& s, const test_strand& strand,
                                    std::size_t expected) {
  auto box = std::make_shared<inbox>(strand, expected);
  s.on_message = [box](std::string_view channel, std::string_view payload) {
    auto keep = [box, entry = std::make_pair(std::string(channel), std::string(payload))] {
      box->messages.push_back(entry);
      box->arrived.arrive();
    };
    net::post(box->strand, std::move(keep));
  };
  s.on_lost = [box](error_code ec) {
    auto keep = [box, ec] {
      box->lost.push_back(ec);
      box->lost_signal.arrive();
    };
    net::post(box->strand, std::move(keep));
  };
  return box;
}

}  // namespace

TEST_CASE("redis: SET, GET, INCR and DEL against a real server, and SELECT of the db", "[redis]") {
  redis_process server;
  run_test([&server](test_strand /*strand*/, net::any_io_executor io) -> net::awaitable<void> {
    connection c(io, server.where(), options());
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);

    const auto set = co_await c.execute(command("SET", "greeting", "hello\r\nworld"));
    REQUIRE_FALSE(set.first);
    CHECK(set.second.type == reply::kind::status);
    CHECK(set.second.str == "OK");
    const auto get = co_await c.execute(command("GET", "greeting"));
    CHECK(get.second.type == reply::kind::string);
    CHECK(get.second.str == "hello\r\nworld");
    const auto incr = co_await c.execute(command("INCRBY", "n", "41"));
    CHECK(incr.second.type == reply::kind::integer);
    CHECK(incr.second.integer == 41);
    const auto del = co_await c.execute(command("DEL", "greeting", "n", "missing"));
    CHECK(del.second.integer == 2);
    const auto gone = co_await c.execute(command("GET", "greeting"));
    CHECK(gone.second.type == reply::kind::nil);
    const auto wrong = co_await c.execute(command("INCR"));
    CHECK_FALSE(wrong.first);  // an error reply is a reply
    CHECK(wrong.second.is_error());
    CHECK_THAT(wrong.second.str, Catch::Contains("wrong number of arguments"));

    // A connection to db 5 sees its own keys only.
    connection other(io, server.where(5), options());
    const error_code selected = co_await other.connect();
    REQUIRE_FALSE(selected);
    const auto put = co_await other.execute(command("SET", "only-in-5", "x"));
    CHECK(put.second.str == "OK");
    const auto here = co_await other.execute(command("EXISTS", "only-in-5"));
    CHECK(here.second.integer == 1);
    const auto there = co_await c.execute(command("EXISTS", "only-in-5"));
    CHECK(there.second.integer == 0);
  });
}

TEST_CASE("redis: EVAL runs a Lua script and returns its array", "[redis]") {
  redis_process server;
  run_test([&server](test_strand /*strand*/, net::any_io_executor io) -> net::awaitable<void> {
    connection c(io, server.where(), options());
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    const std::string script =
        "redis.call('SET', KEYS[1], ARGV[1]) "
        "return {redis.call('INCR', KEYS[2]), redis.call('GET', KEYS[1]), false}";
    const auto first = co_await c.execute(command("EVAL", script, "2", "{r:1}:k", "{r:1}:n", "v"));
    REQUIRE_FALSE(first.first);
    REQUIRE(first.second.type == reply::kind::array);
    REQUIRE(first.second.elements.size() == 3);
    CHECK(first.second.elements[0].integer == 1);
    CHECK(first.second.elements[1].str == "v");
    CHECK(first.second.elements[2].type == reply::kind::nil);  // Lua false is a nil reply
    const auto second = co_await c.execute(command("EVAL", script, "2", "{r:1}:k", "{r:1}:n", "w"));
    REQUIRE(second.second.elements.size() == 3);
    CHECK(second.second.elements[0].integer == 2);

    // SCRIPT LOAD + EVALSHA, and a script's own error.
    const auto loaded = co_await c.execute(command("SCRIPT", "LOAD", "return ARGV[1] .. '!'"));
    REQUIRE(loaded.second.type == reply::kind::string);
    const auto by_sha = co_await c.execute(command("EVALSHA", loaded.second.str, "0", "hi"));
    CHECK(by_sha.second.str == "hi!");
    const auto failing =
        co_await c.execute(command("EVAL", "return redis.error_reply('NOPE no')", "0"));
    CHECK(failing.second.is_error());
    CHECK_THAT(failing.second.str, Catch::Contains("NOPE no"));
  });
}

TEST_CASE("redis: 1000 pipelined INCRs come back in order, 64 in flight at most", "[redis]") {
  redis_process server;
  run_test([&server](test_strand strand, net::any_io_executor io) -> net::awaitable<void> {
    connection c(io, server.where(), options(2s, 64));
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    constexpr std::size_t count = 1000;
    std::vector<std::optional<result>> results(count);
    countdown done(strand, count);
    for (std::size_t i = 0; i < count; ++i) {
      net::co_spawn(strand, execute_into(c, command("INCR", "counter"), results[i], done),
                    net::detached);
    }
    const bool finished = co_await done.wait(5s);
    REQUIRE(finished);
    std::size_t in_order = 0;
    for (std::size_t i = 0; i < count; ++i) {
      if (results[i] && !results[i]->first
          && results[i]->second.integer == static_cast<long long>(i + 1)) {
        ++in_order;
      }
    }
    CHECK(in_order == count);
    CHECK(c.in_flight() == 0);
    CHECK(c.waiting() == 0);
  });
}

TEST_CASE("redis: a subscriber receives what the command connection publishes, in order",
          "[redis]") {
  redis_process server;
  run_test([&server](test_strand strand, net::any_io_executor io) -> net::awaitable<void> {
    connection c(io, server.where(), options());
    subscriber s(io, server.where(), options());
    constexpr std::size_t count = 200;
    const auto received_box = attach_inbox(s, strand, count);
    auto& received = *received_box;
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    const error_code subscriber_connected = co_await s.connect();
    REQUIRE_FALSE(subscriber_connected);
    const error_code subscribed = co_await s.subscribe("{r:1}:events");
    REQUIRE_FALSE(subscribed);
    const error_code other = co_await s.subscribe("{r:2}:events");
    REQUIRE_FALSE(other);

    std::vector<std::optional<result>> published(count);
    countdown all_published(strand, count);
    for (std::size_t i = 0; i < count; ++i) {
      const char* channel = i % 2 == 0 ? "{r:1}:events" : "{r:2}:events";
      net::co_spawn(strand,
                    execute_into(c, command("PUBLISH", channel, "event " + std::to_string(i)),
                                 published[i], all_published),
                    net::detached);
    }
    const bool sent = co_await all_published.wait(5s);
    REQUIRE(sent);
    const bool delivered = co_await received.arrived.wait(5s);
    REQUIRE(delivered);
    REQUIRE(received.messages.size() == count);
    std::size_t in_order = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const auto& [channel, payload] = received.messages[i];
      if (payload == "event " + std::to_string(i)
          && channel == (i % 2 == 0 ? "{r:1}:events" : "{r:2}:events")
          && published[i]->second.integer == 1) {
        ++in_order;
      }
    }
    CHECK(in_order == count);

    // After UNSUBSCRIBE nobody listens there; PING still answers with the other subscription.
    const error_code unsubscribed = co_await s.unsubscribe("{r:1}:events");
    REQUIRE_FALSE(unsubscribed);
    const auto nobody = co_await c.execute(command("PUBLISH", "{r:1}:events", "lost"));
    CHECK(nobody.second.integer == 0);
    const error_code ponged = co_await s.ping();
    CHECK_FALSE(ponged);
    const error_code last = co_await s.unsubscribe("{r:2}:events");
    CHECK_FALSE(last);
    const error_code ponged_unsubscribed = co_await s.ping();
    CHECK_FALSE(ponged_unsubscribed);
    CHECK(received.lost.empty());
  });
}

TEST_CASE("redis: a command blocked past command_timeout fails and closes the connection",
          "[redis]") {
  redis_process server;
  run_test([&server](test_strand /*strand*/, net::any_io_executor io) -> net::awaitable<void> {
    connection c(io, server.where(), options(200ms));
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    const auto blocked = co_await c.execute(command("BLPOP", "empty-list", "0"));
    CHECK(blocked.first == net::error::timed_out);
    CHECK_FALSE(c.is_open());
    // connect() again, and the server serves it.
    const error_code reconnected = co_await c.connect();
    REQUIRE_FALSE(reconnected);
    const auto pong = co_await c.execute(command("PING"));
    CHECK(pong.second.str == "PONG");
  });
}

TEST_CASE(
    "redis: a killed server fails the outstanding command at once, and a restart serves "
    "again",
    "[redis]") {
  redis_process server;
  run_test([&server](test_strand strand, net::any_io_executor io) -> net::awaitable<void> {
    // Long timeouts: what ends the waits below must be the dead socket, not a timer.
    connection c(io, server.where(), options(5s));
    subscriber s(io, server.where(), options(5s));
    const auto received_box = attach_inbox(s, strand, 1);
    auto& received = *received_box;
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    const error_code subscriber_connected = co_await s.connect();
    REQUIRE_FALSE(subscriber_connected);
    const error_code subscribed = co_await s.subscribe("news");
    REQUIRE_FALSE(subscribed);

    // A BLPOP with no timeout is outstanding until the server dies.
    std::optional<result> blocked;
    countdown answered(strand, 1);
    net::co_spawn(strand, execute_into(c, command("BLPOP", "queue", "0"), blocked, answered),
                  net::detached);
    // Once CLIENT LIST on a second connection shows the BLPOP blocked, the server is killed.
    connection observer(io, server.where(), options());
    const error_code observing = co_await observer.connect();
    REQUIRE_FALSE(observing);
    bool seen_blocked = false;
    for (int attempt = 0; attempt < 1000 && !seen_blocked; ++attempt) {
      const auto clients = co_await observer.execute(command("CLIENT", "LIST"));
      seen_blocked = clients.second.str.find("cmd=blpop") != std::string::npos;
    }
    REQUIRE(seen_blocked);
    const auto killed_at = std::chrono::steady_clock::now();
    server.kill();

    const bool failed = co_await answered.wait(3s);
    REQUIRE(failed);
    REQUIRE(blocked.has_value());
    CHECK(blocked->first);
    CHECK(blocked->first != net::error::timed_out);
    CHECK(std::chrono::steady_clock::now() - killed_at < 3s);
    const bool lost = co_await received.lost_signal.wait(3s);
    REQUIRE(lost);
    REQUIRE(received.lost.size() == 1);
    CHECK(received.lost[0]);
    CHECK_FALSE(c.is_open());
    CHECK_FALSE(s.is_open());

    // Nothing listens now: connect fails at once.
    const error_code refused = co_await c.connect();
    CHECK(refused == net::error::connection_refused);

    server.restart();
    const error_code reconnected = co_await c.connect();
    REQUIRE_FALSE(reconnected);
    const auto set = co_await c.execute(command("SET", "after", "restart"));
    CHECK(set.second.str == "OK");
    const error_code resubscriber = co_await s.connect();
    REQUIRE_FALSE(resubscriber);
    const error_code resubscribed = co_await s.subscribe("news");
    REQUIRE_FALSE(resubscribed);
    const auto delivered_to = co_await c.execute(command("PUBLISH", "news", "back"));
    CHECK(delivered_to.second.integer == 1);
    const bool got = co_await received.arrived.wait(3s);
    REQUIRE(got);
    CHECK(received.messages.back().second == "back");
  });
}
