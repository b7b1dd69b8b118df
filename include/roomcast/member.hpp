#pragma once
/** @file
 * The seam between a room and its members: what the hub needs of a connection.
 * The WebSocket connection implements it; hub tests implement it with Trompeloeil mocks.
 */
#include <memory>
#include <string>

namespace roomcast {

/** One serialized server frame, shared read-only by every recipient of a broadcast. */
using shared_frame = std::shared_ptr<const std::string>;

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
