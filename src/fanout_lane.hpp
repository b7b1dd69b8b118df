#pragma once
/** @file
 * A big room's fan-out lane: a part of the room's members, with a strand of its own on one of
 * the threads, that hands the room's frames to them.
 *
 * The room gives each lane everything that concerns its members, in the room's order: events,
 * joins, leaves, the shutdown. A lane keeps them in a queue and works through it in order, one
 * item finished before the next starts, so each member gets the room's events in the order the
 * room numbered them, and a member that leaves still gets every event before its leave. The
 * lanes of one room run on different threads at once; each works in turns of at most `chunk`
 * deliveries, so the other work of its thread (small rooms, reads) never waits for a whole big
 * broadcast, only for one chunk.
 *
 * Internal to the hub (src/hub.cpp); the unit tests drive it through the hub.
 */
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/strand.hpp>

#include "roomcast/member.hpp"

namespace roomcast {

class latency_histogram;

/** A recipient of `sent` let go of it `count` times over (wrote it, or will never write it):
 * whoever brings a chat message's countdown to zero records its delivery latency. */
void release_writes(const frame& sent, std::uint32_t count, latency_histogram* latency);

class fanout_lane : public std::enable_shared_from_this<fanout_lane> {
 public:
  struct seat {
    std::uint64_t member_id;
    std::shared_ptr<member> who;
  };
  /** Told (on the lane's strand) which members it found with a full outbox, ascending ids; the
   * lane hands them nothing more. */
  using slow_report = std::function<void(std::vector<std::uint64_t> member_ids)>;

  /** `caught_up` is called (on the lane's strand) when the lane's backlog falls back to
   * `max_backlog` events: the room, which waits while a lane is behind, may go on. */
  fanout_lane(const boost::asio::any_io_executor& executor, std::size_t chunk,
              std::size_t max_backlog, latency_histogram* latency, slow_report report,
              std::function<void()> caught_up);

  /** The lane's first members, before anything else is given to it (not thread-safe). */
  void fill(std::vector<seat> members);

  // Thread-safe; each takes effect after everything given to the lane before it.
  void add(seat joined);
  void remove(std::vector<std::uint64_t> member_ids);  ///< ascending
  /** `frame` to every member, except `personal` to member `personal_id` (a newcomer's roster),
   * then to `also` (a leaver's acknowledgement: no longer a member, but owed the frame). */
  void hand_out(shared_frame frame, std::uint64_t personal_id = 0, shared_frame personal = {},
                std::shared_ptr<member> also = {});
  /** The server's shutdown: `room_closing()` to every member, then the lane forgets them. */
  void close_all();

  /** More than `max_backlog` events given to it are not handed out yet. Thread-safe. */
  bool behind() const noexcept { return backlog_.load(std::memory_order_acquire) > max_backlog_; }

 private:
  struct event {
    shared_frame frame;
    std::uint64_t personal_id;
    shared_frame personal;
    std::shared_ptr<member> also;
  };
  struct departure {
    std::vector<std::uint64_t> member_ids;
  };
  struct closing {};
  using item = std::variant<event, seat, departure, closing>;

  void give(item next);
  void pump();  // works through the queue for one turn, on the strand
  bool work_on(event& current, std::size_t& budget);  // true when the event is done

  boost::asio::strand<boost::asio::any_io_executor> strand_;
  const std::size_t chunk_;
  const std::size_t max_backlog_;
  latency_histogram* const latency_;
  const slow_report report_;
  const std::function<void()> caught_up_;
  std::atomic<std::size_t> backlog_{0};  // events given, not handed out yet

  // Owned by the strand:
  std::vector<seat> members_;  // ascending ids
  std::deque<item> queue_;
  std::size_t next_ = 0;             // the front event's next recipient
  std::uint32_t undelivered_ = 0;    // the front event's recipients that did not take it
  std::vector<std::uint64_t> slow_;  // the front event's recipients found full
  bool pumping_ = false;
};

}  // namespace roomcast
