#pragma once
/** @file
 * The plain half of cluster mode (docs/cluster.md): the Redis key layout, the Lua scripts, and
 * the decoding of what they return and publish. No Asio and no sockets: unit-tested with bytes
 * (tests/unit/cluster_codec_test.cpp). src/cluster.cpp runs the scripts and delivers the events.
 */
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "roomcast/protocol.hpp"
#include "roomcast/resp.hpp"

namespace roomcast::cluster_codec {

/** The scripts, one per room event, and the node's heartbeat (which also reaps silent nodes). */
enum class script { create, join, say, leave, heartbeat, resume };
inline constexpr std::size_t script_count = 6;

/** The Lua text of `which` (a shared prelude, then its body). */
std::string_view script_text(script which);

/** `rc:{r:N}:meta`, `rc:{r:N}:names`, `rc:{r:N}:roster`: a room's keys share the hash tag
 * `{r:N}`, so that in Redis Cluster they and the channel land in one slot. */
std::string room_key(std::uint16_t room, std::string_view part);
/** `rc:{r:N}:ev`: where the room's events are published. */
std::string room_channel(std::uint16_t room);
/** `rc:node:ID:m`: the members a node holds (owner -> "N:name"), what a reaper makes leave. */
std::string node_members_key(std::string_view node_id);
/** `rc:node:ID`: the node's own channel, for the subscription probe. */
std::string node_channel(std::string_view node_id);

/** One room event as a script published it. */
struct event {
  room_event_kind kind = room_event_kind::message;
  std::uint16_t room = 0;
  bool room_as_number = true;  ///< the creator wrote roomId as a JSON number
  std::string name;
  std::string text;  ///< chat text (message only)
  std::size_t users = 0;
  std::uint64_t seq = 0;
  std::int64_t id = 0;
  std::string owner;  ///< "node:member" (create, join, leave)
  leave_reason reason = leave_reason::left;
  std::vector<std::string> members;  ///< the roster after a create/join, in joining order
  std::string epoch;                 ///< the room's epoch (create/join), for the newcomer's frame
};

/** Reads a published event; nullopt for anything that is not one (logged by the caller). */
std::optional<event> decode_event(std::string_view payload) noexcept;

/** The frame every member gets for `e`; `with_roster` adds `members` and the room's `epoch` (the
 * newcomer's own copy), and `token` when not empty. The same bytes as the single-node hub sends
 * for the same event. */
std::string event_frame(const event& e, bool with_roster, std::string_view token = {});

/** What a create/join script answered: `ok`, a refusal (5001..5005), or `unavailable` for a
 * reply that is not one of those (an error reply, a wrong shape). */
wire_code decode_admission(const redis::reply& r) noexcept;
/** The chat events after the code in a join script's answer (its newcomer's history, as
 * published, oldest first). */
std::vector<std::string> admission_history(const redis::reply& r);

/** `rc:tok:<index>`: where a resume token's seat is kept (`index`: the token's 8-byte lookup
 * index, in 16 hex digits). */
std::string token_key(std::uint64_t index);
std::string token_index(std::uint64_t index);

/** What the resume script answered. */
struct resumed {
  wire_code code = wire_code::unavailable;  ///< ok, invalid_token, wrong_room, since_ahead
  std::string name;
  bool room_as_number = true;
  std::size_t users = 0;
  std::uint64_t last = 0;
  std::string epoch;
  bool recovered = false;
  std::vector<std::string> roster;
  std::vector<std::string> missed;  ///< the events after `since`, as published
};
/** nullopt for a reply of another shape. */
std::optional<resumed> decode_resume(const redis::reply& r);

/** The resume script's notice that a seat changed owner (published on the old owner's node
 * channel): the room and the old owner; nullopt for anything else. */
std::optional<std::pair<std::uint16_t, std::string>> decode_moved(std::string_view payload);

/** What the heartbeat script answered. */
struct heartbeat {
  bool reaped_me = false;    ///< another node took this one for dead and made its members leave
  long long reaped = 0;      ///< members this call made leave (of silent nodes)
  long long live_nodes = 0;  ///< nodes in the heartbeat set after it
};
std::optional<heartbeat> decode_heartbeat(const redis::reply& r) noexcept;

/** The `run_id` line of `INFO server` (a new one: Redis restarted, or a failover). */
std::optional<std::string> run_id_of(std::string_view info);

}  // namespace roomcast::cluster_codec
