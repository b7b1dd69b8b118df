#pragma once
/** @file
 * The browser client's files, compiled into the binary by cmake/EmbedWeb.cmake.
 */
#include <span>
#include <string_view>

namespace roomcast {

/** One file of web/, addressed by its URL path ("/index.html"). */
struct embedded_file {
  std::string_view path;
  std::string_view body;
  std::string_view etag;  ///< quoted content hash, usable as an HTTP ETag as it is
};

/** Every embedded file, sorted by path. */
std::span<const embedded_file> embedded_files() noexcept;

}  // namespace roomcast
