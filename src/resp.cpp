#include "roomcast/resp.hpp"

#include <algorithm>
#include <charconv>
#include <climits>
#include <hiredis/hiredis.h>
#include <hiredis/read.h>
#include <new>
#include <stdexcept>
#include <utility>

namespace roomcast::redis {
namespace {

// --- URLs ---------------------------------------------------------------------------------------

// A decimal number of at most `max`: digits only (no sign, no spaces), not empty.
std::optional<long long> decimal(std::string_view text, long long max) {
  if (text.empty()
      || !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  long long value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || value > max) return std::nullopt;
  return value;
}

bool host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'
         || c == '.' || c == '_';
}

bool ipv6_char(char c) {
  return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || (c >= '0' && c <= '9') || c == ':'
         || c == '.';
}

// sockaddr_un::sun_path holds 108 bytes on Linux, its terminating NUL included.
constexpr std::size_t max_unix_path = 107;

std::variant<endpoint, std::string> parse_unix(std::string_view rest) {
  if (rest.empty() || rest.front() != '/') {
    return std::string("a unix socket path must be absolute: unix:///path/to/redis.sock");
  }
  endpoint out;
  const auto query = rest.find('?');
  const std::string_view path = rest.substr(0, query);
  if (path.size() < 2) return std::string("the unix socket path is empty");
  if (path.size() > max_unix_path)
    return std::string("the unix socket path is longer than 107 bytes");
  out.unix_path = std::string(path);
  if (query != std::string_view::npos) {
    const std::string_view parameter = rest.substr(query + 1);
    if (!parameter.starts_with("db=")) {
      return std::string("the only query parameter of a unix:// URL is db=N");
    }
    const auto db = decimal(parameter.substr(3), INT_MAX);
    if (!db) return std::string("db is not a number from 0 to 2147483647");
    out.db = static_cast<int>(*db);
  }
  return out;
}

std::variant<endpoint, std::string> parse_tcp(std::string_view rest) {
  const auto slash = rest.find('/');
  const std::string_view authority = rest.substr(0, slash);
  if (authority.find('@') != std::string_view::npos) {
    return std::string("credentials in the URL are not supported (no AUTH)");
  }
  if (rest.find_first_of("?#") != std::string_view::npos) {
    return std::string("a redis:// URL takes no query or fragment: redis://host[:port][/db]");
  }
  endpoint out;
  std::string_view port;
  bool has_port = false;
  if (authority.starts_with('[')) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::string("an IPv6 address lacks its ']'");
    const std::string_view host = authority.substr(1, close - 1);
    if (host.empty() || !std::all_of(host.begin(), host.end(), ipv6_char)) {
      return std::string("not an IPv6 address between [ and ]");
    }
    out.host = std::string(host);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::string("unexpected characters after ']'");
      port = after.substr(1);
      has_port = true;
    }
  } else {
    const auto colon = authority.find(':');
    const std::string_view host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
      if (port.find(':') != std::string_view::npos) {
        return std::string("an IPv6 address must be written in brackets: redis://[::1]:6379");
      }
    }
    if (host.empty()) return std::string("the host is empty");
    if (!std::all_of(host.begin(), host.end(), host_char)) {
      return std::string("the host has characters a host name cannot have");
    }
    out.host = std::string(host);
  }
  if (has_port) {
    const auto number = decimal(port, 65535);
    if (!number || *number == 0) return std::string("the port is not a number from 1 to 65535");
    out.port = static_cast<std::uint16_t>(*number);
  }
  if (slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) {
      const auto number = decimal(db, INT_MAX);
      if (!number)
        return std::string("the db (after the '/') is not a number from 0 to 2147483647");
      out.db = static_cast<int>(*number);
    }
  }
  return out;
}

// --- hiredis reader callbacks -----------------------------------------------------------------

// hiredis calls these as it parses, parent before children, children in order. The root reply
// is allocated here and handed over by redisReaderGetReply (or freed by hiredis through
// free_object on an error); every other reply lives in its parent's `elements`. An array's
// elements are appended as they arrive, not allocated up front from its header. Returning null
// makes hiredis stop with an error; an exception must not cross the C code.
void* place(const redisReadTask* task, reply value) noexcept {
  try {
    if (task->parent == nullptr) return new reply(std::move(value));
    auto* parent = static_cast<reply*>(task->parent->obj);
    // Children come in order; anything else would be a hiredis bug, refused rather than trusted.
    if (parent == nullptr || parent->type != reply::kind::array || task->idx < 0
        || static_cast<std::size_t>(task->idx) != parent->elements.size()) {
      return nullptr;
    }
    parent->elements.push_back(std::move(value));
    return &parent->elements.back();
  } catch (...) {
    return nullptr;
  }
}

void* create_string(const redisReadTask* task, char* str, std::size_t len) {
  reply value;
  switch (task->type) {
    case REDIS_REPLY_STATUS:
      value.type = reply::kind::status;
      break;
    case REDIS_REPLY_ERROR:
      value.type = reply::kind::error;
      break;
    default:
      value.type = reply::kind::string;
      break;
  }
  try {
    value.str.assign(str, len);
  } catch (...) {
    return nullptr;
  }
  return place(task, std::move(value));
}

void* create_array(const redisReadTask* task, int elements) {
  reply value;
  value.type = reply::kind::array;
  auto* placed = static_cast<reply*>(place(task, std::move(value)));
  if (placed == nullptr) return nullptr;
  try {
    // A modest start: the header's count is the server's word, the elements are what it sends.
    placed->elements.reserve(static_cast<std::size_t>(std::clamp(elements, 0, 64)));
  } catch (...) {
    // Not reserving costs nothing but speed.
  }
  return placed;
}

void* create_integer(const redisReadTask* task, long long integer) {
  reply value;
  value.type = reply::kind::integer;
  value.integer = integer;
  return place(task, std::move(value));
}

void* create_nil(const redisReadTask* task) {
  return place(task, reply{});
}

// Only ever called on a root reply (one place() allocated with new).
void free_object(void* object) {
  delete static_cast<reply*>(object);
}

redisReplyObjectFunctions owning_replies = {create_string, create_array, create_integer, create_nil,
                                            free_object};

}  // namespace

std::variant<endpoint, std::string> parse_url(std::string_view url) {
  constexpr std::string_view redis_scheme = "redis://";
  constexpr std::string_view unix_scheme = "unix://";
  if (url.starts_with(redis_scheme)) return parse_tcp(url.substr(redis_scheme.size()));
  if (url.starts_with(unix_scheme)) return parse_unix(url.substr(unix_scheme.size()));
  if (url.starts_with("rediss://")) return std::string("rediss:// (TLS) is not supported");
  return std::string("not a Redis URL: redis://host[:port][/db] or unix:///path[?db=N]");
}

std::string format_command(std::span<const std::string_view> args) {
  if (args.size() > static_cast<std::size_t>(INT_MAX)) throw std::length_error("too many args");
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto arg : args) {
    argv.push_back(arg.empty() ? "" : arg.data());
    lengths.push_back(arg.size());
  }
  char* formatted = nullptr;
  const int size = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()), argv.data(),
                                          lengths.data());
  if (size < 0 || formatted == nullptr) throw std::bad_alloc();
  std::string out(formatted, static_cast<std::size_t>(size));
  redisFreeCommand(formatted);
  return out;
}

std::string format_command(std::span<const std::string> args) {
  std::vector<std::string_view> views(args.begin(), args.end());
  return format_command(std::span<const std::string_view>(views));
}

void reply_parser::free_reader::operator()(redisReader* reader) const noexcept {
  redisReaderFree(reader);
}

reply_parser::reply_parser(std::size_t max_buffered)
    : reader_(redisReaderCreateWithFunctions(&owning_replies)), max_buffered_(max_buffered) {
  if (!reader_) throw std::bad_alloc();
}

reply_parser::~reply_parser() = default;
reply_parser::reply_parser(reply_parser&& other) noexcept = default;
reply_parser& reply_parser::operator=(reply_parser&& other) noexcept = default;

void reply_parser::fail(std::string why) {
  error_ = std::move(why);
  if (error_.empty()) error_ = "protocol error";
  reader_.reset();  // its buffer and any partial reply go at once
}

void reply_parser::feed(std::string_view bytes) {
  if (failed() || !reader_ || bytes.empty()) return;
  if (redisReaderFeed(reader_.get(), bytes.data(), bytes.size()) != REDIS_OK) {
    fail(reader_->errstr);
  }
}

std::optional<reply> reply_parser::next() {
  if (failed() || !reader_) return std::nullopt;  // failed, or moved from
  void* parsed = nullptr;
  if (redisReaderGetReply(reader_.get(), &parsed) != REDIS_OK) {
    fail(reader_->errstr);
    return std::nullopt;
  }
  if (parsed == nullptr) {
    if (buffered() > max_buffered_) {
      fail("an incomplete reply is larger than " + std::to_string(max_buffered_) + " bytes");
    }
    return std::nullopt;
  }
  const std::unique_ptr<reply> owned(static_cast<reply*>(parsed));
  return std::move(*owned);
}

std::size_t reply_parser::buffered() const noexcept {
  if (!reader_ || reader_->buf == nullptr) return 0;
  return reader_->len - reader_->pos;
}

}  // namespace roomcast::redis
