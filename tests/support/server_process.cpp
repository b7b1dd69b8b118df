#include "server_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace roomcast::testing {

server_process::server_process(const std::vector<std::string>& args, int stderr_pipe_bytes)
    : server_process(args, launch{.stderr_pipe_bytes = stderr_pipe_bytes}) {}

server_process::server_process(const std::vector<std::string>& args, const launch& how) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe failed");
  if (how.stderr_pipe_bytes > 0 && ::fcntl(fds[1], F_SETPIPE_SZ, how.stderr_pipe_bytes) < 0) {
    throw std::runtime_error("F_SETPIPE_SZ failed");
  }
  std::vector<std::string> argv_storage{how.program.empty() ? ROOMCAST_BINARY : how.program};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : argv_storage)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** entry = environ; *entry != nullptr; ++entry)
    env_storage.emplace_back(*entry);
  env_storage.insert(env_storage.end(), how.env.begin(), how.env.end());
  std::vector<char*> envp;
  for (auto& entry : env_storage)
    envp.push_back(entry.data());
  envp.push_back(nullptr);
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(fds[1], STDERR_FILENO);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::close(fds[0]);
    if (how.fd3 >= 0) {
      if (how.fd3 == 3) {
        ::fcntl(3, F_SETFD, 0);  // dup2 onto itself would keep FD_CLOEXEC
      } else {
        ::dup2(how.fd3, 3);
      }
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  stderr_fd_ = fds[0];
}

server_process::~server_process() {
  if (!exited_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (stderr_fd_ >= 0) ::close(stderr_fd_);
}

bool server_process::read_more(std::chrono::steady_clock::time_point until) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd entry{stderr_fd_, POLLIN, 0};
  if (::poll(&entry, 1, static_cast<int>(left.count())) <= 0) return false;
  char chunk[4096];
  const auto n = ::read(stderr_fd_, chunk, sizeof chunk);
  if (n <= 0) return false;
  pending_.append(chunk, static_cast<std::size_t>(n));
  for (auto end = pending_.find('\n'); end != std::string::npos; end = pending_.find('\n')) {
    lines_.push_back(pending_.substr(0, end));
    pending_.erase(0, end + 1);
  }
  return true;
}

std::optional<std::string> server_process::wait_for_line(std::string_view needle,
                                                         std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    for (; scanned_ < lines_.size(); ++scanned_) {
      if (lines_[scanned_].find(needle) != std::string::npos) return lines_[scanned_++];
    }
    if (!read_more(until)) return std::nullopt;
  }
}

std::uint16_t server_process::port_after(std::string_view label) {
  const auto line = wait_for_line(label, std::chrono::seconds(10));
  if (!line) throw std::runtime_error("the server never logged '" + std::string(label) + "'");
  const auto url = line->find("http://", line->find(label));
  const auto colon = line->find(':', url + 7);
  return static_cast<std::uint16_t>(std::stoi(line->substr(colon + 1)));
}

void server_process::signal(int number) {
  ::kill(pid_, number);
}

std::optional<int> server_process::wait_exit(std::chrono::milliseconds deadline, bool read_stderr) {
  if (!read_stderr && !exited_) {
    // A pidfd becomes readable when the process exits: wait for that without touching stderr.
    // (glibc 2.36's <sys/pidfd.h> declares pidfd_open without extern "C": the system call.)
    const auto exit_fd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
    if (exit_fd < 0) throw std::runtime_error("pidfd_open failed");
    pollfd gone{exit_fd, POLLIN, 0};
    const int ready = ::poll(&gone, 1, static_cast<int>(deadline.count()));
    ::close(exit_fd);
    if (ready <= 0) return std::nullopt;
  }
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      while (read_more(std::chrono::steady_clock::now() + std::chrono::milliseconds(200))) {
      }
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    // Waiting for a child's exit has no descriptor to poll here: its stderr closing is the
    // event (read_more returns early at EOF), with a short bound so waitpid is retried.
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    read_more(std::min(until, std::chrono::steady_clock::now() + std::chrono::milliseconds(20)));
  }
}

}  // namespace roomcast::testing
