// The Lua scripts of cluster mode, in one place (docs/cluster.md, "Scripts"). Each room event is
// one script: Redis runs scripts one at a time, so a script's checks, its writes and its PUBLISH
// are atomic, and every subscriber receives a room's events in the order the scripts ran. A
// script that fails halfway is not rolled back, so each one checks everything before it writes.
//
// The key layout (`rc:{r:N}:...`) is documented in cluster_codec.hpp; N is the room number in
// decimal without leading zeros. Published events are JSON objects with short keys, decoded by
// cluster_codec::decode_event: k kind, r room, f form ("n": roomId was a number, "s": a string),
// n name, t text, u users, s seq, i id, o owner, w reason, m roster, e epoch (create/join).
//
// History (--history, stored in the room's meta as `h` by its create): every script that
// publishes an event also appends the same JSON to the capped stream `rc:{r:N}:h` with the id
// `<seq>-1` (fields k kind, e event), so a newcomer's history and a resume's missed events are
// exactly what was published. The stream is deleted with the room.
//
// Resume tokens: `rc:tok:<index>` (index: the token's first 8 bytes in hex) is a hash r room,
// n name, o owner, h SHA1 of the whole token (Redis never holds a usable token); the room's
// `rc:{r:N}:tok` maps name -> index, so that the member's leave deletes its token.
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
  return tag .. 'meta', tag .. 'names', tag .. 'roster', tag .. 'ev', tag .. 'h'
end
-- Publishes the room's event `json` (of kind `kind`, numbered `seq`) and, when the room keeps a
-- history (meta `h` > 0), appends it to the room's stream, capped at `h` events.
local function emit(n, seq, kind, json)
  local meta, names, roster, channel, stream = room_keys(n)
  local keep = tonumber(redis.call('HGET', meta, 'h') or '0')
  if keep > 0 then
    redis.call('XADD', stream, 'MAXLEN', keep, string.format('%d-1', seq), 'k', kind, 'e', json)
  end
  redis.call('PUBLISH', channel, json)
end
-- The room's next seq (gapless) and id (Redis time in ms, strictly increasing in the room).
local function next_event(meta)
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  local id = math.max(now_ms(), tonumber(redis.call('HGET', meta, 'last')) + 1)
  redis.call('HSET', meta, 'last', id)
  return seq, id
end
-- Gives `name` in room n the token `text` with index `index` (nothing when index is empty).
local function issue_token(n, name, owner, index, text)
  if index == '' then return end
  redis.call('HSET', 'rc:tok:' .. index, 'r', n, 'n', name, 'o', owner, 'h', redis.sha1hex(text))
  redis.call('HSET', 'rc:{r:' .. n .. '}:tok', name, index)
end
-- Deletes the token of `name` in room n, if it has one.
local function revoke_token(n, name)
  local tokens = 'rc:{r:' .. n .. '}:tok'
  local index = redis.call('HGET', tokens, name)
  if index then
    redis.call('DEL', 'rc:tok:' .. index)
    redis.call('HDEL', tokens, name)
  end
end
-- Makes `owner` leave room n when it still holds `name` there: 1 when it did (and the event is
-- published), 0 when it did not (left already, reaped, or the room is gone). The last member's
-- leave deletes the room, so that its number is free at once.
local function leave(n, name, owner, reason, node_members)
  local meta, names, roster, channel, stream = room_keys(n)
  if redis.call('HGET', names, name) ~= owner then return 0 end
  redis.call('HDEL', names, name)
  redis.call('ZREM', roster, name)
  redis.call('HDEL', node_members, owner)
  revoke_token(n, name)
  local users = redis.call('HLEN', names)
  local seq, id = next_event(meta)
  local form = redis.call('HGET', meta, 'form')
  emit(n, seq, 'leave', cjson.encode({k = 'leave', r = tonumber(n), f = form, n = name,
    u = users, s = seq, i = id, o = owner, w = reason}))
  if users == 0 then
    redis.call('DEL', meta, names, roster, stream, 'rc:{r:' .. n .. '}:tok')
    redis.call('SREM', 'rc:rooms', n)
  end
  return 1
end
)lua";

// ARGV: room, form, name, owner, max rooms, the node's members key, history (events the room
// keeps: the creating node's --history), epoch (random, new for each creation), resume token
// index and text ("" and "": none).
// {0}, or {5001} / {5005}.
constexpr std::string_view create_body = R"lua(
local n, form, name, owner = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local meta, names, roster, channel, stream = room_keys(n)
if redis.call('EXISTS', meta) == 1 then return {5001} end
if redis.call('SCARD', 'rc:rooms') >= tonumber(ARGV[5]) then return {5005} end
local id = now_ms()
redis.call('DEL', stream)
redis.call('HSET', meta, 'seq', 1, 'last', id, 'form', form, 'h', tonumber(ARGV[7]), 'ep', ARGV[8])
redis.call('HSET', names, name, owner)
redis.call('ZADD', roster, 1, name)
redis.call('SADD', 'rc:rooms', n)
redis.call('HSET', ARGV[6], owner, n .. ':' .. name)
issue_token(n, name, owner, ARGV[9], ARGV[10])
emit(n, 1, 'create', cjson.encode({k = 'create', r = tonumber(n), f = form, n = name,
  u = 1, s = 1, i = id, o = owner, m = {name}, e = ARGV[8]}))
return {0}
)lua";

// ARGV: room, name, owner, max members, the node's members key, "1" when the newcomer asked for
// the room's recent chat, resume token index and text ("" and "": none). {0, chat...}: the chat
// events (as published, oldest first) the room's history holds from before this join, when asked;
// or {5004} / {5002} / {5003} (checked in the single-node hub's order).
constexpr std::string_view join_body = R"lua(
local n, name, owner = ARGV[1], ARGV[2], ARGV[3]
local meta, names, roster, channel, stream = room_keys(n)
if redis.call('EXISTS', meta) == 0 then return {5004} end
if redis.call('HEXISTS', names, name) == 1 then return {5002} end
if redis.call('HLEN', names) >= tonumber(ARGV[4]) then return {5003} end
local out = {0}
if ARGV[6] == '1' then
  for _, entry in ipairs(redis.call('XRANGE', stream, '-', '+')) do
    local fields = entry[2]
    if fields[2] == 'message' then out[#out + 1] = fields[4] end
  end
end
local seq, id = next_event(meta)
redis.call('HSET', names, name, owner)
redis.call('ZADD', roster, seq, name)
redis.call('HSET', ARGV[5], owner, n .. ':' .. name)
issue_token(n, name, owner, ARGV[7], ARGV[8])
emit(n, seq, 'join', cjson.encode({k = 'join', r = tonumber(n),
  f = redis.call('HGET', meta, 'form'), n = name, u = redis.call('HLEN', names), s = seq, i = id,
  o = owner, m = redis.call('ZRANGE', roster, 0, -1), e = redis.call('HGET', meta, 'ep')}))
return out
)lua";

// ARGV: room, name, owner, text. 1 when published; 0 when `owner` no longer holds the name (a
// member reaped or evicted meanwhile: its late message is dropped, as the hub drops it).
constexpr std::string_view say_body = R"lua(
local n, name = ARGV[1], ARGV[2]
local meta, names = room_keys(n)
if redis.call('HGET', names, name) ~= ARGV[3] then return 0 end
local seq, id = next_event(meta)
emit(n, seq, 'message', cjson.encode({k = 'message', r = tonumber(n),
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

// ARGV: token index, token text, since, the frame's room ("" when it names none), the new owner,
// the new owner's node members key, the next token's index and text.
// Checks the token (its SHA1: 4010 when unknown, or its member left: the name is no longer its
// owner's), the room (4011), since <= the room's seq (4012), then moves the seat to the new
// owner (names, the node members hashes, the token) without a room event, and publishes
// {k = 'moved', r, o = old owner} on the old owner's node channel (rc:node:ID, which that node
// always listens to), so that it ends its hold of the seat or closes the old connection (4100).
// Returns {4010} / {4011} / {4012}, or {0, name, form, users, last seq, epoch, recovered (0/1),
// roster, missed event...}: the events after `since` from the room's stream, when it still holds
// all of them (else none).
constexpr std::string_view resume_body = R"lua(
local key = 'rc:tok:' .. ARGV[1]
local tok = redis.call('HMGET', key, 'r', 'n', 'o', 'h')
local n, name, old = tok[1], tok[2], tok[3]
if not n or tok[4] ~= redis.sha1hex(ARGV[2]) then return {4010} end
local meta, names, roster, channel, stream = room_keys(n)
if redis.call('HGET', names, name) ~= old then return {4010} end
if ARGV[4] ~= '' and ARGV[4] ~= n then return {4011} end
local last = tonumber(redis.call('HGET', meta, 'seq'))
local since = tonumber(ARGV[3])
if since > last then return {4012} end
local missed = {}
local recovered = 1
if since < last then
  missed = redis.call('XRANGE', stream, string.format('%d-1', since + 1), '+')
  if #missed ~= last - since then
    missed = {}
    recovered = 0
  end
end
local owner = ARGV[5]
redis.call('HSET', names, name, owner)
local colon = string.find(old, ':', 1, true)
redis.call('HDEL', 'rc:node:' .. string.sub(old, 1, colon - 1) .. ':m', old)
redis.call('HSET', ARGV[6], owner, n .. ':' .. name)
revoke_token(n, name)
issue_token(n, name, owner, ARGV[7], ARGV[8])
redis.call('PUBLISH', 'rc:node:' .. string.sub(old, 1, colon - 1),
  cjson.encode({k = 'moved', r = tonumber(n), o = old}))
local out = {0, name, redis.call('HGET', meta, 'form'), redis.call('HLEN', names), last,
  redis.call('HGET', meta, 'ep') or '', recovered, redis.call('ZRANGE', roster, 0, -1)}
for _, entry in ipairs(missed) do out[#out + 1] = entry[2][4] end
return out
)lua";

std::string assemble(std::string_view body) {
  std::string text(prelude);
  text += body;
  return text;
}

}  // namespace

std::string_view script_text(script which) {
  static const std::array<std::string, script_count> texts = {
      assemble(create_body), assemble(join_body),      assemble(say_body),
      assemble(leave_body),  assemble(heartbeat_body), assemble(resume_body)};
  return texts[static_cast<std::size_t>(which)];
}

}  // namespace roomcast::cluster_codec
