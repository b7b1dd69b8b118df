#pragma once
/** @file
 * Cluster mode (docs/cluster.md): rooms span every roomcast node connected to one Redis, with the
 * single-node semantics of docs/protocol.md. A node runs one Lua script per room event (create,
 * join, say, leave: cluster_codec.hpp), which checks, numbers and publishes the event atomically;
 * it delivers to its own members only what comes back on its subscription to the room's channel,
 * so every member on every node sees one order. It heartbeats, reaps the members of silent nodes,
 * probes its subscription, and resynchronises after losing Redis (closing with 1012 the clients
 * of rooms whose events it may have missed).
 *
 * The session calls create/join/say/leave from its own strand, as it calls the hub in single-node
 * mode; everything the node knows about its rooms lives on one strand (its subscriber's).
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

struct cluster_metrics;
class cluster_room;

/** A connection's place in a room in cluster mode, returned by create/join. */
struct cluster_seat {
  std::shared_ptr<cluster_room> room;
  std::uint64_t member_id = 0;
  std::string owner;  ///< "node:member": who holds the name in Redis
  std::string name;
  bool resumable = false;  ///< has a resume token: a dropped connection holds the seat

  /** Members of the room cluster-wide, as of the last event this node received. */
  std::size_t users() const noexcept;
};

/** The seat, or the wire code of the refusal (5006 `unavailable` when Redis cannot be reached). */
using cluster_admission = std::variant<cluster_seat, wire_code>;

class cluster_node {
 public:
  /** `events`: the executor whose strand owns the node's rooms and subscription; `commands`:
   * the command connection's. The limits are the hub's (--max-rooms, --max-members), applied
   * cluster-wide. Nothing is connected before start(). */
  cluster_node(const boost::asio::any_io_executor& events,
               const boost::asio::any_io_executor& commands, const cluster_options& options,
               const hub_options& limits, cluster_metrics& metrics);
  /** stop(). */
  ~cluster_node();
  cluster_node(const cluster_node&) = delete;
  cluster_node& operator=(const cluster_node&) = delete;

  /** Connects to Redis (in the background, retrying with backoff) and keeps the node in sync. */
  void start();
  /** Server shutdown: each member is told its room is closing (after every event received before
   * it), so that its connection closes with 1001; their leaves then reach the other nodes.
   * Admissions are refused from now on, and seats held for a resume leave now. Thread-safe. */
  void shutdown();
  /** Ends every loop and closes both Redis connections, so that the io_contexts run out of work,
   * once the leaves of the held seats that shutdown() released are sent (each within the command
   * timeout). Thread-safe; call it once the connections are gone. */
  void stop();

  /** Connected to Redis and in sync: what /readyz reports. Thread-safe. */
  bool ready() const noexcept;
  const std::string& node_id() const noexcept;
  /** Commands sent to Redis and not answered yet, for /metrics. Thread-safe. */
  std::size_t in_flight() const noexcept;

  /** With `wishes.history`, a joiner's own frame is followed by the room's recent chat (the
   * room's stream in Redis), then live events. */
  boost::asio::awaitable<cluster_admission> create(room_id id, std::string name,
                                                   std::shared_ptr<member> who,
                                                   admission_wishes wishes = {});
  boost::asio::awaitable<cluster_admission> join(room_id id, std::string name,
                                                 std::shared_ptr<member> who,
                                                 admission_wishes wishes = {});
  /** Takes back the seat `request.token` names, on any node, for `who`: it gets a `resume` frame
   * with the next token and the events after `request.since` (when the room's stream still has
   * them all), then live events; an old connection still open elsewhere is closed with 4100.
   * `invalid_token`, `wrong_room`, `since_ahead` (nothing changed), or `unavailable`. */
  boost::asio::awaitable<cluster_admission> resume(resume_seat request,
                                                   std::shared_ptr<member> who);
  /** Publishes a chat message; waits while the node has its bound of commands in flight.
   * `ok`, or `unavailable` (nothing was published). */
  boost::asio::awaitable<wire_code> say(const cluster_seat& seat, std::string text);
  /** Leaves the room (idempotent: a member reaped or evicted meanwhile is gone already). When
   * Redis cannot be reached, the leave is retried once it is back. */
  boost::asio::awaitable<void> leave(cluster_seat seat, leave_reason reason);

 private:
  struct state;
  std::shared_ptr<state> state_;
};

}  // namespace roomcast
