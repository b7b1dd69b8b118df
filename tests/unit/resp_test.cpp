// The plain half of the Redis client: URLs, command bytes and the reply parser, fed bytes in
// every split. No sockets.
#include "roomcast/resp.hpp"

#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <catch2/catch.hpp>

using namespace roomcast::redis;
using namespace std::string_literals;

namespace {

endpoint parsed(std::string_view url) {
  auto result = parse_url(url);
  INFO(url);
  if (const auto* error = std::get_if<std::string>(&result)) FAIL("refused: " << *error);
  return std::get<endpoint>(result);
}

std::string refusal(std::string_view url) {
  auto result = parse_url(url);
  INFO(url);
  REQUIRE(std::holds_alternative<std::string>(result));
  return std::get<std::string>(result);
}

reply text(std::string s, reply::kind type = reply::kind::string) {
  reply r;
  r.type = type;
  r.str = std::move(s);
  return r;
}

reply number(long long n) {
  reply r;
  r.type = reply::kind::integer;
  r.integer = n;
  return r;
}

reply array(std::vector<reply> elements) {
  reply r;
  r.type = reply::kind::array;
  r.elements = std::move(elements);
  return r;
}

// Every reply the parser gives for `bytes` fed in pieces of `piece` bytes (0: all at once).
std::vector<reply> parse_all(std::string_view bytes, std::size_t piece = 0) {
  reply_parser parser;
  std::vector<reply> out;
  if (piece == 0) piece = bytes.size() + 1;
  for (std::size_t at = 0; at < bytes.size(); at += piece) {
    parser.feed(bytes.substr(at, piece));
    while (auto r = parser.next())
      out.push_back(std::move(*r));
  }
  CHECK_FALSE(parser.failed());
  return out;
}

}  // namespace

TEST_CASE("redis URLs name a TCP host or a unix socket") {
  SECTION("host only: the default port and db 0") {
    const auto e = parsed("redis://localhost");
    CHECK(e.host == "localhost");
    CHECK(e.port == 6379);
    CHECK(e.unix_path.empty());
    CHECK(e.db == 0);
  }
  SECTION("host, port and db") {
    const auto e = parsed("redis://10.0.0.7:6380/3");
    CHECK(e.host == "10.0.0.7");
    CHECK(e.port == 6380);
    CHECK(e.db == 3);
  }
  SECTION("a trailing slash is db 0") {
    CHECK(parsed("redis://redis.internal:1/").db == 0);
    CHECK(parsed("redis://redis.internal:1/").port == 1);
  }
  SECTION("an IPv6 address in brackets") {
    const auto e = parsed("redis://[::1]:7000/15");
    CHECK(e.host == "::1");
    CHECK(e.port == 7000);
    CHECK(e.db == 15);
    CHECK(parsed("redis://[fe80::1]").port == 6379);
  }
  SECTION("a unix socket, with and without a db") {
    const auto e = parsed("unix:///run/redis/redis.sock");
    CHECK(e.unix_path == "/run/redis/redis.sock");
    CHECK(e.host.empty());
    CHECK(e.db == 0);
    CHECK(parsed("unix:///tmp/r.sock?db=2").db == 2);
    CHECK(parsed("unix:///tmp/r.sock?db=2").unix_path == "/tmp/r.sock");
  }
  SECTION("the largest db and port") {
    CHECK(parsed("redis://h:65535/2147483647").db == 2147483647);
    CHECK(parsed("redis://h:65535/2147483647").port == 65535);
  }
}

TEST_CASE("bad redis URLs are refused with a reason") {
  CHECK_THAT(refusal("http://localhost"), Catch::Contains("not a Redis URL"));
  CHECK_THAT(refusal(""), Catch::Contains("not a Redis URL"));
  CHECK_THAT(refusal("localhost:6379"), Catch::Contains("not a Redis URL"));
  CHECK_THAT(refusal("rediss://localhost"), Catch::Contains("TLS"));
  CHECK_THAT(refusal("redis://"), Catch::Contains("host is empty"));
  CHECK_THAT(refusal("redis://:6379"), Catch::Contains("host is empty"));
  CHECK_THAT(refusal("redis://user:secret@localhost"), Catch::Contains("credentials"));
  CHECK_THAT(refusal("redis://localhost:0"), Catch::Contains("port"));
  CHECK_THAT(refusal("redis://localhost:65536"), Catch::Contains("port"));
  CHECK_THAT(refusal("redis://localhost:"), Catch::Contains("port"));
  CHECK_THAT(refusal("redis://localhost:63a9"), Catch::Contains("port"));
  CHECK_THAT(refusal("redis://localhost:-1"), Catch::Contains("port"));
  CHECK_THAT(refusal("redis://localhost/x"), Catch::Contains("db"));
  CHECK_THAT(refusal("redis://localhost/-1"), Catch::Contains("db"));
  CHECK_THAT(refusal("redis://localhost/2147483648"), Catch::Contains("db"));
  CHECK_THAT(refusal("redis://localhost/1/2"), Catch::Contains("db"));
  CHECK_THAT(refusal("redis://localhost/0?x=1"), Catch::Contains("no query"));
  CHECK_THAT(refusal("redis://local host"), Catch::Contains("host"));
  CHECK_THAT(refusal("redis://::1:6379"), Catch::Contains("brackets"));
  CHECK_THAT(refusal("redis://[::1"), Catch::Contains("]"));
  CHECK_THAT(refusal("redis://[]:1"), Catch::Contains("IPv6"));
  CHECK_THAT(refusal("redis://[::1]x"), Catch::Contains("after ']'"));
  CHECK_THAT(refusal("unix://relative/path"), Catch::Contains("absolute"));
  CHECK_THAT(refusal("unix://"), Catch::Contains("absolute"));
  CHECK_THAT(refusal("unix:///"), Catch::Contains("empty"));
  CHECK_THAT(refusal("unix:///tmp/r.sock?db=x"), Catch::Contains("db"));
  CHECK_THAT(refusal("unix:///tmp/r.sock?timeout=1"), Catch::Contains("db=N"));
  CHECK_THAT(refusal("unix:///" + std::string(107, 'a')), Catch::Contains("longer"));
}

TEST_CASE("a command is formatted as a RESP array of bulk strings") {
  const std::vector<std::string_view> set = {"SET", "key", "value"};
  CHECK(format_command(set) == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");

  // Binary-safe: CR, LF, NUL and empty arguments go through as they are.
  const std::string binary = "a\r\n\0b"s;
  const std::vector<std::string_view> odd = {"PUBLISH", "", binary};
  CHECK(format_command(odd) == "*3\r\n$7\r\nPUBLISH\r\n$0\r\n\r\n$5\r\na\r\n\0b\r\n"s);

  const auto owned = command("INCR", std::string("counter"));
  CHECK(format_command(owned) == "*2\r\n$4\r\nINCR\r\n$7\r\ncounter\r\n");
}

TEST_CASE("the reply parser reads every RESP2 kind") {
  SECTION("status, error, integer, bulk and nil") {
    const auto got = parse_all("+OK\r\n-ERR wrong\r\n:-42\r\n$5\r\nhello\r\n$-1\r\n$0\r\n\r\n");
    const std::vector<reply> expected = {text("OK", reply::kind::status),
                                         text("ERR wrong", reply::kind::error),
                                         number(-42),
                                         text("hello"),
                                         reply{},
                                         text("")};
    CHECK(got == expected);
    REQUIRE(got.size() == 6);
    CHECK(got[1].is_error());
    CHECK_FALSE(got[0].is_error());
  }
  SECTION("a bulk string is binary-safe") {
    const auto got = parse_all("$6\r\na\r\n\0bc\r\n"s);
    REQUIRE(got.size() == 1);
    CHECK(got[0] == text("a\r\n\0bc"s));
  }
  SECTION("nested arrays, empty and nil arrays") {
    const auto got = parse_all("*3\r\n$7\r\nmessage\r\n*2\r\n:1\r\n*0\r\n$1\r\nx\r\n*-1\r\n*0\r\n");
    const std::vector<reply> expected = {
        array({text("message"), array({number(1), array({})}), text("x")}), reply{}, array({})};
    CHECK(got == expected);
  }
  SECTION("arrays nested eight deep (hiredis 0.14's limit) are read") {
    std::string bytes;
    for (int i = 0; i < 8; ++i)
      bytes += "*1\r\n";
    bytes += ":8\r\n";
    const auto got = parse_all(bytes);
    REQUIRE(got.size() == 1);
    const reply* r = &got[0];
    for (int i = 0; i < 8; ++i) {
      REQUIRE(r->type == reply::kind::array);
      REQUIRE(r->elements.size() == 1);
      r = &r->elements[0];
    }
    CHECK(*r == number(8));
  }
}

TEST_CASE("the reply parser gives the same replies whatever the split") {
  const std::string pipelined =
      "+OK\r\n:1\r\n:2\r\n$11\r\nhello world\r\n*2\r\n$3\r\nfoo\r\n*1\r\n-ERR x\r\n$-1\r\n";
  const auto whole = parse_all(pipelined);
  REQUIRE(whole.size() == 6);
  for (std::size_t piece = 1; piece <= pipelined.size(); ++piece) {
    INFO("pieces of " << piece);
    CHECK(parse_all(pipelined, piece) == whole);
  }
}

TEST_CASE("an incomplete reply waits for more bytes") {
  reply_parser parser;
  parser.feed("$11\r\nhello");
  CHECK_FALSE(parser.next().has_value());
  CHECK_FALSE(parser.failed());
  CHECK(parser.buffered() > 0);
  parser.feed(" worl");
  CHECK_FALSE(parser.next().has_value());
  parser.feed("d\r\n*2\r\n:1\r\n");
  const auto first = parser.next();
  REQUIRE(first.has_value());
  CHECK(*first == text("hello world"));
  CHECK_FALSE(parser.next().has_value());  // the array is half there
  parser.feed(":2\r\n");
  const auto second = parser.next();
  REQUIRE(second.has_value());
  CHECK(*second == array({number(1), number(2)}));
  CHECK(parser.buffered() == 0);
}

TEST_CASE("a protocol error is final") {
  const auto fails = [](std::string_view bytes) {
    reply_parser parser;
    parser.feed(bytes);
    while (parser.next()) {
    }
    INFO(bytes);
    CHECK(parser.failed());
    CHECK_FALSE(parser.error().empty());
    // Later bytes, even good ones, change nothing.
    parser.feed("+OK\r\n");
    CHECK_FALSE(parser.next().has_value());
    CHECK(parser.buffered() == 0);
    return parser.error();
  };
  CHECK_THAT(fails("?what\r\n"), Catch::Contains("Protocol error"));
  CHECK_THAT(fails("+OK\r\nGET x\r\n"), Catch::Contains("Protocol error"));
  CHECK_THAT(fails(":12x\r\n"), Catch::Contains("integer"));
  CHECK_THAT(fails("$abc\r\n"), Catch::Contains("length"));
  CHECK_THAT(fails("$-2\r\n"), Catch::Contains("length"));
  CHECK_THAT(fails("*-2\r\n"), Catch::Contains("length"));
  CHECK_THAT(fails("*4294967297\r\n"), Catch::Contains("length"));
  // RESP3 types (hiredis 0.14 speaks RESP2 only; the client never sends HELLO 3).
  CHECK_THAT(fails("%1\r\n+a\r\n+b\r\n"), Catch::Contains("Protocol error"));
  CHECK_THAT(fails(">3\r\n"), Catch::Contains("Protocol error"));
  std::string deep;
  for (int i = 0; i < 9; ++i)
    deep += "*1\r\n";
  CHECK_THAT(fails(deep + ":1\r\n"), Catch::Contains("nested"));
}

TEST_CASE("a huge array header costs nothing until its elements come") {
  reply_parser parser;
  parser.feed("*2147483647\r\n:1\r\n:2\r\n");
  CHECK_FALSE(parser.next().has_value());
  CHECK_FALSE(parser.failed());
}

TEST_CASE("an incomplete reply larger than the bound fails the parser") {
  reply_parser parser(64);
  parser.feed("$1000\r\n" + std::string(100, 'x'));
  CHECK_FALSE(parser.next().has_value());
  CHECK(parser.failed());
  CHECK_THAT(parser.error(), Catch::Contains("larger than 64"));

  // Complete replies of any size pass: the bound is on what waits.
  reply_parser roomy(64);
  roomy.feed("$100\r\n" + std::string(100, 'y') + "\r\n");
  const auto big = roomy.next();
  REQUIRE(big.has_value());
  CHECK(big->str.size() == 100);
}
