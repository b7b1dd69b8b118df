#pragma once
/** @file
 * RFC 6455 framing for the server side of a WebSocket, without sockets (std only, no Asio/Beast).
 *
 * Why: after Beast has done the HTTP upgrade, the session reads and writes frames itself, so that
 * a room's broadcast is encoded once and the same bytes go to every member, and several queued
 * frames leave in one gather write. Encoding is free functions; decoding is `frame_reader`, which
 * parses frames from the front of a buffer the caller owns (sans-io, like protocol.hpp), enforcing
 * every rule a server must (masking, lengths, fragmentation, close codes, UTF-8) and the message
 * size limit before a payload is buffered.
 */
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace roomcast::ws {

/** Frame opcodes (RFC 6455, 5.2). The other values are reserved and refused with 1002. */
enum class opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

/** The close codes the server sends or reads (RFC 6455, 7.4.1), named once for both directions. */
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;
/** Never on the wire: what `frame_reader` reports for a close frame without a code. */
inline constexpr std::uint16_t no_status = 1005;
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t policy_violation = 1008;
inline constexpr std::uint16_t too_big = 1009;
/** Cluster mode: the node lost track of its room (Redis restarted, events missed, the node was
 * reaped); the client should reconnect and join again. */
inline constexpr std::uint16_t service_restart = 1012;
/** roomcast's own (4000–4999 are for applications): another connection resumed this one's seat
 * with its resume token; the client must not reconnect. */
inline constexpr std::uint16_t replaced = 4100;
}  // namespace close_code

/** Whether `code` may appear in a close frame: 1000–1003, 1007–1014 and 3000–4999. The rest is
 * unused (< 1000, ≥ 5000), reserved for local use only (1004–1006, 1015) or unassigned
 * (1016–2999); a peer that sends one gets 1002. */
bool is_valid_close_code(std::uint16_t code) noexcept;

/** Control frames (close, ping, pong) carry at most this many payload bytes (RFC 6455, 5.5). */
inline constexpr std::size_t max_control_payload = 125;

/** A whole unfragmented (FIN set), unmasked server frame, header and payload, in one allocation:
 * the form a broadcast is encoded in once and shared by every recipient. The header takes the
 * shortest length form for the payload (2, 4 or 10 bytes). Control frames must keep to 125 bytes.
 */
std::string encode_frame(opcode op, std::string_view payload);

/** A whole close frame: `code` then `reason`, the reason cut (at a UTF-8 character boundary, so
 * the peer does not refuse it) to fit the 125-byte control payload. `close_code::no_status`
 * gives a close frame without a body, since 1005 itself must not be sent. */
std::string encode_close(std::uint16_t code, std::string_view reason);

/** An incremental UTF-8 validator: text messages arrive in fragments, and a character may be
 * split between two of them, so validation keeps its place across calls. Refuses what RFC 3629
 * refuses: overlong forms, surrogates (U+D800–U+DFFF), code points above U+10FFFF, stray
 * continuation bytes and the bytes C0, C1, F5–FF. ASCII is checked 8 bytes at a time. */
class utf8_validator {
 public:
  /** Checks the next bytes; false at the first invalid byte, and from then on until `reset()`. */
  bool feed(std::string_view bytes) noexcept;
  /** True when everything fed so far is valid and does not end inside a character: what the end
   * of a text message requires. */
  bool complete() const noexcept { return need_ == 0 && !failed_; }
  /** Forgets everything fed: ready for a new message. */
  void reset() noexcept { *this = utf8_validator{}; }

 private:
  std::uint8_t need_ = 0;  // continuation bytes still expected for the current character
  // The range allowed for the next continuation byte. It is narrower than 80..BF only right after
  // the lead bytes E0, ED, F0 and F4: that is what rules out overlong forms, surrogates and code
  // points above U+10FFFF.
  std::uint8_t low_ = 0x80;
  std::uint8_t high_ = 0xBF;
  bool failed_ = false;
};

/** Parses client-to-server frames from the front of a buffer the caller owns, one connection's
 * worth of state (a message in progress). The caller's read loop stays simple:
 *
 *     for (;;) {
 *       auto r = reader.next(buffer);
 *       buffer.consume(r.consumed);
 *       if (r.what == result::kind::need_more) break;  // read more, then call next() again
 *       ...  // handle r; r.payload stays valid until the next call to next()
 *     }
 *
 * Payloads are unmasked in place. An unfragmented text frame (the common case) is reported as a
 * view into the caller's buffer without copying or allocating; only a fragmented text message is
 * assembled, in a buffer bounded by `max_message` and released once the message is handed over.
 * One per connection, used only on that connection's strand (no internal synchronisation).
 */
class frame_reader {
 public:
  /** `max_message`: the largest message payload accepted (all fragments together, like Beast's
   * `read_message_max`); a larger one is refused with 1009 as soon as a frame header says so,
   * so the caller never buffers an oversized payload. */
  explicit frame_reader(std::size_t max_message) noexcept : max_message_(max_message) {}

  struct result {
    /** One report per frame (a `text` that ends a fragmented message reports its last frame):
     * the caller sees, and can count, every frame the client sends. `fragment` is a frame of a
     * fragmented message that does not complete a text message (a text fragment taken into the
     * message being assembled, or any frame of a binary message after its first); there is
     * nothing to act on, only its cost. */
    enum class kind : std::uint8_t { need_more, text, binary, ping, pong, close, fail, fragment };
    kind what = kind::need_more;
    /** Bytes at the front of `data` the caller must now drop: the frame this call used up (0 with
     * `need_more` and `fail`). */
    std::size_t consumed = 0;
    /** text: the whole message; binary: the payload of its first frame; ping/pong: the payload;
     * close: the reason; fragment: empty. It points into `data` or into the reader's own buffer,
     * and stays valid until the next call, provided dropping `consumed` bytes does not move the
     * rest (as with beast::flat_buffer::consume); otherwise handle it before dropping them. */
    std::string_view payload;
    /** close: the peer's code (1005 when the frame had none); fail: the close code to send the
     * peer: 1002 (protocol violation), 1007 (text that is not UTF-8) or 1009 (message too big). */
    std::uint16_t code = 0;
  };

  /** Reads the frame at the front of `data` (unmasking it in place) and reports it: a complete
   * message, a control frame, a fragment, a failure, or need_more when the frame at the front is
   * incomplete. Fragments of a text message are taken into the message being assembled (and
   * dropped through `consumed`); control frames between fragments are reported while the
   * message is kept. A binary message is reported at its first frame (the server refuses binary;
   * its later frames are reported as fragments). After `fail` the reader answers `fail` again:
   * the connection is over. Checks a header as soon as its bytes are there, in order, so the
   * answer does not depend on how the input was split. */
  result next(std::span<char> data) noexcept;

  /** Payload bytes of the fragmented text message being assembled. */
  std::size_t buffered() const noexcept { return fragments_.size(); }
  /** Heap bytes the reader holds: 0 when idle (for tests of the memory rule). */
  std::size_t capacity() const noexcept { return fragments_.capacity(); }
  /** The assembly buffer: the text message in progress, or the one just reported until the next
   * call (for tests and the fuzz target, which check where payloads point). */
  std::string_view assembly() const noexcept { return {fragments_.data(), fragments_.size()}; }
  std::size_t max_message() const noexcept { return max_message_; }

 private:
  struct frame_header;
  enum class message : std::uint8_t { none, text, binary };

  bool parse_header(std::span<const char> data, frame_header& header, result& out) const noexcept;
  result read_close(std::string_view body, std::size_t consumed) noexcept;
  bool append(std::string_view bytes) noexcept;
  result fail(std::uint16_t code) noexcept;
  void release() noexcept;

  std::size_t max_message_;
  std::vector<char> fragments_;      // the text message being assembled; empty capacity when idle
  std::size_t message_size_ = 0;     // payload bytes of the message in progress (text or binary)
  utf8_validator utf8_;              // the text message in progress, fragment by fragment
  message message_ = message::none;  // the kind of fragmented message in progress
  bool release_pending_ = false;     // fragments_ holds a message reported by the last call
  std::uint16_t failed_with_ = 0;    // the close code of the failure, once failed
};

}  // namespace roomcast::ws
