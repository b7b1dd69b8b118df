#include "roomcast/session.hpp"

#include <algorithm>
#include <optional>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "roomcast/http.hpp"
#include "roomcast/hub.hpp"
#include "roomcast/log.hpp"
#include "roomcast/member.hpp"
#include "roomcast/metrics.hpp"
#include "roomcast/protocol.hpp"
#include "roomcast/rate_limit.hpp"

namespace roomcast {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

using ws_stream = websocket::stream<beast::tcp_stream>;
using outbox_channel = net::experimental::concurrent_channel<void(error_code, shared_frame)>;

std::string_view as_std(beast::string_view text) {
  return {text.data(), text.size()};
}

// Endings that are part of normal life: the peer closed, went away, or we closed it.
bool is_expected_ending(const error_code& ec) {
  return ec == websocket::error::closed || ec == net::error::eof
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

}  // namespace

// A note on calling coroutines: g++ 12 mishandles a coroutine argument of non-trivial type that
// is a temporary inside a co_await expression (its copy in the coroutine frame can alias the
// dead temporary). Every such argument here is a named local passed with std::move.
//
// A client connection. It starts as an HTTP connection; an upgrade on the chat endpoint turns it
// into a WebSocket session made of a read loop (serve) and a write loop (a second coroutine on
// the same strand) sharing the stream, joined by the bounded outbox into which the room drops
// frames. Every member belongs to the connection's strand, except outbox_ (a concurrent channel).
class connection final : public member, public std::enable_shared_from_this<connection> {
 public:
  connection(tcp::socket socket, const session_context& context, bool over_capacity,
             std::string label)
      : label_(std::move(label)),
        executor_(socket.get_executor()),
        http_(std::move(socket)),
        outbox_(executor_, context.options.outbox_frames),
        context_(context),
        options_(context.options),
        frames_allowed_(options_.rate_limit, options_.rate_burst),
        refusals_allowed_(1.0, options_.flood_limit),
        over_capacity_(over_capacity) {
    context_.metrics.open_connections.fetch_add(1, std::memory_order_relaxed);
  }

  ~connection() override {
    context_.metrics.open_connections.fetch_sub(1, std::memory_order_relaxed);
  }

  // Called on the hub's strand. The channel is thread-safe; nothing else is touched.
  delivery deliver(const shared_frame& frame) override {
    if (!outbox_.try_send(error_code{}, frame)) {
      return outbox_.is_open() ? delivery::full : delivery::closed;
    }
    note_queued(frame->bytes.size());
    return delivery::queued;
  }

  void evict() override {
    net::post(executor_, [self = shared_from_this()] { self->begin_eviction(); });
  }

  void request_shutdown() {
    net::post(executor_, [self = shared_from_this()] { self->begin_shutdown(); });
  }

  net::awaitable<void> serve() {
    log_info("connection ", label_, " opened");
    if (options_.send_buffer > 0) {
      error_code ignored;
      http_.socket().set_option(net::socket_base::send_buffer_size(options_.send_buffer), ignored);
    }
    error_code ignored;
    http_.socket().set_option(tcp::no_delay(true), ignored);
    auto upgrade = co_await serve_http();
    if (upgrade && !shutting_down_) co_await serve_websocket(std::move(*upgrade));
    stop();
    log_info("connection ", label_, " closed: ", ending_.empty() ? "done" : ending_);
  }

 private:
  using request_type = http::request<http::string_body>;

  // Answers plain HTTP requests (keep-alive) until the client upgrades, closes or times out.
  net::awaitable<std::optional<request_type>> serve_http() {
    beast::flat_buffer buffer;
    while (!shutting_down_) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options_.max_header));
      parser.body_limit(4096);
      // Bounds the whole request: a client that connects and sends nothing, or trickles bytes,
      // is dropped after --handshake-timeout.
      http_.expires_after(options_.handshake_timeout);
      auto [ec, size] = co_await http::async_read(http_, buffer, parser, use_nothrow);
      if (ec) {
        if (ec != http::error::end_of_stream) {
          context_.metrics.handshake_failures.fetch_add(1, std::memory_order_relaxed);
        }
        if (ec == http::error::header_limit) {
          co_await reply_and_close(431, "request header fields too large\n");
        } else if (ec != http::error::end_of_stream && !is_expected_ending(ec)) {
          co_await reply_and_close(400, "bad request\n");
        }
        co_return std::nullopt;
      }
      auto request = parser.release();
      const bool upgrade = websocket::is_upgrade(request);
      const bool chat = upgrade && context_.websocket && is_chat_endpoint(as_std(request.target()));
      const bool origin_ok = origin_allowed(as_std(request[http::field::origin]));
      if (chat && origin_ok && !over_capacity_) co_return std::move(request);
      http_reply reply;
      if (over_capacity_) {
        context_.metrics.capacity_refusals.fetch_add(1, std::memory_order_relaxed);
        reply.status = 503;
        reply.body = "server at capacity, try again later\n";
      } else if (chat) {
        reply.status = 403;
        reply.body = "origin not allowed\n";
      } else if (upgrade) {
        reply.status = 404;
        reply.body = "no WebSocket endpoint here; use / or /ws\n";
      } else {
        reply =
            context_.router.route({.method = as_std(request.method_string()),
                                   .target = as_std(request.target()),
                                   .if_none_match = as_std(request[http::field::if_none_match])});
      }
      // A refused upgrade ends the connection: the client expected a WebSocket, not more HTTP.
      const bool keep_alive =
          request.keep_alive() && !upgrade && !over_capacity_ && !shutting_down_;
      auto response = make_response(reply, request.version(), keep_alive);
      auto [write_ec, written] = co_await http::async_write(http_, response, use_nothrow);
      if (write_ec || !keep_alive) break;
    }
    error_code ignored;
    http_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    co_return std::nullopt;
  }

  // Without an allow-list any page may connect (like the seed). A request without an Origin
  // header does not come from a browser page, so it cannot be a cross-site hijack.
  bool origin_allowed(std::string_view origin) const {
    if (options_.allowed_origins.empty() || origin.empty()) return true;
    return std::find(options_.allowed_origins.begin(), options_.allowed_origins.end(), origin)
           != options_.allowed_origins.end();
  }

  // `body` is a string literal: a const char*, not a std::string temporary (see the note above).
  net::awaitable<void> reply_and_close(unsigned status, const char* body) {
    http_reply reply;
    reply.status = status;
    reply.body = body;
    auto response = make_response(reply, 11, false);
    co_await http::async_write(http_, response, use_nothrow);
  }

  net::awaitable<void> serve_websocket(request_type request) {
    ws_.emplace(std::move(http_));
    // From here on Beast's websocket timeouts apply: handshake (which also bounds the close
    // handshake) and idle (a ping after half of it, close when no answer).
    beast::get_lowest_layer(*ws_).expires_never();
    ws_->set_option(websocket::stream_base::timeout{options_.handshake_timeout,
                                                    options_.idle_timeout,
                                                    /*keep_alive_pings=*/true});
    ws_->set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(http::field::server, "roomcast"); }));
    ws_->read_message_max(options_.max_frame);
    ws_->text(true);
    auto [ec] = co_await ws_->async_accept(request, use_nothrow);
    if (ec) {
      context_.metrics.handshake_failures.fetch_add(1, std::memory_order_relaxed);
      ending_ = "websocket handshake failed: " + ec.message();
      co_return;
    }
    log_info("connection ", label_, " upgraded to WebSocket");
    auto self = shared_from_this();
    auto writer = write_loop(std::move(self));
    net::co_spawn(executor_, std::move(writer), log_exception{"connection writer"});
    try {
      co_await read_loop();
    } catch (const std::exception& e) {
      log_error("connection reader failed: ", e.what());
    }
    if (membership_) {
      auto seat = std::move(*membership_);
      membership_.reset();
      co_await context_.rooms.leave(std::move(seat), leave_reason::disconnected);
    }
  }

  net::awaitable<void> read_loop() {
    beast::flat_buffer buffer;
    for (;;) {
      auto [ec, size] = co_await ws_->async_read(buffer, use_nothrow);
      if (ec) {
        // Beast has already sent the close frame a protocol failure calls for: 1009 for a
        // message over --max-frame, 1007 for invalid UTF-8, 1002 for a protocol error.
        if (ending_.empty()) ending_ = ec.message();
        co_return;
      }
      if (!ws_->got_text()) {
        ending_ = "binary frame (close 1003)";
        co_await ws_->async_close(websocket::close_reason(websocket::close_code::unknown_data,
                                                          "binary frames are not supported"),
                                  use_nothrow);
        co_return;
      }
      const auto now = frame::clock::now();
      context_.metrics.frames_received.fetch_add(1, std::memory_order_relaxed);
      context_.metrics.bytes_received.fetch_add(size, std::memory_order_relaxed);
      if (!frames_allowed_.try_take(now)) {
        buffer.consume(buffer.size());
        if (!refusals_allowed_.try_take(now)) {
          context_.metrics.rate_limit_closes.fetch_add(1, std::memory_order_relaxed);
          ending_ = "rate limit exceeded (close 1008)";
          co_await ws_->async_close(
              websocket::close_reason(websocket::close_code::policy_error, "rate limit exceeded"),
              use_nothrow);
          co_return;
        }
        auto frame = refusal_frame(rejection{wire_code::rate_limited});
        co_await enqueue_own(std::move(frame));
        continue;
      }
      const auto bytes = buffer.cdata();
      auto parsed =
          parse_command({static_cast<const char*>(bytes.data()), bytes.size()}, options_.max_text);
      buffer.consume(buffer.size());
      co_await handle(std::move(parsed), now);
    }
  }

  net::awaitable<void> handle(parse_result parsed, frame::clock::time_point arrived) {
    if (const auto* refusal = std::get_if<rejection>(&parsed)) {
      auto frame = refusal_frame(*refusal);
      co_await enqueue_own(std::move(frame));
      co_return;
    }
    auto& cmd = std::get<command>(parsed);
    if (auto* create = std::get_if<create_room>(&cmd)) {
      co_await admit(room_event_kind::create, create->room, std::move(create->name));
    } else if (auto* join = std::get_if<join_room>(&cmd)) {
      co_await admit(room_event_kind::join, join->room, std::move(join->name));
    } else if (auto* chat = std::get_if<say>(&cmd)) {
      if (!membership_) {
        auto frame = refusal_frame(rejection{wire_code::not_in_room});
        co_await enqueue_own(std::move(frame));
      } else {
        co_await context_.rooms.say(*membership_, std::move(chat->text), arrived);
      }
    } else if (!membership_) {  // leave
      auto frame = refusal_frame(rejection{wire_code::not_in_room});
      co_await enqueue_own(std::move(frame));
    } else {
      auto seat = std::move(*membership_);
      membership_.reset();
      co_await context_.rooms.leave(std::move(seat), leave_reason::left);
    }
  }

  net::awaitable<void> admit(room_event_kind kind, room_id room, std::string name) {
    if (membership_) {
      auto frame = refusal_frame(rejection{wire_code::already_in_room});
      co_await enqueue_own(std::move(frame));
      co_return;
    }
    const boost::json::value echoed_name(name);
    auto self = shared_from_this();
    // Not `cond ? co_await a : co_await b`: g++ 12 relocates the result of a co_await inside the
    // conditional operator bitwise, leaving its strings pointing into a freed frame.
    admission result;
    if (kind == room_event_kind::create) {
      result = co_await context_.rooms.create(room, std::move(name), std::move(self));
    } else {
      result = co_await context_.rooms.join(room, std::move(name), std::move(self));
    }
    if (auto* seat = std::get_if<membership>(&result)) {
      membership_ = std::move(*seat);
      co_return;
    }
    // A refused create/join echoes roomId and name: that is how the seed client knows to leave
    // its room screen and show the text.
    auto frame = refusal_frame(rejection{std::get<wire_code>(result), room.to_json(), echoed_name});
    co_await enqueue_own(std::move(frame));
  }

  // Errors go to this client only, through its own outbox so they stay in order with broadcasts.
  shared_frame refusal_frame(const rejection& refusal) const {
    context_.metrics.count_rejection(static_cast<int>(refusal.code));
    const std::size_t users = membership_ ? membership_->users() : 0;
    return make_frame(serialize(refusal, users));
  }

  // Queues a frame of the connection's own (a reply, or the end-of-stream marker), waiting for
  // room when the outbox is full.
  net::awaitable<void> enqueue_own(shared_frame frame) {
    const std::size_t size = frame ? frame->bytes.size() : 0;
    if (!outbox_.try_send(error_code{}, frame)) {
      auto [ec] = co_await outbox_.async_send(error_code{}, std::move(frame), use_nothrow);
      if (ec) co_return;  // the connection is ending
    }
    note_queued(size);
  }

  // Tracks the bytes waiting in the outbox, and the largest such backlog of any connection: the
  // number that shows the slow-consumer bound holds.
  void note_queued(std::size_t size) {
    const std::size_t backlog = queued_bytes_.fetch_add(size, std::memory_order_relaxed) + size;
    auto& high_water = context_.metrics.outbox_high_water_bytes;
    std::size_t seen = high_water.load(std::memory_order_relaxed);
    while (backlog > seen
           && !high_water.compare_exchange_weak(seen, backlog, std::memory_order_relaxed)) {
    }
  }

  // `self` keeps the connection alive while this coroutine runs on its own.
  net::awaitable<void> write_loop([[maybe_unused]] std::shared_ptr<connection> self) {
    websocket::close_reason farewell;
    for (;;) {
      auto [ec, frame] = co_await outbox_.async_receive(use_nothrow);
      if (ec) {
        if (evicted_) farewell = {websocket::close_code::policy_error, "slow consumer"};
        break;
      }
      if (!frame) {  // the end-of-stream marker queued by begin_shutdown
        farewell = {websocket::close_code::going_away, "server shutting down"};
        break;
      }
      auto [write_ec, size] = co_await ws_->async_write(net::buffer(frame->bytes), use_nothrow);
      queued_bytes_.fetch_sub(frame->bytes.size(), std::memory_order_relaxed);
      if (write_ec) {
        stop();
        co_return;
      }
      count_written(*frame);
    }
    if (farewell.code != websocket::close_code::none && !stopped_) {
      co_await ws_->async_close(farewell, use_nothrow);
    }
  }

  void count_written(const frame& written) {
    auto& metrics = context_.metrics;
    metrics.frames_sent.fetch_add(1, std::memory_order_relaxed);
    metrics.bytes_sent.fetch_add(written.bytes.size(), std::memory_order_relaxed);
    // The last recipient to write a chat message measures how long its delivery took.
    if (written.arrived != frame::clock::time_point{}
        && written.writes_left.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      metrics.delivery_latency.observe(frame::clock::now() - written.arrived);
    }
  }

  // The room has removed this client for not keeping up. Its queued frames are dropped; it gets
  // close 1008 once the write in progress finishes, or is cut off after --close-timeout.
  void begin_eviction() {
    if (evicted_ || stopped_) return;
    evicted_ = true;
    ending_ = "slow consumer (close 1008)";
    outbox_.cancel();  // wakes an idle writer, and a reader blocked on a full outbox
    outbox_.close();
    arm_close_deadline();
  }

  // Server shutdown: flush what is queued, then close 1001.
  void begin_shutdown() {
    if (shutting_down_ || stopped_) return;
    shutting_down_ = true;
    ending_ = "server shutting down";
    if (!ws_) {  // still plain HTTP: nothing queued, just end it
      stop();
      return;
    }
    auto self = shared_from_this();
    auto marker = queue_end_of_stream(std::move(self));
    net::co_spawn(executor_, std::move(marker), log_exception{"connection shutdown"});
    arm_close_deadline();
  }

  // Queued behind every frame already in the outbox (waiting for room if it is full); `self`
  // keeps the connection alive until it is in.
  net::awaitable<void> queue_end_of_stream([[maybe_unused]] std::shared_ptr<connection> self) {
    shared_frame end_of_stream;
    co_await enqueue_own(std::move(end_of_stream));
  }

  void arm_close_deadline() {
    close_deadline_.emplace(executor_);
    close_deadline_->expires_after(options_.close_timeout);
    close_deadline_->async_wait([self = shared_from_this()](error_code ec) {
      if (!ec) self->stop();
    });
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    outbox_.cancel();
    outbox_.close();
    if (close_deadline_) close_deadline_->cancel();
    error_code ignored;
    auto& socket = ws_ ? beast::get_lowest_layer(*ws_).socket() : http_.socket();
    socket.close(ignored);
  }

  const std::string label_;        // "#id address", for logs
  std::string ending_;             // why it ended, for the log line
  net::any_io_executor executor_;  // the connection's strand
  beast::tcp_stream http_;         // the connection before the upgrade (moved-from after it)
  std::optional<ws_stream> ws_;    // the connection after the upgrade
  outbox_channel outbox_;
  const session_context& context_;
  const session_options& options_;
  std::optional<membership> membership_;
  std::optional<net::steady_timer> close_deadline_;
  std::atomic<std::size_t> queued_bytes_{0};  // outbox backlog (deliver runs on the hub strand)
  token_bucket frames_allowed_;               // --rate-limit / --rate-burst
  token_bucket refusals_allowed_;             // --flood-limit, refilled one per second
  bool over_capacity_;
  bool evicted_ = false;
  bool shutting_down_ = false;
  bool stopped_ = false;
};

std::shared_ptr<connection> make_connection(tcp::socket socket, const session_context& context,
                                            bool over_capacity, std::string label) {
  return std::make_shared<connection>(std::move(socket), context, over_capacity, std::move(label));
}

net::awaitable<void> serve(std::shared_ptr<connection> client) {
  co_await client->serve();
}

void shut_down(const std::shared_ptr<connection>& client) {
  client->request_shutdown();
}

}  // namespace roomcast
