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
  /** Starts the binary built with this test suite (ROOMCAST_BINARY) with `args`. */
  explicit server_process(const std::vector<std::string>& args);
  ~server_process();
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  /** The first stderr line containing `needle`, read within `deadline`; nullopt if none. */
  std::optional<std::string> wait_for_line(std::string_view needle,
                                           std::chrono::milliseconds deadline);
  /** The port in the first line that has `label` followed by `http://ADDR:PORT/`. */
  std::uint16_t port_after(std::string_view label);
  void signal(int number);
  /** The exit status when the process exits within `deadline`, else nullopt. */
  std::optional<int> wait_exit(std::chrono::milliseconds deadline);
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
