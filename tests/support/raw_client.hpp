#pragma once
// A WebSocket client that writes frames byte by byte, for the inputs a well-behaved client
// library refuses to produce: fragments with control frames between them, bad close codes,
// unmasked frames, floods of tiny frames, half-closed sockets.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "roomcast/net.hpp"

namespace roomcast::testing {

struct raw_frame {
  int opcode = -1;  ///< -1: the connection ended
  bool fin = true;
  std::string payload;
  /** For a close frame: its code (0 when it has none). */
  int close_code() const;
};

/** One client frame, masked as RFC 6455 requires unless `masked` is false. */
std::string encode_frame(int opcode, std::string_view payload, bool fin = true, bool masked = true);

class raw_client {
 public:
  /** Connects and upgrades on `/ws`. `early_bytes` (frames) go out in the same write as the
   * upgrade request, before the server has answered it. */
  static net::awaitable<raw_client> connect(std::uint16_t port, std::string early_bytes = {});

  raw_client(raw_client&&) noexcept;
  raw_client& operator=(raw_client&&) noexcept;
  ~raw_client();

  net::awaitable<void> send(std::string bytes);
  /** Writes `bytes`, ignoring the error a server that closed midway causes. */
  net::awaitable<void> send_ignoring_errors(std::string bytes);
  net::awaitable<raw_frame> read_frame();
  /** Reads what the server sent, whatever it is, and drops it: the bytes read, 0 when the
   * connection ended. For a flooder that must keep reading what it provokes, cheaply. */
  net::awaitable<std::size_t> discard_some();
  /** Reads frames until a close frame or the end of the connection; returns the close frame. */
  net::awaitable<raw_frame> read_until_close();
  /** Half-closes the socket: the server sees end of stream on its reads. */
  void shutdown_send();

 private:
  struct impl;
  explicit raw_client(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

}  // namespace roomcast::testing
