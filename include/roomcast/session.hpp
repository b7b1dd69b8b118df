#pragma once
/** @file
 * One client connection, from its first HTTP byte to its close: plain HTTP requests are answered
 * by the router, an upgrade on the chat endpoint becomes a WebSocket session whose read bursts
 * turn frames into hub commands, and whose outbox (outbox.hpp) takes every frame to the client.
 */
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "roomcast/net.hpp"

namespace roomcast {

class hub;
class http_router;
struct server_metrics;

struct session_options {
  std::size_t max_text = 100;
  std::size_t max_frame = 16 * 1024;
  std::size_t max_header = 8 * 1024;
  std::size_t outbox_frames = 256;
  int send_buffer = 0;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds close_timeout{5'000};
  double rate_limit = 10;  ///< frames per second (0: unlimited)
  double rate_burst = 20;
  unsigned flood_limit = 50;                 ///< refused frames before close 1008
  std::vector<std::string> allowed_origins;  ///< empty: any
};

/** What every connection shares; outlives all of them. */
struct session_context {
  hub& rooms;
  const http_router& router;
  session_options options;
  server_metrics& metrics;
  bool websocket = true;  ///< false on the admin port: plain HTTP only
};

class connection;

/** A connection's strand, and its socket, with the concrete executor type: no type-erased
 * executor is copied into each of its operations, which saves memory per connection. */
using connection_strand = net::strand<net::io_context::executor_type>;
using connection_socket = net::basic_stream_socket<tcp, connection_strand>;

/** Wraps an accepted socket, whose executor must be a strand of its own. A connection made
 * `over_capacity` answers its first request with HTTP 503 and closes. `label` names it in logs.
 * `on_destroyed` runs when the connection is gone (from whichever thread let go of it last). */
std::shared_ptr<connection> make_connection(connection_socket socket,
                                            const session_context& context,
                                            bool over_capacity = false, std::string label = {},
                                            std::function<void()> on_destroyed = {});

/** Serves the connection's HTTP requests. After an upgrade it returns, and the WebSocket session
 * goes on by itself (a read burst on the connection's strand whenever the socket is readable)
 * until it closes; `on_destroyed` tells when it is over. */
net::awaitable<void> serve(std::shared_ptr<connection> client);

/** Asks the connection to end (server shutdown): queued frames are flushed, then the client gets
 * close 1001 "going away"; a client that does not take them is cut off after the close timeout.
 * Thread-safe. */
void shut_down(const std::shared_ptr<connection>& client);

}  // namespace roomcast
