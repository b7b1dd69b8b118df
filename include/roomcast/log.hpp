#pragma once
/** @file
 * One line per event on stderr, at a level chosen once at start-up. Chat text is never logged.
 */
#include <exception>
#include <sstream>
#include <string>
#include <string_view>

namespace roomcast {

enum class log_level { debug, info, warn, error, off };
enum class log_format { text, json };

void set_log_level(log_level level) noexcept;
/** text: `2026-11-25T21:00:00.000Z info message`; json: one JSON object per line with `ts`,
 * `level` and `msg`, for log collectors. */
void set_log_format(log_format format) noexcept;
bool log_enabled(log_level level) noexcept;
/** Writes one complete line (a single write, so lines from threads do not interleave). */
void write_log(log_level level, std::string_view message);

template <class... Parts>
void log(log_level level, const Parts&... parts) {
  if (!log_enabled(level)) return;
  std::ostringstream line;
  (line << ... << parts);
  write_log(level, line.str());
}
template <class... Parts>
void log_info(const Parts&... parts) {
  log(log_level::info, parts...);
}
template <class... Parts>
void log_warn(const Parts&... parts) {
  log(log_level::warn, parts...);
}
template <class... Parts>
void log_error(const Parts&... parts) {
  log(log_level::error, parts...);
}

/** A `co_spawn` completion handler: an exception escaping the coroutine is logged, and the server
 * goes on serving everyone else. */
struct log_exception {
  const char* what_ran;
  void operator()(const std::exception_ptr& error) const noexcept;
};

}  // namespace roomcast
