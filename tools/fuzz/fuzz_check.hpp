#pragma once
// FUZZ_CHECK: an invariant of a fuzz target. A failure prints what was expected and aborts, which
// libFuzzer reports as a crash and saves the input as crash-<sha1>.
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>

namespace roomcast::fuzz {

[[noreturn]] inline void check_failed(const char* file, int line, const char* condition,
                                      const std::string& detail) {
  std::fprintf(stderr, "\n%s:%d: invariant violated: %s\n  %s\n", file, line, condition,
               detail.c_str());
  std::abort();
}

template <class... Parts>
std::string describe_parts(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

}  // namespace roomcast::fuzz

// The detail arguments are evaluated only on failure.
#define FUZZ_FAIL(...)                                            \
  ::roomcast::fuzz::check_failed(__FILE__, __LINE__, "see below", \
                                 ::roomcast::fuzz::describe_parts(__VA_ARGS__))

#define FUZZ_CHECK(condition, ...)                                                   \
  do {                                                                               \
    if (!(condition)) {                                                              \
      ::roomcast::fuzz::check_failed(__FILE__, __LINE__, #condition,                 \
                                     ::roomcast::fuzz::describe_parts(__VA_ARGS__)); \
    }                                                                                \
  } while (0)
