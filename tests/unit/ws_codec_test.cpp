#include "roomcast/ws_codec.hpp"

#include <array>
#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

namespace ws = roomcast::ws;
using kind = ws::frame_reader::result::kind;
using namespace std::string_literals;

namespace {

// How a test client frame is written: by default as a browser writes it (masked, FIN, no RSV,
// the shortest length form), or broken in one chosen way.
struct frame_options {
  bool fin = true;
  bool masked = true;
  int rsv = 0;                  // OR-ed into the first byte (0x40, 0x20, 0x10)
  int length_form = 0;          // 0: shortest; 126 or 127: that form whatever the size
  std::uint64_t announced = 0;  // when not 0: the length written in the header instead
  std::array<std::uint8_t, 4> key = {0x37, 0xFA, 0x21, 0x3D};
};

std::string client_frame(int op, std::string_view payload, frame_options options = {}) {
  std::string frame;
  frame += static_cast<char>((options.fin ? 0x80 : 0) | options.rsv | op);
  const std::uint64_t length = options.announced != 0 ? options.announced : payload.size();
  const int form = options.length_form != 0 ? options.length_form
                   : length < 126           ? 0
                   : length <= 0xFFFF       ? 126
                                            : 127;
  const char mask = options.masked ? '\x80' : '\0';
  if (form == 0) {
    frame += static_cast<char>(mask | static_cast<char>(length));
  } else {
    frame += static_cast<char>(mask | static_cast<char>(form));
    for (int shift = form == 126 ? 8 : 56; shift >= 0; shift -= 8)
      frame += static_cast<char>((length >> shift) & 0xFF);
  }
  if (options.masked) {
    for (const auto byte : options.key)
      frame += static_cast<char>(byte);
  }
  for (std::size_t i = 0; i < payload.size(); ++i) {
    const auto key = options.masked ? options.key[i % 4] : 0;
    frame += static_cast<char>(static_cast<std::uint8_t>(payload[i]) ^ key);
  }
  return frame;
}

// A server frame turned into the client frame with the same content: masked with `key`.
std::string masked(std::string_view server_frame, std::array<std::uint8_t, 4> key) {
  REQUIRE(server_frame.size() >= 2);
  REQUIRE((static_cast<std::uint8_t>(server_frame[1]) & 0x80) == 0);
  const std::size_t short_length = static_cast<std::uint8_t>(server_frame[1]);
  const std::size_t header = short_length == 127 ? 10 : short_length == 126 ? 4 : 2;
  std::string frame(server_frame.substr(0, header));
  frame[1] = static_cast<char>(frame[1] | '\x80');
  for (const auto byte : key)
    frame += static_cast<char>(byte);
  for (std::size_t i = header; i < server_frame.size(); ++i)
    frame += static_cast<char>(static_cast<std::uint8_t>(server_frame[i]) ^ key[(i - header) % 4]);
  return frame;
}

std::string close_body(int code, std::string_view reason = {}) {
  return std::string{static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)}
         + std::string(reason);
}

// Opcodes as a test client writes them (ws::opcode has only the valid ones).
namespace op {
constexpr int continuation = 0x0, text = 0x1, binary = 0x2, close = 0x8, ping = 0x9, pong = 0xA;
}

// What a reader reported, kept after its payload's storage is gone.
struct report {
  kind what = kind::need_more;
  std::string payload;
  std::uint16_t code = 0;
  bool operator==(const report&) const = default;
};

// Feeds `stream` as a session's read loop would: append what arrived, then take reports until
// need_more, dropping the consumed bytes. The stream arrives in pieces ending at `cuts`.
std::vector<report> feed(ws::frame_reader& reader, std::string_view stream,
                         std::vector<std::size_t> cuts) {
  cuts.push_back(stream.size());
  std::string buffer;
  std::vector<report> reports;
  std::size_t from = 0;
  for (const std::size_t cut : cuts) {
    buffer.append(stream.substr(from, cut - from));
    from = cut;
    for (;;) {
      const auto r = reader.next({buffer.data(), buffer.size()});
      REQUIRE(r.consumed <= buffer.size());
      if (r.what != kind::need_more) reports.push_back({r.what, std::string(r.payload), r.code});
      buffer.erase(0, r.consumed);
      if (r.what == kind::fail) return reports;
      if (r.what == kind::need_more) break;
    }
  }
  return reports;
}

constexpr std::size_t roomy = std::size_t{1} << 20;

std::vector<report> read_whole(std::string_view stream, std::size_t max_message = roomy) {
  ws::frame_reader reader(max_message);
  return feed(reader, stream, {});
}

std::vector<report> read_bytewise(std::string_view stream, std::size_t max_message = roomy) {
  ws::frame_reader reader(max_message);
  std::vector<std::size_t> cuts;
  for (std::size_t i = 1; i < stream.size(); ++i)
    cuts.push_back(i);
  return feed(reader, stream, std::move(cuts));
}

// The reports for `stream` fed whole, byte by byte, and split in two at every point.
void check_reports(std::string_view stream, const std::vector<report>& expected,
                   std::size_t max_message = roomy) {
  CHECK(read_whole(stream, max_message) == expected);
  CHECK(read_bytewise(stream, max_message) == expected);
  // Every split point of a short stream; a long one's every 97th, which is plenty for its
  // headers and keeps this linear.
  const std::size_t step = stream.size() <= 4096 ? 1 : 97;
  for (std::size_t cut = 1; cut < stream.size(); cut += step) {
    INFO("split at " << cut);
    ws::frame_reader reader(max_message);
    REQUIRE(feed(reader, stream, {cut}) == expected);
  }
}

// The stream ends in a failure with `code`, however it is split.
void check_fails(std::string_view stream, std::uint16_t code, std::size_t max_message = roomy) {
  for (const auto& reports :
       {read_whole(stream, max_message), read_bytewise(stream, max_message)}) {
    REQUIRE_FALSE(reports.empty());
    CHECK(reports.back().what == kind::fail);
    CHECK(reports.back().code == code);
  }
}

bool valid_utf8(std::string_view bytes) {
  ws::utf8_validator check;
  return check.feed(bytes) && check.complete();
}

bool valid_utf8_bytewise(std::string_view bytes) {
  ws::utf8_validator check;
  for (const char c : bytes) {
    if (!check.feed({&c, 1})) return false;
  }
  return check.complete();
}

}  // namespace

namespace Catch {
template <>
struct StringMaker<report> {
  static std::string convert(const report& r) {
    static constexpr const char* names[] = {"need_more", "text",  "binary", "ping",
                                            "pong",      "close", "fail",   "fragment"};
    std::ostringstream out;
    out << names[static_cast<int>(r.what)] << " code " << r.code << " \""
        << (r.payload.size() > 40 ? r.payload.substr(0, 40) + "..." : r.payload) << "\" ("
        << r.payload.size() << " bytes)";
    return out.str();
  }
};
}  // namespace Catch

TEST_CASE("server frame headers use the shortest length form") {
  // The header of a frame of `size` payload bytes.
  const auto header = [](ws::opcode op, std::size_t size) {
    const std::string payload(size, 'x');
    const auto frame = ws::encode_frame(op, payload);
    REQUIRE(frame.size() >= size);
    CHECK(frame.substr(frame.size() - size) == payload);
    return frame.substr(0, frame.size() - size);
  };
  CHECK(header(ws::opcode::text, 0) == "\x81\x00"s);
  CHECK(header(ws::opcode::text, 125) == "\x81\x7D"s);
  CHECK(header(ws::opcode::text, 126) == "\x81\x7E\x00\x7E"s);
  CHECK(header(ws::opcode::text, 65535) == "\x81\x7E\xFF\xFF"s);
  CHECK(header(ws::opcode::text, 65536) == "\x81\x7F\x00\x00\x00\x00\x00\x01\x00\x00"s);
  CHECK(header(ws::opcode::text, 70'000) == "\x81\x7F\x00\x00\x00\x00\x00\x01\x11\x70"s);
  CHECK(header(ws::opcode::pong, 3) == "\x8A\x03"s);
}

TEST_CASE("a server frame is its header and its payload") {
  const std::string payload(300, 'x');
  const auto frame = ws::encode_frame(ws::opcode::binary, payload);
  CHECK(frame.size() == 4 + 300);
  CHECK(frame.substr(0, 4) == "\x82\x7E\x01\x2C"s);
  CHECK(frame.substr(4) == payload);
  CHECK(ws::encode_frame(ws::opcode::ping, "") == "\x89\x00"s);
}

TEST_CASE("a close frame carries its code and a reason cut to 125 bytes at a character boundary") {
  CHECK(ws::encode_close(1000, "bye") == "\x88\x05\x03\xE8" "bye"s);
  CHECK(ws::encode_close(ws::close_code::no_status, "ignored") == "\x88\x00"s);

  const auto reason_of = [](const std::string& frame) {
    REQUIRE(frame.size() >= 4);
    REQUIRE(static_cast<std::size_t>(frame[1]) == frame.size() - 2);
    return frame.substr(4);
  };
  CHECK(reason_of(ws::encode_close(1008, std::string(200, 'r'))) == std::string(123, 'r'));
  std::string accents;  // 2-byte characters: 123 bytes would split the 62nd
  for (int i = 0; i < 100; ++i)
    accents += "\xC3\xA9";
  CHECK(reason_of(ws::encode_close(1008, accents)) == accents.substr(0, 122));
  std::string euros;  // 3-byte characters: 123 bytes hold exactly 41
  for (int i = 0; i < 50; ++i)
    euros += "\xE2\x82\xAC";
  CHECK(reason_of(ws::encode_close(1008, euros)) == euros.substr(0, 123));
  std::string faces;  // 4-byte characters: 120 bytes
  for (int i = 0; i < 40; ++i)
    faces += "\xF0\x9F\x98\x80";
  const auto cut = reason_of(ws::encode_close(1001, faces));
  CHECK(cut == faces.substr(0, 120));
  CHECK(valid_utf8(cut));

  // What the server sends, the reader accepts.
  const auto back = read_whole(masked(ws::encode_close(1001, faces), {1, 2, 3, 4}));
  CHECK(back == std::vector<report>{{kind::close, cut, 1001}});
}

TEST_CASE("frames round-trip through encode_frame and a masking client") {
  const std::array<std::uint8_t, 4> keys[] = {
      {0, 0, 0, 0}, {0xFF, 0x00, 0xA5, 0x5A}, {0x12, 0x34, 0x56, 0x78}};
  std::vector<std::size_t> sizes = {125, 126, 127, 65535, 65536, 70001};
  for (std::size_t size = 0; size <= 20; ++size)
    sizes.push_back(size);
  for (const auto& key : keys) {
    for (const std::size_t size : sizes) {
      INFO("size " << size);
      std::string payload;
      for (std::size_t i = 0; payload.size() < size; ++i)
        payload += (i % 7 == 6 && payload.size() + 2 <= size) ? "\xC3\xA9" : "a";
      REQUIRE(valid_utf8(payload));
      const auto as_text = masked(ws::encode_frame(ws::opcode::text, payload), key);
      CHECK(read_whole(as_text) == std::vector<report>{{kind::text, payload}});
      const auto as_binary = masked(ws::encode_frame(ws::opcode::binary, payload), key);
      CHECK(read_whole(as_binary) == std::vector<report>{{kind::binary, payload}});
      if (size <= ws::max_control_payload) {
        const auto as_ping = masked(ws::encode_frame(ws::opcode::ping, payload), key);
        CHECK(read_whole(as_ping) == std::vector<report>{{kind::ping, payload}});
        const auto as_pong = masked(ws::encode_frame(ws::opcode::pong, payload), key);
        CHECK(read_whole(as_pong) == std::vector<report>{{kind::pong, payload}});
      }
    }
  }
}

TEST_CASE("an unfragmented text frame is read in place, without buffering") {
  ws::frame_reader reader(1024);
  std::string buffer = client_frame(op::text, R"({"type":"message","text":"hi"})");
  const auto r = reader.next({buffer.data(), buffer.size()});
  REQUIRE(r.what == kind::text);
  CHECK(r.consumed == buffer.size());
  CHECK(r.payload == R"({"type":"message","text":"hi"})");
  CHECK(r.payload.data() == buffer.data() + 6);  // unmasked where it lay
  CHECK(reader.capacity() == 0);
  CHECK(reader.buffered() == 0);
}

TEST_CASE("reports do not depend on how the input is split") {
  std::string stream;
  stream += client_frame(op::text, R"({"type":"join","roomId":"1234","name":"zoë"})");
  stream += client_frame(op::text, "{\"text\":", {.fin = false});
  stream += client_frame(op::ping, "are you there", {.key = {1, 2, 3, 4}});
  stream += client_frame(op::continuation, "\"in pie", {.fin = false});
  stream += client_frame(op::pong, "");
  stream += client_frame(op::continuation, "ces\"}");
  stream += client_frame(op::text, std::string(300, 'L'));
  stream += client_frame(op::binary, "\x01\x02", {.fin = false});
  stream += client_frame(op::continuation, "\x03");
  stream += client_frame(op::text, "");
  stream += client_frame(op::close, close_body(1000, "done"));
  const std::vector<report> expected = {
      {kind::text, R"({"type":"join","roomId":"1234","name":"zoë"})"},
      {kind::fragment},
      {kind::ping, "are you there"},
      {kind::fragment},
      {kind::pong, ""},
      {kind::text, R"({"text":"in pieces"})"},
      {kind::text, std::string(300, 'L')},
      {kind::binary, "\x01\x02"},
      {kind::fragment},
      {kind::text, ""},
      {kind::close, "done", 1000},
  };
  check_reports(stream, expected);
}

TEST_CASE("a ping between fragments is reported while the message is kept") {
  ws::frame_reader reader(1024);
  std::string buffer = client_frame(op::text, R"({"type":"message",)", {.fin = false});
  buffer += client_frame(op::ping, "are you there");
  buffer += client_frame(op::continuation, R"("text":"in pieces"})");
  const auto first = reader.next({buffer.data(), buffer.size()});
  REQUIRE(first.what == kind::fragment);
  CHECK(first.payload.empty());
  CHECK(first.consumed == 6 + 18);
  buffer.erase(0, first.consumed);
  const auto pinged = reader.next({buffer.data(), buffer.size()});
  REQUIRE(pinged.what == kind::ping);
  CHECK(pinged.payload == "are you there");
  CHECK(pinged.consumed == 6 + 13);
  CHECK(reader.buffered() == 18);
  buffer.erase(0, pinged.consumed);
  const auto message = reader.next({buffer.data(), buffer.size()});
  REQUIRE(message.what == kind::text);
  CHECK(message.payload == R"({"type":"message","text":"in pieces"})");
  CHECK(message.consumed == buffer.size());

  SECTION("and so is a close") {
    std::string more = client_frame(op::text, "ab", {.fin = false});
    more += client_frame(op::close, close_body(1001));
    ws::frame_reader other(1024);
    const auto fragment = other.next({more.data(), more.size()});
    CHECK(fragment.what == kind::fragment);
    more.erase(0, fragment.consumed);
    const auto closed = other.next({more.data(), more.size()});
    CHECK(closed.what == kind::close);
    CHECK(closed.code == 1001);
    CHECK(other.buffered() == 2);
  }
}

TEST_CASE("each fragment is reported and consumed as it is taken in") {
  ws::frame_reader reader(1024);
  std::string buffer = client_frame(op::text, "ab", {.fin = false});
  const std::string last = client_frame(op::continuation, "cd");
  buffer += last.substr(0, 3);
  const auto r = reader.next({buffer.data(), buffer.size()});
  CHECK(r.what == kind::fragment);
  CHECK(r.consumed == 8);
  CHECK(reader.buffered() == 2);
  buffer.erase(0, r.consumed);
  const auto incomplete = reader.next({buffer.data(), buffer.size()});
  CHECK(incomplete.what == kind::need_more);
  CHECK(incomplete.consumed == 0);
  buffer += last.substr(3);
  const auto done = reader.next({buffer.data(), buffer.size()});
  CHECK(done.what == kind::text);
  CHECK(done.payload == "abcd");
}

TEST_CASE("a frame is need_more until its last byte is in, whatever its length form") {
  for (const std::size_t size : {std::size_t{5}, std::size_t{300}, std::size_t{70'000}}) {
    const auto frame = client_frame(op::text, std::string(size, 'm'));
    INFO(size << "-byte payload");
    // Cuts inside each part of the header (the 16- and 64-bit lengths, the mask key), then all
    // but the last byte.
    const std::size_t cuts[] = {0, 1, 2, 3, 5, 9, 13, frame.size() - 1};
    for (const std::size_t cut : cuts) {
      if (cut >= frame.size()) continue;
      std::string bytes = frame.substr(0, cut);
      ws::frame_reader reader(100'000);
      const auto r = reader.next({bytes.data(), bytes.size()});
      CHECK(r.what == kind::need_more);
      CHECK(r.consumed == 0);
    }
    std::string bytes = frame;
    ws::frame_reader reader(100'000);
    const auto r = reader.next({bytes.data(), bytes.size()});
    CHECK(r.what == kind::text);
    CHECK(r.consumed == frame.size());
    CHECK(r.payload == std::string(size, 'm'));
  }
}

TEST_CASE("UTF-8: what the validator accepts and refuses") {
  const char* const valid[] = {
      "",
      "plain ASCII, longer than one word of eight bytes",
      "\xC2\x80",          // U+0080, the first 2-byte character
      "\xDF\xBF",          // U+07FF
      "\xE0\xA0\x80",      // U+0800, the first 3-byte character
      "\xED\x9F\xBF",      // U+D7FF, just below the surrogates
      "\xEE\x80\x80",      // U+E000, just above them
      "\xEF\xBF\xBF",      // U+FFFF
      "\xF0\x90\x80\x80",  // U+10000, the first 4-byte character
      "\xF4\x8F\xBF\xBF",  // U+10FFFF, the last code point
      "zo\xC3\xAB \xE5\xB0\x8F\xE6\x98\x8E \xF0\x9F\x98\x80!",
  };
  for (const char* bytes : valid) {
    INFO(bytes);
    CHECK(valid_utf8(bytes));
    CHECK(valid_utf8_bytewise(bytes));
  }
  const char* const invalid[] = {
      "\x80",              // a continuation byte with no lead
      "a\xBF",             //
      "\xC0\x80",          // overlong NUL
      "\xC1\xBF",          // overlong U+007F
      "\xE0\x80\x80",      // overlong 3-byte NUL
      "\xE0\x9F\xBF",      // overlong U+07FF
      "\xED\xA0\x80",      // U+D800, a surrogate
      "\xED\xBF\xBF",      // U+DFFF
      "\xF0\x80\x80\x80",  // overlong 4-byte NUL
      "\xF0\x8F\xBF\xBF",  // overlong U+FFFF
      "\xF4\x90\x80\x80",  // U+110000
      "\xF5\x80\x80\x80",  // beyond any code point
      "\xFF",              //
      "\xC3\x28",          // a lead byte followed by ASCII
      "\xE2\x82\x28",      //
      "\xF0\x9F\x98",      // incomplete at the end
      "\xE2",              //
  };
  for (const char* bytes : invalid) {
    INFO(bytes);
    CHECK_FALSE(valid_utf8(bytes));
    CHECK_FALSE(valid_utf8_bytewise(bytes));
  }

  SECTION("a sequence may be split between feeds") {
    ws::utf8_validator check;
    CHECK(check.feed("\xF0\x9F"));
    CHECK_FALSE(check.complete());
    CHECK(check.feed("\x98"));
    CHECK(check.feed("\x80 and more"));
    CHECK(check.complete());
  }
  SECTION("a failure stays until reset") {
    ws::utf8_validator check;
    CHECK_FALSE(check.feed("\xFF"));
    CHECK_FALSE(check.feed("a"));
    CHECK_FALSE(check.complete());
    check.reset();
    CHECK(check.feed("a"));
    CHECK(check.complete());
  }
  SECTION("the word-at-a-time ASCII path sees a bad byte at any position") {
    for (std::size_t at = 0; at < 40; ++at) {
      std::string bytes(40, 'a');
      bytes[at] = '\xFF';
      INFO("at " << at);
      CHECK_FALSE(valid_utf8(bytes));
      bytes[at] = '\xC3';
      if (at + 1 < bytes.size()) {
        bytes[at + 1] = '\xA9';
        CHECK(valid_utf8(bytes));
      } else {
        CHECK_FALSE(valid_utf8(bytes));
      }
    }
  }
}

TEST_CASE("UTF-8 is checked across fragments, and as each fragment arrives") {
  SECTION("a character split between fragments is fine") {
    const std::string euro = "\xE2\x82\xAC", face = "\xF0\x9F\x98\x80";
    for (std::size_t split = 1; split < 4; ++split) {
      std::string stream = client_frame(op::text, "price " + face.substr(0, split), {.fin = false});
      stream +=
          client_frame(op::continuation, face.substr(split) + euro.substr(0, 1), {.fin = false});
      stream += client_frame(op::continuation, euro.substr(1));
      check_reports(stream,
                    {{kind::fragment}, {kind::fragment}, {kind::text, "price " + face + euro}});
    }
  }
  SECTION("a bad byte in a fragment fails before the message ends") {
    std::string stream = client_frame(op::text, "{\"text\":\"\xC3", {.fin = false});
    stream += client_frame(op::continuation, "\x28", {.fin = false});  // "(" cannot follow C3
    check_fails(stream, 1007);
  }
  SECTION("a surrogate split between fragments") {
    std::string stream = client_frame(op::text, "\xED", {.fin = false});
    stream += client_frame(op::continuation, "\xA0\x80");
    check_fails(stream, 1007);
  }
  SECTION("an overlong form split between fragments") {
    std::string stream = client_frame(op::text, "\xE0\x80", {.fin = false});
    check_fails(stream, 1007);
  }
  SECTION("a message that ends inside a character") {
    std::string stream = client_frame(op::text, "ok \xE2\x82", {.fin = false});
    stream += client_frame(op::continuation, "");
    check_fails(stream, 1007);
    check_fails(client_frame(op::text, "ok \xE2\x82"), 1007);
  }
  SECTION("what the bad-input integration test sends") {
    check_fails(client_frame(op::text, "{\"text\":\"\xC3\x28\"}"), 1007);
  }
}

// parse_command, the JSON parser and the name and text rules rely on this check alone (their
// precondition, protocol.hpp): a chat frame that is not UTF-8 never reaches them.
TEST_CASE("a chat or admission frame that is not UTF-8 is never reported as text") {
  const char* const bad[] = {"\xFF", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82"};
  for (const char* bytes : bad) {
    INFO(bytes);
    const std::string chat = std::string("{\"text\":\"hi ") + bytes + "\"}";
    const std::string join =
        std::string(R"({"type":"join","roomId":1234,"name":")") + bytes + "\"}";
    check_fails(client_frame(op::text, chat), 1007);
    check_fails(client_frame(op::text, join), 1007);
    // Split in two fragments right after the bad bytes begin: still refused, before the end.
    std::string fragmented = client_frame(op::text, chat.substr(0, 13), {.fin = false});
    fragmented += client_frame(op::continuation, chat.substr(13));
    check_fails(fragmented, 1007);
  }
  // JSON escapes are ASCII on the wire: the codec passes them, and the JSON parser decodes them
  // (a lone surrogate escape is refused there, see protocol_test.cpp).
  check_reports(client_frame(op::text, R"({"text":"\ud800"})"),
                {{kind::text, R"({"text":"\ud800"})"}});
}

TEST_CASE("protocol violations fail with 1002") {
  SECTION("reserved bits (no extension was negotiated)") {
    for (const int rsv : {0x40, 0x20, 0x10}) {
      check_fails(client_frame(op::text, "{}", {.rsv = rsv}), 1002);
      check_fails(client_frame(op::ping, "", {.rsv = rsv}), 1002);
    }
  }
  SECTION("reserved opcodes") {
    for (const int reserved : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
      INFO("opcode " << reserved);
      check_fails(client_frame(reserved, "x"), 1002);
    }
  }
  SECTION("an unmasked frame") {
    check_fails(client_frame(op::text, "{}", {.masked = false}), 1002);
    check_fails(client_frame(op::close, close_body(1000), {.masked = false}), 1002);
  }
  SECTION("a fragmented control frame") {
    for (const int control : {op::ping, op::pong, op::close})
      check_fails(client_frame(control, "", {.fin = false}), 1002);
  }
  SECTION("a control frame over 125 bytes") {
    check_fails(client_frame(op::ping, std::string(126, 'p')), 1002);
    check_fails(client_frame(op::pong, std::string(200, 'p')), 1002);
    check_fails(client_frame(op::close, close_body(1000, std::string(124, 'r'))), 1002);
    check_reports(client_frame(op::ping, std::string(125, 'p')),
                  {{kind::ping, std::string(125, 'p')}});
  }
  SECTION("a continuation with no message in progress") {
    check_fails(client_frame(op::continuation, "x"), 1002);
    std::string stream = client_frame(op::text, "whole");
    stream += client_frame(op::continuation, "more");
    check_fails(stream, 1002);
  }
  SECTION("a new message while a fragmented one is in progress") {
    for (const int first : {op::text, op::binary}) {
      for (const int second : {op::text, op::binary}) {
        std::string stream = client_frame(first, "a", {.fin = false});
        stream += client_frame(second, "b");
        check_fails(stream, 1002);
      }
    }
  }
  SECTION("a 64-bit length with its top bit set") {
    check_fails(client_frame(op::text, "", {.announced = std::uint64_t{1} << 63}), 1002);
    check_fails(client_frame(op::binary, "", {.announced = ~std::uint64_t{0}}), 1002);
  }
  SECTION("a length not in its shortest form") {
    check_fails(client_frame(op::text, "short", {.length_form = 126}), 1002);
    check_fails(client_frame(op::text, std::string(125, 'x'), {.length_form = 126}), 1002);
    check_fails(client_frame(op::text, "short", {.length_form = 127}), 1002);
    check_fails(client_frame(op::text, std::string(65535, 'x'), {.length_form = 127}), 1002);
    check_fails(client_frame(op::ping, "", {.length_form = 126}), 1002);
    // The shortest forms at their edges are fine.
    CHECK(read_whole(client_frame(op::text, std::string(126, 'x'))).at(0).what == kind::text);
    CHECK(read_whole(client_frame(op::text, std::string(65536, 'x'))).at(0).what == kind::text);
  }
  SECTION("a close frame with a 1-byte body") {
    check_fails(client_frame(op::close, "\x03"), 1002);
  }
  SECTION("close codes that must not be sent") {
    for (const int code :
         {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
      INFO("code " << code);
      CHECK_FALSE(ws::is_valid_close_code(static_cast<std::uint16_t>(code)));
      check_fails(client_frame(op::close, close_body(code)), 1002);
    }
  }
}

TEST_CASE("close frames report the peer's code and reason") {
  check_reports(client_frame(op::close, ""), {{kind::close, "", 1005}});
  check_reports(client_frame(op::close, close_body(1000)), {{kind::close, "", 1000}});
  check_reports(client_frame(op::close, close_body(4000, "zoë left")),
                {{kind::close, "zoë left", 4000}});
  for (const int code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014,
                         3000, 3999, 4000, 4999}) {
    INFO("code " << code);
    const auto wire = static_cast<std::uint16_t>(code);
    CHECK(ws::is_valid_close_code(wire));
    CHECK(read_whole(client_frame(op::close, close_body(code, "r")))
          == std::vector<report>{{kind::close, "r", wire}});
  }
  SECTION("a reason that is not UTF-8 fails with 1007") {
    check_fails(client_frame(op::close, close_body(1000, "\xFF")), 1007);
    check_fails(client_frame(op::close, close_body(1000, "cut \xE2\x82")), 1007);
  }
}

TEST_CASE("the hostile frames of the integration tests get the codes they expect") {
  // tests/integration/hostile_frames_test.cpp, "protocol violations get close 1002".
  const std::string violations[] = {
      client_frame(op::close, close_body(999)),
      client_frame(op::close, close_body(1005)),
      client_frame(op::text, "{}", {.masked = false}),
      client_frame(op::ping, std::string(200, 'p')),
      client_frame(0x3, "x"),
      client_frame(op::continuation, "x"),
      client_frame(op::ping, "x", {.fin = false}),
  };
  for (const auto& bytes : violations)
    check_fails(bytes, 1002);
  // tests/integration/bad_input_test.cpp with --max-frame 1024: a 2048-byte message.
  check_fails(client_frame(op::text, std::string(2048, 'x')), 1009, 1024);
}

TEST_CASE("the message size limit is decided from the header") {
  SECTION("exactly max_message is accepted") {
    check_reports(client_frame(op::text, std::string(100, 'a')),
                  {{kind::text, std::string(100, 'a')}}, 100);
  }
  SECTION("one byte more fails 1009 before the payload arrives") {
    ws::frame_reader reader(100);
    std::string header = client_frame(op::text, std::string(101, 'a')).substr(0, 2);
    const auto r = reader.next({header.data(), header.size()});
    CHECK(r.what == kind::fail);
    CHECK(r.code == 1009);
  }
  SECTION("the 16-bit and 64-bit length forms at their edge") {
    check_reports(client_frame(op::binary, std::string(65535, 'b')),
                  {{kind::binary, std::string(65535, 'b')}}, 65535);
    ws::frame_reader reader(65535);
    std::string header = client_frame(op::binary, std::string(65536, 'b')).substr(0, 10);
    CHECK(reader.next({header.data(), 9}).what == kind::need_more);
    const auto r = reader.next({header.data(), header.size()});
    CHECK(r.what == kind::fail);
    CHECK(r.code == 1009);
  }
  SECTION("the fragments of a message count together") {
    std::string ok = client_frame(op::text, std::string(60, 'a'), {.fin = false});
    ok += client_frame(op::ping, "between");
    ok += client_frame(op::continuation, std::string(40, 'b'));
    check_reports(ok,
                  {{kind::fragment},
                   {kind::ping, "between"},
                   {kind::text, std::string(60, 'a') + std::string(40, 'b')}},
                  100);

    ws::frame_reader reader(100);
    std::string over = client_frame(op::text, std::string(60, 'a'), {.fin = false});
    over += client_frame(op::continuation, std::string(41, 'b')).substr(0, 2);  // its header only
    const auto first = reader.next({over.data(), over.size()});
    CHECK(first.what == kind::fragment);
    over.erase(0, first.consumed);
    const auto r = reader.next({over.data(), over.size()});
    CHECK(r.what == kind::fail);
    CHECK(r.code == 1009);
    CHECK(reader.capacity() == 0);
  }
  SECTION("binary messages too") {
    std::string stream = client_frame(op::binary, std::string(60, 'a'), {.fin = false});
    stream += client_frame(op::continuation, std::string(41, 'b'));
    check_fails(stream, 1009, 100);
    check_fails(client_frame(op::binary, std::string(101, 'x')), 1009, 100);
  }
  SECTION("control frames are not messages") {
    check_reports(client_frame(op::ping, std::string(125, 'p')),
                  {{kind::ping, std::string(125, 'p')}}, 0);
    check_reports(client_frame(op::text, ""), {{kind::text, ""}}, 0);
    check_fails(client_frame(op::text, "x"), 1009, 0);
  }
  SECTION("a huge announced length fails without overflow") {
    check_fails(client_frame(op::text, "", {.announced = (std::uint64_t{1} << 63) - 1}), 1009);
    std::string stream = client_frame(op::text, "a", {.fin = false});
    stream += client_frame(op::continuation, "", {.announced = (std::uint64_t{1} << 63) - 1});
    check_fails(stream, 1009);
  }
}

TEST_CASE("a binary message is reported at its first frame and its later frames as fragments") {
  std::string stream = client_frame(op::binary, "\x01\x02", {.fin = false});
  stream += client_frame(op::ping, "p");
  stream += client_frame(op::continuation, "\xFF", {.fin = false});  // not checked: binary
  stream += client_frame(op::continuation, "\x03");
  stream += client_frame(op::text, "after");
  check_reports(stream, {{kind::binary, "\x01\x02"},
                         {kind::ping, "p"},
                         {kind::fragment},
                         {kind::fragment},
                         {kind::text, "after"}});
}

TEST_CASE("the assembly buffer is bounded and released after a fragmented message") {
  ws::frame_reader reader(300);
  CHECK(reader.capacity() == 0);
  std::string buffer;
  for (int i = 0; i < 299; ++i)
    buffer += client_frame(i == 0 ? op::text : op::continuation, "x", {.fin = false});
  buffer += client_frame(op::continuation, "y");
  std::size_t offset = 0;
  // One frame at a time, watching the buffer grow.
  for (int i = 0; i < 299; ++i) {
    const auto r = reader.next({buffer.data() + offset, 7});
    REQUIRE(r.what == kind::fragment);
    REQUIRE(r.consumed == 7);
    offset += 7;
    CHECK(reader.buffered() == static_cast<std::size_t>(i + 1));
    CHECK(reader.capacity() <= 300);
    CHECK(reader.capacity() >= reader.buffered());
  }
  const auto done = reader.next({buffer.data() + offset, buffer.size() - offset});
  REQUIRE(done.what == kind::text);
  CHECK(done.payload == std::string(299, 'x') + "y");
  CHECK(done.payload.data() == reader.assembly().data());
  CHECK(reader.capacity() == 300);
  // Released at the next call, once the caller has handled the message.
  char nothing = 0;
  CHECK(reader.next({&nothing, 0}).what == kind::need_more);
  CHECK(reader.capacity() == 0);
  CHECK(reader.buffered() == 0);
}

TEST_CASE("after a failure the reader keeps failing") {
  ws::frame_reader reader(1024);
  std::string bad = client_frame(op::text, "ok", {.masked = false});
  CHECK(reader.next({bad.data(), bad.size()}).code == 1002);
  std::string good = client_frame(op::text, "ok");
  const auto again = reader.next({good.data(), good.size()});
  CHECK(again.what == kind::fail);
  CHECK(again.code == 1002);
  CHECK(again.consumed == 0);
}
