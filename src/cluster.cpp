// Cluster mode: a node's side of rooms that span nodes through Redis (docs/cluster.md).
//
// Everything the node knows about its rooms (which members it holds, the last seq it saw, its
// subscriptions) lives on one strand, the subscriber's, where Redis's messages arrive: an event
// is decoded once, serialized once and handed to each local member's outbox without waiting, as
// a room of the single-node hub does. Scripts run on the command connection (its own strand),
// awaited by whoever needs their answer. One supervising coroutine (run) connects, resyncs,
// heartbeats and probes.
#include "roomcast/cluster.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <random>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "roomcast/cluster_codec.hpp"
#include "roomcast/log.hpp"
#include "roomcast/metrics.hpp"
#include "roomcast/net.hpp"
#include "roomcast/redis.hpp"
#include "roomcast/resume_token.hpp"

namespace roomcast {
namespace {

namespace codec = cluster_codec;
using codec::script;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string random_node_id() {
  std::random_device entropy;
  std::uniform_int_distribution<unsigned> nibble(0, 15);
  std::string id = "node-";
  for (int i = 0; i < 12; ++i)
    id += "0123456789abcdef"[nibble(entropy)];
  return id;
}

redis::endpoint endpoint_of(const std::string& url) {
  auto parsed = redis::parse_url(url);
  if (auto* where = std::get_if<redis::endpoint>(&parsed)) return std::move(*where);
  // config.cpp refuses a bad URL with exit code 2; this is a bug if it happens.
  throw std::invalid_argument("bad Redis URL: " + std::get<std::string>(parsed));
}

redis::client_options client_options_for(milliseconds node_timeout) {
  redis::client_options out;
  // A command must fail well before the node is taken for dead, so that /readyz tells first.
  out.command_timeout = std::clamp(node_timeout / 2, milliseconds(250), milliseconds(2000));
  out.connect_timeout = out.command_timeout;
  return out;
}

// Between the heartbeats (each also a probe of the subscription): a silent node is reaped
// within --node-timeout plus one beat, and a beat is at most half a second.
milliseconds beat_interval(milliseconds node_timeout) {
  return std::clamp(node_timeout / 4, milliseconds(50), milliseconds(500));
}

// 100 ms, doubling to 2 s, with up to half of it again at random so that nodes that lost Redis
// together do not come back in step.
milliseconds backoff(int attempt) {
  thread_local std::minstd_rand random(std::random_device{}());
  const auto base = milliseconds(100) * (1 << std::min(attempt, 5));
  const auto capped = std::min(base, milliseconds(2000));
  std::uniform_int_distribution<long long> jitter(0, capped.count() / 2);
  return capped + milliseconds(jitter(random));
}

// A room's epoch, as the single-node hub makes it: new at each creation of the number.
std::string new_epoch() {
  return resume_token::generate().text().substr(0, 16);
}

// A newcomer's own frame followed by the room's recent chat (published events, oldest first),
// each marked `"history":true`: one outbox entry, so that nothing can come between them.
shared_frame with_history(std::string_view own, const std::vector<std::string>& chat) {
  std::string bytes = ws::encode_frame(ws::opcode::text, own);
  for (const auto& published : chat) {
    const auto e = codec::decode_event(published);
    if (!e) continue;
    bytes += ws::encode_frame(ws::opcode::text, as_history(codec::event_frame(*e, false)));
  }
  return make_encoded_frame(std::move(bytes));
}

}  // namespace

// A room as one node sees it. `users_` is read anywhere; the rest belongs to the node's strand.
class cluster_room {
 public:
  explicit cluster_room(std::uint16_t key) : key_(key), channel_(codec::room_channel(key)) {}

  struct seat {
    std::string owner;
    std::string name;
    std::shared_ptr<member> who;
    // A resumed member got the events up to this seq in its reply: later copies are skipped.
    std::uint64_t skip_through = 0;
  };

  const std::uint16_t key_;
  const std::string channel_;
  std::atomic<std::size_t> users_{0};
  std::vector<seat> members_;  // admitted here, in event order: they get the room's events
  // Admissions whose script may still publish their create/join: the member is added to
  // members_ exactly at its own event, which carries its roster.
  std::unordered_map<std::string, std::shared_ptr<member>> pending_;
  // Newcomers (join) that asked for the recent chat: the join script answers with it on the
  // command connection, the own event comes on the subscription, in either order. Whichever
  // comes first waits here; live events after the own one are held back until both are in.
  struct history_wait {
    std::optional<std::vector<std::string>> chat;  // the script's answer, when it came first
    std::string own;                               // the own frame's JSON, when it came first
    bool arrived = false;                          // the own event came
    std::vector<shared_frame> held;                // later events, held back for it
  };
  std::unordered_map<std::string, history_wait> history_waits_;
  // Resume tokens of pending newcomers, for their own frame.
  std::unordered_map<std::string, std::string> tokens_;
  // Resumes whose script has not answered yet: the events that come meanwhile wait here (the
  // answer says which of them its missed events already hold).
  struct resume_wait {
    std::vector<std::pair<std::uint64_t, shared_frame>> held;
  };
  std::unordered_map<std::string, resume_wait> resuming_;
  std::uint64_t last_seq_ = 0;  // of the last event seen while members_ was not empty
  bool subscribed_ = false;     // confirmed by Redis (a SUBSCRIBE again is harmless)
  bool listed_ = true;          // in state::rooms
};

std::size_t cluster_seat::users() const noexcept {
  return room ? room->users_.load(std::memory_order_relaxed) : 0;
}

struct cluster_node::state : std::enable_shared_from_this<cluster_node::state> {
  state(const net::any_io_executor& events, const net::any_io_executor& commands,
        const cluster_options& options, const hub_options& limits, cluster_metrics& counters)
      : node_id(options.node_id.empty() ? random_node_id() : options.node_id),
        url(options.redis_url),
        node_timeout(options.node_timeout),
        max_rooms(limits.max_rooms),
        max_members(limits.max_members),
        history_events(limits.history_events),
        resume_grace(limits.resume_grace),
        metrics(counters),
        sub(events, endpoint_of(options.redis_url), client_options_for(options.node_timeout)),
        conn(commands, endpoint_of(options.redis_url), client_options_for(options.node_timeout)),
        strand(sub.executor()),
        wake(strand),
        members_key(codec::node_members_key(node_id)),
        probe_channel(codec::node_channel(node_id)) {}

  const std::string node_id;
  const std::string url;
  const milliseconds node_timeout;
  const std::size_t max_rooms;
  const std::size_t max_members;
  const std::size_t history_events;  // --history: what a room created here keeps
  const milliseconds resume_grace;
  cluster_metrics& metrics;
  redis::subscriber sub;
  redis::connection conn;
  const net::any_io_executor strand;  // the subscriber's: owns everything below
  net::steady_timer wake;             // the supervisor's tick; cancelled to wake it early
  const std::string members_key;
  const std::string probe_channel;

  // Read anywhere. `ready` is stored (release) only after `shas` are written for the first time,
  // and `shas` never change after that (a script's SHA1 is its text's).
  std::atomic<bool> ready{false};
  std::atomic<bool> closing{false};  // shutdown(): admissions refused
  std::array<std::string, codec::script_count> shas;
  std::atomic<std::uint64_t> next_member{1};

  // On the strand.
  bool healthy = false;  // both connections up and resynced
  bool stopping = false;
  bool registered = false;  // the heartbeat set has this node (false: the next beat is a first)
  bool ever_ready = false;
  std::string run_id;  // of the Redis server last synced with
  std::unordered_map<std::uint16_t, std::shared_ptr<cluster_room>> rooms;
  struct unfinished_leave {
    std::uint16_t room;
    std::string name;
    std::string owner;
  };
  // Leaves (and admissions whose answer was lost) that Redis may not have seen: retried after
  // the next resync. Idempotent by owner.
  std::vector<unfinished_leave> unfinished;
  // Held seats' grace timers (end_hold), by owner; and the owners whose seat was resumed
  // elsewhere while held here (their grace ends without a leave).
  std::unordered_map<std::string, net::steady_timer*> grace_timers;
  std::unordered_set<std::string> resumed_holds;
  std::size_t releasing = 0;   // held seats whose leave the shutdown started, not yet sent
  bool stop_deferred = false;  // stop() came while `releasing`
  std::uint64_t probes_sent = 0;
  std::uint64_t probes_seen = 0;
  steady::time_point probe_sent_at;

  // --- Scripts ------------------------------------------------------------------------------

  // EVALSHA, or EVAL when Redis does not know the script (restarted since SCRIPT LOAD). Any
  // strand.
  net::awaitable<std::pair<error_code, redis::reply>> eval(script which,
                                                           std::vector<std::string> args) {
    const auto started = steady::now();
    const auto index = static_cast<std::size_t>(which);
    std::vector<std::string> full;
    full.reserve(args.size() + 3);
    full.emplace_back("EVALSHA");
    full.push_back(shas[index]);
    full.emplace_back("0");
    full.insert(full.end(), std::make_move_iterator(args.begin()),
                std::make_move_iterator(args.end()));
    auto result = co_await conn.execute(full);
    if (!result.first && result.second.is_error() && result.second.str.starts_with("NOSCRIPT")) {
      full[0] = "EVAL";
      full[1] = std::string(codec::script_text(which));
      result = co_await conn.execute(std::move(full));
    }
    metrics.script_latency.observe(steady::now() - started);
    if (result.first) {
      metrics.count(cluster_metrics::failure::request);
    } else if (result.second.is_error()) {
      metrics.count(cluster_metrics::failure::script);
      log_warn("cluster: a script failed: ", result.second.str);
    }
    co_return result;
  }

  // A Redis failure seen anywhere: the supervisor reconnects. Thread-safe.
  void note_failure(const error_code& ec) {
    net::post(strand, [self = shared_from_this(), ec] { self->lose_redis(ec.message()); });
  }

  // On the strand.
  void lose_redis(const std::string& why) {
    if (!healthy || stopping) return;
    healthy = false;
    ready.store(false, std::memory_order_release);
    metrics.redis_up.store(0, std::memory_order_relaxed);
    log_warn("cluster: Redis unavailable (", why, "); reconnecting");
    conn.close();
    sub.close();
    wake.cancel();
  }

  // --- Rooms on this node (the strand) ------------------------------------------------------

  std::shared_ptr<cluster_room> room_for(std::uint16_t key) {
    auto& slot = rooms[key];
    if (!slot) slot = std::make_shared<cluster_room>(key);
    return slot;
  }

  // A room with nobody here any more is forgotten and unsubscribed.
  void forget_if_empty(const std::shared_ptr<cluster_room>& room) {
    if (!room->members_.empty() || !room->pending_.empty() || !room->resuming_.empty()
        || !room->listed_) {
      return;
    }
    room->listed_ = false;
    if (const auto found = rooms.find(room->key_); found != rooms.end() && found->second == room)
      rooms.erase(found);
    if (room->subscribed_) {
      room->subscribed_ = false;
      metrics.subscribed_rooms.fetch_sub(1, std::memory_order_relaxed);
      // A later SUBSCRIBE of the same channel queues behind this one on the subscriber.
      auto unsubscribe = [self = shared_from_this(),
                          channel = room->channel_]() -> net::awaitable<void> {
        co_await self->sub.unsubscribe(channel);
      };
      net::co_spawn(strand, std::move(unsubscribe), log_exception{"cluster unsubscribe"});
    }
  }

  // Closes the room's members here with 1012: the node can no longer vouch for what they saw.
  // Their sessions then leave (which Redis ignores when their names are gone already).
  void restart_members(cluster_room& room) {
    for (const auto& seat : room.members_) {
      seat.who->restart();
      metrics.resync_closes.fetch_add(1, std::memory_order_relaxed);
      metrics.local_members.fetch_sub(1, std::memory_order_relaxed);
    }
    room.members_.clear();
    room.last_seq_ = 0;
  }

  void restart_everyone() {
    std::vector<std::shared_ptr<cluster_room>> all;
    for (const auto& [key, room] : rooms)
      all.push_back(room);
    for (const auto& room : all) {
      restart_members(*room);
      forget_if_empty(room);
    }
  }

  bool remove_member(cluster_room& room, const std::string& owner) {
    room.history_waits_.erase(owner);
    room.tokens_.erase(owner);
    if (room.pending_.erase(owner) > 0) return true;
    const auto found = std::find_if(room.members_.begin(), room.members_.end(),
                                    [&owner](const auto& seat) { return seat.owner == owner; });
    if (found == room.members_.end()) return false;
    room.members_.erase(found);
    metrics.local_members.fetch_sub(1, std::memory_order_relaxed);
    return true;
  }

  // A message on the subscription, in the order Redis sent it.
  void on_message(std::string_view channel, std::string_view payload) {
    if (channel == probe_channel) {
      // The node's channel also brings the resume script's `moved` for seats this node had.
      if (!payload.empty() && payload.front() == '{') {
        if (const auto moved = codec::decode_moved(payload)) on_moved(moved->first, moved->second);
        return;
      }
      std::uint64_t number = 0;
      std::from_chars(payload.data(), payload.data() + payload.size(), number);
      probes_seen = std::max(probes_seen, number);
      return;
    }
    auto decoded = codec::decode_event(payload);
    if (!decoded) {
      log_warn("cluster: ignoring a message on ", channel, " that is not a room event");
      return;
    }
    const auto found = rooms.find(decoded->room);
    if (found == rooms.end()) return;  // unsubscribing
    const auto room = found->second;
    if (!room->members_.empty()) {
      if (decoded->seq <= room->last_seq_) return;  // seen already (a subscription overlap)
      if (decoded->seq != room->last_seq_ + 1) {
        metrics.sequence_gaps.fetch_add(1, std::memory_order_relaxed);
        log_warn("cluster: room ", room->key_, ": events ", room->last_seq_ + 1, " to ",
                 decoded->seq - 1, " missed; its members here must join again");
        restart_members(*room);
      }
    }
    // With nobody admitted yet, any event is the start: this node subscribed before its first
    // member's script ran, so that member's own event and every later one come in order.
    room->last_seq_ = decoded->seq;
    room->users_.store(decoded->users, std::memory_order_relaxed);
    hand_out(*room, *decoded);
    forget_if_empty(room);
  }

  // A seat this node had was resumed (here or elsewhere): its grace, if held here, ends without
  // a leave; its old connection, if still open here, gives way (4100).
  void on_moved(std::uint16_t key, const std::string& old_owner) {
    if (const auto held = grace_timers.find(old_owner); held != grace_timers.end()) {
      held->second->cancel();
      grace_timers.erase(held);
      resumed_holds.insert(old_owner);
      log_info("cluster: a seat held here (", old_owner, " in room ", key,
               ") was resumed: its grace ends without a leave");
      return;
    }
    const auto found = rooms.find(key);
    if (found == rooms.end()) return;
    const auto room = found->second;
    const auto seat = std::find_if(room->members_.begin(), room->members_.end(),
                                   [&old_owner](const auto& s) { return s.owner == old_owner; });
    if (seat == room->members_.end()) return;
    const auto who = seat->who;
    remove_member(*room, old_owner);
    who->replaced();
    forget_if_empty(room);
  }

  void hand_out(cluster_room& room, const codec::event& e) {
    const auto shared = std::make_shared<const frame>(codec::event_frame(e, false));
    shared_frame roster;
    std::shared_ptr<member> leaver;
    std::shared_ptr<member> late;  // admitted after the shutdown began
    if (e.kind == room_event_kind::create || e.kind == room_event_kind::join) {
      if (const auto found = room.pending_.find(e.owner); found != room.pending_.end()) {
        room.members_.push_back({e.owner, e.name, std::move(found->second)});
        room.pending_.erase(found);
        metrics.local_members.fetch_add(1, std::memory_order_relaxed);
        std::string own_token;
        if (const auto token = room.tokens_.find(e.owner); token != room.tokens_.end()) {
          own_token = std::move(token->second);
          room.tokens_.erase(token);
        }
        const std::string own = codec::event_frame(e, true, own_token);
        roster = std::make_shared<const frame>(own);
        late = closing.load(std::memory_order_relaxed) ? room.members_.back().who : nullptr;
        if (const auto wait = room.history_waits_.find(e.owner);
            wait != room.history_waits_.end()) {
          if (wait->second.chat) {  // the script answered first: own frame and history now
            roster = with_history(own, *wait->second.chat);
            room.history_waits_.erase(wait);
          } else {  // the own frame waits for the history (finish_history)
            wait->second.own = own;
            wait->second.arrived = true;
          }
        }
      }
    } else if (e.kind == room_event_kind::leave) {
      const auto found = std::find_if(room.members_.begin(), room.members_.end(),
                                      [&e](const auto& seat) { return seat.owner == e.owner; });
      if (found != room.members_.end()) {
        leaver = std::move(found->who);
        room.members_.erase(found);
        metrics.local_members.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    for (auto& [owner, waiting] : room.resuming_)
      waiting.held.emplace_back(e.seq, shared);
    std::vector<cluster_room::seat> slow;
    for (const auto& seat : room.members_) {
      if (e.seq <= seat.skip_through) continue;
      if (!room.history_waits_.empty()) {
        if (const auto wait = room.history_waits_.find(seat.owner);
            wait != room.history_waits_.end() && wait->second.arrived) {
          if (seat.owner != e.owner) wait->second.held.push_back(shared);
          continue;
        }
      }
      const bool newcomer = roster && seat.owner == e.owner;
      if (seat.who->deliver(newcomer ? roster : shared) == delivery::full) slow.push_back(seat);
    }
    if (leaver) {
      if (e.reason == leave_reason::left) {
        leaver->deliver(shared);  // the leaver's acknowledgement
      } else {
        // Made to leave while connected (another node reaped this one): the client must join
        // again. A connection that is ending already ignores it.
        leaver->restart();
      }
    }
    for (const auto& seat : slow)
      evict(room, seat);
    // Its session waits for its room to close before its 1001, as every other member's did.
    if (late) late->room_closing();
  }

  // The join script's answer for a newcomer that asked for history: when its own event came
  // first, it gets its own frame and the history now, then the events held back meanwhile.
  void finish_history(cluster_room& room, const std::string& owner, std::vector<std::string> chat) {
    const auto wait = room.history_waits_.find(owner);
    if (wait == room.history_waits_.end()) return;
    if (!wait->second.arrived) {
      wait->second.chat = std::move(chat);
      return;
    }
    auto waited = std::move(wait->second);
    room.history_waits_.erase(wait);
    const auto found = std::find_if(room.members_.begin(), room.members_.end(),
                                    [&owner](const auto& seat) { return seat.owner == owner; });
    if (found == room.members_.end()) return;
    const cluster_room::seat seat = *found;
    bool full = seat.who->deliver(with_history(waited.own, chat)) == delivery::full;
    for (const auto& held : waited.held) {
      if (full) break;
      full = seat.who->deliver(held) == delivery::full;
    }
    if (full) evict(room, seat);
  }

  // A member whose outbox is full: closed with 1008, and its leave (slow_consumer) published.
  void evict(cluster_room& room, const cluster_room::seat& seat) {
    if (!remove_member(room, seat.owner)) return;
    seat.who->evict();
    log_info("cluster: evicting slow consumer ", seat.owner, " from room ", room.key_);
    auto publish = [self = shared_from_this(), key = room.key_, name = seat.name,
                    owner = seat.owner]() -> net::awaitable<void> {
      if (!self->healthy) co_return;
      auto [ec, answer] = co_await self->eval(
          script::leave, redis::command(std::to_string(key), name, owner,
                                        token(leave_reason::slow_consumer), self->members_key));
      if (ec) self->unfinished.push_back({key, name, owner});
    };
    net::co_spawn(strand, std::move(publish), log_exception{"cluster eviction"});
  }

  // --- Admission, leave ---------------------------------------------------------------------

  net::awaitable<cluster_admission> admit(room_event_kind kind, room_id id, std::string name,
                                          std::shared_ptr<member> who, admission_wishes wishes) {
    if (!ready.load(std::memory_order_acquire) || closing.load(std::memory_order_relaxed)) {
      co_return wire_code::unavailable;
    }
    const std::uint16_t key = id.key();
    auto room = room_for(key);
    const std::uint64_t member_id = next_member.fetch_add(1, std::memory_order_relaxed);
    std::string owner = node_id + ":" + std::to_string(member_id);
    room->pending_.emplace(owner, std::move(who));
    // A creator has no history to see: only a joiner waits for one.
    const bool history = wishes.history && history_events > 0 && kind == room_event_kind::join;
    if (history) room->history_waits_.emplace(owner, cluster_room::history_wait{});
    std::string token_index;
    std::string token_text;
    if (wishes.resume && history_events > 0) {
      const auto token = resume_token::generate();
      token_index = codec::token_index(token.index());
      token_text = token.text();
      room->tokens_.emplace(owner, token_text);
    }
    // Subscribe before the script runs: the member's own event and all later ones come back.
    if (!room->subscribed_) {
      const error_code subscribed = co_await sub.subscribe(room->channel_);
      if (subscribed) {
        room->pending_.erase(owner);
        room->history_waits_.erase(owner);
        room->tokens_.erase(owner);
        forget_if_empty(room);
        lose_redis(subscribed.message());
        co_return wire_code::unavailable;
      }
      if (!room->subscribed_ && room->listed_) {
        room->subscribed_ = true;
        metrics.subscribed_rooms.fetch_add(1, std::memory_order_relaxed);
      }
    }
    std::vector<std::string> args;
    if (kind == room_event_kind::create) {
      args = redis::command(std::to_string(key), id.as_number() ? "n" : "s", name, owner,
                            std::to_string(max_rooms), members_key, std::to_string(history_events),
                            new_epoch(), token_index, token_text);
    } else {
      args = redis::command(std::to_string(key), name, owner, std::to_string(max_members),
                            members_key, history ? "1" : "0", token_index, token_text);
    }
    const script which = kind == room_event_kind::create ? script::create : script::join;
    auto [ec, answer] = co_await eval(which, std::move(args));
    const bool still_pending = room->pending_.contains(owner);
    wire_code code = wire_code::unavailable;
    if (!ec && !answer.is_error()) code = codec::decode_admission(answer);
    if (ec) lose_redis(ec.message());
    if (code != wire_code::ok && (ec || answer.is_error()) && !still_pending) {
      // The answer was lost, but the event came: the member is in (its history with it).
      code = wire_code::ok;
      finish_history(*room, owner, {});
    } else if (code != wire_code::ok) {
      room->pending_.erase(owner);
      room->history_waits_.erase(owner);
      room->tokens_.erase(owner);
      // Unanswered: the script may have run. Its leave is retried once Redis is back.
      if (ec || answer.is_error()) unfinished.push_back({key, name, owner});
      forget_if_empty(room);
      co_return code;
    }
    if (history) finish_history(*room, owner, codec::admission_history(answer));
    cluster_seat seat;
    seat.room = std::move(room);
    seat.member_id = member_id;
    seat.owner = std::move(owner);
    seat.name = std::move(name);
    seat.resumable = !token_index.empty();
    co_return seat;
  }

  // Takes back the seat a token names, for `who` on this node (docs/cluster.md, "Resume").
  net::awaitable<cluster_admission> resume(resume_seat request, std::shared_ptr<member> who) {
    if (!ready.load(std::memory_order_acquire) || closing.load(std::memory_order_relaxed)) {
      co_return wire_code::unavailable;
    }
    const auto token = resume_token::parse(request.token);
    if (history_events == 0 || !token) co_return wire_code::invalid_token;
    // Which room: the script checks everything again, atomically; this only says what to
    // subscribe to first (a token's room never changes).
    auto [found_ec, found] =
        co_await conn.execute(redis::command("HMGET", codec::token_key(token->index()), "r", "n"));
    if (found_ec) {
      lose_redis(found_ec.message());
      co_return wire_code::unavailable;
    }
    std::uint16_t key = 0;
    if (found.type != redis::reply::kind::array || found.elements.size() != 2
        || found.elements[0].type != redis::reply::kind::string
        || found.elements[1].type != redis::reply::kind::string) {
      co_return wire_code::invalid_token;
    }
    const auto& room_text = found.elements[0].str;
    const auto parsed = std::from_chars(room_text.data(), room_text.data() + room_text.size(), key);
    if (parsed.ec != std::errc{} || key > 9999) co_return wire_code::invalid_token;
    const std::string name_hint = found.elements[1].str;

    auto room = room_for(key);
    const std::uint64_t member_id = next_member.fetch_add(1, std::memory_order_relaxed);
    std::string owner = node_id + ":" + std::to_string(member_id);
    room->resuming_.emplace(owner, cluster_room::resume_wait{});
    if (!room->subscribed_) {
      const error_code subscribed = co_await sub.subscribe(room->channel_);
      if (subscribed) {
        room->resuming_.erase(owner);
        forget_if_empty(room);
        lose_redis(subscribed.message());
        co_return wire_code::unavailable;
      }
      if (!room->subscribed_ && room->listed_) {
        room->subscribed_ = true;
        metrics.subscribed_rooms.fetch_add(1, std::memory_order_relaxed);
      }
    }
    const auto next = resume_token::generate();
    const std::string next_text = next.text();
    std::string frame_room;
    if (request.room) frame_room = std::to_string(request.room->key());
    auto [ec, answer] = co_await eval(
        script::resume, redis::command(codec::token_index(token->index()), request.token,
                                       std::to_string(request.since), frame_room, owner,
                                       members_key, codec::token_index(next.index()), next_text));
    auto waited = std::move(room->resuming_[owner]);
    room->resuming_.erase(owner);
    std::optional<codec::resumed> back;
    if (!ec && !answer.is_error()) back = codec::decode_resume(answer);
    if (!back || back->code != wire_code::ok) {
      if (ec) {
        lose_redis(ec.message());
        // Unanswered: the seat may have moved to `owner`; give it up once Redis is back.
        unfinished.push_back({key, name_hint, owner});
      }
      forget_if_empty(room);
      if (back) co_return back->code;
      co_return wire_code::unavailable;
    }
    const auto id = room_id::from_key(key, back->room_as_number);
    std::vector<std::string_view> roster(back->roster.begin(), back->roster.end());
    std::string bytes;
    std::size_t missed = 0;
    bool recovered = back->recovered;
    for (const auto& published : back->missed) {
      const auto e = codec::decode_event(published);
      if (!e) {
        recovered = false;
        break;
      }
      bytes += ws::encode_frame(ws::opcode::text, codec::event_frame(*e, false));
      ++missed;
    }
    if (!recovered) {
      bytes.clear();
      missed = 0;
    }
    const resume_ack ack{.room = *id,
                         .name = back->name,
                         .users = back->users,
                         .members = roster,
                         .epoch = back->epoch,
                         .token = next_text,
                         .recovered = recovered,
                         .missed = missed,
                         .last = back->last};
    bytes.insert(0, ws::encode_frame(ws::opcode::text, serialize(ack)));
    bool full = who->deliver(make_encoded_frame(std::move(bytes))) == delivery::full;
    for (const auto& [seq, held] : waited.held) {
      if (full) break;
      if (seq > back->last) full = who->deliver(held) == delivery::full;
    }
    if (room->members_.empty()) {
      room->last_seq_ = std::max(room->last_seq_, back->last);
      room->users_.store(back->users, std::memory_order_relaxed);
    }
    std::uint64_t skip = back->last;
    if (!waited.held.empty()) skip = std::max(skip, waited.held.back().first);
    room->members_.push_back({owner, back->name, who, skip});
    metrics.local_members.fetch_add(1, std::memory_order_relaxed);
    metrics.resumes.fetch_add(1, std::memory_order_relaxed);
    if (!recovered) metrics.resumes_unrecovered.fetch_add(1, std::memory_order_relaxed);
    if (full) {
      const auto newcomer = room->members_.back();  // a copy: evict erases the seat
      evict(*room, newcomer);
    }
    cluster_seat seat;
    seat.room = std::move(room);
    seat.member_id = member_id;
    seat.owner = std::move(owner);
    seat.name = back->name;
    seat.resumable = true;
    co_return seat;
  }

  net::awaitable<void> leave(cluster_seat seat, leave_reason reason) {
    auto& room = *seat.room;
    // A dropped connection with a resume token: the seat is held, silently, for the grace; its
    // leave follows then unless the seat was resumed meanwhile (the leave script does nothing
    // for an owner that no longer holds the name). Not while shutting down: the node goes.
    if (reason == leave_reason::disconnected && seat.resumable
        && !closing.load(std::memory_order_relaxed) && remove_member(room, seat.owner)) {
      log_info("cluster: holding the seat of '", seat.name, "' in room ", room.key_,
               " for a resume");
      forget_if_empty(seat.room);
      net::co_spawn(strand, end_hold(shared_from_this(), std::move(seat)),
                    log_exception{"cluster resume grace"});
      co_return;
    }
    co_await send_leave(std::move(seat), reason);
  }

  // Runs the leave script (or keeps the leave for later when Redis is away).
  net::awaitable<void> send_leave(cluster_seat seat, leave_reason reason) {
    auto& room = *seat.room;
    bool published = false;
    if (healthy) {
      auto [ec, answer] =
          co_await eval(script::leave, redis::command(std::to_string(room.key_), seat.name,
                                                      seat.owner, token(reason), members_key));
      if (ec) {
        lose_redis(ec.message());
        unfinished.push_back({room.key_, seat.name, seat.owner});
      } else {
        published = answer.type == redis::reply::kind::integer && answer.integer == 1;
      }
    } else {
      unfinished.push_back({room.key_, seat.name, seat.owner});
    }
    // A published leave takes the member out when its event comes back (after everything the
    // room accepted before it); otherwise no event will come, so it goes now.
    if (!published) {
      remove_member(room, seat.owner);
      forget_if_empty(seat.room);
    }
  }

  // The grace of a held seat; then its leave (reason disconnected): at once when the node shuts
  // down, never once it has stopped.
  net::awaitable<void> end_hold([[maybe_unused]] std::shared_ptr<state> self, cluster_seat seat) {
    net::steady_timer timer(strand);
    timer.expires_after(resume_grace);
    const std::string owner = seat.owner;
    grace_timers.emplace(owner, &timer);
    metrics.held_seats.fetch_add(1, std::memory_order_relaxed);
    co_await timer.async_wait(use_nothrow);
    metrics.held_seats.fetch_sub(1, std::memory_order_relaxed);
    if (resumed_holds.erase(owner) > 0) co_return;  // resumed: nothing to leave
    // Not in the map any more: the shutdown ended this grace, and counted it in `releasing`.
    const bool released = grace_timers.erase(owner) == 0;
    if (!stopping) co_await send_leave(std::move(seat), leave_reason::disconnected);
    if (released && --releasing == 0 && stop_deferred) halt();
  }

  // Ends every loop and closes both connections (cluster_node::stop), on the strand.
  void halt() {
    stopping = true;
    healthy = false;
    wake.cancel();
    for (const auto& [owner, timer] : grace_timers)
      timer->cancel();
    conn.close();
    sub.close();
  }

  // --- The supervisor -----------------------------------------------------------------------

  net::awaitable<void> run([[maybe_unused]] std::shared_ptr<state> self) {
    int attempt = 0;
    while (!stopping) {
      if (!healthy) {
        const bool synced = co_await resync();
        if (stopping) break;
        if (!synced) {
          metrics.count(cluster_metrics::failure::connect);
          conn.close();
          sub.close();
          wake.expires_after(backoff(attempt++));
          co_await wake.async_wait(use_nothrow);
          continue;
        }
        attempt = 0;
        healthy = true;
        probes_seen = probes_sent;
        probe_sent_at = steady::now();
        ready.store(true, std::memory_order_release);
        metrics.redis_up.store(1, std::memory_order_relaxed);
        if (ever_ready) {
          metrics.reconnects.fetch_add(1, std::memory_order_relaxed);
          log_info("cluster: node ", node_id, " reconnected to Redis and resynced");
        } else {
          log_info("cluster: node ", node_id, " ready on ", url);
        }
        ever_ready = true;
        // Leaves that came while the resync was finishing (a member it closed with 1012 leaves
        // at once) found the node not healthy yet and were kept for now.
        const bool sent = co_await retry_unfinished();
        if (!sent) lose_redis("a leave failed");
      }
      wake.expires_after(beat_interval(node_timeout));
      co_await wake.async_wait(use_nothrow);
      if (stopping || !healthy) continue;
      co_await beat();
    }
    ready.store(false, std::memory_order_release);
  }

  // Connects both connections, loads the scripts, and brings the node's rooms up to date:
  // resubscribes, and closes (1012) the members of every room whose events it may have missed.
  net::awaitable<bool> resync() {
    conn.close();
    sub.close();
    const error_code connected = co_await conn.connect();
    if (connected || stopping) co_return false;
    const error_code sub_connected = co_await sub.connect();
    if (sub_connected || stopping) co_return false;
    for (std::size_t i = 0; i < codec::script_count; ++i) {
      const auto which = static_cast<script>(i);
      auto [ec, sha] =
          co_await conn.execute(redis::command("SCRIPT", "LOAD", codec::script_text(which)));
      if (ec || sha.type != redis::reply::kind::string) co_return false;
      if (shas[i].empty()) shas[i] = sha.str;
    }
    auto [info_ec, info] = co_await conn.execute(redis::command("INFO", "server"));
    if (info_ec || info.type != redis::reply::kind::string) co_return false;
    const auto server_run = codec::run_id_of(info.str).value_or("");
    if (!run_id.empty() && server_run != run_id) {
      // A restarted (or failed-over) server: whatever it had of our rooms is gone or stale.
      log_warn("cluster: Redis restarted (a new run_id): closing this node's clients with 1012");
      restart_everyone();
      registered = false;
    }
    run_id = server_run;
    const error_code probe = co_await sub.subscribe(probe_channel);
    if (probe) co_return false;

    std::vector<std::shared_ptr<cluster_room>> current;
    for (const auto& [key, room] : rooms)
      current.push_back(room);
    for (const auto& room : current) {
      const error_code subscribed = co_await sub.subscribe(room->channel_);
      if (subscribed) co_return false;
      if (!room->subscribed_ && room->listed_) {
        room->subscribed_ = true;
        metrics.subscribed_rooms.fetch_add(1, std::memory_order_relaxed);
      }
    }
    // Each room's seq now; then a PING through the subscription, which comes back behind every
    // event published before it: an event up to that seq not seen by then was missed.
    std::vector<std::pair<std::shared_ptr<cluster_room>, std::uint64_t>> latest;
    for (const auto& room : current) {
      if (room->members_.empty()) continue;
      auto [ec, seq] =
          co_await conn.execute(redis::command("HGET", codec::room_key(room->key_, "meta"), "seq"));
      if (ec) co_return false;
      std::uint64_t value = 0;
      if (seq.type == redis::reply::kind::string) {
        std::from_chars(seq.str.data(), seq.str.data() + seq.str.size(), value);
      }
      latest.emplace_back(room, value);
    }
    const error_code pinged = co_await sub.ping();
    if (pinged) co_return false;
    for (const auto& [room, seq] : latest) {
      if (room->members_.empty() || room->last_seq_ == seq) continue;
      metrics.sequence_gaps.fetch_add(1, std::memory_order_relaxed);
      log_warn("cluster: room ", room->key_, " went on without this node (seq ", room->last_seq_,
               " here, ", seq, " in Redis): its members here must join again");
      restart_members(*room);
      forget_if_empty(room);
    }
    const bool retried = co_await retry_unfinished();
    if (!retried) co_return false;
    const bool beaten = co_await heartbeat();
    co_return beaten;
  }

  // Sends again what Redis may not have seen of the node's leaves (idempotent by owner). False
  // when Redis failed; what was not sent stays for the next time.
  net::awaitable<bool> retry_unfinished() {
    auto retry = std::exchange(unfinished, {});
    for (std::size_t i = 0; i < retry.size(); ++i) {
      auto& l = retry[i];
      auto [ec, answer] = co_await eval(
          script::leave, redis::command(std::to_string(l.room), l.name, l.owner,
                                        token(leave_reason::disconnected), members_key));
      if (ec) {
        unfinished.insert(unfinished.end(), retry.begin() + static_cast<std::ptrdiff_t>(i),
                          retry.end());
        co_return false;
      }
    }
    co_return true;
  }

  // Records this node's heartbeat and reaps silent nodes. False when Redis failed.
  net::awaitable<bool> heartbeat() {
    for (int round = 0; round < 2; ++round) {
      auto [ec, answer] = co_await eval(
          script::heartbeat,
          redis::command(node_id, std::to_string(node_timeout.count()), registered ? "0" : "1"));
      if (ec) co_return false;
      const auto beat = codec::decode_heartbeat(answer);
      if (!beat) co_return false;
      if (beat->reaped_me) {
        // Silent too long (paused?): the others made this node's members leave.
        log_warn("cluster: node ", node_id,
                 " was taken for dead by another node: closing its clients with 1012");
        restart_everyone();
        registered = false;
        continue;  // and beat again, as a new node
      }
      registered = true;
      metrics.live_nodes.store(beat->live_nodes, std::memory_order_relaxed);
      if (beat->reaped > 0) {
        metrics.reaped_members.fetch_add(static_cast<std::uint64_t>(beat->reaped),
                                         std::memory_order_relaxed);
        log_info("cluster: made ", beat->reaped, " member(s) of silent nodes leave");
      }
      co_return true;
    }
    co_return false;
  }

  // One tick: the heartbeat, and the subscription probe (a message to the node's own channel
  // that must come back before the next deadline, or the subscription is taken for dead).
  net::awaitable<void> beat() {
    const bool beaten = co_await heartbeat();
    if (!beaten) {
      lose_redis("heartbeat failed");
      co_return;
    }
    if (probes_seen < probes_sent) {
      const auto silent_for = steady::now() - probe_sent_at;
      if (silent_for > std::max(node_timeout / 2, milliseconds(1000))) {
        metrics.count(cluster_metrics::failure::probe);
        lose_redis("the subscription stopped delivering");
      }
      co_return;
    }
    ++probes_sent;
    probe_sent_at = steady::now();
    auto [ec, answer] = co_await conn.execute(
        redis::command("PUBLISH", probe_channel, std::to_string(probes_sent)));
    if (ec) lose_redis(ec.message());
  }
};

cluster_node::cluster_node(const net::any_io_executor& events, const net::any_io_executor& commands,
                           const cluster_options& options, const hub_options& limits,
                           cluster_metrics& metrics)
    : state_(std::make_shared<state>(events, commands, options, limits, metrics)) {}

cluster_node::~cluster_node() {
  try {
    stop();
  } catch (...) {
    // Only std::bad_alloc (posting the stop): the loops then end with the io_context.
  }
}

void cluster_node::start() {
  const std::weak_ptr<state> weak = state_;
  state_->sub.on_message = [weak](std::string_view channel, std::string_view payload) {
    if (const auto self = weak.lock()) self->on_message(channel, payload);
  };
  state_->sub.on_lost = [weak](error_code ec) {
    if (const auto self = weak.lock()) self->lose_redis("subscription lost: " + ec.message());
  };
  net::co_spawn(state_->strand, state_->run(state_), log_exception{"cluster"});
}

void cluster_node::shutdown() {
  state_->closing.store(true, std::memory_order_relaxed);
  net::post(state_->strand, [self = state_] {
    // Behind every event already delivered: each member's close (1001) follows them.
    for (const auto& [key, room] : self->rooms) {
      for (const auto& seat : room->members_)
        seat.who->room_closing();
      // Admitted or not, an admission in flight ends with the shutdown too (a connection that
      // is closing already ignores it).
      for (const auto& [owner, who] : room->pending_)
        who->room_closing();
    }
    // Held seats leave now (disconnected), while Redis is still there to tell the others;
    // stop() waits for those leaves (each bounded by the command timeout).
    self->releasing += self->grace_timers.size();
    for (const auto& [owner, timer] : self->grace_timers)
      timer->cancel();
    self->grace_timers.clear();
  });
}

void cluster_node::stop() {
  state_->ready.store(false, std::memory_order_release);
  net::post(state_->strand, [self = state_] {
    if (self->releasing > 0) {
      self->stop_deferred = true;  // the last released leave halts
      return;
    }
    self->halt();
  });
}

bool cluster_node::ready() const noexcept {
  return state_->ready.load(std::memory_order_acquire);
}

const std::string& cluster_node::node_id() const noexcept {
  return state_->node_id;
}

std::size_t cluster_node::in_flight() const noexcept {
  return state_->conn.in_flight();
}

net::awaitable<cluster_admission> cluster_node::create(room_id id, std::string name,
                                                       std::shared_ptr<member> who,
                                                       admission_wishes wishes) {
  co_return co_await net::co_spawn(
      state_->strand,
      state_->admit(room_event_kind::create, id, std::move(name), std::move(who), wishes),
      net::use_awaitable);
}

net::awaitable<cluster_admission> cluster_node::join(room_id id, std::string name,
                                                     std::shared_ptr<member> who,
                                                     admission_wishes wishes) {
  co_return co_await net::co_spawn(
      state_->strand,
      state_->admit(room_event_kind::join, id, std::move(name), std::move(who), wishes),
      net::use_awaitable);
}

net::awaitable<wire_code> cluster_node::say(const cluster_seat& seat, std::string text) {
  // Straight from the member's strand to the command connection: chat needs nothing the node's
  // strand owns. Awaiting the answer is the backpressure: a sender waits while the connection
  // has its bound of commands in flight, and its socket is not read meanwhile.
  if (!state_->ready.load(std::memory_order_acquire)) co_return wire_code::unavailable;
  auto [ec, answer] = co_await state_->eval(
      script::say, redis::command(std::to_string(seat.room->key_), seat.name, seat.owner, text));
  if (ec) {
    state_->note_failure(ec);
    co_return wire_code::unavailable;
  }
  if (answer.is_error()) co_return wire_code::unavailable;
  co_return wire_code::ok;
}

net::awaitable<cluster_admission> cluster_node::resume(resume_seat request,
                                                       std::shared_ptr<member> who) {
  co_return co_await net::co_spawn(
      state_->strand, state_->resume(std::move(request), std::move(who)), net::use_awaitable);
}

net::awaitable<void> cluster_node::leave(cluster_seat seat, leave_reason reason) {
  co_await net::co_spawn(state_->strand, state_->leave(std::move(seat), reason),
                         net::use_awaitable);
}

}  // namespace roomcast
