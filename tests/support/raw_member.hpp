#pragma once
// A raw_client that is a member of room 1234, for tests that send hostile frames from inside the
// room the bystanders chat in.
#include <string>

#include <catch2/catch.hpp>

#include "raw_client.hpp"

namespace roomcast::testing {

inline constexpr int text_op = 0x1, continuation_op = 0x0, close_op = 0x8, ping_op = 0x9,
                     pong_op = 0xA;

// Joins (or creates) room 1234 as `name` and reads up to its own notice.
inline net::awaitable<raw_client> raw_member(std::uint16_t port, std::string name,
                                             std::string type = "join") {
  auto client = co_await raw_client::connect(port);
  auto request =
      encode_frame(text_op, R"({"type":")" + type + R"(","roomId":"1234","name":")" + name + "\"}");
  co_await client.send(std::move(request));
  for (;;) {
    const auto frame = co_await client.read_frame();
    if (frame.opcode == ping_op) {  // a slow start under an idle timeout
      auto pong = encode_frame(pong_op, frame.payload);
      co_await client.send(std::move(pong));
      continue;
    }
    REQUIRE(frame.opcode == text_op);
    if (frame.payload.find("\"event\":\"" + type + "\"") != std::string::npos
        && frame.payload.find("\"name\":\"" + name + "\"") != std::string::npos) {
      break;
    }
  }
  co_return client;
}

}  // namespace roomcast::testing
