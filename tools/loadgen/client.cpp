// The only translation unit with Beast: the WebSocket client and its few operations.
#include "client.hpp"

#include <algorithm>
#include <netinet/in.h>

#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "system.hpp"
#include "wire.hpp"

namespace roomcast::loadgen {

namespace beast = boost::beast;
namespace websocket = beast::websocket;

struct client {
  explicit client(const net::any_io_executor& executor) : ws(executor) {
    // Client frames are masked: a fast mask generator will do for a load generator, and a write
    // buffer just above the largest frame it sends keeps idle connections small.
    ws.secure_prng(false);
    ws.auto_fragment(false);
    ws.write_buffer_bytes(512);
    ws.read_message_max(1 << 20);
    websocket::stream_base::timeout limits{};
    // Deadlines are the step guards' and the scenarios' job; Beast's own would arm a timer per
    // operation.
    limits.handshake_timeout = websocket::stream_base::none();
    limits.idle_timeout = websocket::stream_base::none();
    limits.keep_alive_pings = false;
    ws.set_option(limits);
  }
  websocket::stream<tcp::socket> ws;
  beast::flat_buffer buffer;
};

void client_deleter::operator()(client* c) const noexcept {
  delete c;
}

client_ptr make_client(const net::any_io_executor& executor) {
  return client_ptr(new client(executor));
}

tcp::socket& socket_of(client& c) noexcept {
  return c.ws.next_layer();
}

source_pool::source_pool(int count, std::size_t connections) {
  if (count > 0) {
    count_ = count;
  } else {
    // connect() searches the port range for a free one: the search gets slow long before the
    // range is full (19k connections from one address take 3 times as long as from four).
    const auto per_address = static_cast<std::size_t>(ephemeral_port_count()) / 8;
    count_ = static_cast<int>(std::clamp<std::size_t>(
        (connections + per_address - 1) / std::max<std::size_t>(per_address, 1), 1, 254));
  }
}

net::ip::address_v4 source_pool::pick(std::size_t n) const noexcept {
  const auto host = static_cast<std::uint32_t>(1 + n % static_cast<std::size_t>(count_));
  return net::ip::address_v4((127U << 24) | host);
}

bool source_pool::widen() noexcept {
  if (count_ >= 254) return false;
  ++count_;
  return true;
}

net::awaitable<error_code> open_websocket(client& c, const target& to, net::ip::address_v4 source) {
  auto& socket = c.ws.next_layer();
  error_code ec;
  socket.open(tcp::v4(), ec);
  if (ec) co_return ec;
  // Leave the port choice to connect(), which may reuse a port towards another destination
  // (bind() alone would reserve it for good).
  const int on = 1;
  ::setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &on, sizeof on);
  socket.bind(tcp::endpoint(source, 0), ec);
  if (ec) co_return ec;
  auto [connected] = co_await socket.async_connect(to.server, use_nothrow);
  if (connected) co_return connected;
  socket.set_option(tcp::no_delay(true), ec);
  auto [upgraded] = co_await c.ws.async_handshake(to.host, "/", use_nothrow);
  co_return upgraded;
}

net::awaitable<std::tuple<error_code, std::string_view>> read_frame(client& c) {
  c.buffer.clear();
  auto [ec, size] = co_await c.ws.async_read(c.buffer, use_nothrow);
  const auto bytes = c.buffer.cdata();
  co_return std::tuple<error_code, std::string_view>(
      ec, std::string_view(static_cast<const char*>(bytes.data()), bytes.size()));
}

net::awaitable<error_code> write_frame(client& c, std::string_view frame) {
  auto [ec, size] = co_await c.ws.async_write(net::buffer(frame.data(), frame.size()), use_nothrow);
  co_return ec;
}

net::awaitable<room_answer> ask(client& c, std::string_view request, std::string_view name_key) {
  room_answer result;
  auto [written, size] =
      co_await c.ws.async_write(net::buffer(request.data(), request.size()), use_nothrow);
  if (written) {
    result.ec = written;
    co_return result;
  }
  for (;;) {
    c.buffer.clear();
    auto [ec, n] = co_await c.ws.async_read(c.buffer, use_nothrow);
    if (ec) {
      result.ec = ec;
      co_return result;
    }
    const auto bytes = c.buffer.cdata();
    const std::string_view frame(static_cast<const char*>(bytes.data()), bytes.size());
    const auto verdict = classify_answer(frame, name_key);
    if (verdict == answer::none) continue;
    result.accepted = verdict == answer::accepted;
    if (!result.accepted) result.detail = std::string(frame.substr(0, 300));
    co_return result;
  }
}

net::awaitable<error_code> close_websocket(client& c) {
  auto [ec] = co_await c.ws.async_close(websocket::close_code::normal, use_nothrow);
  co_return ec;
}

void drop(client& c) noexcept {
  error_code ignored;
  c.ws.next_layer().close(ignored);
}

std::string explain(const error_code& ec) {
  std::string text = ec.message();
  if (ec == websocket::error::upgrade_declined) {
    text += " (roomcast answers 503 beyond --max-connections or --max-connections-per-ip)";
  }
  return text;
}

std::string describe_end(client& c, const error_code& ec) {
  std::string text = ec.message();
  if (ec == websocket::error::closed) {
    const auto& reason = c.ws.reason();
    text += " (close code " + std::to_string(reason.code);
    if (!reason.reason.empty()) text += ", \"" + std::string(reason.reason.c_str()) + "\"";
    text += ")";
  }
  return text;
}

struct step_guard::expiry {
  step_guard* guard;
  tcp::socket* socket;
  std::uint64_t generation;
  void operator()(const error_code& ec) const {
    // A cancelled wait, or one that expired just as its step ended: nothing to do.
    if (ec || generation != guard->generation_) return;
    guard->fired_ = true;
    error_code ignored;
    socket->close(ignored);
  }
};

void step_guard::arm(tcp::socket& socket, steady::duration limit) {
  fired_ = false;
  timer_.expires_after(limit);
  timer_.async_wait(expiry{this, &socket, ++generation_});
}

void step_guard::disarm() noexcept {
  ++generation_;
  timer_.cancel();
}

net::awaitable<bool> wait_group::wait_until(steady::time_point deadline) {
  if (active_ == 0) co_return true;
  timer_.expires_at(deadline);
  co_await timer_.async_wait(use_nothrow);
  co_return active_ == 0;
}

void tracked_end::operator()(const std::exception_ptr& escaped) const {
  if (escaped && failure->empty()) {
    try {
      std::rethrow_exception(escaped);
    } catch (const std::exception& e) {
      *failure = std::string("internal error: ") + e.what();
    } catch (...) {
      *failure = "internal error";
    }
  }
  group->done();
}

net::awaitable<void> sleep_until(steady::time_point when) {
  net::steady_timer timer(co_await net::this_coro::executor);
  timer.expires_at(when);
  co_await timer.async_wait(use_nothrow);
}

}  // namespace roomcast::loadgen
