// The mixed scenario: does a big room's fan-out hold up small rooms (head-of-line blocking)?
// The small rooms run alone first; then the big room starts on a second thread (its own
// io_context, so that its 50,000 frames a second do not queue behind the small rooms' in the
// load generator), and once it is sending, the small rooms run again on new room numbers.
// The figure is the small rooms' latency beside the big room against their latency alone.
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "common.hpp"
#include "scenarios.hpp"

namespace roomcast::loadgen {
namespace {

// Room numbers: the small rooms alone, the small rooms beside, then the big room.
options small_rooms(const options& opts, int room_base) {
  options small = opts;
  small.kind = scenario::fanout;
  small.room_base = room_base;
  return small;
}

options big_room(const options& opts) {
  options big = opts;
  big.kind = scenario::fanout;
  big.rooms = 1;
  big.members = opts.big_members;
  big.senders = 1;
  big.rate = opts.big_rate;
  big.room_base = opts.room_base + 2 * opts.rooms;
  big.label = opts.label + "/big";
  // Its window covers the small rooms' whole second run (their set-up, well under a second for a
  // thousand connections, settling, warm-up, window and drain, with a margin); it is ended
  // early when that run ends.
  big.warmup_s = 0;
  big.duration_s = opts.settle_s + opts.warmup_s + opts.duration_s + opts.drain_s + 5;
  return big;
}

void add_figures(json_line& report, std::string_view prefix, const fanout_figures& f) {
  const std::string p(prefix);
  report.add(p + "_p50_ms", f.p50_ms, 3)
      .add(p + "_p99_ms", f.p99_ms, 3)
      .add(p + "_max_ms", f.max_ms, 3);
}

}  // namespace

int run_mixed(const options& opts, json_line& report) {
  add_parameters(report, opts);
  report.add("rooms", opts.rooms)
      .add("members", opts.members)
      .add("rate_msgs_per_s", opts.rate)
      .add("big_members", opts.big_members)
      .add("big_rate_msgs_per_s", opts.big_rate, 3);

  fanout_figures alone;
  json_line alone_report;
  note(opts, "the small rooms alone");
  const int alone_status =
      run_fanout(small_rooms(opts, opts.room_base), alone_report, {.figures = &alone});

  fanout_figures big;
  json_line big_report;
  int big_status = 1;
  std::promise<void> sending;
  auto big_sending = sending.get_future();
  const auto big_options = big_room(opts);
  std::atomic<bool> small_rooms_done{false};
  fanout_hooks big_hooks{.on_sending = [&sending] { sending.set_value(); },
                         .figures = &big,
                         .end_window = &small_rooms_done};
  note(opts, "the big room");
  std::thread big_thread([&] { big_status = run_fanout(big_options, big_report, big_hooks); });

  fanout_figures beside;
  json_line beside_report;
  int beside_status = 1;
  // The big room's set-up (every join event goes to every member) takes seconds for 1000.
  const auto limit = std::chrono::duration<double>(opts.setup_timeout_s);
  if (big_sending.wait_for(limit) == std::future_status::ready) {
    note(opts, "the small rooms beside the big room");
    beside_status = run_fanout(small_rooms(opts, opts.room_base + opts.rooms), beside_report,
                               {.figures = &beside});
  } else {
    beside_report.add("ok", false).add("error", "the big room did not start sending");
  }
  small_rooms_done = true;
  big_thread.join();

  add_figures(report, "alone", alone);
  add_figures(report, "beside", beside);
  add_figures(report, "big", big);
  report.add("p99_ratio", alone.p99_ms > 0 ? beside.p99_ms / alone.p99_ms : 0.0, 2)
      .add("gaps", alone.gaps + beside.gaps + big.gaps)
      .add("missing_deliveries",
           alone.missing_deliveries + beside.missing_deliveries + big.missing_deliveries)
      .add("connections_lost",
           alone.connections_lost + beside.connections_lost + big.connections_lost)
      .add_object("alone", alone_report)
      .add_object("beside", beside_report)
      .add_object("big", big_report);

  // 1 (a part failed to run) outweighs 3 (a part ran but failed a check).
  const auto any = [&](int status) {
    return alone_status == status || beside_status == status || big_status == status;
  };
  const bool too_slow = opts.max_p99_ms > 0 && beside.p99_ms > opts.max_p99_ms;
  const int status = any(1) ? 1 : any(3) || too_slow ? 3 : 0;
  report.add("ok", status == 0);
  if (any(1) || any(3))
    report.add("error", "a part of the run failed: see alone, beside and big");
  else if (too_slow)
    report.add("error", "the small rooms' p99 beside the big room is above --max-p99-ms");
  return status;
}

}  // namespace roomcast::loadgen
