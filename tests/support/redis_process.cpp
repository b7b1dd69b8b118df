#include "redis_process.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace roomcast::testing {
namespace {

using clock = std::chrono::steady_clock;

int millis_until(clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Waits until `fd` is readable (or has hung up) before `until`.
bool readable(int fd, clock::time_point until) {
  for (;;) {
    pollfd entry{fd, POLLIN, 0};
    const int ready = ::poll(&entry, 1, millis_until(until));
    if (ready > 0) return true;
    if (ready == 0 || errno != EINTR) return false;
  }
}

}  // namespace

redis_process::redis_process(std::chrono::milliseconds deadline) {
  char dir_template[] = "/tmp/roomcast-redis-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) throw std::runtime_error("mkdtemp failed");
  dir_ = dir_template;
  socket_path_ = dir_ + "/redis.sock";
  start(deadline);
}

redis_process::~redis_process() {
  kill();
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

redis::endpoint redis_process::where(int db) const {
  redis::endpoint out;
  out.unix_path = socket_path_;
  out.db = db;
  return out;
}

void redis_process::kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  if (stdout_fd_ >= 0) {
    ::close(stdout_fd_);
    stdout_fd_ = -1;
  }
}

void redis_process::restart(std::chrono::milliseconds deadline) {
  kill();
  start(deadline);
}

void redis_process::start(std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  // TCP off (--port 0), the unix socket only; nothing written to disk; logs to stdout.
  std::vector<std::string> args = {ROOMCAST_REDIS_SERVER,
                                   "--port",
                                   "0",
                                   "--unixsocket",
                                   socket_path_,
                                   "--unixsocketperm",
                                   "700",
                                   "--dir",
                                   dir_,
                                   "--save",
                                   "",
                                   "--appendonly",
                                   "no",
                                   "--daemonize",
                                   "no",
                                   "--logfile",
                                   ""};
  std::vector<char*> argv;
  for (auto& arg : args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // Never outlive the test process, whatever ends it.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fds[1], STDOUT_FILENO);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDERR_FILENO);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  stdout_fd_ = fds[0];
  wait_ready(until);
  if (!answers_ping(until)) {
    kill();
    throw std::runtime_error("redis-server did not answer PING in time");
  }
}

// Reads the server's log until it says it accepts connections (Redis 7.0: "The server is now
// ready to accept connections at <path>").
void redis_process::wait_ready(clock::time_point until) {
  log_.clear();
  std::array<char, 4096> chunk{};
  while (log_.find("ready to accept connections") == std::string::npos) {
    if (!readable(stdout_fd_, until)) {
      kill();
      throw std::runtime_error("redis-server did not get ready in time: " + log_);
    }
    const auto n = ::read(stdout_fd_, chunk.data(), chunk.size());
    if (n <= 0) {
      kill();
      throw std::runtime_error("redis-server ended before it was ready: " + log_);
    }
    log_.append(chunk.data(), static_cast<std::size_t>(n));
  }
}

bool redis_process::logged(std::string_view needle, std::chrono::milliseconds deadline) {
  const auto until = clock::now() + deadline;
  std::array<char, 4096> chunk{};
  while (log_.find(needle) == std::string::npos) {
    if (stdout_fd_ < 0 || !readable(stdout_fd_, until)) return false;
    const auto n = ::read(stdout_fd_, chunk.data(), chunk.size());
    if (n <= 0) return false;
    log_.append(chunk.data(), static_cast<std::size_t>(n));
  }
  return true;
}

bool redis_process::answers_ping(clock::time_point until) const {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  socket_path_.copy(address.sun_path, sizeof(address.sun_path) - 1);
  bool pong = false;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0
      && ::send(fd, "PING\r\n", 6, MSG_NOSIGNAL) == 6) {
    std::string got;
    char chunk[64];
    while (got.size() < 7 && readable(fd, until)) {
      const auto n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) break;
      got.append(chunk, static_cast<std::size_t>(n));
    }
    pong = got.starts_with("+PONG\r\n");
  }
  ::close(fd);
  return pong;
}

}  // namespace roomcast::testing
