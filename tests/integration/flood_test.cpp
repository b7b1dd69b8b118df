// Floods of control frames and fragments (issue 11): every frame counts against the client's
// budget, a client that floods with anything is closed with 1008, and floods the limits let
// through (--rate-limit 0) do not stop the others' chat. A bystander pair in the same room keeps
// chatting without losing a message throughout.
#include <array>
#include <chrono>
#include <vector>

#include <catch2/catch.hpp>

#include "bystanders.hpp"
#include "raw_client.hpp"
#include "raw_member.hpp"
#include "server_fixture.hpp"
#include "test_client.hpp"

using namespace roomcast;
using namespace roomcast::testing;

namespace {

std::string repeated(const std::string& frame, int times) {
  std::string out;
  out.reserve(frame.size() * static_cast<std::size_t>(times));
  for (int i = 0; i < times; ++i)
    out += frame;
  return out;
}

using clock_type = std::chrono::steady_clock;

// A raw member "flooder" in the bystanders' room, once both bystanders have seen it join.
net::awaitable<raw_client> join_flooder(bystanders& room, std::uint16_t port) {
  auto flooder = co_await raw_member(port, "flooder");
  co_await room.alice.receive();
  co_await room.bob.receive();
  co_return flooder;
}

struct flood_outcome {
  raw_frame close;  // the server's close frame (opcode -1: the connection ended without one)
  int pongs = 0;
  int other_frames = 0;
  clock_type::time_point closed_at;
};

// Writes `frames` (a chunk of frames) again and again until the server closes the connection,
// reading what comes back meanwhile. Bounded: at most 1,000 chunks.
net::awaitable<flood_outcome> flood_until_closed(raw_client& flooder, const std::string& frames) {
  flood_outcome outcome;
  bool closed = false;
  auto flood = [&]() -> net::awaitable<void> {
    for (int chunks = 0; !closed && chunks < 1'000; ++chunks) {
      co_await flooder.send_ignoring_errors(frames);
    }
  };
  auto watch = [&]() -> net::awaitable<void> {
    for (;;) {
      auto frame = co_await flooder.read_frame();
      if (frame.opcode == pong_op) {
        ++outcome.pongs;
      } else if (frame.opcode == close_op || frame.opcode == -1) {
        outcome.close = std::move(frame);
        break;
      } else {
        ++outcome.other_frames;
      }
    }
    outcome.closed_at = clock_type::now();
    closed = true;
  };
  std::vector<net::awaitable<void>> both;
  both.push_back(flood());
  both.push_back(watch());
  co_await all_of(std::move(both));
  co_return outcome;
}

// The default limits: 10 frames/s, a burst of 20, 50 refusals. The flooder's join took one token.
constexpr int burst_left_after_join = 19;

void check_closed_for_flooding(const flood_outcome& outcome) {
  CHECK(outcome.close.opcode == close_op);
  CHECK(outcome.close.close_code() == 1008);
  CHECK(outcome.close.payload.substr(2) == "rate limit exceeded");
}

// The room heard nothing from the flood but the flooder's departure, and keeps chatting.
net::awaitable<void> check_room_after(bystanders& room) {
  const auto gone = co_await room.alice.receive();
  CHECK(gone.at("event") == "leave");
  CHECK(gone.at("name") == "flooder");
  co_await room.bob.receive();
  co_await room.check();
}

}  // namespace

TEST_CASE("a ping flood gets pongs within the budget, none beyond, then close 1008") {
  running_server server;  // default limits
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    const auto before_join = clock_type::now();
    auto flooder = co_await join_flooder(room, server.port());

    const auto pings = repeated(encode_frame(ping_op, "are you there"), 10'000);
    const auto outcome = co_await flood_until_closed(flooder, pings);
    check_closed_for_flooding(outcome);
    // Every pong the budget allowed, and not one more: the bucket refills 10 a second from the
    // join on.
    const std::chrono::duration<double> refill = outcome.closed_at - before_join;
    CHECK(outcome.pongs >= burst_left_after_join);
    CHECK(outcome.pongs <= burst_left_after_join + 1 + static_cast<int>(refill.count() * 10));
    CHECK(outcome.other_frames == 0);
    co_await check_room_after(room);
  });
}

TEST_CASE("a pong flood is closed with 1008") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    auto flooder = co_await join_flooder(room, server.port());

    const auto pongs = repeated(encode_frame(pong_op, "unasked"), 10'000);
    const auto outcome = co_await flood_until_closed(flooder, pongs);
    check_closed_for_flooding(outcome);
    CHECK(outcome.pongs == 0);
    CHECK(outcome.other_frames == 0);
    co_await check_room_after(room);
  });
}

TEST_CASE("a flood of empty fragments of one message is closed with 1008") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    auto flooder = co_await join_flooder(room, server.port());

    // A message that never ends: fragments cost nothing in size, but each is a frame.
    auto start = encode_frame(text_op, R"({"type":"message",)", false);
    co_await flooder.send(std::move(start));
    const auto fragments = repeated(encode_frame(continuation_op, "", false), 10'000);
    const auto outcome = co_await flood_until_closed(flooder, fragments);
    check_closed_for_flooding(outcome);
    co_await check_room_after(room);
  });
}

TEST_CASE("a close flood: the first close is answered with 1000, the rest discarded") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    auto flooder = co_await join_flooder(room, server.port());

    const std::string normal = {'\x03', '\xE8'};  // 1000
    auto closes = repeated(encode_frame(close_op, normal), 10'000);
    co_await flooder.send(std::move(closes));
    const auto answer = co_await flooder.read_frame();
    CHECK(answer.opcode == close_op);
    CHECK(answer.close_code() == 1000);
    flooder.shutdown_send();  // our end: the server closes the connection
    const auto after = co_await flooder.read_frame();
    CHECK(after.opcode == -1);  // one close frame, and nothing after it

    const auto gone = co_await room.alice.receive();
    CHECK(gone.at("event") == "leave");
    CHECK(gone.at("name") == "flooder");
    co_await room.bob.receive();
    co_await room.check();
  });
}

TEST_CASE("a flooder that goes on after its close 1008 is cut off at --close-timeout") {
  // In closing the server reads and discards what comes, until the client closes its end; a
  // client that never does, and never stops sending, is cut off when the close deadline fires.
  auto settings = test_config();
  settings.session.close_timeout = std::chrono::milliseconds(300);
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    auto flooder = co_await join_flooder(room, server.port());

    const auto pings = repeated(encode_frame(ping_op, "x"), 10'000);
    raw_frame close;
    bool ended = false;
    auto flood = [&]() -> net::awaitable<void> {
      while (!ended) {
        co_await flooder.send_ignoring_errors(pings);
      }
    };
    auto watch = [&]() -> net::awaitable<void> {
      close = co_await flooder.read_until_close();
      const auto after = co_await flooder.read_frame();  // the server cuts the connection
      CHECK(after.opcode == -1);
      ended = true;
    };
    std::vector<net::awaitable<void>> both;
    both.push_back(flood());
    both.push_back(watch());
    co_await all_of(std::move(both));
    CHECK(close.opcode == close_op);
    CHECK(close.close_code() == 1008);
    co_await check_room_after(room);
  });
}

TEST_CASE("with no rate limit, a ping flood and a pong flood do not stop a room's chat") {
  // The flooders are never closed, so the room chats beside floods that go on until it has
  // finished: every read turn of theirs runs into its bound and yields (fair reads), with pongs
  // to send, a socket that is never empty, and at the end a shutdown in the middle of it all.
  // How much the floods delay the room is measured by tools/loadgen's flood scenario.
  auto settings = test_config();
  settings.session.rate_limit = 0;
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    // Each co_await in a statement of its own (g++ 12: docs/architecture.md, "Toolchain traps").
    auto pinger = co_await raw_client::connect(server.port());
    auto ponger = co_await raw_client::connect(server.port());
    std::array<raw_client, 2> flooders = {std::move(pinger), std::move(ponger)};
    const std::array<std::string, 2> floods = {repeated(encode_frame(ping_op, "x"), 10'000),
                                               repeated(encode_frame(pong_op, "x"), 10'000)};
    std::array<int, 2> chunks_written{};
    std::size_t pong_bytes = 0;  // what the pinger got back
    bool done = false;
    auto flood = [&](std::size_t i) -> net::awaitable<void> {
      while (!done) {
        co_await flooders[i].send_ignoring_errors(floods[i]);
        ++chunks_written[i];
      }
    };
    auto drain = [&]() -> net::awaitable<void> {
      for (;;) {
        const auto size = co_await flooders[0].discard_some();
        if (size == 0) break;
        pong_bytes += size;
      }
    };
    auto chat = [&]() -> net::awaitable<void> {
      // The floods are under way (100,000 frames from each written, and pongs coming back)...
      while (chunks_written[0] < 10 || chunks_written[1] < 10 || pong_bytes == 0) {
        co_await room.check();
      }
      // ...and go on while the room chats; they end only after.
      for (int i = 0; i < 20; ++i) {
        co_await room.check();
      }
      done = true;
      for (auto& flooder : flooders)
        flooder.shutdown_send();
    };
    std::vector<net::awaitable<void>> all;
    all.push_back(flood(0));
    all.push_back(flood(1));
    all.push_back(drain());
    all.push_back(chat());
    co_await all_of(std::move(all));
    CHECK(pong_bytes > 0);
  });
}
