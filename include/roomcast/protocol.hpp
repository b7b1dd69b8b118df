#pragma once
/** @file
 * The wire protocol, as plain functions: a client's JSON text frame becomes a `command` or a
 * `rejection`; room events and rejections become JSON text frames. docs/protocol.md describes
 * every frame; this header is its executable form. No Asio here.
 */
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include <boost/json/value.hpp>

namespace roomcast {

/** Every `code` a server frame can carry. 200, 5001, 5002 and 5004 are the seed's. */
enum class wire_code : int {
  ok = 200,
  malformed_frame = 4000,  ///< not JSON, or JSON that is not an object
  unknown_type = 4001,     ///< `type` names no command
  invalid_field = 4002,    ///< a field is missing or has the wrong JSON type
  invalid_room_id = 4003,  ///< `roomId` is not four decimal digits
  invalid_name = 4004,     ///< `name` is empty, too long or has control characters
  empty_text = 4005,       ///< a chat message that is empty or white space only
  text_too_long = 4006,    ///< a chat message over --max-text code points
  not_in_room = 4007,      ///< chat or leave before create/join
  already_in_room = 4008,  ///< create/join while in a room
  rate_limited = 4009,     ///< more frames than --rate-limit allows; the frame was dropped
  invalid_token = 4010,    ///< resume: no seat holds this token (unknown, expired, used, forged)
  wrong_room = 4011,       ///< resume: the frame's roomId is not the token's room
  since_ahead = 4012,      ///< resume: `since` is beyond the room's last event
  room_exists = 5001,
  name_taken = 5002,
  room_full = 5003,  ///< join of a room with --max-members members
  no_such_room = 5004,
  too_many_rooms = 5005,  ///< create when --max-rooms rooms exist
  unavailable = 5006,     ///< cluster mode: Redis cannot be reached; nothing was done
};

/** A short English sentence for `code`, sent as the frame's `text`. */
std::string_view describe(wire_code code) noexcept;
/** A stable machine-readable token for `code` ("name_taken"), sent as the frame's `error`. */
std::string_view token(wire_code code) noexcept;

/** A room number: four decimal digits. It remembers whether the client wrote it as a JSON
 * number (the seed client's `<input type="number">`) or as a string, so replies use the same form.
 */
class room_id {
 public:
  /** 1000..9999 as a JSON integer, or a string of exactly four ASCII digits ("0042"). */
  static std::optional<room_id> from_json(const boost::json::value& value) noexcept;

  /** 0..9999; the string "0042" and the number 42 cannot both exist (42 is not four digits). */
  std::uint16_t key() const noexcept { return key_; }
  /** The room number in the form its client wrote it. */
  boost::json::value to_json() const;
  /** Whether its client wrote it as a JSON number (else as a string of four digits). */
  bool as_number() const noexcept { return as_number_; }
  /** The room `key` (0..9999) in the given form; nullopt when a number is not four digits. */
  static std::optional<room_id> from_key(std::uint16_t key, bool as_number) noexcept;

  friend bool operator==(const room_id& a, const room_id& b) noexcept { return a.key_ == b.key_; }

 private:
  room_id(std::uint16_t key, bool as_number) noexcept : key_(key), as_number_(as_number) {}
  std::uint16_t key_;
  bool as_number_;
};

/** What a newcomer asks for besides its seat (both off for the seed client). */
struct admission_wishes {
  bool history = false;  ///< the room's recent chat, before live events
  bool resume = false;   ///< a resume token: the seat outlives a dropped connection
};

struct create_room {
  room_id room;
  std::string name;
  admission_wishes wishes = {};
};
struct join_room {
  room_id room;
  std::string name;
  admission_wishes wishes = {};
};
/** Take back a seat held since a dropped connection, and the events after `since`. */
struct resume_seat {
  std::string token;
  std::uint64_t since = 0;
  std::optional<room_id> room;  ///< when given, must be the token's room
};
struct say {
  std::string text;
};
struct leave_room {};

using command = std::variant<create_room, join_room, say, leave_room, resume_seat>;

/** Why a client frame was refused. `room` and `name` echo the frame's own `roomId` and `name`
 * (null when absent) for refusals that leave the client outside any room: the seed client leaves
 * its room screen exactly when both match its own, so other refusals must not carry them. */
struct rejection {
  wire_code code;
  boost::json::value room = nullptr;
  boost::json::value name = nullptr;

  /** A refusal of create/join: echoes the frame's roomId and name. */
  static rejection of_admission(wire_code code, const boost::json::object& frame);
};

using parse_result = std::variant<command, rejection>;

/** Parses one client text frame. Never throws: every input is a command or a rejection.
 * `max_text` is the chat message limit in code points.
 *
 * Precondition: `frame` is valid UTF-8, as every text message `ws::frame_reader` hands over is
 * (it closes the connection with 1007 otherwise). That check is the only one: the JSON parser
 * does not repeat it, nor do the rules (rules.hpp). JSON `\u` escapes cannot break it: Boost.JSON
 * decodes them to valid UTF-8 and refuses a lone surrogate ("\ud800") as malformed (4000). */
parse_result parse_command(std::string_view frame, std::size_t max_text) noexcept;

/** The `event` field of a room broadcast. */
enum class room_event_kind { create, join, message, leave };

/** Why a member left, sent as `reason` in a leave event. */
enum class leave_reason { left, disconnected, slow_consumer };

/** The wire's word for `kind` (`event`: "create", "join", "message", "leave"). */
std::string_view token(room_event_kind kind) noexcept;
/** The wire's word for `reason` ("left", "disconnected", "slow_consumer"). */
std::string_view token(leave_reason reason) noexcept;

/** Everything one room broadcast carries; serialized once and shared by all recipients. */
struct room_event {
  room_event_kind kind;
  const room_id& room;
  std::string_view name;
  std::string_view text;  ///< the chat text; for the other kinds, built by serialize
  std::size_t users;      ///< members after the event
  std::uint64_t seq;      ///< per-room sequence number, 1 for the room's create event
  std::int64_t time_ms;   ///< server time, Unix ms, strictly increasing within a room
  std::span<const std::string_view> members =
      {};  ///< the roster, for a newcomer; sent when not empty
  leave_reason reason = leave_reason::left;
  std::string_view epoch = {};  ///< the room's epoch, for a newcomer; sent when not empty
  std::string_view token = {};  ///< the newcomer's resume token; sent when not empty
};

std::string serialize(const room_event& event);

/** The first frame of a resumed connection: its seat, the room as it is now, and what follows. */
struct resume_ack {
  const room_id& room;
  std::string_view name;
  std::size_t users;
  std::span<const std::string_view> members;
  std::string_view epoch;
  std::string_view token;  ///< the next token: each one is good for one resume
  bool recovered;          ///< the `missed` events after `since` follow; else some are lost
  std::size_t missed;
  std::uint64_t last;  ///< the room's last event before live ones
};

std::string serialize(const resume_ack& ack);

/** A chat event's JSON (`payload`, an object as serialize wrote it) marked `"history":true`,
 * for a newcomer who asked for the recent chat. */
std::string as_history(std::string_view payload);

/** A refusal, sent only to the requester; `users` is the size of the requester's room (0 when
 * outside one), since the seed client sets its member counter from every frame. */
std::string serialize(const rejection& refusal, std::size_t users);

}  // namespace roomcast
