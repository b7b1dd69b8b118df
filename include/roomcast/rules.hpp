#pragma once
/** @file
 * The text rules of a chat room, as plain functions: what a valid name and a valid message are.
 * No I/O and no allocation beyond the returned string, so they are unit-tested and fuzzed directly.
 */
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace roomcast::rules {

inline constexpr std::size_t max_name_code_points = 32;

/** Number of Unicode code points in `utf8`, or nullopt when it is not valid UTF-8. */
std::optional<std::size_t> count_code_points(std::string_view utf8) noexcept;

/** `text` without leading and trailing white space (ASCII white space, U+00A0 and U+3000, the
 * ideographic space a Chinese keyboard types). */
std::string_view trim(std::string_view text) noexcept;

/** The name a member is known by: `raw` trimmed, when that is 1 to 32 code points of valid UTF-8
 * without control characters (C0, DEL, C1); nullopt otherwise. */
std::optional<std::string> normalize_name(std::string_view raw);

enum class text_verdict { ok, empty, too_long, invalid };

/** Whether `text` may be posted: not empty or white space only, at most `max_code_points` long.
 * `invalid` is for malformed UTF-8, which the JSON parser never lets through. */
text_verdict check_text(std::string_view text, std::size_t max_code_points) noexcept;

}  // namespace roomcast::rules
