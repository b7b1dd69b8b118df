// WebSocket-level abuse, written byte by byte: each gets its documented result while a bystander
// pair in the same room keeps chatting without losing a message.
#include <catch2/catch.hpp>

#include "bystanders.hpp"
#include "raw_client.hpp"
#include "raw_member.hpp"
#include "server_fixture.hpp"
#include "test_client.hpp"

using namespace roomcast;
using namespace roomcast::testing;

namespace {
std::string close_payload(int code) {
  return {static_cast<char>(code >> 8), static_cast<char>(code & 0xFF)};
}
}  // namespace

TEST_CASE("a fragmented message with a ping between its fragments is answered and delivered") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    auto raw = co_await raw_member(server.port(), "raw");
    co_await room.alice.receive();  // raw's join
    co_await room.bob.receive();
    std::string bytes = encode_frame(text_op, R"({"type":"message",)", false);
    bytes += encode_frame(ping_op, "are you there");
    bytes += encode_frame(continuation_op, R"("text":"in pieces"})", true);
    co_await raw.send(std::move(bytes));

    const auto pong = co_await raw.read_frame();
    CHECK(pong.opcode == pong_op);
    CHECK(pong.payload == "are you there");
    const auto message = co_await raw.read_frame();
    CHECK(message.payload.find("\"text\":\"in pieces\"") != std::string::npos);
    const auto heard = co_await room.alice.receive();
    CHECK(heard.at("text") == "in pieces");
    co_await room.bob.receive();
    co_await room.check();
  });
}

TEST_CASE("protocol violations get close 1002 and the room goes on") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    const std::pair<const char*, std::string> violations[] = {
        {"a close frame with an invalid code (999)", encode_frame(close_op, close_payload(999))},
        {"a close frame with a reserved code (1005)", encode_frame(close_op, close_payload(1005))},
        {"an unmasked frame", encode_frame(text_op, "{}", true, false)},
        {"a control frame over 125 bytes", encode_frame(ping_op, std::string(200, 'p'))},
        {"a reserved opcode", encode_frame(0x3, "x")},
        {"a continuation without a start", encode_frame(continuation_op, "x")},
        {"a fragmented control frame", encode_frame(ping_op, "x", false)},
    };
    for (const auto& [what, bytes] : violations) {
      INFO(what);
      auto raw = co_await raw_client::connect(server.port());
      co_await raw.send(bytes);
      const auto end = co_await raw.read_until_close();
      CHECK(end.opcode == close_op);
      CHECK(end.close_code() == 1002);
      co_await room.check();
    }
  });
}

TEST_CASE("a million tiny frames: the sender is closed with 1008 and the room goes on") {
  running_server server;  // default limits: 10 frames/s, burst 20, flood limit 50
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    auto flooder = co_await raw_member(server.port(), "flooder");
    co_await room.alice.receive();
    co_await room.bob.receive();

    bool closed = false;
    raw_frame close_frame;
    int sent = 0;
    auto flood = [&]() -> net::awaitable<void> {
      const auto tiny = encode_frame(text_op, "{}");
      std::string chunk;
      for (int i = 0; i < 10'000; ++i)
        chunk += tiny;
      while (!closed && sent < 1'000'000) {
        co_await flooder.send_ignoring_errors(chunk);
        sent += 10'000;
      }
    };
    auto watch = [&]() -> net::awaitable<void> {
      close_frame = co_await flooder.read_until_close();
      closed = true;
    };
    std::vector<net::awaitable<void>> both;
    both.push_back(flood());
    both.push_back(watch());
    co_await all_of(std::move(both));
    CHECK(close_frame.opcode == close_op);
    CHECK(close_frame.close_code() == 1008);
    CHECK(close_frame.payload.substr(2) == "rate limit exceeded");

    // The room heard nothing from the flood but its departure, and keeps chatting.
    const auto gone = co_await room.alice.receive();
    CHECK(gone.at("event") == "leave");
    CHECK(gone.at("name") == "flooder");
    co_await room.bob.receive();
    co_await room.check();
  });
}

TEST_CASE("a half-closed client leaves its room and is closed") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    auto half = co_await raw_member(server.port(), "half");
    co_await room.alice.receive();
    co_await room.bob.receive();
    half.shutdown_send();
    const auto gone = co_await room.alice.receive();
    CHECK(gone.at("event") == "leave");
    CHECK(gone.at("reason") == "disconnected");
    co_await room.bob.receive();
    const auto end = co_await half.read_until_close();  // the server ends it too
    CHECK((end.opcode == -1 || end.opcode == close_op));
    co_await room.check();
  });
}

TEST_CASE("frames sent along with the upgrade request are not lost") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    auto early_frames = encode_frame(text_op, R"({"type":"join","roomId":"1234","name":"eager"})")
                        + encode_frame(ping_op, "already?");
    auto eager = co_await raw_client::connect(server.port(), std::move(early_frames));
    const auto joined = co_await eager.read_frame();
    CHECK(joined.payload.find("\"event\":\"join\"") != std::string::npos);
    const auto pong = co_await eager.read_frame();
    CHECK(pong.opcode == pong_op);
    CHECK(pong.payload == "already?");
    co_await room.alice.receive();
    co_await room.bob.receive();
    co_await room.check();
  });
}

TEST_CASE("a silent client is pinged after the idle timeout, and dropped if it stays silent") {
  auto settings = test_config();
  settings.session.idle_timeout = std::chrono::milliseconds(250);
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    auto answers = co_await raw_member(server.port(), "answers", "create");
    auto silent = co_await raw_member(server.port(), "silent");
    co_await answers.read_frame();  // silent's join

    // The one that answers its pings stays (it hears two of them) and sees the silent one go.
    int pings = 0;
    bool saw_leave = false;
    while (pings < 2 || !saw_leave) {
      const auto heard = co_await answers.read_frame();
      REQUIRE(heard.opcode != -1);
      if (heard.opcode == ping_op) {
        ++pings;
        auto pong = encode_frame(pong_op, heard.payload);
        co_await answers.send(std::move(pong));
      } else {
        CHECK(heard.payload.find("\"event\":\"leave\"") != std::string::npos);
        CHECK(heard.payload.find("\"name\":\"silent\"") != std::string::npos);
        saw_leave = true;
      }
    }
    const auto ping = co_await silent.read_frame();
    CHECK(ping.opcode == ping_op);
    const auto end = co_await silent.read_until_close();
    CHECK(end.opcode == -1);  // cut off, without a close frame: it was not listening
  });
}

TEST_CASE("malformed upgrade requests are refused with an HTTP error") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    const auto no_key = co_await http_head(
        server.port(),
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n");
    CHECK_THAT(no_key, Catch::StartsWith("HTTP/1.1 400"));
    const auto old_version = co_await http_head(
        server.port(),
        "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    CHECK_THAT(old_version, Catch::StartsWith("HTTP/1.1 426"));
  });
}
