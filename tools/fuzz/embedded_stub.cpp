// Stands in for the embedded_web.cpp that cmake/embed_files.cmake generates from web/: two small
// files, sorted by path as the real one is, so fuzz_http does not depend on the root build.
#include "fuzz_embedded.hpp"

namespace roomcast {
namespace {
const embedded_file files[] = {
    {fuzz::app_js_path, fuzz::app_js_body, fuzz::app_js_etag},
    {fuzz::index_path, fuzz::index_body, fuzz::index_etag},
};
}  // namespace

std::span<const embedded_file> embedded_files() noexcept {
  return files;
}
}  // namespace roomcast
