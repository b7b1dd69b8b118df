#include "roomcast/config.hpp"

#include <algorithm>
#include <charconv>
#include <sstream>
#include <string_view>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include "roomcast/resp.hpp"

namespace roomcast {
namespace {

// Parses `text` as an integer in [low, high]; nullopt on anything else ("12x", "", overflow).
template <class Int>
std::optional<Int> parse_int(std::string_view text, long long low, long long high) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < low || value > high) {
    return std::nullopt;
  }
  return static_cast<Int>(value);
}

std::optional<log_level> parse_level(std::string_view text) {
  if (text == "debug") return log_level::debug;
  if (text == "info") return log_level::info;
  if (text == "warn") return log_level::warn;
  if (text == "error") return log_level::error;
  if (text == "off") return log_level::off;
  return std::nullopt;
}

// Where a setting is stored: a member of config, or a member of one of its option parts.
template <class T>
auto in(T config::*field) {
  return [field](config& c) -> T& { return c.*field; };
}
template <class Part, class T>
auto in(Part config::*part, T Part::*field) {
  return [part, field](config& c) -> T& { return c.*part.*field; };
}

// One setting: its flag, its environment variable, its help, and how to store a value. `apply`
// returns an error message describing the expected value, or an empty string. A repeatable flag
// adds to a list; `reset` empties that list, so that flags replace what the environment set.
struct option {
  std::string_view flag;
  std::string_view env;
  std::string_view value_name;
  std::string_view help;
  std::function<std::string(config&, std::string_view)> apply;
  std::function<void(config&)> reset = {};
};

template <class Field>
std::function<std::string(config&, std::string_view)> integer(Field field, long long low,
                                                              long long high) {
  return [=](config& c, std::string_view text) -> std::string {
    using Int = std::remove_reference_t<decltype(field(c))>;
    const auto value = parse_int<Int>(text, low, high);
    if (!value) {
      return "expected an integer from " + std::to_string(low) + " to " + std::to_string(high);
    }
    field(c) = *value;
    return {};
  };
}

template <class Field>
std::function<std::string(config&, std::string_view)> decimal(Field field) {
  return [=](config& c, std::string_view text) -> std::string {
    double value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size() || !(value >= 0 && value <= 1e6)) {
      return "expected a number from 0 to 1000000";
    }
    field(c) = value;
    return {};
  };
}

template <class Field>
std::function<std::string(config&, std::string_view)> millis(Field field) {
  return [=](config& c, std::string_view text) -> std::string {
    const auto value = parse_int<long long>(text, 1, 86'400'000);
    if (!value) return "expected milliseconds from 1 to 86400000";
    field(c) = std::chrono::milliseconds(*value);
    return {};
  };
}

const std::vector<option>& options() {
  static const std::vector<option> all = {
      {"--host", "ROOMCAST_HOST", "ADDR", "address to listen on (0.0.0.0 in a container)",
       [](config& c, std::string_view v) -> std::string {
         if (v.empty()) return "expected an IP address";
         c.host = v;
         return {};
       }},
      {"--port", "ROOMCAST_PORT", "N", "TCP port; 0 picks a free one (env PORT works too)",
       integer(in(&config::port), 0, 65535)},
      {"--threads", "ROOMCAST_THREADS", "N",
       "threads, each running an io_context of its own (default: number of cores)",
       integer(in(&config::threads), 1, 256)},
      {"--web-root", "ROOMCAST_WEB_ROOT", "DIR",
       "serve the browser client from DIR instead of the embedded copy",
       [](config& c, std::string_view v) -> std::string {
         if (v.empty()) return "expected a directory";
         c.web_root = v;
         return {};
       }},
      {"--max-text", "ROOMCAST_MAX_TEXT", "N", "longest chat message, in characters",
       integer(in(&config::session, &session_options::max_text), 1, 100'000)},
      {"--max-frame", "ROOMCAST_MAX_FRAME", "BYTES",
       "largest WebSocket message a client may send (bigger: close 1009)",
       integer(in(&config::session, &session_options::max_frame), 256, 16 * 1024 * 1024)},
      {"--outbox", "ROOMCAST_OUTBOX", "FRAMES",
       "frames queued for one client before it counts as a slow consumer",
       integer(in(&config::session, &session_options::outbox_frames), 1, 1'000'000)},
      {"--room-inbox", "ROOMCAST_ROOM_INBOX", "EVENTS",
       "events queued for one room before senders wait",
       integer(in(&config::hub, &hub_options::room_inbox), 1, 1'000'000)},
      {"--room-shards", "ROOMCAST_ROOM_SHARDS", "N",
       "strands the rooms are spread over, by room number (default: 4 per thread)",
       integer(in(&config::hub, &hub_options::shards), 1, 10'000)},
      {"--fanout-threshold", "ROOMCAST_FANOUT_THRESHOLD", "N",
       "a room of more members hands its broadcasts to fan-out lanes on every thread",
       integer(in(&config::hub, &hub_options::fanout_threshold), 1, 1'000'000)},
      {"--fanout-lanes", "ROOMCAST_FANOUT_LANES", "N",
       "fan-out lanes of such a room (default 0: one per thread)",
       integer(in(&config::hub, &hub_options::fanout_lanes), 0, 1024)},
      {"--history", "ROOMCAST_HISTORY", "EVENTS",
       "events each room keeps for history and resume (0: neither is offered)",
       integer(in(&config::hub, &hub_options::history_events), 0, 100'000)},
      {"--history-bytes", "ROOMCAST_HISTORY_BYTES", "BYTES",
       "cap on the kept events of one room, in bytes of JSON",
       integer(in(&config::hub, &hub_options::history_bytes), 1024, 64 * 1024 * 1024)},
      {"--resume-grace", "ROOMCAST_RESUME_GRACE", "MS",
       "how long a dropped member that asked for resume keeps its seat",
       millis(in(&config::hub, &hub_options::resume_grace))},
      {"--send-buffer", "ROOMCAST_SEND_BUFFER", "BYTES",
       "SO_SNDBUF of client sockets (0: kernel default)",
       integer(in(&config::session, &session_options::send_buffer), 0, 64 * 1024 * 1024)},
      {"--handshake-timeout", "ROOMCAST_HANDSHAKE_TIMEOUT", "MS",
       "time to send an HTTP request or complete the upgrade",
       millis(in(&config::session, &session_options::handshake_timeout))},
      {"--idle-timeout", "ROOMCAST_IDLE_TIMEOUT", "MS",
       "checked every half of it: silence since the last check gets a ping, then a close",
       millis(in(&config::session, &session_options::idle_timeout))},
      {"--close-timeout", "ROOMCAST_CLOSE_TIMEOUT", "MS",
       "time a closing client gets to take its last frames and close frame",
       millis(in(&config::session, &session_options::close_timeout))},
      {"--drain-timeout", "ROOMCAST_DRAIN_TIMEOUT", "MS",
       "on SIGTERM/SIGINT, time for all clients to close before the process exits",
       millis(in(&config::drain_timeout))},
      {"--rate-limit", "ROOMCAST_RATE_LIMIT", "PER_SEC",
       "frames of any kind a client may send per second (0: unlimited); "
       "beyond it text gets error 4009, a ping no pong",
       decimal(in(&config::session, &session_options::rate_limit))},
      {"--rate-burst", "ROOMCAST_RATE_BURST", "N", "frames a client may send at once",
       decimal(in(&config::session, &session_options::rate_burst))},
      {"--flood-limit", "ROOMCAST_FLOOD_LIMIT", "N",
       "refused frames (refilled one per second) before the client is closed with 1008",
       integer(in(&config::session, &session_options::flood_limit), 1, 1'000'000)},
      {"--max-connections", "ROOMCAST_MAX_CONNECTIONS", "N",
       "open connections; beyond it new ones get HTTP 503",
       integer(in(&config::max_connections), 1, 10'000'000)},
      {"--max-connections-per-ip", "ROOMCAST_MAX_CONNECTIONS_PER_IP", "N",
       "open connections from one client address; beyond it HTTP 503",
       integer(in(&config::max_connections_per_ip), 1, 10'000'000)},
      {"--proxy-protocol", "ROOMCAST_PROXY_PROTOCOL", "on|off",
       "connections from a --trusted-proxy must begin with a PROXY protocol header (v1 or v2) "
       "naming the client; a header from any other address is refused",
       [](config& c, std::string_view v) -> std::string {
         if (v != "on" && v != "off") return "expected on or off";
         c.session.proxy.protocol = v == "on";
         return {};
       }},
      {"--trusted-proxy", "ROOMCAST_TRUSTED_PROXY", "CIDR[,CIDR...]",
       "repeatable: proxies whose PROXY header or X-Forwarded-For names the client; "
       "default: none",
       [](config& c, std::string_view v) -> std::string {
         std::string error;
         auto networks = proxy::parse_cidr_list(v, error);
         if (!networks) return error;
         auto trusted = c.session.proxy.trusted.networks();
         trusted.insert(trusted.end(), networks->begin(), networks->end());
         c.session.proxy.trusted = proxy::trusted_proxies(std::move(trusted));
         return {};
       },
       [](config& c) { c.session.proxy.trusted = {}; }},
      {"--max-rooms", "ROOMCAST_MAX_ROOMS", "N", "rooms at once; beyond it create gets 5005",
       integer(in(&config::hub, &hub_options::max_rooms), 1, 10'000)},
      {"--max-members", "ROOMCAST_MAX_MEMBERS", "N",
       "members of one room; beyond it join gets 5003",
       integer(in(&config::hub, &hub_options::max_members), 1, 1'000'000)},
      {"--allowed-origin", "ROOMCAST_ALLOWED_ORIGINS", "ORIGIN",
       "repeatable (env: comma-separated): only pages from these origins may open a WebSocket; "
       "default: any",
       [](config& c, std::string_view v) -> std::string {
         for (std::size_t start = 0; start <= v.size();) {
           const auto end = std::min(v.find(',', start), v.size());
           const auto origin = v.substr(start, end - start);
           if (origin.empty()) return "expected an origin such as https://chat.example.com";
           c.session.allowed_origins.emplace_back(origin);
           start = end + 1;
         }
         return {};
       },
       [](config& c) { c.session.allowed_origins.clear(); }},
      {"--admin-port", "ROOMCAST_ADMIN_PORT", "N",
       "serve /readyz and /metrics on this port only (0: any free port); default: the main port",
       integer(in(&config::admin_port), 0, 65535)},
      {"--metrics", "ROOMCAST_METRICS", "on|off", "serve Prometheus metrics at /metrics",
       [](config& c, std::string_view v) -> std::string {
         if (v != "on" && v != "off") return "expected on or off";
         c.metrics = v == "on";
         return {};
       }},
      {"--log-format", "ROOMCAST_LOG_FORMAT", "FORMAT", "text, or json (one object per line)",
       [](config& c, std::string_view v) -> std::string {
         if (v != "text" && v != "json") return "expected text or json";
         c.format = v == "json" ? log_format::json : log_format::text;
         return {};
       }},
      {"--log-level", "ROOMCAST_LOG_LEVEL", "LEVEL", "debug, info, warn, error or off",
       [](config& c, std::string_view v) -> std::string {
         const auto level = parse_level(v);
         if (!level) return "expected debug, info, warn, error or off";
         c.level = *level;
         return {};
       }},
      {"--redis", "ROOMCAST_REDIS", "URL",
       "cluster mode: rooms span every node on this Redis (redis://host:port[/db] or "
       "unix:///path); default: a single node, no Redis",
       [](config& c, std::string_view v) -> std::string {
         const auto parsed = redis::parse_url(v);
         if (const auto* why = std::get_if<std::string>(&parsed)) return *why;
         c.cluster.redis_url = v;
         return {};
       }},
      {"--node-id", "ROOMCAST_NODE_ID", "ID",
       "cluster mode: this node's name, 1-64 of A-Z a-z 0-9 _ - (default: random per start)",
       [](config& c, std::string_view v) -> std::string {
         const auto allowed = [](char ch) {
           return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
                  || ch == '_' || ch == '-';
         };
         if (v.empty() || v.size() > 64 || !std::all_of(v.begin(), v.end(), allowed)) {
           return "expected 1 to 64 characters among A-Z a-z 0-9 _ -";
         }
         c.cluster.node_id = v;
         return {};
       }},
      {"--node-timeout", "ROOMCAST_NODE_TIMEOUT", "MS",
       "cluster mode: a node silent this long is taken for dead and its members leave",
       [](config& c, std::string_view v) -> std::string {
         const auto value = parse_int<long long>(v, 300, 600'000);
         if (!value) return "expected milliseconds from 300 to 600000";
         c.cluster.node_timeout = std::chrono::milliseconds(*value);
         return {};
       }},
      {"--log-queue", "ROOMCAST_LOG_QUEUE", "LINES",
       "log lines waiting for stderr (the log thread) before more are dropped and counted",
       integer(in(&config::log_queue_lines), 1, 1'000'000)},
  };
  return all;
}

std::string help_text() {
  std::ostringstream out;
  const config defaults;
  out << "usage: roomcast [options]\n\n"
         "A multi-room WebSocket chat server. Every option can also be set through the\n"
         "environment variable shown; a flag wins over the environment.\n\n";
  for (const auto& o : options()) {
    std::string left = std::string(o.flag) + " " + std::string(o.value_name);
    left.resize(std::max<std::size_t>(left.size() + 1, 28), ' ');
    out << "  " << left << o.help << "\n  " << std::string(30, ' ') << "[env " << o.env << "]\n";
  }
  out << "  --help                      this text\n"
         "  --version                   the version\n\n"
         "defaults: "
      << defaults.summary() << "\n";
  return out.str();
}

config_result fail(const std::string& message) {
  return {std::nullopt, "roomcast: " + message + " (see --help)", 2};
}

}  // namespace

std::string config::summary() const {
  const auto& s = session;
  std::ostringstream out;
  out << "host=" << host << " port=" << port << " threads=" << threads
      << " web_root=" << (web_root.empty() ? "(embedded)" : web_root) << " max_text=" << s.max_text
      << " max_frame=" << s.max_frame << " outbox=" << s.outbox_frames
      << " room_inbox=" << hub.room_inbox << " room_shards=" << hub.shards
      << " fanout_threshold=" << hub.fanout_threshold << " fanout_lanes=" << hub.fanout_lanes
      << " history=" << hub.history_events << " history_bytes=" << hub.history_bytes
      << " resume_grace_ms=" << hub.resume_grace.count() << " send_buffer=" << s.send_buffer
      << " handshake_timeout_ms=" << s.handshake_timeout.count()
      << " idle_timeout_ms=" << s.idle_timeout.count()
      << " close_timeout_ms=" << s.close_timeout.count()
      << " drain_timeout_ms=" << drain_timeout.count() << " rate_limit=" << s.rate_limit
      << " rate_burst=" << s.rate_burst << " flood_limit=" << s.flood_limit
      << " max_connections=" << max_connections
      << " max_connections_per_ip=" << max_connections_per_ip
      << " proxy_protocol=" << (s.proxy.protocol ? "on" : "off")
      << " trusted_proxy=" << s.proxy.trusted.to_string() << " max_rooms=" << hub.max_rooms
      << " max_members=" << hub.max_members
      << " admin_port=" << (admin_port < 0 ? std::string("(main)") : std::to_string(admin_port))
      << " metrics=" << (metrics ? "on" : "off")
      << " log_format=" << (format == log_format::json ? "json" : "text")
      << " log_queue=" << log_queue_lines
      << " redis=" << (cluster.redis_url.empty() ? std::string("(none)") : cluster.redis_url)
      << " node_id=" << (cluster.node_id.empty() ? std::string("(random)") : cluster.node_id)
      << " node_timeout_ms=" << cluster.node_timeout.count() << " allowed_origins=";
  if (s.allowed_origins.empty()) out << "(any)";
  for (std::size_t i = 0; i < s.allowed_origins.size(); ++i) {
    out << (i ? "," : "") << s.allowed_origins[i];
  }
  return out.str();
}

config_result parse_config(std::span<const char* const> args, const env_lookup& env) {
  config settings;
  settings.threads = std::max(1U, std::thread::hardware_concurrency());
  settings.hub.shards = 0;  // unless set: derived from the threads below

  // The environment first (the seed's PORT before ROOMCAST_PORT), then flags over it.
  if (const char* port = env("PORT")) {
    if (auto error = integer(in(&config::port), 0, 65535)(settings, port); !error.empty()) {
      return fail("bad value '" + std::string(port) + "' for PORT: " + error);
    }
  }
  for (const auto& o : options()) {
    const char* value = env(std::string(o.env).c_str());
    if (value == nullptr) continue;
    if (auto error = o.apply(settings, value); !error.empty()) {
      return fail("bad value '" + std::string(value) + "' for " + std::string(o.env) + ": "
                  + error);
    }
  }

  std::vector<std::string_view> lists_from_flags;  // repeatable flags seen: they replace the env
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") return {std::nullopt, help_text(), 0};
    if (arg == "--version") return {std::nullopt, "roomcast " ROOMCAST_VERSION "\n", 0};
    std::string_view value;
    bool has_value = false;
    if (const auto eq = arg.find('='); arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    const option* match = nullptr;
    for (const auto& o : options()) {
      if (o.flag == arg) match = &o;
    }
    if (match == nullptr) return fail("unknown option '" + std::string(arg) + "'");
    if (!has_value) {
      if (i + 1 >= args.size()) return fail("option " + std::string(arg) + " needs a value");
      value = args[++i];
    }
    if (match->reset
        && std::find(lists_from_flags.begin(), lists_from_flags.end(), match->flag)
               == lists_from_flags.end()) {
      match->reset(settings);  // flags replace the environment's list
      lists_from_flags.push_back(match->flag);
    }
    if (auto error = match->apply(settings, value); !error.empty()) {
      return fail("bad value '" + std::string(value) + "' for " + std::string(arg) + ": " + error);
    }
  }
  if (settings.session.proxy.protocol && settings.session.proxy.trusted.empty()) {
    // Nobody's header would be believed, so every proxied client would be refused.
    return fail("--proxy-protocol on needs --trusted-proxy (the addresses of the proxies)");
  }
  if (settings.hub.shards == 0) settings.hub.shards = std::size_t{4} * settings.threads;
  return {std::move(settings), {}, 0};
}

}  // namespace roomcast
