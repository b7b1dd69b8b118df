#pragma once
// The stub's embedded files, shared with fuzz_http.cpp so that it knows what may be served.
#include <string_view>

#include "roomcast/static_files.hpp"

namespace roomcast::fuzz {
inline constexpr std::string_view app_js_path = "/app.js";
inline constexpr std::string_view app_js_body = "export const room = 1234;\n";
inline constexpr std::string_view app_js_etag = "\"0123456789abcdef\"";
inline constexpr std::string_view index_path = "/index.html";
inline constexpr std::string_view index_body = "<!doctype html><title>roomcast</title>\n";
inline constexpr std::string_view index_etag = "\"fedcba9876543210\"";
}  // namespace roomcast::fuzz
