// fuzz_ws: arbitrary client bytes through roomcast::ws::frame_reader, fed whole, in chunks split
// at fuzzer-chosen points, and one byte at a time, like a session's read loop. The three runs must
// report the same things, and those must be what a plain reference decoder written here from
// RFC 6455 and the rules in ws_codec.hpp says (its UTF-8 check decodes code points rather than
// running a state machine). After every call: `consumed` within the data, a payload inside the
// caller's data or the reader's own buffer, never more than max_message buffered, and no heap
// memory held while idle. The encoders are checked too: the input as a payload, encoded, masked
// and read back, and as a close reason, cut at a character boundary.
//
// Input: byte 0 chooses max_message (0..191, or one of a few larger values); bytes 1..4 are the
// chunk sizes (each 1..256, used in turn) and the mask key of the round trips; the rest is the
// stream.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "roomcast/ws_codec.hpp"

#include "fuzz_check.hpp"

namespace ws = roomcast::ws;
using kind = ws::frame_reader::result::kind;

namespace {

struct report {
  kind what = kind::need_more;
  std::string payload;
  std::uint16_t code = 0;
  bool operator==(const report&) const = default;
};

std::string describe(const std::vector<report>& reports) {
  constexpr const char* names[] = {"need_more", "text",  "binary", "ping",
                                   "pong",      "close", "fail",   "fragment"};
  std::string out;
  for (const auto& r : reports) {
    out += "\n    " + std::string(names[static_cast<int>(r.what)]) + " code "
           + std::to_string(r.code) + " payload " + std::to_string(r.payload.size()) + " bytes";
  }
  return out;
}

std::size_t max_message_from(std::uint8_t byte) {
  if (byte < 0xC0) return byte;
  constexpr std::size_t larger[] = {0, 125, 126, 1000, 4096, 65535, 65536, std::size_t{1} << 20};
  return larger[byte % std::size(larger)];
}

bool inside(std::string_view part, const char* begin, std::size_t size) {
  if (part.empty()) return true;
  const auto* p = part.data();
  return std::less_equal<>{}(begin, p) && std::less_equal<>{}(p + part.size(), begin + size);
}

// --- The reference decoder -------------------------------------------------------------------

// Whether code point `cp`, written in `length` bytes, is a Unicode scalar value in its shortest
// form (RFC 3629).
bool scalar_ok(std::uint32_t cp, std::size_t length) {
  constexpr std::uint32_t least[] = {0, 0, 0x80, 0x800, 0x10000};
  return cp >= least[length] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
}

// Whether `s` is valid UTF-8, or with `prefix`, the start of some valid UTF-8.
bool model_utf8(std::string_view s, bool prefix) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto lead = static_cast<std::uint8_t>(s[i]);
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length;
    std::uint32_t cp;
    if ((lead & 0xE0) == 0xC0) {
      length = 2, cp = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, cp = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, cp = lead & 0x07;
    } else {
      return false;
    }
    if (i + length > s.size()) {
      if (!prefix) return false;
      // Cut short at the end: valid if some continuation completes it. Only the second byte is
      // ever constrained, so repeating one candidate byte is enough.
      for (int filler = 0x80; filler <= 0xBF; ++filler) {
        std::string whole(s.substr(i));
        whole.resize(length, static_cast<char>(filler));
        if (model_utf8(whole, false)) return true;
      }
      return false;
    }
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<std::uint8_t>(s[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (next & 0x3F);
    }
    if (!scalar_ok(cp, length)) return false;
    i += length;
  }
  return true;
}

bool model_close_code_ok(std::uint32_t code) {
  if (code < 1000 || code >= 5000) return false;
  if (code == 1004 || code == 1005 || code == 1006 || code == 1015) return false;
  return code < 1016 || code >= 3000;
}

// Decodes the whole stream byte by byte, as RFC 6455 and ws_codec.hpp describe it: checks in the
// order the bytes arrive, 1009 from the header, text checked fragment by fragment.
std::vector<report> model(std::string_view s, std::size_t max_message) {
  std::vector<report> out;
  enum { none, text, binary } message = none;
  std::string assembled;
  std::uint64_t message_size = 0;
  const auto fail = [&](std::uint16_t code) {
    out.push_back({kind::fail, {}, code});
    return out;
  };
  std::size_t pos = 0;
  for (;;) {
    if (pos >= s.size()) break;
    const auto b0 = static_cast<std::uint8_t>(s[pos]);
    const bool fin = (b0 & 0x80) != 0;
    const int op = b0 & 0x0F;
    if ((b0 & 0x70) != 0) return fail(1002);
    if (!(op == 0 || op == 1 || op == 2 || op == 8 || op == 9 || op == 10)) return fail(1002);
    const bool control = op >= 8;
    if (control && !fin) return fail(1002);
    if (op == 0 && message == none) return fail(1002);
    if ((op == 1 || op == 2) && message != none) return fail(1002);
    if (pos + 1 >= s.size()) break;
    const auto b1 = static_cast<std::uint8_t>(s[pos + 1]);
    if ((b1 & 0x80) == 0) return fail(1002);
    std::uint64_t length = b1 & 0x7F;
    if (control && length > 125) return fail(1002);
    std::size_t at = pos + 2;
    if (length == 126 || length == 127) {
      const std::size_t bytes = length == 126 ? 2 : 8;
      if (at + bytes > s.size()) break;
      length = 0;
      for (std::size_t k = 0; k < bytes; ++k)
        length = length * 256 + static_cast<std::uint8_t>(s[at + k]);
      at += bytes;
      if (bytes == 2 && length < 126) return fail(1002);
      if (bytes == 8 && length >= (std::uint64_t{1} << 63)) return fail(1002);
      if (bytes == 8 && length < 65536) return fail(1002);
    }
    if (!control && (op == 0 ? message_size : 0) + length > max_message) return fail(1009);
    if (at + 4 > s.size() || s.size() - (at + 4) < length) break;
    std::string payload(s.substr(at + 4, length));
    for (std::size_t k = 0; k < payload.size(); ++k)
      payload[k] = static_cast<char>(payload[k] ^ s[at + k % 4]);
    pos = at + 4 + length;

    if (op == 9 || op == 10) {
      out.push_back({op == 9 ? kind::ping : kind::pong, payload, 0});
    } else if (op == 8) {
      if (payload.empty()) {
        out.push_back({kind::close, {}, 1005});
        continue;
      }
      if (payload.size() == 1) return fail(1002);
      const auto code = static_cast<std::uint16_t>(static_cast<std::uint8_t>(payload[0]) * 256
                                                   + static_cast<std::uint8_t>(payload[1]));
      if (!model_close_code_ok(code)) return fail(1002);
      if (!model_utf8(payload.substr(2), false)) return fail(1007);
      out.push_back({kind::close, payload.substr(2), code});
    } else if (op == 2) {
      out.push_back({kind::binary, payload, 0});
      if (!fin) message = binary, message_size = length;
    } else if (op == 1) {
      if (!model_utf8(payload, !fin)) return fail(1007);
      if (fin) {
        out.push_back({kind::text, payload, 0});
      } else {
        message = text, message_size = length, assembled = payload;
        out.push_back({kind::fragment, {}, 0});
      }
    } else if (message == binary) {
      message_size += length;
      if (fin) message = none, message_size = 0;
      out.push_back({kind::fragment, {}, 0});
    } else {
      message_size += length;
      assembled += payload;
      if (!model_utf8(assembled, !fin)) return fail(1007);
      if (fin) {
        out.push_back({kind::text, assembled, 0});
        message = none, message_size = 0, assembled.clear();
      } else {
        out.push_back({kind::fragment, {}, 0});
      }
    }
  }
  out.push_back({kind::need_more, {}, 0});
  return out;
}

// --- Feeding the reader ------------------------------------------------------------------------

// Checks what one call returned against what it was given.
void check_call(const ws::frame_reader& reader, const ws::frame_reader::result& r,
                const std::string& buffer) {
  const std::size_t max = reader.max_message();
  FUZZ_CHECK(r.consumed <= buffer.size(), "consumed ", r.consumed, " of ", buffer.size());
  FUZZ_CHECK(reader.buffered() <= max, "buffered ", reader.buffered(), " > max ", max);
  FUZZ_CHECK(reader.capacity() <= max, "capacity ", reader.capacity(), " > max ", max);
  const bool in_data = inside(r.payload, buffer.data(), buffer.size());
  const auto assembly = reader.assembly();
  const bool in_assembly = inside(r.payload, assembly.data(), assembly.size());
  FUZZ_CHECK(in_data || in_assembly, "payload outside the data and the reader's buffer");
  switch (r.what) {
    case kind::need_more:
      FUZZ_CHECK(r.payload.empty() && r.code == 0, "need_more with a payload or code");
      FUZZ_CHECK(r.consumed == 0, "need_more consumed ", r.consumed);
      // Idle: nothing buffered means no memory held.
      FUZZ_CHECK(reader.buffered() != 0 || reader.capacity() == 0, "idle reader holds ",
                 reader.capacity(), " bytes");
      break;
    case kind::text:
    case kind::binary:
      FUZZ_CHECK(r.payload.size() <= max, "message of ", r.payload.size(), " > max ", max);
      FUZZ_CHECK(r.code == 0, "code on a message");
      FUZZ_CHECK(r.consumed > 0, "a message from no bytes");
      break;
    case kind::ping:
    case kind::pong:
      FUZZ_CHECK(r.payload.size() <= 125, "control payload of ", r.payload.size());
      FUZZ_CHECK(r.consumed > 0, "a control frame from no bytes");
      break;
    case kind::close:
      FUZZ_CHECK(r.payload.size() <= 123, "close reason of ", r.payload.size());
      FUZZ_CHECK(r.code == 1005 || ws::is_valid_close_code(r.code), "close code ", r.code);
      FUZZ_CHECK(r.code != 1005 || r.payload.empty(), "reason without a code");
      FUZZ_CHECK(r.consumed > 0, "a close frame from no bytes");
      break;
    case kind::fragment:
      FUZZ_CHECK(r.payload.empty() && r.code == 0, "fragment with a payload or code");
      FUZZ_CHECK(r.consumed > 0, "a fragment from no bytes");
      break;
    case kind::fail:
      FUZZ_CHECK(r.code == 1002 || r.code == 1007 || r.code == 1009, "fail code ", r.code);
      FUZZ_CHECK(r.consumed == 0, "fail consumed ", r.consumed);
      FUZZ_CHECK(r.payload.empty(), "fail with a payload");
      FUZZ_CHECK(reader.capacity() == 0, "a failed reader holds memory");
      break;
  }
}

// Feeds the stream in chunks of the sizes `chunk(i)` gives, like a session's read loop, and
// returns the reports, ending with need_more or fail.
template <class Chunk>
std::vector<report> feed(std::string_view stream, std::size_t max_message, Chunk chunk) {
  ws::frame_reader reader(max_message);
  std::vector<report> reports;
  std::string buffer;
  std::size_t from = 0;
  for (std::size_t i = 0;; ++i) {
    const std::size_t size = std::min(chunk(i), stream.size() - from);
    buffer.append(stream.substr(from, size));
    from += size;
    for (;;) {
      const auto r = reader.next({buffer.data(), buffer.size()});
      check_call(reader, r, buffer);
      if (r.what != kind::need_more || from == stream.size()) {
        reports.push_back({r.what, std::string(r.payload), r.code});
      }
      buffer.erase(0, r.consumed);
      if (r.what == kind::fail) {
        // Failed for good: another call says so again without consuming.
        const auto again = reader.next({buffer.data(), buffer.size()});
        FUZZ_CHECK(again.what == kind::fail && again.code == r.code && again.consumed == 0,
                   "a failed reader recovered");
        return reports;
      }
      if (r.what == kind::need_more) break;
    }
    if (from == stream.size()) return reports;
  }
}

void check_round_trips(std::string_view stream, const std::array<std::uint8_t, 4>& key) {
  // encode_frame, masked as a client would, reads back as the same binary message.
  const auto mask = [&key](std::string frame) {
    const std::size_t short_length = static_cast<std::uint8_t>(frame[1]);
    const std::size_t header = short_length == 127 ? 10 : short_length == 126 ? 4 : 2;
    frame[1] = static_cast<char>(frame[1] | '\x80');
    frame.insert(header, reinterpret_cast<const char*>(key.data()), key.size());
    for (std::size_t i = header + 4; i < frame.size(); ++i)
      frame[i] = static_cast<char>(frame[i] ^ static_cast<char>(key[(i - header - 4) % 4]));
    return frame;
  };
  const std::vector<report> binary = {{kind::binary, std::string(stream), 0}, {}};
  FUZZ_CHECK(feed(mask(ws::encode_frame(ws::opcode::binary, stream)), stream.size(),
                  [](std::size_t) { return std::size_t{1} << 20; })
                 == binary,
             "binary frame of ", stream.size(), " bytes does not round-trip");
  const std::string text = ws::encode_frame(ws::opcode::text, stream);
  FUZZ_CHECK(text.size() >= stream.size()
                 && std::string_view(text).substr(text.size() - stream.size()) == stream,
             "a text frame does not end with its payload");
  const std::size_t header_size = text.size() - stream.size();
  FUZZ_CHECK(header_size
                 == (stream.size() < 126     ? 2
                     : stream.size() < 65536 ? 4
                                             : 10),
             "header of ", header_size, " bytes for ", stream.size());

  // encode_close keeps the longest prefix of a valid UTF-8 reason that fits and stays valid.
  const auto code = static_cast<std::uint16_t>(key[0] * 256 + key[1]);
  if (!ws::is_valid_close_code(code)) return;
  const auto frame = ws::encode_close(code, stream);
  FUZZ_CHECK(frame.size() <= 2 + 125, "close frame of ", frame.size(), " bytes");
  const std::string_view reason = std::string_view(frame).substr(4);
  FUZZ_CHECK(stream.substr(0, reason.size()) == reason, "close reason is not a prefix");
  if (!model_utf8(stream, false)) return;
  FUZZ_CHECK(model_utf8(reason, false), "a valid reason was cut inside a character");
  FUZZ_CHECK(stream.size() <= 123 ? reason.size() == stream.size() : reason.size() > 119,
             "reason cut to ", reason.size(), " of ", stream.size(), " bytes");
  const std::vector<report> closed = {{kind::close, std::string(reason), code}, {}};
  FUZZ_CHECK(feed(mask(frame), 0, [](std::size_t) { return std::size_t{1} << 20; }) == closed,
             "close frame does not round-trip");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The close code rule, for every code once (the frames below reach only a few).
  static const bool codes_checked = [] {
    for (std::uint32_t code = 0; code <= 0xFFFF; ++code) {
      FUZZ_CHECK(
          ws::is_valid_close_code(static_cast<std::uint16_t>(code)) == model_close_code_ok(code),
          "is_valid_close_code(", code, ") disagrees with the rule");
    }
    return true;
  }();
  (void)codes_checked;
  if (size < 5) return 0;
  const std::size_t max_message = max_message_from(data[0]);
  const std::array<std::uint8_t, 4> pattern = {data[1], data[2], data[3], data[4]};
  const std::string_view stream(reinterpret_cast<const char*>(data + 5), size - 5);

  const auto expected = model(stream, max_message);
  const auto whole = feed(stream, max_message, [](std::size_t) { return std::size_t{1} << 20; });
  FUZZ_CHECK(whole == expected, "fed whole:", describe(whole), "\n  expected:", describe(expected));
  const auto split = feed(stream, max_message,
                          [&pattern](std::size_t i) { return std::size_t{pattern[i % 4]} + 1; });
  FUZZ_CHECK(split == expected, "fed in chunks:", describe(split),
             "\n  expected:", describe(expected));
  const auto bytewise = feed(stream, max_message, [](std::size_t) { return std::size_t{1}; });
  FUZZ_CHECK(bytewise == expected, "fed byte by byte:", describe(bytewise),
             "\n  expected:", describe(expected));

  check_round_trips(stream, pattern);
  return 0;
}
