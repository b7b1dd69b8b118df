#include "cluster_nodes.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>

#include <catch2/catch.hpp>

namespace roomcast::testing {

cluster_nodes::cluster_nodes(std::vector<std::string> extra, int proxied)
    : extra_(std::move(extra)), proxied_(proxied) {
  if (proxied_ != no_node) proxy_ = std::make_unique<redis_proxy>(redis_.socket_path());
  for (int i = 0; i < 3; ++i)
    start_node(i);
}

std::string cluster_nodes::redis_cli(const std::vector<std::string>& words) const {
  std::string line = "redis-cli -s '" + redis_.socket_path() + "'";
  for (const auto& word : words)
    line += " '" + word + "'";
  return line;
}

bool cluster_nodes::redis_command(const std::vector<std::string>& words) {
  const auto line = redis_cli(words) + " >/dev/null";
  return std::system(line.c_str()) == 0;  // NOLINT(concurrency-mt-unsafe): one test thread
}

std::string cluster_nodes::redis_output(const std::vector<std::string>& words) {
  std::string out;
  // NOLINTNEXTLINE(cert-env33-c): a fixed command line of the test's own
  if (FILE* pipe = ::popen(redis_cli(words).c_str(), "r")) {
    std::array<char, 4096> buffer{};
    while (const auto got = std::fread(buffer.data(), 1, buffer.size(), pipe))
      out.append(buffer.data(), got);
    ::pclose(pipe);
  }
  return out;
}

bool cluster_nodes::logged(int i, std::string_view needle, std::chrono::milliseconds deadline) {
  for (const auto& line : node(i).lines()) {
    if (line.find(needle) != std::string::npos) return true;
  }
  return node(i).wait_for_line(needle, deadline).has_value();
}

void cluster_nodes::start_node(int i) {
  const auto redis_url = i == proxied_ ? proxy_->url() : "unix://" + redis_.socket_path();
  std::vector<std::string> args = {"--port",          "0",
                                   "--threads",       "1",
                                   "--redis",         redis_url,
                                   "--node-id",       "n" + std::to_string(i),
                                   "--node-timeout",  std::to_string(node_timeout.count()),
                                   "--rate-limit",    "0",
                                   "--drain-timeout", "5000"};
  args.insert(args.end(), extra_.begin(), extra_.end());
  nodes_.push_back(std::make_unique<server_process>(args));
  ports_.push_back(nodes_.back()->port_after("listening on"));
  REQUIRE(logged(i, "ready on"));
}

}  // namespace roomcast::testing
