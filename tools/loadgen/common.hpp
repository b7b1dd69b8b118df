#pragma once
// What the scenarios share: members of rooms and how they are brought up, CPU and memory
// samples, progress lines, the parameters every report starts with.
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "client.hpp"
#include "json_line.hpp"
#include "options.hpp"

namespace roomcast::loadgen {

/// One connection that is a member of a room.
struct member {
  client_ptr link;
  int room = 0;             // room number (4 digits on the wire)
  int index = 0;            // position in its room: 0 creates the room
  std::size_t node = 0;     // which of the --port nodes it connects to
  std::size_t ordinal = 0;  // position in the whole population: picks the source address
  std::string name;         // unique in the run
  bool entered = false;     // in its room: its reader runs
};

struct set_up_result {
  bool ok = true;
  std::string error;
  std::size_t entered = 0;
  double seconds = 0;
  int source_addresses = 1;
};

/// Connects every member and makes it create (index 0) or join its room: all creators first,
/// then everybody else, `--connect-concurrency` at a time, each step bounded by
/// `--step-timeout` and the whole by `--setup-timeout`. `on_entered` runs for each member as
/// soon as it is in its room (it starts the member's reader: the seed server sends every join
/// to everybody, so members must read from the start).
/// Each member connects to `to[member.node]`.
net::awaitable<set_up_result> set_up(std::span<member* const> members, std::span<const target> to,
                                     const options& opts,
                                     const std::function<void(member&)>& on_entered);

/// The first --port.
target make_target(const options& opts);
/// One per --port: the nodes of a cluster.
std::vector<target> make_targets(const options& opts);

/// CPU time of both processes and the server's RSS at one instant.
struct usage_sample {
  steady::time_point at;
  double own_cpu_s = 0;
  std::optional<double> server_cpu_s;  // summed over --server-pid
  std::vector<double> node_cpu_s;      // each --server-pid's, when there are several
  std::optional<std::uint64_t> server_rss_bytes;
  std::optional<double> machine_busy_s;
};
usage_sample sample_usage(const options& opts);

/// server_cpu_s, server_cpu_share, server_cpu_us_per_<unit>, the same for the load generator,
/// and other_cpu_s (what the rest of the machine used), measured between two samples; `units`
/// is what was done in between.
void add_usage(json_line& report, const usage_sample& from, const usage_sample& to,
               std::uint64_t units, std::string_view unit);

/// With several nodes: node<i>_cpu_s and node<i>_cpu_us_per_<unit>, each node's CPU time over
/// the units done by it (`units_by_node[i]`).
void add_node_usage(json_line& report, const usage_sample& from, const usage_sample& to,
                    std::span<const std::uint64_t> units_by_node, std::string_view unit);

/// The parameters every report starts with.
void add_parameters(json_line& report, const options& opts);

/// A progress line on stderr (unless --quiet).
void note(const options& opts, std::string_view text);

/// Prints `report` with the error and ends the process at once: for a run that overran its own
/// deadline, whose pending operations cannot be unwound safely.
[[noreturn]] void abandon(json_line& report, const options& opts, std::string_view why);

/// "1.234" with `decimals` digits.
std::string fixed(double value, int decimals = 1);

}  // namespace roomcast::loadgen
