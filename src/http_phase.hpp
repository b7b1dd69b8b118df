#pragma once
// The HTTP phase of a connection: plain requests until the client asks for the WebSocket
// upgrade, then Beast's upgrade handshake. Private to src/ because it names Beast types.
#include <chrono>
#include <optional>
#include <string>

#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "roomcast/connection_fsm.hpp"
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

/** Answers plain HTTP requests (keep-alive) while `lifecycle` is in the http state, until the
 * client asks for the upgrade on the chat endpoint (returned), closes, or times out. */
net::awaitable<std::optional<upgrade_request>> serve_http(http_stream& stream,
                                                          const session_context& context,
                                                          bool over_capacity,
                                                          const connection_fsm& lifecycle);

/** Beast validates the upgrade request and writes the 101 (or the refusal). */
net::awaitable<error_code> accept_upgrade(http_stream& stream, const upgrade_request& upgrade,
                                          std::chrono::milliseconds timeout);

}  // namespace roomcast
