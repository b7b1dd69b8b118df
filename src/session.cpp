#include "roomcast/session.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <optional>
#include <utility>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "roomcast/http.hpp"
#include "roomcast/hub.hpp"
#include "roomcast/log.hpp"
#include "roomcast/member.hpp"
#include "roomcast/metrics.hpp"
#include "roomcast/outbox.hpp"
#include "roomcast/protocol.hpp"
#include "roomcast/rate_limit.hpp"
#include "roomcast/ws_codec.hpp"

namespace roomcast {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

namespace {

// For the waits that last as long as an idle connection: their memory does not come from Asio's
// per-thread recycling cache, which would hand out the last larger block freed (an HTTP write
// operation, several hundred bytes). Asio treats std::allocator<void> as "recycle", hence a type
// of our own that allocates exactly what is asked.
template <typename T>
struct exact_allocator {
  using value_type = T;
  exact_allocator() = default;
  template <typename U>
  exact_allocator(const exact_allocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }
  friend bool operator==(exact_allocator, exact_allocator) noexcept { return true; }
};

template <typename Handler>
auto exactly_sized(Handler handler) {
  return net::bind_allocator(exact_allocator<void>(), std::move(handler));
}

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
// A client connection. It starts as HTTP (Beast parses requests and does the upgrade handshake);
// an upgrade on the chat endpoint turns it into a WebSocket session on the bare socket: one read
// loop that parses frames with ws::frame_reader and turns them into hub commands, and an outbox
// through which every frame to the client goes (see outbox.hpp: sent at once when the socket has
// room, else queued for a writer coroutine that exists only while something is queued).
//
// Everything belongs to the connection's strand except the outbox (thread-safe: rooms deliver
// from their own strand) and the metrics.
class connection final : public member, public std::enable_shared_from_this<connection> {
 public:
  connection(connection_socket socket, const session_context& context, bool over_capacity,
             std::string label, std::function<void()> on_destroyed)
      : label_(std::move(label)),
        on_destroyed_(std::move(on_destroyed)),
        socket_(socket.get_executor()),
        http_(std::in_place, std::move(socket)),
        timer_(socket_.get_executor()),
        reader_(context.options.max_frame),
        context_(context),
        options_(context.options),
        frames_allowed_(options_.rate_limit, options_.rate_burst),
        refusals_allowed_(1.0, options_.flood_limit),
        over_capacity_(over_capacity) {
    context_.metrics.open_connections.fetch_add(1, std::memory_order_relaxed);
  }

  ~connection() override {
    context_.metrics.open_connections.fetch_sub(1, std::memory_order_relaxed);
    if (on_destroyed_) on_destroyed_();
  }

  // Called on the room's strand: the outbox is thread-safe, nothing else is touched.
  delivery deliver(const shared_frame& frame) override {
    switch (hand_over(frame, /*beyond_limit=*/false)) {
      case outbox::outcome::full:
        return delivery::full;
      case outbox::outcome::closed:
        return delivery::closed;
      default:
        return delivery::queued;
    }
  }

  void evict() override {
    net::post(socket_.get_executor(), [self = shared_from_this()] { self->begin_eviction(); });
  }

  void request_shutdown() {
    net::post(socket_.get_executor(), [self = shared_from_this()] { self->begin_shutdown(); });
  }

  // The HTTP phase. After an upgrade the session goes on without this coroutine (see
  // read_when_ready), so its frame is not kept for the life of the connection.
  net::awaitable<void> serve() {
    log_info("connection ", label_, " opened");
    auto& socket = http_->socket();
    error_code ignored;
    if (options_.send_buffer > 0) {
      socket.set_option(net::socket_base::send_buffer_size(options_.send_buffer), ignored);
    }
    socket.set_option(tcp::no_delay(true), ignored);
    auto upgrade = co_await serve_http();
    if (upgrade && !shutting_down_) {
      // The request (a few hundred bytes of headers) is not kept for the session's lifetime.
      const bool accepted = co_await accept_upgrade(std::move(*upgrade));
      upgrade.reset();
      if (accepted) {
        start_session();
        co_return;
      }
    }
    stop();
    log_closed();
  }

 private:
  using request_type = http::request<http::string_body>;
  using http_stream = beast::basic_stream<tcp, connection_strand>;
  using strand_timer =
      net::basic_waitable_timer<std::chrono::steady_clock,
                                net::wait_traits<std::chrono::steady_clock>, connection_strand>;

  // An accepted upgrade request, with any bytes the client sent after it (its first frames).
  struct upgrade_request {
    request_type request;
    std::string early_bytes;
  };

  // Answers plain HTTP requests (keep-alive) until the client upgrades, closes or times out.
  net::awaitable<std::optional<upgrade_request>> serve_http() {
    beast::flat_buffer buffer;
    while (!shutting_down_) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options_.max_header));
      parser.body_limit(4096);
      // Bounds the whole request: a client that connects and sends nothing, or trickles bytes,
      // is dropped after --handshake-timeout.
      http_->expires_after(options_.handshake_timeout);
      auto [ec, size] = co_await http::async_read(*http_, buffer, parser, use_nothrow);
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
      if (chat && origin_ok && !over_capacity_) {
        const auto early = buffer.cdata();
        co_return upgrade_request{
            std::move(request), std::string(static_cast<const char*>(early.data()), early.size())};
      }
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
      auto [write_ec, written] = co_await http::async_write(*http_, response, use_nothrow);
      if (write_ec || !keep_alive) break;
    }
    error_code ignored;
    http_->socket().shutdown(connection_socket::shutdown_send, ignored);
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
    co_await http::async_write(*http_, response, use_nothrow);
  }

  // Beast validates the upgrade request and writes the 101 (or the refusal); after that the bare
  // socket is all the session keeps. websocket::stream cannot share one encoded frame among many
  // connections nor write several frames at once, which is what a broadcast server needs.
  net::awaitable<bool> accept_upgrade(upgrade_request upgrade) {
    websocket::stream<http_stream> handshake(std::move(*http_));
    http_.reset();
    handshake.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& response) { response.set(http::field::server, "roomcast"); }));
    beast::get_lowest_layer(handshake).expires_after(options_.handshake_timeout);
    auto [ec] = co_await handshake.async_accept(upgrade.request, use_nothrow);
    if (ec) {
      context_.metrics.handshake_failures.fetch_add(1, std::memory_order_relaxed);
      ending_ = "websocket handshake failed: " + ec.message();
      co_return false;
    }
    socket_ = beast::get_lowest_layer(handshake).release_socket();
    error_code ignored;
    socket_.non_blocking(true, ignored);  // reads try first and wait only when nothing is there
    input_ = std::move(upgrade.early_bytes);
    co_return true;
  }

  void start_session() {
    log_info("connection ", label_, " upgraded to WebSocket");
    outbox_.emplace(socket_.native_handle(), options_.outbox_frames,
                    &context_.metrics.outbox_high_water_bytes);
    arm_timer(idle_tick());
    spawn_reader();  // bytes may have come with the upgrade request, or since
  }

  // An idle connection parks: no coroutine frame and no read buffer, only this wait (and the
  // idle tick). When the socket turns readable, a read burst starts on the strand.
  void read_when_ready() {
    auto readable = [self = shared_from_this()](error_code) { self->spawn_reader(); };
    socket_.async_wait(connection_socket::wait_read, exactly_sized(std::move(readable)));
  }

  void spawn_reader() {
    auto burst = read_burst(shared_from_this());
    net::co_spawn(socket_.get_executor(), std::move(burst), log_exception{"connection reader"});
  }

  // Handles everything the client has sent, then parks again, or, when the connection is over,
  // leaves the room and closes. `self` keeps the connection alive while it runs.
  net::awaitable<void> read_burst([[maybe_unused]] std::shared_ptr<connection> self) {
    bool open = false;
    try {
      open = co_await read_frames();
    } catch (const std::exception& e) {
      log_error("connection reader failed: ", e.what());
    }
    if (open) {
      read_when_ready();
      co_return;
    }
    if (membership_) {
      auto seat = std::move(*membership_);
      membership_.reset();
      co_await context_.rooms.leave(std::move(seat), leave_reason::disconnected);
    }
    co_await finish();
    log_closed();
  }

  // Parses frames out of input_ and acts on them until the socket has nothing more (true: park)
  // or the connection is over (false).
  net::awaitable<bool> read_frames() {
    while (!close_sent_ && !stopped_) {
      const auto result = reader_.next({input_.data() + parsed_, input_.size() - parsed_});
      parsed_ += result.consumed;
      using kind = ws::frame_reader::result::kind;
      if (result.what == kind::need_more) {
        // A read that did not fill the buffer took all the socket had: park at once instead of
        // spending a read on EAGAIN. The wait re-arms the descriptor (epoll_ctl), which reports
        // data that came in meanwhile.
        if (std::exchange(socket_drained_, false)) co_return true;
        const auto [ec, size] = read_available();
        if (ec == net::error::would_block) co_return true;
        if (ec || size == 0) {
          if (ending_.empty()) ending_ = ec ? ec.message() : "the client closed the connection";
          co_return false;
        }
        continue;
      }
      heard_ = true;
      switch (result.what) {
        case kind::text:
          co_await on_text(result.payload);
          break;
        case kind::binary:
          ending_ = "binary frame (close 1003)";
          send_close(ws::close_code::unsupported_data, "binary frames are not supported");
          break;
        case kind::ping: {
          auto pong = make_encoded_frame(ws::encode_frame(ws::opcode::pong, result.payload));
          co_await send_own(std::move(pong));
          break;
        }
        case kind::close:
          ending_ = "closed by the client";
          send_close(ws::close_code::normal, "");
          break;
        case kind::fail:
          ending_ = "protocol error (close " + std::to_string(result.code) + ")";
          send_close(result.code, "");
          break;
        default:  // pong: being heard is all it means
          break;
      }
    }
    co_return false;
  }

  // One non-blocking read through a per-thread buffer, appended to input_ (eof reads as size 0).
  // Not a coroutine: the thread_local is never touched across a suspension (a coroutine may
  // resume on another thread). Between messages input_ holds no memory.
  std::pair<error_code, std::size_t> read_available() {
    if (parsed_ == input_.size()) {
      std::string().swap(input_);
    } else {
      input_.erase(0, parsed_);
    }
    parsed_ = 0;
    thread_local std::array<char, 16 * 1024> scratch;
    error_code ec;
    const std::size_t size = socket_.read_some(net::buffer(scratch), ec);
    socket_drained_ = !ec && size > 0 && size < scratch.size();
    if (ec == net::error::eof) return {error_code{}, 0};
    if (!ec) input_.append(scratch.data(), size);
    return {ec, size};
  }

  net::awaitable<void> on_text(std::string_view message) {
    const auto now = frame::clock::now();
    context_.metrics.frames_received.fetch_add(1, std::memory_order_relaxed);
    context_.metrics.bytes_received.fetch_add(message.size(), std::memory_order_relaxed);
    if (!frames_allowed_.try_take(now)) {
      if (!refusals_allowed_.try_take(now)) {
        context_.metrics.rate_limit_closes.fetch_add(1, std::memory_order_relaxed);
        ending_ = "rate limit exceeded (close 1008)";
        send_close(ws::close_code::policy_violation, "rate limit exceeded");
        co_return;
      }
      auto frame = refusal_frame(rejection{wire_code::rate_limited});
      co_await send_own(std::move(frame));
      co_return;
    }
    // Parsed before any suspension: `message` points into buffers the read loop owns.
    auto parsed = parse_command(message, options_.max_text);
    co_await handle(std::move(parsed), now);
  }

  net::awaitable<void> handle(parse_result parsed, frame::clock::time_point arrived) {
    if (const auto* refusal = std::get_if<rejection>(&parsed)) {
      auto frame = refusal_frame(*refusal);
      co_await send_own(std::move(frame));
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
        co_await send_own(std::move(frame));
      } else {
        co_await context_.rooms.say(*membership_, std::move(chat->text), arrived);
      }
    } else if (!membership_) {  // leave
      auto frame = refusal_frame(rejection{wire_code::not_in_room});
      co_await send_own(std::move(frame));
    } else {
      auto seat = std::move(*membership_);
      membership_.reset();
      co_await context_.rooms.leave(std::move(seat), leave_reason::left);
    }
  }

  net::awaitable<void> admit(room_event_kind kind, room_id room, std::string name) {
    if (membership_) {
      auto frame = refusal_frame(rejection{wire_code::already_in_room});
      co_await send_own(std::move(frame));
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
    co_await send_own(std::move(frame));
  }

  // Errors go to this client only, through its own outbox so they stay in order with broadcasts.
  shared_frame refusal_frame(const rejection& refusal) const {
    context_.metrics.count_rejection(static_cast<int>(refusal.code));
    const std::size_t users = membership_ ? membership_->users() : 0;
    return make_frame(serialize(refusal, users));
  }

  // --- The write side ---------------------------------------------------------------------

  // Offers a frame to the outbox and does what the outcome asks: count it when the socket took
  // it, start the writer when it waits and the writer was idle. Thread-safe.
  outbox::outcome hand_over(const shared_frame& frame, bool beyond_limit) {
    const auto outcome = outbox_->offer(frame, beyond_limit);
    if (outcome == outbox::outcome::sent) {
      count_written(*frame);
    } else if (outcome == outbox::outcome::start_writer) {
      start_writer();
    }
    return outcome;
  }

  // A reply of the connection's own (an error, a pong). A client that sends but does not read
  // would grow its outbox without end, so the reader waits for room first: its socket stops
  // being read, and TCP pushes back on the client.
  net::awaitable<void> send_own(shared_frame frame) {
    while (!outbox_->has_room() && !stopped_)
      co_await wait_for_progress();
    hand_over(frame, /*beyond_limit=*/true);
  }

  // Queues a close frame behind what is already waiting; after it nothing more is sent, and the
  // connection has --close-timeout to get it out before its socket is closed.
  void send_close(std::uint16_t code, std::string_view reason) {
    if (close_sent_ || !outbox_) return;
    close_sent_ = true;
    auto frame = make_encoded_frame(ws::encode_close(code, reason));
    if (outbox_->offer_last(frame) == outbox::outcome::start_writer) start_writer();
    arm_timer(options_.close_timeout);
  }

  // Called from any thread; the writer runs on the strand.
  void start_writer() {
    auto writer = write_loop(shared_from_this());
    net::co_spawn(socket_.get_executor(), std::move(writer), log_exception{"connection writer"});
  }

  // Writes everything waiting in the outbox, batch after batch, each in one gather write, and
  // ends when the outbox is empty. `self` keeps the connection alive while it runs.
  net::awaitable<void> write_loop([[maybe_unused]] std::shared_ptr<connection> self) {
    std::vector<pending_frame> batch;
    std::vector<net::const_buffer> buffers;
    while (outbox_->take(batch)) {
      buffers.clear();
      for (const auto& waiting : batch) {
        buffers.emplace_back(waiting.frame->bytes.data() + waiting.offset, waiting.remaining());
      }
      auto [ec, written] = co_await net::async_write(socket_, buffers, use_nothrow);
      if (ec) {
        if (ending_.empty()) ending_ = ec.message();
        stop();  // the outbox is shut: take() ends the loop
        continue;
      }
      for (const auto& waiting : batch)
        count_written(*waiting.frame);
      notify_progress();
    }
    notify_progress();
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

  // Waits until the writer has made progress (or the connection stopped). On the strand.
  net::awaitable<void> wait_for_progress() {
    if (!progress_) progress_ = std::make_unique<strand_timer>(socket_.get_executor());
    progress_->expires_at(strand_timer::time_point::max());
    co_await progress_->async_wait(use_nothrow);
  }

  void notify_progress() {
    if (progress_) progress_->cancel();
  }

  // The end of every WebSocket session: the close frame (if one was sent) goes out, then the
  // server half-closes and reads until the client closes too, so that the close frame is not
  // lost to a reset. --close-timeout bounds it all.
  net::awaitable<void> finish() {
    if (close_sent_) {
      while (!outbox_->idle() && !stopped_)
        co_await wait_for_progress();
      error_code ignored;
      socket_.shutdown(connection_socket::shutdown_send, ignored);
      for (;;) {
        parsed_ = input_.size();  // discarded
        const auto [ec, size] = read_available();
        if (!ec && size == 0) break;  // the client's end of the stream
        if (ec && ec != net::error::would_block) break;
        if (ec) {
          auto [wait_ec] = co_await socket_.async_wait(connection_socket::wait_read, use_nothrow);
          if (wait_ec) break;
        }
      }
    }
    stop();
  }

  // The room has removed this client for not keeping up. Frames not yet started are dropped;
  // it gets close 1008 once the write in progress finishes, or is cut off after --close-timeout.
  void begin_eviction() {
    if (evicted_ || stopped_) return;
    evicted_ = true;
    ending_ = "slow consumer (close 1008)";
    outbox_->drop_waiting();
    send_close(ws::close_code::policy_violation, "slow consumer");
  }

  // Server shutdown: flush what is queued, then close 1001.
  void begin_shutdown() {
    if (shutting_down_ || stopped_) return;
    shutting_down_ = true;
    if (!close_sent_) ending_ = "server shutting down";
    if (!outbox_) {  // still plain HTTP: nothing queued, just end it
      stop();
      return;
    }
    send_close(ws::close_code::going_away, "server shutting down");
  }

  // One timer per connection: the idle tick while the session is open, the close deadline once
  // a close frame is on its way. Rearming cancels the wait in progress, whose handler then sees
  // operation_aborted and does nothing.
  void arm_timer(std::chrono::milliseconds after) {
    timer_.expires_after(after);
    auto fired = [self = shared_from_this()](error_code ec) {
      if (ec) return;
      if (self->close_sent_) {
        self->stop();  // --close-timeout is up
      } else {
        self->on_idle_tick();
      }
    };
    timer_.async_wait(exactly_sized(std::move(fired)));
  }

  // Idle detection without touching a timer per message: the reader only sets heard_, and this
  // tick, twice per --idle-timeout, pings a client it has not heard from for a whole tick and cuts
  // off one that stayed silent through the next tick too.
  std::chrono::milliseconds idle_tick() const {
    return std::max(options_.idle_timeout / 2, std::chrono::milliseconds(1));
  }

  void on_idle_tick() {
    if (stopped_) return;
    if (heard_) {
      heard_ = false;
      pinged_ = false;
    } else if (!pinged_) {
      pinged_ = true;
      hand_over(make_encoded_frame(ws::encode_frame(ws::opcode::ping, {})), true);
    } else {
      ending_ = "idle timeout";
      stop();
      return;
    }
    arm_timer(idle_tick());
  }

  void log_closed() const {
    log_info("connection ", label_, " closed: ", ending_.empty() ? "done" : ending_);
  }

  void stop() {
    if (stopped_) return;
    stopped_ = true;
    if (outbox_) outbox_->shut();  // no send from a room touches the fd after this
    timer_.cancel();
    notify_progress();
    error_code ignored;
    if (http_) http_->socket().close(ignored);
    socket_.close(ignored);
  }

  const std::string label_;  // "#id address", for logs
  std::function<void()> on_destroyed_;
  std::string ending_;               // why it ended, for the log line
  connection_socket socket_;         // the connection after the upgrade (its executor: the strand)
  std::optional<http_stream> http_;  // the connection until the upgrade
  std::optional<outbox> outbox_;     // from the upgrade on
  std::string input_;                // bytes read and not yet parsed away
  std::size_t parsed_ = 0;           // of input_, already handled
  strand_timer timer_;               // the idle tick, then the close deadline
  std::unique_ptr<strand_timer> progress_;  // wakes a wait for the writer (made when needed)
  ws::frame_reader reader_;                 // a message in progress, between read bursts
  const session_context& context_;
  const session_options& options_;
  std::optional<membership> membership_;
  token_bucket frames_allowed_;    // --rate-limit / --rate-burst
  token_bucket refusals_allowed_;  // --flood-limit, refilled one per second
  bool over_capacity_;
  bool socket_drained_ = false;  // the last read took everything there was
  bool heard_ = false;           // something arrived since the last heartbeat tick
  bool pinged_ = false;          // a ping went out at the last tick
  bool close_sent_ = false;
  bool evicted_ = false;
  bool shutting_down_ = false;
  bool stopped_ = false;
};

std::shared_ptr<connection> make_connection(connection_socket socket,
                                            const session_context& context, bool over_capacity,
                                            std::string label, std::function<void()> on_destroyed) {
  return std::make_shared<connection>(std::move(socket), context, over_capacity, std::move(label),
                                      std::move(on_destroyed));
}

net::awaitable<void> serve(std::shared_ptr<connection> client) {
  co_await client->serve();
}

void shut_down(const std::shared_ptr<connection>& client) {
  client->request_shutdown();
}

}  // namespace roomcast
