#pragma once
// Command-line values of the benchmark programs: a bad one is a message on stderr and exit 2,
// like the server's own flags.
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace roomcast::bench {

/** `text` as an integer in low..high; otherwise "<program>: <flag> needs an integer in low..high"
 * and exit 2. */
inline int parse_int(std::string_view program, std::string_view flag, std::string_view text,
                     int low, int high) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < low || value > high) {
    std::fprintf(stderr, "%.*s: %.*s needs an integer in %d..%d\n",
                 static_cast<int>(program.size()), program.data(), static_cast<int>(flag.size()),
                 flag.data(), low, high);
    std::exit(2);
  }
  return value;
}

/** The value after the flag at argv[i] (and moves i onto it); exits 2 when there is none. */
inline std::string_view value_of(std::string_view program, int argc, char** argv, int& i) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "%.*s: %s needs a value\n", static_cast<int>(program.size()),
                 program.data(), argv[i]);
    std::exit(2);
  }
  return argv[++i];
}

}  // namespace roomcast::bench
