// The real binary behind a (pretend) load balancer: PROXY protocol headers and X-Forwarded-For
// from a trusted address decide which client --max-connections-per-ip charges; the same bytes
// from an untrusted address change nothing, or are refused. The trusted proxy is 127.0.0.1;
// other loopback addresses (127.0.0.2, 127.0.0.3) play clients that connect directly.
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include "server_fixture.hpp"
#include "server_process.hpp"
#include "test_client.hpp"

using namespace roomcast;
using namespace roomcast::testing;
using Catch::StartsWith;

namespace {

constexpr std::string_view proxy_address = "127.0.0.1";
constexpr std::string_view direct_client = "127.0.0.2";
constexpr std::string_view observer = "127.0.0.3";  // reads /metrics
// Refused connections come from an address of their own: the server releases a connection's
// charge only after it has closed it, so a refused one could still count against the next.
constexpr std::string_view spoofer = "127.0.0.4";

// A connection opened from `source` with `preamble` (a PROXY header, or nothing) and `request`
// written at once, and the response's head; empty when the server closed without a reply. The
// socket stays open, so that an admitted connection keeps its place under the caps.
struct opened {
  tcp::socket socket;
  std::string head;
};

net::awaitable<opened> open_from(std::string_view source, std::uint16_t port, std::string preamble,
                                 std::string request) {
  tcp::socket socket(co_await net::this_coro::executor);
  socket.open(tcp::v4());
  socket.bind({net::ip::make_address(source), 0});
  co_await socket.async_connect({net::ip::address_v4::loopback(), port}, net::use_awaitable);
  const auto bytes = preamble + request;
  // A refused connection may be reset while this is written: the reply (none) tells.
  co_await net::async_write(socket, net::buffer(bytes), use_nothrow);
  std::string response;
  const auto [ec, size] = co_await net::async_read_until(socket, net::dynamic_buffer(response),
                                                         "\r\n\r\n", use_nothrow);
  opened result{std::move(socket), ec ? std::string() : response.substr(0, size)};
  co_return result;
}

// The whole response to one request, read until the server closes.
net::awaitable<std::string> exchange_from(std::string_view source, std::uint16_t port,
                                          std::string request) {
  auto connection = co_await open_from(source, port, {}, std::move(request));
  std::string rest;
  co_await net::async_read(connection.socket, net::dynamic_buffer(rest), use_nothrow);
  co_return connection.head + rest;
}

std::string get(std::string_view path) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
}

std::string v1_header(std::string_view client) {
  return "PROXY TCP4 " + std::string(client) + " 127.0.0.1 40000 3000\r\n";
}

std::string v2_fixed(unsigned command, unsigned family, std::size_t length) {
  std::string header("\r\n\r\n\0\r\nQUIT\n", 12);
  header += static_cast<char>(command);
  header += static_cast<char>(family);
  header += static_cast<char>(length >> 8);
  header += static_cast<char>(length & 0xFF);
  return header;
}

std::string v2_header(std::string_view client) {
  const auto source = net::ip::make_address_v4(client).to_bytes();
  std::string header = v2_fixed(0x21, 0x11, 12);
  header.append(source.begin(), source.end());
  header += std::string("\x7F\x00\x00\x01\x9C\x40\x0B\xB8", 8);  // 127.0.0.1, ports 40000 3000
  return header;
}

// What haproxy sends before its own health checks.
std::string v2_local() {
  return v2_fixed(0x20, 0x00, 0);
}

std::string upgrade_with(std::string_view extra_headers) {
  auto request = upgrade_request("/ws");
  request.insert(request.size() - 2, extra_headers);
  return request;
}

std::string forwarded_for(std::string_view chain) {
  return upgrade_with("X-Forwarded-For: " + std::string(chain) + "\r\n");
}

// roomcast with --proxy-protocol on, trusting 127.0.0.1, one connection per client address.
server_process proxied_server(std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--port",
                                   "0",
                                   "--threads",
                                   "2",
                                   "--proxy-protocol",
                                   "on",
                                   "--trusted-proxy",
                                   std::string(proxy_address),
                                   "--max-connections-per-ip",
                                   "1"};
  args.insert(args.end(), extra.begin(), extra.end());
  return server_process(args);
}

bool has_sample(const std::string& metrics, std::string_view sample) {
  return metrics.find("\n" + std::string(sample) + "\n") != std::string::npos;
}

}  // namespace

TEST_CASE("behind a trusted proxy, the per-address cap is charged to the client in the header") {
  auto process = proxied_server();
  const auto port = process.port_after("listening on");
  run_client([&]() -> net::awaitable<void> {
    auto first =
        co_await open_from(proxy_address, port, v1_header("203.0.113.1"), upgrade_request("/ws"));
    CHECK_THAT(first.head, StartsWith("HTTP/1.1 101"));
    // Another client through the same proxy: its own address, its own cap.
    auto second =
        co_await open_from(proxy_address, port, v2_header("203.0.113.2"), upgrade_request("/ws"));
    CHECK_THAT(second.head, StartsWith("HTTP/1.1 101"));
    // The first client again: at its cap of 1.
    auto again =
        co_await open_from(proxy_address, port, v2_header("203.0.113.1"), upgrade_request("/ws"));
    CHECK_THAT(again.head, StartsWith("HTTP/1.1 503"));
    // The proxy's own health check (LOCAL) is served under the proxy's address, never capped.
    auto check = co_await open_from(proxy_address, port, v2_local(), get("/readyz"));
    CHECK_THAT(check.head, StartsWith("HTTP/1.1 200"));
    auto another_check = co_await open_from(proxy_address, port, v2_local(), get("/readyz"));
    CHECK_THAT(another_check.head, StartsWith("HTTP/1.1 200"));

    const auto metrics = co_await exchange_from(observer, port, get("/metrics"));
    CHECK(has_sample(metrics, R"(roomcast_proxy_headers_total{outcome="accepted"} 5)"));
    CHECK(has_sample(metrics, R"(roomcast_capacity_refusals_total 1)"));
  });
  // The logs name the client, not the proxy.
  CHECK(process.wait_for_line("client 203.0.113.1 (PROXY v1)", std::chrono::seconds(5)));
  CHECK(process.wait_for_line("client 203.0.113.2 (PROXY v2)", std::chrono::seconds(5)));
}

TEST_CASE("a PROXY header from an address that is not a trusted proxy is refused") {
  auto process = proxied_server();
  const auto port = process.port_after("listening on");
  run_client([&]() -> net::awaitable<void> {
    // A client claiming to be someone else: closed without a reply, whatever the version.
    const auto spoof_v1 =
        co_await open_from(spoofer, port, v1_header("203.0.113.9"), upgrade_request("/ws"));
    CHECK(spoof_v1.head.empty());
    const auto spoof_v2 =
        co_await open_from(spoofer, port, v2_header("203.0.113.9"), upgrade_request("/ws"));
    CHECK(spoof_v2.head.empty());
    // Without a header it is served, under its own address and its own cap.
    auto direct = co_await open_from(direct_client, port, {}, upgrade_request("/ws"));
    CHECK_THAT(direct.head, StartsWith("HTTP/1.1 101"));
    const auto second = co_await open_from(direct_client, port, {}, upgrade_request("/ws"));
    CHECK_THAT(second.head, StartsWith("HTTP/1.1 503"));

    const auto metrics = co_await exchange_from(observer, port, get("/metrics"));
    CHECK(has_sample(metrics, R"(roomcast_proxy_headers_total{outcome="untrusted"} 2)"));
    CHECK(has_sample(metrics, R"(roomcast_proxy_headers_total{outcome="accepted"} 0)"));
  });
  CHECK(
      process.wait_for_line("closed: PROXY protocol header refused: a PROXY header from an "
                            "untrusted address",
                            std::chrono::seconds(5)));
}

TEST_CASE("a trusted proxy without a valid header in time is refused, logged and counted") {
  auto process = proxied_server({"--handshake-timeout", "1000"});
  const auto port = process.port_after("listening on");
  run_client([&]() -> net::awaitable<void> {
    const auto missing = co_await open_from(proxy_address, port, {}, upgrade_request("/ws"));
    CHECK(missing.head.empty());
    const auto bad_port = co_await open_from(
        proxy_address, port, "PROXY TCP4 203.0.113.1 127.0.0.1 99999 3000\r\n", get("/healthz"));
    CHECK(bad_port.head.empty());
    const auto bad_version =
        co_await open_from(proxy_address, port, v2_fixed(0x11, 0x11, 0), get("/healthz"));
    CHECK(bad_version.head.empty());
    // Half a header, then nothing: cut off at --handshake-timeout like a slow HTTP request.
    const auto started = std::chrono::steady_clock::now();
    const auto trickle = co_await open_from(proxy_address, port, "PROXY TCP4 203.0", {});
    CHECK(trickle.head.empty());
    CHECK(std::chrono::steady_clock::now() - started >= std::chrono::milliseconds(900));
  });
  CHECK(process.wait_for_line("PROXY protocol header refused: a trusted proxy sent no PROXY header",
                              std::chrono::seconds(5)));
  // Beast's timeout closes the socket before the connection counts it: the counters are read once
  // every refused connection has logged its end.
  for (int refused = 0; refused < 4; ++refused) {
    REQUIRE(
        process.wait_for_line("closed: PROXY protocol header refused", std::chrono::seconds(5)));
  }
  run_client([&]() -> net::awaitable<void> {
    const auto metrics = co_await exchange_from(observer, port, get("/metrics"));
    CHECK(has_sample(metrics, R"(roomcast_proxy_headers_total{outcome="missing"} 1)"));
    CHECK(has_sample(metrics, R"(roomcast_proxy_headers_total{outcome="invalid"} 2)"));
    CHECK(has_sample(metrics, R"(roomcast_proxy_headers_total{outcome="incomplete"} 1)"));
  });
}

TEST_CASE("X-Forwarded-For names the client only when a trusted proxy sends it") {
  server_process process({"--port", "0", "--threads", "2", "--trusted-proxy",
                          std::string(proxy_address), "--max-connections-per-ip", "1"});
  const auto port = process.port_after("listening on");
  run_client([&]() -> net::awaitable<void> {
    auto first = co_await open_from(proxy_address, port, {}, forwarded_for("203.0.113.1"));
    CHECK_THAT(first.head, StartsWith("HTTP/1.1 101"));
    // The right-most address that is not a trusted proxy: the left part is the client's own word.
    auto second = co_await open_from(proxy_address, port, {},
                                     forwarded_for("203.0.113.1, 203.0.113.2, 127.0.0.1"));
    CHECK_THAT(second.head, StartsWith("HTTP/1.1 101"));
    const auto again = co_await open_from(proxy_address, port, {}, forwarded_for("203.0.113.1"));
    CHECK_THAT(again.head, StartsWith("HTTP/1.1 503"));
    // The proxy's own requests are not capped by its address.
    auto own = co_await open_from(proxy_address, port, {}, upgrade_request("/ws"));
    CHECK_THAT(own.head, StartsWith("HTTP/1.1 101"));
    auto own_again = co_await open_from(proxy_address, port, {}, upgrade_request("/ws"));
    CHECK_THAT(own_again.head, StartsWith("HTTP/1.1 101"));
    // From anyone else the header is ignored: both count against 127.0.0.2.
    auto direct = co_await open_from(direct_client, port, {}, forwarded_for("203.0.113.50"));
    CHECK_THAT(direct.head, StartsWith("HTTP/1.1 101"));
    const auto spoof = co_await open_from(direct_client, port, {}, forwarded_for("203.0.113.51"));
    CHECK_THAT(spoof.head, StartsWith("HTTP/1.1 503"));

    const auto metrics = co_await exchange_from(observer, port, get("/metrics"));
    CHECK(has_sample(metrics, "roomcast_forwarded_for_used_total 3"));
  });
  CHECK(process.wait_for_line("client 203.0.113.2 (X-Forwarded-For)", std::chrono::seconds(5)));
}
