// fuzz_protocol: arbitrary client frame bytes through roomcast::parse_command, with the frame's
// meaning re-derived independently (a second Boost.JSON parse) to check the parser's answer, and
// every result serialized and parsed back.
//
// parse_command's precondition is a frame that is valid UTF-8 (the WebSocket codec refuses the
// rest with 1007, so the server never passes one). The input is checked with ws::utf8_validator
// first: a valid one gets every check below; an invalid one only has to give a command or a
// rejection with a parser code, without a crash or undefined behaviour.
//
// Input: byte 0 chooses --max-text, byte 1 the `users` a refusal reports; the rest is the frame.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json.hpp>

#include "roomcast/protocol.hpp"
#include "roomcast/rules.hpp"
#include "roomcast/ws_codec.hpp"

#include "fuzz_check.hpp"

namespace json = boost::json;
using namespace roomcast;

namespace {

// Like --max-text: 1..128 for half the inputs, the default 100 or the maximum otherwise.
std::size_t max_text_from(std::uint8_t byte) {
  if (byte < 0x80) return std::size_t{byte} + 1;
  return byte == 0xFF ? 100'000 : 100;
}

json::value parse_back(const std::string& text) {
  json::error_code ec;
  json::value value = json::parse(text, ec);
  FUZZ_CHECK(!ec, "serialized frame does not parse back: ", ec.message(), ": ", text);
  FUZZ_CHECK(value.is_object(), "serialized frame is not an object: ", text);
  return value;
}

bool valid_utf8(std::string_view bytes) {
  ws::utf8_validator check;
  return check.feed(bytes) && check.complete();
}

// Code points in valid UTF-8: the bytes that are not continuation bytes (10xxxxxx).
std::size_t code_points(std::string_view utf8) {
  return static_cast<std::size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  }));
}

bool is_parser_code(wire_code code) {
  switch (code) {
    case wire_code::malformed_frame:
    case wire_code::unknown_type:
    case wire_code::invalid_field:
    case wire_code::invalid_room_id:
    case wire_code::invalid_name:
    case wire_code::empty_text:
    case wire_code::text_too_long:
      return true;
    default:
      return false;
  }
}

// What the frame asks for, derived from docs/protocol.md rather than from protocol.cpp.
enum class intent { malformed, chat, create, join, leave, resume, unknown };

// An optional boolean of create/join: absent, null or a boolean.
bool flag_ok(const json::object& frame, std::string_view key) {
  const auto* value = frame.if_contains(key);
  return value == nullptr || value->is_null() || value->is_bool();
}

intent intent_of(const json::value& document) {
  if (!document.is_object()) return intent::malformed;
  const auto* type = document.get_object().if_contains("type");
  if (type == nullptr || type->is_null() || type->is_object()) return intent::chat;
  if (!type->is_string()) return intent::unknown;
  const auto& name = type->get_string();
  if (name.empty() || name == "message") return intent::chat;
  if (name == "create") return intent::create;
  if (name == "join") return intent::join;
  if (name == "leave") return intent::leave;
  if (name == "resume") return intent::resume;
  return intent::unknown;
}

// The room key a valid `roomId` denotes, or -1 (docs/protocol.md: an integer 1000..9999, or a
// string of exactly four ASCII digits).
int expected_room_key(const json::value* room) {
  if (room == nullptr) return -1;
  if (room->is_int64()) {
    const auto n = room->get_int64();
    return n >= 1000 && n <= 9999 ? static_cast<int>(n) : -1;
  }
  if (room->is_uint64()) {
    const auto n = room->get_uint64();
    return n >= 1000 && n <= 9999 ? static_cast<int>(n) : -1;
  }
  if (room->is_string()) {
    const auto& s = room->get_string();
    if (s.size() != 4) return -1;
    int key = 0;
    for (const char c : s) {
      if (c < '0' || c > '9') return -1;
      key = key * 10 + (c - '0');
    }
    return key;
  }
  return -1;
}

// `sent` is how a reply writes `room`: in the client's own form (a number when `as_number`, else
// a string of four digits), for the same key.
void check_room_json(const json::value& sent, const room_id& room, bool as_number) {
  if (as_number) {
    FUZZ_CHECK(sent.is_int64() && sent.get_int64() == room.key(),
               "roomId written as a number comes back as ", json::serialize(sent));
  } else {
    FUZZ_CHECK(
        sent.is_string() && sent.get_string().size() == 4 && expected_room_key(&sent) == room.key(),
        "roomId written as a string comes back as ", json::serialize(sent));
  }
}

bool is_non_finite(const json::value& v) {
  return v.is_double() && !std::isfinite(v.get_double());
}

// Equality after a serialize/parse round trip. Boost.JSON 1.81 parses long decimal mantissas
// without correct rounding, so a double echoed back may come back an ulp or two off: not our bug.
bool same_after_round_trip(const json::value& a, const json::value& b) {
  if (a.is_double() || b.is_double()) {
    if (!a.is_number() || !b.is_number()) return false;
    const double x = a.to_number<double>();
    const double y = b.to_number<double>();
    return x == y || std::fabs(x - y) <= 1e-14 * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.is_array() && b.is_array()) {
    const auto& x = a.get_array();
    const auto& y = b.get_array();
    if (x.size() != y.size()) return false;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!same_after_round_trip(x[i], y[i])) return false;
    }
    return true;
  }
  if (a.is_object() && b.is_object()) {
    const auto& x = a.get_object();
    const auto& y = b.get_object();
    if (x.size() != y.size()) return false;
    for (const auto& entry : x) {
      const auto* other = y.if_contains(entry.key());
      if (other == nullptr || !same_after_round_trip(entry.value(), *other)) return false;
    }
    return true;
  }
  return a == b;
}

void check_rejection(const rejection& refusal, const json::value* document, std::size_t users) {
  FUZZ_CHECK(is_parser_code(refusal.code), "parse_command returned a non-parser code ",
             static_cast<int>(refusal.code));
  const bool admission =
      refusal.code == wire_code::invalid_room_id || refusal.code == wire_code::invalid_name;
  // Found by this target (tools/fuzz/regressions/fuzz_protocol/): a roomId or name of 1e999
  // (or 0e99999) parses as an infinite (NaN) double; echoed, serialize() wrote it as Infinity.
  if (is_non_finite(refusal.room) || is_non_finite(refusal.name)) {
    FUZZ_FAIL("code ", static_cast<int>(refusal.code),
              " echoes a non-finite number, which serialize() writes as a non-JSON token: ",
              serialize(refusal, users));
  }
  FUZZ_CHECK(admission || (refusal.room.is_null() && refusal.name.is_null()), "code ",
             static_cast<int>(refusal.code), " echoes roomId/name");
  if (admission && document != nullptr) {
    // The echo is the frame's own fields, as sent (null when absent, and when a number is not
    // finite, which JSON cannot carry back).
    const auto& object = document->get_object();
    const auto expected = [](const json::value* field) -> json::value {
      if (field == nullptr) return nullptr;
      if (const auto* number = field->if_double(); number && !std::isfinite(*number))
        return nullptr;
      return *field;
    };
    FUZZ_CHECK(refusal.room == expected(object.if_contains("roomId")), "roomId echo differs");
    FUZZ_CHECK(refusal.name == expected(object.if_contains("name")), "name echo differs");
  }

  const std::string wire = serialize(refusal, users);
  const json::value back = parse_back(wire);
  const auto& frame = back.get_object();
  FUZZ_CHECK(frame.contains("code") && frame.at("code") == static_cast<int>(refusal.code),
             "refusal code lost: ", wire);
  FUZZ_CHECK(frame.contains("event") && frame.at("event") == "error", "event: ", wire);
  FUZZ_CHECK(
      frame.contains("error")
          && frame.at("error")
                 == json::string_view(token(refusal.code).data(), token(refusal.code).size()),
      "error token: ", wire);
  FUZZ_CHECK(frame.contains("text") && frame.at("text").is_string(), "text: ", wire);
  FUZZ_CHECK(frame.contains("users") && frame.at("users") == users, "users: ", wire);
  FUZZ_CHECK(frame.contains("roomId") == !refusal.room.is_null(), "roomId presence: ", wire);
  FUZZ_CHECK(frame.contains("name") == !refusal.name.is_null(), "name presence: ", wire);
  if (frame.contains("roomId")) {
    FUZZ_CHECK(same_after_round_trip(frame.at("roomId"), refusal.room), "roomId: ", wire);
  }
  if (frame.contains("name")) {
    FUZZ_CHECK(same_after_round_trip(frame.at("name"), refusal.name), "name: ", wire);
  }
}

// A room event built from a parsed command survives serialization exactly.
void check_event_round_trip(room_event_kind kind, const room_id& room, bool as_number,
                            std::string_view name, std::string_view text, std::size_t users) {
  const std::string_view members[] = {name};
  const room_event event{.kind = kind,
                         .room = room,
                         .name = name,
                         .text = text,
                         .users = users,
                         .seq = 7,
                         .time_ms = 1'700'000'000'000,
                         .members = kind == room_event_kind::message
                                        ? std::span<const std::string_view>{}
                                        : std::span<const std::string_view>{members}};
  const std::string wire = serialize(event);
  const json::value back = parse_back(wire);
  const auto& frame = back.get_object();
  FUZZ_CHECK(frame.contains("code") && frame.at("code") == 200, "code: ", wire);
  FUZZ_CHECK(frame.contains("name") && frame.at("name").is_string()
                 && std::string_view(frame.at("name").get_string()) == name,
             "name did not survive: ", wire);
  FUZZ_CHECK(frame.contains("roomId"), "roomId: ", wire);
  check_room_json(frame.at("roomId"), room, as_number);
  FUZZ_CHECK(frame.contains("users") && frame.at("users") == users, "users: ", wire);
  FUZZ_CHECK(frame.contains("seq") && frame.at("seq") == 7, "seq: ", wire);
  FUZZ_CHECK(frame.contains("id") && frame.at("id") == 1'700'000'000'000, "id: ", wire);
  FUZZ_CHECK(frame.contains("text") && frame.at("text").is_string(), "text: ", wire);
  const std::string_view sent_text = frame.at("text").get_string();
  if (kind == room_event_kind::message) {
    FUZZ_CHECK(sent_text == text, "chat text did not survive: ", wire);
    FUZZ_CHECK(frame.at("event") == "message" && !frame.contains("members"), "shape: ", wire);
  } else {
    FUZZ_CHECK(sent_text == std::string(name) + " created the room", "notice: ", wire);
    FUZZ_CHECK(frame.at("event") == "create", "event: ", wire);
    FUZZ_CHECK(frame.contains("members") && frame.at("members").is_array()
                   && frame.at("members").get_array().size() == 1
                   && frame.at("members").get_array()[0].is_string()
                   && std::string_view(frame.at("members").get_array()[0].get_string()) == name,
               "members: ", wire);
  }
}

void check_admission(const room_id& room, const std::string& name, const json::object& frame) {
  FUZZ_CHECK(room.key() <= 9999, "room key ", room.key());
  const auto* sent_room = frame.if_contains("roomId");
  FUZZ_CHECK(expected_room_key(sent_room) == room.key(), "accepted roomId ",
             sent_room ? json::serialize(*sent_room) : "(absent)", " as ", room.key());
  const bool as_number = sent_room->is_number();
  check_room_json(room.to_json(), room, as_number);

  // Valid UTF-8 even when the frame wrote it with \u escapes.
  FUZZ_CHECK(valid_utf8(name), "accepted name is not valid UTF-8: '", name, "'");
  const auto normalized = rules::normalize_name(name);
  FUZZ_CHECK(normalized && *normalized == name, "accepted name is not normalized: '", name, "'");
  const auto length = code_points(name);
  FUZZ_CHECK(length >= 1 && length <= rules::max_name_code_points, "accepted name length");
  const auto* sent_name = frame.if_contains("name");
  FUZZ_CHECK(sent_name && sent_name->is_string()
                 && rules::normalize_name(std::string_view(sent_name->get_string())) == name,
             "accepted name is not the frame's, normalized");
  check_event_round_trip(room_event_kind::create, room, as_number, name, {}, 1);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_text = max_text_from(data[0]);
  const std::size_t users = data[1] % 8;
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);

  const parse_result result = parse_command(bytes, max_text);
  if (!valid_utf8(bytes)) {
    // Outside the precondition: no meaning to check, only that it stays a parser's answer.
    if (const auto* refusal = std::get_if<rejection>(&result)) {
      FUZZ_CHECK(is_parser_code(refusal->code), "parse_command returned a non-parser code ",
                 static_cast<int>(refusal->code));
    }
    return 0;
  }

  json::error_code ec;
  const json::value document = json::parse(bytes, ec);
  const intent expected = ec ? intent::malformed : intent_of(document);
  const json::value* parsed = ec || !document.is_object() ? nullptr : &document;

  if (const auto* refusal = std::get_if<rejection>(&result)) {
    check_rejection(*refusal, parsed, users);
    switch (expected) {
      case intent::malformed:
        FUZZ_CHECK(refusal->code == wire_code::malformed_frame,
                   "code for malformed frame: ", static_cast<int>(refusal->code));
        break;
      case intent::unknown:
        FUZZ_CHECK(refusal->code == wire_code::unknown_type,
                   "code for unknown type: ", static_cast<int>(refusal->code));
        break;
      case intent::create:
      case intent::join:
        FUZZ_CHECK(refusal->code == wire_code::invalid_room_id
                       || refusal->code == wire_code::invalid_name
                       || (refusal->code == wire_code::invalid_field
                           && !(flag_ok(parsed->get_object(), "history")
                                && flag_ok(parsed->get_object(), "resume"))),
                   "code for a create/join: ", static_cast<int>(refusal->code));
        // The room number is checked first.
        FUZZ_CHECK((refusal->code == wire_code::invalid_room_id)
                       == (expected_room_key(parsed->get_object().if_contains("roomId")) < 0),
                   "code ", static_cast<int>(refusal->code), " for roomId ",
                   json::serialize(parsed->get_object().if_contains("roomId")
                                       ? *parsed->get_object().if_contains("roomId")
                                       : json::value(nullptr)));
        break;
      case intent::chat: {
        FUZZ_CHECK(refusal->code == wire_code::invalid_field
                       || refusal->code == wire_code::empty_text
                       || refusal->code == wire_code::text_too_long,
                   "code for a chat frame: ", static_cast<int>(refusal->code));
        const auto* text = parsed->get_object().if_contains("text");
        if (text == nullptr || !text->is_string()) {
          FUZZ_CHECK(refusal->code == wire_code::invalid_field,
                     "chat without a string text: ", static_cast<int>(refusal->code));
        } else {
          const auto verdict = rules::check_text(text->get_string(), max_text);
          FUZZ_CHECK(verdict != rules::text_verdict::ok, "a valid chat text refused");
          FUZZ_CHECK(
              (verdict == rules::text_verdict::empty) == (refusal->code == wire_code::empty_text),
              "empty text and code ", static_cast<int>(refusal->code));
          FUZZ_CHECK((verdict == rules::text_verdict::too_long)
                         == (refusal->code == wire_code::text_too_long),
                     "long text and code ", static_cast<int>(refusal->code));
        }
        break;
      }
      case intent::leave:
        FUZZ_CHECK(false, "leave refused with ", static_cast<int>(refusal->code));
        break;
      case intent::resume:
        FUZZ_CHECK(refusal->code == wire_code::invalid_field
                       || refusal->code == wire_code::invalid_room_id,
                   "code for a resume: ", static_cast<int>(refusal->code));
        break;
    }
    return 0;
  }

  const auto& cmd = std::get<command>(result);
  FUZZ_CHECK(parsed != nullptr, "a command from a frame that is not a JSON object");
  const auto& frame = parsed->get_object();
  if (const auto* create = std::get_if<create_room>(&cmd)) {
    FUZZ_CHECK(expected == intent::create, "create from another type");
    check_admission(create->room, create->name, frame);
  } else if (const auto* join = std::get_if<join_room>(&cmd)) {
    FUZZ_CHECK(expected == intent::join, "join from another type");
    check_admission(join->room, join->name, frame);
  } else if (const auto* chat = std::get_if<say>(&cmd)) {
    FUZZ_CHECK(expected == intent::chat, "chat from another type");
    FUZZ_CHECK(rules::check_text(chat->text, max_text) == rules::text_verdict::ok,
               "accepted chat text fails check_text");
    // Valid UTF-8 even when the frame wrote it with \u escapes.
    FUZZ_CHECK(valid_utf8(chat->text), "accepted chat text is not valid UTF-8");
    const auto* text = frame.if_contains("text");
    FUZZ_CHECK(text && text->is_string() && std::string_view(text->get_string()) == chat->text,
               "chat text is not the frame's, byte for byte");
    // A chat event in a room written either way: the text must survive exactly.
    const auto room = room_id::from_json(json::value(data[1] & 1 ? "0042" : "4321"));
    FUZZ_CHECK(room.has_value(), "room_id::from_json refused a valid room");
    check_event_round_trip(room_event_kind::message, *room, false, "alice", chat->text, users);
  } else if (const auto* resume = std::get_if<resume_seat>(&cmd)) {
    FUZZ_CHECK(expected == intent::resume, "resume from another type");
    const auto* token = frame.if_contains("token");
    FUZZ_CHECK(
        token && token->is_string() && std::string_view(token->get_string()) == resume->token,
        "resume token is not the frame's");
    const auto* since = frame.if_contains("since");
    FUZZ_CHECK(since && since->is_number() && !since->is_double()
                   && json::value_to<std::uint64_t>(*since) == resume->since,
               "resume since is not the frame's");
  } else {
    FUZZ_CHECK(expected == intent::leave, "leave from another type");
  }
  return 0;
}
