#include "redis_proxy.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <fcntl.h>
#include <future>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "roomcast/net.hpp"

namespace roomcast::testing {
namespace {

using unix_stream = net::local::stream_protocol;

// What marks a subscriber connection in what the client sends (as RESP spells the command, in any
// case; UNSUBSCRIBE and PSUBSCRIBE contain it too, and only a subscriber sends them).
constexpr std::string_view subscribe_word = "SUBSCRIBE";

bool contains_subscribe(std::string_view bytes) {
  const auto* const found =
      std::search(bytes.begin(), bytes.end(), subscribe_word.begin(), subscribe_word.end(),
                  [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; });
  return found != bytes.end();
}

// Asio opens and accepts sockets without close-on-exec: the processes a test starts later (its
// nodes) would hold the proxy's connections open. (A fork before this runs can still copy one:
// link::close shuts a connection down before closing it.)
void keep_from_children(int fd) {
  const int flags = ::fcntl(fd, F_GETFD);
  if (flags >= 0) ::fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}

// One client connection and the proxy's own connection to Redis for it. Everything here is used on
// the proxy's thread only.
struct link {
  link(tcp::socket accepted, net::io_context& io)
      : client(std::move(accepted)), server(io), gate(io) {
    gate.expires_at(net::steady_timer::time_point::max());
  }

  void close() {
    closed = true;
    error_code ignored;
    // shutdown first: a process forked meanwhile (a node the test started) may hold a copy of a
    // descriptor, and close() alone would then not end the connection for its peer.
    client.shutdown(tcp::socket::shutdown_both, ignored);
    server.shutdown(unix_stream::socket::shutdown_both, ignored);
    client.close(ignored);
    server.close(ignored);
    gate.cancel();  // wakes a frozen pump, which then finds `closed`
  }

  tcp::socket client;
  unix_stream::socket server;
  net::steady_timer gate;  // never expires: the Redis-to-client pump waits on it while frozen
  std::string tail;        // the client's last bytes, for a SUBSCRIBE split over two reads
  bool subscriber = false;
  bool frozen = false;
  bool stalled = false;  // reads nothing from Redis until Redis closes (or the link does)
  bool closed = false;
};

}  // namespace

struct redis_proxy::state {
  state(net::io_context& context, std::string path)
      : io(context),
        acceptor(context, {net::ip::address_v4::loopback(), 0}),
        upstream(std::move(path)) {
    keep_from_children(acceptor.native_handle());
  }

  net::io_context& io;
  tcp::acceptor acceptor;
  const std::string upstream;
  std::vector<std::weak_ptr<link>> links;
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> subscribers{0};

  void close_all() {
    error_code ignored;
    acceptor.close(ignored);
    for (const auto& weak : links) {
      if (const auto open = weak.lock()) open->close();
    }
    links.clear();
  }

  net::awaitable<void> accept(std::shared_ptr<state> self) {
    for (;;) {
      auto [ec, socket] = co_await acceptor.async_accept(use_nothrow);
      if (ec) co_return;  // closed: the proxy is going
      keep_from_children(socket.native_handle());
      connections.fetch_add(1);
      auto opened = std::make_shared<link>(std::move(socket), io);
      std::erase_if(links, [](const std::weak_ptr<link>& weak) { return weak.expired(); });
      links.push_back(opened);
      net::co_spawn(io, serve(self, std::move(opened)), net::detached);
    }
  }

  net::awaitable<void> serve(std::shared_ptr<state> self, std::shared_ptr<link> to) {
    auto [ec] = co_await to->server.async_connect(unix_stream::endpoint(upstream), use_nothrow);
    if (to->server.is_open()) keep_from_children(to->server.native_handle());
    if (ec || to->closed) {
      to->close();
      co_return;
    }
    net::co_spawn(io, to_redis(self, to), net::detached);
    co_await to_client(std::move(to));
  }

  // Client to Redis: always passes; notes the connection as a subscriber at its first SUBSCRIBE.
  net::awaitable<void> to_redis([[maybe_unused]] std::shared_ptr<state> self,
                                std::shared_ptr<link> to) {
    std::array<char, 4096> buffer{};
    while (!to->closed) {
      auto [ec, size] = co_await to->client.async_read_some(net::buffer(buffer), use_nothrow);
      if (ec) break;
      if (!to->subscriber) {
        to->tail.append(buffer.data(), size);
        if (contains_subscribe(to->tail)) {
          to->subscriber = true;
          subscribers.fetch_add(1);
        } else if (to->tail.size() > subscribe_word.size()) {
          to->tail.erase(0, to->tail.size() - subscribe_word.size());
        }
      }
      auto [write_ec, written] =
          co_await net::async_write(to->server, net::buffer(buffer.data(), size), use_nothrow);
      if (write_ec) break;
    }
    to->close();
  }

  // Redis to client: passes, except while frozen, when what was read stays here (and the rest in
  // the sockets' buffers) and the connection stays open; and while stalled, when nothing more is
  // read from Redis until it closes its end (a hang-up, seen without reading) or the link closes.
  static net::awaitable<void> to_client(std::shared_ptr<link> to) {
    std::array<char, 4096> buffer{};
    while (!to->closed) {
      if (to->stalled) {
        co_await to->server.async_wait(unix_stream::socket::wait_error, use_nothrow);
        // Whatever ended the wait, reading again tells the truth: what Redis sent before it
        // closed is passed on, then the end of the stream closes the link.
        to->stalled = false;
        continue;
      }
      auto [ec, size] = co_await to->server.async_read_some(net::buffer(buffer), use_nothrow);
      if (ec) break;
      while (to->frozen && !to->closed) {
        co_await to->gate.async_wait(use_nothrow);
      }
      if (to->closed) break;
      auto [write_ec, written] =
          co_await net::async_write(to->client, net::buffer(buffer.data(), size), use_nothrow);
      if (write_ec) break;
    }
    to->close();
  }
};

redis_proxy::redis_proxy(std::string upstream)
    : state_(std::make_shared<state>(io_, std::move(upstream))),
      port_(state_->acceptor.local_endpoint().port()) {
  net::co_spawn(io_, state_->accept(state_), net::detached);
  thread_ = std::thread([this] { io_.run(); });
}

redis_proxy::~redis_proxy() {
  // Once every socket and the acceptor are closed, each coroutine ends and run() returns.
  try {
    net::post(io_, [self = state_] { self->close_all(); });
  } catch (...) {
    io_.stop();  // std::bad_alloc: the loop ends without closing first
  }
  try {
    thread_.join();
  } catch (...) {
    // std::system_error only for a thread that is not joinable, which this one always is.
  }
}

std::string redis_proxy::url() const {
  return "redis://127.0.0.1:" + std::to_string(port_);
}

std::size_t redis_proxy::freeze_subscribers() {
  std::promise<std::size_t> frozen;
  auto count = frozen.get_future();
  net::post(io_, [self = state_, &frozen] {
    std::size_t n = 0;
    for (const auto& weak : self->links) {
      const auto open = weak.lock();
      if (!open || open->closed || !open->subscriber) continue;
      open->frozen = true;
      ++n;
    }
    frozen.set_value(n);
  });
  return count.get();
}

std::size_t redis_proxy::stall_subscribers() {
  std::promise<std::size_t> stalled;
  auto count = stalled.get_future();
  net::post(io_, [self = state_, &stalled] {
    std::size_t n = 0;
    for (const auto& weak : self->links) {
      const auto open = weak.lock();
      if (!open || open->closed || !open->subscriber) continue;
      open->stalled = true;
      ++n;
    }
    stalled.set_value(n);
  });
  return count.get();
}

std::size_t redis_proxy::connections() const noexcept {
  return state_->connections.load();
}

std::size_t redis_proxy::subscriber_connections() const noexcept {
  return state_->subscribers.load();
}

}  // namespace roomcast::testing
