#include "test_client.hpp"

#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace roomcast::testing {
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;

struct test_client::impl {
  explicit impl(tcp::socket socket) : ws(std::move(socket)) {}
  websocket::stream<tcp::socket> ws;
  beast::flat_buffer buffer;
};

test_client::test_client(std::unique_ptr<impl> state) : impl_(std::move(state)) {}
test_client::test_client(test_client&&) noexcept = default;
test_client& test_client::operator=(test_client&&) noexcept = default;
test_client::~test_client() = default;

net::awaitable<test_client> test_client::connect(std::uint16_t port, options opts) {
  tcp::socket socket(co_await net::this_coro::executor);
  socket.open(tcp::v4());
  if (opts.receive_buffer > 0) {
    socket.set_option(net::socket_base::receive_buffer_size(opts.receive_buffer));
  }
  co_await socket.async_connect({net::ip::address_v4::loopback(), port}, net::use_awaitable);
  auto state = std::make_unique<impl>(std::move(socket));
  state->ws.read_message_max(1 << 20);
  co_await state->ws.async_handshake("127.0.0.1", opts.target, net::use_awaitable);
  test_client client(std::move(state));
  co_return client;
}

net::awaitable<void> test_client::send(std::string_view text) {
  impl_->ws.text(true);
  co_await impl_->ws.async_write(net::buffer(text), net::use_awaitable);
}

net::awaitable<void> test_client::send_binary(std::string_view bytes) {
  impl_->ws.binary(true);
  co_await impl_->ws.async_write(net::buffer(bytes), net::use_awaitable);
}

net::awaitable<json::object> test_client::receive() {
  auto [ec, size] = co_await impl_->ws.async_read(impl_->buffer, use_nothrow);
  if (ec) throw std::runtime_error("connection ended while a frame was expected: " + ec.message());
  const auto bytes = impl_->buffer.cdata();
  const std::string text(static_cast<const char*>(bytes.data()), bytes.size());
  impl_->buffer.consume(impl_->buffer.size());
  json::value parsed = json::parse(text);
  if (!parsed.is_object()) throw std::runtime_error("frame is not a JSON object: " + text);
  co_return std::move(parsed.as_object());
}

net::awaitable<ending> test_client::receive_ending(bool keep_frames) {
  ending result;
  for (;;) {
    auto [ec, size] = co_await impl_->ws.async_read(impl_->buffer, use_nothrow);
    if (!ec && keep_frames)
      result.frames.push_back(
          json::parse(beast::buffers_to_string(impl_->buffer.data())).as_object());
    impl_->buffer.consume(impl_->buffer.size());
    if (ec) break;
    ++result.frames_before;
  }
  const auto& reason = impl_->ws.reason();
  result.close_code = reason.code;
  result.reason = std::string(reason.reason.data(), reason.reason.size());
  co_return result;
}

net::awaitable<void> test_client::close() {
  co_await impl_->ws.async_close(websocket::close_code::normal, net::use_awaitable);
}

std::string admission_frame(std::string_view type, std::string_view room, std::string_view name) {
  json::object frame;
  frame["type"] = type;
  frame["roomId"] = room;
  frame["name"] = name;
  return json::serialize(frame);
}

std::string admission_with_resume(std::string_view type, std::string_view room,
                                  std::string_view name) {
  json::object frame;
  frame["type"] = type;
  frame["roomId"] = room;
  frame["name"] = name;
  frame["history"] = true;
  frame["resume"] = true;
  return json::serialize(frame);
}

std::string resume_frame(std::string_view token, std::int64_t since,
                         std::optional<std::string_view> room) {
  json::object frame{{"type", "resume"}, {"token", token}, {"since", since}};
  if (room) frame["roomId"] = *room;
  return json::serialize(frame);
}

std::string token_of(const json::object& frame) {
  return std::string(frame.at("token").as_string());
}

net::awaitable<json::object> test_client::create(std::string_view room, std::string_view name) {
  co_await send(admission_frame("create", room, name));
  co_return co_await receive();
}

net::awaitable<json::object> test_client::join(std::string_view room, std::string_view name) {
  co_await send(admission_frame("join", room, name));
  co_return co_await receive();
}

net::awaitable<void> test_client::say(std::string_view text) {
  json::object frame;
  frame["type"] = "message";
  frame["text"] = text;
  co_await send(json::serialize(frame));
}

net::awaitable<std::string> http_exchange(std::uint16_t port, std::string request) {
  tcp::socket socket(co_await net::this_coro::executor);
  co_await socket.async_connect({net::ip::address_v4::loopback(), port}, net::use_awaitable);
  co_await net::async_write(socket, net::buffer(request), net::use_awaitable);
  std::string response;
  // Reads until the server closes; the error (eof) is how the response ends.
  co_await net::async_read(socket, net::dynamic_buffer(response), use_nothrow);
  co_return response;
}

net::awaitable<std::string> http_head(std::uint16_t port, std::string request) {
  tcp::socket socket(co_await net::this_coro::executor);
  co_await socket.async_connect({net::ip::address_v4::loopback(), port}, net::use_awaitable);
  co_await net::async_write(socket, net::buffer(request), net::use_awaitable);
  std::string response;
  const auto [ec, size] = co_await net::async_read_until(socket, net::dynamic_buffer(response),
                                                         "\r\n\r\n", use_nothrow);
  co_return response.substr(0, ec ? response.size() : size);
}

std::string upgrade_request(std::string_view target, std::string_view origin) {
  std::string request = "GET " + std::string(target) +
                        " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
                        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
  if (!origin.empty()) request += "Origin: " + std::string(origin) + "\r\n";
  return request + "\r\n";
}

net::awaitable<void> all_of(std::vector<net::awaitable<void>> tasks) {
  auto executor = co_await net::this_coro::executor;
  struct shared_state {
    explicit shared_state(net::any_io_executor ex, std::size_t n) : done(ex), remaining(n) {}
    net::steady_timer done;
    std::size_t remaining;
    std::exception_ptr failure;
  };
  auto state = std::make_shared<shared_state>(executor, tasks.size());
  state->done.expires_at(net::steady_timer::time_point::max());
  for (auto& task : tasks) {
    auto finished = [state](std::exception_ptr error) {
      if (error && !state->failure) state->failure = error;
      if (--state->remaining == 0) state->done.cancel();
    };
    net::co_spawn(executor, std::move(task), finished);
  }
  if (state->remaining > 0) co_await state->done.async_wait(use_nothrow);
  if (state->failure) std::rethrow_exception(state->failure);
}

}  // namespace roomcast::testing
