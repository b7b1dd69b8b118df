#pragma once
// The HTTP phase of a connection: plain requests until the client asks for the WebSocket
// upgrade, then Beast's upgrade handshake. Private to src/ because it names Beast types.
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "roomcast/connection_fsm.hpp"
#include "roomcast/proxy.hpp"
#include "roomcast/session.hpp"

namespace roomcast {

/** The connection until the upgrade: the socket with Beast's timeout. */
using http_stream = boost::beast::basic_stream<tcp, connection_strand>;

/** An accepted upgrade request, with any bytes the client sent right behind it (its first
 * frames, which the WebSocket read loop must not lose). */
struct upgrade_request {
  boost::beast::http::request<boost::beast::http::string_body> request;
  std::string early_bytes;
};

/** Who the client is, as far as the connection knows so far. Owned by the connection. */
struct client_identity {
  std::string address;             ///< the socket's peer, until a trusted proxy names the client
  bool via_trusted_proxy = false;  ///< `address` is a --trusted-proxy: its word is believed
  bool over_capacity = false;      ///< a connection cap is reached: requests get 503
  /** Makes `client` the connection's address, for the logs and --max-connections-per-ip (which
   * sets over_capacity). `how` names the source in the log (static text). */
  std::function<net::awaitable<void>(proxy::address client, std::string_view how)> adopt;
};

/** The first bytes of a connection with --proxy-protocol on, and what they were. */
struct proxy_step {
  proxy::header_result header;  ///< need_more: the socket ended or timed out first (`error`)
  error_code error;
};

/** Reads until the first bytes in `buffer` settle whether a PROXY protocol header is there, and
 * the whole header if one is (proxy::parse_header), within the stream's current deadline. A
 * parsed header is removed from `buffer`; every other byte stays there for serve_http. */
net::awaitable<proxy_step> read_proxy_header(http_stream& stream,
                                             boost::beast::flat_buffer& buffer);

/** Answers plain HTTP requests (keep-alive) while `lifecycle` is in the http state, until the
 * client asks for the upgrade on the chat endpoint (returned), closes, or times out. Starts with
 * the bytes already in `buffer`. The first request must be complete by the stream's deadline
 * (set by the caller when the connection was accepted), each further one within
 * --handshake-timeout of the previous response. On a chat upgrade from a trusted proxy, the
 * X-Forwarded-For header names the client (`client.adopt`). */
net::awaitable<std::optional<upgrade_request>> serve_http(http_stream& stream,
                                                          boost::beast::flat_buffer& buffer,
                                                          const session_context& context,
                                                          client_identity& client,
                                                          const connection_fsm& lifecycle);

/** Beast validates the upgrade request and writes the 101 (or the refusal). */
net::awaitable<error_code> accept_upgrade(http_stream& stream, const upgrade_request& upgrade,
                                          std::chrono::milliseconds timeout);

}  // namespace roomcast
