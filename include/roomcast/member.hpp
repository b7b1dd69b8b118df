#pragma once
/** @file
 * The seam between a room and its members: what the hub needs of a connection.
 * The WebSocket connection implements it; hub tests implement it with Trompeloeil mocks.
 */
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "roomcast/ws_codec.hpp"

namespace roomcast {

/** One server frame, encoded for the wire once and shared read-only by every recipient of a
 * broadcast: server frames are not masked, so the same bytes serve every connection. */
struct frame {
  using clock = std::chrono::steady_clock;

  /** A text frame carrying `json`. */
  explicit frame(std::string_view json, clock::time_point arrival = {},
                 std::uint32_t recipients = 0)
      : bytes(ws::encode_frame(ws::opcode::text, json)),
        payload_offset(bytes.size() - json.size()),
        arrived(arrival),
        writes_left(recipients) {}

  /** A frame already encoded (a control frame: close, pong, ping). */
  struct encoded_tag {};
  frame(encoded_tag, std::string wire) : bytes(std::move(wire)), writes_left(0) {}

  /** What the frame carries (the JSON of a text frame). */
  std::string_view payload() const noexcept {
    return std::string_view(bytes).substr(payload_offset);
  }

  std::string bytes;  ///< the whole WebSocket frame, header included
  std::size_t payload_offset = 0;
  /** When the chat message behind it was read (zero for other frames). */
  clock::time_point arrived;
  /** Recipients that have not written it to their socket yet; the last one measures the
   * delivery latency. Counting only, so it may change inside a const frame. */
  mutable std::atomic<std::uint32_t> writes_left;
};

using shared_frame = std::shared_ptr<const frame>;

/** A frame sent to one connection only (replies, errors). */
inline shared_frame make_frame(std::string_view json) {
  return std::make_shared<const frame>(json);
}

/** A control frame (close, ping, pong), already encoded. */
inline shared_frame make_encoded_frame(std::string wire) {
  return std::make_shared<const frame>(frame::encoded_tag{}, std::move(wire));
}

/** What became of a frame handed to a member. */
enum class delivery {
  queued,  ///< sent, or in the member's outbox
  full,    ///< the outbox is full: the member is a slow consumer
  closed,  ///< the member's connection is ending; its leave is on the way
};

class member {
 public:
  virtual ~member() = default;

  /** Hands `frame` to the member's connection without waiting: it goes to the socket at once or
   * into the bounded outbox. Called on the room's shard strand, or in a big room on the strand
   * of the member's fan-out lane (always the same one while it is in the room). */
  virtual delivery deliver(const shared_frame& frame) = 0;

  /** The hub has removed this member as a slow consumer: close its connection (1008).
   * Called on the room's shard strand; must not block. A big room's lane may still offer it a
   * frame after this (it is refused: the connection is closing). */
  virtual void evict() = 0;
  /** The server is shutting down and the room has ended: every frame the room accepted before
   * has been handed to this member, so its close (1001) can follow them. Called where
   * `deliver` is (the room's shard strand, or the member's lane); must not block. */
  virtual void room_closing() = 0;
  /** Cluster mode: the node lost track of the member's room (Redis restarted, room events were
   * missed, or another node reaped this one), so the connection must close with 1012 and the
   * client join again. Called on the cluster's strand; must not block. The single-node hub never
   * calls it, hence the default. */
  virtual void restart() {}
  /** Another connection has resumed this member's seat (a resume token shown while this
   * connection was still open): this one no longer speaks for the member and must close (4100).
   * Called on the room's shard strand; must not block. */
  virtual void replaced() {}
};

}  // namespace roomcast
