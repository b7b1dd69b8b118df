#pragma once
/** @file
 * The seam between a room and its members: what the hub needs of a connection.
 * The WebSocket connection implements it; hub tests implement it with Trompeloeil mocks.
 */
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace roomcast {

/** One serialized server frame, shared read-only by every recipient of a broadcast. */
struct frame {
  using clock = std::chrono::steady_clock;

  explicit frame(std::string text, clock::time_point arrival = {}, std::uint32_t recipients = 0)
      : bytes(std::move(text)), arrived(arrival), writes_left(recipients) {}

  std::string bytes;
  /** When the chat message behind it was read (zero for other frames). */
  clock::time_point arrived;
  /** Recipients that have not written it to their socket yet; the last one measures the
   * delivery latency. Counting only, so it may change inside a const frame. */
  mutable std::atomic<std::uint32_t> writes_left;
};

using shared_frame = std::shared_ptr<const frame>;

/** A frame sent to one connection only (replies, errors). */
inline shared_frame make_frame(std::string text) {
  return std::make_shared<const frame>(std::move(text));
}

/** What became of a frame handed to a member. */
enum class delivery {
  queued,  ///< in the member's outbox
  full,    ///< the outbox is full: the member is a slow consumer
  closed,  ///< the member's connection is ending; its leave is on the way
};

class member {
 public:
  virtual ~member() = default;

  /** Queues `frame` in the member's bounded outbox without waiting. Called on the hub's strand. */
  virtual delivery deliver(const shared_frame& frame) = 0;

  /** The hub has removed this member as a slow consumer: close its connection (1008).
   * Called on the hub's strand; must not block. */
  virtual void evict() = 0;
};

}  // namespace roomcast
