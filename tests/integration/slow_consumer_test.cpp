// A member that stops reading in a busy room: it is evicted with close 1008 once its bounded
// outbox fills, while everyone else keeps receiving every message.
#include <catch2/catch.hpp>

#include "roomcast/hub.hpp"
#include "roomcast/metrics.hpp"

#include "server_fixture.hpp"
#include "test_client.hpp"

using namespace roomcast;
using namespace roomcast::testing;

TEST_CASE("a stalled reader is evicted while the others receive everything") {
  auto settings = test_config();
  // Small queues so the stall shows after kilobytes instead of the megabytes loopback buffers hold.
  settings.session.outbox_frames = 8;
  settings.session.send_buffer = 4096;
  settings.session.close_timeout = std::chrono::seconds(10);
  settings.session.rate_limit = 0;  // alice talks as fast as the room echoes
  running_server server(settings);
  run_client(
      [&]() -> net::awaitable<void> {
        auto alice = co_await test_client::connect(server.port());
        auto bob = co_await test_client::connect(server.port());
        auto stalled = co_await test_client::connect(server.port(), {.receive_buffer = 4096});
        co_await alice.create("1234", "alice");
        co_await bob.join("1234", "bob");
        co_await alice.receive();
        co_await stalled.join("1234", "stalled");
        co_await alice.receive();
        co_await bob.receive();

        // Alice talks, waiting for her own echo each time, until the room evicts the member that
        // reads nothing; Bob keeps reading throughout and must get every message in order.
        const std::string filler(90, 'x');
        bool evicted = false;
        auto alice_talks = [&]() -> net::awaitable<void> {
          for (int sent = 0; !evicted && sent < 20000; ++sent) {
            const auto text = std::to_string(sent) + filler;
            co_await alice.say(text);
            for (;;) {
              const auto frame = co_await alice.receive();
              if (frame.at("event") == "leave") {
                CHECK(frame.at("name") == "stalled");
                CHECK(frame.at("reason") == "slow_consumer");
                CHECK(frame.at("users") == 2);
                evicted = true;
                continue;
              }
              REQUIRE(frame.at("text").as_string() == text);
              break;
            }
          }
          co_await alice.say("after");
        };
        auto bob_reads = [&]() -> net::awaitable<void> {
          bool saw_notice = false;
          for (int next = 0;; ++next) {
            const auto frame = co_await bob.receive();
            if (frame.at("event") == "leave") {
              saw_notice = true;
              --next;
              continue;
            }
            const std::string text(frame.at("text").as_string());
            if (text == "after") break;
            REQUIRE(text == std::to_string(next) + filler);
          }
          CHECK(saw_notice);
        };
        std::vector<net::awaitable<void>> both;
        both.push_back(alice_talks());
        both.push_back(bob_reads());
        co_await all_of(std::move(both));
        REQUIRE(evicted);
        CHECK(server.get().counters().evictions == 1);
        // Memory stayed bounded: no connection ever had more than its 8 frames waiting in the
        // server (each frame here is under 400 bytes; the kernel's share is --send-buffer).
        const auto backlog = server.get().metrics().outbox_high_water_bytes.load();
        CHECK(backlog > 0);
        CHECK(backlog <= settings.session.outbox_frames * 400);

        // The stalled member, reading again, finds what was already in flight, then close 1008.
        const auto end = co_await stalled.receive_ending();
        CHECK(end.close_code == 1008);
        CHECK(end.reason == "slow consumer");
      },
      std::chrono::seconds(60));
}
