#include "roomcast/log.hpp"

#include <atomic>
#include <chrono>
#include <ctime>
#include <unistd.h>

namespace roomcast {
namespace {
std::atomic<log_level> current_level{log_level::info};

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
  char stamp[32];
  const auto stamp_length = std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
  std::string line(stamp, stamp_length);
  line += '.';
  line += static_cast<char>('0' + millis / 100);
  line += static_cast<char>('0' + millis / 10 % 10);
  line += static_cast<char>('0' + millis % 10);
  line += "Z ";
  line += level_name(level);
  line += ' ';
  line += message;
  line += '\n';
  // One write(2) per line: lines from different threads never interleave.
  [[maybe_unused]] const auto written = ::write(STDERR_FILENO, line.data(), line.size());
}

void log_exception::operator()(std::exception_ptr error) const noexcept {
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
