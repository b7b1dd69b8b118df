// fuzz_http: request targets through roomcast::sanitize_path and http_router::route, against the
// stub's embedded files (embedded_stub.cpp), against a --web-root in a temporary directory that
// has a secret file next to it, which must never be served, and as an admin port (no files, one
// dynamic endpoint).
//
// Input: byte 0 picks the method (bits 0-2) and the If-None-Match header (bits 3-5); the rest is
// the target. With If-None-Match choice 5 the rest is "<if-none-match>\n<target>".
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "roomcast/http.hpp"

#include "fuzz_check.hpp"
#include "fuzz_embedded.hpp"

using namespace roomcast;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view secret = "SECRET: outside the web root\n";

struct web_root {
  fs::path base;                             // holds www/ (the root) and secret.txt
  std::map<std::string, std::string> files;  // "/sub/page.txt" -> content, under www/
};

web_root* root = nullptr;

void write_file(const fs::path& path, std::string_view content) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

void make_web_root() {
  char pattern[] = "/tmp/roomcast-fuzz-http-XXXXXX";
  const char* made = ::mkdtemp(pattern);
  FUZZ_CHECK(made != nullptr, "mkdtemp failed");
  root = new web_root{fs::path(made), {}};
  root->files = {{"/index.html", "<p>root index</p>\n"},
                 {"/sub/page.txt", "a page\n"},
                 {"/sub/index.html", "<p>sub index</p>\n"},
                 {"/a b%.css", "body{}\n"}};
  for (const auto& [path, content] : root->files)
    write_file(root->base / "www" / fs::path(path).relative_path(), content);
  write_file(root->base / "secret.txt", secret);
  write_file(root->base / "www-secret.txt", secret);
  std::atexit([] {
    std::error_code ec;
    fs::remove_all(root->base, ec);
  });
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// docs/protocol.md and http.hpp, written again: query and fragment dropped, %XX decoded (a
// broken escape refused), then refused when not absolute, with NUL, backslash, "." or "..".
std::optional<std::string> reference_sanitize(std::string_view target) {
  if (const auto cut = target.find_first_of("?#"); cut != std::string_view::npos)
    target = target.substr(0, cut);
  if (target.empty() || target[0] != '/') return std::nullopt;
  std::string path;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] != '%') {
      path += target[i];
      continue;
    }
    if (target.size() - i < 3) return std::nullopt;
    const int high = hex_digit(target[i + 1]);
    const int low = hex_digit(target[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    path += static_cast<char>(high * 16 + low);
    i += 2;
  }
  if (path.find('\0') != std::string::npos || path.find('\\') != std::string::npos)
    return std::nullopt;
  std::size_t start = 1;
  for (;;) {
    const std::size_t slash = path.find('/', start);
    const std::string_view segment =
        std::string_view(path).substr(start, slash == std::string::npos ? slash : slash - start);
    if (segment == "." || segment == "..") return std::nullopt;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return path;
}

// What a sanitized path must be.
void check_safe(std::string_view path) {
  FUZZ_CHECK(!path.empty() && path.front() == '/', "not absolute: ", path);
  FUZZ_CHECK(path.find('\0') == std::string_view::npos, "NUL in a sanitized path");
  FUZZ_CHECK(path.find('\\') == std::string_view::npos, "backslash in a sanitized path");
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view segment = path.substr(start, end - start);
    FUZZ_CHECK(segment != "." && segment != "..", "dot segment in ", path);
    start = end + 1;
  }
}

void check_sanitized(std::string_view target, const std::optional<std::string>& path) {
  const auto reference = reference_sanitize(target);
  FUZZ_CHECK(path == reference, "sanitize_path disagrees with the documented rule: ",
             path ? "'" + *path + "'" : std::string("refused"), " vs ",
             reference ? "'" + *reference + "'" : std::string("refused"));
  if (path) check_safe(*path);
}

// A reply to HEAD has no body (RFC 9110, 9.3.2): the session sends reply.body with its
// Content-Length, so a body here is written after the header and desynchronizes a keep-alive
// client, which reads it as the start of the next response.
void check_head(const http_request_view& request, const http_reply& reply,
                const std::optional<std::string>& path, const char* router) {
  if (request.method != "HEAD" || reply.body.empty()) return;
  // Found by this target (tools/fuzz/regressions/fuzz_http/): route cleared the body for HEAD
  // only on file and endpoint replies, not on its early returns.
  FUZZ_FAIL(router, ": HEAD ", request.target, " (", path ? *path : "refused", ") answered ",
            reply.status, " with a body of ", reply.body.size(), " bytes: '", reply.body, "'");
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  return if_none_match == "*" || if_none_match.find(etag) != std::string_view::npos;
}

// The embedded router: every answer is predictable from the stub's two files.
void check_embedded(const http_router& router, const http_request_view& request,
                    const std::optional<std::string>& path) {
  const http_reply reply = router.route(request);
  check_head(request, reply, path, "embedded");
  const bool head = request.method == "HEAD";
  if (request.method != "GET" && !head) {
    FUZZ_CHECK(reply.status == 405 && reply.allow == "GET, HEAD", "method: ", reply.status);
    return;
  }
  if (!path) {
    FUZZ_CHECK(reply.status != 200 && reply.status != 304, "status ", reply.status,
               " for a path sanitize_path refuses");
    FUZZ_CHECK(reply.status == 400, "refused path: ", reply.status);
    return;
  }
  if (*path == "/healthz") {
    FUZZ_CHECK(reply.status == 200, "healthz: ", reply.status);
    FUZZ_CHECK(head || reply.body == "ok\n", "healthz body: ", reply.body);
    return;
  }
  const std::string served = path->ends_with('/') ? *path + "index.html" : *path;
  std::optional<embedded_file> file;
  for (const auto& f : embedded_files()) {
    if (f.path == served) file = f;
  }
  if (!file) {
    FUZZ_CHECK(reply.status == 404, "status ", reply.status, " for missing file ", served);
    return;
  }
  const bool not_modified = etag_matches(request.if_none_match, file->etag);
  FUZZ_CHECK(reply.status == (not_modified ? 304u : 200u), "status ", reply.status, " for ",
             served);
  FUZZ_CHECK(reply.etag == file->etag, "etag of ", served);
  FUZZ_CHECK(reply.content_type == content_type_for(served), "content type of ", served);
  const bool empty = head || not_modified;
  FUZZ_CHECK(reply.body == (empty ? std::string_view{} : file->body), "body of ", served);
}

// The --web-root router: what it serves is one of the files under www/, never the secret.
void check_web_root(const http_router& router, const http_request_view& request,
                    const std::optional<std::string>& path) {
  const http_reply reply = router.route(request);
  check_head(request, reply, path, "web root");
  FUZZ_CHECK(reply.body.find("SECRET") == std::string::npos,
             "a file outside the web root was served for ", request.target);
  if (reply.status != 200 && reply.status != 304) return;
  FUZZ_CHECK(path.has_value(), "status ", reply.status, " for a path sanitize_path refuses");
  if (*path == "/healthz") return;
  // Repeated slashes are the only difference the file system may make.
  std::string served = path->ends_with('/') ? *path + "index.html" : *path;
  std::string collapsed;
  for (const char c : served) {
    if (!(c == '/' && !collapsed.empty() && collapsed.back() == '/')) collapsed += c;
  }
  const auto known = root->files.find(collapsed);
  FUZZ_CHECK(known != root->files.end(), "served ", served, ", which is not a file under www/");
  if (reply.status == 200 && request.method == "GET") {
    FUZZ_CHECK(reply.body == known->second, "body of ", served);
  }
}

// The admin port: no files, /metrics from a dynamic endpoint, which only ever sees sanitized
// paths.
std::optional<http_reply> admin_endpoint(std::string_view path) {
  check_safe(path);  // only sanitized paths reach an endpoint
  if (path != "/metrics") return std::nullopt;
  http_reply reply;
  reply.body = "requests 1\n";
  return reply;
}

void check_admin(const http_router& router, const http_request_view& request,
                 const std::optional<std::string>& path) {
  const http_reply reply = router.route(request);
  check_head(request, reply, path, "admin");
  const bool head = request.method == "HEAD";
  if (request.method != "GET" && !head) {
    FUZZ_CHECK(reply.status == 405, "admin: method: ", reply.status);
    return;
  }
  if (!path) {
    FUZZ_CHECK(reply.status == 400, "admin: status ", reply.status, " for a refused path");
    return;
  }
  if (*path == "/healthz" || *path == "/metrics") {
    FUZZ_CHECK(reply.status == 200, "admin: ", *path, ": ", reply.status);
    return;
  }
  FUZZ_CHECK(reply.status == 404, "admin: status ", reply.status, " for ", *path,
             " on a port that serves no files");
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  make_web_root();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const http_router embedded;
  static const http_router from_disk(http_router::options{.web_root = root->base / "www"});
  static const http_router admin(
      http_router::options{.serve_files = false, .endpoints = admin_endpoint});

  constexpr std::string_view methods[] = {"GET", "HEAD", "GET", "POST", "get", "", "HEAD ", "GET"};
  const std::string_view method = methods[data[0] & 7];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string_view if_none_match;
  switch ((data[0] >> 3) & 7) {
    case 1:
      if_none_match = "*";
      break;
    case 2:
      if_none_match = fuzz::app_js_etag;
      break;
    case 3:
      if_none_match = fuzz::index_etag;
      break;
    case 4:
      if_none_match = "W/\"0123456789abcdef\", \"fedcba9876543210\"";
      break;
    case 5:
      if (const auto newline = rest.find('\n'); newline != std::string_view::npos) {
        if_none_match = rest.substr(0, newline);
        rest.remove_prefix(newline + 1);
      }
      break;
    default:
      break;
  }
  const std::string_view target = rest;

  const auto path = sanitize_path(target);
  check_sanitized(target, path);
  (void)is_chat_endpoint(target);
  (void)content_type_for(target);

  const http_request_view request{method, target, if_none_match};
  check_embedded(embedded, request, path);
  check_web_root(from_disk, request, path);
  check_admin(admin, request, path);
  return 0;
}
