#pragma once
/** @file
 * The plain-HTTP side of the server as a pure function: a request's method and target become a
 * response. Static files come from the embedded client or from --web-root. No sockets here.
 */
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace roomcast {

struct http_request_view {
  std::string_view method;
  std::string_view target;         ///< as sent: path, optional query
  std::string_view if_none_match;  ///< the If-None-Match header, or empty
};

struct http_reply {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string cache_control = "no-store";
  std::string etag;   ///< empty: none
  std::string allow;  ///< for 405
  /** For HEAD: the Content-Length the GET body would have had (`body` is empty). */
  std::optional<std::size_t> head_content_length;
};

/** The URL path of `target` made safe: the query dropped, percent-escapes decoded, and nullopt
 * when it is not absolute, holds a NUL, a backslash, or a "." or ".." segment. */
std::optional<std::string> sanitize_path(std::string_view target);

/** The MIME type for a file name's extension. */
std::string_view content_type_for(std::string_view path) noexcept;

/** Whether an upgrade request to `target` is for the chat (the seed's client uses "/"). */
bool is_chat_endpoint(std::string_view target) noexcept;

/** Answers a path the server computes (/readyz, /metrics), or nullopt to pass it on. */
using dynamic_endpoints = std::function<std::optional<http_reply>(std::string_view path)>;

/** Serves /healthz, the server's dynamic endpoints, and static files. Thread-safe: it only
 * reads after construction. */
class http_router {
 public:
  struct options {
    std::filesystem::path web_root;  ///< empty: the files embedded in the binary
    bool serve_files = true;         ///< false: an admin port, with no browser client
    dynamic_endpoints endpoints;     ///< may be empty
  };

  http_router() : http_router(options{}) {}
  explicit http_router(options opts);

  http_reply route(const http_request_view& request) const;

 private:
  http_reply route_get(const http_request_view& request) const;
  http_reply serve_file(const std::string& path, std::string_view if_none_match) const;
  options options_;
};

}  // namespace roomcast
