#include "roomcast/resume_token.hpp"

#include <cerrno>
#include <sys/random.h>
#include <system_error>

namespace roomcast {
namespace {

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decode(char c) noexcept {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

resume_token resume_token::generate() {
  resume_token token;
  std::size_t filled = 0;
  while (filled < size) {
    const auto got = ::getrandom(token.bytes_.data() + filled, size - filled, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      throw std::system_error(errno, std::generic_category(), "getrandom");
    }
    filled += static_cast<std::size_t>(got);
  }
  return token;
}

// 24 bytes are 8 groups of 3 bytes, each written as 4 characters of 6 bits.
std::string resume_token::text() const {
  std::string out;
  out.reserve(text_size);
  for (std::size_t i = 0; i < size; i += 3) {
    const std::uint32_t group = (std::uint32_t{bytes_[i]} << 16)
                                | (std::uint32_t{bytes_[i + 1]} << 8)
                                | std::uint32_t{bytes_[i + 2]};
    for (int shift = 18; shift >= 0; shift -= 6)
      out += alphabet[(group >> shift) & 63U];
  }
  return out;
}

std::optional<resume_token> resume_token::parse(std::string_view text) {
  if (text.size() != text_size) return std::nullopt;
  resume_token token;
  for (std::size_t i = 0, o = 0; i < text_size; i += 4, o += 3) {
    std::uint32_t group = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      const int value = decode(text[i + k]);
      if (value < 0) return std::nullopt;
      group = (group << 6) | static_cast<std::uint32_t>(value);
    }
    token.bytes_[o] = static_cast<std::uint8_t>(group >> 16);
    token.bytes_[o + 1] = static_cast<std::uint8_t>(group >> 8);
    token.bytes_[o + 2] = static_cast<std::uint8_t>(group);
  }
  return token;
}

std::uint64_t resume_token::index() const noexcept {
  std::uint64_t key = 0;
  for (std::size_t i = 0; i < 8; ++i)
    key = (key << 8) | bytes_[i];
  return key;
}

bool resume_token::matches(const resume_token& other) const noexcept {
  // Every byte is looked at, whatever the first difference: no early exit to time.
  std::uint8_t difference = 0;
  for (std::size_t i = 0; i < size; ++i)
    difference = static_cast<std::uint8_t>(difference | (bytes_[i] ^ other.bytes_[i]));
  return difference == 0;
}

}  // namespace roomcast
