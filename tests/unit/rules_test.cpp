#include "roomcast/rules.hpp"

#include <catch2/catch.hpp>

using namespace roomcast::rules;

TEST_CASE("code points are counted, not bytes") {
  CHECK(count_code_points("") == 0U);
  CHECK(count_code_points("abc") == 3U);
  CHECK(count_code_points("房间") == 2U);
  CHECK(count_code_points("😀") == 1U);
}

TEST_CASE("malformed UTF-8 has no length") {
  CHECK_FALSE(count_code_points("\xff"));
  CHECK_FALSE(count_code_points("\xc3"));              // truncated
  CHECK_FALSE(count_code_points("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(count_code_points("\xed\xa0\x80"));      // a surrogate
  CHECK_FALSE(count_code_points("\xf4\x90\x80\x80"));  // above U+10FFFF
}

TEST_CASE("trim removes ASCII, no-break and ideographic spaces at both ends only") {
  CHECK(trim("  a b  ") == "a b");
  CHECK(trim("\t\n a") == "a");
  CHECK(trim("\xc2\xa0x\xe3\x80\x80") == "x");
  CHECK(trim("   ").empty());
  CHECK(trim("\xe3\x80") == "\xe3\x80");  // malformed tail is kept, not split
}

TEST_CASE("normalize_name enforces the name rules") {
  CHECK(normalize_name(" bob ") == "bob");
  CHECK_FALSE(normalize_name(""));
  CHECK_FALSE(normalize_name("a\x7f"));
  CHECK_FALSE(normalize_name("\xff"));
  std::string han;
  for (int i = 0; i < 32; ++i)
    han += "名";
  CHECK(normalize_name(han) == han);  // 96 bytes, 32 code points
  CHECK_FALSE(normalize_name(han + "名"));
}

TEST_CASE("check_text") {
  CHECK(check_text("hi", 100) == text_verdict::ok);
  CHECK(check_text(" \n ", 100) == text_verdict::empty);
  CHECK(check_text("abc", 2) == text_verdict::too_long);
  CHECK(check_text("ab\xff", 100) == text_verdict::invalid);
}
