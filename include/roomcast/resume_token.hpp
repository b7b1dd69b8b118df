#pragma once
/** @file
 * The token a member shows to take its seat back after a dropped connection (issue 13): 192
 * random bits from the kernel, written as 32 base64url characters. The first 64 bits name the
 * seat for a lookup; the whole token is compared in constant time, so how long a guess takes to
 * be refused says nothing about how close it was. Tokens are never logged.
 */
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace roomcast {

class resume_token {
 public:
  static constexpr std::size_t size = 24;       ///< bytes
  static constexpr std::size_t text_size = 32;  ///< base64url characters, no padding

  /** A fresh token from getrandom(2). Throws std::system_error if the kernel gives none. */
  static resume_token generate();
  /** The token written as `text()`; nullopt for anything else (length, alphabet). */
  static std::optional<resume_token> parse(std::string_view text);

  std::string text() const;
  /** The lookup key: the first 8 bytes. Not a secret check: `matches` is. */
  std::uint64_t index() const noexcept;
  /** Constant time in the token's bytes. */
  bool matches(const resume_token& other) const noexcept;

 private:
  std::array<std::uint8_t, size> bytes_{};
};

}  // namespace roomcast
