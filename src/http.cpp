#include "roomcast/http.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "roomcast/static_files.hpp"

namespace roomcast {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

http_reply plain(unsigned status, std::string body) {
  http_reply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

// Everything is revalidated by ETag on every use (a 304 costs one small round trip): the asset
// URLs carry no content hash, so a max-age could pair a new index.html with old modules.
std::string cache_policy() {
  return "no-cache";
}

// FNV-1a of the file's bytes: a cheap validator for files read from --web-root.
std::string etag_of(std::string_view bytes) {
  std::uint64_t hash = 1469598103934665603ULL;
  for (const unsigned char c : bytes)
    hash = (hash ^ c) * 1099511628211ULL;
  std::ostringstream out;
  out << '"' << std::hex << hash << '"';
  return out.str();
}

bool etag_matches(std::string_view if_none_match, std::string_view etag) {
  if (if_none_match == "*") return true;
  return !etag.empty() && if_none_match.find(etag) != std::string_view::npos;
}

}  // namespace

std::optional<std::string> sanitize_path(std::string_view target) {
  target = target.substr(0, target.find_first_of("?#"));
  if (target.empty() || target.front() != '/') return std::nullopt;
  std::string path;
  path.reserve(target.size());
  for (std::size_t i = 0; i < target.size(); ++i) {
    char c = target[i];
    if (c == '%') {
      if (i + 2 >= target.size()) return std::nullopt;
      const int high = hex_value(target[i + 1]);
      const int low = hex_value(target[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      c = static_cast<char>(high * 16 + low);
      i += 2;
    }
    if (c == '\0' || c == '\\') return std::nullopt;
    path += c;
  }
  // Reject "." and ".." segments after decoding, so "%2e%2e" is caught like "..".
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    const std::string_view segment = std::string_view(path).substr(start, end - start);
    if (segment == "." || segment == "..") return std::nullopt;
    start = end + 1;
  }
  return path;
}

std::string_view content_type_for(std::string_view path) noexcept {
  const auto dot = path.rfind('.');
  const std::string_view ext = dot == std::string_view::npos ? "" : path.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  if (ext == "txt") return "text/plain; charset=utf-8";
  if (ext == "webmanifest") return "application/manifest+json";
  return "application/octet-stream";
}

bool is_chat_endpoint(std::string_view target) noexcept {
  target = target.substr(0, target.find('?'));
  return target == "/" || target == "/ws";
}

http_router::http_router(options opts) : options_(std::move(opts)) {}

http_reply http_router::route(const http_request_view& request) const {
  // HEAD is GET without the body; the length of the body it would have had stays in the reply.
  if (request.method != "HEAD") return route_get(request);
  http_request_view as_get = request;
  as_get.method = "GET";
  auto reply = route_get(as_get);
  reply.head_content_length = reply.body.size();
  reply.body.clear();
  return reply;
}

http_reply http_router::route_get(const http_request_view& request) const {
  if (request.method != "GET") {
    auto reply = plain(405, "method not allowed\n");
    reply.allow = "GET, HEAD";
    return reply;
  }
  const auto path = sanitize_path(request.target);
  if (!path) return plain(400, "bad path\n");
  if (*path == "/healthz") return plain(200, "ok\n");
  if (options_.endpoints) {
    if (auto reply = options_.endpoints(*path)) return std::move(*reply);
  }
  if (!options_.serve_files) return plain(404, "not found\n");
  return serve_file(path->ends_with('/') ? *path + "index.html" : *path, request.if_none_match);
}

http_reply http_router::serve_file(const std::string& path, std::string_view if_none_match) const {
  http_reply reply;
  if (options_.web_root.empty()) {
    const auto files = embedded_files();
    const auto found =
        std::lower_bound(files.begin(), files.end(), path,
                         [](const embedded_file& f, const std::string& p) { return f.path < p; });
    if (found == files.end() || found->path != path) return plain(404, "not found\n");
    reply.body = found->body;
    reply.etag = found->etag;
  } else {
    // sanitize_path has removed every "." and ".." segment, so this stays under web_root_.
    const auto file = options_.web_root / std::filesystem::path(path).relative_path();
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) return plain(404, "not found\n");
    std::ifstream in(file, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    if (!in) return plain(404, "not found\n");
    reply.body = std::move(bytes).str();
    reply.etag = etag_of(reply.body);
  }
  reply.content_type = content_type_for(path);
  reply.cache_control = cache_policy();
  if (etag_matches(if_none_match, reply.etag)) {
    reply.status = 304;
    reply.body.clear();
  }
  return reply;
}

}  // namespace roomcast
