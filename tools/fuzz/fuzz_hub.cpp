// fuzz_hub: the real roomcast::hub driven by a fuzzed sequence of connection events, checked
// after every step against a model of the rooms kept here.
//
// Five connection slots, four room numbers and four names, so that collisions are common. Each
// slot holds a fake member (a recording roomcast::member whose deliver() answers queued, full or
// closed as the fuzzer sets it). Every hub call is co_spawn'ed on a single-threaded io_context and
// driven with poll_one() until it is done, then poll() lets the rooms handle what it queued; so
// the system is quiescent between steps and the model predicts every frame every member gets.
//
// Input: byte 0 sets the hub's options: the room inbox capacity (bits 0-1: 1..4, small so that
// senders wait), --max-rooms (bits 2-3: 1..4, or the default when bit 7 is set) and --max-members
// (bits 4-5: 1..4, or the default when bit 6 is set). Then two bytes
// per step: [a] [b = room:2 | name:2 | as_number:1 | count:3], op = a % 9, slot = a / 9 % 5.
//   op 0 connect   1 create   2 join   3 say   4 leave   5 disconnect
//      6 toggle the slot's reader: queued -> full -> closed -> queued
//      7 burst: `count` messages said one after the other by one coroutine, without letting the
//        room run in between, so the inbox fills and the sender waits
//      8 concurrent bursts: the slots in b's low five bits (those in a room and not slow) each
//        burst `count` messages at the same time, while `slot`, when it is not one of them,
//        leaves; the order the room took them in is read from a member that hears them all, and
//        must keep each sender's order
// Like the session does, create/join are only sent outside a room (and never by an evicted
// member), say/leave only inside one.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include "roomcast/hub.hpp"
#include "roomcast/log.hpp"
#include "roomcast/metrics.hpp"
#include "roomcast/net.hpp"

#include "fuzz_check.hpp"
#include "step_runner.hpp"

namespace json = boost::json;
using namespace roomcast;

namespace {

constexpr int slot_count = 5;
constexpr std::uint16_t room_keys[] = {1234, 5678, 9999, 42};
constexpr const char* names[] = {"alice", "bob", "zoë", "小明"};
constexpr std::size_t max_steps = 512;

const char* answer_name(delivery d) {
  switch (d) {
    case delivery::queued:
      return "queued";
    case delivery::full:
      return "full";
    case delivery::closed:
      return "closed";
  }
  return "?";
}

// A connection as the hub sees it: records what it is given.
struct fake_member final : member {
  delivery answer = delivery::queued;
  bool evicted = false;
  int evict_calls = 0;
  int deliveries_after_eviction = 0;
  std::vector<shared_frame> frames;  // queued frames, in order
  std::size_t written = 0;           // frames[0, written) "written to the socket"

  delivery deliver(const shared_frame& frame) override {
    FUZZ_CHECK(frame != nullptr, "deliver(nullptr)");
    if (evicted) {
      // The real connection has closed its outbox by now; but the hub should not be asking.
      ++deliveries_after_eviction;
      return delivery::closed;
    }
    if (answer == delivery::queued) frames.push_back(frame);
    return answer;
  }
  void evict() override {
    ++evict_calls;
    evicted = true;
  }
  void room_closing() override {}  // only in the harness's final shutdown
};

// One room incarnation: the first frame seen for each seq, to compare the other recipients' with.
struct room_log {
  std::uint16_t key;
  std::map<std::uint64_t, std::pair<shared_frame, std::int64_t>> by_seq;  // seq -> frame, id
  std::string epoch;  // from the first newcomer's frame; the same in every other one
};

struct expected_frame {
  std::shared_ptr<room_log> log;
  std::uint64_t seq;
  json::object fields;  // all but "id"
};

// One connection's life: from connect to disconnect.
struct peer {
  int slot;
  int serial;  // for messages
  std::shared_ptr<fake_member> fm = std::make_shared<fake_member>();
  std::optional<membership> seat;
  std::uint16_t seat_key = 0;
  std::vector<expected_frame> expected;
  std::size_t checked = 0;
  bool expect_evicted = false;
  const room_log* last_log = nullptr;
  std::uint64_t last_seq = 0;
  std::int64_t last_id = 0;
};

struct model_seat {
  std::shared_ptr<peer> who;
  std::uint64_t member_id;
  std::string name;
};

struct model_room {
  json::value room_json;  // as its creator wrote it
  std::uint64_t seq = 0;
  std::vector<model_seat> members;  // in joining order
  std::shared_ptr<room_log> log;
};

room_id make_room_id(std::uint16_t key, bool as_number) {
  std::optional<room_id> id;
  if (as_number && key >= 1000) {
    id = room_id::from_json(json::value(static_cast<std::int64_t>(key)));
  } else {
    const char digits[4] = {
        static_cast<char>('0' + key / 1000), static_cast<char>('0' + key / 100 % 10),
        static_cast<char>('0' + key / 10 % 10), static_cast<char>('0' + key % 10)};
    id = room_id::from_json(json::value(json::string_view(digits, 4)));
  }
  FUZZ_CHECK(id.has_value(), "room_id::from_json refused room ", key);
  return *id;
}

// Says `texts` one after the other, as a session's read loop does, each stamped with the time it
// was "read" so that the room counts its recipients' writes for the delivery latency.
net::awaitable<void> say_all(hub& rooms, const membership& seat, std::vector<std::string> texts) {
  for (auto& text : texts)
    co_await rooms.say(seat, std::move(text), frame::clock::now());
}

class harness {
 public:
  explicit harness(const hub_options& options)
      : options_(options), rooms_(io_.get_executor(), options_, &latency_) {}

  ~harness() {
    // No coroutine may be left waiting on a channel when the io_context goes (architecture.md,
    // "Shutdown").
    rooms_.shutdown();
    io_.restart();
    io_.poll();
    FUZZ_CHECK(rooms_.counters().rooms == 0, "rooms after shutdown: ", rooms_.counters().rooms);
  }

  void step(std::uint8_t a, std::uint8_t b) {
    const int op = a % 9;
    const int slot = a / 9 % slot_count;
    const std::uint16_t key = room_keys[b & 3];
    const std::string name = names[(b >> 2) & 3];
    const bool as_number = (b >> 4) & 1;
    const int count = 1 + ((b >> 5) & 7);
    switch (op) {
      case 0:
        connect(slot);
        break;
      case 1:
        admit(room_event_kind::create, slot, key, name, as_number);
        break;
      case 2:
        admit(room_event_kind::join, slot, key, name, as_number);
        break;
      case 3:
        say(slot, 1);
        break;
      case 4:
        leave(slot, leave_reason::left);
        break;
      case 5:
        leave(slot, leave_reason::disconnected);
        slots_[slot].reset();
        break;
      case 6:
        toggle(slot);
        break;
      case 7:
        say(slot, count);
        break;
      case 8:
        concurrent_bursts(b & 31, count, slot);
        break;
    }
    check();
  }

 private:
  // ---- driving the hub -------------------------------------------------------------------
  // The stepping itself is shared with tests/unit/hub_test.cpp; a deadlock is a finding.
  template <class Done>
  void drive(Done done) {
    try {
      steps_.drive(done);
    } catch (const std::logic_error& stuck) {
      FUZZ_FAIL("the hub is ", stuck.what());
    }
  }

  template <class T>
  T run(net::awaitable<T> task) {
    try {
      return steps_.run(std::move(task));
    } catch (const std::logic_error& stuck) {
      FUZZ_FAIL("the hub is ", stuck.what());
    }
  }

  // ---- the operations --------------------------------------------------------------------
  peer& connect(int slot) {
    if (!slots_[slot]) {
      slots_[slot] = std::make_shared<peer>(peer{.slot = slot, .serial = next_serial_++});
      all_.push_back(slots_[slot]);
    }
    return *slots_[slot];
  }

  void admit(room_event_kind kind, int slot, std::uint16_t key, const std::string& name,
             bool as_number) {
    peer& p = connect(slot);
    if (p.seat || p.fm->evicted) return;  // the session refuses these itself (4008)
    const room_id id = make_room_id(key, as_number);

    const auto found = rooms_model_.find(key);
    std::optional<wire_code> predicted;
    if (kind == room_event_kind::create) {
      if (found != rooms_model_.end()) {
        predicted = wire_code::room_exists;
      } else if (rooms_model_.size() >= options_.max_rooms) {
        predicted = wire_code::too_many_rooms;
      }
    } else if (found == rooms_model_.end()) {
      predicted = wire_code::no_such_room;
    } else {
      for (const auto& s : found->second.members) {
        if (s.name == name) predicted = wire_code::name_taken;
      }
      if (!predicted && found->second.members.size() >= options_.max_members)
        predicted = wire_code::room_full;
    }

    std::string name_arg = name;
    auto call = kind == room_event_kind::create ? rooms_.create(id, std::move(name_arg), p.fm)
                                                : rooms_.join(id, std::move(name_arg), p.fm);
    admission result = run(std::move(call));

    if (predicted) {
      const auto* code = std::get_if<wire_code>(&result);
      FUZZ_CHECK(code && *code == *predicted, kind == room_event_kind::create ? "create" : "join",
                 " of room ", key, " as '", name, "': expected refusal ",
                 static_cast<int>(*predicted), ", got ",
                 code ? std::to_string(static_cast<int>(*code)) : std::string("admission"));
      return;
    }
    auto* seat = std::get_if<membership>(&result);
    FUZZ_CHECK(seat != nullptr, kind == room_event_kind::create ? "create" : "join", " of room ",
               key, " as '", name, "' refused with ",
               static_cast<int>(std::get<wire_code>(result)));
    FUZZ_CHECK(seat->name == name && seat->handle != nullptr, "membership fields");
    FUZZ_CHECK(seat->member_id > last_member_id_, "member ids are not increasing");
    last_member_id_ = seat->member_id;

    if (kind == room_event_kind::create) {
      model_room created;
      created.room_json = id.to_json();
      created.log = std::make_shared<room_log>(room_log{key, {}});
      rooms_model_.emplace(key, std::move(created));
    }
    model_room& r = rooms_model_.at(key);
    const auto self = slots_[slot];
    r.members.push_back({self, seat->member_id, name});
    p.seat = std::move(*seat);
    p.seat_key = key;
    emit(r, kind, name, {}, leave_reason::left, nullptr);
    drop_if_empty(key);  // a newcomer whose outbox is already full is evicted at once
  }

  void say(int slot, int count) {
    if (!slots_[slot] || !slots_[slot]->seat) return;  // the session refuses it itself (4007)
    peer& p = *slots_[slot];
    std::vector<std::string> texts;
    for (int i = 0; i < count; ++i)
      texts.push_back(next_text(p));
    run(say_all(rooms_, *p.seat, texts));
    // The model: the room handles them one by one; a message from a member it has removed (an
    // evicted one, possibly by the first message of this very burst) is dropped.
    for (auto& text : texts) {
      const auto found = rooms_model_.find(p.seat_key);
      if (found == rooms_model_.end()) continue;
      model_room& r = found->second;
      const auto seat = find_member(r, p.seat->member_id);
      if (seat == r.members.end()) continue;
      const std::string name = seat->name;
      emit(r, room_event_kind::message, name, text, leave_reason::left, nullptr);
      drop_if_empty(p.seat_key);
    }
  }

  // Several senders at once, each its own coroutine, and at the same time one member (`leaver`,
  // unless it is a sender) leaving; with a small inbox they wait on each other. Members whose
  // reader is full take no part (the order would decide whether they are evicted before they
  // speak or leave, and no member may be able to tell).
  void concurrent_bursts(int mask, int count, int leaver_slot) {
    struct sender {
      std::shared_ptr<peer> who;
      std::vector<std::string> texts;
      std::size_t next = 0;
    };
    std::vector<sender> senders;
    for (int slot = 0; slot < slot_count; ++slot) {
      const auto& p = slots_[slot];
      if (!(mask & (1 << slot)) || !p || !p->seat || p->fm->answer == delivery::full) continue;
      sender s{p, {}};
      for (int i = 0; i < count; ++i)
        s.texts.push_back(next_text(*p));
      senders.push_back(std::move(s));
    }
    std::shared_ptr<peer> leaver = slots_[leaver_slot];
    if ((mask & (1 << leaver_slot)) || !leaver || !leaver->seat
        || leaver->fm->answer == delivery::full) {
      leaver.reset();
    }
    if (senders.empty() && !leaver) return;

    int running = static_cast<int>(senders.size()) + (leaver ? 1 : 0);
    std::exception_ptr failure;
    const auto finished = [&](std::exception_ptr e) {
      if (e) failure = e;
      --running;
    };
    for (auto& s : senders)
      net::co_spawn(io_, say_all(rooms_, *s.who->seat, s.texts), finished);
    std::uint64_t leaver_id = 0;
    if (leaver) {
      membership seat = std::move(*leaver->seat);
      leaver->seat.reset();
      leaver_id = seat.member_id;
      net::co_spawn(io_, rooms_.leave(std::move(seat), leave_reason::left), finished);
    }
    drive([&] { return running == 0; });
    if (failure) std::rethrow_exception(failure);

    // The model, room by room: take the events in the order a member that heard them all
    // received them (any order when nobody could hear them: then no one can tell).
    struct room_part {
      std::vector<sender*> senders;
      peer* leaver = nullptr;
      std::string leaver_name;
    };
    std::map<std::uint16_t, room_part> by_room;
    for (auto& s : senders) {
      const auto found = rooms_model_.find(s.who->seat_key);
      if (found == rooms_model_.end()
          || find_member(found->second, s.who->seat->member_id) == found->second.members.end()) {
        continue;  // a stale seat (evicted earlier): the room drops all of it
      }
      by_room[s.who->seat_key].senders.push_back(&s);
    }
    if (leaver) {
      const auto found = rooms_model_.find(leaver->seat_key);
      if (found != rooms_model_.end()) {
        const auto seat = find_member(found->second, leaver_id);
        if (seat != found->second.members.end()) {
          auto& part = by_room[leaver->seat_key];
          part.leaver = leaver.get();
          part.leaver_name = seat->name;
        }
      }
    }
    for (auto& [key, part] : by_room) {
      model_room& r = rooms_model_.at(key);
      std::map<std::string, sender*> owner;
      for (auto* s : part.senders) {
        for (const auto& t : s->texts)
          owner[t] = s;
      }
      // nullptr: the leave.
      std::vector<std::pair<sender*, std::string>> order;
      bool leave_placed = part.leaver == nullptr;
      const peer* observer = nullptr;
      for (const auto& m : r.members) {
        if (m.who->fm->answer == delivery::queued
            && (observer == nullptr || observer == part.leaver))
          observer = m.who.get();
      }
      if (observer != nullptr) {
        const auto& frames = observer->fm->frames;
        for (std::size_t i = observer->checked; i < frames.size(); ++i) {
          json::error_code ec;
          const json::value frame = json::parse(frames[i]->payload(), ec);
          if (ec || !frame.is_object()) continue;  // check_peer reports it
          const auto& object = frame.get_object();
          const auto* event = object.if_contains("event");
          const auto* text = object.if_contains("text");
          const auto* name = object.if_contains("name");
          const auto* reason = object.if_contains("reason");
          if (!leave_placed && event && *event == "leave" && reason && *reason == "left" && name
              && name->is_string() && name->get_string() == part.leaver_name) {
            order.emplace_back(nullptr, std::string());
            leave_placed = true;
            continue;
          }
          if (!event || *event != "message" || !text || !text->is_string()) continue;
          const std::string said(text->get_string());
          const auto it = owner.find(said);
          if (it == owner.end()) continue;  // check_peer reports it
          sender* s = it->second;
          FUZZ_CHECK(s->next < s->texts.size() && s->texts[s->next] == said, "room ", key,
                     ": slot ", s->who->slot, "'s message '", said,
                     "' arrived out of its sender's order or twice");
          ++s->next;
          order.emplace_back(s, said);
        }
      }
      // Whatever the observer did not see (nothing, unless something was lost): round robin,
      // the leave last.
      for (bool more = true; more;) {
        more = false;
        for (auto* s : part.senders) {
          if (s->next < s->texts.size()) {
            order.emplace_back(s, s->texts[s->next++]);
            more = true;
          }
        }
      }
      if (!leave_placed) order.emplace_back(nullptr, std::string());

      for (const auto& [s, text] : order) {
        if (s == nullptr) {
          const auto seat = find_member(r, leaver_id);
          if (seat == r.members.end()) continue;
          const std::string name = seat->name;
          r.members.erase(seat);
          emit(r, room_event_kind::leave, name, {}, leave_reason::left, part.leaver);
          continue;
        }
        const auto seat = find_member(r, s->who->seat->member_id);
        if (seat == r.members.end()) continue;
        const std::string name = seat->name;
        emit(r, room_event_kind::message, name, text, leave_reason::left, nullptr);
      }
      drop_if_empty(key);
    }
  }

  void leave(int slot, leave_reason reason) {
    if (!slots_[slot] || !slots_[slot]->seat) return;
    const auto self = slots_[slot];
    peer& p = *self;
    membership seat = std::move(*p.seat);
    p.seat.reset();
    const std::uint64_t member_id = seat.member_id;
    run(rooms_.leave(std::move(seat), reason));

    const auto found = rooms_model_.find(p.seat_key);
    if (found == rooms_model_.end()) return;
    model_room& r = found->second;
    const auto it = find_member(r, member_id);
    if (it == r.members.end()) return;  // evicted earlier: leave is a no-op
    const std::string name = it->name;
    r.members.erase(it);
    emit(r, room_event_kind::leave, name, {}, reason,
         reason == leave_reason::left ? self.get() : nullptr);
    drop_if_empty(p.seat_key);
  }

  void toggle(int slot) {
    peer& p = connect(slot);
    switch (p.fm->answer) {
      case delivery::queued:
        p.fm->answer = delivery::full;
        break;
      case delivery::full:
        p.fm->answer = delivery::closed;
        break;
      case delivery::closed:
        p.fm->answer = delivery::queued;
        break;
    }
  }

  // ---- the model -------------------------------------------------------------------------
  static std::vector<model_seat>::iterator find_member(model_room& r, std::uint64_t member_id) {
    return std::find_if(r.members.begin(), r.members.end(),
                        [member_id](const model_seat& s) { return s.member_id == member_id; });
  }

  void drop_if_empty(std::uint16_t key) {
    const auto found = rooms_model_.find(key);
    if (found != rooms_model_.end() && found->second.members.empty()) rooms_model_.erase(found);
  }

  std::string next_text(const peer& p) {
    // Unique, so that a lost or duplicated message shows; some with characters JSON escapes.
    std::string text = "m" + std::to_string(p.serial) + "." + std::to_string(next_message_++);
    if (next_message_ % 3 == 0) text += " \"\\\n\t/é 你好 \x7f";
    if (next_message_ % 7 == 0) text.push_back('\0');
    return text;
  }

  // What the room does for one event: number it, hand it to every member (and `also`), then
  // evict the members whose outbox was full: all of them leave the room, then each one's leave
  // notice is an event of its own.
  void emit(model_room& r, room_event_kind kind, const std::string& name, const std::string& text,
            leave_reason reason, peer* also) {
    json::object fields;
    fields["code"] = 200;
    const char* event = kind == room_event_kind::create  ? "create"
                        : kind == room_event_kind::join  ? "join"
                        : kind == room_event_kind::leave ? "leave"
                                                         : "message";
    fields["event"] = event;
    fields["roomId"] = r.room_json;
    fields["name"] = name;
    std::string notice;
    switch (kind) {
      case room_event_kind::create:
        notice = name + " created the room";
        break;
      case room_event_kind::join:
        notice = name + " joined the room";
        break;
      case room_event_kind::message:
        notice = text;
        break;
      case room_event_kind::leave:
        notice =
            name
            + (reason == leave_reason::left           ? " left the room"
               : reason == leave_reason::disconnected ? " disconnected"
                                                      : " was disconnected (too slow to keep up)");
        break;
    }
    fields["text"] = notice;
    fields["users"] = static_cast<std::int64_t>(r.members.size());
    const std::uint64_t seq = ++r.seq;
    if (kind == room_event_kind::message) ++messages_;
    fields["seq"] = static_cast<std::int64_t>(seq);
    // The roster goes to the newcomer only (the last member, on its own create or join).
    json::object roster_fields;
    const peer* newcomer = nullptr;
    if (kind == room_event_kind::create || kind == room_event_kind::join) {
      json::array list;
      for (const auto& s : r.members)
        list.emplace_back(s.name);
      roster_fields = fields;
      roster_fields["members"] = std::move(list);
      newcomer = r.members.back().who.get();
    }
    if (kind == room_event_kind::leave) {
      fields["reason"] = reason == leave_reason::left           ? "left"
                         : reason == leave_reason::disconnected ? "disconnected"
                                                                : "slow_consumer";
    }

    std::vector<model_seat> slow;
    const auto hand_to = [&](peer& p) {
      if (p.fm->answer != delivery::queued) return;
      p.expected.push_back({r.log, seq, &p == newcomer ? roster_fields : fields});
    };
    for (const auto& s : r.members) {
      hand_to(*s.who);
      if (s.who->fm->answer == delivery::full) slow.push_back(s);
    }
    if (also != nullptr) hand_to(*also);
    // Every member found slow is removed first; then each one's leave notice goes out.
    for (const auto& s : slow) {
      r.members.erase(find_member(r, s.member_id));
      s.who->expect_evicted = true;
      ++evictions_;
    }
    for (const auto& s : slow)
      emit(r, room_event_kind::leave, s.name, {}, leave_reason::slow_consumer, nullptr);
  }

  // ---- the checks, after every step ------------------------------------------------------
  void check() {
    std::size_t members = 0;
    for (const auto& [key, r] : rooms_model_) {
      FUZZ_CHECK(!r.members.empty(), "model: empty room ", key);
      members += r.members.size();
    }
    const auto& counters = rooms_.counters();
    FUZZ_CHECK(counters.rooms == rooms_model_.size(), "hub has ", counters.rooms.load(),
               " rooms, the model ", rooms_model_.size(), " non-empty ones");
    FUZZ_CHECK(counters.members == members, "hub has ", counters.members.load(),
               " members, the model ", members);
    FUZZ_CHECK(counters.evictions == evictions_, "hub evicted ", counters.evictions.load(),
               ", the model ", evictions_);
    for (const auto& p : all_)
      check_peer(*p);
    // Now every member "writes" what it was given, as a session's write loop does: a chat
    // message's frame counts down its writes, and whoever lets go of it last (the room, when no
    // one queued it) records its delivery latency, once per message.
    for (const auto& p : all_)
      write_frames(*p);
    FUZZ_CHECK(latency_.count() == messages_, latency_.count(), " delivery latencies recorded for ",
               messages_, " chat messages");
    // users() of every seat the room still has.
    for (const auto& [key, r] : rooms_model_) {
      for (const auto& s : r.members) {
        FUZZ_CHECK(s.who->seat && s.who->seat->member_id == s.member_id,
                   "model: a member without its seat");
        FUZZ_CHECK(s.who->seat->users() == r.members.size(), "users() of '", s.name, "' in ", key,
                   " is ", s.who->seat->users(), ", the room has ", r.members.size());
      }
    }
  }

  void write_frames(peer& p) {
    auto& fm = *p.fm;
    for (; fm.written < fm.frames.size(); ++fm.written) {
      const frame& f = *fm.frames[fm.written];
      const bool message = p.expected[fm.written].fields.at("event") == "message";
      const bool timed = f.arrived != frame::clock::time_point{};
      FUZZ_CHECK(timed == message, "slot ", p.slot, ": ", message ? "a chat" : "a notice",
                 " frame ", timed ? "carries" : "lacks", " an arrival time: ", f.payload());
      if (!timed) continue;
      const auto before = f.writes_left.fetch_sub(1, std::memory_order_acq_rel);
      FUZZ_CHECK(before >= 1, "slot ", p.slot, ": writes_left underflows: ", f.payload());
      if (before == 1) latency_.observe(frame::clock::now() - f.arrived);
    }
  }

  void check_peer(peer& p) {
    const auto& got = p.fm->frames;
    FUZZ_CHECK(p.fm->deliveries_after_eviction == 0, "slot ", p.slot,
               " was handed a frame after its eviction");
    FUZZ_CHECK(p.fm->evict_calls <= 1, "slot ", p.slot, " evicted ", p.fm->evict_calls, " times");
    FUZZ_CHECK(p.fm->evicted == p.expect_evicted, "slot ", p.slot,
               p.expect_evicted ? " should have been evicted" : " was evicted unexpectedly");
    for (std::size_t i = p.checked; i < std::min(got.size(), p.expected.size()); ++i) {
      const expected_frame& want = p.expected[i];
      json::error_code ec;
      const json::value value = json::parse(got[i]->payload(), ec);
      FUZZ_CHECK(!ec && value.is_object(), "slot ", p.slot,
                 " got a frame that is not JSON: ", got[i]->bytes);
      json::object frame = value.get_object();
      FUZZ_CHECK(frame.contains("id") && frame.at("id").is_int64(),
                 "no integer id: ", got[i]->bytes);
      const std::int64_t id = frame.at("id").get_int64();
      frame.erase("id");
      // A newcomer's own frame carries its room's epoch: random, the same for the whole room.
      if (want.fields.contains("members")) {
        const auto* epoch = frame.if_contains("epoch");
        FUZZ_CHECK(epoch && epoch->is_string() && epoch->get_string().size() == 16,
                   "no epoch in a newcomer's frame: ", got[i]->bytes);
        const std::string text(epoch->get_string());
        if (want.log->epoch.empty()) want.log->epoch = text;
        FUZZ_CHECK(want.log->epoch == text, "room ", want.log->key, " changed its epoch");
        frame.erase("epoch");
      }
      FUZZ_CHECK(frame == want.fields, "slot ", p.slot, " frame ", i, " (",
                 answer_name(p.fm->answer), "):\n  got      ", got[i]->bytes, "\n  expected ",
                 json::serialize(want.fields));
      // The same event is the same shared frame for every recipient (but the newcomer, whose copy
      // carries the roster and has the event's id); ids increase with seq.
      auto& by_seq = want.log->by_seq;
      if (want.fields.contains("members")) {
        if (const auto same = by_seq.find(want.seq); same != by_seq.end()) {
          FUZZ_CHECK(same->second.second == id, "room ", want.log->key, " seq ", want.seq,
                     ": the newcomer's copy has another id");
        }
      } else if (const auto same = by_seq.find(want.seq); same != by_seq.end()) {
        FUZZ_CHECK(same->second.first == got[i], "room ", want.log->key, " seq ", want.seq,
                   " was serialized more than once");
      } else {
        const auto [it, inserted] = by_seq.emplace(want.seq, std::pair{got[i], id});
        if (it != by_seq.begin()) {
          FUZZ_CHECK(std::prev(it)->second.second < id, "room ", want.log->key, " id of seq ",
                     want.seq, " is not above the one of seq ", std::prev(it)->first);
        }
        if (std::next(it) != by_seq.end()) {
          FUZZ_CHECK(std::next(it)->second.second > id, "room ", want.log->key, " id of seq ",
                     want.seq, " is not below the one of seq ", std::next(it)->first);
        }
      }
      if (p.last_log == want.log.get()) {
        FUZZ_CHECK(want.seq > p.last_seq && id > p.last_id, "slot ", p.slot,
                   ": seq/id not increasing in room ", want.log->key);
      }
      p.last_log = want.log.get();
      p.last_seq = want.seq;
      p.last_id = id;
    }
    if (got.size() != p.expected.size()) {
      std::string detail;
      for (std::size_t i = std::min(got.size(), p.expected.size());
           i < std::max(got.size(), p.expected.size()); ++i) {
        detail += i < got.size() ? "\n  extra    " + got[i]->bytes
                                 : "\n  missing  " + json::serialize(p.expected[i].fields);
      }
      FUZZ_FAIL("slot ", p.slot, " received ", got.size(), " frames, the model expected ",
                p.expected.size(), detail);
    }
    p.checked = got.size();
  }

  latency_histogram latency_;  // the room's and the fake writers' delivery latencies
  hub_options options_;
  net::io_context io_;
  roomcast::testing::step_runner steps_{io_};
  hub rooms_;
  std::shared_ptr<peer> slots_[slot_count];
  std::vector<std::shared_ptr<peer>> all_;  // every connection so far, for the checks
  std::map<std::uint16_t, model_room> rooms_model_;
  std::uint64_t evictions_ = 0;
  std::uint64_t messages_ = 0;  // chat messages the rooms broadcast
  std::uint64_t last_member_id_ = 0;
  int next_serial_ = 0;
  int next_message_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  set_log_level(log_level::off);  // evictions are logged at info
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t o = data[0];
  const hub_options options{
      .room_inbox = 1u + (o & 3u),
      .max_rooms = (o & 0x80) ? hub_options{}.max_rooms : 1u + ((o >> 2) & 3u),
      .max_members = (o & 0x40) ? hub_options{}.max_members : 1u + ((o >> 4) & 3u)};
  harness h(options);
  for (std::size_t i = 1; i + 1 < size && (i - 1) / 2 < max_steps; i += 2)
    h.step(data[i], data[i + 1]);
  return 0;
}
