#include "roomcast/rules.hpp"

#include <array>
#include <cstdint>

namespace roomcast::rules {
namespace {

// Decodes the code point starting at `text[pos]`, advancing `pos`; nullopt on malformed UTF-8
// (overlong forms, surrogates and values above U+10FFFF included).
std::optional<char32_t> decode_one(std::string_view text, std::size_t& pos) noexcept {
  const auto byte = [&](std::size_t i) { return static_cast<std::uint8_t>(text[i]); };
  const std::uint8_t lead = byte(pos);
  if (lead < 0x80) {
    ++pos;
    return lead;
  }
  std::size_t length = 0;
  char32_t value = 0;
  char32_t minimum = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, value = lead & 0x1F, minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, value = lead & 0x0F, minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, value = lead & 0x07, minimum = 0x10000;
  } else {
    return std::nullopt;
  }
  if (text.size() - pos < length) return std::nullopt;
  for (std::size_t i = 1; i < length; ++i) {
    const std::uint8_t continuation = byte(pos + i);
    if ((continuation & 0xC0) != 0x80) return std::nullopt;
    value = (value << 6) | (continuation & 0x3F);
  }
  if (value < minimum || value > 0x10FFFF || (value >= 0xD800 && value <= 0xDFFF)) {
    return std::nullopt;
  }
  pos += length;
  return value;
}

bool is_space(char32_t c) noexcept {
  return c == U' ' || (c >= U'\t' && c <= U'\r') || c == 0xA0 || c == 0x3000;
}

bool is_control(char32_t c) noexcept {
  return c < 0x20 || (c >= 0x7F && c <= 0x9F);
}

}  // namespace

std::optional<std::size_t> count_code_points(std::string_view utf8) noexcept {
  std::size_t count = 0;
  for (std::size_t pos = 0; pos < utf8.size(); ++count) {
    if (!decode_one(utf8, pos)) return std::nullopt;
  }
  return count;
}

std::string_view trim(std::string_view text) noexcept {
  // Leading: decode forwards. Trailing: find the start of the last code point by skipping
  // continuation bytes, which is safe on any input because decode_one re-validates it.
  std::size_t begin = 0;
  while (begin < text.size()) {
    std::size_t next = begin;
    const auto c = decode_one(text, next);
    if (!c || !is_space(*c)) break;
    begin = next;
  }
  std::size_t end = text.size();
  while (end > begin) {
    std::size_t start = end - 1;
    while (start > begin && (static_cast<std::uint8_t>(text[start]) & 0xC0) == 0x80)
      --start;
    std::size_t pos = start;
    const auto c = decode_one(text, pos);
    if (!c || pos != end || !is_space(*c)) break;
    end = start;
  }
  return text.substr(begin, end - begin);
}

std::optional<std::string> normalize_name(std::string_view raw) {
  const std::string_view name = trim(raw);
  std::size_t count = 0;
  for (std::size_t pos = 0; pos < name.size(); ++count) {
    const auto c = decode_one(name, pos);
    if (!c || is_control(*c)) return std::nullopt;
  }
  if (count == 0 || count > max_name_code_points) return std::nullopt;
  return std::string(name);
}

text_verdict check_text(std::string_view text, std::size_t max_code_points) noexcept {
  if (trim(text).empty()) return text_verdict::empty;
  const auto count = count_code_points(text);
  if (!count) return text_verdict::invalid;
  if (*count > max_code_points) return text_verdict::too_long;
  return text_verdict::ok;
}

}  // namespace roomcast::rules
