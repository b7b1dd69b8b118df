// The Redis connection and subscriber against a scripted server: a coroutine on a loopback (or
// unix) acceptor that reads the client's commands with a reply_parser and answers with exactly
// the bytes each test chooses. One thread; every test is bounded by run_test's deadline, and
// waits for events, never for time (the timeout tests set timeouts of 100 ms).
//
// No co_await is written inside a CHECK or REQUIRE (docs/architecture.md, "Toolchain traps").
#include <array>
#include <chrono>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <unistd.h>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include "roomcast/net.hpp"
#include "roomcast/redis.hpp"

using namespace roomcast;
using namespace roomcast::redis;
using namespace std::chrono_literals;

namespace {

using result = std::pair<error_code, reply>;

// Runs `body` on a fresh io_context on this thread until everything it started is over; fails
// the test when that takes longer than `deadline`, and rethrows what the body threw.
void run_test(const std::function<net::awaitable<void>(net::any_io_executor)>& body,
              std::chrono::milliseconds deadline = 5s) {
  net::io_context io;
  bool done = false;
  std::exception_ptr failure;
  net::co_spawn(io, body(io.get_executor()), [&](std::exception_ptr error) {
    failure = error;
    done = true;
  });
  io.run_for(deadline);
  if (failure) std::rethrow_exception(failure);
  if (!done) FAIL("the test did not finish within " << deadline.count() << " ms");
}

// Yields to everything else that is ready (sockets included) until `condition` holds; false if
// it never does within many turns.
template <class Condition>
net::awaitable<bool> eventually(Condition condition) {
  const auto executor = co_await net::this_coro::executor;
  for (int turn = 0; turn < 100'000; ++turn) {
    if (condition()) co_return true;
    co_await net::post(executor, net::use_awaitable);
  }
  co_return false;
}

// The server's end of one accepted connection.
template <class Socket>
struct peer {
  explicit peer(Socket accepted) : socket(std::move(accepted)) {}

  Socket socket;
  reply_parser parser;

  // The next command the client sent, as its arguments; empty at the end of the stream.
  net::awaitable<std::vector<std::string>> next_command() {
    std::array<char, 4096> buffer;
    for (;;) {
      auto parsed = parser.next();
      if (parsed) {
        std::vector<std::string> args;
        for (auto& element : parsed->elements)
          args.push_back(std::move(element.str));
        co_return args;
      }
      auto [ec, size] = co_await socket.async_read_some(net::buffer(buffer), use_nothrow);
      if (ec) co_return std::vector<std::string>{};
      parser.feed(std::string_view(buffer.data(), size));
    }
  }

  net::awaitable<void> send(std::string bytes) {
    auto [ec, written] = co_await net::async_write(socket, net::buffer(bytes), use_nothrow);
    REQUIRE_FALSE(ec);
  }

  // Whether the client has closed its end (everything it sent before is read and dropped).
  net::awaitable<bool> closed_by_client() {
    std::array<char, 4096> buffer;
    for (;;) {
      auto [ec, size] = co_await socket.async_read_some(net::buffer(buffer), use_nothrow);
      if (ec) co_return ec == net::error::eof;
    }
  }

  // Bytes the client has sent that the server has not read (nothing must be on its way).
  std::size_t unread() const { return socket.available() + parser.buffered(); }
};

using tcp_peer = peer<tcp::socket>;

struct tcp_server {
  tcp::acceptor acceptor;

  explicit tcp_server(const net::any_io_executor& executor)
      : acceptor(executor, tcp::endpoint(net::ip::address_v4::loopback(), 0)) {}

  endpoint where(int db = 0) const {
    endpoint out;
    out.host = "127.0.0.1";
    out.port = acceptor.local_endpoint().port();
    out.db = db;
    return out;
  }

  net::awaitable<tcp_peer> accept() {
    auto socket = co_await acceptor.async_accept(net::use_awaitable);
    co_return tcp_peer(std::move(socket));
  }
};

client_options quick(std::size_t max_in_flight = 1024) {
  client_options options;
  options.connect_timeout = 100ms;
  options.command_timeout = 100ms;
  options.max_in_flight = max_in_flight;
  return options;
}

std::string integer(long long n) {
  return ":" + std::to_string(n) + "\r\n";
}

// What Redis sends a subscriber: an array of bulk strings (and an integer count for
// confirmations).
std::string push(std::string_view kind, std::string_view channel, std::string_view payload) {
  const std::array<std::string_view, 3> parts = {kind, channel, payload};
  return format_command(parts);
}

std::string confirmation(std::string_view kind, std::string_view channel, int count) {
  return "*3\r\n$" + std::to_string(kind.size()) + "\r\n" + std::string(kind) + "\r\n$"
         + std::to_string(channel.size()) + "\r\n" + std::string(channel) + "\r\n" + integer(count);
}

// Runs one execute and keeps its result: the callers of the pipelining tests.
net::awaitable<void> execute_into(connection& c, std::vector<std::string> args,
                                  std::optional<result>& out) {
  out = co_await c.execute(std::move(args));
}

net::awaitable<void> connect_into(connection& c, std::optional<error_code>& out) {
  out = co_await c.connect();
}

net::awaitable<void> subscribe_into(subscriber& s, std::string channel,
                                    std::optional<error_code>& out) {
  out = co_await s.subscribe(std::move(channel));
}

net::awaitable<void> unsubscribe_into(subscriber& s, std::string channel,
                                      std::optional<error_code>& out) {
  out = co_await s.unsubscribe(std::move(channel));
}

net::awaitable<void> ping_into(subscriber& s, std::optional<error_code>& out) {
  out = co_await s.ping();
}

}  // namespace

TEST_CASE("redis: commands are pipelined and their replies matched in order") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    connection c(executor, server.where());
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    CHECK(c.is_open());
    auto redis = co_await server.accept();

    std::vector<std::optional<result>> results(10);
    for (int i = 0; i < 10; ++i) {
      net::co_spawn(executor, execute_into(c, command("ECHO", std::to_string(i)), results[i]),
                    net::detached);
    }
    // All ten reach the server before it answers any: nothing waits for a reply to send.
    for (int i = 0; i < 10; ++i) {
      const auto got = co_await redis.next_command();
      CHECK(got == command("ECHO", std::to_string(i)));
    }
    CHECK(c.in_flight() == 10);
    std::string replies;
    for (int i = 0; i < 10; ++i)
      replies += "$1\r\n" + std::to_string(i) + "\r\n";
    co_await redis.send(replies);
    const bool all_answered = co_await eventually([&] { return results[9].has_value(); });
    REQUIRE(all_answered);
    for (int i = 0; i < 10; ++i) {
      INFO("command " << i);
      REQUIRE(results[i].has_value());
      CHECK_FALSE(results[i]->first);
      CHECK(results[i]->second.type == reply::kind::string);
      CHECK(results[i]->second.str == std::to_string(i));
    }
    CHECK(c.in_flight() == 0);
  });
}

TEST_CASE("redis: a caller waits while max_in_flight commands are outstanding") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    connection c(executor, server.where(), quick(2));
    c.close();  // closing a connection that never connected is harmless
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    auto redis = co_await server.accept();

    std::array<std::optional<result>, 3> results;
    for (int i = 0; i < 3; ++i) {
      net::co_spawn(executor, execute_into(c, command("INCR", "n"), results[i]), net::detached);
    }
    const auto first = co_await redis.next_command();
    const auto second = co_await redis.next_command();
    CHECK(first == command("INCR", "n"));
    CHECK(second == command("INCR", "n"));
    const bool third_waits = co_await eventually([&] { return c.waiting() == 1; });
    REQUIRE(third_waits);
    CHECK(c.in_flight() == 2);
    CHECK(redis.unread() == 0);  // the third is not on the wire
    CHECK_FALSE(results[2].has_value());

    co_await redis.send(integer(1));  // a reply frees a slot: the third goes out
    const auto third = co_await redis.next_command();
    CHECK(third == command("INCR", "n"));
    CHECK(c.waiting() == 0);
    CHECK(c.in_flight() == 2);
    co_await redis.send(integer(2) + integer(3));
    const bool answered = co_await eventually([&] { return results[2].has_value(); });
    REQUIRE(answered);
    for (int i = 0; i < 3; ++i) {
      REQUIRE(results[i].has_value());
      CHECK_FALSE(results[i]->first);
      CHECK(results[i]->second.integer == i + 1);
    }
  });
}

TEST_CASE("redis: a command without a reply in time fails every outstanding one and closes") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    connection c(executor, server.where(), quick());
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    auto redis = co_await server.accept();

    std::array<std::optional<result>, 3> results;
    for (int i = 0; i < 3; ++i) {
      net::co_spawn(executor, execute_into(c, command("GET", "k"), results[i]), net::detached);
    }
    for (int i = 0; i < 3; ++i) {
      const auto got = co_await redis.next_command();
      CHECK(got == command("GET", "k"));
    }
    // The server never answers: after command_timeout all three fail, and the client hangs up.
    const bool client_closed = co_await redis.closed_by_client();
    CHECK(client_closed);
    const bool failed = co_await eventually([&] { return results[2].has_value(); });
    REQUIRE(failed);
    for (const auto& r : results) {
      REQUIRE(r.has_value());
      CHECK(r->first == net::error::timed_out);
    }
    CHECK_FALSE(c.is_open());
    CHECK(c.in_flight() == 0);
    const auto after = co_await c.execute(command("GET", "k"));
    CHECK(after.first == make_error_code(errc::not_connected));
  });
}

TEST_CASE("redis: a server that closes in the middle of a reply fails what is outstanding") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    connection c(executor, server.where());
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    std::array<std::optional<result>, 3> results;
    {
      auto redis = co_await server.accept();
      for (int i = 0; i < 3; ++i) {
        net::co_spawn(executor, execute_into(c, command("GET", std::to_string(i)), results[i]),
                      net::detached);
      }
      for (int i = 0; i < 3; ++i) {
        const auto got = co_await redis.next_command();
        CHECK(got.size() == 2);
      }
      co_await redis.send("+OK\r\n$10\r\nhal");
    }  // the server's socket closes here
    const bool failed = co_await eventually([&] { return results[2].has_value(); });
    REQUIRE(failed);
    REQUIRE(results[0].has_value());
    CHECK_FALSE(results[0]->first);
    CHECK(results[0]->second.str == "OK");
    for (int i = 1; i < 3; ++i) {
      REQUIRE(results[i].has_value());
      CHECK(results[i]->first == net::error::eof);
    }
    CHECK_FALSE(c.is_open());

    // connect() again: a new socket, and the connection works as before.
    const error_code reconnected = co_await c.connect();
    REQUIRE_FALSE(reconnected);
    auto again = co_await server.accept();
    std::optional<result> ping;
    net::co_spawn(executor, execute_into(c, command("PING"), ping), net::detached);
    const auto got = co_await again.next_command();
    CHECK(got == command("PING"));
    co_await again.send("+PONG\r\n");
    const bool answered = co_await eventually([&] { return ping.has_value(); });
    REQUIRE(answered);
    CHECK_FALSE(ping->first);
    CHECK(ping->second.str == "PONG");
  });
}

TEST_CASE("redis: an error reply is a reply, bytes that are not RESP close the connection") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    connection c(executor, server.where());
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    auto redis = co_await server.accept();

    std::optional<result> refused;
    std::optional<result> garbled;
    net::co_spawn(executor, execute_into(c, command("NOPE"), refused), net::detached);
    net::co_spawn(executor, execute_into(c, command("GET", "k"), garbled), net::detached);
    const auto first = co_await redis.next_command();
    const auto second = co_await redis.next_command();
    CHECK(first == command("NOPE"));
    CHECK(second == command("GET", "k"));
    co_await redis.send("-ERR unknown command 'NOPE'\r\n&what\r\n");
    const bool done = co_await eventually([&] { return garbled.has_value(); });
    REQUIRE(done);
    REQUIRE(refused.has_value());
    CHECK_FALSE(refused->first);
    CHECK(refused->second.is_error());
    CHECK(refused->second.str == "ERR unknown command 'NOPE'");
    CHECK(garbled->first == make_error_code(errc::protocol_error));
    CHECK_FALSE(c.is_open());
  });
}

TEST_CASE("redis: a reply nobody asked for closes the connection") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    connection c(executor, server.where());
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    auto redis = co_await server.accept();
    co_await redis.send("+SURPRISE\r\n");
    const bool closed = co_await redis.closed_by_client();
    CHECK(closed);
    CHECK_FALSE(c.is_open());
  });
}

TEST_CASE("redis: commands that would break reply matching are refused, closed is closed") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    connection c(executor, server.where());
    const auto early = co_await c.execute(command("PING"));
    CHECK(early.first == make_error_code(errc::not_connected));
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    const error_code twice = co_await c.connect();
    CHECK(twice == net::error::already_connected);
    auto redis = co_await server.accept();

    const std::vector<std::vector<std::string>> refused_commands = {
        command(), command("subscribe", "a"), command("MONITOR"), command("Client", "REPLY", "OFF"),
        command("HELLO", "3")};
    for (const auto& refused : refused_commands) {
      const auto got = co_await c.execute(refused);
      CHECK(got.first == make_error_code(errc::bad_command));
    }
    CHECK(redis.unread() == 0);
    CHECK(c.is_open());

    // close() fails what is outstanding with operation_aborted.
    std::optional<result> outstanding;
    net::co_spawn(executor, execute_into(c, command("BLPOP", "q", "0"), outstanding),
                  net::detached);
    const auto got = co_await redis.next_command();
    CHECK(got == command("BLPOP", "q", "0"));
    c.close();
    const bool failed = co_await eventually([&] { return outstanding.has_value(); });
    REQUIRE(failed);
    CHECK(outstanding->first == net::error::operation_aborted);
    CHECK_FALSE(c.is_open());
    const bool closed = co_await redis.closed_by_client();
    CHECK(closed);
  });
}

TEST_CASE("redis: connect selects the db, within connect_timeout") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    {
      connection c(executor, server.where(3), quick());
      std::optional<error_code> connected;
      net::co_spawn(executor, connect_into(c, connected), net::detached);
      auto redis = co_await server.accept();
      const auto select = co_await redis.next_command();
      CHECK(select == command("SELECT", "3"));
      co_await redis.send("+OK\r\n");
      const bool done = co_await eventually([&] { return connected.has_value(); });
      REQUIRE(done);
      CHECK_FALSE(*connected);
      CHECK(c.is_open());
    }
    {
      // A server that never answers the SELECT: connect fails with timed_out and closes.
      connection c(executor, server.where(1), quick());
      std::optional<error_code> connected;
      net::co_spawn(executor, connect_into(c, connected), net::detached);
      auto redis = co_await server.accept();
      const auto select = co_await redis.next_command();
      CHECK(select == command("SELECT", "1"));
      const bool closed = co_await redis.closed_by_client();
      CHECK(closed);
      const bool done = co_await eventually([&] { return connected.has_value(); });
      REQUIRE(done);
      CHECK(*connected == net::error::timed_out);
      CHECK_FALSE(c.is_open());
    }
    {
      // A refused SELECT.
      connection c(executor, server.where(99), quick());
      std::optional<error_code> connected;
      net::co_spawn(executor, connect_into(c, connected), net::detached);
      auto redis = co_await server.accept();
      const auto select = co_await redis.next_command();
      CHECK(select == command("SELECT", "99"));
      co_await redis.send("-ERR DB index is out of range\r\n");
      const bool done = co_await eventually([&] { return connected.has_value(); });
      REQUIRE(done);
      CHECK(*connected == make_error_code(errc::server_error));
    }
  });
}

TEST_CASE("redis: connect reports a refused port and a missing unix socket") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    endpoint nowhere;
    {
      tcp_server server(executor);
      nowhere = server.where();
    }  // nothing listens there now
    connection c(executor, nowhere, quick());
    const error_code refused = co_await c.connect();
    CHECK(refused == net::error::connection_refused);
    CHECK_FALSE(c.is_open());

    endpoint missing;
    missing.unix_path = "/nonexistent/roomcast-redis.sock";
    connection u(executor, missing, quick());
    const error_code absent = co_await u.connect();
    CHECK(absent == boost::system::errc::no_such_file_or_directory);
  });
}

TEST_CASE("redis: a connection over a unix socket") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    char dir_template[] = "/tmp/roomcast-redis-unit-XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    const std::string dir = dir_template;
    const std::string path = dir + "/fake.sock";
    net::local::stream_protocol::acceptor acceptor(executor,
                                                   net::local::stream_protocol::endpoint(path));
    endpoint where;
    where.unix_path = path;
    connection c(executor, where, quick());
    const error_code connected = co_await c.connect();
    REQUIRE_FALSE(connected);
    auto socket = co_await acceptor.async_accept(net::use_awaitable);
    peer<net::local::stream_protocol::socket> redis(std::move(socket));
    std::optional<result> got;
    net::co_spawn(executor, execute_into(c, command("GET", "k"), got), net::detached);
    const auto cmd = co_await redis.next_command();
    CHECK(cmd == command("GET", "k"));
    co_await redis.send("$-1\r\n");
    const bool answered = co_await eventually([&] { return got.has_value(); });
    REQUIRE(answered);
    CHECK_FALSE(got->first);
    CHECK(got->second.type == reply::kind::nil);
    acceptor.close();
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  });
}

TEST_CASE("redis: a subscriber hands messages over in the order the server sent them") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    subscriber s(executor, server.where(5), quick());  // no SELECT: channels have no db
    std::vector<std::pair<std::string, std::string>> messages;
    std::vector<error_code> lost;
    s.on_message = [&](std::string_view channel, std::string_view payload) {
      messages.emplace_back(channel, payload);
    };
    s.on_lost = [&](error_code ec) { lost.push_back(ec); };
    const error_code connected = co_await s.connect();
    REQUIRE_FALSE(connected);
    auto redis = co_await server.accept();

    std::optional<error_code> subscribed;
    net::co_spawn(executor, subscribe_into(s, "room:1", subscribed), net::detached);
    const auto sub = co_await redis.next_command();
    CHECK(sub == command("SUBSCRIBE", "room:1"));
    // The confirmation and the first messages in one write, the rest split across writes.
    std::string burst = confirmation("subscribe", "room:1", 1);
    for (int i = 0; i < 50; ++i)
      burst += push("message", "room:1", "event " + std::to_string(i));
    co_await redis.send(burst.substr(0, burst.size() / 3));
    co_await redis.send(burst.substr(burst.size() / 3));
    const bool received =
        co_await eventually([&] { return messages.size() == 50 && subscribed.has_value(); });
    REQUIRE(received);
    REQUIRE(subscribed.has_value());
    CHECK_FALSE(*subscribed);
    for (int i = 0; i < 50; ++i) {
      CHECK(messages[i].first == "room:1");
      CHECK(messages[i].second == "event " + std::to_string(i));
    }

    // A message that comes before an unsubscribe's confirmation is a message, in its place.
    std::optional<error_code> unsubscribed;
    net::co_spawn(executor, unsubscribe_into(s, "room:1", unsubscribed), net::detached);
    const auto unsub = co_await redis.next_command();
    CHECK(unsub == command("UNSUBSCRIBE", "room:1"));
    co_await redis.send(push("message", "room:1", "last")
                        + confirmation("unsubscribe", "room:1", 0));
    const bool confirmed = co_await eventually([&] { return unsubscribed.has_value(); });
    REQUIRE(confirmed);
    CHECK_FALSE(*unsubscribed);
    REQUIRE(messages.size() == 51);
    CHECK(messages.back().second == "last");

    // A ping with no subscription left is answered +PONG.
    std::optional<error_code> ponged;
    net::co_spawn(executor, ping_into(s, ponged), net::detached);
    const auto ping = co_await redis.next_command();
    CHECK(ping == command("PING"));
    co_await redis.send("+PONG\r\n");
    const bool pong = co_await eventually([&] { return ponged.has_value(); });
    REQUIRE(pong);
    CHECK_FALSE(*ponged);
    CHECK(lost.empty());
  });
}

TEST_CASE("redis: a subscriber reports a lost connection once, and not a close") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    std::vector<error_code> lost;
    {
      subscriber s(executor, server.where(), quick());
      s.on_lost = [&](error_code ec) { lost.push_back(ec); };
      const error_code connected = co_await s.connect();
      REQUIRE_FALSE(connected);
      {
        auto redis = co_await server.accept();
        std::optional<error_code> subscribed;
        net::co_spawn(executor, subscribe_into(s, "a", subscribed), net::detached);
        const auto sub = co_await redis.next_command();
        CHECK(sub == command("SUBSCRIBE", "a"));
        // The server goes away before it confirms.
        redis.socket.close();
        const bool reported = co_await eventually([&] { return subscribed.has_value(); });
        REQUIRE(reported);
        CHECK(*subscribed == net::error::eof);
      }
      REQUIRE(lost.size() == 1);
      CHECK(lost[0] == net::error::eof);
      CHECK_FALSE(s.is_open());

      // Reconnected, then closed by its owner: no second report.
      const error_code reconnected = co_await s.connect();
      REQUIRE_FALSE(reconnected);
      auto redis = co_await server.accept();
      s.close();
      const bool closed = co_await redis.closed_by_client();
      CHECK(closed);
    }
    CHECK(lost.size() == 1);
  });
}

TEST_CASE("redis: a subscriber closes on a reply that confirms nothing") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    subscriber s(executor, server.where(), quick());
    std::vector<error_code> lost;
    s.on_lost = [&](error_code ec) { lost.push_back(ec); };
    const error_code connected = co_await s.connect();
    REQUIRE_FALSE(connected);
    auto redis = co_await server.accept();
    co_await redis.send(confirmation("subscribe", "nobody-asked", 1));
    const bool closed = co_await redis.closed_by_client();
    CHECK(closed);
    REQUIRE(lost.size() == 1);
    CHECK(lost[0] == make_error_code(errc::unexpected_reply));
  });
}

TEST_CASE("redis: destroying a connection fails what is outstanding with operation_aborted") {
  run_test([](net::any_io_executor executor) -> net::awaitable<void> {
    tcp_server server(executor);
    std::optional<result> outstanding;
    std::optional<tcp_peer> redis;
    {
      connection c(executor, server.where(), quick(1));
      const error_code connected = co_await c.connect();
      REQUIRE_FALSE(connected);
      redis.emplace(co_await server.accept());
      net::co_spawn(executor, execute_into(c, command("GET", "k"), outstanding), net::detached);
      const auto got = co_await redis->next_command();
      CHECK(got == command("GET", "k"));
    }  // ~connection: close()
    const bool failed = co_await eventually([&] { return outstanding.has_value(); });
    REQUIRE(failed);
    CHECK(outstanding->first == net::error::operation_aborted);
    const bool closed = co_await redis->closed_by_client();
    CHECK(closed);
  });
}
