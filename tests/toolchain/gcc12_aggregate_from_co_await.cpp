// g++ 12.2: an aggregate (no constructor) with a non-trivial destructor that is initialized in a
// full-expression containing co_await is destroyed twice: `pair x{co_await a(), co_await b()}`,
// `pair x{co_await a(), "b"}`, `co_return pair{co_await a(), ...}`. It is the bug of
// gcc12_aggregate_temporary.cpp again, with the co_await inside the initializer.
//
// ASan: "attempting double-free" (at -O0 and -O2).
//
// Works: name each awaited value, then build the aggregate in a statement without co_await:
//   auto first = co_await text('a');
//   auto second = co_await text('b');
//   pair x{std::move(first), std::move(second)};
// co_await results as arguments of a function or a constructor (`join(co_await a(), co_await b())`,
// `tcp::socket s(co_await this_coro::executor)`) and inside Catch2 assertions are not affected.
#include <string>

#include "sync_task.hpp"

struct pair {
  std::string first;
  std::string second;
};

task<std::string> text(char c) {
  co_return std::string(40, c);
}

task<std::size_t> body() {
  pair x{co_await text('a'), co_await text('b')};
  co_return x.first.size() + x.second.size();
}

int main() {
  return run(body()) == 80 ? 0 : 1;
}
