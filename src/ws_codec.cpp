#include "roomcast/ws_codec.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <new>

namespace roomcast::ws {

namespace {

constexpr std::uint8_t fin_bit = 0x80;
constexpr std::uint8_t reserved_bits = 0x70;
constexpr std::uint8_t opcode_bits = 0x0F;
constexpr std::uint8_t mask_bit = 0x80;
constexpr std::uint8_t length_bits = 0x7F;
constexpr std::uint8_t length_16 = 126;
constexpr std::uint8_t length_64 = 127;
constexpr std::size_t mask_key_size = 4;
constexpr std::uint64_t high_bits = 0x8080'8080'8080'8080;
// The largest server frame header: 2 bytes plus a 64-bit length (server frames are unmasked).
constexpr std::size_t max_header_size = 10;
// The first allocation for a fragmented message: tiny fragments should not mean many reallocations.
constexpr std::size_t min_assembly = 256;

using kind = frame_reader::result::kind;

constexpr bool is_control(std::uint8_t op) noexcept {
  return (op & 0x8) != 0;
}

constexpr bool is_defined(std::uint8_t op) noexcept {
  return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

std::uint8_t byte_at(std::span<const char> data, std::size_t i) noexcept {
  return static_cast<std::uint8_t>(data[i]);
}

std::uint64_t read_big_endian(std::span<const char> data, std::size_t from, std::size_t size) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < size; ++i)
    value = (value << 8) | byte_at(data, from + i);
  return value;
}

// XOR with the 4-byte key, 8 bytes at a time: the key repeated twice as bytes in memory, so the
// word-wise XOR is right whatever the machine's byte order. Payloads start at key phase 0.
void unmask(char* payload, std::size_t size, const char* key) noexcept {
  std::array<char, 2 * mask_key_size> key_twice{};
  std::memcpy(key_twice.data(), key, mask_key_size);
  std::memcpy(key_twice.data() + mask_key_size, key, mask_key_size);
  std::uint64_t key_word = 0;
  static_assert(sizeof key_word == key_twice.size());
  std::memcpy(&key_word, key_twice.data(), sizeof key_word);
  std::size_t i = 0;
  for (; i + 8 <= size; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, payload + i, sizeof word);
    word ^= key_word;
    std::memcpy(payload + i, &word, sizeof word);
  }
  for (; i < size; ++i)
    payload[i] = static_cast<char>(payload[i] ^ key[i % mask_key_size]);
}

// The longest prefix of `text` that is at most `limit` bytes and does not end inside a UTF-8
// character (for text that is valid UTF-8; other text is cut anywhere that keeps to the limit).
std::string_view cut_at_character(std::string_view text, std::size_t limit) noexcept {
  if (text.size() <= limit) return text;
  std::size_t end = limit;
  // A continuation byte (10xxxxxx) right after the cut means the cut splits a character; at most
  // three steps back reach its lead byte.
  for (int steps = 0; steps < 3 && end > 0; ++steps) {
    if ((static_cast<std::uint8_t>(text[end]) & 0xC0) != 0x80) break;
    --end;
  }
  return text.substr(0, end);
}

// Writes the header of an unfragmented (FIN set), unmasked server frame to the front of `out` and
// returns its size: 2, 4 or 10, the shortest form for `payload_size`.
std::size_t encode_header(opcode op, std::size_t payload_size,
                          std::array<char, max_header_size>& out) noexcept {
  out[0] = static_cast<char>(fin_bit | static_cast<std::uint8_t>(op));
  if (payload_size < length_16) {
    out[1] = static_cast<char>(payload_size);
    return 2;
  }
  if (payload_size <= 0xFFFF) {
    out[1] = static_cast<char>(length_16);
    out[2] = static_cast<char>(payload_size >> 8);
    out[3] = static_cast<char>(payload_size & 0xFF);
    return 4;
  }
  out[1] = static_cast<char>(length_64);
  const auto size = static_cast<std::uint64_t>(payload_size);
  for (std::size_t i = 0; i < 8; ++i)
    out[2 + i] = static_cast<char>((size >> (56 - 8 * i)) & 0xFF);
  return max_header_size;
}

}  // namespace

bool is_valid_close_code(std::uint16_t code) noexcept {
  if (code < 1000 || code >= 5000) return false;
  if (code >= 3000) return true;  // 3000-3999 registered, 4000-4999 private use
  switch (code) {
    case 1004:  // reserved
    case 1005:  // no status: local only
    case 1006:  // abnormal closure: local only
    case 1015:  // TLS failure: local only
      return false;
    default:
      return code <= 1014;  // 1016-2999 are not assigned
  }
}

std::string encode_frame(opcode op, std::string_view payload) {
  std::array<char, max_header_size> header{};
  const std::size_t header_size = encode_header(op, payload.size(), header);
  std::string frame;
  frame.reserve(header_size + payload.size());
  frame.append(header.data(), header_size);
  frame.append(payload);
  return frame;
}

std::string encode_close(std::uint16_t code, std::string_view reason) {
  if (code == close_code::no_status) return encode_frame(opcode::close, {});
  std::array<char, max_control_payload> body{};
  body[0] = static_cast<char>(code >> 8);
  body[1] = static_cast<char>(code & 0xFF);
  const std::string_view kept = cut_at_character(reason, max_control_payload - 2);
  std::copy(kept.begin(), kept.end(), body.begin() + 2);
  return encode_frame(opcode::close, {body.data(), 2 + kept.size()});
}

bool utf8_validator::feed(std::string_view bytes) noexcept {
  if (failed_) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* const end = p + bytes.size();
  while (p != end) {
    if (need_ == 0) {
      // Between characters: skip ASCII a word at a time.
      while (end - p >= 8) {
        std::uint64_t word;
        std::memcpy(&word, p, sizeof word);
        if ((word & high_bits) != 0) break;
        p += 8;
      }
      if (p == end) break;
      const unsigned char lead = *p++;
      if (lead < 0x80) continue;
      low_ = 0x80;
      high_ = 0xBF;
      if (lead < 0xC2 || lead >= 0xF5) {
        // A continuation byte, C0/C1 (overlong 2-byte forms) or F5..FF (beyond U+10FFFF).
        failed_ = true;
      } else if (lead < 0xE0) {
        need_ = 1;
      } else if (lead < 0xF0) {
        need_ = 2;
        if (lead == 0xE0) low_ = 0xA0;   // below: overlong (< U+0800)
        if (lead == 0xED) high_ = 0x9F;  // above: surrogates U+D800..U+DFFF
      } else {
        need_ = 3;
        if (lead == 0xF0) low_ = 0x90;   // below: overlong (< U+10000)
        if (lead == 0xF4) high_ = 0x8F;  // above: > U+10FFFF
      }
    } else {
      const unsigned char next = *p++;
      if (next < low_ || next > high_) {
        failed_ = true;
      } else {
        --need_;
        low_ = 0x80;
        high_ = 0xBF;
      }
    }
    if (failed_) return false;
  }
  return true;
}

struct frame_reader::frame_header {
  std::uint8_t op = 0;
  bool fin = false;
  std::size_t header_size = 0;  // including the mask key
  std::size_t length = 0;       // payload bytes
};

// Looks at the header at the front of `data`, checking each part as soon as its bytes are there
// and always in the same order, so that a bad header is refused with the same code however the
// input was split. True when the header is whole and acceptable; otherwise `out` says need_more
// or fail.
bool frame_reader::parse_header(std::span<const char> data, frame_header& header,
                                result& out) const noexcept {
  const auto need_more = [&out] {
    out = {.what = kind::need_more};
    return false;
  };
  const auto refuse = [&out](std::uint16_t code) {
    out = {.what = kind::fail, .code = code};
    return false;
  };

  if (data.empty()) return need_more();
  const std::uint8_t first = byte_at(data, 0);
  header.op = first & opcode_bits;
  header.fin = (first & fin_bit) != 0;
  if ((first & reserved_bits) != 0) return refuse(close_code::protocol_error);  // no extensions
  if (!is_defined(header.op)) return refuse(close_code::protocol_error);
  const bool control = is_control(header.op);
  if (control) {
    if (!header.fin) return refuse(close_code::protocol_error);
  } else if (header.op == static_cast<std::uint8_t>(opcode::continuation)) {
    if (message_ == message::none) return refuse(close_code::protocol_error);
  } else if (message_ != message::none) {
    return refuse(close_code::protocol_error);  // a new message before the last one ended
  }

  if (data.size() < 2) return need_more();
  const std::uint8_t second = byte_at(data, 1);
  if ((second & mask_bit) == 0) return refuse(close_code::protocol_error);  // clients must mask
  const std::uint8_t short_length = second & length_bits;
  if (control && short_length > max_control_payload) return refuse(close_code::protocol_error);
  const std::size_t extended = short_length == length_64 ? 8 : short_length == length_16 ? 2 : 0;
  header.header_size = 2 + extended + mask_key_size;
  if (data.size() < 2 + extended) return need_more();

  std::uint64_t length = short_length;
  if (extended == 2) {
    length = read_big_endian(data, 2, 2);
    if (length < length_16) return refuse(close_code::protocol_error);  // not the shortest form
  } else if (extended == 8) {
    length = read_big_endian(data, 2, 8);
    if ((length >> 63) != 0) return refuse(close_code::protocol_error);  // the top bit must be 0
    if (length <= 0xFFFF) return refuse(close_code::protocol_error);     // not the shortest form
  }
  if (!control) {
    // Decided from the header alone, so an oversized payload is never buffered.
    const bool continues = header.op == static_cast<std::uint8_t>(opcode::continuation);
    const std::size_t before = continues ? message_size_ : 0;
    if (length > max_message_ - before) return refuse(close_code::too_big);
  }
  header.length = static_cast<std::size_t>(length);
  if (data.size() < header.header_size) return need_more();
  return true;
}

frame_reader::result frame_reader::next(std::span<char> data) noexcept {
  if (failed_with_ != 0) return {.what = kind::fail, .code = failed_with_};
  // The message the last call reported has been handled: give its memory back.
  if (release_pending_) release();

  frame_header header;
  result out;
  if (!parse_header(data, header, out)) {
    if (out.what == kind::fail) return fail(out.code);
    return out;
  }
  const std::size_t frame_size = header.header_size + header.length;
  if (data.size() < frame_size) return {.what = kind::need_more};
  char* const payload = data.data() + header.header_size;
  unmask(payload, header.length, payload - mask_key_size);
  const std::string_view body(payload, header.length);
  // Every frame is reported, fragments too, so the caller can count each one.
  const result fragment{.what = kind::fragment, .consumed = frame_size};

  switch (static_cast<opcode>(header.op)) {
    case opcode::ping:
      return {.what = kind::ping, .consumed = frame_size, .payload = body};
    case opcode::pong:
      return {.what = kind::pong, .consumed = frame_size, .payload = body};
    case opcode::close:
      return read_close(body, frame_size);
    case opcode::binary:
      if (!header.fin) {
        message_ = message::binary;
        message_size_ = header.length;
      }
      return {.what = kind::binary, .consumed = frame_size, .payload = body};
    case opcode::text:
      utf8_.reset();
      if (!utf8_.feed(body)) return fail(close_code::invalid_payload);
      if (header.fin) {
        if (!utf8_.complete()) return fail(close_code::invalid_payload);
        return {.what = kind::text, .consumed = frame_size, .payload = body};
      }
      message_ = message::text;
      message_size_ = header.length;
      if (!append(body)) return fail(close_code::too_big);
      return fragment;
    case opcode::continuation:
      message_size_ += header.length;
      if (message_ == message::binary) {
        if (header.fin) {
          message_ = message::none;
          message_size_ = 0;
        }
        return fragment;
      }
      // Each fragment is checked as it arrives: bad text fails before the message ends.
      if (!utf8_.feed(body)) return fail(close_code::invalid_payload);
      if (!append(body)) return fail(close_code::too_big);
      if (!header.fin) return fragment;
      if (!utf8_.complete()) return fail(close_code::invalid_payload);
      message_ = message::none;
      message_size_ = 0;
      release_pending_ = true;
      return {.what = kind::text, .consumed = frame_size, .payload = assembly()};
  }
  return fail(close_code::protocol_error);  // parse_header refuses the other opcodes
}

frame_reader::result frame_reader::read_close(std::string_view body,
                                              std::size_t consumed) noexcept {
  if (body.empty()) {
    return {.what = kind::close, .consumed = consumed, .code = close_code::no_status};
  }
  if (body.size() == 1) return fail(close_code::protocol_error);
  const auto code = static_cast<std::uint16_t>((static_cast<std::uint8_t>(body[0]) << 8)
                                               | static_cast<std::uint8_t>(body[1]));
  if (!is_valid_close_code(code)) return fail(close_code::protocol_error);
  const std::string_view reason = body.substr(2);
  utf8_validator check;
  if (!check.feed(reason) || !check.complete()) {
    return fail(close_code::invalid_payload);
  }
  return {.what = kind::close, .consumed = consumed, .payload = reason, .code = code};
}

// Grows the assembly buffer geometrically but never past max_message_ (the header check keeps
// the message within it), so a reader never holds more than one maximal message.
bool frame_reader::append(std::string_view bytes) noexcept {
  const std::size_t size = fragments_.size() + bytes.size();
  try {
    if (size > fragments_.capacity()) {
      const std::size_t grown = std::max({size, 2 * fragments_.capacity(), min_assembly});
      fragments_.reserve(std::min(grown, max_message_));
    }
    fragments_.insert(fragments_.end(), bytes.begin(), bytes.end());
  } catch (const std::bad_alloc&) {
    return false;  // reported as 1009: a message the server cannot hold
  }
  return true;
}

frame_reader::result frame_reader::fail(std::uint16_t code) noexcept {
  failed_with_ = code;
  release();
  return {.what = kind::fail, .code = code};
}

void frame_reader::release() noexcept {
  std::vector<char>{}.swap(fragments_);
  release_pending_ = false;
}

}  // namespace roomcast::ws
