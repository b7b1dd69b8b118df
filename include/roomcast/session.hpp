#pragma once
/** @file
 * One client connection, from its first HTTP byte to its close. Plain HTTP requests are answered
 * by the router; an upgrade on the chat endpoint turns the connection into a WebSocket session
 * whose read loop turns frames into hub commands and whose outbox (outbox.hpp) takes every frame
 * to the client. Its lifecycle is connection_fsm (connection_fsm.hpp); src/session.cpp is the
 * socket glue around it.
 */
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include "roomcast/config.hpp"
#include "roomcast/net.hpp"

namespace roomcast {

class hub;
class cluster_node;
class http_router;
struct server_metrics;

/** What every connection shares; outlives all of them. */
struct session_context {
  roomcast::hub& hub;
  const http_router& router;
  const session_options& options;
  server_metrics& metrics;
  bool websocket = true;  ///< false on the admin port: plain HTTP only
  /** Cluster mode (--redis): rooms go through the node instead of the hub. */
  cluster_node* cluster = nullptr;
};

class connection;

/** A connection's strand, and its socket, with the concrete executor type: no type-erased
 * executor is copied into each of its operations, which saves memory per connection. */
using connection_strand = net::strand<net::io_context::executor_type>;
using connection_socket = net::basic_stream_socket<tcp, connection_strand>;

/** Where an accepted connection comes from, as the server saw it at accept. */
struct connection_origin {
  std::string peer;            ///< the socket's peer address
  bool trusted_proxy = false;  ///< the peer is a --trusted-proxy (its PROXY header or
                               ///< X-Forwarded-For names the client)
  bool over_capacity = false;  ///< a connection cap is reached: HTTP 503, then close
  /** Charges the connection's --max-connections-per-ip to `client`, the address a trusted proxy
   * named, instead of the peer's; completes with whether the connection is then over a cap.
   * Empty: nothing is charged. */
  std::function<net::awaitable<bool>(std::string client)> charge_to;
};

/** Wraps an accepted socket, whose executor must be a strand of its own. A connection over
 * capacity answers its first request with HTTP 503 and closes. `label` names it in logs.
 * `on_destroyed` runs when the connection is gone (from whichever thread let go of it last). */
std::shared_ptr<connection> make_connection(connection_socket socket,
                                            const session_context& context,
                                            connection_origin origin = {}, std::string label = {},
                                            std::function<void()> on_destroyed = {});

/** Serves the connection's HTTP requests. After an upgrade it returns, and the WebSocket session
 * goes on by itself (a read turn on the connection's strand whenever the socket is readable)
 * until it closes; `on_destroyed` tells when it is over. */
net::awaitable<void> serve(std::shared_ptr<connection> client);

/** Asks the connection to end (server shutdown), whatever its state: an HTTP connection or one
 * in the middle of its upgrade is closed; a WebSocket gets its queued frames, then close 1001
 * "going away", and is cut off if it does not take them within the close timeout.
 * Thread-safe. */
void shut_down(const std::shared_ptr<connection>& client);

}  // namespace roomcast
