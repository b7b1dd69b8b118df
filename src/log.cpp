#include "roomcast/log.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <ctime>
#include <unistd.h>

namespace roomcast {
namespace {
std::atomic<log_level> current_level{log_level::info};
std::atomic<log_format> current_format{log_format::text};

// Escapes `text` for a JSON string (quotes, backslashes, control characters).
void append_json_string(std::string& out, std::string_view text) {
  constexpr std::string_view hex = "0123456789abcdef";
  out += '"';
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      out += "\\u00";
      out += hex[byte >> 4];
      out += hex[byte & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
}

const char* level_name(log_level level) noexcept {
  switch (level) {
    case log_level::debug:
      return "debug";
    case log_level::info:
      return "info";
    case log_level::warn:
      return "warn";
    case log_level::error:
      return "error";
    case log_level::off:
      break;
  }
  return "off";
}
}  // namespace

void set_log_level(log_level level) noexcept {
  current_level.store(level);
}

void set_log_format(log_format format) noexcept {
  current_format.store(format);
}

bool log_enabled(log_level level) noexcept {
  return level != log_level::off && level >= current_level.load(std::memory_order_relaxed);
}

void write_log(log_level level, std::string_view message) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  const auto millis =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  std::array<char, 32> stamp{};
  const auto stamp_length = std::strftime(stamp.data(), stamp.size(), "%Y-%m-%dT%H:%M:%S", &utc);
  std::string time(stamp.data(), stamp_length);
  time += '.';
  time += static_cast<char>('0' + millis / 100);
  time += static_cast<char>('0' + millis / 10 % 10);
  time += static_cast<char>('0' + millis % 10);
  time += 'Z';
  std::string line;
  if (current_format.load(std::memory_order_relaxed) == log_format::json) {
    line = R"({"ts":")" + time + R"(","level":")" + level_name(level) + R"(","msg":)";
    append_json_string(line, message);
    line += "}\n";
  } else {
    line = time + ' ' + level_name(level) + ' ' + std::string(message) + '\n';
  }
  // One write(2) per line: lines from different threads never interleave.
  [[maybe_unused]] const auto written = ::write(STDERR_FILENO, line.data(), line.size());
}

void log_exception::operator()(const std::exception_ptr& error) const noexcept {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    log_error(what_ran, " failed: ", e.what());
  } catch (...) {
    log_error(what_ran, " failed with an unknown exception");
  }
}

}  // namespace roomcast
