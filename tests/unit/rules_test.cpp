#include "roomcast/rules.hpp"

#include <string>

#include <catch2/catch.hpp>

using namespace roomcast::rules;

// The rules take valid UTF-8 only (rules.hpp): the WebSocket codec has checked every text message
// before parse_command hands a name or a text to them. So these tests give them valid UTF-8.

namespace {
std::string times(int n, const std::string& part) {
  std::string all;
  for (int i = 0; i < n; ++i)
    all += part;
  return all;
}
}  // namespace

TEST_CASE("lengths are counted in code points, not bytes") {
  CHECK(check_text("abc", 3) == text_verdict::ok);
  CHECK(check_text("abc", 2) == text_verdict::too_long);
  CHECK(check_text("\xC3\xAB", 1) == text_verdict::ok);  // ë: 2 bytes
  CHECK(check_text("房间", 2) == text_verdict::ok);      // 3 bytes each
  CHECK(check_text("房间!", 2) == text_verdict::too_long);
  CHECK(check_text("😀", 1) == text_verdict::ok);                 // 4 bytes
  CHECK(check_text("\xF4\x8F\xBF\xBF", 1) == text_verdict::ok);  // U+10FFFF, the last one
  CHECK(check_text("a\xC3\xAB房😀z", 5) == text_verdict::ok);
  CHECK(check_text("a\xC3\xAB房😀z", 4) == text_verdict::too_long);

  CHECK(normalize_name(times(32, "名")) == times(32, "名"));  // 96 bytes, 32 code points
  CHECK_FALSE(normalize_name(times(33, "名")));
  CHECK(normalize_name(times(32, "😀")) == times(32, "😀"));  // 128 bytes, 32 code points
  CHECK_FALSE(normalize_name(times(32, "😀") + "a"));
  CHECK(normalize_name(times(32, "x")) == times(32, "x"));
  CHECK_FALSE(normalize_name(times(33, "x")));
}

TEST_CASE("ASCII, no-break and ideographic spaces are trimmed at both ends only") {
  CHECK(normalize_name("  a b  ") == "a b");
  CHECK(normalize_name("\t\n a") == "a");
  CHECK(normalize_name("\xc2\xa0x\xe3\x80\x80") == "x");
  CHECK(normalize_name("\xe3\x80\x80" + times(32, "名") + "\xc2\xa0 ") == times(32, "名"));
  CHECK(check_text(" \n ", 100) == text_verdict::empty);
  CHECK(check_text("\xe3\x80\x80\xe3\x80\x80\xc2\xa0", 100) == text_verdict::empty);
  CHECK_FALSE(normalize_name("   "));
  // Characters that share bytes with the spaces are not spaces: U+3001 (、), U+00A1 (¡).
  CHECK(normalize_name("\xe3\x80\x81") == "\xe3\x80\x81");
  CHECK(normalize_name("\xc2\xa1 ") == "\xc2\xa1");
  // Text is checked, not trimmed: its length counts the spaces too.
  CHECK(check_text(" a ", 3) == text_verdict::ok);
  CHECK(check_text(" a ", 2) == text_verdict::too_long);
}

TEST_CASE("normalize_name refuses control characters") {
  CHECK(normalize_name(" bob ") == "bob");
  CHECK_FALSE(normalize_name(""));
  CHECK_FALSE(normalize_name("a\x7f"));
  CHECK_FALSE(normalize_name(std::string("a\0b", 3)));
  CHECK_FALSE(normalize_name("a\xc2\x85"));           // U+0085, a C1 control
  CHECK_FALSE(normalize_name("a\xc2\x9f"));           // U+009F, the last one
  CHECK(normalize_name("a\xc2\xa1") == "a\xc2\xa1");  // U+00A1 is not
}

TEST_CASE("check_text") {
  CHECK(check_text("hi", 100) == text_verdict::ok);
  CHECK(check_text("", 100) == text_verdict::empty);
  CHECK(check_text(" \n ", 100) == text_verdict::empty);
  CHECK(check_text("abc", 2) == text_verdict::too_long);
}
