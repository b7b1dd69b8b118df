#include "server_fixture.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <catch2/catch.hpp>

namespace roomcast::testing {

config test_config() {
  config settings;
  settings.port = 0;
  settings.threads = 2;
  settings.level = log_level::warn;
  return settings;
}

running_server::running_server(const config& settings)
    : server_(std::make_unique<roomcast::server>(settings)), port_(server_->port()) {
  set_log_level(settings.level);
  server_->start();
}

running_server::~running_server() {
  server_->stop();
  server_->wait();
}

void run_client(const std::function<net::awaitable<void>()>& body,
                std::chrono::milliseconds deadline) {
  net::io_context io;
  bool done = false;
  std::exception_ptr failure;
  net::co_spawn(io, body(), [&](std::exception_ptr error) {
    failure = error;
    done = true;
  });
  io.run_for(deadline);
  if (failure) std::rethrow_exception(failure);
  if (!done) FAIL("the client did not finish within " << deadline.count() << " ms");
}

}  // namespace roomcast::testing
