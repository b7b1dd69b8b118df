#include "roomcast/protocol.hpp"

#include <array>
#include <cmath>
#include <exception>

#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/serialize.hpp>

#include "roomcast/rules.hpp"

namespace roomcast {
namespace json = boost::json;

namespace {

// One row per wire code: its token (`error` field) and its sentence (`text` field).
struct code_description {
  wire_code code;
  std::string_view token;
  std::string_view text;
};

constexpr auto code_descriptions = std::to_array<code_description>({
    {wire_code::ok, "ok", "ok"},
    {wire_code::malformed_frame, "malformed_frame", "The frame is not a JSON object."},
    {wire_code::unknown_type, "unknown_type", "Unknown message type."},
    {wire_code::invalid_field, "invalid_field", "A field is missing or has the wrong type."},
    {wire_code::invalid_room_id, "invalid_room_id", "The room number must be exactly 4 digits."},
    {wire_code::invalid_name, "invalid_name",
     "The name must be 1 to 32 characters without control characters."},
    {wire_code::empty_text, "empty_text", "The message is empty."},
    {wire_code::text_too_long, "text_too_long", "The message is too long."},
    {wire_code::not_in_room, "not_in_room", "You are not in a room."},
    {wire_code::already_in_room, "already_in_room", "You are already in a room; leave it first."},
    {wire_code::rate_limited, "rate_limited",
     "You are sending too fast; that message was dropped."},
    {wire_code::invalid_token, "invalid_token",
     "That resume token is not valid (unknown, expired or already used)."},
    {wire_code::wrong_room, "wrong_room", "That resume token belongs to another room."},
    {wire_code::since_ahead, "since_ahead", "`since` is beyond the room's last event."},
    {wire_code::room_exists, "room_exists", "That room number already exists."},
    {wire_code::name_taken, "name_taken", "That name is already used in this room."},
    {wire_code::room_full, "room_full", "That room is full."},
    {wire_code::no_such_room, "no_such_room", "That room does not exist."},
    {wire_code::too_many_rooms, "too_many_rooms", "The server has no room for another room."},
    {wire_code::unavailable, "unavailable",
     "The chat service is briefly unavailable; nothing was done. Try again."},
});

const code_description& description_of(wire_code code) noexcept {
  for (const auto& row : code_descriptions) {
    if (row.code == code) return row;
  }
  return code_descriptions[1];  // unreachable for a valid enum value
}

}  // namespace

std::string_view describe(wire_code code) noexcept {
  return description_of(code).text;
}

std::string_view token(wire_code code) noexcept {
  return description_of(code).token;
}

std::optional<room_id> room_id::from_json(const json::value& value) noexcept {
  if (const auto* number = value.if_int64()) {
    if (*number >= 1000 && *number <= 9999)
      return room_id(static_cast<std::uint16_t>(*number), true);
  } else if (const auto* unsigned_number = value.if_uint64()) {
    if (*unsigned_number >= 1000 && *unsigned_number <= 9999) {
      return room_id(static_cast<std::uint16_t>(*unsigned_number), true);
    }
  } else if (const auto* text = value.if_string()) {
    if (text->size() != 4) return std::nullopt;
    std::uint16_t key = 0;
    for (const char c : *text) {
      if (c < '0' || c > '9') return std::nullopt;
      key = static_cast<std::uint16_t>(key * 10 + (c - '0'));
    }
    return room_id(key, false);
  }
  return std::nullopt;
}

std::optional<room_id> room_id::from_key(std::uint16_t key, bool as_number) noexcept {
  if (key > 9999 || (as_number && key < 1000)) return std::nullopt;
  return room_id(key, as_number);
}

json::value room_id::to_json() const {
  if (as_number_) return json::value(static_cast<std::int64_t>(key_));
  const std::array<char, 4> digits = {
      static_cast<char>('0' + key_ / 1000), static_cast<char>('0' + key_ / 100 % 10),
      static_cast<char>('0' + key_ / 10 % 10), static_cast<char>('0' + key_ % 10)};
  return json::value(json::string_view(digits.data(), digits.size()));
}

namespace {
// A value fit to send back: Boost.JSON reads 1e999 as infinity, which JSON cannot express (it
// would serialize as `Infinity` and break the client's JSON.parse), so such numbers are dropped.
json::value echoable(const json::value& value) {
  if (const auto* number = value.if_double(); number && !std::isfinite(*number)) return nullptr;
  return value;
}
}  // namespace

rejection rejection::of_admission(wire_code code, const json::object& frame) {
  rejection refusal{code};
  if (const auto* room = frame.if_contains("roomId")) refusal.room = echoable(*room);
  if (const auto* name = frame.if_contains("name")) refusal.name = echoable(*name);
  return refusal;
}

namespace {

enum class command_kind { create, join, say, leave, resume, unknown };

// The seed client's Send button passes its click event as `type`, which JSON.stringify turns
// into {"isTrusted":true}; so an object, like a missing or empty type, means "chat".
command_kind classify(const json::value* type) noexcept {
  if (type == nullptr || type->is_null() || type->is_object()) return command_kind::say;
  const auto* name = type->if_string();
  if (name == nullptr) return command_kind::unknown;
  if (name->empty() || *name == "message") return command_kind::say;
  if (*name == "create") return command_kind::create;
  if (*name == "join") return command_kind::join;
  if (*name == "leave") return command_kind::leave;
  if (*name == "resume") return command_kind::resume;
  return command_kind::unknown;
}

// An optional boolean field: absent is false; any other type is a refusal.
std::optional<bool> optional_flag(const json::object& frame, std::string_view key) {
  const auto* value = frame.if_contains(key);
  if (value == nullptr || value->is_null()) return false;
  if (const auto* flag = value->if_bool()) return *flag;
  return std::nullopt;
}

template <class Admission>
parse_result parse_admission(const json::object& frame) {
  const auto* room_value = frame.if_contains("roomId");
  const auto room = room_value ? room_id::from_json(*room_value) : std::nullopt;
  if (!room) return rejection::of_admission(wire_code::invalid_room_id, frame);
  const auto* raw_name = frame.if_contains("name");
  auto name = raw_name && raw_name->is_string()
                  ? rules::normalize_name(std::string_view(raw_name->get_string()))
                  : std::nullopt;
  if (!name) return rejection::of_admission(wire_code::invalid_name, frame);
  const auto history = optional_flag(frame, "history");
  const auto resume = optional_flag(frame, "resume");
  if (!history || !resume) return rejection::of_admission(wire_code::invalid_field, frame);
  return command{Admission{*room, std::move(*name), {.history = *history, .resume = *resume}}};
}

parse_result parse_resume(const json::object& frame) {
  const auto* token = frame.if_contains("token");
  const auto* since = frame.if_contains("since");
  if (token == nullptr || !token->is_string() || since == nullptr)
    return rejection{wire_code::invalid_field};
  // A count of events: a non-negative integer, however the client's JSON wrote it.
  std::uint64_t last_seen = 0;
  if (const auto* number = since->if_int64(); number && *number >= 0) {
    last_seen = static_cast<std::uint64_t>(*number);
  } else if (const auto* big = since->if_uint64()) {
    last_seen = *big;
  } else {
    return rejection{wire_code::invalid_field};
  }
  std::optional<room_id> room;
  if (const auto* room_value = frame.if_contains("roomId"); room_value && !room_value->is_null()) {
    room = room_id::from_json(*room_value);
    if (!room) return rejection{wire_code::invalid_room_id};
  }
  return command{resume_seat{std::string(token->get_string()), last_seen, room}};
}

parse_result parse_say(const json::object& frame, std::size_t max_text) {
  const auto* text = frame.if_contains("text");
  if (text == nullptr || !text->is_string()) return rejection{wire_code::invalid_field};
  const std::string_view body = text->get_string();
  switch (rules::check_text(body, max_text)) {
    case rules::text_verdict::ok:
      return command{say{std::string(body)}};
    case rules::text_verdict::empty:
      return rejection{wire_code::empty_text};
    case rules::text_verdict::too_long:
      return rejection{wire_code::text_too_long};
  }
  return rejection{wire_code::text_too_long};  // unreachable for a valid enum value
}

}  // namespace

parse_result parse_command(std::string_view frame, std::size_t max_text) noexcept {
  // The WebSocket codec has validated the frame as UTF-8 (see protocol.hpp): the parser need not
  // check it again. \u escapes are still decoded, and a lone surrogate refused, by the parser.
  static constexpr json::parse_options already_valid_utf8{.allow_invalid_utf8 = true};
  try {
    boost::system::error_code ec;
    const json::value document = json::parse(frame, ec, {}, already_valid_utf8);
    if (ec || !document.is_object()) return rejection{wire_code::malformed_frame};
    const json::object& object = document.get_object();
    switch (classify(object.if_contains("type"))) {
      case command_kind::create:
        return parse_admission<create_room>(object);
      case command_kind::join:
        return parse_admission<join_room>(object);
      case command_kind::say:
        return parse_say(object, max_text);
      case command_kind::leave:
        return command{leave_room{}};
      case command_kind::resume:
        return parse_resume(object);
      case command_kind::unknown:
        break;
    }
    return rejection{wire_code::unknown_type};
  } catch (const std::exception&) {
    // Only allocation failure can get here; refusing the frame is the right answer to it too.
    return rejection{wire_code::malformed_frame};
  }
}

std::string_view token(room_event_kind kind) noexcept {
  switch (kind) {
    case room_event_kind::create:
      return "create";
    case room_event_kind::join:
      return "join";
    case room_event_kind::message:
      return "message";
    case room_event_kind::leave:
      return "leave";
  }
  return "message";
}

std::string_view token(leave_reason reason) noexcept {
  switch (reason) {
    case leave_reason::left:
      return "left";
    case leave_reason::disconnected:
      return "disconnected";
    case leave_reason::slow_consumer:
      return "slow_consumer";
  }
  return "left";
}

namespace {

std::string notice_text(const room_event& event) {
  std::string text(event.name);
  switch (event.kind) {
    case room_event_kind::create:
      return text + " created the room";
    case room_event_kind::join:
      return text + " joined the room";
    case room_event_kind::message:
      return std::string(event.text);
    case room_event_kind::leave:
      switch (event.reason) {
        case leave_reason::left:
          return text + " left the room";
        case leave_reason::disconnected:
          return text + " disconnected";
        case leave_reason::slow_consumer:
          return text + " was disconnected (too slow to keep up)";
      }
  }
  return text;
}

}  // namespace

namespace {
json::array roster_of(std::span<const std::string_view> members) {
  json::array roster;
  roster.reserve(members.size());
  for (const auto member : members)
    roster.emplace_back(member);
  return roster;
}
}  // namespace

std::string serialize(const room_event& event) {
  json::object frame;
  frame.reserve(12);
  frame["code"] = static_cast<int>(wire_code::ok);
  frame["event"] = token(event.kind);
  frame["roomId"] = event.room.to_json();
  frame["name"] = event.name;
  frame["text"] = notice_text(event);
  frame["users"] = event.users;
  // `id` is what the seed client shows as the time and uses as the list key: a server timestamp,
  // unique within the room.
  frame["id"] = event.time_ms;
  frame["seq"] = event.seq;
  const bool admission =
      event.kind == room_event_kind::create || event.kind == room_event_kind::join;
  if (admission && !event.members.empty()) {  // the newcomer's roster (see docs/protocol.md)
    frame["members"] = roster_of(event.members);
  }
  if (event.kind == room_event_kind::leave) frame["reason"] = token(event.reason);
  if (!event.epoch.empty()) frame["epoch"] = event.epoch;
  if (!event.token.empty()) frame["token"] = event.token;
  return json::serialize(frame);
}

std::string serialize(const resume_ack& ack) {
  json::object frame;
  frame.reserve(12);
  frame["code"] = static_cast<int>(wire_code::ok);
  frame["event"] = "resume";
  frame["roomId"] = ack.room.to_json();
  frame["name"] = ack.name;
  frame["text"] = ack.recovered ? "Reconnected." : "Reconnected; some messages may be missing.";
  frame["users"] = ack.users;
  frame["members"] = roster_of(ack.members);
  frame["epoch"] = ack.epoch;
  frame["token"] = ack.token;
  frame["recovered"] = ack.recovered;
  frame["missed"] = ack.missed;
  frame["last"] = ack.last;
  return json::serialize(frame);
}

std::string as_history(std::string_view payload) {
  // serialize() writes an object with at least the code: "{" + fields + "}". The flag goes first,
  // so the rest of the frame is byte for byte what the room broadcast.
  std::string marked = R"({"history":true,)";
  marked.append(payload.substr(1));
  return marked;
}

std::string serialize(const rejection& refusal, std::size_t users) {
  json::object frame;
  frame["code"] = static_cast<int>(refusal.code);
  frame["event"] = "error";
  frame["error"] = token(refusal.code);
  frame["text"] = describe(refusal.code);
  frame["users"] = users;
  if (!refusal.room.is_null()) frame["roomId"] = refusal.room;
  if (!refusal.name.is_null()) frame["name"] = refusal.name;
  return json::serialize(frame);
}

}  // namespace roomcast
