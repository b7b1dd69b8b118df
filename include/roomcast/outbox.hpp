#pragma once
/** @file
 * A connection's ordered, bounded queue of outgoing frames, and the fast path around it.
 *
 * A broadcast reaches most recipients while their socket has room: then the frame goes to the
 * kernel at once with one non-blocking send(), from whichever thread delivers it, and nothing is
 * queued, posted or resumed. Only what the socket does not take waits here, for the connection's
 * single writer, which takes everything waiting in one batch and sends it in one gather write.
 * Every frame the server sends to a client, data or control, goes through the same outbox, so the
 * bytes on the wire are in the order the frames were offered.
 *
 * Plain code over a file descriptor (no Asio), guarded by a mutex that is never held across a
 * wait: the unit tests drive it over a socketpair.
 */
#include <atomic>
#include <cstddef>
#include <mutex>
#include <vector>

#include "roomcast/member.hpp"

namespace roomcast {

/** A frame waiting in an outbox; `offset` bytes of it are already on the wire. */
struct pending_frame {
  shared_frame frame;
  std::size_t offset = 0;

  std::size_t remaining() const noexcept { return frame->bytes.size() - offset; }
};

class outbox {
 public:
  /** `fd` is the connected socket, in non-blocking mode. At `limit` queued frames, offers of
   * broadcasts fail (the recipient is a slow consumer). `high_water`, when given, is raised to
   * the largest backlog in bytes this outbox ever had. */
  outbox(int fd, std::size_t limit, std::atomic<std::size_t>* high_water = nullptr) noexcept;

  enum class outcome {
    sent,          ///< all of it is in the kernel's send buffer
    queued,        ///< waiting for the writer, which is already running
    start_writer,  ///< waiting, and the caller must start the writer (it was idle)
    full,          ///< refused: `limit` frames are waiting
    closed,        ///< refused: the outbox is sealed or shut
  };

  /** Sends `frame` now if nothing is waiting and no write is in progress, else queues it.
   * `beyond_limit` admits it even when full (the connection's own replies, which are bounded by
   * the reader waiting, see wait_for_room). Thread-safe. */
  outcome offer(const shared_frame& frame, bool beyond_limit = false);

  /** Queues `frame` (a close frame) as the last one: after it every offer is refused. Frames
   * already waiting go first, unless drop_waiting was called. Thread-safe. */
  outcome offer_last(const shared_frame& frame);

  /** Discards waiting frames that have not started on the wire (eviction: they would only delay
   * the close). Returns how many were dropped. Thread-safe. */
  std::size_t drop_waiting();

  /** For the writer: moves every waiting frame to `batch` (cleared first) and returns true, or,
   * when nothing waits, marks the writer idle and returns false. Thread-safe. */
  bool take(std::vector<pending_frame>& batch);

  /** The fd is about to be closed: no send touches it after this returns. Thread-safe. */
  void shut();

  /** Nothing waiting and no writer running. Thread-safe. */
  bool idle() const;

  /** Whether queue-side offers are still accepted (own replies wait for room while false). */
  bool has_room() const;

 private:
  outcome queue_locked(const shared_frame& frame, std::size_t offset);

  mutable std::mutex mutex_;
  int fd_;  // -1 once shut
  const std::size_t limit_;
  std::atomic<std::size_t>* const high_water_;
  std::vector<pending_frame> waiting_;  // released when drained: an idle outbox holds no memory
  std::size_t waiting_bytes_ = 0;
  bool writer_running_ = false;
  bool sealed_ = false;
};

}  // namespace roomcast
