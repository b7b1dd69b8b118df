#pragma once
/** @file
 * The text rules of a chat room, as plain functions: what a valid name and a valid message are.
 * No I/O and no allocation beyond the returned string, so they are unit-tested and fuzzed directly.
 *
 * Precondition of every function here: the text is valid UTF-8. Chat text and names come from
 * `parse_command`, whose frame the WebSocket codec has already validated (ws::frame_reader closes
 * with 1007 otherwise), and whose JSON `\u` escapes Boost.JSON decodes to valid UTF-8 or refuses
 * (a lone surrogate). So these functions count and decode code points without checking them a
 * second time. Given other bytes they stay within the text, but their answers mean nothing.
 */
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace roomcast::rules {

inline constexpr std::size_t max_name_code_points = 32;

/** The name a member is known by: `raw` without leading and trailing white space (ASCII white
 * space, U+00A0 and U+3000, the ideographic space a Chinese keyboard types), when that is 1 to 32
 * code points without control characters (C0, DEL, C1); nullopt otherwise. */
std::optional<std::string> normalize_name(std::string_view raw);

enum class text_verdict { ok, empty, too_long };

/** Whether `text` may be posted: not empty or white space only (the same white space as for
 * names), at most `max_code_points` code points long. */
text_verdict check_text(std::string_view text, std::size_t max_code_points) noexcept;

}  // namespace roomcast::rules
