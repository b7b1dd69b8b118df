// What operators use: /metrics after a known workload, /readyz while draining, the admin port,
// and the real binary's signals, exit code and logs.
#include <algorithm>
#include <future>
#include <map>
#include <signal.h>
#include <sstream>

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

#include "server_fixture.hpp"
#include "server_process.hpp"
#include "test_client.hpp"

using namespace roomcast;
using namespace roomcast::testing;
namespace json = boost::json;

namespace {

std::string get(std::string_view path) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
}

// Parses the Prometheus text format: "name{labels} value" lines into a map, checking that every
// sample's metric family was introduced by # HELP and # TYPE lines.
std::map<std::string, double> parse_prometheus(const std::string& response) {
  const auto body = response.substr(response.find("\r\n\r\n") + 4);
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) == 0) {
      std::istringstream words(line.substr(7));
      std::string name, type;
      words >> name >> type;
      types[name] = type;
      continue;
    }
    if (line.empty() || line[0] == '#') continue;
    const auto space = line.rfind(' ');
    const auto series = line.substr(0, space);
    samples[series] = std::stod(line.substr(space + 1));
    auto family = series.substr(0, series.find('{'));
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
      if (types.count(family) == 0 && family.size() > std::strlen(suffix)
          && family.ends_with(suffix)) {
        family.resize(family.size() - std::strlen(suffix));
      }
    }
    INFO(series);
    CHECK(types.count(family) == 1);
  }
  return samples;
}

// One scrape of /metrics on `port`: roomcast_log_lines_dropped_total.
net::awaitable<double> dropped_log_lines(std::uint16_t port) {
  const auto response = co_await http_exchange(port, get("/metrics"));
  const auto metrics = parse_prometheus(response);
  co_return metrics.at("roomcast_log_lines_dropped_total");
}

}  // namespace

TEST_CASE("/metrics counts a known workload") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    auto bob = co_await test_client::connect(server.port());
    co_await alice.create("1234", "alice");  // frames in: 1, out: 1
    co_await bob.join("1234", "bob");        // in: 2, out: 3 (both hear the join)
    co_await alice.receive();
    for (int i = 0; i < 3; ++i) {  // in: 5, out: 9
      co_await alice.say("hello " + std::to_string(i));
      co_await alice.receive();
      co_await bob.receive();
    }
    co_await bob.say(" ");  // in: 6, out: 10 (an error for bob only)
    const auto refused = co_await bob.receive();
    CHECK(refused.at("code") == 4005);
    // Frames out are counted when a write completes, which a client can see before the server's
    // writer resumes. One more exchange makes sure every frame above is counted: a writer counts
    // a frame before it takes the next one. (in: 7, out: 10 to 12)
    co_await alice.say("sync");
    co_await alice.receive();
    co_await bob.receive();

    const auto response = co_await http_exchange(server.port(), get("/metrics"));
    CHECK_THAT(response, Catch::StartsWith("HTTP/1.1 200")
                             && Catch::Contains("Content-Type: text/plain; version=0.0.4"));
    const auto metrics = parse_prometheus(response);
    CHECK(metrics.at("roomcast_rooms") == 1);
    CHECK(metrics.at("roomcast_members") == 2);
    CHECK(metrics.at("roomcast_open_connections") == 3);  // alice, bob and this scrape
    CHECK(metrics.at("roomcast_frames_received_total") == 7);
    CHECK(metrics.at("roomcast_frames_sent_total") >= 10);
    CHECK(metrics.at("roomcast_frames_sent_total") <= 12);
    CHECK(metrics.at("roomcast_broadcasts_total") == 6);
    CHECK(metrics.at(R"(roomcast_rejections_total{code="4005",error="empty_text"})") == 1);
    CHECK(metrics.at(R"(roomcast_rejections_total{code="5002",error="name_taken"})") == 0);
    CHECK(metrics.at("roomcast_slow_consumers_total") == 0);
    CHECK(metrics.at("roomcast_log_lines_dropped_total") == 0);
    const auto latencies = metrics.at("roomcast_delivery_latency_seconds_count");
    CHECK(latencies >= 3);  // the three "hello"s; the "sync" one may still be in flight
    CHECK(latencies <= 4);
    CHECK(metrics.at(R"(roomcast_delivery_latency_seconds_bucket{le="+Inf"})") == latencies);
    CHECK(metrics.at("roomcast_sent_bytes_total") > metrics.at("roomcast_received_bytes_total"));
  });
}

TEST_CASE("an admin port takes /readyz and /metrics, which stay available while draining") {
  auto settings = test_config();
  settings.admin_port = 0;
  settings.session.close_timeout = std::chrono::seconds(10);
  running_server server(settings);
  REQUIRE(server.get().admin_port());
  const auto admin = *server.get().admin_port();
  run_client([&]() -> net::awaitable<void> {
    const auto main_metrics = co_await http_exchange(server.port(), get("/metrics"));
    CHECK_THAT(main_metrics, Catch::StartsWith("HTTP/1.1 404"));
    const auto ready = co_await http_exchange(admin, get("/readyz"));
    CHECK_THAT(ready, Catch::StartsWith("HTTP/1.1 200") && Catch::EndsWith("ready\n"));
    const auto no_chat = co_await http_head(admin, upgrade_request("/ws"));
    CHECK_THAT(no_chat, Catch::StartsWith("HTTP/1.1 404"));

    auto alice = co_await test_client::connect(server.port());
    co_await alice.create("1234", "alice");
    server.get().stop();
    // Alice has not read her close frame yet, so the drain is still going on.
    const auto draining = co_await http_exchange(admin, get("/readyz"));
    CHECK_THAT(draining, Catch::StartsWith("HTTP/1.1 503") && Catch::EndsWith("draining\n"));
    const auto scraped = co_await http_exchange(admin, get("/metrics"));
    CHECK_THAT(scraped, Catch::StartsWith("HTTP/1.1 200"));
    const auto end = co_await alice.receive_ending();
    CHECK(end.close_code == 1001);
  });
  server.get().wait();
}

TEST_CASE("metrics can be turned off") {
  auto settings = test_config();
  settings.metrics = false;
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    const auto response = co_await http_exchange(server.port(), get("/metrics"));
    CHECK_THAT(response, Catch::StartsWith("HTTP/1.1 404"));
    const auto ready = co_await http_exchange(server.port(), get("/readyz"));
    CHECK_THAT(ready, Catch::StartsWith("HTTP/1.1 200"));
  });
}

TEST_CASE("the real binary drains on SIGTERM, exits 0, and logs JSON lines") {
  server_process process({"--port", "0", "--admin-port", "0", "--threads", "2", "--log-format",
                          "json", "--close-timeout", "10000"});
  const auto port = process.port_after("listening on");
  const auto admin = process.port_after("admin endpoints on");
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(port);
    auto bob = co_await test_client::connect(port);
    co_await alice.create("1234", "alice");
    co_await bob.join("1234", "bob");
    co_await alice.say("before the signal");     // bob does not read it before the signal
    co_await alice.receive();                    // bob's join
    const auto echo = co_await alice.receive();  // the room has accepted the message
    CHECK(echo.at("text") == "before the signal");

    process.signal(SIGTERM);
    REQUIRE(process.wait_for_line("draining", std::chrono::seconds(10)));
    const auto draining = co_await http_exchange(admin, get("/readyz"));
    CHECK_THAT(draining, Catch::StartsWith("HTTP/1.1 503"));
    const auto last = co_await bob.receive();
    CHECK(last.at("text") == "before the signal");
    const auto bob_end = co_await bob.receive_ending();
    CHECK(bob_end.close_code == 1001);
    const auto alice_end = co_await alice.receive_ending();
    CHECK(alice_end.close_code == 1001);
  });
  CHECK(process.wait_exit(std::chrono::seconds(10)) == 0);
  bool saw_settings = false;
  bool saw_stopped = false;
  for (const auto& line : process.lines()) {
    INFO(line);
    const auto parsed = json::parse(line);
    REQUIRE(parsed.is_object());
    CHECK(parsed.as_object().contains("ts"));
    CHECK(parsed.as_object().contains("level"));
    const std::string message(parsed.at("msg").as_string());
    saw_settings |= message.find("max_text=100") != std::string::npos;
    saw_stopped |= message == "stopped";
    CHECK(message.find("before the signal") == std::string::npos);  // chat text is never logged
  }
  CHECK(saw_settings);
  CHECK(saw_stopped);
}

TEST_CASE(
    "with nobody reading its stderr, the real binary keeps serving chat, counts the log "
    "lines it drops, and still exits") {
  // A one-page stderr pipe that the test stops reading once it knows the ports, and a log queue
  // of 8 lines: the log lines of a few dozen connections fill both.
  server_process process({"--port", "0", "--admin-port", "0", "--threads", "2", "--log-queue", "8"},
                         4096);
  const auto port = process.port_after("listening on");
  const auto admin = process.port_after("admin endpoints on");
  run_client([&]() -> net::awaitable<void> {
    // Each scrape is a connection, which logs when it opens and when it closes. Some lines may be
    // dropped while the log thread is merely behind; 50 are dropped when the pipe stays full.
    double dropped = 0;
    for (int scrape = 0; scrape < 2000 && dropped < 50; ++scrape)
      dropped = co_await dropped_log_lines(admin);
    REQUIRE(dropped >= 50);
    // Rooms go on: the log lines of these connections are dropped, not waited for.
    auto alice = co_await test_client::connect(port);
    auto bob = co_await test_client::connect(port);
    co_await alice.create("1234", "alice");
    co_await bob.join("1234", "bob");
    co_await alice.receive();  // bob's join
    co_await bob.say("still here");
    const auto to_alice = co_await alice.receive();
    CHECK(to_alice.at("text") == "still here");
    const auto to_bob = co_await bob.receive();
    CHECK(to_bob.at("text") == "still here");
    co_await alice.close();
    co_await bob.close();
    // The pipe is never read, so the count keeps growing.
    double later = dropped;
    for (int scrape = 0; scrape < 2000 && later == dropped; ++scrape)
      later = co_await dropped_log_lines(admin);
    CHECK(later > dropped);
  });
  // The log thread is stuck in its write: main waits for it at most log_flush_bound, then exits.
  process.signal(SIGTERM);
  CHECK(process.wait_exit(std::chrono::seconds(20), false) == 0);
}

TEST_CASE(
    "SIGTERM while a client is half-way through its upgrade request: the binary exits at once") {
  // Timeouts of five minutes: only the shutdown itself can end this connection within the test.
  server_process process({"--port", "0", "--threads", "2", "--handshake-timeout", "300000",
                          "--drain-timeout", "300000"});
  const auto port = process.port_after("listening on");
  run_client([&]() -> net::awaitable<void> {
    tcp::socket upgrading(co_await net::this_coro::executor);
    co_await upgrading.async_connect({net::ip::address_v4::loopback(), port}, net::use_awaitable);
    // A first request answered proves the server holds the connection (not merely the kernel's
    // accept queue); then an upgrade request on it without the blank line that ends it.
    co_await net::async_write(
        upgrading, net::buffer(std::string_view("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")),
        net::use_awaitable);
    std::string health;
    co_await net::async_read_until(upgrading, net::dynamic_buffer(health), "ok\n",
                                   net::use_awaitable);
    CHECK(health.starts_with("HTTP/1.1 200"));
    co_await net::async_write(upgrading,
                              net::buffer(std::string_view("GET /ws HTTP/1.1\r\nHost: x\r\n"
                                                           "Upgrade: websocket\r\n"
                                                           "Connection: Upgrade\r\n")),
                              net::use_awaitable);
    process.signal(SIGTERM);
    std::string rest;
    auto [ec, size] = co_await net::async_read(upgrading, net::dynamic_buffer(rest), use_nothrow);
    CHECK(ec == net::error::eof);
    CHECK(rest.empty());  // closed, not answered with a 101
  });
  CHECK(process.wait_exit(std::chrono::seconds(20)) == 0);
  const auto& lines = process.lines();
  CHECK(std::any_of(lines.begin(), lines.end(),
                    [](const std::string& line) { return line.ends_with("stopped"); }));
}

TEST_CASE("bad flags and values exit with code 2 and a message") {
  server_process bad_flag({"--no-such-flag"});
  CHECK(bad_flag.wait_exit(std::chrono::seconds(10)) == 2);
  REQUIRE_FALSE(bad_flag.lines().empty());
  CHECK_THAT(bad_flag.lines().front(), Catch::Contains("unknown option"));
  server_process bad_value({"--threads", "many"});
  CHECK(bad_value.wait_exit(std::chrono::seconds(10)) == 2);
}

TEST_CASE("a shutdown closes connections still in HTTP at once, without waiting for timeouts") {
  auto settings = test_config();
  settings.session.handshake_timeout = std::chrono::minutes(5);
  settings.drain_timeout = std::chrono::minutes(5);
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    const tcp::endpoint at{net::ip::address_v4::loopback(), server.port()};
    // One connection half-way through its request, one idle between keep-alive requests.
    tcp::socket halfway(co_await net::this_coro::executor);
    co_await halfway.async_connect(at, net::use_awaitable);
    co_await net::async_write(halfway, net::buffer(std::string_view("GET / HTTP/1.1\r\nHost:")),
                              net::use_awaitable);
    tcp::socket idle(co_await net::this_coro::executor);
    co_await idle.async_connect(at, net::use_awaitable);
    co_await net::async_write(
        idle, net::buffer(std::string_view("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")),
        net::use_awaitable);
    std::string response;
    co_await net::async_read_until(idle, net::dynamic_buffer(response), "ok\n", net::use_awaitable);
    CHECK(response.starts_with("HTTP/1.1 200"));

    server.get().stop();
    // Both see the end of the stream within run_client's deadline, far below the timeouts.
    for (auto* socket : {&halfway, &idle}) {
      std::string rest;
      auto [ec, size] = co_await net::async_read(*socket, net::dynamic_buffer(rest), use_nothrow);
      CHECK(ec == net::error::eof);
    }
  });
  auto stopped = std::async(std::launch::async, [&] { server.get().wait(); });
  CHECK(stopped.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
}
