// flood: one measured member chats in a room of its own (open loop, --rate messages/s, its own
// echo measured) while --flooders connections send control frames (--flood-frame ping|pong) as
// fast as their sockets take them. First a window without the flood (the member's baseline),
// then a window of the same length with it: the member's echo latency in each, and how long each
// flooder lasted before the server closed it.
//
// The flooders run on a second thread of their own, at nice 19: writing the flood costs the load
// generator a core, and on this thread it would delay the member's reads and inflate what is
// measured. At nice 19 the flooders take what CPU the member leaves, and the member's thread
// runs as soon as an echo arrives.
#include <algorithm>
#include <array>
#include <atomic>
#include <future>
#include <limits>
#include <memory>
#include <optional>
#include <sys/resource.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

#include "common.hpp"
#include "histogram.hpp"
#include "scenarios.hpp"
#include "wire.hpp"

namespace roomcast::loadgen {
namespace {

constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();

steady::time_point at_ns(std::int64_t ns) {
  return steady::time_point(
      std::chrono::duration_cast<steady::duration>(std::chrono::nanoseconds(ns)));
}

// --- The flooders (their own thread and io_context) ------------------------------------------

struct flooder {
  explicit flooder(net::io_context& io) : socket(io) {}
  tcp::socket socket;
  std::string input;              // bytes read and not yet parsed
  std::int64_t started_ns = 0;    // the first flood write
  std::int64_t ended_ns = 0;      // the server's close frame, or the end of the connection
  int close_code = 0;             // the server's close code; 0: the connection ended without one
  std::string close_reason;       //
  bool ended = false;             //
  std::uint64_t frames_sent = 0;  // flood frames the socket took
  std::uint64_t pongs = 0;
  std::uint64_t other_frames = 0;  // the server's pings, error frames
  std::string error;               // connect or upgrade failure
};

// Every flooder, on one thread. Only that thread touches them until it is joined; the main thread
// posts to `io` (a locking io_context) and reads the results after join().
struct flood_crew {
  flood_crew(const options& o, const target& t) : opts(o), to(t), work(io.get_executor()) {}
  const options& opts;
  const target& to;
  net::io_context io;
  net::executor_work_guard<net::io_context::executor_type> work;
  std::vector<std::unique_ptr<flooder>> flooders;
  std::string chunk;  // many masked control frames, written again and again
  std::uint64_t frames_per_chunk = 0;
  bool stopping = false;
  std::atomic<int> ended{0};  // read by the main thread's progress notes
  std::thread thread;
};

// Parses the server's frames (unmasked) in f.input; at a close frame, records it and closes.
void take_frames(flood_crew& crew, flooder& f) {
  std::size_t at = 0;
  while (f.input.size() - at >= 2) {
    const auto b0 = static_cast<std::uint8_t>(f.input[at]);
    std::size_t length = static_cast<std::uint8_t>(f.input[at + 1]) & 0x7F;
    std::size_t header = 2;
    if (length >= 126) {
      const std::size_t extra = length == 126 ? 2 : 8;
      if (f.input.size() - at < 2 + extra) break;
      length = 0;
      for (std::size_t i = 0; i < extra; ++i)
        length = (length << 8) | static_cast<std::uint8_t>(f.input[at + 2 + i]);
      header += extra;
    }
    if (f.input.size() - at < header + length) break;
    const std::string_view payload(f.input.data() + at + header, length);
    at += header + length;
    switch (b0 & 0x0F) {
      case 0xA:
        ++f.pongs;
        break;
      case 0x8:
        f.close_code = payload.size() >= 2 ? (static_cast<std::uint8_t>(payload[0]) << 8)
                                                 | static_cast<std::uint8_t>(payload[1])
                                           : 1005;
        if (payload.size() > 2) f.close_reason = std::string(payload.substr(2));
        f.ended_ns = now_ns();
        f.ended = true;
        ++crew.ended;
        {
          error_code ignored;
          f.socket.close(ignored);  // the flood ends here; the writer sees the error
        }
        return;
      default:
        ++f.other_frames;
        break;
    }
  }
  f.input.erase(0, at);
}

net::awaitable<void> flood_reader(flood_crew& crew, flooder& f) {
  std::array<char, 64 * 1024> chunk;
  take_frames(crew, f);  // what came behind the 101
  while (!f.ended) {
    auto [ec, size] = co_await f.socket.async_read_some(net::buffer(chunk), use_nothrow);
    if (ec) {
      if (!f.ended) {
        f.ended_ns = now_ns();
        f.ended = true;
        ++crew.ended;
      }
      co_return;
    }
    f.input.append(chunk.data(), size);
    take_frames(crew, f);
  }
}

net::awaitable<void> flood_writer(flood_crew& crew, flooder& f) {
  f.started_ns = now_ns();
  while (!f.ended && !crew.stopping) {
    auto [ec, size] = co_await net::async_write(f.socket, net::buffer(crew.chunk), use_nothrow);
    if (ec) co_return;
    f.frames_sent += crew.frames_per_chunk;
  }
}

// Connects and upgrades one flooder on "/", then reads what the server sends until the end.
net::awaitable<void> connect_flooder(flood_crew& crew, flooder& f) {
  auto [connected] = co_await f.socket.async_connect(crew.to.server, use_nothrow);
  if (connected) {
    f.error = "connect: " + connected.message();
    co_return;
  }
  error_code ignored;
  f.socket.set_option(tcp::no_delay(true), ignored);
  const std::string request = "GET / HTTP/1.1\r\nHost: " + crew.to.host
                              + "\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                                "Sec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
  auto [written, n] = co_await net::async_write(f.socket, net::buffer(request), use_nothrow);
  if (written) {
    f.error = "upgrade request: " + written.message();
    co_return;
  }
  auto [read, head] = co_await net::async_read_until(f.socket, net::dynamic_buffer(f.input),
                                                     "\r\n\r\n", use_nothrow);
  if (read || !f.input.starts_with("HTTP/1.1 101")) {
    f.error = "upgrade refused: " + (read ? read.message() : f.input.substr(0, f.input.find('\r')));
    co_return;
  }
  f.input.erase(0, head);
}

// Runs on the crew's thread: connects everyone, then leaves their readers running.
net::awaitable<void> connect_all(flood_crew& crew, std::promise<std::string>& done) {
  const auto executor = co_await net::this_coro::executor;
  std::string error;
  for (auto& f : crew.flooders) {
    co_await connect_flooder(crew, *f);
    if (!f->error.empty() && error.empty()) error = f->error;
  }
  if (error.empty()) {
    for (auto& f : crew.flooders)
      net::co_spawn(executor, flood_reader(crew, *f), net::detached);
  }
  done.set_value(error);
}

std::string flood_chunk(std::string_view kind, std::uint64_t& frames) {
  // 2048 frames of 8-byte payloads: 28 KiB a write.
  const int opcode = kind == "pong" ? 0xA : 0x9;
  const std::string frame = masked_frame(opcode, "12345678");
  frames = 2048;
  std::string chunk;
  chunk.reserve(frame.size() * frames);
  for (std::uint64_t i = 0; i < frames; ++i)
    chunk += frame;
  return chunk;
}

// --- The measured member (this thread) -------------------------------------------------------

struct flood_run {
  flood_run(const options& o, const net::any_io_executor& executor)
      : opts(o), to(make_target(o)), loops(executor), wake(executor) {}
  const options& opts;
  target to;
  wait_group loops;
  std::string escaped;
  member who;
  net::steady_timer wake;
  std::unique_ptr<flood_crew> crew;

  std::int64_t start_ns = 0;
  std::int64_t baseline_start_ns = never, baseline_end_ns = never;
  std::int64_t flood_start_ns = never, flood_end_ns = never;
  std::int64_t period_ns = 0;
  bool closing = false;
  bool aborted = false;
  std::string error;

  usage_sample at_flood_start;
  usage_sample at_flood_end;
  log_histogram baseline;  // ns
  log_histogram flooded;   // ns
  std::uint64_t sent = 0;
  std::uint64_t next_expected = 0;
  std::uint64_t received = 0;
  std::uint64_t gaps = 0;
  std::uint64_t server_errors = 0;
  std::string first_server_error;
  bool lost = false;
  std::string loss;
  std::int64_t max_lag_ns = 0;
};

net::awaitable<void> member_reader(flood_run& run) {
  for (;;) {
    auto [ec, frame] = co_await read_frame(*run.who.link);
    if (ec) {
      if (!run.closing && !run.lost) {
        run.lost = true;
        run.loss = describe_end(*run.who.link, ec);
      }
      co_return;
    }
    const std::int64_t now = now_ns();
    if (const auto stamp = find_chat_stamp(frame)) {
      if (stamp->room != run.who.room || stamp->sender != 0) continue;
      if (stamp->counter != run.next_expected) ++run.gaps;
      run.next_expected = stamp->counter + 1;
      ++run.received;
      const auto latency =
          static_cast<std::uint64_t>(std::max<std::int64_t>(now - stamp->stamp_ns, 0));
      if (stamp->stamp_ns >= run.baseline_start_ns && stamp->stamp_ns < run.baseline_end_ns)
        run.baseline.record(latency);
      if (stamp->stamp_ns >= run.flood_start_ns && stamp->stamp_ns < run.flood_end_ns)
        run.flooded.record(latency);
    } else if (is_error_frame(frame)) {
      if (run.first_server_error.empty())
        run.first_server_error = std::string(frame.substr(0, 200));
      ++run.server_errors;
    }
  }
}

net::awaitable<void> member_sender(flood_run& run) {
  chat_frame chat(run.who.room, 0);
  std::int64_t next = run.start_ns;
  while (!run.closing && next < run.flood_end_ns) {
    if (now_ns() < next) {
      run.wake.expires_at(at_ns(next));
      co_await run.wake.async_wait(use_nothrow);
      continue;
    }
    const std::int64_t stamp = next;
    next += run.period_ns;
    if (stamp >= run.baseline_start_ns) run.max_lag_ns = std::max(run.max_lag_ns, now_ns() - stamp);
    const std::string_view frame = chat.render(run.sent, stamp);
    ++run.sent;
    const error_code ec = co_await write_frame(*run.who.link, frame);
    if (ec) {
      if (!run.closing && !run.lost) {
        run.lost = true;
        run.loss = "send failed: " + ec.message();
      }
      co_return;
    }
  }
}

void note_progress(flood_run& run, std::string_view phase) {
  note(run.opts, std::string(phase) + ": sent " + std::to_string(run.sent) + ", echoes "
                     + std::to_string(run.received) + ", flooders ended "
                     + std::to_string(run.crew->ended.load()) + " of "
                     + std::to_string(run.crew->flooders.size()));
}

// Sleeps until `until` with a progress line a second; false when the member was lost.
net::awaitable<bool> watch_until(flood_run& run, std::int64_t until, std::string_view phase) {
  std::int64_t last_note = now_ns();
  while (now_ns() < until) {
    if (run.lost) co_return false;
    if (now_ns() - last_note >= 1'000'000'000) {
      last_note = now_ns();
      note_progress(run, phase);
    }
    co_await sleep_until(at_ns(std::min(until, now_ns() + 100'000'000)));
  }
  co_return !run.lost;
}

void finish(flood_run& run) {
  run.closing = true;
  run.wake.cancel();
  if (run.who.link) drop(*run.who.link);
}

net::awaitable<void> drive(flood_run& run) {
  const auto executor = co_await net::this_coro::executor;
  run.who.link = make_client(executor);
  const auto source = net::ip::address_v4::loopback();
  const auto opened = co_await open_websocket(*run.who.link, run.to, source);
  if (opened) {
    run.aborted = true;
    run.error = "member: connect or upgrade failed: " + explain(opened);
    finish(run);
    co_return;
  }
  // Named first: no temporary with a destructor in a co_await's full-expression (g++ 12).
  const std::string request = enter_frame(true, run.who.room, run.who.name);
  const std::string key = name_key(run.who.name);
  const room_answer answer = co_await ask(*run.who.link, request, key);
  if (answer.ec || !answer.accepted) {
    run.aborted = true;
    run.error = "member: create refused or unanswered: "
                + (answer.ec ? answer.ec.message() : answer.detail);
    finish(run);
    co_return;
  }
  run.loops.add();
  net::co_spawn(executor, member_reader(run), tracked_end{&run.loops, &run.escaped});

  const auto window = static_cast<std::int64_t>(run.opts.duration_s * 1e9);
  run.start_ns = now_ns();
  run.baseline_start_ns = run.start_ns + static_cast<std::int64_t>(run.opts.warmup_s * 1e9);
  run.baseline_end_ns = run.baseline_start_ns + window;
  run.flood_start_ns = run.baseline_end_ns;
  run.flood_end_ns = run.flood_start_ns + window;
  run.loops.add();
  net::co_spawn(executor, member_sender(run), tracked_end{&run.loops, &run.escaped});

  note(run.opts, "member in room " + room_id(run.who.room) + ", sending " + fixed(*run.opts.rate)
                     + " msg/s; baseline window");
  if (!co_await watch_until(run, run.flood_start_ns, "baseline")) {
    finish(run);
    co_return;
  }
  run.at_flood_start = sample_usage(run.opts);
  auto& crew = *run.crew;
  net::post(crew.io, [&crew] {
    for (auto& f : crew.flooders)
      net::co_spawn(crew.io, flood_writer(crew, *f), net::detached);
  });
  note(run.opts,
       "flooding with " + std::to_string(crew.flooders.size()) + " x " + run.opts.flood_frame);
  const bool kept = co_await watch_until(run, run.flood_end_ns, "flood");
  run.at_flood_end = sample_usage(run.opts);
  net::post(crew.io, [&crew] {
    crew.stopping = true;
    for (auto& f : crew.flooders) {
      error_code ignored;
      f->socket.close(ignored);
    }
  });
  if (kept) {
    // The last echoes, for up to --drain.
    const std::int64_t drain_end = now_ns() + static_cast<std::int64_t>(run.opts.drain_s * 1e9);
    while (run.received < run.sent && !run.lost && now_ns() < drain_end)
      co_await sleep_until(at_ns(std::min(drain_end, now_ns() + 10'000'000)));
  }
  if (!run.escaped.empty()) {
    run.aborted = true;
    run.error = run.escaped;
  }
  finish(run);
}

double ms(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e6;
}

}  // namespace

int run_flood(const options& opts, json_line& report) {
  net::io_context io(BOOST_ASIO_CONCURRENCY_HINT_UNSAFE);
  const auto executor = io.get_executor();
  flood_run run(opts, executor);
  run.who.room = opts.room_base;
  run.who.name = "measured";
  run.period_ns = std::max<std::int64_t>(1, static_cast<std::int64_t>(1e9 / *opts.rate));

  // The flooders connect first, idle, on their own thread.
  run.crew = std::make_unique<flood_crew>(opts, run.to);
  auto& crew = *run.crew;
  crew.chunk = flood_chunk(opts.flood_frame, crew.frames_per_chunk);
  for (int i = 0; i < opts.flooders; ++i)
    crew.flooders.push_back(std::make_unique<flooder>(crew.io));
  std::promise<std::string> connected;
  auto connected_result = connected.get_future();
  crew.thread = std::thread([&crew, &connected] {
    // The flood takes what CPU is left; see the top of this file.
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19);
    net::co_spawn(crew.io, connect_all(crew, connected), net::detached);
    crew.io.run();
  });
  const auto stop_crew = [&crew] {
    net::post(crew.io, [&crew] {
      crew.stopping = true;
      for (auto& f : crew.flooders) {
        error_code ignored;
        f->socket.close(ignored);
      }
      crew.work.reset();
    });
    crew.thread.join();
  };
  note(opts, "connecting " + std::to_string(opts.flooders) + " flooders and the member to "
                 + opts.host + ":" + std::to_string(opts.port));
  std::string flood_error = "the flooders did not connect within --step-timeout";
  if (connected_result.wait_for(seconds(opts.step_timeout_s)) == std::future_status::ready)
    flood_error = connected_result.get();
  if (!flood_error.empty()) {
    crew.io.stop();
    crew.thread.join();
    add_parameters(report, opts);
    report.add("ok", false).add("error", "flooders: " + flood_error);
    return 1;
  }

  run.loops.add();
  net::co_spawn(executor, drive(run), tracked_end{&run.loops, &run.escaped});
  const double budget =
      opts.warmup_s + 2 * opts.duration_s + opts.drain_s + 3 * opts.step_timeout_s + 10;
  io.run_for(seconds(budget));
  stop_crew();
  if (!io.stopped()) abandon(report, opts, "the run overran its own deadline");

  // The flooders' figures, now that their thread is over.
  std::uint64_t flood_frames = 0;
  std::uint64_t pongs = 0;
  int closed_in_time = 0;
  double slowest_close_s = 0;
  std::string codes;
  std::string reasons;
  for (const auto& f : crew.flooders) {
    flood_frames += f->frames_sent;
    pongs += f->pongs;
    const bool closed = f->ended && f->close_code != 0 && f->started_ns != 0;
    const double lasted_s = closed ? static_cast<double>(f->ended_ns - f->started_ns) / 1e9 : 0.0;
    if (closed && (opts.close_within_s <= 0 || lasted_s <= opts.close_within_s)) ++closed_in_time;
    if (closed) slowest_close_s = std::max(slowest_close_s, lasted_s);
    if (!codes.empty()) codes += ',';
    codes += std::to_string(f->close_code);
    if (closed && reasons.empty()) reasons = f->close_reason;
  }
  const auto p = [](const log_histogram& h, double percent) { return ms(h.percentile(percent)); };
  const double ratio = p(run.baseline, 99) > 0 ? p(run.flooded, 99) / p(run.baseline, 99) : 0.0;

  add_parameters(report, opts);
  report.add("flooders", opts.flooders)
      .add("flood_frame", opts.flood_frame)
      .add("member_rate_msgs_per_s", *opts.rate, 1)
      .add("baseline_samples", run.baseline.count())
      .add("baseline_p50_ms", p(run.baseline, 50), 3)
      .add("baseline_p99_ms", p(run.baseline, 99), 3)
      .add("baseline_max_ms", ms(run.baseline.max()), 3)
      .add("flood_samples", run.flooded.count())
      .add("flood_p50_ms", p(run.flooded, 50), 3)
      .add("flood_p99_ms", p(run.flooded, 99), 3)
      .add("flood_max_ms", ms(run.flooded.max()), 3)
      .add("p99_ratio", ratio, 2)
      .add("flooders_closed", closed_in_time)
      .add("flooder_close_codes", codes)
      .add("flooder_close_reason", reasons)
      .add("flooder_slowest_close_s", slowest_close_s, 4)
      .add("flood_frames_sent", flood_frames)
      .add("flood_pongs_received", pongs)
      .add("member_sent", run.sent)
      .add("member_received", run.received)
      .add("gaps", run.gaps)
      .add("connections_lost", run.lost ? 1 : 0)
      .add("server_errors", run.server_errors)
      .add("max_schedule_lag_ms", static_cast<double>(run.max_lag_ns) / 1e6, 3);
  if (!run.aborted) {
    add_usage(report, run.at_flood_start, run.at_flood_end, flood_frames, "flood_frame");
  }
  if (!run.loss.empty()) report.add("first_loss", run.loss);
  if (!run.first_server_error.empty()) report.add("first_server_error", run.first_server_error);

  std::string failed_check;
  if (run.lost || run.gaps > 0 || run.server_errors > 0 || run.received < run.sent) {
    failed_check = "the member lost messages or its connection";
  } else if (opts.close_within_s > 0 && closed_in_time < opts.flooders) {
    failed_check =
        "a flooder was not closed within --close-within " + fixed(opts.close_within_s) + " s";
  } else if (opts.max_slowdown > 0 && ratio > opts.max_slowdown) {
    failed_check = "the member's p99 under the flood is over --max-slowdown "
                   + fixed(opts.max_slowdown) + " x its p99 without";
  }
  report.add("ok", !run.aborted && failed_check.empty());
  if (run.aborted)
    report.add("error", run.error);
  else if (!failed_check.empty())
    report.add("error", failed_check);
  return run.aborted ? 1 : failed_check.empty() ? 0 : 3;
}

}  // namespace roomcast::loadgen
