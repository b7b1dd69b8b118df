// Resume tokens: random, written and read back exactly, compared whole.
#include "roomcast/resume_token.hpp"

#include <set>

#include <catch2/catch.hpp>

using namespace roomcast;

TEST_CASE("resume tokens are 32 base64url characters, distinct, and read back as themselves") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto token = resume_token::generate();
    const auto text = token.text();
    REQUIRE(text.size() == resume_token::text_size);
    CHECK(text.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
          == std::string::npos);
    CHECK(seen.insert(text).second);
    const auto parsed = resume_token::parse(text);
    REQUIRE(parsed.has_value());
    CHECK(parsed->matches(token));
    CHECK(parsed->index() == token.index());
    CHECK(parsed->text() == text);
  }
}

TEST_CASE("a resume token differing in any one character does not match") {
  const auto token = resume_token::generate();
  const auto text = token.text();
  for (std::size_t i = 0; i < text.size(); ++i) {
    auto forged = text;
    forged[i] = forged[i] == 'A' ? 'B' : 'A';
    const auto parsed = resume_token::parse(forged);
    REQUIRE(parsed.has_value());
    CHECK_FALSE(parsed->matches(token));
  }
}

TEST_CASE("anything but a token's text is refused when parsed") {
  const auto text = resume_token::generate().text();
  CHECK_FALSE(resume_token::parse("").has_value());
  CHECK_FALSE(resume_token::parse(text.substr(1)).has_value());
  CHECK_FALSE(resume_token::parse(text + "A").has_value());
  CHECK_FALSE(resume_token::parse(std::string(32, '=')).has_value());
  CHECK_FALSE(resume_token::parse(text.substr(0, 31) + "+").has_value());  // base64, not url
  CHECK_FALSE(resume_token::parse(text.substr(0, 31) + '\0').has_value());
}
