#include "roomcast/http.hpp"

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

using namespace roomcast;

TEST_CASE("paths are decoded and traversal is refused") {
  CHECK(sanitize_path("/") == "/");
  CHECK(sanitize_path("/app.js?v=1") == "/app.js");
  CHECK(sanitize_path("/a%20b.css") == "/a b.css");
  CHECK_FALSE(sanitize_path("/../etc/passwd"));
  CHECK_FALSE(sanitize_path("/a/../../etc/passwd"));
  CHECK_FALSE(sanitize_path("/%2e%2e/etc/passwd"));
  CHECK_FALSE(sanitize_path("/%2E%2E%2fetc%2fpasswd"));
  CHECK_FALSE(sanitize_path("/.."));
  CHECK_FALSE(sanitize_path("/./x"));
  CHECK_FALSE(sanitize_path("/a%00b"));
  CHECK_FALSE(sanitize_path("/a\\..\\b"));
  CHECK_FALSE(sanitize_path("/bad%zz"));
  CHECK_FALSE(sanitize_path("/trailing%2"));
  CHECK_FALSE(sanitize_path("relative"));
  CHECK_FALSE(sanitize_path("http://host/x"));
}

TEST_CASE("the chat upgrades on / and /ws only") {
  CHECK(is_chat_endpoint("/"));
  CHECK(is_chat_endpoint("/ws"));
  CHECK(is_chat_endpoint("/ws?x=1"));
  CHECK_FALSE(is_chat_endpoint("/index.html"));
}

TEST_CASE("the embedded client is served with types and validators") {
  const http_router router;
  const auto index = router.route({.method = "GET", .target = "/", .if_none_match = ""});
  CHECK(index.status == 200);
  CHECK(index.content_type == "text/html; charset=utf-8");
  CHECK(index.cache_control == "no-cache");
  CHECK_THAT(index.body, Catch::Contains("<html"));
  REQUIRE_FALSE(index.etag.empty());

  const auto again =
      router.route({.method = "GET", .target = "/index.html", .if_none_match = index.etag});
  CHECK(again.status == 304);
  CHECK(again.body.empty());

  CHECK(router.route({.method = "GET", .target = "/healthz", .if_none_match = ""}).body == "ok\n");
  CHECK(router.route({.method = "GET", .target = "/missing.js", .if_none_match = ""}).status
        == 404);
  CHECK(router.route({.method = "GET", .target = "/%2e%2e/x", .if_none_match = ""}).status == 400);
  const auto post = router.route({.method = "POST", .target = "/", .if_none_match = ""});
  CHECK(post.status == 405);
  CHECK(post.allow == "GET, HEAD");
  const auto head = router.route({.method = "HEAD", .target = "/", .if_none_match = ""});
  CHECK(head.status == 200);
  CHECK(head.body.empty());
  CHECK(head.head_content_length == index.body.size());
}

TEST_CASE("a --web-root directory is served, and nothing outside it") {
  const auto root = std::filesystem::temp_directory_path() / "roomcast-http-test";
  std::filesystem::create_directories(root / "css");
  std::ofstream(root / "css" / "site.css") << "body{}";
  std::ofstream(root.parent_path() / "roomcast-secret.txt") << "secret";
  const http_router router({.web_root = root});
  const auto css = router.route({.method = "GET", .target = "/css/site.css", .if_none_match = ""});
  CHECK(css.status == 200);
  CHECK(css.body == "body{}");
  CHECK(css.content_type == "text/css; charset=utf-8");
  CHECK(router.route({.method = "GET", .target = "/../roomcast-secret.txt", .if_none_match = ""})
            .status
        == 400);
  CHECK(router.route({.method = "GET", .target = "/css", .if_none_match = ""}).status == 404);
  std::filesystem::remove_all(root);
}

TEST_CASE("dynamic endpoints come before files, and an admin router serves no files") {
  const http_router admin(
      {.serve_files = false, .endpoints = [](std::string_view path) -> std::optional<http_reply> {
         if (path != "/readyz") return std::nullopt;
         http_reply reply;
         reply.body = "ready\n";
         return reply;
       }});
  CHECK(admin.route({.method = "GET", .target = "/readyz", .if_none_match = ""}).body == "ready\n");
  CHECK(admin.route({.method = "GET", .target = "/healthz", .if_none_match = ""}).status == 200);
  CHECK(admin.route({.method = "GET", .target = "/", .if_none_match = ""}).status == 404);
  const auto head = admin.route({.method = "HEAD", .target = "/readyz", .if_none_match = ""});
  CHECK(head.status == 200);
  CHECK(head.body.empty());
}

TEST_CASE("regression (fuzz_http): every HEAD reply is bodiless, whatever its status") {
  const http_router router;
  for (const char* target : {"/healthz", "/..", "/missing"}) {
    INFO(target);
    const auto head = router.route({.method = "HEAD", .target = target, .if_none_match = ""});
    CHECK(head.body.empty());
    const auto get = router.route({.method = "GET", .target = target, .if_none_match = ""});
    CHECK(head.status == get.status);
    CHECK(head.head_content_length == get.body.size());
  }
}
