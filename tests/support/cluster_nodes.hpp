#pragma once
// Cluster mode for the integration tests: a redis-server of the test's own (redis_process: a unix
// socket in a temporary directory, no persistence) and three roomcast nodes (the real binary,
// server_process) on ephemeral ports. One node may reach Redis through a TCP proxy of the test's
// (redis_proxy), which can make its subscription go silent or fall behind. Every process is ended
// by its PID when the object goes.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "redis_process.hpp"
#include "redis_proxy.hpp"
#include "server_process.hpp"

namespace roomcast::testing {

class cluster_nodes {
 public:
  /** The nodes' --node-timeout: short, so that reaping and probes happen within a test. */
  static constexpr std::chrono::milliseconds node_timeout{1000};
  static constexpr int no_node = -1;

  /** `extra` flags go to every node; node `proxied` (if any) reaches Redis through proxy(). */
  explicit cluster_nodes(std::vector<std::string> extra = {}, int proxied = no_node);
  cluster_nodes(const cluster_nodes&) = delete;
  cluster_nodes& operator=(const cluster_nodes&) = delete;

  std::uint16_t port(int i) const { return ports_.at(static_cast<std::size_t>(i)); }
  server_process& node(int i) { return *nodes_.at(static_cast<std::size_t>(i)); }
  redis_process& redis() { return redis_; }
  redis_proxy& proxy() { return *proxy_; }

  /** Runs one command through redis-cli on the test's server; true when it exits 0. */
  bool redis_command(const std::vector<std::string>& words);
  /** What redis-cli prints for one command on the test's server (a line per reply element). */
  std::string redis_output(const std::vector<std::string>& words);
  /** True when node i has logged a line containing `needle` (before or within `deadline`). */
  bool logged(int i, std::string_view needle,
              std::chrono::milliseconds deadline = std::chrono::seconds(10));

 private:
  void start_node(int i);
  std::string redis_cli(const std::vector<std::string>& words) const;

  // Declared in the order they start, so that they end the other way round: the nodes first.
  redis_process redis_;
  std::vector<std::string> extra_;
  int proxied_;
  std::unique_ptr<redis_proxy> proxy_;  // outlives the nodes: they are ended first
  std::vector<std::unique_ptr<server_process>> nodes_;
  std::vector<std::uint16_t> ports_;
};

}  // namespace roomcast::testing
