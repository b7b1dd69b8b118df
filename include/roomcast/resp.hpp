#pragma once
/** @file
 * The plain half of the Redis client: RESP2 replies as owning values, Redis URLs, command
 * formatting and an incremental reply parser. No Asio and no sockets here: the unit tests and the
 * fuzz target (tools/fuzz/fuzz_resp.cpp) drive it with bytes. roomcast/redis.hpp puts it on a
 * socket.
 *
 * Formatting and parsing are hiredis's (`redisFormatCommandArgv`, the `redisReader` family);
 * hiredis never touches a socket here. Its types stay out of this header.
 */
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

// hiredis's parser state (hiredis/read.h); only the .cpp sees its members.
struct redisReader;

namespace roomcast::redis {

/** One RESP2 reply, owning its bytes: a copy of what hiredis parsed, made as it was parsed. */
struct reply {
  enum class kind { string, status, error, integer, nil, array };

  kind type = kind::nil;
  /** The bytes of a bulk string (`string`), a status line (`status`: "OK") or an error line
   * (`error`: "ERR unknown command ..."); empty for the other kinds. */
  std::string str;
  /** The value of an `integer` reply; 0 for the other kinds. */
  long long integer = 0;
  /** The elements of an `array` reply, in order; empty for the other kinds. */
  std::vector<reply> elements;

  bool is_error() const noexcept { return type == kind::error; }
  bool operator==(const reply&) const = default;
};

/** Where a Redis server listens: TCP (`host`, `port`) or, when `unix_path` is not empty, a unix
 * domain socket. `db` is SELECTed on connect when it is not 0. */
struct endpoint {
  std::string host;
  std::uint16_t port = 6379;
  std::string unix_path;
  int db = 0;

  bool operator==(const endpoint&) const = default;
};

/**
 * Reads a Redis URL:
 * - `redis://HOST[:PORT][/DB]`: HOST a name, an IPv4 address or `[IPv6]`; PORT 1..65535 (6379
 *   when absent); DB a decimal number 0..2147483647 (0 when absent; `redis://h:1/` is db 0 too);
 * - `unix:///ABSOLUTE/PATH[?db=DB]`.
 *
 * Anything else is refused with a one-line English reason: other schemes (`rediss://`: this
 * client has no TLS), credentials (`user:pass@`: no AUTH), other query parameters, an empty host,
 * a port or db that is not a number in range, a relative or empty unix path.
 */
std::variant<endpoint, std::string> parse_url(std::string_view url);

/** The RESP bytes of one command: an array of bulk strings, `*N\r\n$len\r\narg\r\n...`
 * (hiredis's redisFormatCommandArgv). Arguments are binary-safe. Throws std::bad_alloc only. */
std::string format_command(std::span<const std::string_view> args);
std::string format_command(std::span<const std::string> args);

/**
 * A command as a vector of arguments, built in a plain function call: `command("SET", key, v)`.
 *
 * Pass it straight to `connection::execute` (`co_await c.execute(command("GET", key))`): g++ 12
 * destroys twice an aggregate temporary built inside a co_await's full-expression, and a braced
 * list of strings (`execute({"GET", key})`) is one (docs/architecture.md, "Toolchain traps"); a
 * value returned by a function is not.
 */
template <class... Args>
std::vector<std::string> command(const Args&... args) {
  std::vector<std::string> out;
  out.reserve(sizeof...(args));
  (out.emplace_back(args), ...);
  return out;
}

/**
 * An incremental RESP2 reply parser over hiredis's redisReader: feed bytes as they arrive, in any
 * split, and take complete replies in the order they were sent.
 *
 *     parser.feed(bytes);
 *     while (auto r = parser.next()) handle(std::move(*r));
 *     if (parser.failed()) give_up(parser.error());
 *
 * A protocol error (an unknown type byte, a bad length or integer, arrays nested more than 8
 * deep, hiredis 0.14's limit; an incomplete reply larger than `max_buffered` bytes) is final:
 * next() returns nullopt from then on, error() says what was wrong, and feed() ignores further
 * bytes. Array replies are built element by element as their elements arrive, so a header that
 * announces 2^31 elements costs nothing until they come. Not thread-safe (one owner).
 */
class reply_parser {
 public:
  /** 512 MiB: Redis's own limit for one bulk string (proto-max-bulk-len). */
  static constexpr std::size_t default_max_buffered = std::size_t{512} << 20;

  explicit reply_parser(std::size_t max_buffered = default_max_buffered);
  ~reply_parser();
  reply_parser(reply_parser&& other) noexcept;
  reply_parser& operator=(reply_parser&& other) noexcept;
  reply_parser(const reply_parser&) = delete;
  reply_parser& operator=(const reply_parser&) = delete;

  /** Appends bytes received from the server. */
  void feed(std::string_view bytes);
  /** The next complete reply, or nullopt when more bytes are needed or the parser has failed. */
  std::optional<reply> next();
  bool failed() const noexcept { return !error_.empty(); }
  /** Why the parser failed (hiredis's text, or ours); empty while it has not. */
  const std::string& error() const noexcept { return error_; }
  /** Bytes fed and not yet consumed by a complete reply (hiredis's buffer). */
  std::size_t buffered() const noexcept;

 private:
  struct free_reader {
    void operator()(redisReader* reader) const noexcept;
  };
  void fail(std::string why);

  std::unique_ptr<redisReader, free_reader> reader_;
  std::size_t max_buffered_;
  std::string error_;
};

}  // namespace roomcast::redis
