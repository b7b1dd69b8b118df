// g++ 12.2 (Debian 12.2.0-14): an unscoped enumeration declared inside a coroutine body, named
// or anonymous, can crash the compiler when debug information is on: "internal compiler error:
// Segmentation fault" while it writes the early debug information (c_common_finalize_early_debug).
// Whether it does depends on the whole translation unit: this file crashes it at -O1, -O2 and -O3
// with -g, and at -O2 -g with -fsanitize=address,undefined, but compiles at -O0 -g and at every
// level without -g; small edits elsewhere in the file move or hide the crash. A `static
// thread_local` next to the enum plays no part.
//
// Not a test: it fails to compile, and an unrelated change to this file or to the compiler build
// can hide the bug without fixing it. To try it:
//   g++ -std=c++20 -g -O2 -c tests/toolchain/gcc12_local_enum_ice.cpp -o /dev/null
//
// Works (compiled at all the levels above): a constexpr variable, an enum class, or the
// enumeration at namespace scope:
//   constexpr std::size_t limit = 40;
#include <string>

#include <boost/asio.hpp>

namespace net = boost::asio;

net::awaitable<int> yield_once() {
  co_return 0;
}

net::awaitable<int> body() {
  enum { limit = 40 };
  std::string scratch(limit, 'x');
  co_await yield_once();
  co_await yield_once();
  co_return static_cast<int>(scratch.size());
}

int main() {
  net::io_context io;
  int result = -1;
  net::co_spawn(io, body(), [&](std::exception_ptr, int r) { result = r; });
  io.run();
  return result == 40 ? 0 : 1;
}
