// The log queue over a real pipe: lines come out in order, a stuck pipe never holds up the caller
// (a full queue drops and counts), close() writes what is queued and gives up on a stuck pipe
// after its bound. No sleeps: every wait is a poll or a future with a deadline.
//
// Tagged [threads]: these tests run in the tsan preset too (label `threads`).
#include <algorithm>
#include <chrono>
#include <fcntl.h>
#include <future>
#include <poll.h>
#include <string>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

#include "roomcast/log.hpp"

using namespace roomcast;
using namespace std::chrono_literals;
using lines = std::vector<std::string>;

namespace {

// A pipe standing for stderr: the queue writes to `write_end`, the test reads `read_end` (or does
// not, to make the queue's thread wait).
struct log_pipe {
  int read_end = -1;
  int write_end = -1;
  std::string pending;  // bytes read and not yet taken

  log_pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    read_end = fds[0];
    write_end = fds[1];
  }
  ~log_pipe() {
    close_read_end();
    ::close(write_end);
  }
  log_pipe(const log_pipe&) = delete;
  log_pipe& operator=(const log_pipe&) = delete;

  void close_read_end() {
    if (read_end >= 0) ::close(read_end);
    read_end = -1;
  }

  // Writes until the pipe takes not one more byte; returns how many bytes it holds. A write to it
  // then waits until the test reads.
  std::size_t fill() const {
    const int flags = ::fcntl(write_end, F_GETFL);
    REQUIRE(::fcntl(write_end, F_SETFL, flags | O_NONBLOCK) == 0);
    const std::string block(4096, 'x');
    std::size_t held = 0;
    for (std::size_t size = block.size(); size > 0; size /= 2) {
      for (;;) {
        const auto written = ::write(write_end, block.data(), size);
        if (written <= 0) break;
        held += static_cast<std::size_t>(written);
      }
    }
    REQUIRE(::fcntl(write_end, F_SETFL, flags) == 0);
    return held;
  }

  // Reads what arrives before `until` (one read); false when nothing did.
  bool read_more(std::chrono::steady_clock::time_point until) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    pollfd readable{read_end, POLLIN, 0};
    if (::poll(&readable, 1, static_cast<int>(std::max<long long>(0, left.count()))) <= 0) {
      return false;
    }
    char chunk[4096];
    const auto got = ::read(read_end, chunk, sizeof chunk);
    if (got <= 0) return false;
    pending.append(chunk, static_cast<std::size_t>(got));
    return true;
  }

  // The next `count` lines (without their '\n'), or fewer if they do not arrive within
  // `deadline`. A deadline of 0 takes only what is in the pipe already.
  lines next_lines(std::size_t count, std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    lines got;
    for (;;) {
      for (auto end = pending.find('\n'); got.size() < count && end != std::string::npos;
           end = pending.find('\n')) {
        got.push_back(pending.substr(0, end));
        pending.erase(0, end + 1);
      }
      if (got.size() == count || !read_more(until)) return got;
    }
  }

  // Reads and discards `bytes` bytes (what fill() put there); false at the deadline.
  bool skip(std::size_t bytes, std::chrono::milliseconds deadline) {
    const auto until = std::chrono::steady_clock::now() + deadline;
    while (pending.size() < bytes) {
      if (!read_more(until)) return false;
    }
    pending.erase(0, bytes);
    return true;
  }
};

lines numbered(const std::string& prefix, int count) {
  lines all;
  for (int i = 0; i < count; ++i)
    all.push_back(prefix + std::to_string(i));
  return all;
}

}  // namespace

TEST_CASE("the log queue writes each thread's lines whole and in the order they were pushed",
          "[threads]") {
  log_pipe sink;
  log_queue queue(sink.write_end, 10'000);
  constexpr int per_thread = 500;
  const auto produce = [&queue](const std::string& prefix) {
    int accepted = 0;
    for (const auto& line : numbered(prefix, per_thread))
      accepted += queue.push(line + "\n") ? 1 : 0;
    return accepted;
  };
  auto a = std::async(std::launch::async, produce, "a ");
  auto b = std::async(std::launch::async, produce, "b ");
  // Read while they push: the pipe may be smaller than what they write.
  const auto got = sink.next_lines(2 * per_thread, 20s);
  REQUIRE(a.wait_for(20s) == std::future_status::ready);
  REQUIRE(b.wait_for(20s) == std::future_status::ready);
  CHECK(a.get() == per_thread);
  CHECK(b.get() == per_thread);
  CHECK(queue.dropped() == 0);
  REQUIRE(got.size() == 2 * per_thread);
  lines from_a;
  lines from_b;
  for (const auto& line : got) {
    INFO(line);
    REQUIRE((line.starts_with("a ") || line.starts_with("b ")));
    (line.starts_with("a ") ? from_a : from_b).push_back(line);
  }
  CHECK(from_a == numbered("a ", per_thread));
  CHECK(from_b == numbered("b ", per_thread));
  CHECK(queue.close(20s));
}

TEST_CASE(
    "a stuck log pipe never holds up push(), a full queue drops and counts, and lines "
    "flow again once the pipe is read",
    "[threads]") {
  log_pipe sink;
  const auto held = sink.fill();
  log_queue queue(sink.write_end, 4);
  // The pushes run on another thread, with a deadline: one that waited for the pipe would miss it.
  auto pushes = std::async(std::launch::async, [&queue] {
    std::vector<bool> accepted;
    for (const auto& line : numbered("line ", 20))
      accepted.push_back(queue.push(line + "\n"));
    return accepted;
  });
  const bool in_time = pushes.wait_for(20s) == std::future_status::ready;
  if (!in_time) sink.close_read_end();  // let a push stuck in a write fail instead of hanging
  REQUIRE(in_time);
  const auto accepted = pushes.get();
  // Nothing can leave the queue: the first four lines wait (the log thread may have taken some
  // into its stuck write; they still count), the other sixteen are dropped.
  CHECK(std::all_of(accepted.begin(), accepted.begin() + 4, [](bool ok) { return ok; }));
  CHECK(std::none_of(accepted.begin() + 4, accepted.end(), [](bool ok) { return ok; }));
  CHECK(queue.dropped() == 16);

  // Reading the pipe unblocks the thread: the accepted lines come out, in order.
  REQUIRE(sink.skip(held, 20s));
  CHECK(sink.next_lines(4, 20s) == numbered("line ", 4));
  REQUIRE(queue.flush(20s));
  CHECK(queue.push("after 0\n"));
  CHECK(queue.push("after 1\n"));
  CHECK(sink.next_lines(2, 20s) == numbered("after ", 2));
  CHECK(queue.dropped() == 16);
  CHECK(queue.close(20s));
  CHECK(sink.next_lines(1, 0ms).empty());  // the dropped lines never appear
}

TEST_CASE("close() returns after every queued line is written, and later lines are dropped",
          "[threads]") {
  log_pipe sink;
  log_queue queue(sink.write_end, 100);
  for (const auto& line : numbered("line ", 50))
    REQUIRE(queue.push(line + "\n"));
  REQUIRE(queue.close(20s));
  // Already in the pipe: read without waiting.
  CHECK(sink.next_lines(50, 0ms) == numbered("line ", 50));
  CHECK_FALSE(queue.push("too late\n"));
  CHECK(queue.dropped() == 1);
  CHECK(queue.close(20s));  // a second close has nothing to wait for
}

TEST_CASE(
    "close() gives up on a stuck pipe at its bound, and the detached thread writes the "
    "rest when the pipe is read",
    "[threads]") {
  log_pipe sink;
  const auto held = sink.fill();
  log_queue queue(sink.write_end, 8);
  for (const auto& line : numbered("line ", 3))
    REQUIRE(queue.push(line + "\n"));
  const auto started = std::chrono::steady_clock::now();
  CHECK_FALSE(queue.close(50ms));
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK_FALSE(queue.push("too late\n"));
  REQUIRE(sink.skip(held, 20s));
  // The pipe's write end stays open until the lines are read, so the thread is done with it.
  CHECK(sink.next_lines(3, 20s) == numbered("line ", 3));
  CHECK(queue.dropped() == 1);
}

TEST_CASE(
    "a failed write drops its lines and counts them, and a pipe without a reader ends "
    "no process",
    "[threads]") {
  log_pipe sink;
  sink.close_read_end();  // writes fail with EPIPE (SIGPIPE, which the log thread blocks)
  log_queue queue(sink.write_end, 8);
  REQUIRE(queue.push("nobody reads this\n"));
  REQUIRE(queue.push("nor this\n"));
  REQUIRE(queue.flush(20s));
  CHECK(queue.dropped() == 2);
  CHECK(queue.close(20s));
}
