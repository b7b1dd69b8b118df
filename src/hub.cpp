#include "roomcast/hub.hpp"

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "roomcast/history.hpp"
#include "roomcast/log.hpp"
#include "roomcast/metrics.hpp"
#include "roomcast/net.hpp"
#include "roomcast/resume_token.hpp"

#include "fanout_lane.hpp"

namespace roomcast {
namespace {

// What a room's inbox carries. Joins come from the hub, chat and leaves from the members; the
// room handles them strictly in the order they were queued.
struct member_joined {
  std::uint64_t member_id;
  std::string name;
  std::shared_ptr<member> who;
  room_event_kind kind;  // create or join
  bool history;          // the newcomer asked for the recent chat
  std::string token;     // its resume token, when it asked for one
};
struct member_said {
  std::uint64_t member_id;
  std::string text;
  frame::clock::time_point arrived;  // when the sender's read completed
  const member* from;                // the connection that sent it
};
// A member with a resume token lost its connection: its seat is held, silently.
struct member_away {
  std::uint64_t member_id;
};
// A new connection took back the seat: it gets the events after `since`, then live ones.
struct member_resumed {
  std::uint64_t member_id;
  std::shared_ptr<member> who;
  std::uint64_t since;
  std::string token;  // the next one
};
struct member_left {
  std::uint64_t member_id;
  leave_reason reason;
};
// The server's shutdown: queued behind every event the room accepted before it.
struct room_drain {};
// A big room's fan-out lane found these members' outboxes full (ascending ids).
struct found_slow {
  std::vector<std::uint64_t> member_ids;
};
using room_message = std::variant<member_joined, member_said, member_left, member_away,
                                  member_resumed, room_drain, found_slow>;

using inbox_channel = net::experimental::concurrent_channel<void(error_code, room_message)>;

// A room handles at most this many queued events per turn on its strand (see run_room).
constexpr int max_events_per_turn = 32;

std::int64_t unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// A room's epoch: new each time its number is created, so that a client can tell the room it
// left from a later one of the same number. Random, so that it says nothing about the server.
std::string new_epoch() {
  return resume_token::generate().text().substr(0, 16);
}

// One frame to one member made of several WebSocket text frames back to back: the newcomer's
// own frame and its history, or a resume's reply and the missed events. As one outbox entry
// they cannot be separated by other events, whichever strand delivers them.
shared_frame bundle(std::string_view first_json, const std::vector<shared_frame>& then,
                    bool mark_as_history) {
  std::string bytes = ws::encode_frame(ws::opcode::text, first_json);
  for (const auto& event : then) {
    if (mark_as_history) {
      bytes += ws::encode_frame(ws::opcode::text, as_history(event->payload()));
    } else {
      bytes += event->bytes;
    }
  }
  return make_encoded_frame(std::move(bytes));
}

}  // namespace

// The rooms whose numbers share a remainder: their registry and their rooms' state live on one
// strand, so admitting a member (number, name and limits) is one hop, and rooms on different
// shards run in parallel.
struct shard {
  shard(const net::any_io_executor& executor, std::size_t number, std::size_t on_thread)
      : strand(net::make_strand(executor)), index(number), thread(on_thread) {}

  net::strand<net::any_io_executor> strand;
  std::size_t index;   // in hub::state::shards
  std::size_t thread;  // the index of the executor (thread) the strand runs on
  std::unordered_map<std::uint16_t, std::shared_ptr<room>> registry;  // room number -> room
};

// A name admitted to a room, as the shard's strand sees it (the room's member list follows when
// the room handles the admission).
struct name_entry {
  std::uint64_t member_id;
  const member* holder;           // the connection holding the seat; null while held for resume
  std::uint64_t token_index = 0;  // its resume token in hub::state::tokens; 0: none
  std::uint32_t holds = 0;        // bumped by each hold and resume: an older grace timer is stale
};

// A room. Everything but `inbox_` and `users_` belongs to its shard's strand.
class room : public std::enable_shared_from_this<room> {
 public:
  room(shard& home, room_id id, std::size_t capacity, history_limits limits)
      : inbox_(home.strand, capacity),
        home_(home),
        id_(id),
        history_(limits),
        epoch_(new_epoch()) {}

  inbox_channel inbox_;                // thread-safe: members send from their own strands
  std::atomic<std::size_t> users_{0};  // members_.size(), for frames built outside the strand
  shard& home_;

  struct seat {
    std::uint64_t member_id;
    std::string name;
    std::shared_ptr<member> who;  // null while the seat is held for a resume
  };
  room_id id_;  // as its creator wrote it
  using name_map = std::unordered_map<std::string, name_entry>;
  name_map names_;             // admitted: name -> seat
  std::vector<seat> members_;  // delivery list in event order; ids ascend, so it stays sorted
  bool listed_ = true;         // still reachable through the hub's registry
  std::uint64_t seq_ = 0;
  std::int64_t last_time_ms_ = 0;
  // Set when the room first grows past hub_options::fanout_threshold, kept until it ends: member
  // m is handed its frames by lanes_[m % size] (fanout_lane.hpp).
  std::vector<std::shared_ptr<fanout_lane>> lanes_;
  // The room waits on it while a lane is behind (hub::state::wait_for_lanes); a lane that
  // catches up cancels it.
  std::optional<net::steady_timer> lanes_caught_up_;
  room_history history_;  // the last events, as sent
  std::string epoch_;
  // Seats held for a resume, by member id: the timer ends the hold after --resume-grace.
  std::unordered_map<std::uint64_t, net::steady_timer> grace_;
};

namespace {
// Seats in id order: the order members joined, and the order of a room's delivery list.
bool by_id(const room::seat& a, const room::seat& b) noexcept {
  return a.member_id < b.member_id;
}
}  // namespace

std::size_t membership::users() const noexcept {
  return handle ? handle->users_.load(std::memory_order_relaxed) : 0;
}

// In a broadcast, one member may get another frame than the rest (the roster that only a
// newcomer needs).
struct personal_frame {
  std::uint64_t member_id = 0;
  shared_frame frame;
};

struct hub::state : std::enable_shared_from_this<hub::state> {
  state(std::vector<net::any_io_executor> on, const hub_options& opts, latency_histogram* latency)
      : options(opts),
        delivery_latency(latency),
        executors(std::move(on)),
        counters(std::max<std::size_t>(1, opts.shards)) {
    const std::size_t count = std::max<std::size_t>(1, options.shards);
    shards.reserve(count);
    // Neighbouring shards on different threads: consecutive room numbers spread over the cores.
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t thread = i % executors.size();
      shards.push_back(std::make_unique<shard>(executors[thread], i, thread));
    }
  }

  shard& shard_of(room_id id) { return *shards[id.key() % shards.size()]; }

  const hub_options options;
  latency_histogram* const delivery_latency;          // may be null
  const std::vector<net::any_io_executor> executors;  // one per thread
  // Also the --max-rooms check: a create reserves its place here before it lists the room.
  hub_counters counters;
  std::vector<std::unique_ptr<shard>> shards;
  // Unique across shards; within a room they ascend, because one strand admits its members.
  std::atomic<std::uint64_t> next_member_id{1};

  // Every resume token in use, by its index, for any shard: a resume names no room, so the token
  // is how its room is found. Locked briefly (a lookup, an insert or an erase).
  struct token_entry {
    resume_token token;
    std::weak_ptr<room> target;
    std::uint64_t member_id;
    std::string name;
  };
  std::mutex tokens_mutex;
  std::unordered_map<std::uint64_t, token_entry> tokens;

  bool offers_resume() const noexcept { return options.history_events > 0; }
  // A new token for the seat, replacing its last one (each is good for one resume).
  std::string issue_token(room& r, const std::string& name, name_entry& entry);
  void revoke_token(name_entry& entry);
  // The entry `token` names, if any: its room and member (the constant-time check is here).
  std::optional<token_entry> find_token(const resume_token& token);

  // Run on shard_of(id).strand.
  net::awaitable<admission> admit(room_event_kind kind, room_id id, std::string name,
                                  std::shared_ptr<member> who, admission_wishes wishes);
  net::awaitable<void> remove(membership seat, leave_reason reason);
  // Frees the name `found` and tells the room its member left: the name is free at once, the
  // leave follows every event the member sent before it.
  net::awaitable<void> free_seat(room& r, room::name_map::iterator found, leave_reason reason);
  // A dropped member with a token: its seat waits --resume-grace for a resume.
  net::awaitable<void> hold(room& r, name_entry& entry, std::string name);
  net::awaitable<void> end_hold(std::shared_ptr<room> r, std::string name, std::uint64_t member_id,
                                std::uint32_t hold);
  net::awaitable<admission> take_seat(std::shared_ptr<room> r, resume_token token,
                                      std::uint64_t since, std::shared_ptr<member> who);
  net::awaitable<void> run_room(std::shared_ptr<room> r);

  void handle(room& r, room_message& message) {
    std::visit([&](auto& m) { handle(r, m); }, message);
  }
  void handle(room& r, member_joined& joined);
  void handle(room& r, member_said& said);
  void handle(room& r, member_left& left);
  void handle(room& r, member_away& away);
  void handle(room& r, member_resumed& back);
  void handle(room& r, room_drain& drain);
  void handle(room& r, found_slow& found);
  void broadcast(room& r, const room_event& event, const room::seat* also = nullptr,
                 frame::clock::time_point arrived = {}, const personal_frame& instead = {});
  // Hands one event to every member (and `also`). Returns the members whose outbox was full;
  // a big room's lanes report those later, as found_slow.
  std::vector<room::seat> hand_out(room& r, const room_event& event,
                                   const room::seat* also = nullptr,
                                   frame::clock::time_point arrived = {},
                                   const personal_frame& instead = {});
  void hand_to_lanes(room& r, const shared_frame& shared, const room::seat* also,
                     const personal_frame& instead);
  // Hands `shared` to each of `seats` (`instead.frame` to that one member); appends the members
  // found full to `slow` and returns how many did not take it.
  static std::uint32_t deliver_to(const std::vector<room::seat>& seats, const shared_frame& shared,
                                  const personal_frame& instead, std::vector<room::seat>& slow);
  // Removes slow members (ascending ids), tells them to close, and tells the others they left.
  void evict_and_tell(room& r, std::vector<room::seat> slow);
  // Removes slow members (ascending ids) from the room, frees their names, tells them to close.
  void evict_all(room& r, const std::vector<room::seat>& slow);
  // Lanes: opening them, and keeping their members in step with the room's.
  void open_lanes(room& r);
  // Waits while a lane has more than the room's inbox capacity of events to hand out: the
  // lanes' queues stay bounded, and their backlog reaches the senders as a full inbox.
  net::awaitable<void> wait_for_lanes(room& r);
  void lanes_add(room& r, const room::seat& seat);
  void lanes_remove(room& r, const std::vector<room::seat>& gone);
  void unlist_if_empty(room& r);
  room_event event_for(room& r, room_event_kind kind, std::string_view name,
                       std::span<const std::string_view> members = {});
};

namespace {

// Queues `message`, waiting for space when the inbox is full. An error means the room has ended.
net::awaitable<void> enqueue(inbox_channel& inbox, room_message message) {
  if (inbox.try_send(error_code{}, std::move(message))) co_return;
  // A try_send that fails has not moved from `message` (Asio constructs the payload only when
  // it accepts it).
  // NOLINTNEXTLINE(bugprone-use-after-move)
  co_await inbox.async_send(error_code{}, std::move(message), use_nothrow);
}

}  // namespace

net::awaitable<admission> hub::state::admit(room_event_kind kind, room_id id, std::string name,
                                            std::shared_ptr<member> who, admission_wishes wishes) {
  shard& home = shard_of(id);
  std::shared_ptr<room> target;
  if (const auto found = home.registry.find(id.key()); found != home.registry.end())
    target = found->second;

  if (kind == room_event_kind::create) {
    if (target) co_return wire_code::room_exists;
    // Other shards create rooms at the same time: reserve a place, give it back if none is left.
    if (counters.rooms.fetch_add(1) >= options.max_rooms) {
      counters.rooms.fetch_sub(1);
      co_return wire_code::too_many_rooms;
    }
    target = std::make_shared<room>(
        home, id, options.room_inbox,
        history_limits{.events = options.history_events, .bytes = options.history_bytes});
    home.registry.emplace(id.key(), target);
    log_info("room ", id.key(), " created");
    net::co_spawn(home.strand, run_room(target), log_exception{"room"});
  } else {
    if (!target) co_return wire_code::no_such_room;
    if (target->names_.contains(name)) co_return wire_code::name_taken;
    if (target->names_.size() >= options.max_members) co_return wire_code::room_full;
  }

  const std::uint64_t member_id = next_member_id.fetch_add(1, std::memory_order_relaxed);
  const member* holder = who.get();
  auto& entry = target->names_.emplace(name, name_entry{member_id, holder}).first->second;
  std::string token;
  if (wishes.resume && offers_resume()) token = issue_token(*target, name, entry);
  // Built before the co_await, not inside it: g++ 12 destroys an aggregate temporary made in a
  // co_await's full-expression twice (docs/architecture.md, "Toolchain traps").
  room_message joined =
      member_joined{member_id, name, std::move(who), kind, wishes.history, std::move(token)};
  co_await enqueue(target->inbox_, std::move(joined));
  co_return membership{std::move(target), member_id, std::move(name), holder};
}

net::awaitable<void> hub::state::remove(membership seat, leave_reason reason) {
  room& r = *seat.handle;
  const auto found = r.names_.find(seat.name);
  // Absent or another id: the room already removed this member (a slow consumer). Another
  // holder: a resume gave the seat to another connection, and this one no longer speaks for it.
  if (found == r.names_.end() || found->second.member_id != seat.member_id
      || found->second.holder != seat.holder) {
    co_return;
  }
  if (reason == leave_reason::disconnected && found->second.token_index != 0) {
    co_await hold(r, found->second, seat.name);
    co_return;
  }
  co_await free_seat(r, found, reason);
}

net::awaitable<void> hub::state::free_seat(room& r, room::name_map::iterator found,
                                           leave_reason reason) {
  const std::uint64_t member_id = found->second.member_id;
  revoke_token(found->second);
  r.names_.erase(found);
  unlist_if_empty(r);
  room_message left = member_left{member_id, reason};
  co_await enqueue(r.inbox_, std::move(left));
}

net::awaitable<void> hub::state::hold(room& r, name_entry& entry, std::string name) {
  entry.holder = nullptr;
  const std::uint32_t hold = ++entry.holds;
  const std::uint64_t member_id = entry.member_id;
  counters.held_seats.fetch_add(1, std::memory_order_relaxed);
  log_info("holding the seat of '", name, "' in room ", r.id_.key(), " for a resume");
  auto& timer =
      r.grace_.insert_or_assign(member_id, net::steady_timer(r.home_.strand)).first->second;
  timer.expires_after(options.resume_grace);
  timer.async_wait([self = shared_from_this(), target = r.shared_from_this(), name, member_id,
                    hold](error_code ec) {
    if (ec) return;  // resumed, or the server is shutting down
    net::co_spawn(target->home_.strand, self->end_hold(target, name, member_id, hold),
                  log_exception{"resume grace"});
  });
  room_message away = member_away{member_id};
  co_await enqueue(r.inbox_, std::move(away));
}

net::awaitable<void> hub::state::end_hold(std::shared_ptr<room> r, std::string name,
                                          std::uint64_t member_id, std::uint32_t hold) {
  const auto found = r->names_.find(name);
  // Resumed (or resumed and dropped again: a later hold) since this grace began.
  if (found == r->names_.end() || found->second.member_id != member_id
      || found->second.holder != nullptr || found->second.holds != hold) {
    co_return;
  }
  log_info("the seat of '", name, "' in room ", r->id_.key(), " was not resumed in time");
  counters.held_seats.fetch_sub(1, std::memory_order_relaxed);
  counters.seats_expired.fetch_add(1, std::memory_order_relaxed);
  r->grace_.erase(member_id);
  co_await free_seat(*r, found, leave_reason::disconnected);
}

net::awaitable<admission> hub::state::take_seat(std::shared_ptr<room> r, resume_token token,
                                                std::uint64_t since, std::shared_ptr<member> who) {
  // Looked up again on the room's strand: another resume with the same token may have won.
  const auto known = find_token(token);
  if (!known || known->target.lock() != r) co_return wire_code::invalid_token;
  const auto found = r->names_.find(known->name);
  if (!r->listed_ || found == r->names_.end() || found->second.member_id != known->member_id) {
    co_return wire_code::invalid_token;
  }
  if (since > r->seq_) co_return wire_code::since_ahead;
  auto& entry = found->second;
  if (entry.holder == nullptr) {
    counters.held_seats.fetch_sub(1, std::memory_order_relaxed);
    r->grace_.erase(known->member_id);  // cancels its wait
  }
  entry.holder = who.get();
  ++entry.holds;
  auto next = issue_token(*r, known->name, entry);  // the one shown is used up
  const member* holder = who.get();
  room_message back = member_resumed{known->member_id, std::move(who), since, std::move(next)};
  co_await enqueue(r->inbox_, std::move(back));
  co_return membership{std::move(r), known->member_id, known->name, holder};
}

std::string hub::state::issue_token(room& r, const std::string& name, name_entry& entry) {
  revoke_token(entry);
  const std::lock_guard lock(tokens_mutex);
  for (;;) {
    auto token = resume_token::generate();
    const auto index = token.index();
    // Index 0 means "no token"; a used index (2^-64 per pair) draws again.
    if (index == 0 || tokens.contains(index)) continue;
    auto text = token.text();
    tokens.emplace(index, token_entry{token, r.weak_from_this(), entry.member_id, name});
    entry.token_index = index;
    return text;
  }
}

void hub::state::revoke_token(name_entry& entry) {
  if (entry.token_index == 0) return;
  const std::lock_guard lock(tokens_mutex);
  tokens.erase(std::exchange(entry.token_index, 0));
}

std::optional<hub::state::token_entry> hub::state::find_token(const resume_token& token) {
  const std::lock_guard lock(tokens_mutex);
  const auto found = tokens.find(token.index());
  if (found == tokens.end() || !found->second.token.matches(token)) return std::nullopt;
  return found->second;
}

void hub::state::unlist_if_empty(room& r) {
  if (!r.names_.empty() || !r.listed_) return;
  // The number is free for a new room at once; this one finishes its queued events and ends.
  r.listed_ = false;
  r.home_.registry.erase(r.id_.key());
  counters.rooms.fetch_sub(1);
  log_info("room ", r.id_.key(), " deleted");
}

net::awaitable<void> hub::state::run_room(std::shared_ptr<room> r) {
  // Keep the hub state alive as long as a room runs on it.
  const auto self = shared_from_this();
  const auto finished = [&r] { return !r->listed_ && r->members_.empty(); };
  bool ended = false;
  while (!ended) {
    if (!r->lanes_.empty()) co_await wait_for_lanes(*r);
    auto [ec, message] = co_await r->inbox_.async_receive(use_nothrow);
    if (ec) break;
    handle(*r, message);
    ended = finished();
    // What is queued already is taken without suspending (a resumption may cross threads), up
    // to a bound, so that a busy room still lets the other rooms of its strand have their turn.
    for (int taken = 0; !ended && taken < max_events_per_turn; ++taken) {
      const bool got = r->inbox_.try_receive([&](error_code failed, room_message next) {
        if (!failed) handle(*r, next);
      });
      if (!got) break;
      ended = finished();
    }
  }
  // Release any sender still waiting (an evicted member that does not know yet). In Asio 1.26
  // close() alone would leave it suspended (docs/architecture.md, "Toolchain traps").
  r->inbox_.cancel();
  r->inbox_.close();
}

room_event hub::state::event_for(room& r, room_event_kind kind, std::string_view name,
                                 std::span<const std::string_view> members) {
  r.last_time_ms_ = std::max(unix_ms(), r.last_time_ms_ + 1);
  return room_event{.kind = kind,
                    .room = r.id_,
                    .name = name,
                    .text = {},
                    .users = r.members_.size(),
                    .seq = ++r.seq_,
                    .time_ms = r.last_time_ms_,
                    .members = members};
}

namespace {
std::vector<std::string_view> member_names(const room& r) {
  std::vector<std::string_view> names;
  names.reserve(r.members_.size());
  for (const auto& seat : r.members_)
    names.emplace_back(seat.name);
  return names;
}

auto find_seat(room& r, std::uint64_t member_id) {
  const auto it =
      std::lower_bound(r.members_.begin(), r.members_.end(), member_id,
                       [](const room::seat& s, std::uint64_t id) { return s.member_id < id; });
  return (it != r.members_.end() && it->member_id == member_id) ? it : r.members_.end();
}
}  // namespace

void hub::state::handle(room& r, member_joined& joined) {
  r.members_.push_back({joined.member_id, std::move(joined.name), std::move(joined.who)});
  r.users_.store(r.members_.size(), std::memory_order_relaxed);
  if (!r.lanes_.empty()) {
    lanes_add(r, r.members_.back());
  } else if (r.members_.size() > options.fanout_threshold) {
    open_lanes(r);
  }
  counters.members.fetch_add(1, std::memory_order_relaxed);
  // The others hear who came; the newcomer alone gets the whole roster. Sending the roster to
  // everyone would cost bytes in the square of the room's size on every join (about 3 GB to
  // fill a room of 1000).
  const room_event event = event_for(r, joined.kind, r.members_.back().name);
  room_event welcome = event;
  const auto names = member_names(r);
  welcome.members = names;
  welcome.epoch = r.epoch_;
  welcome.token = joined.token;
  // The recent chat comes in the same frame as the welcome: every message in it precedes this
  // join, and every live event follows it.
  const auto roster = joined.history ? bundle(serialize(welcome), r.history_.chat(), true)
                                     : std::make_shared<const frame>(serialize(welcome));
  broadcast(r, event, nullptr, {}, personal_frame{joined.member_id, roster});
}

void hub::state::handle(room& r, member_said& said) {
  const auto seat = find_seat(r, said.member_id);
  // Removed (slow consumer) after it sent this, or its seat was resumed on another connection.
  if (seat == r.members_.end() || seat->who.get() != said.from) return;
  room_event event = event_for(r, room_event_kind::message, seat->name);
  event.text = said.text;
  broadcast(r, event, nullptr, said.arrived);
}

void hub::state::handle(room& r, member_left& left) {
  const auto seat = find_seat(r, left.member_id);
  if (seat == r.members_.end()) return;
  const auto leaver = std::move(*seat);
  r.members_.erase(seat);
  r.users_.store(r.members_.size(), std::memory_order_relaxed);
  counters.members.fetch_sub(1, std::memory_order_relaxed);
  if (!r.lanes_.empty() && leaver.who) lanes_remove(r, {leaver});
  room_event event = event_for(r, room_event_kind::leave, leaver.name);
  event.reason = left.reason;
  // Someone who asked to leave gets the notice too, as the acknowledgement.
  broadcast(r, event, left.reason == leave_reason::left ? &leaver : nullptr);
}

void hub::state::handle(room& r, member_away& away) {
  const auto seat = find_seat(r, away.member_id);
  if (seat == r.members_.end() || !seat->who) return;
  if (!r.lanes_.empty()) lanes_remove(r, {*seat});
  // No event: for the others the member is still there until its grace ends. What it misses is
  // in the history.
  seat->who.reset();
}

void hub::state::handle(room& r, member_resumed& back) {
  const auto seat = find_seat(r, back.member_id);
  if (seat == r.members_.end()) {
    // Evicted between the resume and now (its old connection was slow): join again.
    back.who->restart();
    return;
  }
  if (seat->who) {  // the old connection is still open: it gives way
    if (!r.lanes_.empty()) lanes_remove(r, {*seat});
    seat->who->replaced();
  }
  seat->who = std::move(back.who);
  const auto missed = r.history_.after(back.since);
  const auto names = member_names(r);
  const resume_ack ack{.room = r.id_,
                       .name = seat->name,
                       .users = r.members_.size(),
                       .members = names,
                       .epoch = r.epoch_,
                       .token = back.token,
                       .recovered = missed.has_value(),
                       .missed = missed ? missed->size() : 0,
                       .last = r.seq_};
  // Delivered here, before the member rejoins its lane: the lane hands it only later events.
  seat->who->deliver(bundle(serialize(ack), missed ? *missed : std::vector<shared_frame>{}, false));
  if (!r.lanes_.empty()) lanes_add(r, *seat);
  counters.resumes.fetch_add(1, std::memory_order_relaxed);
  if (!missed) counters.resumes_unrecovered.fetch_add(1, std::memory_order_relaxed);
}

void hub::state::handle(room& r, room_drain& /*drain*/) {
  // Everything queued before the drain has been handed out (or, in a big room, posted to the
  // lanes, which tell their members after it): the members' closes come after it.
  if (r.lanes_.empty()) {
    for (const auto& seat : r.members_)
      if (seat.who) seat.who->room_closing();
  }
  // Held seats end with the room; their timers must not keep the server running.
  counters.held_seats.fetch_sub(r.grace_.size(), std::memory_order_relaxed);
  r.grace_.clear();
  for (auto& [name, entry] : r.names_)
    revoke_token(entry);
  for (const auto& lane : r.lanes_)
    lane->close_all();
  counters.members.fetch_sub(r.members_.size(), std::memory_order_relaxed);
  r.members_.clear();
  r.names_.clear();
  r.users_.store(0, std::memory_order_relaxed);
}

void hub::state::handle(room& r, found_slow& found) {
  // Members that left or were evicted since the lane found them are gone already.
  std::vector<room::seat> slow;
  for (const auto id : found.member_ids) {
    // A seat held for a resume gets nothing, so it is not slow.
    if (const auto seat = find_seat(r, id); seat != r.members_.end() && seat->who)
      slow.push_back(*seat);
  }
  if (!slow.empty()) evict_and_tell(r, std::move(slow));
}

void hub::state::broadcast(room& r, const room_event& event, const room::seat* also,
                           frame::clock::time_point arrived, const personal_frame& instead) {
  auto slow = hand_out(r, event, also, arrived, instead);
  if (!slow.empty()) evict_and_tell(r, std::move(slow));
}

void hub::state::evict_and_tell(room& r, std::vector<room::seat> slow) {
  // A full outbox means the member has stopped keeping up. It is removed (so it can no longer
  // hold the room back or pin memory) and told to close; the others hear that it left. The
  // members found slow by one hand-out are all removed before any of their leave notices goes
  // out, and notices that find more slow members make another round: no recursion, and k
  // evictions in a room of n cost O(n + k·(n−k)) deliveries.
  while (!slow.empty()) {
    evict_all(r, slow);
    std::vector<room::seat> more;
    for (const auto& seat : slow) {
      room_event notice = event_for(r, room_event_kind::leave, seat.name);
      notice.reason = leave_reason::slow_consumer;
      auto found = hand_out(r, notice);
      more.insert(more.end(), std::make_move_iterator(found.begin()),
                  std::make_move_iterator(found.end()));
    }
    // A member found slow by several notices is evicted once.
    std::sort(more.begin(), more.end(), by_id);
    more.erase(std::unique(more.begin(), more.end(),
                           [](const room::seat& a, const room::seat& b) {
                             return a.member_id == b.member_id;
                           }),
               more.end());
    slow = std::move(more);
  }
}

std::vector<room::seat> hub::state::hand_out(room& r, const room_event& event,
                                             const room::seat* also,
                                             frame::clock::time_point arrived,
                                             const personal_frame& instead) {
  // A chat message's frame counts down its recipients' writes (plus one held here while
  // handing it out), so that whoever lets go of it last can measure its delivery latency.
  const bool timed = arrived != frame::clock::time_point{};
  const auto recipients = static_cast<std::uint32_t>(r.members_.size() + (also ? 1 : 0) + 1);
  const auto shared =
      std::make_shared<const frame>(serialize(event), arrived, timed ? recipients : 0);
  counters.broadcasts_by_shard[r.home_.index].value.fetch_add(1, std::memory_order_relaxed);
  r.history_.record(event.seq, shared,
                    event.kind == room_event_kind::message ? room_history::kind::chat
                                                           : room_history::kind::membership);
  std::vector<room::seat> slow;
  std::uint32_t undelivered = 1;  // the reference held here
  if (!r.lanes_.empty()) {
    hand_to_lanes(r, shared, also, instead);
  } else {
    undelivered += deliver_to(r.members_, shared, instead, slow);
    if (also != nullptr && also->who->deliver(shared) != delivery::queued) ++undelivered;
  }
  release_writes(*shared, undelivered, delivery_latency);
  return slow;
}

std::uint32_t hub::state::deliver_to(const std::vector<room::seat>& seats,
                                     const shared_frame& shared, const personal_frame& instead,
                                     std::vector<room::seat>& slow) {
  std::uint32_t undelivered = 0;
  for (const auto& seat : seats) {
    if (!seat.who) {  // held for a resume: the history keeps the event for it
      ++undelivered;
      continue;
    }
    const bool personal = seat.member_id == instead.member_id && instead.frame;
    const auto outcome = seat.who->deliver(personal ? instead.frame : shared);
    if (outcome != delivery::queued) ++undelivered;
    if (outcome == delivery::full) slow.push_back(seat);
  }
  return undelivered;
}

void hub::state::hand_to_lanes(room& r, const shared_frame& shared, const room::seat* also,
                               const personal_frame& instead) {
  // The leaver's acknowledgement goes through its own lane, after the frames still queued there.
  const std::size_t also_lane = also != nullptr ? also->member_id % r.lanes_.size() : 0;
  for (std::size_t i = 0; i < r.lanes_.size(); ++i) {
    std::shared_ptr<member> extra;
    if (also != nullptr && i == also_lane) extra = also->who;
    r.lanes_[i]->hand_out(shared, instead.member_id, instead.frame, std::move(extra));
  }
}

void hub::state::open_lanes(room& r) {
  const std::size_t count =
      options.fanout_lanes > 0 ? options.fanout_lanes : executors.size();  // 0: one per thread
  // A lane reports the members it found full through the room's inbox, so that the room evicts
  // them on its own strand, in order with its other events. (A weak reference: the room owns
  // its lanes.)
  const std::weak_ptr<room> weak = r.shared_from_this();
  auto report = [weak](std::vector<std::uint64_t> member_ids) {
    const auto target = weak.lock();
    if (!target) return;
    room_message found = found_slow{std::move(member_ids)};
    net::co_spawn(target->home_.strand, enqueue(target->inbox_, std::move(found)),
                  log_exception{"slow report"});
  };
  auto caught_up = [weak] {
    const auto target = weak.lock();
    if (!target) return;
    // The timer belongs to the room's strand.
    net::post(target->home_.strand, [target] { target->lanes_caught_up_->cancel(); });
  };
  r.lanes_caught_up_.emplace(r.home_.strand, net::steady_timer::time_point::max());
  std::vector<std::vector<fanout_lane::seat>> parts(count);
  for (const auto& seat : r.members_)
    parts[seat.member_id % count].push_back({seat.member_id, seat.who});
  r.lanes_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    // Starting on the shard's own thread, so that with one lane per thread each gets one.
    const auto& executor = executors[(r.home_.thread + i) % executors.size()];
    r.lanes_.push_back(std::make_shared<fanout_lane>(
        executor, options.fanout_chunk, options.room_inbox, delivery_latency, report, caught_up));
    r.lanes_.back()->fill(std::move(parts[i]));
  }
}

net::awaitable<void> hub::state::wait_for_lanes(room& r) {
  const auto behind = [&r] {
    return std::any_of(r.lanes_.begin(), r.lanes_.end(),
                       [](const auto& lane) { return lane->behind(); });
  };
  // A lane that catches up after this check posts its cancel to this strand, so it runs only
  // once this coroutine waits.
  while (behind()) {
    r.lanes_caught_up_->expires_at(net::steady_timer::time_point::max());
    co_await r.lanes_caught_up_->async_wait(use_nothrow);
  }
}

void hub::state::lanes_add(room& r, const room::seat& seat) {
  r.lanes_[seat.member_id % r.lanes_.size()]->add({seat.member_id, seat.who});
}

void hub::state::lanes_remove(room& r, const std::vector<room::seat>& gone) {
  std::vector<std::vector<std::uint64_t>> per_lane(r.lanes_.size());
  for (const auto& seat : gone)
    per_lane[seat.member_id % r.lanes_.size()].push_back(seat.member_id);
  for (std::size_t i = 0; i < r.lanes_.size(); ++i) {
    if (!per_lane[i].empty()) r.lanes_[i]->remove(std::move(per_lane[i]));
  }
}

void hub::state::evict_all(room& r, const std::vector<room::seat>& slow) {
  // `slow` is in delivery order, so its ids ascend: one pass over the members removes them all.
  const auto is_slow = [&slow](const room::seat& seat) {
    return std::binary_search(slow.begin(), slow.end(), seat, by_id);
  };
  std::erase_if(r.members_, is_slow);
  r.users_.store(r.members_.size(), std::memory_order_relaxed);
  if (!r.lanes_.empty()) lanes_remove(r, slow);
  for (const auto& seat : slow) {
    counters.members.fetch_sub(1, std::memory_order_relaxed);
    counters.evictions.fetch_add(1, std::memory_order_relaxed);
    if (const auto name = r.names_.find(seat.name);
        name != r.names_.end() && name->second.member_id == seat.member_id) {
      revoke_token(name->second);
      r.names_.erase(name);
    }
    log_info("evicting slow consumer '", seat.name, "' from room ", r.id_.key());
    seat.who->evict();
  }
  unlist_if_empty(r);
}

hub_counters::hub_counters(std::size_t shards) : broadcasts_by_shard(shards) {}

std::uint64_t hub_counters::broadcasts() const noexcept {
  std::uint64_t total = 0;
  for (const auto& shard : broadcasts_by_shard)
    total += shard.value.load(std::memory_order_relaxed);
  return total;
}

hub::hub(const net::any_io_executor& executor, const hub_options& options,
         latency_histogram* delivery_latency)
    : hub(std::vector<net::any_io_executor>{executor}, options, delivery_latency) {}

hub::hub(const std::vector<net::any_io_executor>& executors, const hub_options& options,
         latency_histogram* delivery_latency)
    : state_(std::make_shared<state>(executors, options, delivery_latency)) {}

hub::~hub() = default;

const hub_counters& hub::counters() const noexcept {
  return state_->counters;
}

net::awaitable<admission> hub::create(room_id id, std::string name, std::shared_ptr<member> who,
                                      admission_wishes wishes) {
  return admit(room_event_kind::create, id, std::move(name), std::move(who), wishes);
}

net::awaitable<admission> hub::join(room_id id, std::string name, std::shared_ptr<member> who,
                                    admission_wishes wishes) {
  return admit(room_event_kind::join, id, std::move(name), std::move(who), wishes);
}

net::awaitable<admission> hub::admit(room_event_kind kind, room_id id, std::string name,
                                     std::shared_ptr<member> who, admission_wishes wishes) {
  // On the strand of the room's shard, which owns the number, the names and the room.
  co_return co_await net::co_spawn(state_->shard_of(id).strand,
                                   state_->admit(kind, id, std::move(name), std::move(who), wishes),
                                   net::use_awaitable);
}

net::awaitable<admission> hub::resume(const resume_seat& request, std::shared_ptr<member> who) {
  const auto token = resume_token::parse(request.token);
  if (!token || !state_->offers_resume()) co_return wire_code::invalid_token;
  const auto known = state_->find_token(*token);
  auto target = known ? known->target.lock() : nullptr;
  if (!target) co_return wire_code::invalid_token;
  // Checked before anything changes: a token shown for the wrong room stays good for its own.
  if (request.room && !(*request.room == target->id_)) co_return wire_code::wrong_room;
  auto& strand = target->home_.strand;
  co_return co_await net::co_spawn(
      strand, state_->take_seat(std::move(target), *token, request.since, std::move(who)),
      net::use_awaitable);
}

net::awaitable<void> hub::say(const membership& seat, std::string text,
                              frame::clock::time_point arrived) {
  // Straight into the room's inbox from the member's own strand: chat needs no registry lookup,
  // so it does not queue behind the shard's strand.
  room_message said = member_said{seat.member_id, std::move(text), arrived, seat.holder};
  co_await enqueue(seat.handle->inbox_, std::move(said));
}

net::awaitable<void> hub::leave(membership seat, leave_reason reason) {
  auto& strand = seat.handle->home_.strand;
  co_await net::co_spawn(strand, state_->remove(std::move(seat), reason), net::use_awaitable);
}

void hub::shutdown() {
  // Each room gets the drain through its inbox, after the events it has already accepted, and
  // ends when it has handled it (run_room).
  for (const auto& home : state_->shards) {
    net::dispatch(home->strand, [s = state_, &home = *home] {
      for (auto& [key, r] : home.registry) {
        r->listed_ = false;
        net::co_spawn(home.strand, enqueue(r->inbox_, room_drain{}), log_exception{"drain"});
      }
      s->counters.rooms.fetch_sub(home.registry.size());
      home.registry.clear();
    });
  }
}

}  // namespace roomcast
