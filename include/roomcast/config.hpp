#pragma once
/** @file
 * Every setting of the server, with its default, parsed once from argv and the environment.
 * Flags win over environment variables; a bad value is an error with a readable message.
 */
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "roomcast/log.hpp"
#include "roomcast/proxy.hpp"

namespace roomcast {

/** Whose word about a client's address is taken (proxy.hpp; docs/security.md). */
struct proxy_options {
  /** --proxy-protocol: a connection from a trusted proxy must begin with a PROXY protocol
   * header (v1 or v2), which names the client; a header from anyone else is refused. */
  bool protocol = false;
  /** --trusted-proxy: their PROXY headers and X-Forwarded-For are believed. Empty: nobody's. */
  proxy::trusted_proxies trusted;
};

/** The limits and timeouts of one client connection (session.hpp). */
struct session_options {
  std::size_t max_text = 100;         ///< chat message limit, in code points
  std::size_t max_frame = 16 * 1024;  ///< largest client message, in bytes (close 1009 above)
  std::size_t max_header = 8 * 1024;  ///< HTTP request header limit (431 above); not a flag
  std::size_t outbox_frames = 256;    ///< frames queued for one client before it is a slow consumer
  int send_buffer = 0;                ///< SO_SNDBUF for client sockets; 0: the kernel's default
  std::chrono::milliseconds handshake_timeout{10'000};  ///< HTTP request and upgrade
  std::chrono::milliseconds idle_timeout{60'000};       ///< no traffic: ping, then close
  std::chrono::milliseconds close_timeout{5'000};  ///< a closing client's last writes and close
  double rate_limit = 10;                          ///< frames of any kind per second (0: unlimited)
  double rate_burst = 20;                          ///< frames at once before the rate applies
  unsigned flood_limit = 50;                 ///< refused frames (refilled 1/s) before close 1008
  std::vector<std::string> allowed_origins;  ///< empty: any Origin may open a WebSocket
  proxy_options proxy;                       ///< the client's address from a trusted proxy
};

/** The limits of the room hub (hub.hpp). */
struct hub_options {
  std::size_t room_inbox = 64;      ///< events queued for one room before senders wait
  std::size_t max_rooms = 10'000;   ///< create beyond it: too_many_rooms (5005)
  std::size_t max_members = 1'000;  ///< join beyond it: room_full (5003)
  std::size_t shards = 1;           ///< strands the rooms are spread over, by room number
  /** A room that grows past this many members hands its broadcasts out over fan-out lanes. */
  std::size_t fanout_threshold = 128;
  std::size_t fanout_lanes = 0;   ///< lanes of such a room, spread over the threads; 0: one each
  std::size_t fanout_chunk = 32;  ///< deliveries a lane makes before other work gets a turn
  /** Events a room keeps for newcomers' history and for resumes; 0: neither is offered. */
  std::size_t history_events = 100;
  std::size_t history_bytes = 64 * 1024;  ///< cap on a room's kept events, in payload bytes
  /** How long a member that asked for resume keeps its seat after its connection drops. */
  std::chrono::milliseconds resume_grace{30'000};
};

/** Cluster mode (docs/cluster.md): rooms span the nodes that share one Redis. */
struct cluster_options {
  std::string redis_url;                          ///< empty: single node, no Redis (the default)
  std::string node_id;                            ///< empty: a random one per start
  std::chrono::milliseconds node_timeout{5'000};  ///< a node silent this long is reaped
};

/** Every setting. The parts that a module takes are its own option structs, so nothing is
 * copied field by field on the way to the module. */
struct config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 3000;
  unsigned threads = 0;  ///< 0: the number of cores
  std::string web_root;  ///< empty: serve the client embedded in the binary
  session_options session;
  hub_options hub;
  cluster_options cluster;
  std::chrono::milliseconds drain_timeout{10'000};  ///< shutdown: time for every client to close
  std::size_t max_connections = 10'000;
  std::size_t max_connections_per_ip = 256;
  int admin_port = -1;  ///< -1: /readyz and /metrics on the main port; else on this port only
  bool metrics = true;  ///< serve /metrics
  log_level level = log_level::info;
  log_format format = log_format::text;
  std::size_t log_queue_lines = default_log_queue_lines;  ///< lines waiting for the log thread

  /** The settings as one log line. */
  std::string summary() const;
};

/** The outcome of reading the command line: run with `settings`, or print `message` and exit. */
struct config_result {
  std::optional<config> settings;
  std::string message;  ///< help, version, or the error (then exit_code is 2)
  int exit_code = 0;
};

using env_lookup = std::function<const char*(const char* name)>;

/** Parses `args` (without the program name) and the environment through `env`. */
config_result parse_config(std::span<const char* const> args, const env_lookup& env);

}  // namespace roomcast
