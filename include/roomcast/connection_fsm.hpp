#pragma once
/** @file
 * A connection's lifecycle as plain code: the state it is in, and what each event does in each
 * state. No sockets, no Asio and no clock of its own (times are passed in), so every transition
 * is unit-tested directly (tests/unit/connection_fsm_test.cpp); src/connection.cpp feeds it the
 * events and carries out its decisions.
 *
 *     proxy_header ──proxy_header_read──▶ http ──begin_upgrade──▶ upgrading ──upgraded──▶ open
 *          │                               │                         │                     │
 *          │                               │                         │  (a close frame queued)
 *          │                               │                         │                     ▼
 *          │                               │                         │                  closing
 *          │                               │                         │                     │
 *          └───────────────────────────────┴─────────────────────────┴──(socket ends, error,
 *                                                                        timeout)──▶ closed
 *
 * - proxy_header (only with --proxy-protocol on): the first bytes are checked for a PROXY
 *   protocol header, which a trusted proxy must send and nobody else may (proxy.hpp).
 * - http: Beast answers plain HTTP requests until the client asks for the WebSocket upgrade.
 * - upgrading: Beast validates the upgrade request and writes the 101.
 * - open: frames are read and acted on; the idle tick pings a silent client, then drops it.
 * - closing: our close frame is queued as the last frame. Nothing more is acted on; the peer has
 *   --close-timeout to take what is queued and close its end.
 * - closed: the socket is (being) closed. Nothing happens any more.
 */
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "roomcast/rate_limit.hpp"
#include "roomcast/ws_codec.hpp"

namespace roomcast {

/** What the socket side must do after an event. */
struct decision {
  enum class action : std::uint8_t {
    none,
    handle_text,          ///< act on the text message (create, join, chat, leave)
    refuse_rate_limited,  ///< reply with error 4009: the message is dropped
    send_pong,            ///< answer the ping, with its payload
    send_ping,            ///< the client was silent for a tick: ask for a sign of life
    send_close,  ///< queue close `close_code` as the last frame and start the close deadline
    disconnect,  ///< close the socket now
  };
  action what = action::none;
  std::uint16_t close_code = 0;   ///< send_close
  std::string_view close_reason;  ///< send_close: the reason in the close frame (static text)
  bool drop_queued = false;       ///< send_close: first discard queued frames not yet started

  friend bool operator==(const decision&, const decision&) = default;
};

/** Why a connection ended: the first cause recorded wins (a later one is a consequence). */
enum class ending : std::uint8_t {
  none,              ///< still going
  proxy_refused,     ///< a PROXY header missing, malformed, or from an untrusted address
  http_done,         ///< plain HTTP: the client or the server ended the exchange
  handshake_failed,  ///< the upgrade request was refused or broke off
  client_closed,     ///< the client sent a close frame
  client_gone,       ///< the client's end of the stream, without a close frame
  read_failed,       ///< the socket reported an error on read
  write_failed,      ///< the socket reported an error on write
  protocol_error,    ///< a frame broke RFC 6455 (close 1002, 1007 or 1009)
  binary_frame,      ///< a binary message (close 1003)
  rate_limited,      ///< kept flooding after --flood-limit refusals (close 1008)
  slow_consumer,     ///< evicted by its room (close 1008)
  idle_timeout,      ///< silent through a ping
  shutdown,          ///< the server is shutting down (close 1001)
  restarted,         ///< cluster mode: the node lost track of the room (close 1012)
  replaced,          ///< another connection resumed its seat (close 4100)
};

/** The log text for `why` ("idle timeout", "slow consumer (close 1008)", ...). */
std::string_view describe(ending why) noexcept;

/** What the frame reader produced (need_more never reaches the lifecycle). */
using frame_kind = ws::frame_reader::result::kind;

class connection_fsm {
 public:
  enum class state : std::uint8_t { proxy_header, http, upgrading, open, closing, closed };

  struct limits {
    double rate_limit = 10;  ///< frames of any kind per second (0: unlimited)
    double rate_burst = 20;
    unsigned flood_limit = 50;  ///< refused frames (refilled 1/s) before close 1008
  };

  /** `proxy_header_first`: the connection starts by looking for a PROXY protocol header. */
  explicit connection_fsm(const limits& l, bool proxy_header_first = false) noexcept
      : state_(proxy_header_first ? state::proxy_header : state::http),
        frames_allowed_(l.rate_limit, l.rate_burst),
        refusals_allowed_(1.0, l.flood_limit) {}

  state current() const noexcept { return state_; }
  /** The read loop runs while frames may still arrive: open, or closing (read and discarded). */
  bool reading() const noexcept { return state_ == state::open || state_ == state::closing; }
  ending why_ended() const noexcept { return ending_; }
  /** The socket's own words for read_failed / write_failed ("Connection reset by peer"). */
  const std::string& detail() const noexcept { return detail_; }

  // --- The HTTP phase ------------------------------------------------------------------------

  /** The PROXY protocol step is over (a header was taken, or none was due): true (now http)
   * unless the connection is already ending (a shutdown came first). A refused header ends the
   * connection through http_ended(ending::proxy_refused, why). */
  bool proxy_header_read() noexcept;

  /** The client asked for the WebSocket upgrade: true (now upgrading) unless the connection is
   * already ending (a shutdown came first). */
  bool begin_upgrade() noexcept;
  /** The 101 is out. open; or, when a shutdown came during the upgrade, `disconnect`. */
  decision upgraded();
  /** The HTTP exchange (or the PROXY step) ended without an upgrade, or the upgrade failed
   * (`detail`: why). */
  void http_ended(ending why, std::string_view detail = {});

  // --- Events of an open connection ----------------------------------------------------------

  /** A complete frame arrived at `now`. `fail_code`: for `frame_kind::fail`, the close code the
   * frame reader chose (1002, 1007, 1009). In closing, frames are discarded.
   *
   * Every frame takes a token from the --rate-limit bucket: text, ping, pong, close, binary and
   * each fragment of a fragmented message alike. Over budget, text is refused with 4009 and any
   * other frame goes unanswered (a ping gets no pong); each such frame is a refusal, and the
   * next frame over budget once --flood-limit refusals are spent (refilled one per second)
   * closes the connection with 1008, whatever its kind. */
  decision on_frame(frame_kind kind, std::chrono::steady_clock::time_point now,
                    std::uint16_t fail_code = 0);
  /** The client's end of the stream (eof) or a read error (`error` non-empty). */
  decision on_read_end(std::string_view error);
  /** A write failed: the connection is broken. */
  decision on_write_failed(std::string_view error);
  /** The connection's one timer fired: the idle tick while open, the close deadline while
   * closing. */
  decision on_timer();
  /** Its room removed it as a slow consumer. */
  decision on_evicted();
  /** The server is shutting down. A member of a room (`in_room`) waits for its room to hand out
   * what it accepted before (on_room_closing), or to leave it (on_left_room): its 1001 must not
   * overtake a message the room had already accepted. */
  decision on_shutdown(bool in_room = false);
  /** Its room has ended in the shutdown, after handing out everything it had accepted. */
  decision on_room_closing();
  /** It left its room (a leave frame). A shutdown that waited for the room goes on. */
  decision on_left_room();
  /** Cluster mode: the node lost track of the member's room; close 1012 so that the client
   * reconnects and joins again. */
  decision on_restart();
  /** Another connection resumed this one's seat with its token: close 4100 (the client must not
   * reconnect: its seat lives on elsewhere). */
  decision on_replaced();

 private:
  decision start_closing(ending why, std::uint16_t code, std::string_view reason,
                         bool drop_queued = false);
  decision close_now(ending why, std::string_view detail = {});
  void record(ending why, std::string_view detail = {});
  /** The one place where the state changes. */
  void enter(state next) noexcept;

  state state_ = state::http;
  ending ending_ = ending::none;
  std::string detail_;
  token_bucket frames_allowed_;    // --rate-limit / --rate-burst: every frame takes a token
  token_bucket refusals_allowed_;  // --flood-limit, refilled one per second
  bool heard_ = false;             // a frame arrived since the last idle tick
  bool pinged_ = false;            // a ping went out at the last idle tick
  bool shutdown_pending_ = false;  // a shutdown waits for the room (on_shutdown while in a room)
};

}  // namespace roomcast
