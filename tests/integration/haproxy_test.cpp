// Through a real load balancer: Debian's haproxy running deploy/haproxy.cfg, terminating TLS with
// a certificate openssl makes for this run, in front of two roomcast nodes started with
// --proxy-protocol on, and (with a redis-server) in front of three cluster-mode nodes sharing a
// Redis of the test's own (tests/support/redis_process). Clients speak wss:// from loopback
// addresses of their own (127.0.0.2, 127.0.0.3, ...), so a node's per-address cap shows whose
// address the node sees. haproxy gets its listening socket from the test (fd@3, bound to a free
// port), so two copies of the suite never compete for a port. Every process is ended by its PID
// (server_process).
#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <memory>
#include <netinet/in.h>
#include <optional>
#include <signal.h>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <boost/asio/ssl.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#ifdef ROOMCAST_REDIS_SERVER
#include "redis_process.hpp"
#endif
#include "server_fixture.hpp"
#include "server_process.hpp"

using namespace roomcast;
using namespace roomcast::testing;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace ssl = net::ssl;
namespace json = boost::json;

namespace {

using std::chrono::seconds;

// A directory of its own for the certificate, removed at the end.
class temp_dir {
 public:
  temp_dir() {
    char name[] = "/tmp/roomcast-haproxy-XXXXXX";
    if (::mkdtemp(name) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = name;
  }
  ~temp_dir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

// A self-signed certificate for "localhost" (cert.pem) and the PEM haproxy wants (the
// certificate, then its key: haproxy.pem).
void make_certificate(const temp_dir& dir) {
  server_process openssl(
      {"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
       "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout",
       dir.file("key.pem"), "-out", dir.file("cert.pem")},
      server_process::launch{.program = ROOMCAST_OPENSSL});
  const auto status = openssl.wait_exit(seconds(30));
  REQUIRE(status == 0);
  std::ofstream pem(dir.file("haproxy.pem"));
  pem << std::ifstream(dir.file("cert.pem")).rdbuf() << std::ifstream(dir.file("key.pem")).rdbuf();
  REQUIRE(pem.good());
}

// A listening socket on 127.0.0.1 and a free port, for haproxy to inherit.
struct listener {
  int fd = -1;
  std::uint16_t port = 0;
};

listener listen_on_free_port() {
  listener out;
  out.fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  if (out.fd < 0 || ::bind(out.fd, reinterpret_cast<sockaddr*>(&address), size) != 0
      || ::listen(out.fd, 64) != 0
      || ::getsockname(out.fd, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
    throw std::runtime_error("cannot listen on a free port: errno " + std::to_string(errno));
  }
  out.port = ntohs(address.sin_port);
  return out;
}

// haproxy on deploy/haproxy.cfg, listening on `front` (its fd@3), with the certificate in `dir`,
// in front of the nodes on `ports` (ROOMCAST_NODE1, ROOMCAST_NODE2, ...), checking them every
// 200 ms.
std::unique_ptr<server_process> start_haproxy(const temp_dir& dir, const listener& front,
                                              const std::vector<std::uint16_t>& ports) {
  std::vector<std::string> env = {"ROOMCAST_LB_BIND=fd@3",
                                  "ROOMCAST_LB_CERT=" + dir.file("haproxy.pem"),
                                  "ROOMCAST_LB_CHECK_INTER=200ms"};
  for (std::size_t i = 0; i < ports.size(); ++i) {
    env.push_back("ROOMCAST_NODE" + std::to_string(i + 1)
                  + "=127.0.0.1:" + std::to_string(ports[i]));
  }
  auto haproxy = std::make_unique<server_process>(
      std::vector<std::string>{"-db", "-f", ROOMCAST_HAPROXY_CFG},
      server_process::launch{.program = ROOMCAST_HAPROXY, .env = std::move(env), .fd3 = front.fd});
  ::close(front.fd);  // haproxy has its own copy
  return haproxy;
}

server_process start_node() {
  return server_process({"--port", "0", "--threads", "1", "--proxy-protocol", "on",
                         "--trusted-proxy", "127.0.0.1", "--max-connections-per-ip", "1",
                         "--drain-timeout", "3000"});
}

// A wss:// client that connects from the loopback address `source`. `status` is the answer to
// its upgrade request: 101 when it is a WebSocket, else the HTTP status haproxy passed on.
class wss_client {
 public:
  static net::awaitable<wss_client> connect(ssl::context& tls, std::string_view source,
                                            std::uint16_t port);

  unsigned status() const noexcept { return state_->status; }
  net::awaitable<void> send(const json::object& frame);
  net::awaitable<json::object> receive();
  net::awaitable<void> close();

 private:
  struct state {
    state(const net::any_io_executor& executor, ssl::context& tls) : ws(executor, tls) {}
    websocket::stream<beast::ssl_stream<beast::tcp_stream>> ws;
    beast::flat_buffer buffer;
    unsigned status = 0;
  };
  explicit wss_client(std::unique_ptr<state> s) : state_(std::move(s)) {}
  std::unique_ptr<state> state_;
};

net::awaitable<wss_client> wss_client::connect(ssl::context& tls, std::string_view source,
                                               std::uint16_t port) {
  auto s = std::make_unique<state>(co_await net::this_coro::executor, tls);
  auto& socket = beast::get_lowest_layer(s->ws).socket();
  socket.open(tcp::v4());
  socket.bind({net::ip::make_address(source), 0});
  co_await socket.async_connect({net::ip::address_v4::loopback(), port}, net::use_awaitable);
  auto& tls_layer = s->ws.next_layer();
  tls_layer.set_verify_mode(ssl::verify_peer);
  tls_layer.set_verify_callback(ssl::host_name_verification("localhost"));
  co_await tls_layer.async_handshake(ssl::stream_base::client, net::use_awaitable);
  websocket::response_type response;
  co_await s->ws.async_handshake(response, "localhost", "/ws", use_nothrow);
  s->status = response.result_int();
  wss_client client(std::move(s));
  co_return client;
}

net::awaitable<void> wss_client::send(const json::object& frame) {
  const auto text = json::serialize(frame);
  state_->ws.text(true);
  co_await state_->ws.async_write(net::buffer(text), net::use_awaitable);
}

net::awaitable<json::object> wss_client::receive() {
  co_await state_->ws.async_read(state_->buffer, net::use_awaitable);
  const auto bytes = state_->buffer.cdata();
  const std::string text(static_cast<const char*>(bytes.data()), bytes.size());
  state_->buffer.consume(state_->buffer.size());
  co_return json::parse(text).as_object();
}

// The close handshake, then the TLS and TCP teardown. haproxy may close the TCP connection as soon
// as the close frames have passed, so the teardown's own shutdown can find the socket gone
// (ENOTCONN): that is the end this waits for, not a failure.
net::awaitable<void> wss_client::close() {
  co_await state_->ws.async_close(websocket::close_code::normal, use_nothrow);
}

std::string all_lines(const server_process& process) {
  std::string out;
  for (const auto& line : process.lines())
    out += line + "\n";
  return out;
}

// The first line containing `needle` that `process` logged, before or within `deadline` (its
// lines may come in any order: wait_for_line alone looks only past the last line it returned).
std::optional<std::string> logged(server_process& process, std::string_view needle,
                                  std::chrono::milliseconds deadline) {
  for (const auto& line : process.lines()) {
    if (line.find(needle) != std::string::npos) return line;
  }
  return process.wait_for_line(needle, deadline);
}

json::object admission(std::string_view type, std::string_view room, std::string_view name) {
  return {{"type", type}, {"roomId", room}, {"name", name}};
}

json::object chat(std::string_view text) {
  return {{"type", "message"}, {"text", text}};
}

}  // namespace

TEST_CASE("through haproxy: wss:// chat, routing around a stopped node, the client's address") {
  temp_dir dir;
  make_certificate(dir);
  auto node1 = start_node();
  auto node2 = start_node();
  const auto port1 = node1.port_after("listening on");
  const auto port2 = node2.port_after("listening on");

  const auto front = listen_on_free_port();
  const auto lb = start_haproxy(dir, front, {port1, port2});
  auto& haproxy = *lb;
  // haproxy runs once its health checks reach the nodes: a PROXY v2 LOCAL header, then GET /readyz.
  if (!node1.wait_for_line("127.0.0.1 opened", seconds(10))
      || !node2.wait_for_line("127.0.0.1 opened", seconds(10))) {
    haproxy.wait_exit(seconds(1));
    FAIL("haproxy did not check the nodes; its stderr:\n" << all_lines(haproxy));
  }

  ssl::context tls(ssl::context::tls_client);
  tls.load_verify_file(dir.file("cert.pem"));  // the test's own certificate authority

  // Both nodes up: the TLS and WebSocket handshakes work, and chat works on a node.
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await wss_client::connect(tls, "127.0.0.5", front.port);
    REQUIRE(alice.status() == 101);
    co_await alice.send(admission("create", "1234", "alice"));
    const auto created = co_await alice.receive();
    CHECK(created.at("code") == 200);
    co_await alice.send(chat("hello through haproxy"));
    const auto echo = co_await alice.receive();
    CHECK(echo.at("event") == "message");
    CHECK(echo.at("text") == "hello through haproxy");
    co_await alice.close();
  });

  // node1 stops (SIGTERM: its /readyz turns 503 and its port closes); the health checks take it
  // out of the rotation.
  node1.signal(SIGTERM);
  REQUIRE(node1.wait_exit(seconds(10)) == 0);
  const bool marked_down = haproxy.wait_for_line("node1 is DOWN", seconds(10)).has_value();
  INFO(all_lines(haproxy));
  REQUIRE(marked_down);

  // Every new client lands on node2, which sees each client's own address: the second
  // connection from 127.0.0.2 is over its cap of 1, whatever haproxy's address.
  run_client([&]() -> net::awaitable<void> {
    auto bob = co_await wss_client::connect(tls, "127.0.0.2", front.port);
    REQUIRE(bob.status() == 101);
    auto carol = co_await wss_client::connect(tls, "127.0.0.3", front.port);
    REQUIRE(carol.status() == 101);
    co_await bob.send(admission("create", "4321", "bob"));
    const auto created = co_await bob.receive();
    CHECK(created.at("code") == 200);
    co_await carol.send(admission("join", "4321", "carol"));
    const auto joined = co_await carol.receive();
    CHECK(joined.at("users") == 2);
    const auto carol_arrived = co_await bob.receive();
    CHECK(carol_arrived.at("name") == "carol");
    co_await carol.send(chat("hi bob"));
    const auto heard = co_await bob.receive();
    CHECK(heard.at("text") == "hi bob");

    const auto again = co_await wss_client::connect(tls, "127.0.0.2", front.port);
    CHECK(again.status() == 503);
    auto dave = co_await wss_client::connect(tls, "127.0.0.4", front.port);
    CHECK(dave.status() == 101);
  });
  CHECK(node2.wait_for_line("client 127.0.0.2 (PROXY v2)", seconds(5)));
  CHECK(node2.wait_for_line("client 127.0.0.3 (PROXY v2)", seconds(5)));
}

#ifdef ROOMCAST_REDIS_SERVER
TEST_CASE("through haproxy: three cluster nodes share a room, one stream for every member") {
  temp_dir dir;
  make_certificate(dir);
  redis_process redis;
  std::vector<std::unique_ptr<server_process>> nodes;
  std::vector<std::uint16_t> ports;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(std::make_unique<server_process>(std::vector<std::string>{
        "--port", "0", "--threads", "1", "--proxy-protocol", "on", "--trusted-proxy", "127.0.0.1",
        "--redis", "unix://" + redis.socket_path(), "--node-id", "n" + std::to_string(i + 1),
        "--rate-limit", "0", "--drain-timeout", "3000"}));
    ports.push_back(nodes.back()->port_after("listening on"));
    REQUIRE(logged(*nodes.back(), "ready on", seconds(10)));
  }
  const auto front = listen_on_free_port();
  const auto haproxy = start_haproxy(dir, front, ports);
  for (auto& node : nodes) {
    if (!logged(*node, "127.0.0.1 opened", seconds(10))) {
      haproxy->wait_exit(seconds(1));
      FAIL("haproxy did not check every node; its stderr:\n" << all_lines(*haproxy));
    }
  }

  ssl::context tls(ssl::context::tls_client);
  tls.load_verify_file(dir.file("cert.pem"));
  const std::vector<std::string> sources = {"127.0.0.11", "127.0.0.12", "127.0.0.13"};

  run_client([&]() -> net::awaitable<void> {
    // One after the other, each upgraded before the next connects: leastconn gives each a node
    // that holds no client yet.
    std::vector<wss_client> clients;
    for (const auto& source : sources) {
      auto client = co_await wss_client::connect(tls, source, front.port);
      REQUIRE(client.status() == 101);
      clients.push_back(std::move(client));
    }
    auto& alice = clients[0];
    auto& bob = clients[1];
    auto& carol = clients[2];

    co_await alice.send(admission("create", "7777", "alice"));
    const auto created = co_await alice.receive();
    CHECK(created.at("seq") == 1);
    CHECK(created.at("users") == 1);
    co_await bob.send(admission("join", "7777", "bob"));
    const auto bob_joined = co_await bob.receive();
    CHECK(bob_joined.at("seq") == 2);
    CHECK(bob_joined.at("users") == 2);
    CHECK(bob_joined.at("members").as_array() == json::array{"alice", "bob"});
    const auto bob_at_alice = co_await alice.receive();
    CHECK(bob_at_alice.at("name") == "bob");
    co_await carol.send(admission("join", "7777", "carol"));
    const auto carol_joined = co_await carol.receive();
    CHECK(carol_joined.at("seq") == 3);
    CHECK(carol_joined.at("users") == 3);
    CHECK(carol_joined.at("members").as_array() == json::array{"alice", "bob", "carol"});
    const auto carol_at_alice = co_await alice.receive();
    const auto carol_at_bob = co_await bob.receive();
    CHECK(carol_at_alice == carol_at_bob);
    CHECK(carol_at_alice.at("users") == 3);

    // Three senders on three nodes, all sent before anything is read: every member gets the
    // same stream, gapless from seq 4, with the sender's name and users 3.
    for (int i = 0; i < 3; ++i) {
      for (std::size_t who = 0; who < clients.size(); ++who) {
        co_await clients[who].send(chat(sources[who] + " says " + std::to_string(i)));
      }
    }
    std::vector<std::vector<json::object>> streams(clients.size());
    for (std::size_t who = 0; who < clients.size(); ++who) {
      for (int i = 0; i < 9; ++i) {
        auto frame = co_await clients[who].receive();
        streams[who].push_back(std::move(frame));
      }
    }
    CHECK(streams[0] == streams[1]);
    CHECK(streams[0] == streams[2]);
    const std::vector<std::string> names = {"alice", "bob", "carol"};
    std::vector<int> heard(clients.size(), 0);
    for (std::size_t i = 0; i < streams[0].size(); ++i) {
      const auto& frame = streams[0][i];
      INFO(json::serialize(frame));
      CHECK(frame.at("event") == "message");
      CHECK(frame.at("seq") == static_cast<std::int64_t>(4 + i));
      CHECK(frame.at("users") == 3);
      const std::string_view name = frame.at("name").as_string();
      const auto sender =
          static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
      REQUIRE(sender < names.size());
      // Each sender's own messages come in the order it sent them.
      const std::string_view text = frame.at("text").as_string();
      const auto expected = sources[sender] + " says " + std::to_string(heard[sender]++);
      CHECK(text == expected);
    }

    // carol leaves: the others see it with the right users.
    const json::object leave = {{"type", "leave"}};
    co_await carol.send(leave);
    const auto carol_left = co_await carol.receive();
    CHECK(carol_left.at("event") == "leave");
    CHECK(carol_left.at("seq") == 13);
    CHECK(carol_left.at("users") == 2);
    const auto left_at_alice = co_await alice.receive();
    const auto left_at_bob = co_await bob.receive();
    CHECK(left_at_alice == carol_left);
    CHECK(left_at_bob == carol_left);
  });

  // Each node holds one of the three clients: it saw that client's own address in its PROXY
  // header (haproxy balanced them over all three).
  std::vector<std::string> seen;
  for (auto& node : nodes) {
    const auto line = logged(*node, "(PROXY v2)", seconds(5));
    REQUIRE(line);
    for (const auto& source : sources) {
      if (line->find("client " + source + " ") != std::string::npos) seen.push_back(source);
    }
  }
  std::sort(seen.begin(), seen.end());
  CHECK(seen == sources);
}
#endif
