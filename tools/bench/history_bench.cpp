// roomcast-history-bench: what room history and resume cost, measured on the hub alone with
// in-process stub members (no sockets), on one thread. Prints one JSON line.
//
// Memory: --rooms rooms of --members members each; then --history-messages chat messages of
// --text characters in every room (enough to fill the history at the defaults). Reports the
// resident memory per room before and after the chat: the difference is what a full history
// costs a room (run it again with --history 0 for the same chat without history).
//
//   roomcast-history-bench --rooms 1000 --members 2 --history-messages 100 --text 100
//
// Resume: one room; a member that asked for resume drops, --missed messages are said, and a new
// connection resumes with the dropped one's last seq: the time from the resume call to the new
// member holding the reply and every missed event, over --resumes rounds (median and p99).
//
//   roomcast-history-bench --rooms 0 --resumes 2000 --missed 100
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "roomcast/hub.hpp"
#include "roomcast/log.hpp"
#include "roomcast/net.hpp"

#include "flag_values.hpp"

namespace {

using namespace roomcast;
using clock_type = std::chrono::steady_clock;

struct settings {
  int rooms = 1000;
  int members = 2;
  int history_messages = 100;
  int text = 100;
  std::size_t history = 100;
  std::size_t history_bytes = 64 * 1024;
  int resumes = 0;
  int missed = 100;
};

constexpr std::string_view program = "history-bench";

settings parse(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    const std::string_view value = bench::value_of(program, argc, argv, i);
    if (flag == "--rooms") {
      s.rooms = bench::parse_int(program, flag, value, 0, 7000);
    } else if (flag == "--members") {
      s.members = bench::parse_int(program, flag, value, 1, 1000);
    } else if (flag == "--history-messages") {
      s.history_messages = bench::parse_int(program, flag, value, 0, 100'000);
    } else if (flag == "--text") {
      s.text = bench::parse_int(program, flag, value, 1, 100'000);
    } else if (flag == "--history") {
      s.history = static_cast<std::size_t>(bench::parse_int(program, flag, value, 0, 100'000));
    } else if (flag == "--history-bytes") {
      s.history_bytes =
          static_cast<std::size_t>(bench::parse_int(program, flag, value, 1024, 1 << 30));
    } else if (flag == "--resumes") {
      s.resumes = bench::parse_int(program, flag, value, 0, 1'000'000);
    } else if (flag == "--missed") {
      s.missed = bench::parse_int(program, flag, value, 0, 100'000);
    } else {
      std::fprintf(stderr, "history-bench: unknown option %s\n", argv[i - 1]);
      std::exit(2);
    }
  }
  return s;
}

// Takes every frame and keeps the last one (a resume's reply comes as one frame).
class stub_member final : public member {
 public:
  delivery deliver(const shared_frame& frame) override {
    last = frame;
    ++frames;
    return delivery::queued;
  }
  void evict() override { std::fputs("history-bench: a stub was evicted\n", stderr); }
  void room_closing() override {}
  shared_frame last;
  std::uint64_t frames = 0;
};

long resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  long pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

room_id number(int n) {
  return *room_id::from_json(boost::json::value(1000 + n));
}

// Runs `task` on `io` to completion.
template <class T>
T run(net::io_context& io, net::awaitable<T> task) {
  std::optional<T> result;
  net::co_spawn(io, std::move(task), [&](std::exception_ptr error, T value) {
    if (error) std::rethrow_exception(error);
    result = std::move(value);
  });
  io.restart();
  while (!result)
    io.run_one();
  io.poll();
  return std::move(*result);
}
void run(net::io_context& io, net::awaitable<void> task) {
  bool done = false;
  net::co_spawn(io, std::move(task), [&](std::exception_ptr error) {
    if (error) std::rethrow_exception(error);
    done = true;
  });
  io.restart();
  while (!done)
    io.run_one();
  io.poll();
}

membership enter(net::io_context& io, hub& rooms, int room, int index,
                 const std::shared_ptr<member>& who, admission_wishes wishes) {
  auto name = "m" + std::to_string(index);
  auto result = index == 0 ? run(io, rooms.create(number(room), name, who, wishes))
                           : run(io, rooms.join(number(room), name, who, wishes));
  return std::get<membership>(std::move(result));
}

// The `seq` of the last event a stub received.
std::uint64_t seq_of(const shared_frame& frame) {
  return boost::json::parse(frame->payload()).as_object().at("seq").to_number<std::uint64_t>();
}

}  // namespace

int main(int argc, char** argv) {
  const settings s = parse(argc, argv);
  set_log_level(log_level::warn);
  net::io_context io(1);
  hub rooms(io.get_executor(), hub_options{.max_rooms = 10'000,
                                           .max_members = 5000,
                                           .history_events = s.history,
                                           .history_bytes = s.history_bytes,
                                           .resume_grace = std::chrono::hours(1)});
  const std::string text(static_cast<std::size_t>(s.text), 'x');

  // Memory per room.
  std::vector<std::shared_ptr<stub_member>> stubs;
  std::vector<membership> speakers;
  const long before_rooms = resident_bytes();
  for (int r = 0; r < s.rooms; ++r) {
    for (int m = 0; m < s.members; ++m) {
      stubs.push_back(std::make_shared<stub_member>());
      auto seat = enter(io, rooms, r, m, stubs.back(), {});
      if (m == 0) speakers.push_back(std::move(seat));
    }
  }
  const long with_rooms = resident_bytes();
  for (const auto& speaker : speakers) {
    for (int i = 0; i < s.history_messages; ++i)
      run(io, rooms.say(speaker, text));
  }
  const long with_history = resident_bytes();
  // No rooms: nothing to divide (the resume run alone).
  const double rooms_count = s.rooms > 0 ? s.rooms : 1e300;

  // Resume with --missed events.
  std::vector<double> micros;
  std::size_t reply_bytes = 0;
  if (s.resumes > 0) {
    auto talker = std::make_shared<stub_member>();
    const auto speaker = enter(io, rooms, 9000 - 1000 - 1, 0, talker, {});
    auto phone = std::make_shared<stub_member>();
    auto seat = enter(io, rooms, 9000 - 1000 - 1, 1, phone, {.resume = true});
    auto token = boost::json::parse(phone->last->payload()).as_object().at("token").as_string();
    std::string current(token.data(), token.size());
    for (int round = 0; round < s.resumes; ++round) {
      const auto since = seq_of(talker->last);
      run(io, rooms.leave(seat, leave_reason::disconnected));
      for (int i = 0; i < s.missed; ++i)
        run(io, rooms.say(speaker, text));
      phone = std::make_shared<stub_member>();
      const resume_seat request{current, since, std::nullopt};
      const auto started = clock_type::now();
      auto back = run(io, rooms.resume(request, phone));
      micros.push_back(
          std::chrono::duration<double, std::micro>(clock_type::now() - started).count());
      seat = std::get<membership>(std::move(back));
      reply_bytes = phone->last->bytes.size();
      // The reply is one frame: the resume frame, then the missed events. Its JSON comes first.
      const auto header = phone->last->bytes.substr(0, 400);
      const auto at = header.find("\"token\":\"");
      current = phone->last->bytes.substr(at + 9, 32);
    }
    std::sort(micros.begin(), micros.end());
  }
  const auto percentile = [&micros](double p) {
    return micros.empty()
               ? 0.0
               : micros[static_cast<std::size_t>(p * static_cast<double>(micros.size() - 1))];
  };
  std::printf(
      "{\"bench\":\"history\",\"rooms\":%d,\"members\":%d,\"history\":%zu,\"history_bytes\":%zu,"
      "\"messages_per_room\":%d,\"text\":%d,\"rss_per_room_empty_history\":%.0f,"
      "\"rss_per_room_full_history\":%.0f,\"history_bytes_per_room\":%.0f,\"resumes\":%d,"
      "\"missed\":%d,\"resume_reply_bytes\":%zu,\"resume_us_p50\":%.2f,\"resume_us_p99\":%.2f}\n",
      s.rooms, s.members, s.history, s.history_bytes, s.history_messages, s.text,
      double(with_rooms - before_rooms) / rooms_count,
      double(with_history - before_rooms) / rooms_count,
      double(with_history - with_rooms) / rooms_count, s.resumes, s.missed, reply_bytes,
      percentile(0.5), percentile(0.99));
  rooms.shutdown();
  io.restart();
  io.poll();
  return 0;
}
