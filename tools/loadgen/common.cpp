#include "common.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/this_coro.hpp>

#include "system.hpp"
#include "wire.hpp"

namespace roomcast::loadgen {
namespace {

// What the set-up workers share.
struct set_up_state {
  set_up_state(std::span<const target> t, const options& o,
               const std::function<void(member&)>& callback, std::size_t connections)
      : to(t), opts(&o), on_entered(&callback), sources(o.source_addresses, connections) {}
  std::span<const target> to;
  const options* opts;
  const std::function<void(member&)>* on_entered;
  source_pool sources;
  std::vector<member*> queue;  // the current phase: creators, then joiners
  std::size_t next = 0;
  std::size_t entered = 0;
  bool failed = false;
  std::string error;
};

void fail(set_up_state& s, std::string text) {
  if (!s.failed) s.error = std::move(text);
  s.failed = true;
}

bool out_of_ports(const error_code& ec) {
  return ec == boost::system::errc::address_not_available;
}

net::awaitable<void> enter_one(set_up_state& s, member& m, step_guard& guard) {
  const auto executor = co_await net::this_coro::executor;
  const auto limit = seconds(s.opts->step_timeout_s);
  error_code ec;
  for (int attempt = 0;; ++attempt) {
    m.link = make_client(executor);
    guard.arm(socket_of(*m.link), limit);
    ec = co_await open_websocket(*m.link, s.to[m.node], s.sources.pick(m.ordinal));
    guard.disarm();
    if (out_of_ports(ec) && attempt < 8 && s.sources.widen()) continue;
    break;
  }
  if (ec) {
    fail(s, m.name + ": connect or upgrade failed: "
                + (guard.fired() ? std::string("no answer within --step-timeout") : explain(ec)));
    co_return;
  }
  const std::string request = enter_frame(m.index == 0, m.room, m.name);
  const std::string key = name_key(m.name);
  guard.arm(socket_of(*m.link), limit);
  const room_answer answer = co_await ask(*m.link, request, key);
  guard.disarm();
  if (answer.ec) {
    fail(s, m.name + ": no answer to " + (m.index == 0 ? "create" : "join") + ": "
                + (guard.fired() ? "none within --step-timeout" : answer.ec.message()));
    co_return;
  }
  if (!answer.accepted) {
    fail(s, m.name + ": " + (m.index == 0 ? "create" : "join") + " refused: " + answer.detail);
    co_return;
  }
  ++s.entered;
  m.entered = true;
  (*s.on_entered)(m);
}

net::awaitable<void> set_up_worker(set_up_state& s) {
  step_guard guard(co_await net::this_coro::executor);
  while (!s.failed && s.next < s.queue.size()) {
    member& m = *s.queue[s.next++];
    co_await enter_one(s, m, guard);
  }
}

}  // namespace

std::vector<target> make_targets(const options& opts) {
  std::vector<target> nodes;
  for (const auto port : opts.ports) {
    target to;
    to.server = tcp::endpoint(net::ip::make_address_v4(opts.host), port);
    to.host = opts.host + ":" + std::to_string(port);
    nodes.push_back(std::move(to));
  }
  return nodes;
}

target make_target(const options& opts) {
  return make_targets(opts).front();
}

net::awaitable<set_up_result> set_up(std::span<member* const> members, std::span<const target> to,
                                     const options& opts,
                                     const std::function<void(member&)>& on_entered) {
  const auto executor = co_await net::this_coro::executor;
  const auto started = steady::now();
  const auto deadline = started + seconds(opts.setup_timeout_s);
  set_up_state s(to, opts, on_entered, members.size());
  std::string escaped;
  auto last_note = started;
  for (int phase = 0; phase < 2; ++phase) {
    const bool creators = phase == 0;
    s.queue.clear();
    s.next = 0;
    for (member* m : members)
      if ((m->index == 0) == creators) s.queue.push_back(m);
    wait_group workers(executor);
    const auto width =
        std::min<std::size_t>(s.queue.size(), static_cast<std::size_t>(opts.connect_concurrency));
    for (std::size_t i = 0; i < width; ++i) {
      workers.add();
      net::co_spawn(executor, set_up_worker(s), tracked_end{&workers, &escaped});
    }
    for (;;) {
      // A slice of a second up to the deadline; past it (failed, workers ending), short slices.
      const auto now_before = steady::now();
      const auto slice = now_before < deadline
                             ? std::min(deadline, now_before + std::chrono::seconds(1))
                             : now_before + std::chrono::milliseconds(50);
      const bool all_ended = co_await workers.wait_until(slice);
      if (all_ended) break;
      const auto now = steady::now();
      if (now >= deadline && !s.failed) {
        fail(s, "set-up did not finish within --setup-timeout " + fixed(opts.setup_timeout_s)
                    + " s: " + std::to_string(s.entered) + " of " + std::to_string(members.size())
                    + " connections in their rooms");
        // Ends the steps in progress; the workers stop taking new ones. Members in their rooms
        // are the scenario's to close.
        for (member* m : members)
          if (m->link && !m->entered) drop(*m->link);
      }
      if (now - last_note >= std::chrono::seconds(1)) {
        last_note = now;
        note(opts, "set-up: " + std::to_string(s.entered) + " of " + std::to_string(members.size())
                       + " connections in their rooms");
      }
      // The workers use `s` and `workers`: wait for every one of them. After a failure each ends
      // within one step (its guard closes the socket); the run's own deadline backs this up.
    }
    if (!escaped.empty()) fail(s, escaped);
    if (s.failed) break;
  }
  set_up_result result;
  result.ok = !s.failed;
  result.error = s.error;
  result.entered = s.entered;
  result.seconds = std::chrono::duration<double>(steady::now() - started).count();
  result.source_addresses = s.sources.size();
  co_return result;
}

usage_sample sample_usage(const options& opts) {
  usage_sample sample;
  sample.at = steady::now();
  sample.own_cpu_s = own_cpu_seconds();
  sample.machine_busy_s = machine_busy_seconds();
  for (const int pid : opts.server_pids) {
    const auto cpu = process_cpu_seconds(pid);
    const auto rss = process_rss_bytes(pid);
    if (opts.server_pids.size() > 1) sample.node_cpu_s.push_back(cpu.value_or(0.0));
    if (cpu) sample.server_cpu_s = sample.server_cpu_s.value_or(0.0) + *cpu;
    if (rss) sample.server_rss_bytes = sample.server_rss_bytes.value_or(0) + *rss;
  }
  return sample;
}

void add_node_usage(json_line& report, const usage_sample& from, const usage_sample& to,
                    std::span<const std::uint64_t> units_by_node, std::string_view unit) {
  const auto nodes = std::min(from.node_cpu_s.size(), to.node_cpu_s.size());
  for (std::size_t i = 0; i < nodes && i < units_by_node.size(); ++i) {
    const double cpu = to.node_cpu_s[i] - from.node_cpu_s[i];
    const auto prefix = "node" + std::to_string(i);
    report.add(prefix + "_cpu_s", cpu, 3);
    if (units_by_node[i] > 0)
      report.add(prefix + "_cpu_us_per_" + std::string(unit),
                 cpu * 1e6 / static_cast<double>(units_by_node[i]), 3);
    else
      report.add_null(prefix + "_cpu_us_per_" + std::string(unit));
  }
}

void add_usage(json_line& report, const usage_sample& from, const usage_sample& to,
               std::uint64_t units, std::string_view unit) {
  const double wall = std::chrono::duration<double>(to.at - from.at).count();
  const double per = units > 0 ? 1e6 / static_cast<double>(units) : 0.0;
  std::optional<double> server_cpu;
  if (from.server_cpu_s && to.server_cpu_s) server_cpu = *to.server_cpu_s - *from.server_cpu_s;
  const double own_cpu = to.own_cpu_s - from.own_cpu_s;
  const std::string per_unit = std::string("_us_per_") + std::string(unit);
  report.add("measured_wall_s", wall, 3);
  report.add("server_cpu_s", server_cpu);
  if (server_cpu) {
    report.add("server_cpu_share", wall > 0 ? *server_cpu / wall : 0.0, 3);
    if (units > 0)
      report.add("server_cpu" + per_unit, *server_cpu * per, 3);
    else
      report.add_null("server_cpu" + per_unit);
  } else {
    report.add_null("server_cpu_share").add_null("server_cpu" + per_unit);
  }
  report.add("loadgen_cpu_s", own_cpu, 3);
  report.add("loadgen_cpu_share", wall > 0 ? own_cpu / wall : 0.0, 3);
  if (units > 0)
    report.add("loadgen_cpu" + per_unit, own_cpu * per, 3);
  else
    report.add_null("loadgen_cpu" + per_unit);
  // Other engineers' jobs share this machine: their CPU time during the window says how much
  // to trust the figures.
  if (from.machine_busy_s && to.machine_busy_s) {
    const double others =
        *to.machine_busy_s - *from.machine_busy_s - own_cpu - server_cpu.value_or(0.0);
    report.add("other_cpu_s", std::max(others, 0.0), 2);
  } else {
    report.add_null("other_cpu_s");
  }
}

void add_parameters(json_line& report, const options& opts) {
  report.add("tool", "roomcast-loadgen")
      .add("scenario", scenario_name(opts.kind))
      .add("label", opts.label)
      .add("host", opts.host)
      .add("port", opts.port)
      .add("nodes", opts.ports.size())
      .add("duration_s", opts.duration_s, 3)
      .add("warmup_s", opts.warmup_s, 3)
      .add("server_pid", opts.server_pid)
      .add("loadgen_cpu", opts.cpu);
}

void note(const options& opts, std::string_view text) {
  if (opts.quiet) return;
  std::cerr << "loadgen[" << opts.label << " " << scenario_name(opts.kind) << "] " << text << '\n';
}

void abandon(json_line& report, const options& opts, std::string_view why) {
  add_parameters(report, opts);
  report.add("ok", false).add("error", why);
  std::cout << report.str() << std::endl;
  std::cerr << "roomcast-loadgen: " << why << std::endl;
  std::_Exit(1);
}

std::string fixed(double value, int decimals) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, value);
  return text;
}

}  // namespace roomcast::loadgen
