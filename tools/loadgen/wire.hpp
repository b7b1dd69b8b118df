#pragma once
// What the load generator puts on the wire and finds in what comes back, without sockets and
// without a JSON parser: frames are prepared once and received frames are scanned as text.
//
// Everything a receiver needs travels in the chat text, so that the same code works against
// roomcast and against the seed's Node server (which echoes the client's own object to every
// connection): "<room>:<sender>:<counter>:<send time, steady clock ns>".
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace roomcast::loadgen {

/// A chat frame for one sender, rewritten in place per message: the prefix is written once.
class chat_frame {
 public:
  chat_frame(int room, int sender);
  std::string_view render(std::uint64_t counter, std::int64_t stamp_ns) noexcept;

 private:
  std::array<char, 128> bytes_{};
  std::size_t prefix_ = 0;
};

struct chat_stamp {
  int room = 0;
  int sender = 0;
  std::uint64_t counter = 0;
  std::int64_t stamp_ns = 0;
};

/// The stamp in a server frame's "text", or nothing when the frame carries no chat text of ours
/// (notices, errors, acknowledgements).
std::optional<chat_stamp> find_chat_stamp(std::string_view frame) noexcept;

/// A whole masked client frame (FIN set) with `opcode` and a payload of at most 125 bytes: what
/// the flood scenario's raw connections write.
std::string masked_frame(int opcode, std::string_view payload);

/// "0042" for 42: room numbers are written as 4-digit strings.
std::string room_id(int room);

/// {"type":"create"|"join","roomId":"1234","name":"..."}
std::string enter_frame(bool create, int room, std::string_view name);
/// {"type":"leave","roomId":"1234","name":"..."}: the seed server needs both fields to find the
/// room (it throws on a leave without them); roomcast ignores them.
std::string leave_frame(int room, std::string_view name);
/// "name":"<name>": how a client recognises the server's answer to its own request (the seed
/// server sends every answer to everybody, so names are unique within a run).
std::string name_key(std::string_view name);

enum class answer { none, accepted, refused };

/// Whether `frame` answers this client's create/join/leave: a frame naming it (code 200:
/// accepted), or a roomcast error frame (sent only to the client that caused it).
answer classify_answer(std::string_view frame, std::string_view name_key) noexcept;

/// The number after "code": in a frame, if any.
std::optional<int> frame_code(std::string_view frame) noexcept;

/// True for roomcast's error frames ("event":"error").
bool is_error_frame(std::string_view frame) noexcept;

}  // namespace roomcast::loadgen
