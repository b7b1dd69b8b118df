#pragma once
// The load generator's WebSocket client and the small pieces of Asio plumbing its scenarios
// share. Beast stays in client.cpp: the scenarios see an opaque `client` and a few coroutines.
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

namespace roomcast::loadgen {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;
using steady = std::chrono::steady_clock;

constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

inline std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
      .count();
}

inline steady::duration seconds(double s) {
  return std::chrono::duration_cast<steady::duration>(std::chrono::duration<double>(s));
}

/// The server: its endpoint and the Host header of the upgrade request.
struct target {
  tcp::endpoint server;
  std::string host;
};

/// Source addresses 127.0.0.1 .. 127.0.0.K: one address has only the ephemeral port range
/// (about 28k ports) towards one server port.
class source_pool {
 public:
  /// `count` 0: one address per 1/8 of the ephemeral port range of `connections`.
  source_pool(int count, std::size_t connections);
  net::ip::address_v4 pick(std::size_t n) const noexcept;
  /// One more address after a connect ran out of ports; false at 127.0.0.254.
  bool widen() noexcept;
  int size() const noexcept { return count_; }

 private:
  int count_ = 1;
};

/// A WebSocket client connection (a Beast stream over TCP), defined in client.cpp.
struct client;
struct client_deleter {
  void operator()(client* c) const noexcept;
};
using client_ptr = std::unique_ptr<client, client_deleter>;

client_ptr make_client(const net::any_io_executor& executor);
tcp::socket& socket_of(client& c) noexcept;

/// Binds `source` (port chosen at connect time), connects, sets TCP_NODELAY, upgrades on "/".
net::awaitable<error_code> open_websocket(client& c, const target& to, net::ip::address_v4 source);
/// The next message; the view lives until the next read on `c`.
net::awaitable<std::tuple<error_code, std::string_view>> read_frame(client& c);
net::awaitable<error_code> write_frame(client& c, std::string_view frame);

struct room_answer {
  error_code ec;
  bool accepted = false;
  std::string detail;  // the refusing frame
};
/// Sends create/join/leave and reads until the answer naming this client (frames for others are
/// skipped: the seed server sends everything to everybody).
net::awaitable<room_answer> ask(client& c, std::string_view request, std::string_view name_key);

/// The WebSocket closing handshake, then the TCP teardown.
net::awaitable<error_code> close_websocket(client& c);
/// Closes the TCP connection at once (the bounded end of a run, or a step that overran).
void drop(client& c) noexcept;
/// An error's message, with the likely cause when roomcast's limits explain it (a declined upgrade
/// is roomcast's 503 beyond --max-connections or --max-connections-per-ip).
std::string explain(const error_code& ec);
/// Why a read failed, with the close code and reason the server sent, if any.
std::string describe_end(client& c, const error_code& ec);

/// A deadline for one set-up or churn step: when it expires, the socket is closed, which ends
/// the step's pending operation. One timer per worker, re-armed per step; never per chat frame.
class step_guard {
 public:
  explicit step_guard(const net::any_io_executor& executor) : timer_(executor) {}
  void arm(tcp::socket& socket, steady::duration limit);
  void disarm() noexcept;
  bool fired() const noexcept { return fired_; }

 private:
  struct expiry;
  net::steady_timer timer_;
  std::uint64_t generation_ = 0;
  bool fired_ = false;
};

/// Counts running coroutines; `wait_until` returns when they have all ended (true) or at the
/// deadline (false). Single-threaded.
class wait_group {
 public:
  explicit wait_group(const net::any_io_executor& executor) : timer_(executor) {}
  void add(std::size_t n = 1) noexcept { active_ += n; }
  void done() noexcept {
    if (--active_ == 0) timer_.cancel();
  }
  std::size_t active() const noexcept { return active_; }
  net::awaitable<bool> wait_until(steady::time_point deadline);

 private:
  net::steady_timer timer_;
  std::size_t active_ = 0;
};

/// The completion of a tracked coroutine: keeps the first escaped exception's text, counts down.
struct tracked_end {
  wait_group* group;
  std::string* failure;
  void operator()(const std::exception_ptr& escaped) const;
};

/// Waits until `when` (returns at once when it has passed).
net::awaitable<void> sleep_until(steady::time_point when);

}  // namespace roomcast::loadgen
