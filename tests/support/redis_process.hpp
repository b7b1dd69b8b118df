#pragma once
// A real redis-server as a child process for the Redis client's integration tests: on a unix
// socket in a temporary directory of its own (TCP off with --port 0, no persistence), so that
// tests and concurrent copies of the suite never share a server. Started and restarted with a
// deadline (it must log that it is ready and answer PING), killed and always ended by its PID.
// The server also gets SIGKILL if the thread that started it ends (PR_SET_PDEATHSIG), so that a
// crashed test leaves no server behind: start and restart it from a thread that outlives its use.
#include <chrono>
#include <string>
#include <string_view>
#include <sys/types.h>

#include "roomcast/resp.hpp"

namespace roomcast::testing {

class redis_process {
 public:
  /** Starts redis-server (the one CMake found: ROOMCAST_REDIS_SERVER) and waits until it answers
   * PING; throws std::runtime_error when it does not within `deadline`. */
  explicit redis_process(std::chrono::milliseconds deadline = std::chrono::seconds(5));
  /** SIGKILL, reaped, and the temporary directory removed. */
  ~redis_process();
  redis_process(const redis_process&) = delete;
  redis_process& operator=(const redis_process&) = delete;

  /** unix://<dir>/redis.sock, db 0. */
  redis::endpoint where(int db = 0) const;
  const std::string& socket_path() const noexcept { return socket_path_; }
  pid_t pid() const noexcept { return pid_; }

  /** True when the server has logged `needle` since it last started, or does within `deadline`
   * (0: only what it has logged already). */
  bool logged(std::string_view needle, std::chrono::milliseconds deadline = {});

  /** SIGKILL now (no shutdown, no goodbye to clients), and reap it. */
  void kill();
  /** Starts a new server on the same socket path (after kill()), with an empty dataset. */
  void restart(std::chrono::milliseconds deadline = std::chrono::seconds(5));

 private:
  void start(std::chrono::milliseconds deadline);
  void wait_ready(std::chrono::steady_clock::time_point until);
  bool answers_ping(std::chrono::steady_clock::time_point until) const;

  std::string dir_;
  std::string socket_path_;
  std::string log_;  // what the server has written to its stdout since it last started
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
};

}  // namespace roomcast::testing
