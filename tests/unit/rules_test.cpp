#include "roomcast/rules.hpp"

#include <string>

#include <catch2/catch.hpp>

using namespace roomcast::rules;

// The rules take valid UTF-8 only (rules.hpp): the WebSocket codec has checked every text message
// before parse_command hands a name or a text to them. So these tests give them valid UTF-8.

TEST_CASE("code points are counted, not bytes") {
  CHECK(count_code_points("") == 0U);
  CHECK(count_code_points("abc") == 3U);
  CHECK(count_code_points("\xC3\xAB") == 1U);          // ë: 2 bytes
  CHECK(count_code_points("房间") == 2U);              // 3 bytes each
  CHECK(count_code_points("😀") == 1U);                 // 4 bytes
  CHECK(count_code_points("\xF4\x8F\xBF\xBF") == 1U);  // U+10FFFF, the last code point
  CHECK(count_code_points("a\xC3\xAB房😀z") == 5U);
}

TEST_CASE("trim removes ASCII, no-break and ideographic spaces at both ends only") {
  CHECK(trim("  a b  ") == "a b");
  CHECK(trim("\t\n a") == "a");
  CHECK(trim("\xc2\xa0x\xe3\x80\x80") == "x");
  CHECK(trim("   ").empty());
  CHECK(trim("\xe3\x80\x80\xe3\x80\x80").empty());
  // Characters that share bytes with the spaces are not spaces: U+3001 (、), U+00A1 (¡).
  CHECK(trim("\xe3\x80\x81") == "\xe3\x80\x81");
  CHECK(trim("\xc2\xa1 ") == "\xc2\xa1");
}

TEST_CASE("normalize_name enforces the name rules") {
  CHECK(normalize_name(" bob ") == "bob");
  CHECK_FALSE(normalize_name(""));
  CHECK_FALSE(normalize_name("a\x7f"));
  CHECK_FALSE(normalize_name("a\xc2\x85"));           // U+0085, a C1 control
  CHECK_FALSE(normalize_name("a\xc2\x9f"));           // U+009F, the last one
  CHECK(normalize_name("a\xc2\xa1") == "a\xc2\xa1");  // U+00A1 is not
  std::string han;
  for (int i = 0; i < 32; ++i)
    han += "名";
  CHECK(normalize_name(han) == han);  // 96 bytes, 32 code points
  CHECK_FALSE(normalize_name(han + "名"));
  std::string emoji;
  for (int i = 0; i < 32; ++i)
    emoji += "😀";
  CHECK(normalize_name(emoji) == emoji);  // 128 bytes, 32 code points
  CHECK_FALSE(normalize_name(emoji + "a"));
}

TEST_CASE("check_text") {
  CHECK(check_text("hi", 100) == text_verdict::ok);
  CHECK(check_text(" \n ", 100) == text_verdict::empty);
  CHECK(check_text("\xe3\x80\x80", 100) == text_verdict::empty);
  CHECK(check_text("abc", 2) == text_verdict::too_long);
  CHECK(check_text("房间", 2) == text_verdict::ok);  // 6 bytes, 2 code points
  CHECK(check_text("房间!", 2) == text_verdict::too_long);
}
