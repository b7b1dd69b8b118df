// idle: C connections joined into rooms of M members and held: how long connecting and joining
// takes, and what each held connection costs the server in RSS.
#include <functional>
#include <memory>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include "common.hpp"
#include "scenarios.hpp"

namespace roomcast::loadgen {
namespace {

struct idle_member : member {
  bool lost = false;
};

struct idle_run {
  idle_run(const options& o, const net::any_io_executor& executor)
      : opts(o), to(make_targets(o)), loops(executor) {}
  const options& opts;
  std::vector<target> to;  // one node: idle takes one --port
  std::vector<std::unique_ptr<idle_member>> members;
  std::vector<member*> population;
  std::function<void(member&)> on_entered;
  wait_group loops;
  std::string escaped;
  bool closing = false;
  bool aborted = false;
  bool warmed_up = false;
  int warm_room = 0;
  std::string error;

  set_up_result setup;
  usage_sample before;      // before the first connection
  usage_sample after_join;  // when the last member entered its room
  usage_sample after;       // at the end of the hold
  std::uint64_t frames = 0;
  std::uint64_t lost = 0;
  std::string first_loss;
};

net::awaitable<void> receive_loop(idle_run& run, idle_member& m) {
  for (;;) {
    auto [ec, frame] = co_await read_frame(*m.link);
    if (ec) {
      if (!run.closing && !m.lost) {
        m.lost = true;
        ++run.lost;
        if (run.first_loss.empty()) run.first_loss = m.name + ": " + describe_end(*m.link, ec);
      }
      co_return;
    }
    ++run.frames;
  }
}

void finish(idle_run& run) {
  run.closing = true;
  for (auto& m : run.members)
    if (m->link) drop(*m->link);
}

// One room of members that enters and leaves before the measurement starts, so that what a
// server sets up once per process (per-thread buffers and caches, the first room) is not charged
// to the connections measured. Its room number follows the measured rooms.
net::awaitable<void> warm_up(idle_run& run, int room) {
  std::vector<std::unique_ptr<member>> warm;
  std::vector<member*> population;
  for (int i = 0; i < run.opts.members; ++i) {
    auto m = std::make_unique<member>();
    m->room = room;
    m->index = i;
    m->ordinal = static_cast<std::size_t>(i);
    m->name = "w" + std::to_string(i);
    population.push_back(m.get());
    warm.push_back(std::move(m));
  }
  const std::function<void(member&)> ignore = [](member&) {};
  const std::span<member* const> view(population);
  const auto result = co_await set_up(view, run.to, run.opts, ignore);
  for (auto& m : warm)
    if (m->link) drop(*m->link);
  // Let the server see the disconnections and release the room before the first sample.
  co_await sleep_until(steady::now() + std::chrono::milliseconds(500));
  run.warmed_up = result.ok;
}

net::awaitable<void> drive(idle_run& run) {
  if (run.opts.warmup_s > 0) co_await warm_up(run, run.warm_room);
  run.before = sample_usage(run.opts);
  const std::span<member* const> population(run.population);
  run.setup = co_await set_up(population, run.to, run.opts, run.on_entered);
  run.after_join = sample_usage(run.opts);
  if (!run.setup.ok) {
    run.aborted = true;
    run.error = run.setup.error;
    finish(run);
    co_return;
  }
  note(run.opts, std::to_string(run.setup.entered) + " connections in their rooms after "
                     + fixed(run.setup.seconds, 2) + " s; holding them for "
                     + fixed(run.opts.duration_s) + " s");
  const auto end = steady::now() + seconds(run.opts.duration_s);
  while (steady::now() < end) {
    co_await sleep_until(std::min(end, steady::now() + std::chrono::seconds(1)));
    if (run.lost == run.members.size()) {
      run.aborted = true;
      run.error = "every connection was lost; first: " + run.first_loss;
      break;
    }
  }
  run.after = sample_usage(run.opts);
  if (!run.escaped.empty() && !run.aborted) {
    run.aborted = true;
    run.error = run.escaped;
  }
  finish(run);
}

std::optional<double> per_connection(const std::optional<std::uint64_t>& before,
                                     const std::optional<std::uint64_t>& after, std::size_t n) {
  if (!before || !after || n == 0) return std::nullopt;
  return (static_cast<double>(*after) - static_cast<double>(*before)) / static_cast<double>(n);
}

}  // namespace

int run_idle(const options& opts, json_line& report) {
  net::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE);
  const auto executor = io.get_executor();
  idle_run run(opts, executor);
  const int rooms = (opts.connections + opts.members - 1) / opts.members;
  run.warm_room = opts.room_base + rooms;
  for (int i = 0; i < opts.connections; ++i) {
    auto m = std::make_unique<idle_member>();
    m->room = opts.room_base + i / opts.members;
    m->index = i % opts.members;
    m->ordinal = static_cast<std::size_t>(i);
    m->name = "i" + std::to_string(i);
    run.population.push_back(m.get());
    run.members.push_back(std::move(m));
  }
  run.on_entered = [&run, executor](member& m) {
    run.loops.add();
    net::co_spawn(executor, receive_loop(run, static_cast<idle_member&>(m)),
                  tracked_end{&run.loops, &run.escaped});
  };
  note(opts, "connecting " + std::to_string(opts.connections) + " members into "
                 + std::to_string(rooms) + " rooms");
  run.loops.add();
  net::co_spawn(executor, drive(run), tracked_end{&run.loops, &run.escaped});
  io.run_for(seconds(opts.setup_timeout_s + opts.duration_s + 2 * opts.step_timeout_s + 10));
  if (!io.stopped()) abandon(report, opts, "the run overran its own deadline");

  const auto n = run.setup.entered;
  add_parameters(report, opts);
  report.add("warmed_up", run.warmed_up)
      .add("connections", opts.connections)
      .add("members", opts.members)
      .add("rooms", rooms)
      .add("source_addresses", run.setup.source_addresses)
      .add("connections_entered", n)
      .add("connect_join_s", run.setup.seconds, 3)
      .add("connect_join_us_per_connection",
           n > 0 ? run.setup.seconds * 1e6 / static_cast<double>(n) : 0.0, 1)
      .add("server_rss_before_bytes", run.before.server_rss_bytes)
      .add("server_rss_after_join_bytes", run.after_join.server_rss_bytes)
      .add("server_rss_after_bytes", run.after.server_rss_bytes)
      .add("server_rss_per_connection_bytes",
           per_connection(run.before.server_rss_bytes, run.after.server_rss_bytes, n), 0)
      .add("frames_received", run.frames)
      .add("connections_lost", run.lost);
  // CPU over the set-up: what connecting and joining cost, per connection.
  add_usage(report, run.before, run.after_join, n, "connection");
  if (!run.first_loss.empty()) report.add("first_loss", run.first_loss);
  const bool failed = run.aborted;
  const bool failed_checks = run.lost > 0;
  report.add("ok", !failed && !failed_checks);
  if (failed)
    report.add("error", run.error);
  else if (failed_checks)
    report.add("error", "connections were lost while held");
  return failed ? 1 : failed_checks ? 3 : 0;
}

}  // namespace roomcast::loadgen
