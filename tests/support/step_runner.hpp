#pragma once
// Runs coroutines to completion on a single-threaded io_context, one handler at a time, then lets
// everything they queued run too: hub tests and the hub fuzz target check state between steps.
// Header-only, so that the clang fuzz build can use it as well.
#include <exception>
#include <optional>
#include <stdexcept>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include "roomcast/net.hpp"

namespace roomcast::testing {

class step_runner {
 public:
  explicit step_runner(net::io_context& io) : io_(io) {}

  /** Runs `task` to completion and returns its result; throws what it threw, or
   * std::logic_error when nothing can run while it is not done (a deadlock). */
  template <class T>
  T run(net::awaitable<T> task) {
    std::optional<T> result;
    std::exception_ptr failure;
    auto finished = [&](std::exception_ptr error, T value) {
      failure = error;
      result = std::move(value);
    };
    net::co_spawn(io_, std::move(task), finished);
    drive([&] { return result.has_value() || failure; });
    if (failure) std::rethrow_exception(failure);
    return std::move(*result);
  }

  void run(net::awaitable<void> task) {
    bool done = false;
    std::exception_ptr failure;
    auto finished = [&](std::exception_ptr error) {
      failure = error;
      done = true;
    };
    net::co_spawn(io_, std::move(task), finished);
    drive([&] { return done; });
    if (failure) std::rethrow_exception(failure);
  }

  /** Runs handlers one at a time until `done()`, then everything that is ready. */
  template <class Done>
  void drive(Done done) {
    io_.restart();
    while (!done()) {
      if (io_.poll_one() == 0)
        throw std::logic_error("stuck: nothing can run and the task is not done");
    }
    io_.poll();
  }

 private:
  net::io_context& io_;
};

}  // namespace roomcast::testing
