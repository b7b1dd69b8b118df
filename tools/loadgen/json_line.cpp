#include "json_line.hpp"

#include <cmath>
#include <cstdio>

namespace roomcast::loadgen {
namespace {

void append_string(std::string& out, std::string_view text) {
  out += '"';
  for (const char ch : text) {
    const auto byte = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (byte < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", byte);
          out += escaped;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

}  // namespace

json_line& json_line::add_raw(std::string_view key, std::string_view raw) {
  if (!body_.empty()) body_ += ',';
  append_string(body_, key);
  body_ += ':';
  body_ += raw;
  return *this;
}

json_line& json_line::add(std::string_view key, std::string_view value) {
  std::string quoted;
  append_string(quoted, value);
  return add_raw(key, quoted);
}

json_line& json_line::add(std::string_view key, bool value) {
  return add_raw(key, value ? "true" : "false");
}

json_line& json_line::add(std::string_view key, double value, int decimals) {
  if (!std::isfinite(value)) return add_null(key);
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return add_raw(key, text);
}

json_line& json_line::add_null(std::string_view key) {
  return add_raw(key, "null");
}

}  // namespace roomcast::loadgen
