#pragma once
// The command line of roomcast-loadgen: one struct with defaults, parsed once, validated.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace roomcast::loadgen {

enum class scenario { fanout, idle, churn, flood, mixed };

struct options {
  scenario kind = scenario::fanout;
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // the first of `ports`
  /// Several ports are several nodes of one cluster: fanout spreads each room's members over
  /// them (member i of a room on node i mod N), so every room spans the nodes.
  std::vector<std::uint16_t> ports;
  std::string label = "server";
  double duration_s = 10;
  double warmup_s = 2;
  double drain_s = 5;
  std::optional<int> server_pid;  // the first of `server_pids`
  std::vector<int> server_pids;   // CPU time is summed over them and reported per node too
  std::optional<int> cpu;

  // fanout
  int rooms = 1;
  int members = 2;
  int senders = 1;
  std::optional<int> window;   // closed loop: messages in flight per sender
  std::optional<double> rate;  // open loop: messages per second, all senders together

  // mixed: the small rooms are --rooms x --members at --rate (defaults 100 x 10 at 500 msg/s)
  int big_members = 1000;
  double big_rate = 50;
  double max_p99_ms = 0;  // check: the small rooms' p99 beside the big room; 0: none

  // idle
  int connections = 0;

  // churn
  int concurrency = 1;
  bool shared_room = false;

  // flood (the measured member's rate is --rate, 100 msg/s unless given)
  int flooders = 2;
  std::string flood_frame = "ping";  // ping or pong
  double close_within_s = 5;         // check: every flooder closed by the server within; 0: none
  double max_slowdown = 2;           // check: member's p99 under the flood / without; 0: none

  // connection set-up
  int source_addresses = 0;  // 0: as many as the connection count needs
  int connect_concurrency = 64;
  double setup_timeout_s = 120;
  double step_timeout_s = 5;
  double stall_timeout_s = 5;
  double settle_s = 0.3;
  int room_base = 1000;
  bool quiet = false;
};

struct parse_result {
  std::optional<options> value;  // empty: print `message` and exit with `exit_code`
  std::string message;
  int exit_code = 0;
};

parse_result parse_options(int argc, char** argv);
std::string_view scenario_name(scenario kind);

}  // namespace roomcast::loadgen
