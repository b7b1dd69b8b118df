// g++ 12.2: a co_await in an operand that &&, || or ?: skips is evaluated anyway when the
// expression is the condition of a while, do-while or for loop: `while (false && co_await f())`
// calls and awaits f(). In an if's condition or an initializer the operand is skipped, as it
// must be. Catch2's CHECK and REQUIRE end in `while ((void)0, false && !!(expr))`, so a co_await
// written inside an assertion is awaited twice (the second time on whatever state the first left
// behind: a moved-from awaitable is a null frame, a second read consumes another message).
//
// Output: "skipped operand was awaited" (at -O0 and -O2, with or without ASan).
//
// Works: name the awaited value first, then test it, in the loop and in the assertion:
//   bool more = keep_going;
//   while (more) { ...; more = keep_going && co_await f(); }
//   const auto got = co_await f();
//   CHECK(got);
#include <cstdio>

#include "sync_task.hpp"

int awaited = 0;

task<bool> probe() {
  ++awaited;
  co_return true;
}

task<int> body(bool keep_going) {
  int rounds = 0;  // a local: without one, gcc12_condition_without_locals.cpp's bug shows first
  do {
    ++rounds;
  } while (keep_going && co_await probe());
  co_return awaited;
}

int main() {
  if (run(body(false)) != 0) {
    std::fprintf(stderr, "skipped operand was awaited\n");
    return 1;
  }
  return 0;
}
