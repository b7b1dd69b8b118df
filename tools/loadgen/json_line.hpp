#pragma once
// A flat JSON object written key by key, in order, as one line: the load generator's report.
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace roomcast::loadgen {

class json_line {
 public:
  json_line& add(std::string_view key, std::string_view value);
  json_line& add(std::string_view key, const char* value) {
    return add(key, std::string_view(value));
  }
  json_line& add(std::string_view key, const std::string& value) {
    return add(key, std::string_view(value));
  }
  json_line& add(std::string_view key, bool value);
  json_line& add(std::string_view key, std::integral auto value) {
    if constexpr (std::signed_integral<decltype(value)>) {
      return add_raw(key, std::to_string(static_cast<long long>(value)));
    } else {
      return add_raw(key, std::to_string(static_cast<unsigned long long>(value)));
    }
  }
  /// `decimals` digits after the point; null when not finite.
  json_line& add(std::string_view key, double value, int decimals = 3);
  template <class T>
  json_line& add(std::string_view key, const std::optional<T>& value) {
    return value ? add(key, *value) : add_null(key);
  }
  template <class T>
  json_line& add(std::string_view key, const std::optional<T>& value, int decimals) {
    return value ? add(key, static_cast<double>(*value), decimals) : add_null(key);
  }
  json_line& add_null(std::string_view key);
  /// `key` with another line's object as its value.
  json_line& add_object(std::string_view key, const json_line& value) {
    return add_raw(key, value.str());
  }

  std::string str() const { return "{" + body_ + "}"; }

 private:
  json_line& add_raw(std::string_view key, std::string_view raw);
  std::string body_;
};

}  // namespace roomcast::loadgen
