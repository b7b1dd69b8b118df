// g++ 12.2: in a coroutine whose body declares no variable at all, a co_await in the condition
// of an if, switch, while, do or for whose full-expression creates a temporary with a destructor
// (with net::awaitable that is always so: the awaitable itself) makes g++ put the condition's
// flag in front of the frame's resume pointer. Every coroutine_handle to that frame is then off
// by 8 bytes: with net::awaitable the first resumption jumps to a wild address (SIGSEGV, or
// SIGILL under ASan). `run` in sync_task.hpp catches the bad handle before resuming it.
//
// Output: "coroutine_handle ... does not point at its frame" (at -O0 and -O2, with or without
// ASan).
//
// Works: any variable in the body. The clear way is to name the awaited value first:
//   const std::size_t size = co_await size_of(std::string(40, 'x'));
//   if (size == 40) co_return 1;
// `if (co_await ...)` in a coroutine that declares some variable is not affected.
#include <string>

#include "sync_task.hpp"

task<std::size_t> size_of(std::string text) {
  co_return text.size();
}

task<int> body() {
  if (co_await size_of(std::string(40, 'x')) == 40) co_return 1;
  co_return 0;
}

int main() {
  return run(body()) == 1 ? 0 : 1;
}
