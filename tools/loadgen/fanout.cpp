// fanout: R rooms of M members; the first S members of each room send chat messages, either
// closed loop (a window of messages in flight per sender, one done when its sender reads its
// echo) or open loop (a fixed total rate on a fixed schedule: a late send keeps its scheduled
// time stamp, so a stalled server shows up as latency, not as a lower offered load). Every
// member checks each sender's sequence and measures the latency of every receipt.
#include <algorithm>
#include <functional>
#include <limits>
#include <memory>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>

#include "common.hpp"
#include "histogram.hpp"
#include "scenarios.hpp"
#include "wire.hpp"

namespace roomcast::loadgen {
namespace {

constexpr std::uint64_t none = std::numeric_limits<std::uint64_t>::max();
constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

struct sender;

struct fan_member : member {
  std::vector<std::uint64_t> next_expected;  // per sender of the room: the counter due next
  sender* sends = nullptr;                   // this member's sending side, if it is a sender
  bool lost = false;
};

struct sender {
  sender(const net::any_io_executor& executor, fan_member& m, int room, int index)
      : who(&m), frame(room, index), wake(executor) {}
  fan_member* who;
  chat_frame frame;
  net::steady_timer wake;      // open loop: the next send time; closed loop: a free slot
  std::int64_t offset_ns = 0;  // open loop: this sender's place in the period
  std::uint64_t sent = 0;      // messages handed to the socket; also the next counter
  std::uint64_t first_in_window = none;
  int in_flight = 0;     // closed loop: sent, own echo not back yet
  bool waiting = false;  // closed loop: suspended until an echo frees a slot
  bool done = false;
};

struct fanout_run {
  fanout_run(const options& o, const net::any_io_executor& executor, const fanout_hooks& h)
      : opts(o), hooks(h), to(make_targets(o)), loops(executor) {
    window_deliveries_by_node.assign(to.size(), 0);
  }
  const options& opts;
  const fanout_hooks& hooks;
  std::vector<target> to;                            // the nodes
  std::vector<std::unique_ptr<fan_member>> members;  // room-major: room r is [r*M, (r+1)*M)
  std::vector<member*> population;
  std::vector<std::unique_ptr<sender>> senders;  // room-major: room r is [r*S, (r+1)*S)
  std::function<void(member&)> on_entered;
  wait_group loops;  // readers and senders
  std::string escaped;

  // The schedule, steady clock ns.
  std::int64_t send_start_ns = 0;
  std::int64_t window_start_ns = never;
  std::int64_t window_end_ns = never;
  std::int64_t period_ns = 0;  // open loop: between two messages of one sender
  bool stop = false;           // senders: no more messages
  bool closing = false;        // the end: read and write errors are expected now
  bool aborted = false;
  std::string error;

  set_up_result setup;
  double settle_s = 0;
  usage_sample at_window_start;
  usage_sample at_window_end;
  double drain_s = 0;
  bool drained = false;

  // What came back.
  log_histogram latency;  // ns; every receipt of a message sent in the window
  std::uint64_t frames = 0;
  std::uint64_t deliveries = 0;         // chat frames of the receiver's own room, sender included
  std::uint64_t window_deliveries = 0;  // of those, received inside the window
  std::vector<std::uint64_t> window_deliveries_by_node;  // by the receiver's node
  std::uint64_t progress = 0;      // over receivers and their senders: sum of counters due
  std::uint64_t foreign = 0;       // chat frames of other rooms (the seed server sends all)
  std::uint64_t other_frames = 0;  // notices, acknowledgements
  std::uint64_t server_errors = 0;
  std::string first_server_error;
  std::uint64_t gaps = 0;  // a counter above the one due
  std::uint64_t skipped = 0;
  std::uint64_t out_of_order = 0;  // a counter below the one due (duplicate or reordered)
  std::uint64_t lost = 0;
  std::string first_loss;
  std::int64_t last_frame_ns = 0;
  std::int64_t max_lag_ns = 0;  // open loop, in the window: how late a send began after its time
};

steady::time_point at_ns(std::int64_t ns) {
  return steady::time_point(
      std::chrono::duration_cast<steady::duration>(std::chrono::nanoseconds(ns)));
}

void lose(fanout_run& run, fan_member& m, const std::string& why) {
  if (m.lost) return;
  m.lost = true;
  ++run.lost;
  if (run.first_loss.empty()) run.first_loss = m.name + ": " + why;
}

std::uint64_t expected_progress(const fanout_run& run) {
  std::uint64_t sent = 0;
  for (const auto& s : run.senders)
    sent += s->sent;
  return sent * static_cast<std::uint64_t>(run.opts.members);
}

bool all_senders_done(const fanout_run& run) {
  return std::all_of(run.senders.begin(), run.senders.end(), [](const auto& s) { return s->done; });
}

void on_chat(fanout_run& run, fan_member& m, const chat_stamp& stamp, std::int64_t now) {
  if (stamp.room != m.room) {
    ++run.foreign;
    return;
  }
  if (stamp.sender < 0 || stamp.sender >= run.opts.senders) {
    ++run.other_frames;
    return;
  }
  auto& due = m.next_expected[static_cast<std::size_t>(stamp.sender)];
  if (stamp.counter < due) {
    ++run.out_of_order;
    return;
  }
  if (stamp.counter > due) {
    ++run.gaps;
    run.skipped += stamp.counter - due;
  }
  run.progress += stamp.counter + 1 - due;
  due = stamp.counter + 1;
  ++run.deliveries;
  if (now >= run.window_start_ns && now < run.window_end_ns) {
    ++run.window_deliveries;
    ++run.window_deliveries_by_node[m.node];
  }
  if (stamp.stamp_ns >= run.window_start_ns && stamp.stamp_ns < run.window_end_ns)
    run.latency.record(static_cast<std::uint64_t>(std::max<std::int64_t>(now - stamp.stamp_ns, 0)));
  if (stamp.sender == m.index && m.sends != nullptr) {
    sender& own = *m.sends;
    --own.in_flight;
    if (own.waiting) own.wake.cancel();
  }
}

net::awaitable<void> receive_loop(fanout_run& run, fan_member& m) {
  for (;;) {
    auto [ec, frame] = co_await read_frame(*m.link);
    if (ec) {
      if (!run.closing) lose(run, m, describe_end(*m.link, ec));
      co_return;
    }
    const std::int64_t now = now_ns();
    run.last_frame_ns = now;
    ++run.frames;
    if (const auto stamp = find_chat_stamp(frame)) {
      on_chat(run, m, *stamp, now);
    } else if (is_error_frame(frame)) {
      if (run.first_server_error.empty())
        run.first_server_error = m.name + " got " + std::string(frame.substr(0, 200));
      ++run.server_errors;
    } else {
      ++run.other_frames;
    }
  }
}

net::awaitable<bool> send_one(fanout_run& run, sender& s, std::int64_t stamp) {
  if (stamp >= run.window_start_ns && s.first_in_window == none) s.first_in_window = s.sent;
  const std::string_view frame = s.frame.render(s.sent, stamp);
  ++s.sent;
  ++s.in_flight;
  const error_code ec = co_await write_frame(*s.who->link, frame);
  if (ec) {
    if (!run.closing) lose(run, *s.who, "send failed: " + ec.message());
    co_return false;
  }
  co_return true;
}

net::awaitable<void> send_open_loop(fanout_run& run, sender& s) {
  std::int64_t next = run.send_start_ns + s.offset_ns;
  while (!run.stop && next < run.window_end_ns) {
    if (now_ns() < next) {
      s.wake.expires_at(at_ns(next));
      co_await s.wake.async_wait(use_nothrow);
      continue;
    }
    const std::int64_t stamp = next;
    next += run.period_ns;
    if (stamp >= run.window_start_ns) run.max_lag_ns = std::max(run.max_lag_ns, now_ns() - stamp);
    const bool sent = co_await send_one(run, s, stamp);
    if (!sent) break;
  }
  s.done = true;
}

net::awaitable<void> send_closed_loop(fanout_run& run, sender& s) {
  const int window = run.opts.window.value_or(1);
  while (!run.stop) {
    if (s.in_flight >= window) {
      s.waiting = true;
      s.wake.expires_at(steady::time_point::max());
      co_await s.wake.async_wait(use_nothrow);
      s.waiting = false;
      continue;
    }
    const std::int64_t stamp = now_ns();
    if (stamp >= run.window_end_ns) break;
    const bool sent = co_await send_one(run, s, stamp);
    if (!sent) break;
  }
  s.done = true;
}

void abort_run(fanout_run& run, std::string why) {
  if (run.aborted) return;
  run.aborted = true;
  run.error = std::move(why);
}

// Waits until `until` (or, with `until_drained`, until every message has reached every member),
// with a progress line a second and the stall check.
net::awaitable<void> watch_until(fanout_run& run, std::int64_t until, bool until_drained) {
  std::int64_t last_note = now_ns();
  for (;;) {
    const std::int64_t now = now_ns();
    const std::uint64_t due = expected_progress(run);
    const std::uint64_t outstanding = due > run.progress ? due - run.progress : 0;
    if (until_drained && outstanding == 0 && all_senders_done(run)) co_return;
    if (run.aborted || now >= until) co_return;
    if (!until_drained && now >= run.window_start_ns && run.hooks.end_window != nullptr
        && run.hooks.end_window->load()) {
      run.window_end_ns = std::min(run.window_end_ns, now);
      co_return;
    }
    if (run.lost == run.members.size()) {
      abort_run(run, "every connection was lost; first: " + run.first_loss);
      co_return;
    }
    const auto stall = static_cast<std::int64_t>(run.opts.stall_timeout_s * 1e9);
    if (outstanding > 0 && now - run.last_frame_ns > stall) {
      abort_run(run, "the server stopped answering: no frame for " + fixed(run.opts.stall_timeout_s)
                         + " s with " + std::to_string(outstanding) + " deliveries outstanding");
      co_return;
    }
    if (now - last_note >= 1'000'000'000) {
      last_note = now;
      std::uint64_t sent = 0;
      for (const auto& s : run.senders)
        sent += s->sent;
      note(run.opts, "t=" + fixed(static_cast<double>(now - run.send_start_ns) / 1e9) + "s sent "
                         + std::to_string(sent) + ", deliveries " + std::to_string(run.deliveries)
                         + ", outstanding " + std::to_string(outstanding) + ", gaps "
                         + std::to_string(run.gaps) + ", lost " + std::to_string(run.lost));
    }
    co_await sleep_until(at_ns(std::min(until, now + 100'000'000)));
  }
}

void finish(fanout_run& run) {
  run.stop = true;
  run.closing = true;
  for (auto& s : run.senders)
    s->wake.cancel();
  for (auto& m : run.members)
    if (m->link) drop(*m->link);
}

net::awaitable<void> drive(fanout_run& run) {
  const auto executor = co_await net::this_coro::executor;
  const std::span<member* const> population(run.population);
  run.setup = co_await set_up(population, run.to, run.opts, run.on_entered);
  if (!run.setup.ok) {
    abort_run(run, run.setup.error);
    finish(run);
    co_return;
  }
  // Joining members' events may still be on their way to the others (in a large room they are
  // the bulk of the set-up's bytes): sending starts when they have all been read.
  const auto settle_start = steady::now();
  const auto settle_limit = settle_start + seconds(run.opts.setup_timeout_s);
  const auto quiet = static_cast<std::int64_t>(run.opts.settle_s * 1e9);
  run.last_frame_ns = now_ns();
  while (now_ns() - run.last_frame_ns < quiet) {
    if (steady::now() >= settle_limit) {
      abort_run(run, "frames kept arriving for --setup-timeout after the set-up");
      finish(run);
      co_return;
    }
    co_await sleep_until(at_ns(run.last_frame_ns + quiet));
  }
  run.settle_s = std::chrono::duration<double>(steady::now() - settle_start).count();
  note(run.opts, std::to_string(run.setup.entered) + " connections in "
                     + std::to_string(run.opts.rooms) + " rooms after "
                     + fixed(run.setup.seconds, 2) + " s, quiet after " + fixed(run.settle_s, 2)
                     + " s more; sending");

  if (run.hooks.on_sending) run.hooks.on_sending();
  const std::int64_t start = now_ns();
  run.send_start_ns = start;
  run.last_frame_ns = start;
  run.window_start_ns = start + static_cast<std::int64_t>(run.opts.warmup_s * 1e9);
  run.window_end_ns = run.window_start_ns + static_cast<std::int64_t>(run.opts.duration_s * 1e9);
  for (auto& s : run.senders) {
    run.loops.add();
    if (run.opts.rate) {
      net::co_spawn(executor, send_open_loop(run, *s), tracked_end{&run.loops, &run.escaped});
    } else {
      net::co_spawn(executor, send_closed_loop(run, *s), tracked_end{&run.loops, &run.escaped});
    }
  }

  co_await watch_until(run, run.window_start_ns, false);
  run.at_window_start = sample_usage(run.opts);
  co_await watch_until(run, run.window_end_ns, false);
  run.at_window_end = sample_usage(run.opts);
  run.stop = true;
  for (auto& s : run.senders)
    s->wake.cancel();
  const std::int64_t drain_start = now_ns();
  const std::int64_t drain_end = drain_start + static_cast<std::int64_t>(run.opts.drain_s * 1e9);
  co_await watch_until(run, drain_end, true);
  run.drain_s = static_cast<double>(now_ns() - drain_start) / 1e9;
  run.drained = all_senders_done(run) && run.progress == expected_progress(run);
  if (!run.escaped.empty()) abort_run(run, run.escaped);
  finish(run);
}

struct missing_counts {
  std::uint64_t messages = 0;    // sent in the window, not received by at least one member
  std::uint64_t deliveries = 0;  // (message, member) pairs of those never received
  std::uint64_t window_messages = 0;
};

missing_counts count_missing(const fanout_run& run) {
  missing_counts counts;
  const auto members = static_cast<std::size_t>(run.opts.members);
  const auto per_room = static_cast<std::size_t>(run.opts.senders);
  for (std::size_t r = 0; r < static_cast<std::size_t>(run.opts.rooms); ++r) {
    for (std::size_t k = 0; k < per_room; ++k) {
      const sender& s = *run.senders[r * per_room + k];
      if (s.first_in_window == none) continue;
      const std::uint64_t from = s.first_in_window;
      const std::uint64_t to = s.sent;
      counts.window_messages += to - from;
      std::uint64_t least = to;
      for (std::size_t i = 0; i < members; ++i) {
        const std::uint64_t got =
            std::clamp(run.members[r * members + i]->next_expected[k], from, to);
        counts.deliveries += to - got;
        least = std::min(least, got);
      }
      counts.messages += to - least;
    }
  }
  return counts;
}

double per_second(std::uint64_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0.0;
}

void write_report(const fanout_run& run, json_line& report) {
  const auto& opts = run.opts;
  const auto missing = count_missing(run);
  const double window = static_cast<double>(run.window_end_ns - run.window_start_ns) / 1e9;
  const auto us = [&run](double percent) {
    return static_cast<double>(run.latency.percentile(percent)) / 1e3;
  };
  add_parameters(report, opts);
  report.add("rooms", opts.rooms)
      .add("members", opts.members)
      .add("senders_per_room", opts.senders)
      .add("mode", opts.rate ? "open" : "closed")
      .add("window", opts.window)
      .add("rate_msgs_per_s", opts.rate)
      .add("offered_deliveries_per_s",
           opts.rate ? std::optional<double>(*opts.rate * opts.members) : std::nullopt)
      .add("connections", run.members.size())
      .add("source_addresses", run.setup.source_addresses)
      .add("setup_s", run.setup.seconds, 3)
      .add("settle_s", run.settle_s, 3)
      .add("messages_sent", missing.window_messages)
      .add("messages_per_s", per_second(missing.window_messages, window), 1)
      .add("deliveries", run.window_deliveries)
      .add("deliveries_per_s", per_second(run.window_deliveries, window), 1)
      .add("latency_samples", run.latency.count())
      .add("latency_p50_us", us(50), 1)
      .add("latency_p90_us", us(90), 1)
      .add("latency_p99_us", us(99), 1)
      .add("latency_p999_us", us(99.9), 1)
      .add("latency_max_us", static_cast<double>(run.latency.max()) / 1e3, 1)
      .add("latency_mean_us", run.latency.mean() / 1e3, 1)
      .add("gaps", run.gaps)
      .add("skipped", run.skipped)
      .add("out_of_order", run.out_of_order)
      .add("missing_messages", missing.messages)
      .add("missing_deliveries", missing.deliveries + run.skipped)
      .add("connections_lost", run.lost)
      .add("server_errors", run.server_errors)
      .add("foreign_room_frames", run.foreign)
      .add("other_frames", run.other_frames)
      .add("frames_received", run.frames)
      .add("max_schedule_lag_ms",
           opts.rate ? std::optional<double>(static_cast<double>(run.max_lag_ns) / 1e6)
                     : std::nullopt)
      .add("drained", run.drained)
      .add("drain_s", run.drain_s, 3);
  if (run.setup.ok && !run.aborted) {
    add_usage(report, run.at_window_start, run.at_window_end, run.window_deliveries, "delivery");
    add_node_usage(report, run.at_window_start, run.at_window_end, run.window_deliveries_by_node,
                   "delivery");
  } else {
    report.add_null("server_cpu_s").add_null("server_cpu_us_per_delivery");
  }
  report.add("server_rss_bytes", run.at_window_end.server_rss_bytes);
  if (!run.first_loss.empty()) report.add("first_loss", run.first_loss);
  if (!run.first_server_error.empty()) report.add("first_server_error", run.first_server_error);
}

}  // namespace

int run_fanout(const options& opts, json_line& report, const fanout_hooks& hooks) {
  net::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE);
  const auto executor = io.get_executor();
  fanout_run run(opts, executor, hooks);

  for (int r = 0; r < opts.rooms; ++r) {
    for (int i = 0; i < opts.members; ++i) {
      auto m = std::make_unique<fan_member>();
      m->room = opts.room_base + r;
      m->index = i;
      // Rotated by room, so that the rooms' creators and senders are spread over the nodes too.
      m->node = static_cast<std::size_t>(r + i) % opts.ports.size();
      m->ordinal = run.members.size();
      m->name = "r" + std::to_string(r) + "m" + std::to_string(i);
      m->next_expected.assign(static_cast<std::size_t>(opts.senders), 0);
      run.population.push_back(m.get());
      run.members.push_back(std::move(m));
    }
  }
  for (int r = 0; r < opts.rooms; ++r) {
    for (int k = 0; k < opts.senders; ++k) {
      auto& m = *run.members[static_cast<std::size_t>(r * opts.members + k)];
      run.senders.push_back(std::make_unique<sender>(executor, m, m.room, k));
      m.sends = run.senders.back().get();
    }
  }
  if (opts.rate) {
    // Sender j of T sends at start + j/rate + n*T/rate: the total rate, evenly spread.
    const double total = static_cast<double>(run.senders.size());
    run.period_ns = std::max<std::int64_t>(1, static_cast<std::int64_t>(total * 1e9 / *opts.rate));
    for (std::size_t j = 0; j < run.senders.size(); ++j)
      run.senders[j]->offset_ns =
          static_cast<std::int64_t>(static_cast<double>(j) * 1e9 / *opts.rate);
  }
  run.on_entered = [&run, executor](member& m) {
    run.loops.add();
    net::co_spawn(executor, receive_loop(run, static_cast<fan_member&>(m)),
                  tracked_end{&run.loops, &run.escaped});
  };

  note(opts, "connecting " + std::to_string(run.members.size()) + " members to "
                 + std::to_string(run.to.size()) + " node(s) from " + run.to.front().host);
  run.loops.add();
  net::co_spawn(executor, drive(run), tracked_end{&run.loops, &run.escaped});
  const double budget = opts.setup_timeout_s + opts.warmup_s + opts.duration_s + opts.drain_s
                        + 3 * opts.step_timeout_s + 10;
  io.run_for(seconds(budget));
  if (!io.stopped()) abandon(report, opts, "the run overran its own deadline");

  write_report(run, report);
  if (hooks.figures != nullptr) {
    auto& f = *hooks.figures;
    f.p50_ms = static_cast<double>(run.latency.percentile(50)) / 1e6;
    f.p99_ms = static_cast<double>(run.latency.percentile(99)) / 1e6;
    f.max_ms = static_cast<double>(run.latency.max()) / 1e6;
    f.gaps = run.gaps;
    f.missing_deliveries = count_missing(run).deliveries + run.skipped;
    f.connections_lost = run.lost;
  }
  const bool failed_checks = run.gaps > 0 || run.out_of_order > 0 || run.lost > 0
                             || run.server_errors > 0 || count_missing(run).messages > 0
                             || run.skipped > 0;
  const bool failed = run.aborted || !run.setup.ok;
  report.add("ok", !failed && !failed_checks);
  std::string hint;
  if (run.first_server_error.find("rate_limited") != std::string::npos)
    hint = " (the server refused messages as rate-limited: start roomcast with --rate-limit 0)";
  else if (run.server_errors > 0)
    hint = " (the server sent error frames: see first_server_error)";
  if (failed)
    report.add("error", run.error + hint);
  else if (failed_checks)
    report.add("error", "checks failed: gaps, missing or lost connections" + hint);
  return failed ? 1 : failed_checks ? 3 : 0;
}

}  // namespace roomcast::loadgen
