// churn: K workers, each looping connect -> upgrade -> join (a room of its own, created, or one
// shared room) -> leave -> close, for the duration: cycles per second and failures.
#include <algorithm>
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

struct churn_run {
  churn_run(const options& o, const net::any_io_executor& executor)
      : opts(o),
        to(make_target(o)),
        sources(o.source_addresses, static_cast<std::size_t>(o.concurrency)),
        workers(executor),
        others(executor) {}
  const options& opts;
  target to;
  source_pool sources;
  wait_group workers;
  wait_group others;  // the shared room's anchor reader
  std::string escaped;
  std::size_t connects = 0;  // picks the next source address

  client_ptr anchor;  // --shared-room: holds the room open
  bool anchor_closing = false;

  steady::time_point window_start;
  steady::time_point window_end;
  bool stop = false;
  bool aborted = false;
  std::string error;

  std::uint64_t cycles = 0;  // completed inside the window
  std::uint64_t cycles_total = 0;
  std::uint64_t failures = 0;
  std::string first_failure;
  steady::time_point last_success;
  log_histogram cycle_time;  // ns, cycles completed inside the window
  usage_sample at_window_start;
  usage_sample at_window_end;
};

int room_of(const churn_run& run, int worker) {
  return run.opts.room_base + (run.opts.shared_room ? 0 : worker);
}

// One cycle; an error text, or empty on success.
net::awaitable<std::string> cycle(churn_run& run, step_guard& guard, const std::string& enter,
                                  const std::string& leave, const std::string& key) {
  const auto executor = co_await net::this_coro::executor;
  client_ptr c = make_client(executor);
  guard.arm(socket_of(*c), seconds(run.opts.step_timeout_s));
  error_code ec;
  for (int attempt = 0;; ++attempt) {
    ec = co_await open_websocket(*c, run.to, run.sources.pick(run.connects++));
    if (ec == boost::system::errc::address_not_available && attempt < 8 && run.sources.widen()) {
      c = make_client(executor);
      guard.arm(socket_of(*c), seconds(run.opts.step_timeout_s));
      continue;
    }
    break;
  }
  if (ec) {
    guard.disarm();
    co_return "connect or upgrade: " + (guard.fired() ? std::string("timed out") : explain(ec));
  }
  const room_answer entered = co_await ask(*c, enter, key);
  if (entered.ec || !entered.accepted) {
    guard.disarm();
    drop(*c);
    if (entered.ec)
      co_return "join: " + std::string(guard.fired() ? "timed out" : entered.ec.message());
    co_return "join refused: " + entered.detail;
  }
  const room_answer left = co_await ask(*c, leave, key);
  if (left.ec || !left.accepted) {
    guard.disarm();
    drop(*c);
    if (left.ec) co_return "leave: " + std::string(guard.fired() ? "timed out" : left.ec.message());
    co_return "leave refused: " + left.detail;
  }
  ec = co_await close_websocket(*c);
  guard.disarm();
  if (ec) {
    drop(*c);
    co_return "close: " + std::string(guard.fired() ? "timed out" : ec.message());
  }
  co_return std::string();
}

net::awaitable<void> work(churn_run& run, int worker) {
  step_guard guard(co_await net::this_coro::executor);
  const std::string name = "c" + std::to_string(worker);
  const int room = room_of(run, worker);
  const std::string enter = enter_frame(!run.opts.shared_room, room, name);
  const std::string leave = leave_frame(room, name);
  const std::string key = name_key(name);
  while (!run.stop) {
    const auto started = steady::now();
    const std::string failure = co_await cycle(run, guard, enter, leave, key);
    const auto ended = steady::now();
    if (failure.empty()) {
      ++run.cycles_total;
      run.last_success = ended;
      if (ended >= run.window_start && ended < run.window_end) {
        ++run.cycles;
        run.cycle_time.record(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(ended - started).count()));
      }
    } else {
      ++run.failures;
      if (run.first_failure.empty()) run.first_failure = name + ": " + failure;
    }
    if (ended >= run.window_end) break;
  }
}

net::awaitable<void> hold_anchor(churn_run& run) {
  for (;;) {
    auto [ec, frame] = co_await read_frame(*run.anchor);
    if (ec) {
      if (!run.anchor_closing && !run.aborted) {
        run.aborted = true;
        run.error =
            "the shared room's first member was disconnected: " + describe_end(*run.anchor, ec);
        run.stop = true;
      }
      co_return;
    }
  }
}

net::awaitable<bool> open_anchor(churn_run& run) {
  const auto executor = co_await net::this_coro::executor;
  step_guard guard(executor);
  run.anchor = make_client(executor);
  guard.arm(socket_of(*run.anchor), seconds(run.opts.step_timeout_s));
  const error_code ec = co_await open_websocket(*run.anchor, run.to, run.sources.pick(0));
  if (ec) {
    guard.disarm();
    run.error = "the shared room's first member could not connect: " + explain(ec);
    co_return false;
  }
  const std::string request = enter_frame(true, run.opts.room_base, "anchor");
  const std::string key = name_key("anchor");
  const room_answer answer = co_await ask(*run.anchor, request, key);
  guard.disarm();
  if (answer.ec || !answer.accepted) {
    run.error = "the shared room could not be created: "
                + (answer.ec ? answer.ec.message() : answer.detail);
    co_return false;
  }
  run.others.add();
  net::co_spawn(executor, hold_anchor(run), tracked_end{&run.others, &run.escaped});
  co_return true;
}

net::awaitable<void> drive(churn_run& run) {
  const auto executor = co_await net::this_coro::executor;
  if (run.opts.shared_room) {
    const bool opened = co_await open_anchor(run);
    if (!opened) {
      run.aborted = true;
      if (run.anchor) drop(*run.anchor);
      co_return;
    }
  }
  const auto start = steady::now();
  run.last_success = start;
  run.window_start = start + seconds(run.opts.warmup_s);
  run.window_end = run.window_start + seconds(run.opts.duration_s);
  for (int k = 0; k < run.opts.concurrency; ++k) {
    run.workers.add();
    net::co_spawn(executor, work(run, k), tracked_end{&run.workers, &run.escaped});
  }
  bool sampled_start = false;
  auto last_note = start;
  std::uint64_t noted_cycles = 0;
  for (;;) {
    const auto now = steady::now();
    if (!sampled_start && now >= run.window_start) {
      run.at_window_start = sample_usage(run.opts);
      sampled_start = true;
    }
    if (now >= run.window_end || run.aborted) break;
    if (now - run.last_success > seconds(run.opts.stall_timeout_s)) {
      run.aborted = true;
      run.error =
          "no cycle completed for " + fixed(run.opts.stall_timeout_s)
          + " s; first failure: " + (run.first_failure.empty() ? "none" : run.first_failure);
      break;
    }
    if (now - last_note >= std::chrono::seconds(1)) {
      const double span = std::chrono::duration<double>(now - last_note).count();
      note(run.opts, "cycles " + std::to_string(run.cycles_total) + " ("
                         + fixed(static_cast<double>(run.cycles_total - noted_cycles) / span, 0)
                         + "/s), failures " + std::to_string(run.failures));
      last_note = now;
      noted_cycles = run.cycles_total;
    }
    const auto next = sampled_start ? run.window_end : run.window_start;
    co_await sleep_until(std::min(next, now + std::chrono::milliseconds(100)));
  }
  run.at_window_end = sample_usage(run.opts);
  run.stop = true;
  // Cycles in progress end within one --step-timeout.
  const auto deadline = steady::now() + seconds(run.opts.step_timeout_s) + std::chrono::seconds(1);
  const bool ended = co_await run.workers.wait_until(deadline);
  if (!ended && !run.aborted) {
    run.aborted = true;
    run.error = std::to_string(run.workers.active()) + " workers did not stop";
  }
  if (!run.escaped.empty() && !run.aborted) {
    run.aborted = true;
    run.error = run.escaped;
  }
  run.anchor_closing = true;
  if (run.anchor) drop(*run.anchor);
}

}  // namespace

int run_churn(const options& opts, json_line& report) {
  net::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE);
  const auto executor = io.get_executor();
  churn_run run(opts, executor);
  note(opts, std::to_string(opts.concurrency) + " workers, "
                 + (opts.shared_room ? "one shared room" : "a room each"));
  run.others.add();
  net::co_spawn(executor, drive(run), tracked_end{&run.others, &run.escaped});
  io.run_for(seconds(opts.warmup_s + opts.duration_s + 3 * opts.step_timeout_s
                     + opts.stall_timeout_s + 10));
  if (!io.stopped()) abandon(report, opts, "the run overran its own deadline");

  const double window = opts.duration_s;
  add_parameters(report, opts);
  report.add("concurrency", opts.concurrency)
      .add("shared_room", opts.shared_room)
      .add("source_addresses", run.sources.size())
      .add("cycles", run.cycles)
      .add("cycles_per_s", static_cast<double>(run.cycles) / window, 1)
      .add("cycles_total", run.cycles_total)
      .add("failures", run.failures)
      .add("cycle_p50_ms", static_cast<double>(run.cycle_time.percentile(50)) / 1e6, 3)
      .add("cycle_p99_ms", static_cast<double>(run.cycle_time.percentile(99)) / 1e6, 3)
      .add("cycle_max_ms", static_cast<double>(run.cycle_time.max()) / 1e6, 3);
  if (run.at_window_start.at != steady::time_point{}) {
    add_usage(report, run.at_window_start, run.at_window_end, run.cycles, "cycle");
  }
  report.add("server_rss_bytes", run.at_window_end.server_rss_bytes);
  if (!run.first_failure.empty()) report.add("first_failure", run.first_failure);
  const bool failed = run.aborted;
  const bool failed_checks = run.failures > 0;
  report.add("ok", !failed && !failed_checks);
  if (failed)
    report.add("error", run.error);
  else if (failed_checks)
    report.add("error", "some cycles failed");
  return failed ? 1 : failed_checks ? 3 : 0;
}

}  // namespace roomcast::loadgen
