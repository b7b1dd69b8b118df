#include "wire.hpp"

#include <array>
#include <charconv>

namespace roomcast::loadgen {
namespace {

constexpr std::string_view text_key = "\"text\":\"";
constexpr std::string_view frame_end = "\"}";

template <class Int>
bool read_number(std::string_view& rest, char terminator, Int& out) noexcept {
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), out);
  if (ec != std::errc{} || end == rest.data() || end == rest.data() + rest.size()
      || *end != terminator) {
    return false;
  }
  rest.remove_prefix(static_cast<std::size_t>(end - rest.data()) + 1);
  return true;
}

}  // namespace

chat_frame::chat_frame(int room, int sender) {
  std::string prefix = R"({"type":"message","text":")";
  prefix += room_id(room);
  prefix += ':';
  prefix += std::to_string(sender);
  prefix += ':';
  prefix.copy(bytes_.data(), prefix.size());
  prefix_ = prefix.size();
}

std::string_view chat_frame::render(std::uint64_t counter, std::int64_t stamp_ns) noexcept {
  // prefix (< 40 bytes) + 20 + 1 + 20 + 2 fits in 128.
  char* out = bytes_.data() + prefix_;
  char* const end = bytes_.data() + bytes_.size();
  out = std::to_chars(out, end, counter).ptr;
  *out++ = ':';
  out = std::to_chars(out, end, stamp_ns).ptr;
  *out++ = '"';
  *out++ = '}';
  return {bytes_.data(), static_cast<std::size_t>(out - bytes_.data())};
}

std::optional<chat_stamp> find_chat_stamp(std::string_view frame) noexcept {
  const auto at = frame.find(text_key);
  if (at == std::string_view::npos) return std::nullopt;
  auto rest = frame.substr(at + text_key.size());
  // The room is always 4 digits: a cheap first filter for notices.
  if (rest.size() < 12 || rest[4] != ':') return std::nullopt;
  chat_stamp stamp;
  if (!read_number(rest, ':', stamp.room) || !read_number(rest, ':', stamp.sender)
      || !read_number(rest, ':', stamp.counter) || !read_number(rest, '"', stamp.stamp_ns)) {
    return std::nullopt;
  }
  return stamp;
}

std::string masked_frame(int opcode, std::string_view payload) {
  constexpr std::array<char, 4> key = {0x1F, 0x2E, 0x3D, 0x4C};
  std::string frame;
  frame += static_cast<char>(0x80 | (opcode & 0x0F));
  frame += static_cast<char>(0x80 | (payload.size() & 0x7F));
  frame.append(key.data(), key.size());
  for (std::size_t i = 0; i < payload.size(); ++i)
    frame += static_cast<char>(payload[i] ^ key[i % 4]);
  return frame;
}

std::string room_id(int room) {
  std::string id = std::to_string(room);
  if (id.size() < 4) id.insert(0, 4 - id.size(), '0');
  return id;
}

std::string enter_frame(bool create, int room, std::string_view name) {
  std::string frame = create ? R"({"type":"create","roomId":")" : R"({"type":"join","roomId":")";
  frame += room_id(room);
  frame += R"(","name":")";
  frame += name;
  frame += frame_end;
  return frame;
}

std::string leave_frame(int room, std::string_view name) {
  std::string frame = R"({"type":"leave","roomId":")";
  frame += room_id(room);
  frame += R"(","name":")";
  frame += name;
  frame += frame_end;
  return frame;
}

std::string name_key(std::string_view name) {
  std::string key = "\"name\":\"";
  key += name;
  key += '"';
  return key;
}

std::optional<int> frame_code(std::string_view frame) noexcept {
  constexpr std::string_view key = "\"code\":";
  const auto at = frame.find(key);
  if (at == std::string_view::npos) return std::nullopt;
  int code = 0;
  const auto rest = frame.substr(at + key.size());
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), code);
  if (ec != std::errc{}) return std::nullopt;
  return code;
}

bool is_error_frame(std::string_view frame) noexcept {
  return frame.find("\"event\":\"error\"") != std::string_view::npos;
}

answer classify_answer(std::string_view frame, std::string_view key) noexcept {
  const bool mine = frame.find(key) != std::string_view::npos;
  if (!mine && !is_error_frame(frame)) return answer::none;
  return frame_code(frame) == 200 ? answer::accepted : answer::refused;
}

}  // namespace roomcast::loadgen
