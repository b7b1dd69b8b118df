#pragma once
// A WebSocket client for the integration tests, written as coroutines like the server. Beast
// stays in test_client.cpp, so the test files compile quickly.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "roomcast/net.hpp"

namespace roomcast::testing {

/** How a connection ended, seen from the client. */
struct ending {
  int close_code = 0;  ///< the server's close code, 0 when the TCP connection just ended
  std::string reason;
  std::size_t frames_before = 0;            ///< frames read while waiting for the end
  std::vector<boost::json::object> frames;  ///< those frames, when asked to keep them
};

class test_client {
 public:
  struct options {
    const char* target = "/ws";
    int receive_buffer = 0;  ///< SO_RCVBUF, to make a stalled reader stall quickly
  };

  // `options` is trivially destructible on purpose: g++ 12 destroyed a std::string member of a
  // by-value coroutine parameter twice when the argument was a braced temporary.
  static net::awaitable<test_client> connect(std::uint16_t port, options opts);
  static net::awaitable<test_client> connect(std::uint16_t port) {
    return connect(port, options{});
  }

  test_client(test_client&&) noexcept;
  test_client& operator=(test_client&&) noexcept;
  ~test_client();

  net::awaitable<void> send(std::string_view text);
  net::awaitable<void> send_binary(std::string_view bytes);
  /** The next frame, parsed; the test fails if it is not a JSON object or the connection ends. */
  net::awaitable<boost::json::object> receive();
  /** Reads (and counts) frames until the connection ends. */
  net::awaitable<ending> receive_ending(bool keep_frames = false);
  /** Sends a close frame and waits for the server's. */
  net::awaitable<void> close();

  // Protocol shorthands. Each returns the first frame received after sending.
  net::awaitable<boost::json::object> create(std::string_view room, std::string_view name);
  net::awaitable<boost::json::object> join(std::string_view room, std::string_view name);
  net::awaitable<void> say(std::string_view text);

 private:
  struct impl;
  explicit test_client(std::unique_ptr<impl> state);
  std::unique_ptr<impl> impl_;
};

/** A create or join frame (`type`), as roomcast's page sends it. */
std::string admission_frame(std::string_view type, std::string_view room, std::string_view name);
/** The same, asking for the room's history and a resume token, as roomcast's page does. */
std::string admission_with_resume(std::string_view type, std::string_view room,
                                  std::string_view name);
/** A resume frame: the seat `token` names, and the events after `since` (in `room`, if given). */
std::string resume_frame(std::string_view token, std::int64_t since,
                         std::optional<std::string_view> room = std::nullopt);
/** The `token` of a create/join or resume reply. */
std::string token_of(const boost::json::object& frame);

/** Sends one raw HTTP/1.1 request and returns the whole response (the server closes). */
net::awaitable<std::string> http_exchange(std::uint16_t port, std::string request);

/** Sends one raw HTTP/1.1 request and returns the response's head (status line and headers). */
net::awaitable<std::string> http_head(std::uint16_t port, std::string request);

/** A WebSocket upgrade request for `target`, with an Origin header unless `origin` is empty. */
std::string upgrade_request(std::string_view target, std::string_view origin = {});

/** Runs every coroutine concurrently on the current executor; rethrows the first failure. */
net::awaitable<void> all_of(std::vector<net::awaitable<void>> tasks);

}  // namespace roomcast::testing
