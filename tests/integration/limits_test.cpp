// Abuse limits against the real server: rate limit, connection caps, room caps, Origin check.
#include <catch2/catch.hpp>

#include "server_fixture.hpp"
#include "test_client.hpp"

using namespace roomcast;
using namespace roomcast::testing;

TEST_CASE("a client over the rate limit gets 4009, and a flood is closed with 1008") {
  auto settings = test_config();
  settings.session.rate_limit = 5;
  settings.session.rate_burst = 5;
  settings.session.flood_limit = 3;
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    auto flooder = co_await test_client::connect(server.port());
    co_await alice.create("1234", "alice");
    co_await flooder.join("1234", "flooder");  // frame 1 of the burst of 5
    co_await alice.receive();
    for (int i = 0; i < 4; ++i)
      co_await flooder.say("m" + std::to_string(i));  // frames 2-5
    for (int i = 0; i < 3; ++i)
      co_await flooder.say("over");  // refused: flood budget 3 -> 0

    int messages = 0;
    int refused = 0;
    for (int i = 0; i < 7; ++i) {
      const auto frame = co_await flooder.receive();
      if (frame.at("code") == 4009) {
        ++refused;
        CHECK_FALSE(frame.contains("name"));  // does not eject the seed client
        CHECK(frame.at("users") == 2);
      } else {
        CHECK(frame.at("event") == "message");
        ++messages;
      }
    }
    CHECK(messages == 4);
    CHECK(refused == 3);

    co_await flooder.say("one too many");
    const auto end = co_await flooder.receive_ending();
    CHECK(end.close_code == 1008);
    CHECK(end.reason == "rate limit exceeded");

    // Alice got the four accepted messages and then the flooder's departure, nothing else.
    for (int i = 0; i < 4; ++i) {
      const auto frame = co_await alice.receive();
      CHECK(frame.at("text").as_string() == "m" + std::to_string(i));
    }
    const auto gone = co_await alice.receive();
    CHECK(gone.at("event") == "leave");
    CHECK(gone.at("name") == "flooder");
  });
}

TEST_CASE("connections over the per-address cap get HTTP 503") {
  auto settings = test_config();
  settings.max_connections_per_ip = 2;
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    auto first = co_await test_client::connect(server.port());
    auto second = co_await test_client::connect(server.port());
    const auto refused = co_await http_head(server.port(), upgrade_request("/ws"));
    CHECK_THAT(refused, Catch::StartsWith("HTTP/1.1 503"));
    co_await first.create("1234", "first");  // the admitted ones are unaffected
    const auto joined = co_await second.join("1234", "second");
    CHECK(joined.at("users") == 2);
  });
}

TEST_CASE("connections over the total cap get HTTP 503") {
  auto settings = test_config();
  settings.max_connections = 1;
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    auto only = co_await test_client::connect(server.port());
    const auto refused =
        co_await http_head(server.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK_THAT(refused, Catch::StartsWith("HTTP/1.1 503"));
    const auto created = co_await only.create("1234", "only");
    CHECK(created.at("code") == 200);
  });
}

TEST_CASE("room and member caps refuse create and join with echoing errors") {
  auto settings = test_config();
  settings.hub.max_rooms = 1;
  settings.hub.max_members = 2;
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    auto a = co_await test_client::connect(server.port());
    auto b = co_await test_client::connect(server.port());
    auto c = co_await test_client::connect(server.port());
    co_await a.create("1111", "a");
    const auto no_room = co_await c.create("2222", "c");
    CHECK(no_room.at("code") == 5005);
    CHECK(no_room.at("roomId") == "2222");  // a failed create ejects the seed client
    co_await b.join("1111", "b");
    const auto full = co_await c.join("1111", "c");
    CHECK(full.at("code") == 5003);
    CHECK(full.at("name") == "c");
  });
}

TEST_CASE("with an Origin allow-list, other pages cannot open a WebSocket") {
  auto settings = test_config();
  settings.session.allowed_origins = {"https://chat.example"};
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    const auto evil =
        co_await http_head(server.port(), upgrade_request("/ws", "https://evil.example"));
    CHECK_THAT(evil, Catch::StartsWith("HTTP/1.1 403"));
    const auto good =
        co_await http_head(server.port(), upgrade_request("/ws", "https://chat.example"));
    CHECK_THAT(good, Catch::StartsWith("HTTP/1.1 101"));
    const auto no_origin = co_await http_head(server.port(), upgrade_request("/"));
    CHECK_THAT(no_origin, Catch::StartsWith("HTTP/1.1 101"));
  });
}
