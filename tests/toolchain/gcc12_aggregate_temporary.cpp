// g++ 12.2: an aggregate temporary whose type has a non-trivial destructor, created anywhere in a
// full-expression that contains co_await, is destroyed twice. Here `request{...}` is an argument
// of a plain function inside the co_await; passing it straight to the coroutine
// (`co_await size_of(request{...})`, `co_await size_of({.path = ...})`) breaks the same way, and
// so does a lambda with captures (gcc12_capturing_lambda.cpp).
//
// ASan: "attempting double-free" (at -O0 and -O2).
//
// Works: build the aggregate in a statement without co_await, then await:
//   const auto text = describe(request{std::string(40, 'p')});
//   co_return co_await size_of(text);
// A temporary built by a constructor (std::string, std::make_shared, std::optional, a class
// with a user-provided constructor) or returned by a function is not affected.
#include <string>

#include "sync_task.hpp"

struct request {
  std::string path;
};

std::string describe(const request& r) {
  return "GET " + r.path;
}

task<std::size_t> size_of(std::string text) {
  co_return text.size();
}

task<std::size_t> body() {
  co_return co_await size_of(describe(request{std::string(40, 'p')}));
}

int main() {
  return run(body()) == 44 ? 0 : 1;
}
