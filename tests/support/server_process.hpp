#pragma once
// The real roomcast binary as a child process: started with arguments, its stderr read line by
// line with deadlines, signalled, and always ended by its PID.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace roomcast::testing {

class server_process {
 public:
  /** How to start the child, beyond its arguments. */
  struct launch {
    std::string program;           ///< empty: the roomcast binary built with the tests
    std::vector<std::string> env;  ///< "NAME=value" entries added to this process's environment
    int fd3 = -1;                  ///< a descriptor the child gets as its descriptor 3
    int stderr_pipe_bytes = 0;     ///< see the first constructor
  };

  /** Starts the binary built with this test suite (ROOMCAST_BINARY) with `args`. When
   * `stderr_pipe_bytes` > 0, the pipe its stderr goes to holds only that much (F_SETPIPE_SZ; the
   * kernel rounds up to a page), so that a test that stops reading fills it quickly. */
  explicit server_process(const std::vector<std::string>& args, int stderr_pipe_bytes = 0);
  /** Starts `how.program` (or roomcast) with `args`. The child gets SIGKILL if the thread that
   * started it ends, so a crashed test leaves no process behind. */
  server_process(const std::vector<std::string>& args, const launch& how);
  ~server_process();
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  /** The first stderr line containing `needle`, read within `deadline`; nullopt if none. */
  std::optional<std::string> wait_for_line(std::string_view needle,
                                           std::chrono::milliseconds deadline);
  /** The port in the first line that has `label` followed by `http://ADDR:PORT/`. */
  std::uint16_t port_after(std::string_view label);
  void signal(int number);
  pid_t pid() const noexcept { return pid_; }
  /** The exit status when the process exits within `deadline`, else nullopt. With `read_stderr`
   * false, stderr is not read while waiting (a log pipe nobody reads), only after the exit. */
  std::optional<int> wait_exit(std::chrono::milliseconds deadline, bool read_stderr = true);
  const std::vector<std::string>& lines() const noexcept { return lines_; }

 private:
  bool read_more(std::chrono::steady_clock::time_point until);
  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  std::string pending_;
  std::vector<std::string> lines_;
  std::size_t scanned_ = 0;
  bool exited_ = false;
};

}  // namespace roomcast::testing
