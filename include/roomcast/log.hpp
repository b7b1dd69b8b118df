#pragma once
/** @file
 * One line per event on stderr, at a level chosen once at start-up. Chat text is never logged.
 *
 * The caller formats the line; the write to stderr happens on a thread of its own (the log
 * thread), behind a bounded queue. A caller never waits for stderr: when the queue is full (a slow
 * or stuck log pipe), the line is dropped and counted (`roomcast_log_lines_dropped_total`).
 */
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>

namespace roomcast {

enum class log_level { debug, info, warn, error, off };
enum class log_format { text, json };

/** Lines that may wait for the log thread (--log-queue); more are dropped. */
inline constexpr std::size_t default_log_queue_lines = 4096;
/** How long the end of main (also a second signal, and ~log_queue) waits for the log thread to
 * write what is queued: a stuck stderr holds the exit up no longer than this. */
inline constexpr std::chrono::milliseconds log_flush_bound{1000};

/**
 * A bounded queue of complete lines and one thread that writes them to a file descriptor, in
 * the order they were pushed. push() never waits for the descriptor: when `capacity` lines are
 * waiting or being written, the line is dropped and counted. Lines that a write fails on
 * (EPIPE, EBADF) are counted as dropped too. The thread blocks SIGPIPE for itself, so a log pipe
 * whose reader went away ends no process. Thread-safe.
 */
class log_queue {
 public:
  log_queue(int fd, std::size_t capacity);
  /** close(log_flush_bound). */
  ~log_queue();
  log_queue(const log_queue&) = delete;
  log_queue& operator=(const log_queue&) = delete;

  /** Queues one line (with its '\n'). False when it was dropped: the queue is full or closed. */
  bool push(std::string line);
  void set_capacity(std::size_t lines);
  /** Lines dropped so far. */
  std::uint64_t dropped() const noexcept;
  /** Waits up to `bound` until every line pushed before the call is written (or dropped by a
   * failed write). True when they are; false at the bound. */
  bool flush(std::chrono::milliseconds bound);
  /** Takes no more lines and waits up to `bound` for the thread to write the queued ones and end.
   * True when it has ended (it is joined). False when it could not finish by then (a stuck
   * descriptor): the thread is detached, owns what it still uses, and writes the rest if the
   * descriptor ever takes it. Only the first call waits. */
  bool close(std::chrono::milliseconds bound);

 private:
  struct shared;
  std::shared_ptr<shared> state_;
};

void set_log_level(log_level level) noexcept;
/** text: `2026-11-25T21:00:00.000Z info message`; json: one JSON object per line with `ts`,
 * `level` and `msg`, for log collectors. */
void set_log_format(log_format format) noexcept;
/** How many lines may wait for the log thread (default_log_queue_lines until set). */
void set_log_queue_capacity(std::size_t lines);
bool log_enabled(log_level level) noexcept;
/** Formats one complete line and hands it to the log thread (never waits for stderr). */
void write_log(log_level level, std::string_view message);
/** Log lines dropped since start: the queue was full, or writing to stderr failed. */
std::uint64_t log_lines_dropped() noexcept;
/** Waits up to `bound` for the log thread to write every line logged before the call; false at
 * the bound. main calls it last, with log_flush_bound. */
bool flush_logs(std::chrono::milliseconds bound);

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
