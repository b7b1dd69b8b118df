#include "options.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <charconv>
#include <cmath>
#include <functional>
#include <span>
#include <vector>

namespace roomcast::loadgen {
namespace {

constexpr std::string_view usage_text =
    R"(usage: roomcast-loadgen --scenario fanout|idle|churn|flood|mixed --port P [options]

A WebSocket load generator for the roomcast protocol (and the seed's Node server). One thread;
one JSON line with every figure on stdout, progress on stderr.

common:
  --host ADDR              server address, loopback only (default 127.0.0.1)
  --port P[,P...]          server port (required); several ports are the nodes of one
                           cluster: fanout puts member i of each room on node i mod N
  --label NAME             server label copied into the report (default "server")
  --duration S             measured window in seconds (default 10)
  --warmup S               load before the window, not measured (default 2)
  --drain S                after sending stops, wait up to S for outstanding frames (default 5)
  --server-pid PID[,PID...]
                           read the server's CPU time and RSS from /proc/PID (several: the
                           nodes' sum, and each node's CPU per delivery made to its members)
  --cpu N                  pin the load generator to CPU N
  --source-addresses K     spread connections over 127.0.0.1 .. 127.0.0.K (default: one per
                           1/8 of the ephemeral port range; widened when one runs out of ports)
  --connect-concurrency N  connections being set up at once (default 64)
  --setup-timeout S        bound on connecting and joining everything (default 120)
  --step-timeout S         bound on one connect, upgrade, join, leave or close (default 5)
  --stall-timeout S        give up when no frame arrives for S while frames are due (default 5)
  --settle S               fanout: before sending, wait until no frame has arrived for S
                           (the set-up's join events are read by then; default 0.3)
  --room-base N            first room number (default 1000; rooms are 4-digit numbers)
  --quiet                  no progress on stderr

fanout (R rooms x M members; the first S members of each room send):
  --rooms R --members M [--senders S]
  --window W               closed loop: W messages in flight per sender (done at its own echo)
  --rate N                 open loop: N messages/s over all senders, on a fixed schedule

idle (C connections joined into rooms of M, held for the duration):
  --connections C --members M
                           with --warmup > 0, one room of M enters and leaves first, so that
                           what the server sets up once per process is not counted per connection

churn (K workers looping connect, upgrade, join, leave, close):
  --concurrency K [--shared-room]

flood (a member chats in its own room, --rate msg/s (default 100), its echo measured: a
       baseline window, then a window with N connections flooding control frames as fast as
       their sockets take them, from a second thread at nice 19):
  --flooders N             flooding connections (default 2)
  --flood-frame ping|pong  what they flood with (default ping)
  --close-within S         check: the server closes every flooder within S (default 5; 0: no
                           check, for a server that does not limit them)
  --max-slowdown X         check: the member's p99 under the flood is at most X times its p99
                           without (default 2; 0: no check)

mixed (head-of-line blocking: small rooms' latency alone, then beside one big room; the big
       room runs on a second thread of the load generator, with its own io_context):
  --rooms R --members M --rate N
                           the small rooms (default 100 x 10 at 500 msg/s); alone first, then
                           again (new room numbers) once the big room is sending
  --big-members B          the big room's members (default 1000)
  --big-rate N             the big room's msg/s (default 50)
  --max-p99-ms X           check: the small rooms' p99 beside the big room is at most X ms
                           (default 0: no check)

exit status: 0 all checks passed, 1 run failed (set-up, server stopped answering),
             2 bad flags, 3 run completed but a check failed (gaps, missing, failures)
)";

struct flag {
  std::string_view name;
  bool takes_value;
  std::function<std::string(options&, std::string_view)> apply;  // returns an error or ""
};

template <class Int>
std::string to_int(std::string_view text, Int& out, long long lo, long long hi) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size())
    return "'" + std::string(text) + "' is not an integer";
  if (value < lo || value > hi) {
    return "'" + std::string(text) + "' is out of range " + std::to_string(lo) + ".."
           + std::to_string(hi);
  }
  out = static_cast<Int>(value);
  return {};
}

/// A comma-separated list of integers in [lo, hi], at most 64 of them.
template <class Int>
std::string to_int_list(std::string_view text, std::vector<Int>& out, long long lo, long long hi) {
  out.clear();
  for (;;) {
    const auto comma = text.find(',');
    Int value{};
    auto error = to_int(text.substr(0, comma), value, lo, hi);
    if (!error.empty()) return error;
    out.push_back(value);
    if (out.size() > 64) return "more than 64 values";
    if (comma == std::string_view::npos) return {};
    text.remove_prefix(comma + 1);
  }
}

std::string to_seconds(std::string_view text, double& out, double lo, double hi) {
  // std::from_chars for double is in libstdc++ 11+.
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value))
    return "'" + std::string(text) + "' is not a number";
  if (value < lo || value > hi) return "'" + std::string(text) + "' is out of range";
  out = value;
  return {};
}

bool is_loopback(const std::string& host) {
  in_addr address{};
  if (::inet_pton(AF_INET, host.c_str(), &address) != 1) return false;
  return (ntohl(address.s_addr) >> 24) == 127;
}

std::vector<flag> flags() {
  using o = options;
  std::vector<flag> all;
  auto integer = [](auto member, long long lo, long long hi) {
    return
        [member, lo, hi](o& opts, std::string_view v) { return to_int(v, opts.*member, lo, hi); };
  };
  auto seconds = [](double o::*member, double lo, double hi) {
    return [member, lo, hi](o& opts, std::string_view v) {
      return to_seconds(v, opts.*member, lo, hi);
    };
  };
  all.push_back({"--scenario", true, [](o& opts, std::string_view v) -> std::string {
                   if (v == "fanout")
                     opts.kind = scenario::fanout;
                   else if (v == "idle")
                     opts.kind = scenario::idle;
                   else if (v == "churn")
                     opts.kind = scenario::churn;
                   else if (v == "flood")
                     opts.kind = scenario::flood;
                   else if (v == "mixed")
                     opts.kind = scenario::mixed;
                   else
                     return "unknown scenario '" + std::string(v) + "'";
                   return {};
                 }});
  all.push_back({"--host", true, [](o& opts, std::string_view v) -> std::string {
                   opts.host = std::string(v);
                   if (!is_loopback(opts.host))
                     return "'" + opts.host + "' is not an IPv4 loopback address (127.x.x.x)";
                   return {};
                 }});
  all.push_back({"--port", true,
                 [](o& opts, std::string_view v) { return to_int_list(v, opts.ports, 1, 65535); }});
  all.push_back({"--label", true, [](o& opts, std::string_view v) -> std::string {
                   if (v.empty()) return "empty label";
                   opts.label = std::string(v);
                   return {};
                 }});
  all.push_back({"--duration", true, seconds(&o::duration_s, 0.1, 86400)});
  all.push_back({"--warmup", true, seconds(&o::warmup_s, 0, 3600)});
  all.push_back({"--drain", true, seconds(&o::drain_s, 0, 3600)});
  all.push_back({"--server-pid", true, [](o& opts, std::string_view v) {
                   return to_int_list(v, opts.server_pids, 1, (1LL << 31) - 1);
                 }});
  all.push_back({"--cpu", true, [](o& opts, std::string_view v) {
                   int cpu = 0;
                   auto error = to_int(v, cpu, 0, 4095);
                   if (error.empty()) opts.cpu = cpu;
                   return error;
                 }});
  all.push_back({"--rooms", true, integer(&o::rooms, 1, 10000)});
  all.push_back({"--members", true, integer(&o::members, 1, 1000000)});
  all.push_back({"--senders", true, integer(&o::senders, 1, 1000000)});
  all.push_back({"--window", true, [](o& opts, std::string_view v) {
                   int window = 0;
                   auto error = to_int(v, window, 1, 1000000);
                   if (error.empty()) opts.window = window;
                   return error;
                 }});
  all.push_back({"--rate", true, [](o& opts, std::string_view v) {
                   double rate = 0;
                   auto error = to_seconds(v, rate, 0.001, 1e9);
                   if (error.empty()) opts.rate = rate;
                   return error;
                 }});
  all.push_back({"--big-members", true, integer(&o::big_members, 1, 1000000)});
  all.push_back({"--big-rate", true, seconds(&o::big_rate, 0.001, 1e9)});
  all.push_back({"--max-p99-ms", true, seconds(&o::max_p99_ms, 0, 1e9)});
  all.push_back({"--connections", true, integer(&o::connections, 1, 10000000)});
  all.push_back({"--concurrency", true, integer(&o::concurrency, 1, 100000)});
  all.push_back({"--shared-room", false, [](o& opts, std::string_view) {
                   opts.shared_room = true;
                   return std::string();
                 }});
  all.push_back({"--flooders", true, integer(&o::flooders, 1, 1000)});
  all.push_back({"--flood-frame", true, [](o& opts, std::string_view v) -> std::string {
                   if (v != "ping" && v != "pong") return "expected ping or pong";
                   opts.flood_frame = std::string(v);
                   return {};
                 }});
  all.push_back({"--close-within", true, seconds(&o::close_within_s, 0, 3600)});
  all.push_back({"--max-slowdown", true, seconds(&o::max_slowdown, 0, 1e6)});
  all.push_back({"--source-addresses", true, integer(&o::source_addresses, 1, 254)});
  all.push_back({"--connect-concurrency", true, integer(&o::connect_concurrency, 1, 100000)});
  all.push_back({"--setup-timeout", true, seconds(&o::setup_timeout_s, 0.1, 86400)});
  all.push_back({"--step-timeout", true, seconds(&o::step_timeout_s, 0.01, 3600)});
  all.push_back({"--stall-timeout", true, seconds(&o::stall_timeout_s, 0.1, 3600)});
  all.push_back({"--settle", true, seconds(&o::settle_s, 0, 60)});
  all.push_back({"--room-base", true, integer(&o::room_base, 0, 9999)});
  all.push_back({"--quiet", false, [](o& opts, std::string_view) {
                   opts.quiet = true;
                   return std::string();
                 }});
  return all;
}

std::string validate(const options& opts, const std::vector<std::string_view>& given) {
  auto has = [&given](std::string_view name) {
    for (auto g : given)
      if (g == name) return true;
    return false;
  };
  if (!has("--scenario")) return "--scenario is required";
  if (!has("--port")) return "--port is required";
  if (opts.ports.size() > 1 && opts.kind != scenario::fanout)
    return "only fanout spreads its members over several ports";
  const int room_numbers = 10000 - opts.room_base;
  switch (opts.kind) {
    case scenario::fanout:
      if (!has("--rooms") || !has("--members")) return "fanout needs --rooms and --members";
      if (opts.window.has_value() == opts.rate.has_value())
        return "fanout needs exactly one of --window (closed loop) and --rate (open loop)";
      if (opts.senders > opts.members) return "--senders is more than --members";
      if (opts.rooms > room_numbers) return "--rooms does not fit in the 4-digit room numbers";
      break;
    case scenario::idle:
      if (!has("--connections") || !has("--members"))
        return "idle needs --connections and --members";
      if ((opts.connections + opts.members - 1) / opts.members > room_numbers)
        return "--connections / --members rooms do not fit in the 4-digit room numbers";
      break;
    case scenario::churn:
      if (!opts.shared_room && opts.concurrency > room_numbers)
        return "--concurrency rooms do not fit in the 4-digit room numbers (use --shared-room)";
      break;
    case scenario::flood:
      if (opts.window) return "flood sends open loop: --rate, not --window";
      break;
    case scenario::mixed:
      if (opts.window) return "mixed sends open loop: --rate, not --window";
      if (opts.senders > opts.members) return "--senders is more than --members";
      if (2 * opts.rooms + 1 > room_numbers)
        return "mixed needs 2 x --rooms + 1 room numbers above --room-base";
      break;
  }
  return {};
}

}  // namespace

std::string_view scenario_name(scenario kind) {
  switch (kind) {
    case scenario::fanout:
      return "fanout";
    case scenario::idle:
      return "idle";
    case scenario::churn:
      return "churn";
    case scenario::flood:
      return "flood";
    case scenario::mixed:
      return "mixed";
  }
  return "?";
}

parse_result parse_options(int argc, char** argv) {
  const auto table = flags();
  options opts;
  std::vector<std::string_view> given;
  const std::span<char*> args(argv + 1, static_cast<std::size_t>(argc > 0 ? argc - 1 : 0));
  auto fail = [](std::string text) {
    return parse_result{std::nullopt, text + "\n(roomcast-loadgen --help for the flags)", 2};
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") return {std::nullopt, std::string(usage_text), 0};
    std::string_view value;
    bool inline_value = false;
    if (const auto eq = arg.find('='); eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      inline_value = true;
    }
    const flag* match = nullptr;
    for (const auto& f : table)
      if (f.name == arg) match = &f;
    if (match == nullptr) return fail("unknown flag '" + std::string(arg) + "'");
    if (match->takes_value && !inline_value) {
      if (i + 1 >= args.size()) return fail(std::string(arg) + " needs a value");
      value = args[++i];
    } else if (!match->takes_value && inline_value) {
      return fail(std::string(arg) + " takes no value");
    }
    if (auto error = match->apply(opts, value); !error.empty())
      return fail(std::string(arg) + ": " + error);
    given.push_back(match->name);
  }
  if (opts.kind == scenario::mixed) {  // the issue's shape unless told otherwise
    if (std::find(given.begin(), given.end(), "--rooms") == given.end()) opts.rooms = 100;
    if (std::find(given.begin(), given.end(), "--members") == given.end()) opts.members = 10;
  }
  if (auto error = validate(opts, given); !error.empty()) return fail(error);
  if (opts.kind == scenario::flood && !opts.rate) opts.rate = 100;
  if (opts.kind == scenario::mixed && !opts.rate) opts.rate = 500;
  opts.port = opts.ports.front();
  if (!opts.server_pids.empty()) opts.server_pid = opts.server_pids.front();
  return {std::move(opts), {}, 0};
}

}  // namespace roomcast::loadgen
