#pragma once
/** @file
 * The whole server behind a small API: bind, run on N threads, stop.
 */
#include <cstdint>
#include <memory>
#include <optional>

#include "roomcast/config.hpp"

namespace roomcast {

struct hub_counters;
struct server_metrics;

class server {
 public:
  /** Binds the listening socket; throws std::system_error when it cannot. */
  explicit server(const config& settings);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /** The bound port (the real one when the configured port was 0). */
  std::uint16_t port() const noexcept;
  /** The admin port (/readyz, /metrics), when --admin-port is set. */
  std::optional<std::uint16_t> admin_port() const noexcept;

  /** Starts accepting and runs `threads` background threads, each with an io_context of its own. */
  void start();
  /** Stops on SIGINT or SIGTERM (for main). */
  void stop_on_signals();
  /** Blocks until the threads have ended. */
  void wait();
  /** Graceful shutdown: /readyz turns 503, accepting stops, every room ends, every client gets
   * its queued frames then close 1001; the threads end when all are gone, or at
   * --drain-timeout. Thread-safe. */
  void stop();

  const hub_counters& counters() const noexcept;
  const server_metrics& metrics() const noexcept;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace roomcast
