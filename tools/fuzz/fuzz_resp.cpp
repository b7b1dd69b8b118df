// fuzz_resp: arbitrary server bytes through roomcast::redis::reply_parser (hiredis's redisReader
// underneath), fed whole, in chunks of fuzzer-chosen sizes, and one byte at a time, like the Redis
// client's read loop. The three runs must give the same replies and the same verdict. Each reply
// must be well-formed (fields of other kinds empty, arrays at most 8 deep), must survive a round
// trip (written back canonically and parsed again, whole and byte by byte, it is the same reply),
// and a failed parser must stay failed and hold nothing. A small `max_buffered` must bound what
// the parser holds. format_command is checked too: the input, cut into arguments, formatted and
// parsed back, is an array of exactly those bulk strings.
//
// Input: byte 0 chooses max_buffered for the bounded run (1..256); bytes 1..4 are the chunk sizes
// (each 1..256, used in turn); the rest is the stream.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "roomcast/resp.hpp"

#include "fuzz_check.hpp"

using roomcast::redis::reply;
using roomcast::redis::reply_parser;

namespace {

struct outcome {
  std::vector<reply> replies;
  bool failed = false;
  bool operator==(const outcome&) const = default;
};

// Feeds `stream` in chunks of the sizes `chunk(i)` gives and takes every reply after each chunk.
template <class Chunk>
outcome feed(std::string_view stream, Chunk chunk) {
  reply_parser parser;
  outcome out;
  std::size_t from = 0;
  for (std::size_t i = 0; from < stream.size(); ++i) {
    const std::size_t size = std::min(chunk(i), stream.size() - from);
    parser.feed(stream.substr(from, size));
    from += size;
    while (auto r = parser.next())
      out.replies.push_back(std::move(*r));
    if (parser.failed()) {
      FUZZ_CHECK(!parser.error().empty(), "failed without a reason");
      FUZZ_CHECK(parser.buffered() == 0, "a failed parser holds ", parser.buffered(), " bytes");
      parser.feed("+OK\r\n");
      FUZZ_CHECK(!parser.next().has_value(), "a failed parser gave a reply");
      out.failed = true;
      return out;
    }
  }
  return out;
}

std::string describe(const outcome& o) {
  return std::to_string(o.replies.size()) + " replies" + (o.failed ? ", failed" : "");
}

// hiredis 0.14 refuses arrays nested more than 8 deep: a leaf is at depth 8 at most.
void check_shape(const reply& r, int depth) {  // NOLINT(misc-no-recursion): bounded by 8
  FUZZ_CHECK(depth <= 8, "array nesting of ", depth);
  if (r.type != reply::kind::array) {
    FUZZ_CHECK(r.elements.empty(), "elements on a non-array");
  }
  if (r.type != reply::kind::integer) FUZZ_CHECK(r.integer == 0, "integer on a non-integer");
  if (r.type == reply::kind::nil || r.type == reply::kind::integer
      || r.type == reply::kind::array) {
    FUZZ_CHECK(r.str.empty(), "text on a reply without text");
  }
  if (r.type == reply::kind::status || r.type == reply::kind::error) {
    FUZZ_CHECK(r.str.find("\r\n") == std::string::npos, "CRLF inside a line reply");
  }
  for (const auto& element : r.elements)
    check_shape(element, depth + 1);
}

// The canonical RESP2 bytes of `r`.
void write(const reply& r, std::string& out) {  // NOLINT(misc-no-recursion): bounded by 8
  switch (r.type) {
    case reply::kind::string:
      out += "$" + std::to_string(r.str.size()) + "\r\n" + r.str + "\r\n";
      break;
    case reply::kind::status:
      out += "+" + r.str + "\r\n";
      break;
    case reply::kind::error:
      out += "-" + r.str + "\r\n";
      break;
    case reply::kind::integer:
      out += ":" + std::to_string(r.integer) + "\r\n";
      break;
    case reply::kind::nil:
      out += "$-1\r\n";
      break;
    case reply::kind::array:
      out += "*" + std::to_string(r.elements.size()) + "\r\n";
      for (const auto& element : r.elements)
        write(element, out);
      break;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 5) return 0;
  const std::size_t max_buffered = std::size_t{data[0]} + 1;
  const std::array<std::uint8_t, 4> pattern = {data[1], data[2], data[3], data[4]};
  const std::string_view stream(reinterpret_cast<const char*>(data + 5), size - 5);

  const auto whole = feed(stream, [](std::size_t) { return std::size_t{1} << 20; });
  const auto split =
      feed(stream, [&pattern](std::size_t i) { return std::size_t{pattern[i % 4]} + 1; });
  FUZZ_CHECK(split == whole, "fed in chunks: ", describe(split), "; whole: ", describe(whole));
  const auto bytewise = feed(stream, [](std::size_t) { return std::size_t{1}; });
  FUZZ_CHECK(bytewise == whole, "fed byte by byte: ", describe(bytewise),
             "; whole: ", describe(whole));

  // Every reply is well-formed and reads back the same from its canonical bytes.
  std::string canonical;
  for (const auto& r : whole.replies) {
    check_shape(r, 0);
    write(r, canonical);
  }
  const auto again = feed(canonical, [](std::size_t) { return std::size_t{1} << 20; });
  FUZZ_CHECK(!again.failed && again.replies == whole.replies, "canonical bytes read back as ",
             describe(again), " instead of ", describe(whole));
  const auto again_bytewise = feed(canonical, [](std::size_t) { return std::size_t{1}; });
  FUZZ_CHECK(again_bytewise == again, "canonical bytes byte by byte: ", describe(again_bytewise));

  // A small bound: after every call the parser holds at most max_buffered bytes of an
  // incomplete reply, or it has failed (and holds nothing).
  {
    reply_parser bounded(max_buffered);
    std::size_t from = 0;
    for (std::size_t i = 0; from < stream.size() && !bounded.failed(); ++i) {
      const std::size_t chunk = std::min(std::size_t{pattern[i % 4]} + 1, stream.size() - from);
      bounded.feed(stream.substr(from, chunk));
      from += chunk;
      while (bounded.next()) {
      }
      FUZZ_CHECK(bounded.failed() ? bounded.buffered() == 0 : bounded.buffered() <= max_buffered,
                 "holds ", bounded.buffered(), " bytes, bound ", max_buffered);
    }
  }

  // format_command: the stream cut at byte 0x00 into arguments reads back as those bulk strings.
  std::vector<std::string_view> args;
  for (std::size_t from = 0;;) {
    const auto end = stream.find('\0', from);
    args.push_back(stream.substr(from, end == std::string_view::npos ? end : end - from));
    if (end == std::string_view::npos) break;
    from = end + 1;
  }
  const std::string formatted = roomcast::redis::format_command(args);
  const auto command =
      feed(formatted, [&pattern](std::size_t i) { return std::size_t{pattern[(i + 1) % 4]} + 1; });
  FUZZ_CHECK(!command.failed && command.replies.size() == 1, "a formatted command reads as ",
             describe(command));
  const reply& array = command.replies.front();
  FUZZ_CHECK(array.type == reply::kind::array && array.elements.size() == args.size(),
             "a command of ", args.size(), " arguments reads as ", array.elements.size());
  for (std::size_t i = 0; i < args.size(); ++i) {
    FUZZ_CHECK(array.elements[i].type == reply::kind::string && array.elements[i].str == args[i],
               "argument ", i, " does not read back");
  }
  return 0;
}
