// The Lua scripts of cluster mode, in one place (docs/cluster.md, "Scripts"). Each room event is
// one script: Redis runs scripts one at a time, so a script's checks, its writes and its PUBLISH
// are atomic, and every subscriber receives a room's events in the order the scripts ran. A
// script that fails halfway is not rolled back, so each one checks everything before it writes.
//
// The key layout (`rc:{r:N}:...`) is documented in cluster_codec.hpp; N is the room number in
// decimal without leading zeros. Published events are JSON objects with short keys, decoded by
// cluster_codec::decode_event: k kind, r room, f form ("n": roomId was a number, "s": a string),
// n name, t text, u users, s seq, i id, o owner, w reason, m roster.
#include <array>

#include "roomcast/cluster_codec.hpp"

namespace roomcast::cluster_codec {
namespace {

// Shared by every script. TIME is the one clock of every node; Redis 7 replicates a script's
// effects, not the script, so reading it before writing is allowed.
constexpr std::string_view prelude = R"lua(
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function room_keys(n)
  local tag = 'rc:{r:' .. n .. '}:'
  return tag .. 'meta', tag .. 'names', tag .. 'roster', tag .. 'ev'
end
-- The room's next seq (gapless) and id (Redis time in ms, strictly increasing in the room).
local function next_event(meta)
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  local id = math.max(now_ms(), tonumber(redis.call('HGET', meta, 'last')) + 1)
  redis.call('HSET', meta, 'last', id)
  return seq, id
end
-- Makes `owner` leave room n when it still holds `name` there: 1 when it did (and the event is
-- published), 0 when it did not (left already, reaped, or the room is gone). The last member's
-- leave deletes the room, so that its number is free at once.
local function leave(n, name, owner, reason, node_members)
  local meta, names, roster, channel = room_keys(n)
  if redis.call('HGET', names, name) ~= owner then return 0 end
  redis.call('HDEL', names, name)
  redis.call('ZREM', roster, name)
  redis.call('HDEL', node_members, owner)
  local users = redis.call('HLEN', names)
  local seq, id = next_event(meta)
  local form = redis.call('HGET', meta, 'form')
  redis.call('PUBLISH', channel, cjson.encode({k = 'leave', r = tonumber(n), f = form, n = name,
    u = users, s = seq, i = id, o = owner, w = reason}))
  if users == 0 then
    redis.call('DEL', meta, names, roster)
    redis.call('SREM', 'rc:rooms', n)
  end
  return 1
end
)lua";

// ARGV: room, form, name, owner, max rooms, the node's members key. {0}, or {5001} / {5005}.
constexpr std::string_view create_body = R"lua(
local n, form, name, owner = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local meta, names, roster, channel = room_keys(n)
if redis.call('EXISTS', meta) == 1 then return {5001} end
if redis.call('SCARD', 'rc:rooms') >= tonumber(ARGV[5]) then return {5005} end
local id = now_ms()
redis.call('HSET', meta, 'seq', 1, 'last', id, 'form', form)
redis.call('HSET', names, name, owner)
redis.call('ZADD', roster, 1, name)
redis.call('SADD', 'rc:rooms', n)
redis.call('HSET', ARGV[6], owner, n .. ':' .. name)
redis.call('PUBLISH', channel, cjson.encode({k = 'create', r = tonumber(n), f = form, n = name,
  u = 1, s = 1, i = id, o = owner, m = {name}}))
return {0}
)lua";

// ARGV: room, name, owner, max members, the node's members key. {0}, or {5004} / {5002} / {5003}
// (checked in the single-node hub's order).
constexpr std::string_view join_body = R"lua(
local n, name, owner = ARGV[1], ARGV[2], ARGV[3]
local meta, names, roster, channel = room_keys(n)
if redis.call('EXISTS', meta) == 0 then return {5004} end
if redis.call('HEXISTS', names, name) == 1 then return {5002} end
if redis.call('HLEN', names) >= tonumber(ARGV[4]) then return {5003} end
local seq, id = next_event(meta)
redis.call('HSET', names, name, owner)
redis.call('ZADD', roster, seq, name)
redis.call('HSET', ARGV[5], owner, n .. ':' .. name)
redis.call('PUBLISH', channel, cjson.encode({k = 'join', r = tonumber(n),
  f = redis.call('HGET', meta, 'form'), n = name, u = redis.call('HLEN', names), s = seq, i = id,
  o = owner, m = redis.call('ZRANGE', roster, 0, -1)}))
return {0}
)lua";

// ARGV: room, name, owner, text. 1 when published; 0 when `owner` no longer holds the name (a
// member reaped or evicted meanwhile: its late message is dropped, as the hub drops it).
constexpr std::string_view say_body = R"lua(
local n, name = ARGV[1], ARGV[2]
local meta, names, roster, channel = room_keys(n)
if redis.call('HGET', names, name) ~= ARGV[3] then return 0 end
local seq, id = next_event(meta)
redis.call('PUBLISH', channel, cjson.encode({k = 'message', r = tonumber(n),
  f = redis.call('HGET', meta, 'form'), n = name, t = ARGV[4], u = redis.call('HLEN', names),
  s = seq, i = id}))
return 1
)lua";

// ARGV: room, name, owner, reason, the node's members key. 1 or 0 (see leave above).
constexpr std::string_view leave_body = R"lua(
return leave(ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
)lua";

// ARGV: node id, node timeout (ms), "1" on the node's first beat (after a start or a reset).
// Records the beat in Redis time, then makes the members of every node silent for longer than the
// timeout leave (reason disconnected) in this one script, so that two reapers cannot both make a
// member leave. A node that is not in the set although it has beaten before was reaped: it is told
// so ({1, ...}) and not re-added; it closes its clients and beats again as new. On a first beat
// the node's own leftovers (a previous run with the same --node-id) leave too.
// Returns {reaped me (0/1), members made to leave, live nodes}.
constexpr std::string_view heartbeat_body = R"lua(
local nodes, me = 'rc:nodes', ARGV[1]
local now = now_ms()
if ARGV[3] ~= '1' and not redis.call('ZSCORE', nodes, me) then
  return {1, 0, redis.call('ZCARD', nodes)}
end
local function reap(node)
  local key = 'rc:node:' .. node .. ':m'
  local members = redis.call('HGETALL', key)
  local count = 0
  for i = 1, #members, 2 do
    local where = members[i + 1]
    local colon = string.find(where, ':', 1, true)
    count = count + leave(string.sub(where, 1, colon - 1), string.sub(where, colon + 1),
      members[i], 'disconnected', key)
  end
  redis.call('DEL', key)
  return count
end
local reaped = 0
if ARGV[3] == '1' then reaped = reaped + reap(me) end
redis.call('ZADD', nodes, now, me)
for _, node in ipairs(redis.call('ZRANGEBYSCORE', nodes, '-inf', now - tonumber(ARGV[2]))) do
  if node ~= me then
    reaped = reaped + reap(node)
    redis.call('ZREM', nodes, node)
  end
end
return {0, reaped, redis.call('ZCARD', nodes)}
)lua";

std::string assemble(std::string_view body) {
  std::string text(prelude);
  text += body;
  return text;
}

}  // namespace

std::string_view script_text(script which) {
  static const std::array<std::string, script_count> texts = {
      assemble(create_body), assemble(join_body), assemble(say_body), assemble(leave_body),
      assemble(heartbeat_body)};
  return texts[static_cast<std::size_t>(which)];
}

}  // namespace roomcast::cluster_codec
