#pragma once
// The real server, in-process on an ephemeral port, and a way to run a client coroutine against
// it with a deadline instead of sleeps.
#include <chrono>
#include <functional>
#include <memory>

#include "roomcast/config.hpp"
#include "roomcast/net.hpp"
#include "roomcast/server.hpp"

namespace roomcast::testing {

/** 127.0.0.1, port 0, two threads (every test exercises the multi-threaded path), quiet logs. */
config test_config();

class running_server {
 public:
  explicit running_server(const config& settings = test_config());
  ~running_server();
  std::uint16_t port() const noexcept { return port_; }
  roomcast::server& get() noexcept { return *server_; }

 private:
  std::unique_ptr<roomcast::server> server_;
  std::uint16_t port_;
};

/** Runs `body` on a fresh client io_context on this thread; fails the test if it has not
 * finished within `deadline`, and rethrows what it threw (Catch2 assertions included). */
void run_client(const std::function<net::awaitable<void>()>& body,
                std::chrono::milliseconds deadline = std::chrono::seconds(20));

}  // namespace roomcast::testing
