#pragma once
/** @file
 * The server's counters (relaxed atomics: counting never takes a lock or a strand hop) and their
 * rendering in the Prometheus text exposition format. Plain code; the HTTP side serves it.
 */
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace roomcast {

struct hub_counters;

/** A histogram of durations with fixed buckets (seconds), safe to update from any thread. */
class latency_histogram {
 public:
  static constexpr std::array<double, 14> bounds = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};
  void observe(std::chrono::nanoseconds elapsed) noexcept;
  /** Appends `# HELP`, `# TYPE` and the `_bucket`/`_sum`/`_count` series. */
  void render(std::string& text, const char* name, const char* help) const;
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }

 private:
  std::array<std::atomic<std::uint64_t>, bounds.size() + 1> buckets_{};  // last: +Inf
  std::atomic<std::uint64_t> sum_ns_{0};
  std::atomic<std::uint64_t> count_{0};
};

/** What became of a connection's PROXY protocol step (--proxy-protocol on). */
enum class proxy_header_outcome : std::uint8_t {
  accepted,    ///< a valid header from a trusted proxy
  missing,     ///< a trusted proxy sent something else first
  invalid,     ///< a trusted proxy sent a header that breaks the specification
  untrusted,   ///< a header from an address that is not a trusted proxy
  incomplete,  ///< the connection ended, or --handshake-timeout passed, before a whole header
};
inline constexpr std::size_t proxy_header_outcomes = 5;

/** Counters of the connections (the hub keeps its own, see hub_counters). */
struct server_metrics {
  std::atomic<std::int64_t> open_connections{0};
  std::atomic<std::uint64_t> frames_received{0};
  std::atomic<std::uint64_t> frames_sent{0};
  std::atomic<std::uint64_t> bytes_received{0};
  std::atomic<std::uint64_t> bytes_sent{0};
  std::atomic<std::uint64_t> handshake_failures{0};
  std::atomic<std::uint64_t> capacity_refusals{0};
  std::atomic<std::uint64_t> rate_limit_closes{0};
  /** PROXY protocol steps by outcome, indexed by proxy_header_outcome. */
  std::array<std::atomic<std::uint64_t>, proxy_header_outcomes> proxy_headers{};
  /** Upgrade requests from a trusted proxy whose X-Forwarded-For named the client. */
  std::atomic<std::uint64_t> forwarded_for_used{0};
  /** Refusals by wire code, indexed by rejection_index(). */
  std::array<std::atomic<std::uint64_t>, 20> rejections{};
  /** The most bytes ever waiting in one connection's outbox (queued, not yet written). */
  std::atomic<std::size_t> outbox_high_water_bytes{0};
  /** From a chat message's arrival to its hand-off to the last recipient's socket. */
  latency_histogram delivery_latency;

  void count_rejection(int wire_code) noexcept;
  void count_proxy_header(proxy_header_outcome outcome) noexcept {
    proxy_headers.at(static_cast<std::size_t>(outcome)).fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t rejections_of(int wire_code) const noexcept;
};

/** Cluster mode's counters (cluster.hpp), read by /metrics. */
struct cluster_metrics {
  /** Why a Redis operation failed, the label of roomcast_redis_failures_total. */
  enum class failure : std::uint8_t { connect, request, script, probe, count_ };
  std::atomic<int> redis_up{0};  ///< 1 while both connections are up and synced
  std::atomic<std::uint64_t> reconnects{0};
  std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(failure::count_)> failures{};
  latency_histogram script_latency;  ///< EVALSHA round trips, as a caller waits for them
  std::atomic<std::size_t> subscribed_rooms{0};
  std::atomic<std::size_t> local_members{0};
  std::atomic<std::uint64_t> sequence_gaps{0};
  std::atomic<std::uint64_t> resync_closes{0};   ///< clients closed with 1012
  std::atomic<std::uint64_t> reaped_members{0};  ///< members of silent nodes this node reaped
  std::atomic<std::int64_t> live_nodes{0};
  std::atomic<std::size_t> held_seats{0};  ///< seats this node holds for a resume (grace running)
  std::atomic<std::uint64_t> resumes{0};   ///< seats taken back on this node
  std::atomic<std::uint64_t> resumes_unrecovered{0};  ///< of them, with events lost from history

  void count(failure kind) noexcept {
    failures[static_cast<std::size_t>(kind)].fetch_add(1, std::memory_order_relaxed);
  }
};

/** Appends the cluster metrics; `in_flight` is the command connection's outstanding commands. */
void render_cluster_prometheus(std::string& text, const cluster_metrics& cluster,
                               std::size_t in_flight);

/** Every metric in the Prometheus text exposition format (version 0.0.4), with the log lines
 * dropped (log.hpp) among them. */
std::string render_prometheus(const server_metrics& server, const hub_counters& hub);

}  // namespace roomcast
