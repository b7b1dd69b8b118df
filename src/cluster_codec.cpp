#include "roomcast/cluster_codec.hpp"

#include <charconv>
#include <exception>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

namespace roomcast::cluster_codec {
namespace json = boost::json;

std::string room_key(std::uint16_t room, std::string_view part) {
  std::string key = "rc:{r:" + std::to_string(room) + "}:";
  key += part;
  return key;
}

std::string room_channel(std::uint16_t room) {
  return room_key(room, "ev");
}

std::string node_members_key(std::string_view node_id) {
  std::string key = "rc:node:";
  key += node_id;
  key += ":m";
  return key;
}

std::string node_channel(std::string_view node_id) {
  std::string key = "rc:node:";
  key += node_id;
  return key;
}

namespace {

std::optional<room_event_kind> kind_of(std::string_view text) {
  if (text == "create") return room_event_kind::create;
  if (text == "join") return room_event_kind::join;
  if (text == "message") return room_event_kind::message;
  if (text == "leave") return room_event_kind::leave;
  return std::nullopt;
}

std::optional<leave_reason> reason_of(std::string_view text) {
  if (text == "left") return leave_reason::left;
  if (text == "disconnected") return leave_reason::disconnected;
  if (text == "slow_consumer") return leave_reason::slow_consumer;
  return std::nullopt;
}

// A whole number, whether cjson wrote it as an integer or (for large values) as a double.
std::optional<std::int64_t> whole(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  if (v == nullptr) return std::nullopt;
  json::error_code ec;
  const auto n = v->to_number<std::int64_t>(ec);
  if (ec) return std::nullopt;
  return n;
}

std::string to_std(const json::string& s) {
  return {s.data(), s.size()};
}

const json::string* text_field(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v == nullptr ? nullptr : v->if_string();
}

// The room id as its creator wrote it.
std::optional<room_id> room_of(const event& e) {
  return room_id::from_key(e.room, e.room_as_number);
}

std::optional<event> decode(std::string_view payload) {
  json::error_code ec;
  const json::value document = json::parse(payload, ec);
  if (ec || !document.is_object()) return std::nullopt;
  const auto& o = document.get_object();
  event e;
  const auto* kind = text_field(o, "k");
  const auto* name = text_field(o, "n");
  const auto* form = text_field(o, "f");
  const auto room = whole(o, "r");
  const auto users = whole(o, "u");
  const auto seq = whole(o, "s");
  const auto id = whole(o, "i");
  if (kind == nullptr || name == nullptr || form == nullptr || !room || !users || !seq || !id)
    return std::nullopt;
  const auto parsed_kind = kind_of(to_std(*kind));
  if (!parsed_kind || *room < 0 || *room > 9999 || *users < 0 || *seq < 1) return std::nullopt;
  e.kind = *parsed_kind;
  e.room = static_cast<std::uint16_t>(*room);
  e.room_as_number = to_std(*form) == "n";
  e.name = to_std(*name);
  e.users = static_cast<std::size_t>(*users);
  e.seq = static_cast<std::uint64_t>(*seq);
  e.id = *id;
  if (const auto* owner = text_field(o, "o")) e.owner = to_std(*owner);
  if (const auto* epoch = text_field(o, "e")) e.epoch = to_std(*epoch);
  if (e.kind == room_event_kind::message) {
    const auto* text = text_field(o, "t");
    if (text == nullptr) return std::nullopt;
    e.text = to_std(*text);
  }
  if (e.kind == room_event_kind::leave) {
    const auto* why = text_field(o, "w");
    const auto reason = why ? reason_of(to_std(*why)) : std::nullopt;
    if (!reason) return std::nullopt;
    e.reason = *reason;
  }
  if (e.kind == room_event_kind::create || e.kind == room_event_kind::join) {
    const auto* roster = o.if_contains("m");
    if (roster == nullptr || !roster->is_array()) return std::nullopt;
    for (const auto& member : roster->get_array()) {
      const auto* member_name = member.if_string();
      if (member_name == nullptr) return std::nullopt;
      e.members.push_back(to_std(*member_name));
    }
  }
  if (e.kind != room_event_kind::message && e.owner.empty()) return std::nullopt;
  if (!room_of(e)) return std::nullopt;
  return e;
}

}  // namespace

std::optional<event> decode_event(std::string_view payload) noexcept {
  try {
    return decode(payload);
  } catch (const std::exception&) {
    return std::nullopt;  // only allocation failure
  }
}

std::string event_frame(const event& e, bool with_roster, std::string_view token) {
  const auto room = room_of(e);  // decode_event checked it
  std::vector<std::string_view> names;
  if (with_roster) names.assign(e.members.begin(), e.members.end());
  room_event out{.kind = e.kind,
                 .room = *room,
                 .name = e.name,
                 .text = e.text,
                 .users = e.users,
                 .seq = e.seq,
                 .time_ms = e.id,
                 .members = names,
                 .reason = e.reason};
  if (with_roster) {
    out.epoch = e.epoch;
    out.token = token;
  }
  return serialize(out);
}

wire_code decode_admission(const redis::reply& r) noexcept {
  if (r.type != redis::reply::kind::array || r.elements.empty()
      || r.elements.front().type != redis::reply::kind::integer) {
    return wire_code::unavailable;
  }
  switch (r.elements.front().integer) {
    case 0:
      return wire_code::ok;
    case 5001:
      return wire_code::room_exists;
    case 5002:
      return wire_code::name_taken;
    case 5003:
      return wire_code::room_full;
    case 5004:
      return wire_code::no_such_room;
    case 5005:
      return wire_code::too_many_rooms;
    default:
      return wire_code::unavailable;
  }
}

std::vector<std::string> admission_history(const redis::reply& r) {
  std::vector<std::string> out;
  if (r.type != redis::reply::kind::array) return out;
  for (std::size_t i = 1; i < r.elements.size(); ++i) {
    if (r.elements[i].type == redis::reply::kind::string) out.push_back(r.elements[i].str);
  }
  return out;
}

std::string token_index(std::uint64_t index) {
  constexpr std::string_view digits = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, index >>= 4U)
    out[static_cast<std::size_t>(i)] = digits[index & 15U];
  return out;
}

std::string token_key(std::uint64_t index) {
  return "rc:tok:" + token_index(index);
}

std::optional<resumed> decode_resume(const redis::reply& r) {
  using kind = redis::reply::kind;
  if (r.type != kind::array || r.elements.empty() || r.elements[0].type != kind::integer)
    return std::nullopt;
  resumed out;
  switch (r.elements[0].integer) {
    case 4010:
      out.code = wire_code::invalid_token;
      return out;
    case 4011:
      out.code = wire_code::wrong_room;
      return out;
    case 4012:
      out.code = wire_code::since_ahead;
      return out;
    case 0:
      break;
    default:
      return std::nullopt;
  }
  const auto& e = r.elements;
  if (e.size() < 8 || e[1].type != kind::string || e[2].type != kind::string
      || e[3].type != kind::integer || e[4].type != kind::integer || e[5].type != kind::string
      || e[6].type != kind::integer || e[7].type != kind::array) {
    return std::nullopt;
  }
  out.code = wire_code::ok;
  out.name = e[1].str;
  out.room_as_number = e[2].str == "n";
  out.users = static_cast<std::size_t>(e[3].integer);
  out.last = static_cast<std::uint64_t>(e[4].integer);
  out.epoch = e[5].str;
  out.recovered = e[6].integer != 0;
  for (const auto& name : e[7].elements) {
    if (name.type != kind::string) return std::nullopt;
    out.roster.push_back(name.str);
  }
  for (std::size_t i = 8; i < e.size(); ++i) {
    if (e[i].type != kind::string) return std::nullopt;
    out.missed.push_back(e[i].str);
  }
  return out;
}

std::optional<std::pair<std::uint16_t, std::string>> decode_moved(std::string_view payload) {
  try {
    json::error_code ec;
    const json::value document = json::parse(payload, ec);
    if (ec || !document.is_object()) return std::nullopt;
    const auto& o = document.get_object();
    const auto* kind = text_field(o, "k");
    const auto* owner = text_field(o, "o");
    const auto room = whole(o, "r");
    if (kind == nullptr || *kind != "moved" || owner == nullptr || !room || *room < 0
        || *room > 9999) {
      return std::nullopt;
    }
    return std::pair<std::uint16_t, std::string>(static_cast<std::uint16_t>(*room), to_std(*owner));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<heartbeat> decode_heartbeat(const redis::reply& r) noexcept {
  if (r.type != redis::reply::kind::array || r.elements.size() != 3) return std::nullopt;
  for (const auto& element : r.elements) {
    if (element.type != redis::reply::kind::integer) return std::nullopt;
  }
  return heartbeat{.reaped_me = r.elements[0].integer != 0,
                   .reaped = r.elements[1].integer,
                   .live_nodes = r.elements[2].integer};
}

std::optional<std::string> run_id_of(std::string_view info) {
  constexpr std::string_view label = "run_id:";
  for (std::size_t start = 0; start < info.size();) {
    auto end = info.find('\n', start);
    if (end == std::string_view::npos) end = info.size();
    auto line = info.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.starts_with(label) && line.size() > label.size()) {
      return std::string(line.substr(label.size()));
    }
    start = end + 1;
  }
  return std::nullopt;
}

}  // namespace roomcast::cluster_codec
