#include "roomcast/rules.hpp"

#include <algorithm>
#include <cstdint>

namespace roomcast::rules {
namespace {

bool is_continuation(char byte) noexcept {
  return (static_cast<std::uint8_t>(byte) & 0xC0) == 0x80;
}

// Decodes the code point that starts at `text[pos]` and moves `pos` past it. The text is valid
// UTF-8 (see rules.hpp), so the lead byte gives the length and the continuation bytes follow;
// nothing is checked again. On other bytes it still never reads past the end of `text`.
char32_t decode_one(std::string_view text, std::size_t& pos) noexcept {
  const auto lead = static_cast<std::uint8_t>(text[pos++]);
  std::size_t continuations = 0;
  char32_t value = lead;
  if (lead >= 0xF0) {
    continuations = 3, value = lead & 0x07U;
  } else if (lead >= 0xE0) {
    continuations = 2, value = lead & 0x0FU;
  } else if (lead >= 0xC0) {
    continuations = 1, value = lead & 0x1FU;
  }
  for (; continuations > 0 && pos < text.size(); --continuations)
    value = (value << 6) | (static_cast<std::uint8_t>(text[pos++]) & 0x3FU);
  return value;
}

bool is_space(char32_t c) noexcept {
  return c == U' ' || (c >= U'\t' && c <= U'\r') || c == 0xA0 || c == 0x3000;
}

bool is_control(char32_t c) noexcept {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F);
}

// Number of code points in `utf8`.
std::size_t count_code_points(std::string_view utf8) noexcept {
  // Every code point has exactly one byte that is not a continuation byte: its first.
  return static_cast<std::size_t>(
      std::count_if(utf8.begin(), utf8.end(), [](char byte) { return !is_continuation(byte); }));
}

// `text` without leading and trailing white space (is_space).
std::string_view trim(std::string_view text) noexcept {
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t next = begin;
    if (!is_space(decode_one(text, next))) break;
    begin = next;
  }
  // Backwards: the last code point starts at the last byte that is not a continuation byte.
  std::size_t end = text.size();
  while (end > begin) {
    std::size_t start = end - 1;
    while (start > begin && is_continuation(text[start]))
      --start;
    std::size_t pos = start;
    if (!is_space(decode_one(text, pos))) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

}  // namespace

std::optional<std::string> normalize_name(std::string_view raw) {
  const std::string_view name = trim(raw);
  std::size_t count = 0;
  for (std::size_t pos = 0; pos < name.size(); ++count) {
    if (is_control(decode_one(name, pos))) return std::nullopt;
  }
  if (count == 0 || count > max_name_code_points) return std::nullopt;
  return std::string(name);
}

text_verdict check_text(std::string_view text, std::size_t max_code_points) noexcept {
  if (trim(text).empty()) return text_verdict::empty;
  if (count_code_points(text) > max_code_points) return text_verdict::too_long;
  return text_verdict::ok;
}

}  // namespace roomcast::rules
