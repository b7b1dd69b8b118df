// Hostile and broken input against the real server: each gets its documented reply or close
// code, and a bystander pair in the same room keeps chatting without losing a message.
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>

#include "bystanders.hpp"
#include "server_fixture.hpp"
#include "test_client.hpp"

using namespace roomcast;
using namespace roomcast::testing;
namespace json = boost::json;

namespace {

// A refusal that must not eject the seed client: it carries neither name nor roomId.
void check_non_ejecting(const json::object& reply, int code) {
  CHECK(reply.at("code") == code);
  CHECK(reply.at("event") == "error");
  CHECK_FALSE(reply.contains("name"));
  CHECK_FALSE(reply.contains("roomId"));
}

}  // namespace

TEST_CASE("malformed frames get an error reply and the connection stays usable") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    auto mallory = co_await test_client::connect(server.port());
    const std::pair<const char*, int> cases[] = {
        {"this is not json", 4000},
        {"[\"an\",\"array\"]", 4000},
        {"42", 4000},
        {R"({"type":"shout"})", 4001},
        {R"({"type":false})", 4001},
        {R"({"type":"message","text":["x"]})", 4002},
        {R"({"type":"message","text":"hi"})", 4007},  // chat before joining
        {R"({"type":"leave"})", 4007},                // leave when not in a room
    };
    for (const auto& [frame, code] : cases) {
      INFO(frame);
      co_await mallory.send(frame);
      const auto reply = co_await mallory.receive();
      check_non_ejecting(reply, code);
      co_await room.check();
    }
    // Admission errors do echo roomId and name: they mean "you are not in a room".
    co_await mallory.send(R"({"type":"join","roomId":"12345","name":"m"})");
    const auto bad_room = co_await mallory.receive();
    CHECK(bad_room.at("code") == 4003);
    CHECK(bad_room.at("roomId") == "12345");
    co_await mallory.send(R"({"type":"join","roomId":"1234","name":"\u0001"})");
    const auto got3 = co_await mallory.receive();
    CHECK(got3.at("code") == 4004);
    co_await room.check();
  });
}

TEST_CASE("message errors inside a room do not eject and keep the member count") {
  auto settings = test_config();
  settings.session.max_text = 10;
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    co_await room.bob.say("   ");
    auto empty = co_await room.bob.receive();
    check_non_ejecting(empty, 4005);
    CHECK(empty.at("users") == 2);
    co_await room.bob.say("this is longer than ten");
    const auto too_long = co_await room.bob.receive();
    check_non_ejecting(too_long, 4006);
    co_await room.bob.say("0123456789");  // exactly the limit
    const auto got4 = co_await room.alice.receive();
    CHECK(got4.at("text") == "0123456789");
    const auto got5 = co_await room.bob.receive();
    CHECK(got5.at("text") == "0123456789");
    co_await room.check();
  });
}

TEST_CASE("protocol violations close the connection with their code") {
  auto settings = test_config();
  settings.session.max_frame = 1024;
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    {
      auto binary = co_await test_client::connect(server.port());
      co_await binary.send_binary("\x01\x02");
      const auto got6 = co_await binary.receive_ending();
      CHECK(got6.close_code == 1003);
    }
    {
      auto huge = co_await test_client::connect(server.port());
      co_await huge.send(std::string(2048, 'x'));
      const auto got7 = co_await huge.receive_ending();
      CHECK(got7.close_code == 1009);
    }
    {
      auto garbled = co_await test_client::connect(server.port());
      co_await garbled.send("{\"text\":\"\xc3\x28\"}");
      const auto got8 = co_await garbled.receive_ending();
      CHECK(got8.close_code == 1007);
    }
    {  // a member that misbehaves is closed and leaves its room like any dropped connection
      co_await room.bob.send_binary("\x00");
      const auto got9 = co_await room.bob.receive_ending();
      CHECK(got9.close_code == 1003);
      const auto gone = co_await room.alice.receive();
      CHECK(gone.at("event") == "leave");
      CHECK(gone.at("users") == 1);
    }
    co_await room.alice.say("alone now");
    const auto got10 = co_await room.alice.receive();
    CHECK(got10.at("text") == "alone now");
  });
}

TEST_CASE("a client that connects and never sends a request is dropped") {
  auto settings = test_config();
  settings.session.handshake_timeout = std::chrono::milliseconds(300);
  running_server server(settings);
  run_client([&]() -> net::awaitable<void> {
    auto room = co_await bystanders::open(server.port());
    tcp::socket silent(co_await net::this_coro::executor);
    co_await silent.async_connect({net::ip::address_v4::loopback(), server.port()},
                                  net::use_awaitable);
    char byte = 0;
    auto [ec, size] = co_await net::async_read(silent, net::buffer(&byte, 1), use_nothrow);
    CHECK(ec
          == net::error::eof);  // the server ended it; the deadline of run_client bounds the wait
    co_await room.check();
  });
}

TEST_CASE("plain HTTP: health, static files, bad paths, bad upgrades, huge headers") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    const auto health = co_await http_exchange(
        server.port(), "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_THAT(health, Catch::StartsWith("HTTP/1.1 200") && Catch::EndsWith("\r\n\r\nok\n"));

    const auto index = co_await http_exchange(
        server.port(), "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_THAT(index,
               Catch::StartsWith("HTTP/1.1 200") && Catch::Contains("Content-Type: text/html"));

    const auto traversal = co_await http_exchange(
        server.port(),
        "GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_THAT(traversal, Catch::StartsWith("HTTP/1.1 400"));

    const auto missing = co_await http_exchange(
        server.port(), "GET /nope.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_THAT(missing, Catch::StartsWith("HTTP/1.1 404"));

    const auto wrong_upgrade = co_await http_exchange(
        server.port(),
        "GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
    CHECK_THAT(wrong_upgrade, Catch::StartsWith("HTTP/1.1 404"));

    const auto head = co_await http_exchange(
        server.port(), "HEAD /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_THAT(head, Catch::StartsWith("HTTP/1.1 200") && Catch::Contains("Content-Length: 3")
                         && Catch::EndsWith("\r\n\r\n"));

    const auto garbage = co_await http_exchange(server.port(), "HELLO\r\n\r\n");
    CHECK_THAT(garbage, Catch::StartsWith("HTTP/1.1 400"));

    const auto huge = co_await http_exchange(
        server.port(),
        "GET / HTTP/1.1\r\nHost: x\r\nX-Filler: " + std::string(20000, 'a') + "\r\n\r\n");
    CHECK_THAT(huge, Catch::StartsWith("HTTP/1.1 431"));
  });
}
