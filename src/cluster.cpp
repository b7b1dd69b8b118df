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
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "roomcast/cluster_codec.hpp"
#include "roomcast/log.hpp"
#include "roomcast/metrics.hpp"
#include "roomcast/net.hpp"
#include "roomcast/redis.hpp"

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

}  // namespace

// A room as one node sees it. `users_` is read anywhere; the rest belongs to the node's strand.
class cluster_room {
 public:
  explicit cluster_room(std::uint16_t key) : key_(key), channel_(codec::room_channel(key)) {}

  struct seat {
    std::string owner;
    std::string name;
    std::shared_ptr<member> who;
  };

  const std::uint16_t key_;
  const std::string channel_;
  std::atomic<std::size_t> users_{0};
  std::vector<seat> members_;  // admitted here, in event order: they get the room's events
  // Admissions whose script may still publish their create/join: the member is added to
  // members_ exactly at its own event, which carries its roster.
  std::unordered_map<std::string, std::shared_ptr<member>> pending_;
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
    if (!room->members_.empty() || !room->pending_.empty() || !room->listed_) return;
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
        roster = std::make_shared<const frame>(codec::event_frame(e, true));
        late = closing.load(std::memory_order_relaxed) ? room.members_.back().who : nullptr;
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
    std::vector<cluster_room::seat> slow;
    for (const auto& seat : room.members_) {
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
                                          std::shared_ptr<member> who) {
    if (!ready.load(std::memory_order_acquire) || closing.load(std::memory_order_relaxed)) {
      co_return wire_code::unavailable;
    }
    const std::uint16_t key = id.key();
    auto room = room_for(key);
    const std::uint64_t member_id = next_member.fetch_add(1, std::memory_order_relaxed);
    std::string owner = node_id + ":" + std::to_string(member_id);
    room->pending_.emplace(owner, std::move(who));
    // Subscribe before the script runs: the member's own event and all later ones come back.
    if (!room->subscribed_) {
      const error_code subscribed = co_await sub.subscribe(room->channel_);
      if (subscribed) {
        room->pending_.erase(owner);
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
                            std::to_string(max_rooms), members_key);
    } else {
      args = redis::command(std::to_string(key), name, owner, std::to_string(max_members),
                            members_key);
    }
    const script which = kind == room_event_kind::create ? script::create : script::join;
    auto [ec, answer] = co_await eval(which, std::move(args));
    const bool still_pending = room->pending_.contains(owner);
    wire_code code = wire_code::unavailable;
    if (!ec && !answer.is_error()) code = codec::decode_admission(answer);
    if (ec) lose_redis(ec.message());
    if (code != wire_code::ok && (ec || answer.is_error()) && !still_pending) {
      // The answer was lost, but the event came: the member is in.
      code = wire_code::ok;
    } else if (code != wire_code::ok) {
      room->pending_.erase(owner);
      // Unanswered: the script may have run. Its leave is retried once Redis is back.
      if (ec || answer.is_error()) unfinished.push_back({key, name, owner});
      forget_if_empty(room);
      co_return code;
    }
    cluster_seat seat;
    seat.room = std::move(room);
    seat.member_id = member_id;
    seat.owner = std::move(owner);
    seat.name = std::move(name);
    co_return seat;
  }

  net::awaitable<void> leave(cluster_seat seat, leave_reason reason) {
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
  });
}

void cluster_node::stop() {
  state_->ready.store(false, std::memory_order_release);
  net::post(state_->strand, [self = state_] {
    self->stopping = true;
    self->healthy = false;
    self->wake.cancel();
    self->conn.close();
    self->sub.close();
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
                                                       std::shared_ptr<member> who) {
  co_return co_await net::co_spawn(
      state_->strand, state_->admit(room_event_kind::create, id, std::move(name), std::move(who)),
      net::use_awaitable);
}

net::awaitable<cluster_admission> cluster_node::join(room_id id, std::string name,
                                                     std::shared_ptr<member> who) {
  co_return co_await net::co_spawn(
      state_->strand, state_->admit(room_event_kind::join, id, std::move(name), std::move(who)),
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

net::awaitable<void> cluster_node::leave(cluster_seat seat, leave_reason reason) {
  co_await net::co_spawn(state_->strand, state_->leave(std::move(seat), reason),
                         net::use_awaitable);
}

}  // namespace roomcast
