#include "raw_client.hpp"

#include <array>
#include <stdexcept>

#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

#include "test_client.hpp"

namespace roomcast::testing {

int raw_frame::close_code() const {
  if (payload.size() < 2) return 0;
  return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
}

std::string encode_frame(int opcode, std::string_view payload, bool fin, bool masked) {
  std::string frame;
  frame += static_cast<char>((fin ? 0x80 : 0x00) | (opcode & 0x0F));
  const char mask_bit = masked ? static_cast<char>(0x80) : 0;
  if (payload.size() < 126) {
    frame += static_cast<char>(mask_bit | static_cast<char>(payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    frame += static_cast<char>(mask_bit | 126);
    frame += static_cast<char>(payload.size() >> 8);
    frame += static_cast<char>(payload.size() & 0xFF);
  } else {
    frame += static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) {
      frame += static_cast<char>((payload.size() >> shift) & 0xFF);
    }
  }
  const char key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) frame.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    frame += masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
  }
  return frame;
}

struct raw_client::impl {
  explicit impl(tcp::socket s) : socket(std::move(s)) {}
  tcp::socket socket;
  std::string buffer;  // bytes read but not yet parsed

  net::awaitable<bool> fill(std::size_t wanted) {
    while (buffer.size() < wanted) {
      char chunk[4096];
      auto [ec, n] = co_await socket.async_read_some(net::buffer(chunk), use_nothrow);
      if (ec) co_return false;
      buffer.append(chunk, n);
    }
    co_return true;
  }
};

raw_client::raw_client(std::unique_ptr<impl> state) : impl_(std::move(state)) {}
raw_client::raw_client(raw_client&&) noexcept = default;
raw_client& raw_client::operator=(raw_client&&) noexcept = default;
raw_client::~raw_client() = default;

net::awaitable<raw_client> raw_client::connect(std::uint16_t port, std::string early_bytes) {
  tcp::socket socket(co_await net::this_coro::executor);
  co_await socket.async_connect({net::ip::address_v4::loopback(), port}, net::use_awaitable);
  const auto request = upgrade_request("/ws") + early_bytes;
  co_await net::async_write(socket, net::buffer(request), net::use_awaitable);
  auto state = std::make_unique<impl>(std::move(socket));
  const auto head_size = co_await net::async_read_until(
      state->socket, net::dynamic_buffer(state->buffer), "\r\n\r\n", net::use_awaitable);
  if (state->buffer.rfind("HTTP/1.1 101", 0) != 0) {
    throw std::runtime_error("upgrade refused: " + state->buffer.substr(0, head_size));
  }
  state->buffer.erase(0, head_size);
  raw_client client(std::move(state));
  co_return client;
}

net::awaitable<void> raw_client::send(std::string bytes) {
  co_await net::async_write(impl_->socket, net::buffer(bytes), net::use_awaitable);
}

net::awaitable<void> raw_client::send_ignoring_errors(std::string bytes) {
  co_await net::async_write(impl_->socket, net::buffer(bytes), use_nothrow);
}

net::awaitable<raw_frame> raw_client::read_frame() {
  raw_frame frame;
  if (!co_await impl_->fill(2)) co_return frame;
  const auto byte0 = static_cast<unsigned char>(impl_->buffer[0]);
  const auto byte1 = static_cast<unsigned char>(impl_->buffer[1]);
  std::size_t header = 2;
  std::size_t length = byte1 & 0x7F;
  if (length == 126 || length == 127) {
    const std::size_t extra = length == 126 ? 2 : 8;
    if (!co_await impl_->fill(2 + extra)) co_return frame;
    length = 0;
    for (std::size_t i = 0; i < extra; ++i) {
      length = (length << 8) | static_cast<unsigned char>(impl_->buffer[2 + i]);
    }
    header += extra;
  }
  if (!co_await impl_->fill(header + length)) co_return frame;
  frame.opcode = byte0 & 0x0F;
  frame.fin = (byte0 & 0x80) != 0;
  frame.payload = impl_->buffer.substr(header, length);
  impl_->buffer.erase(0, header + length);
  co_return frame;
}

net::awaitable<std::size_t> raw_client::discard_some() {
  if (!impl_->buffer.empty()) {
    const auto size = impl_->buffer.size();
    impl_->buffer.clear();
    co_return size;
  }
  std::array<char, 64 * 1024> chunk;
  auto [ec, size] = co_await impl_->socket.async_read_some(net::buffer(chunk), use_nothrow);
  co_return ec ? 0 : size;
}

net::awaitable<raw_frame> raw_client::read_until_close() {
  for (;;) {
    auto frame = co_await read_frame();
    if (frame.opcode == -1 || frame.opcode == 0x8) co_return frame;
  }
}

void raw_client::shutdown_send() {
  error_code ignored;
  impl_->socket.shutdown(tcp::socket::shutdown_send, ignored);
}

}  // namespace roomcast::testing
