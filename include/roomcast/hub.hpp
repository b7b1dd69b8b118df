#pragma once
/** @file
 * The room hub: the registry of rooms and names, and each room's ordered broadcast.
 *
 * Rooms are sharded by number over `hub_options::shards` strands: a shard's strand owns its part
 * of the registry and the state of its rooms, so rooms on different shards run in parallel. A room
 * is an inbox (a bounded Asio channel) drained by the room's own coroutine on its shard's strand:
 * it numbers each event, serializes it once and hands the same frame to every member's outbox with
 * a non-blocking `deliver`; a room of more than `hub_options::fanout_threshold` members posts the
 * frame to its fan-out lanes instead, strands on every thread, each delivering to a fixed part of
 * the members. A sender whose room inbox is full waits in `say`, which is how backpressure
 * reaches its socket.
 */
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>

#include "roomcast/config.hpp"
#include "roomcast/member.hpp"
#include "roomcast/protocol.hpp"

namespace roomcast {

class room;

/** A connection's place in a room, returned by create/join and passed back to say/leave. */
struct membership {
  std::shared_ptr<class room> handle;
  std::uint64_t member_id;
  std::string name;
  /** The connection that holds the seat. After a resume on another connection, the old one's
   * say and leave are ignored: the seat is no longer its own. */
  const member* holder = nullptr;

  /** Members in the room now (read from any thread). */
  std::size_t users() const noexcept;
};

/** What create/join returns: the membership, or the wire code of the refusal. */
using admission = std::variant<membership, wire_code>;

class latency_histogram;

/** A counter that one thread adds to and any thread reads, on a cache line of its own, so that
 * threads counting their own events do not take the line from each other on every event. */
struct alignas(64) shard_counter {
  std::atomic<std::uint64_t> value{0};
};

/** Counters readable from any thread (relaxed; for metrics and tests). */
struct hub_counters {
  explicit hub_counters(std::size_t shards = 1);

  std::atomic<std::size_t> rooms{0};
  std::atomic<std::size_t> members{0};
  std::atomic<std::uint64_t> evictions{0};
  /** Seats kept for a resume after their connection dropped. */
  std::atomic<std::size_t> held_seats{0};
  std::atomic<std::uint64_t> resumes{0};              ///< seats taken back
  std::atomic<std::uint64_t> resumes_unrecovered{0};  ///< of them, with events lost from history
  std::atomic<std::uint64_t> seats_expired{0};        ///< held seats whose grace ran out
  /** Room events serialized once and handed out, counted by each shard on its own strand. */
  std::vector<shard_counter> broadcasts_by_shard;

  std::uint64_t broadcasts() const noexcept;
};

class hub {
 public:
  /** `delivery_latency`, when given, records a message's delivery latency when the room is the
   * last to let go of its frame (normally the last recipient's writer records it). */
  hub(const boost::asio::any_io_executor& executor, const hub_options& options,
      latency_histogram* delivery_latency = nullptr);
  /** Spreads the shards over `executors` round-robin (one per thread: see io_pool). */
  hub(const std::vector<boost::asio::any_io_executor>& executors, const hub_options& options,
      latency_histogram* delivery_latency = nullptr);
  ~hub();
  hub(const hub&) = delete;
  hub& operator=(const hub&) = delete;

  /** Makes room `id` with `who` as its first member; `room_exists` if the number is taken,
   * `too_many_rooms` at --max-rooms (counted over every shard). */
  boost::asio::awaitable<admission> create(room_id id, std::string name,
                                           std::shared_ptr<member> who,
                                           admission_wishes wishes = {});

  /** Adds `who` to room `id`; `no_such_room`, `name_taken` if the name is used there, or
   * `room_full` at --max-members. With `wishes.history`, the newcomer's own frame is followed
   * by the room's recent chat; with `wishes.resume`, it carries a resume token. */
  boost::asio::awaitable<admission> join(room_id id, std::string name, std::shared_ptr<member> who,
                                         admission_wishes wishes = {});

  /** Gives the seat that `request.token` names to `who`: the room sends it a `resume` frame with
   * a new token, then the events after `request.since` (when its history still has them all),
   * then live events. A connection still holding the seat is told `member::replaced`.
   * `invalid_token`, `wrong_room` or `since_ahead` otherwise; nothing changes then. */
  boost::asio::awaitable<admission> resume(const resume_seat& request, std::shared_ptr<member> who);

  /** Queues a chat message; waits while the room's inbox is full. `seat` must stay valid until
   * this completes (the caller owns it). A message from a member the room has since removed is
   * dropped by the room. */
  boost::asio::awaitable<void> say(const membership& seat, std::string text,
                                   frame::clock::time_point arrived = frame::clock::now());

  /** Removes the member: its name is free at once, and the room tells the others (and the leaver,
   * when `reason` is `left`) after every message the member sent before. Idempotent.
   * A member with a resume token whose connection dropped (`disconnected`) keeps its seat for
   * --resume-grace instead, silently, and leaves only if nobody resumes it by then. */
  boost::asio::awaitable<void> leave(membership seat, leave_reason reason);

  /** Server shutdown: each room hands out the events it has already accepted, then tells its
   * members (`member::room_closing`) and ends. New rooms are not listed any more. */
  void shutdown();

  const hub_counters& counters() const noexcept;

 private:
  boost::asio::awaitable<admission> admit(room_event_kind kind, room_id id, std::string name,
                                          std::shared_ptr<member> who, admission_wishes wishes);

  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace roomcast
