// g++ 12.2: in `c ? co_await a() : co_await b()` (or with co_await in one operand only) the
// result is copied bitwise out of a temporary that is then destroyed too, so a result that owns
// memory (std::string, a struct holding one) is freed twice. `co_await (c ? a() : b())` is broken
// as well (heap-use-after-free). Results of trivially copyable types (int, bool) are not
// affected.
//
// ASan: "attempting double-free" (at -O0 and -O2).
//
// Works: if/else, each branch assigning its own co_await:
//   std::string s;
//   if (c) s = co_await text('a'); else s = co_await text('b');
#include <string>

#include "sync_task.hpp"

task<std::string> text(char c) {
  co_return std::string(40, c);
}

task<std::size_t> body(bool c) {
  std::string s = c ? co_await text('a') : co_await text('b');
  co_return s.size();
}

int main() {
  return run(body(true)) == 40 ? 0 : 1;
}
