#include "roomcast/metrics.hpp"

#include <array>
#include <sstream>
#include <string_view>
#include <tuple>

#include "roomcast/hub.hpp"
#include "roomcast/log.hpp"
#include "roomcast/protocol.hpp"

namespace roomcast {
namespace {

// Every code a rejection can carry, in the order of server_metrics::rejections.
constexpr std::array rejection_codes = {4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007, 4008, 4009,
                                        4010, 4011, 4012, 5001, 5002, 5003, 5004, 5005, 5006};
static_assert(rejection_codes.size() + 1 == std::tuple_size_v<decltype(server_metrics::rejections)>,
              "one counter per code, and a spare last one");

std::size_t rejection_index(int code) noexcept {
  for (std::size_t i = 0; i < rejection_codes.size(); ++i) {
    if (rejection_codes[i] == code) return i;
  }
  return rejection_codes.size();  // the spare last slot
}

void header(std::ostringstream& out, const char* name, const char* type, const char* help) {
  out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
}

template <class Value>
void single(std::ostringstream& out, const char* name, const char* type, const char* help,
            Value value) {
  header(out, name, type, help);
  out << name << ' ' << value << '\n';
}

}  // namespace

void latency_histogram::observe(std::chrono::nanoseconds elapsed) noexcept {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::size_t bucket = 0;
  while (bucket < bounds.size() && seconds > bounds[bucket])
    ++bucket;
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(static_cast<std::uint64_t>(elapsed.count()), std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

void latency_histogram::render(std::string& text, const char* name, const char* help) const {
  std::ostringstream out;
  header(out, name, "histogram", help);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    out << name << "_bucket{le=\"";
    if (i < bounds.size()) {
      out << bounds[i];
    } else {
      out << "+Inf";
    }
    out << "\"} " << cumulative << '\n';
  }
  out << name << "_sum " << static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9
      << '\n';
  out << name << "_count " << cumulative << '\n';
  text += out.str();
}

void server_metrics::count_rejection(int code) noexcept {
  rejections[rejection_index(code)].fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t server_metrics::rejections_of(int code) const noexcept {
  return rejections[rejection_index(code)].load(std::memory_order_relaxed);
}

std::string render_prometheus(const server_metrics& server, const hub_counters& hub) {
  constexpr auto relaxed = std::memory_order_relaxed;
  std::ostringstream out;
  single(out, "roomcast_open_connections", "gauge", "Open TCP connections (HTTP and WebSocket).",
         server.open_connections.load(relaxed));
  single(out, "roomcast_rooms", "gauge", "Rooms that exist.", hub.rooms.load(relaxed));
  single(out, "roomcast_members", "gauge", "Members in all rooms.", hub.members.load(relaxed));
  single(out, "roomcast_frames_received_total", "counter", "WebSocket messages received.",
         server.frames_received.load(relaxed));
  single(out, "roomcast_frames_sent_total", "counter", "WebSocket messages written to clients.",
         server.frames_sent.load(relaxed));
  single(out, "roomcast_received_bytes_total", "counter", "Payload bytes of messages received.",
         server.bytes_received.load(relaxed));
  single(out, "roomcast_sent_bytes_total", "counter", "Payload bytes of messages written.",
         server.bytes_sent.load(relaxed));
  single(out, "roomcast_broadcasts_total", "counter",
         "Room events serialized once and handed to every member.", hub.broadcasts());
  single(out, "roomcast_slow_consumers_total", "counter",
         "Clients evicted because their outbox was full (close 1008).",
         hub.evictions.load(relaxed));
  single(out, "roomcast_held_seats", "gauge",
         "Seats kept for a resume after their connection dropped.", hub.held_seats.load(relaxed));
  single(out, "roomcast_resumes_total", "counter", "Seats taken back with a resume token.",
         hub.resumes.load(relaxed));
  single(out, "roomcast_resumes_unrecovered_total", "counter",
         "Resumes whose missed events were no longer all in the room's history.",
         hub.resumes_unrecovered.load(relaxed));
  single(out, "roomcast_resume_expiries_total", "counter",
         "Held seats whose --resume-grace ran out (the member left, disconnected).",
         hub.seats_expired.load(relaxed));
  single(out, "roomcast_rate_limit_closes_total", "counter",
         "Clients closed for flooding (close 1008).", server.rate_limit_closes.load(relaxed));
  single(out, "roomcast_handshake_failures_total", "counter",
         "Connections that ended before a WebSocket session: bad HTTP, failed upgrade, timeout.",
         server.handshake_failures.load(relaxed));
  single(out, "roomcast_capacity_refusals_total", "counter",
         "Connections answered 503 at --max-connections or --max-connections-per-ip.",
         server.capacity_refusals.load(relaxed));
  single(out, "roomcast_outbox_high_water_bytes", "gauge",
         "The most bytes ever queued in one connection's outbox.",
         server.outbox_high_water_bytes.load(relaxed));
  single(out, "roomcast_log_lines_dropped_total", "counter",
         "Log lines not written: the log queue was full (stderr slower than the server) or the "
         "write to stderr failed.",
         log_lines_dropped());
  header(out, "roomcast_proxy_headers_total", "counter",
         "PROXY protocol steps (--proxy-protocol on), by outcome.");
  constexpr std::array<const char*, proxy_header_outcomes> proxy_outcomes = {
      "accepted", "missing", "invalid", "untrusted", "incomplete"};
  for (std::size_t i = 0; i < proxy_outcomes.size(); ++i) {
    out << "roomcast_proxy_headers_total{outcome=\"" << proxy_outcomes.at(i) << "\"} "
        << server.proxy_headers.at(i).load(relaxed) << '\n';
  }
  single(out, "roomcast_forwarded_for_used_total", "counter",
         "WebSocket upgrades from a trusted proxy whose X-Forwarded-For named the client.",
         server.forwarded_for_used.load(relaxed));
  header(out, "roomcast_rejections_total", "counter", "Client frames refused, by wire code.");
  for (const int code : rejection_codes) {
    out << "roomcast_rejections_total{code=\"" << code << "\",error=\""
        << token(static_cast<wire_code>(code)) << "\"} " << server.rejections_of(code) << '\n';
  }
  std::string text = out.str();
  server.delivery_latency.render(
      text, "roomcast_delivery_latency_seconds",
      "From a chat message's arrival to its hand-off to the last recipient's socket.");
  return text;
}

void render_cluster_prometheus(std::string& text, const cluster_metrics& cluster,
                               std::size_t in_flight) {
  constexpr auto relaxed = std::memory_order_relaxed;
  std::ostringstream out;
  single(out, "roomcast_redis_up", "gauge",
         "1 while the node's Redis connections are up and in sync, else 0.",
         cluster.redis_up.load(relaxed));
  single(out, "roomcast_redis_reconnects_total", "counter",
         "Times the node reconnected to Redis and resynchronised.",
         cluster.reconnects.load(relaxed));
  single(out, "roomcast_redis_commands_in_flight", "gauge",
         "Commands sent to Redis and not yet answered.", in_flight);
  header(out, "roomcast_redis_failures_total", "counter", "Redis failures, by kind.");
  constexpr std::array<const char*, 4> kinds = {"connect", "command", "script", "probe"};
  for (std::size_t i = 0; i < kinds.size(); ++i) {
    out << "roomcast_redis_failures_total{kind=\"" << kinds[i] << "\"} "
        << cluster.failures[i].load(relaxed) << '\n';
  }
  single(out, "roomcast_cluster_subscribed_rooms", "gauge",
         "Rooms whose channel this node is subscribed to (it has members there).",
         cluster.subscribed_rooms.load(relaxed));
  single(out, "roomcast_cluster_local_members", "gauge", "Members connected to this node.",
         cluster.local_members.load(relaxed));
  single(out, "roomcast_cluster_sequence_gaps_total", "counter",
         "Rooms in which this node found room events missing.",
         cluster.sequence_gaps.load(relaxed));
  single(out, "roomcast_cluster_resync_closes_total", "counter",
         "Clients closed with 1012 to join again (missed events, Redis restarted, node reaped).",
         cluster.resync_closes.load(relaxed));
  single(out, "roomcast_cluster_reaped_members_total", "counter",
         "Members of silent nodes that this node made leave.",
         cluster.reaped_members.load(relaxed));
  single(out, "roomcast_cluster_live_nodes", "gauge", "Nodes whose heartbeat is recent.",
         cluster.live_nodes.load(relaxed));
  single(out, "roomcast_cluster_held_seats", "gauge",
         "Seats this node holds for a resume after their connection dropped.",
         cluster.held_seats.load(relaxed));
  single(out, "roomcast_cluster_resumes_total", "counter", "Seats taken back on this node.",
         cluster.resumes.load(relaxed));
  single(out, "roomcast_cluster_resumes_unrecovered_total", "counter",
         "Resumes on this node whose missed events were no longer all in the room's history.",
         cluster.resumes_unrecovered.load(relaxed));
  text += out.str();
  cluster.script_latency.render(text, "roomcast_redis_script_latency_seconds",
                                "Round trip of a room script (EVALSHA), as its caller waits.");
}

}  // namespace roomcast
