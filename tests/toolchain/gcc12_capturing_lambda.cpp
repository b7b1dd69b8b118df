// g++ 12.2: a lambda whose captures have a non-trivial destructor, written inside a
// full-expression that contains co_await, has its captures destroyed twice: the closure is an
// aggregate-like temporary (gcc12_aggregate_temporary.cpp). The lambda may be the coroutine
// handed to co_spawn, as here, a by-value or by-reference argument of a coroutine, or an argument
// of a plain function inside the co_await; a captureless lambda, or one that captures only
// references and trivially destructible values ([&], [this], [n]), is not affected.
//
// ASan: "heap-use-after-free" (the shared_ptr's count is released twice), at -O0 and -O2.
//
// Works: name the lambda first, then hand it over:
//   auto work = [p = std::make_shared<int>(42)]() -> net::awaitable<int> { co_return *p; };
//   co_return co_await net::co_spawn(executor, std::move(work), net::use_awaitable);
#include <memory>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace net = boost::asio;

net::awaitable<int> body() {
  const auto executor = co_await net::this_coro::executor;
  co_return co_await net::co_spawn(
      executor, [p = std::make_shared<int>(42)]() -> net::awaitable<int> { co_return *p; },
      net::use_awaitable);
}

int main() {
  net::io_context io;
  int result = 0;
  net::co_spawn(io, body(), [&](std::exception_ptr, int value) { result = value; });
  io.run();
  return result == 42 ? 0 : 1;
}
