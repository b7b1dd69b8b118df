#include "http_phase.hpp"

#include <algorithm>

#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>

#include "roomcast/http.hpp"
#include "roomcast/metrics.hpp"

namespace roomcast {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

std::string_view as_std(beast::string_view text) {
  return {text.data(), text.size()};
}

// Endings that are part of normal life: the peer closed, went away, or we closed it.
bool is_expected_ending(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof
         || ec == net::error::operation_aborted || ec == net::error::connection_reset
         || ec == beast::error::timeout || ec == net::error::broken_pipe;
}

http::response<http::string_body> make_response(const http_reply& reply, unsigned version,
                                                bool keep_alive) {
  http::response<http::string_body> response{static_cast<http::status>(reply.status), version};
  response.set(http::field::server, "roomcast");
  response.set(http::field::content_type, reply.content_type);
  response.set(http::field::cache_control, reply.cache_control);
  response.set("X-Content-Type-Options", "nosniff");
  if (!reply.etag.empty()) response.set(http::field::etag, reply.etag);
  if (!reply.allow.empty()) response.set(http::field::allow, reply.allow);
  response.keep_alive(keep_alive);
  if (reply.head_content_length) {
    response.content_length(*reply.head_content_length);  // HEAD: the headers of the GET
  } else {
    response.body() = reply.body;
    response.prepare_payload();
  }
  return response;
}

// Without an allow-list any page may connect (like the seed). A request without an Origin
// header does not come from a browser page, so it cannot be a cross-site hijack.
bool origin_allowed(const session_options& options, std::string_view origin) {
  const auto& allowed = options.allowed_origins;
  return allowed.empty() || origin.empty()
         || std::find(allowed.begin(), allowed.end(), origin) != allowed.end();
}

// The reply to a request that is not served: a refused upgrade, or a request for the router.
http_reply answer(const session_context& context, const http::request<http::string_body>& request,
                  bool over_capacity, bool upgrade, bool chat) {
  http_reply reply;
  if (over_capacity) {
    context.metrics.capacity_refusals.fetch_add(1, std::memory_order_relaxed);
    reply.status = 503;
    reply.body = "server at capacity, try again later\n";
  } else if (chat) {
    reply.status = 403;
    reply.body = "origin not allowed\n";
  } else if (upgrade) {
    reply.status = 404;
    reply.body = "no WebSocket endpoint here; use / or /ws\n";
  } else {
    reply = context.router.route({.method = as_std(request.method_string()),
                                  .target = as_std(request.target()),
                                  .if_none_match = as_std(request[http::field::if_none_match])});
  }
  return reply;
}

// The client an upgrade request's X-Forwarded-For headers name (proxy::forwarded_client), their
// values joined with commas as HTTP says repeated headers are.
std::optional<proxy::address> forwarded_for(const http::request<http::string_body>& request,
                                            const proxy::trusted_proxies& trusted) {
  std::string chain;
  const auto [first, last] = request.equal_range("X-Forwarded-For");
  for (auto field = first; field != last; ++field) {
    if (!chain.empty()) chain += ',';
    chain += as_std(field->value());
  }
  return proxy::forwarded_client(chain, trusted);
}

}  // namespace

net::awaitable<proxy_step> read_proxy_header(http_stream& stream, beast::flat_buffer& buffer) {
  proxy_step step;
  for (;;) {
    const auto bytes = buffer.cdata();
    step.header = proxy::parse_header({static_cast<const char*>(bytes.data()), bytes.size()});
    if (step.header.status != proxy::header_status::need_more) break;
    // A header is at most 16 + 4 KiB; reads stop as soon as it is complete or ruled out.
    auto [ec, size] = co_await stream.async_read_some(buffer.prepare(1024), use_nothrow);
    if (ec) {
      step.error = ec;
      co_return step;
    }
    buffer.commit(size);
  }
  if (step.header.status == proxy::header_status::parsed) buffer.consume(step.header.length);
  co_return step;
}

net::awaitable<std::optional<upgrade_request>> serve_http(http_stream& stream,
                                                          beast::flat_buffer& buffer,
                                                          const session_context& context,
                                                          client_identity& client,
                                                          const connection_fsm& lifecycle) {
  const auto& options = context.options;
  while (lifecycle.current() == connection_fsm::state::http) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(options.max_header));
    parser.body_limit(4096);
    // The stream's deadline bounds the whole request: a client that connects and sends nothing,
    // or trickles bytes, is dropped after --handshake-timeout (for the first request, counted
    // from the accept, so a PROXY header and the request share it).
    auto [ec, size] = co_await http::async_read(stream, buffer, parser, use_nothrow);
    if (ec) {
      if (ec != http::error::end_of_stream) {
        context.metrics.handshake_failures.fetch_add(1, std::memory_order_relaxed);
      }
      if (ec == http::error::header_limit || !is_expected_ending(ec)) {
        auto refusal = make_response(
            {.status = ec == http::error::header_limit ? 431U : 400U,
             .body = ec == http::error::header_limit ? "request header fields too large\n"
                                                     : "bad request\n"},
            11, false);
        co_await http::async_write(stream, refusal, use_nothrow);
      }
      co_return std::nullopt;
    }
    auto request = parser.release();
    const bool upgrade = websocket::is_upgrade(request);
    const bool chat = upgrade && context.websocket && is_chat_endpoint(as_std(request.target()));
    if (chat && client.via_trusted_proxy) {
      // Only a trusted proxy's X-Forwarded-For is read; anyone else's is ignored.
      if (const auto named = forwarded_for(request, options.proxy.trusted)) {
        context.metrics.forwarded_for_used.fetch_add(1, std::memory_order_relaxed);
        co_await client.adopt(*named, "X-Forwarded-For");
      }
    }
    const bool over_capacity = client.over_capacity;
    if (chat && !over_capacity && origin_allowed(options, as_std(request[http::field::origin]))) {
      const auto early = buffer.cdata();
      co_return upgrade_request{std::move(request),
                                std::string(static_cast<const char*>(early.data()), early.size())};
    }
    // A refused upgrade ends the connection: the client expected a WebSocket, not more HTTP.
    const bool keep_alive = request.keep_alive() && !upgrade && !over_capacity
                            && lifecycle.current() == connection_fsm::state::http;
    auto response = make_response(answer(context, request, over_capacity, upgrade, chat),
                                  request.version(), keep_alive);
    auto [write_ec, written] = co_await http::async_write(stream, response, use_nothrow);
    if (write_ec || !keep_alive) break;
    stream.expires_after(options.handshake_timeout);  // for the next request
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  co_return std::nullopt;
}

net::awaitable<error_code> accept_upgrade(http_stream& stream, const upgrade_request& upgrade,
                                          std::chrono::milliseconds timeout) {
  // Over a reference: the stream stays the connection's, so a shutdown during the handshake can
  // close it, and the bare socket is released from it afterwards.
  websocket::stream<http_stream&> handshake(stream);
  handshake.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& response) { response.set(http::field::server, "roomcast"); }));
  stream.expires_after(timeout);
  auto [ec] = co_await handshake.async_accept(upgrade.request, use_nothrow);
  co_return ec;
}

}  // namespace roomcast
