#include "roomcast/log.hpp"

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <ctime>
#include <deque>
#include <mutex>
#include <poll.h>
#include <pthread.h>
#include <sys/uio.h>
#include <thread>
#include <unistd.h>
#include <utility>

namespace roomcast {
namespace {
std::atomic<log_level> current_level{log_level::info};
std::atomic<log_format> current_format{log_format::text};
// The queue in front of stderr, once stderr_queue() has made it.
std::atomic<log_queue*> installed{nullptr};

// Writes `lines` to `fd` in order, several at a time (writev), finishing partial writes. Returns
// how many lines were not completely written because a write failed.
std::size_t write_lines(int fd, std::deque<std::string>& lines) {
  std::array<iovec, 64> pieces{};
  std::size_t line = 0;
  std::size_t offset = 0;  // bytes of lines[line] already written
  while (line < lines.size()) {
    std::size_t count = 0;
    for (std::size_t i = line; i < lines.size() && count < pieces.size(); ++i, ++count) {
      const std::size_t skip = i == line ? offset : 0;
      pieces[count] = {lines[i].data() + skip, lines[i].size() - skip};
    }
    const auto written = ::writev(fd, pieces.data(), static_cast<int>(count));
    if (written < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // A non-blocking stderr (the flag belongs to the open file, which a parent may have
        // set): wait until it takes more. Only this thread waits.
        pollfd ready{fd, POLLOUT, 0};
        ::poll(&ready, 1, -1);
        continue;
      }
      return lines.size() - line;  // EPIPE, EBADF, ENOSPC...: these lines are lost
    }
    auto left = static_cast<std::size_t>(written);
    while (line < lines.size() && left >= lines[line].size() - offset) {
      left -= lines[line].size() - offset;
      ++line;
      offset = 0;
    }
    offset += left;
  }
  return 0;
}

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

// The queue in front of stderr, made by the first line logged (or by set_log_queue_capacity).
// Never destroyed: a line logged during the process's exit still finds it, and its thread never
// outlives what it uses.
log_queue& stderr_queue() {
  static log_queue* const queue = [] {
    auto* made = new log_queue(STDERR_FILENO, default_log_queue_lines);
    installed.store(made, std::memory_order_release);
    return made;
  }();
  return *queue;
}

}  // namespace

// What the caller and the log thread share. The thread holds it too, so a detached thread
// (close() gave up on a stuck descriptor) never uses freed memory.
struct log_queue::shared {
  shared(int descriptor, std::size_t lines) : fd(descriptor), capacity(lines) {}
  void run();

  const int fd;
  std::atomic<std::uint64_t> dropped{0};
  std::thread writer;  // touched only by the constructor and the first close()
  std::mutex mutex;
  std::condition_variable wake;      // for the thread: lines are queued, or closing
  std::condition_variable progress;  // for flush() and close(): lines written, or the thread ended
  // Guarded by `mutex`:
  std::deque<std::string> queued;
  std::size_t in_flight = 0;  // taken by the thread, not yet written
  std::size_t capacity;
  std::uint64_t accepted = 0;  // lines queued since the start
  std::uint64_t done = 0;      // of those, lines written or lost to a failed write
  bool closing = false;
  bool ended = false;
};

// The log thread: takes everything queued at once and writes it without holding the lock, so
// that push() never waits for the descriptor.
void log_queue::shared::run() {
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, nullptr);  // a write to a closed pipe: EPIPE, not death

  std::deque<std::string> batch;
  std::unique_lock lock(mutex);
  for (;;) {
    wake.wait(lock, [this] { return !queued.empty() || closing; });
    if (queued.empty()) break;  // closing, and everything is written
    batch.swap(queued);         // constant time: the lock is held only for this
    in_flight = batch.size();
    lock.unlock();
    const auto lost = write_lines(fd, batch);
    if (lost > 0) dropped.fetch_add(lost, std::memory_order_relaxed);
    batch.clear();
    lock.lock();
    done += in_flight;
    in_flight = 0;
    progress.notify_all();
  }
  ended = true;
  progress.notify_all();
}

log_queue::log_queue(int fd, std::size_t capacity)
    : state_(std::make_shared<shared>(fd, capacity)) {
  state_->writer = std::thread([state = state_] { state->run(); });
}

log_queue::~log_queue() {
  try {
    close(log_flush_bound);
  } catch (...) {
    // join() failed: the thread is left to the process's exit.
    if (state_->writer.joinable()) state_->writer.detach();
  }
}

bool log_queue::push(std::string line) {
  auto& s = *state_;
  bool was_empty = false;
  {
    const std::lock_guard lock(s.mutex);
    if (s.closing || s.queued.size() + s.in_flight >= s.capacity) {
      s.dropped.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    was_empty = s.queued.empty();
    s.queued.push_back(std::move(line));
    ++s.accepted;
  }
  // The thread waits only while nothing is queued; otherwise it comes back for this line.
  if (was_empty) s.wake.notify_one();
  return true;
}

void log_queue::set_capacity(std::size_t lines) {
  const std::lock_guard lock(state_->mutex);
  state_->capacity = lines;
}

std::uint64_t log_queue::dropped() const noexcept {
  return state_->dropped.load(std::memory_order_relaxed);
}

bool log_queue::flush(std::chrono::milliseconds bound) {
  auto& s = *state_;
  std::unique_lock lock(s.mutex);
  const auto target = s.accepted;
  return s.progress.wait_for(lock, bound, [&] { return s.done >= target || s.ended; });
}

bool log_queue::close(std::chrono::milliseconds bound) {
  auto& s = *state_;
  std::unique_lock lock(s.mutex);
  if (s.closing) return s.ended;
  s.closing = true;
  s.wake.notify_one();
  const bool ended = s.progress.wait_for(lock, bound, [&] { return s.ended; });
  lock.unlock();
  if (ended) {
    s.writer.join();
  } else {
    s.writer.detach();
  }
  return ended;
}

void set_log_level(log_level level) noexcept {
  current_level.store(level);
}

void set_log_format(log_format format) noexcept {
  current_format.store(format);
}

void set_log_queue_capacity(std::size_t lines) {
  stderr_queue().set_capacity(lines);
}

std::uint64_t log_lines_dropped() noexcept {
  const auto* queue = installed.load(std::memory_order_acquire);
  return queue != nullptr ? queue->dropped() : 0;
}

bool flush_logs(std::chrono::milliseconds bound) {
  auto* queue = installed.load(std::memory_order_acquire);
  return queue == nullptr || queue->flush(bound);
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
  // The log thread writes it; a full queue drops it (counted) rather than wait.
  stderr_queue().push(std::move(line));
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
