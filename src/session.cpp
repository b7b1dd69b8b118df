// The socket glue around a connection's lifecycle (connection_fsm.hpp). Three sources of events
// run on the connection's strand and hand them to the state machine: the read loop (frames), the
// connection's one timer (idle tick, close deadline), and requests posted from other strands
// (eviction by a room, server shutdown). `carry_out` does what the machine decides. Frames to the
// client all go through the outbox (outbox.hpp), drained by the writer when they have to wait.
#include "roomcast/session.hpp"

#include <array>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "roomcast/cluster.hpp"
#include "roomcast/connection_fsm.hpp"
#include "roomcast/hub.hpp"
#include "roomcast/log.hpp"
#include "roomcast/member.hpp"
#include "roomcast/metrics.hpp"
#include "roomcast/outbox.hpp"
#include "roomcast/protocol.hpp"
#include "roomcast/ws_codec.hpp"

#include "http_phase.hpp"

namespace roomcast {
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
  exact_allocator(const exact_allocator<U>& /*other*/) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t /*n*/) noexcept { ::operator delete(p); }
  friend bool operator==(exact_allocator, exact_allocator) noexcept { return true; }
};

template <typename Handler>
auto exactly_sized(Handler handler) {
  return net::bind_allocator(exact_allocator<void>(), std::move(handler));
}

}  // namespace

class connection final : public member, public std::enable_shared_from_this<connection> {
 public:
  connection(connection_socket socket, const session_context& context, connection_origin origin,
             std::string label, std::function<void()> on_destroyed)
      : label_(std::move(label)),
        on_destroyed_(std::move(on_destroyed)),
        socket_(socket.get_executor()),
        http_(std::in_place, std::move(socket)),
        timer_(socket_.get_executor()),
        reader_(context.options.max_frame),
        context_(context),
        lifecycle_({.rate_limit = context.options.rate_limit,
                    .rate_burst = context.options.rate_burst,
                    .flood_limit = context.options.flood_limit},
                   /*proxy_header_first=*/context.websocket && context.options.proxy.protocol),
        origin_(std::make_unique<connection_origin>(std::move(origin))) {
    context_.metrics.open_connections.fetch_add(1, std::memory_order_relaxed);
  }

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  ~connection() override {
    context_.metrics.open_connections.fetch_sub(1, std::memory_order_relaxed);
    if (on_destroyed_) on_destroyed_();
  }

  // --- Ways in from other strands: each is posted to this connection's strand ----------------

  // Called on the room's strand or its lane's: the outbox is thread-safe, nothing else is touched.
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
    net::post(strand(),
              [self = shared_from_this()] { self->carry_out(self->lifecycle_.on_evicted()); });
  }

  void room_closing() override {
    net::post(strand(),
              [self = shared_from_this()] { self->carry_out(self->lifecycle_.on_room_closing()); });
  }

  void restart() override {
    net::post(strand(),
              [self = shared_from_this()] { self->carry_out(self->lifecycle_.on_restart()); });
  }

  void replaced() override {
    net::post(strand(), [self = shared_from_this()] {
      // The seat is another connection's now: closing must not leave or hold it.
      self->membership_.reset();
      self->carry_out(self->lifecycle_.on_replaced());
    });
  }

  void request_shutdown() {
    net::post(strand(), [self = shared_from_this()] {
      self->carry_out(self->lifecycle_.on_shutdown(self->in_room()));
    });
  }

  // --- The HTTP phase ------------------------------------------------------------------------

  // Serves HTTP until the upgrade. After it the WebSocket session goes on by itself (see the read
  // loop), so this coroutine's frame is not kept for the life of the connection.
  net::awaitable<void> run() {
    log_info("connection ", label_, " opened");
    configure_socket();
    // Who the client is matters only until the upgrade, so it lives in this coroutine's frame,
    // not in the connection, which stays as small as an idle connection needs.
    const auto origin = std::move(origin_);
    client_identity client;
    client.address = origin->peer;
    client.via_trusted_proxy = origin->trusted_proxy;
    client.over_capacity = origin->over_capacity;
    client.adopt = [this, &client, &origin](const proxy::address& named, std::string_view how) {
      return adopt_client(client, origin->charge_to, named, how);
    };
    // One deadline for the PROXY header (if due) and the first request: a client that trickles
    // either is gone after --handshake-timeout.
    http_->expires_after(context_.options.handshake_timeout);
    boost::beast::flat_buffer input;
    if (lifecycle_.current() == connection_fsm::state::proxy_header) {
      co_await take_proxy_header(input, client);
      if (!lifecycle_.proxy_header_read()) {  // refused, or a shutdown came first
        disconnect();
        log_closed();
        co_return;
      }
    }
    auto upgrade = co_await serve_http(*http_, input, context_, client, lifecycle_);
    if (upgrade && lifecycle_.begin_upgrade()) {
      const auto ec = co_await accept_upgrade(*http_, *upgrade, context_.options.handshake_timeout);
      if (!ec) {
        start_session(std::move(upgrade->early_bytes));
        co_return;
      }
      if (lifecycle_.current() != connection_fsm::state::closed) {  // not cut off by a shutdown
        context_.metrics.handshake_failures.fetch_add(1, std::memory_order_relaxed);
      }
      lifecycle_.http_ended(ending::handshake_failed, ec.message());
    }
    lifecycle_.http_ended(ending::http_done);
    disconnect();
    log_closed();
  }

 private:
  connection_strand strand() { return socket_.get_executor(); }

  // --- The PROXY protocol step (--proxy-protocol on) -----------------------------------------

  // A trusted proxy must begin with a PROXY header, which names the client. Anyone else must not
  // send one: it would be a client claiming to be someone else. Either mistake ends the
  // connection without a reply (the peer speaks PROXY, not HTTP), logged and counted.
  net::awaitable<void> take_proxy_header(boost::beast::flat_buffer& input,
                                         client_identity& client) {
    auto [header, ec] = co_await read_proxy_header(*http_, input);
    if (lifecycle_.current() != connection_fsm::state::proxy_header) co_return;  // a shutdown
    const bool trusted = client.via_trusted_proxy;
    switch (header.status) {
      case proxy::header_status::need_more:
        refuse_proxy(proxy_header_outcome::incomplete, ec ? ec.message() : "no bytes");
        co_return;
      case proxy::header_status::absent:
        if (trusted) {
          refuse_proxy(proxy_header_outcome::missing, "a trusted proxy sent no PROXY header");
        }
        co_return;  // an untrusted client's HTTP request: on to the http state
      case proxy::header_status::invalid:
        if (trusted) {
          refuse_proxy(proxy_header_outcome::invalid, header.error);
          co_return;
        }
        break;
      case proxy::header_status::parsed:
        break;
    }
    if (!trusted) {
      refuse_proxy(proxy_header_outcome::untrusted, "a PROXY header from an untrusted address");
      co_return;
    }
    context_.metrics.count_proxy_header(proxy_header_outcome::accepted);
    // LOCAL (the proxy's own health check), UNKNOWN or AF_UNIX: the proxy's address stands.
    if (header.source) {
      co_await client.adopt(*header.source, header.version == 1 ? "PROXY v1" : "PROXY v2");
    }
  }

  void refuse_proxy(proxy_header_outcome outcome, std::string_view why) {
    context_.metrics.count_proxy_header(outcome);
    if (outcome == proxy_header_outcome::missing || outcome == proxy_header_outcome::invalid) {
      // A trusted proxy that does not speak the protocol is a configuration error.
      log_warn("connection ", label_, ": PROXY protocol header refused: ", why);
    }
    lifecycle_.http_ended(ending::proxy_refused, why);
  }

  // A trusted proxy named the client: from now on the connection is the client's, in the logs
  // and for --max-connections-per-ip (`charge_to`: the server's). `how` is static text.
  net::awaitable<void> adopt_client(
      client_identity& client, const std::function<net::awaitable<bool>(std::string)>& charge_to,
      proxy::address named, std::string_view how) {
    auto address = named.to_string();
    log_info("connection ", label_, ": client ", address, " (", how, ")");
    label_ += " for " + address;
    client.via_trusted_proxy = context_.options.proxy.trusted.trusts(named);
    client.address = address;
    if (charge_to) client.over_capacity = co_await charge_to(std::move(address));
  }

  void configure_socket() {
    auto& socket = http_->socket();
    error_code ignored;
    if (context_.options.send_buffer > 0) {
      socket.set_option(net::socket_base::send_buffer_size(context_.options.send_buffer), ignored);
    }
    socket.set_option(tcp::no_delay(true), ignored);
  }

  // From here on the session keeps only the bare socket: frames are read with ws::frame_reader
  // and written through the outbox (docs/architecture.md says why Beast's stream is left here).
  void start_session(std::string early_bytes) {
    socket_ = http_->release_socket();
    http_.reset();
    carry_out(lifecycle_.upgraded());  // a shutdown during the upgrade: disconnect
    if (lifecycle_.current() != connection_fsm::state::open) {
      log_closed();
      return;
    }
    log_info("connection ", label_, " upgraded to WebSocket");
    error_code ignored;
    socket_.non_blocking(true, ignored);  // reads try first and wait only when nothing is there
    input_ = std::move(early_bytes);
    outbox_.emplace(socket_.native_handle(), context_.options.outbox_frames,
                    &context_.metrics.outbox_high_water_bytes);
    arm_timer(idle_tick());
    start_read_turn();  // bytes may have come with the upgrade request, or since
  }

  // --- The lifecycle's decisions -------------------------------------------------------------

  // Does what the state machine decided, for the decisions that need no waiting. The read loop
  // carries out the rest itself (handle_text, send_pong, refuse_rate_limited), since they wait
  // for the hub or for room in the outbox.
  void carry_out(const decision& d) {
    switch (d.what) {
      case decision::action::send_ping:
        hand_over(make_encoded_frame(ws::encode_frame(ws::opcode::ping, {})), true);
        break;
      case decision::action::send_close:
        if (lifecycle_.why_ended() == ending::rate_limited) {
          context_.metrics.rate_limit_closes.fetch_add(1, std::memory_order_relaxed);
        }
        if (d.drop_queued) outbox_->drop_waiting();
        // The close is the last frame: after it every offer is refused. The writer half-closes
        // the socket once it is out; the client then has --close-timeout to close its end.
        if (outbox_->offer_last(make_encoded_frame(ws::encode_close(d.close_code, d.close_reason)))
            == outbox::outcome::start_writer) {
          start_writer();
        }
        arm_timer(context_.options.close_timeout);
        break;
      case decision::action::disconnect:
        disconnect();
        break;
      default:
        break;
    }
  }

  // Closes the socket. Every wait on it ends with operation_aborted: a parked read loop wakes up,
  // finds the connection closed and ends the session (see park_reader).
  void disconnect() {
    if (outbox_) outbox_->shut();  // no send from a room touches the fd after this
    timer_.cancel();
    notify_progress();
    error_code ignored;
    if (http_) http_->socket().close(ignored);
    socket_.close(ignored);
  }

  void log_closed() const {
    const auto why = lifecycle_.why_ended();
    const auto& detail = lifecycle_.detail();
    log_info("connection ", label_, " closed: ", describe(why), detail.empty() ? "" : ": ", detail);
  }

  // --- The read loop, parked while idle ------------------------------------------------------
  //
  // Written as one coroutine, the WebSocket side of a connection would read
  //
  //     while (lifecycle_.reading()) {
  //       co_await socket readable;
  //       for (each frame the socket has) co_await act_on(frame);
  //     }
  //     leave the room; log the ending
  //
  // but a coroutine suspended in "co_await socket readable" keeps its frame for as long as the
  // client is idle, which is most of the time for most clients. So the wait for readability is a
  // plain async_wait with no coroutine behind it (park_reader), and each wake-up runs one turn of
  // the loop as a short-lived coroutine (read_turn). One turn runs at a time: a turn starts only
  // from the parked wait, and the wait is armed only at the end of a turn.
  //
  // Reads are fair: a turn that has acted on `frames_per_turn` frames or read `bytes_per_turn`
  // bytes lets the connections queued behind it on its thread run before it goes on, so that a
  // client sending as fast as its socket takes (pings, chat, junk to discard) cannot hold a
  // thread (docs/architecture.md, "Fair reads", says how the bounds were chosen).
  static constexpr int frames_per_turn = 16;
  static constexpr std::size_t bytes_per_turn = 64 * 1024;

  struct turn_budget {
    int frames = 0;
    std::size_t bytes = 0;
    bool spent() const noexcept { return frames >= frames_per_turn || bytes >= bytes_per_turn; }
  };

  void park_reader() {
    auto readable = [self = shared_from_this()](error_code /*ec*/) {
      // With or without an error the turn runs: an error (operation_aborted) means disconnect()
      // closed the socket, and the turn then finds the connection closed and ends the session.
      // That is how the timer, a failed write or a shutdown end a parked connection.
      self->start_read_turn();
    };
    socket_.async_wait(connection_socket::wait_read, exactly_sized(std::move(readable)));
  }

  void start_read_turn() {
    net::co_spawn(strand(), read_turn(shared_from_this()), log_exception{"connection reader"});
  }

  // `self` keeps the connection alive while the turn runs.
  net::awaitable<void> read_turn([[maybe_unused]] std::shared_ptr<connection> self) {
    turn_budget turn;
    while (lifecycle_.reading()) {
      // Out of the room as soon as the session is closing: its name is free at once.
      if (lifecycle_.current() == connection_fsm::state::closing) co_await leave_room();
      if (turn.spent()) {
        // To the back of the thread's queue: the others go first, then this turn goes on.
        co_await net::post(strand(), net::use_awaitable);
        turn = {};
        continue;
      }
      const auto frame = next_frame(turn);
      if (frame) {
        co_await act_on(*frame);
        ++turn.frames;
      } else if (!lifecycle_.reading()) {
        break;  // the socket ended
      } else if (!turn.spent()) {
        park_reader();  // nothing more for now
        co_return;
      }  // else it has read its share of bytes, and yields above
    }
    co_await leave_room();
    log_closed();
  }

  // The next frame the client sent, reading from the socket when input_ has no whole frame.
  // nullopt when the socket has nothing more (park), when it ended (the lifecycle is told), or
  // when the turn has read its share of bytes (it yields, then calls again).
  // In closing, what arrives is read and discarded until the client closes its end.
  std::optional<ws::frame_reader::result> next_frame(turn_budget& turn) {
    for (;;) {
      if (lifecycle_.current() == connection_fsm::state::closing) {
        parsed_ = input_.size();
      } else {
        auto result = reader_.next({input_.data() + parsed_, input_.size() - parsed_});
        parsed_ += result.consumed;
        if (result.what != ws::frame_reader::result::kind::need_more) return result;
      }
      if (turn.bytes >= bytes_per_turn) return std::nullopt;
      // A read that did not fill the buffer took all the socket had: park at once instead of
      // spending a read on EAGAIN. The wait re-arms the descriptor (epoll_ctl), which reports
      // data that came in meanwhile.
      if (std::exchange(socket_drained_, false)) return std::nullopt;
      const auto [ec, size] = read_available();
      turn.bytes += size;
      if (ec == net::error::would_block) return std::nullopt;
      if (ec || size == 0) {
        carry_out(lifecycle_.on_read_end(ec ? ec.message() : std::string()));
        return std::nullopt;
      }
    }
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

  // `frame.payload` points into input_, which only next_frame changes: it stays valid here.
  net::awaitable<void> act_on(const ws::frame_reader::result& frame) {
    const auto now = frame::clock::now();
    if (frame.what == ws::frame_reader::result::kind::text) {
      context_.metrics.frames_received.fetch_add(1, std::memory_order_relaxed);
      context_.metrics.bytes_received.fetch_add(frame.payload.size(), std::memory_order_relaxed);
    }
    const auto d = lifecycle_.on_frame(frame.what, now, frame.code);
    switch (d.what) {
      case decision::action::handle_text:
        co_await handle(parse_command(frame.payload, context_.options.max_text), now);
        break;
      case decision::action::send_pong:
        co_await send_own(make_encoded_frame(ws::encode_frame(ws::opcode::pong, frame.payload)));
        break;
      case decision::action::refuse_rate_limited:
        co_await send_own(refusal_frame(wire_code::rate_limited));
        break;
      default:
        carry_out(d);
    }
  }

  // --- Commands: what a chat message asks of the hub -----------------------------------------

  net::awaitable<void> handle(parse_result parsed, frame::clock::time_point arrived) {
    if (const auto* refusal = std::get_if<rejection>(&parsed)) {
      co_await send_own(refusal_frame(*refusal));
      co_return;
    }
    auto& cmd = std::get<command>(parsed);
    if (auto* create = std::get_if<create_room>(&cmd)) {
      co_await admit(room_event_kind::create, create->room, std::move(create->name),
                     create->wishes);
    } else if (auto* join = std::get_if<join_room>(&cmd)) {
      co_await admit(room_event_kind::join, join->room, std::move(join->name), join->wishes);
    } else if (auto* resume = std::get_if<resume_seat>(&cmd)) {
      co_await take_back_seat(*resume);
    } else if (!in_room()) {  // chat or leave outside a room
      co_await send_own(refusal_frame(wire_code::not_in_room));
    } else if (auto* chat = std::get_if<say>(&cmd)) {
      if (cluster_place_) {
        const wire_code said =
            co_await context_.cluster->say(*cluster_place_, std::move(chat->text));
        if (said != wire_code::ok) co_await send_own(refusal_frame(said));
      } else {
        co_await context_.hub.say(*membership_, std::move(chat->text), arrived);
      }
    } else {
      co_await leave_room(leave_reason::left);
    }
  }

  // A resume: the seat a token names, after a dropped connection. The hub sends the reply (the
  // `resume` frame and the missed events) through the outbox like any room frame.
  net::awaitable<void> take_back_seat(const resume_seat& request) {
    if (in_room()) {
      co_await send_own(refusal_frame(wire_code::already_in_room));
      co_return;
    }
    if (context_.cluster != nullptr) {
      auto outcome = co_await context_.cluster->resume(request, shared_from_this());
      if (auto* seat = std::get_if<cluster_seat>(&outcome)) {
        cluster_place_ = std::move(*seat);
        co_return;
      }
      co_await send_own(refusal_frame(std::get<wire_code>(outcome)));
      co_return;
    }
    auto result = co_await context_.hub.resume(request, shared_from_this());
    if (auto* seat = std::get_if<membership>(&result)) {
      membership_ = std::move(*seat);
      co_return;
    }
    co_await send_own(refusal_frame(std::get<wire_code>(result)));
  }

  net::awaitable<void> admit(room_event_kind kind, room_id room, std::string name,
                             admission_wishes wishes) {
    if (in_room()) {
      co_await send_own(refusal_frame(wire_code::already_in_room));
      co_return;
    }
    const boost::json::value echoed_name(name);
    if (context_.cluster != nullptr) {
      cluster_admission outcome;
      if (kind == room_event_kind::create) {
        outcome =
            co_await context_.cluster->create(room, std::move(name), shared_from_this(), wishes);
      } else {
        outcome =
            co_await context_.cluster->join(room, std::move(name), shared_from_this(), wishes);
      }
      if (auto* seat = std::get_if<cluster_seat>(&outcome)) {
        cluster_place_ = std::move(*seat);
        co_return;
      }
      co_await send_own(refusal_frame(std::get<wire_code>(outcome), room.to_json(), echoed_name));
      co_return;
    }
    // Not `cond ? co_await a : co_await b`: g++ 12 destroys the result of a co_await inside the
    // conditional operator twice (docs/architecture.md, "Toolchain traps").
    admission result;
    if (kind == room_event_kind::create) {
      result = co_await context_.hub.create(room, std::move(name), shared_from_this(), wishes);
    } else {
      result = co_await context_.hub.join(room, std::move(name), shared_from_this(), wishes);
    }
    if (auto* seat = std::get_if<membership>(&result)) {
      membership_ = std::move(*seat);
      co_return;
    }
    // A refused create/join echoes roomId and name: that is how the seed client knows to leave
    // its room screen and show the text.
    co_await send_own(refusal_frame(std::get<wire_code>(result), room.to_json(), echoed_name));
  }

  // Idempotent: the hub ignores a member its room already removed (a slow consumer).
  net::awaitable<void> leave_room(leave_reason reason = leave_reason::disconnected) {
    if (cluster_place_) {
      auto seat = std::move(*cluster_place_);
      cluster_place_.reset();
      co_await context_.cluster->leave(std::move(seat), reason);
      carry_out(lifecycle_.on_left_room());
      co_return;
    }
    if (!membership_) co_return;
    auto seat = std::move(*membership_);
    membership_.reset();
    co_await context_.hub.leave(std::move(seat), reason);
    carry_out(lifecycle_.on_left_room());  // a shutdown that waited for the room goes on
  }

  // Errors go to this client only, through its own outbox so they stay in order with broadcasts.
  shared_frame refusal_frame(const rejection& refusal) const {
    context_.metrics.count_rejection(static_cast<int>(refusal.code));
    std::size_t users = 0;
    if (membership_) users = membership_->users();
    if (cluster_place_) users = cluster_place_->users();
    return make_frame(serialize(refusal, users));
  }
  // The rejection is built here, outside any co_await: g++ 12 destroys an aggregate temporary
  // made in a co_await's full-expression twice (docs/architecture.md, "Toolchain traps").
  shared_frame refusal_frame(wire_code code, boost::json::value room = nullptr,
                             boost::json::value name = nullptr) const {
    return refusal_frame(rejection{code, std::move(room), std::move(name)});
  }

  bool in_room() const noexcept { return membership_.has_value() || cluster_place_.has_value(); }

  // --- The write side ------------------------------------------------------------------------

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
    while (!outbox_->has_room() && lifecycle_.current() != connection_fsm::state::closed) {
      co_await wait_for_progress();
    }
    hand_over(frame, /*beyond_limit=*/true);
  }

  // Called from any thread; the writer runs on the strand.
  void start_writer() {
    net::co_spawn(strand(), write_loop(shared_from_this()), log_exception{"connection writer"});
  }

  // The writer exists only while frames wait in the outbox (most never wait: outbox::offer sends
  // them at once). It takes everything waiting, sends it in one gather write, and repeats until
  // the outbox is empty. `self` keeps the connection alive while it runs.
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
        // A broken socket ends the connection in any state; the lifecycle records why.
        // (disconnect, not carry_out: a write failure never sends anything more.)
        lifecycle_.on_write_failed(ec.message());
        disconnect();  // shuts the outbox: take() ends the loop
        continue;
      }
      for (const auto& waiting : batch) {
        count_written(*waiting.frame);
      }
      notify_progress();
    }
    if (lifecycle_.current() == connection_fsm::state::closing) {
      // The close frame is out (it is the last frame): tell the client with a FIN too. The read
      // loop reads on until the client closes its end, so that the close is not lost to a reset.
      error_code ignored;
      socket_.shutdown(connection_socket::shutdown_send, ignored);
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

  // Waits until the writer has made progress or the connection closed. A timer that never
  // expires serves as the event: cancel() wakes the wait. On the strand.
  net::awaitable<void> wait_for_progress() {
    if (!progress_) progress_ = std::make_unique<strand_timer>(strand());
    progress_->expires_at(strand_timer::time_point::max());
    co_await progress_->async_wait(use_nothrow);
  }

  void notify_progress() {
    if (progress_) progress_->cancel();
  }

  // --- The timer: the idle tick while open, the close deadline while closing -----------------

  // Rearming cancels the wait in progress, whose handler then sees operation_aborted and does
  // nothing.
  void arm_timer(std::chrono::milliseconds after) {
    timer_.expires_after(after);
    auto fired = [self = shared_from_this()](error_code ec) {
      if (ec) return;
      self->carry_out(self->lifecycle_.on_timer());
      if (self->lifecycle_.current() == connection_fsm::state::open) {
        self->arm_timer(self->idle_tick());
      }
    };
    timer_.async_wait(exactly_sized(std::move(fired)));
  }

  // Twice per --idle-timeout (connection_fsm::on_timer says what a tick does).
  std::chrono::milliseconds idle_tick() const {
    return std::max(context_.options.idle_timeout / 2, std::chrono::milliseconds(1));
  }

  using strand_timer =
      net::basic_waitable_timer<std::chrono::steady_clock,
                                net::wait_traits<std::chrono::steady_clock>, connection_strand>;

  // Everything here belongs to the connection's strand, except the outbox (thread-safe: rooms
  // deliver from their own strand) and the metrics.
  std::string label_;  // "#id address", and " for client" once a trusted proxy names it: logs
  std::function<void()> on_destroyed_;
  connection_socket socket_;         // the connection after the upgrade (its executor: the strand)
  std::optional<http_stream> http_;  // the connection until the upgrade
  std::optional<outbox> outbox_;     // from the upgrade on
  std::string input_;                // bytes read and not yet parsed away
  std::size_t parsed_ = 0;           // of input_, already handled
  strand_timer timer_;               // the idle tick, then the close deadline
  std::unique_ptr<strand_timer> progress_;  // wakes a wait for the writer (made when needed)
  ws::frame_reader reader_;                 // a message in progress, between read turns
  const session_context& context_;
  connection_fsm lifecycle_;
  std::optional<membership> membership_;
  std::unique_ptr<connection_origin> origin_;  // from the accept; run() takes it
  std::optional<cluster_seat> cluster_place_;  // cluster mode's membership_
  bool socket_drained_ = false;                // the last read took everything there was
};

std::shared_ptr<connection> make_connection(connection_socket socket,
                                            const session_context& context,
                                            connection_origin origin, std::string label,
                                            std::function<void()> on_destroyed) {
  return std::make_shared<connection>(std::move(socket), context, std::move(origin),
                                      std::move(label), std::move(on_destroyed));
}

net::awaitable<void> serve(std::shared_ptr<connection> client) {
  co_await client->run();
}

void shut_down(const std::shared_ptr<connection>& client) {
  client->request_shutdown();
}

}  // namespace roomcast
