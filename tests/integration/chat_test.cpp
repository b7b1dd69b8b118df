// The chat rules end to end: the real server on two threads, real WebSocket clients.
#include <map>
#include <optional>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include "roomcast/hub.hpp"

#include "server_fixture.hpp"
#include "test_client.hpp"

using namespace roomcast;
using namespace roomcast::testing;
namespace json = boost::json;

TEST_CASE("two clients chat through the server") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    auto bob = co_await test_client::connect(server.port(), {.target = "/"});  // the seed's path

    const auto created = co_await alice.create("1234", "alice");
    CHECK(created.at("event") == "create");
    CHECK(created.at("users") == 1);

    const auto joined = co_await bob.join("1234", "bob");
    CHECK(joined.at("event") == "join");
    CHECK(joined.at("users") == 2);
    CHECK(joined.at("members") == json::array{"alice", "bob"});
    auto got1 = co_await alice.receive();  // the same event reaches both, without the roster
    CHECK_FALSE(got1.contains("members"));
    auto without_roster = joined;
    without_roster.erase("members");
    without_roster.erase("epoch");  // the newcomer's own too
    CHECK(got1 == without_roster);

    co_await alice.say("hello bob");
    const auto heard = co_await bob.receive();
    CHECK(heard.at("code") == 200);
    CHECK(heard.at("event") == "message");
    CHECK(heard.at("name") == "alice");
    CHECK(heard.at("text") == "hello bob");
    CHECK(heard.at("roomId") == "1234");
    CHECK(heard.at("users") == 2);
    const auto got2 = co_await alice.receive();  // the sender hears its own message
    CHECK(got2 == heard);
  });
}

TEST_CASE("the seed client's exact frames work, and replies keep the number type of its roomId") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port(), {.target = "/"});
    auto bob = co_await test_client::connect(server.port(), {.target = "/"});
    co_await alice.send(
        R"({"name":"alice","roomId":4321,"type":"create","text":"","id":1700000000000})");
    const auto created = co_await alice.receive();
    CHECK(created.at("code") == 200);
    CHECK(created.at("roomId") == 4321);
    co_await bob.send(R"({"name":"bob","roomId":4321,"type":"join","text":"","id":1700000000001})");
    const auto got3 = co_await bob.receive();
    CHECK(got3.at("event") == "join");
    const auto got4 = co_await alice.receive();
    CHECK(got4.at("users") == 2);

    // What a click on its Send button puts on the wire.
    co_await bob.send(
        R"({"name":"bob","roomId":4321,"type":{"isTrusted":true},"text":"你好","id":1700000000002})");
    const auto said = co_await alice.receive();
    CHECK(said.at("code") == 200);
    CHECK(said.at("roomId") == 4321);
    CHECK(said.at("name") == "bob");
    CHECK(said.at("text") == "你好");
    CHECK(said.at("id").is_int64());
    const auto got5 = co_await bob.receive();
    CHECK(got5 == said);

    // Its Leave button: a leave frame carrying the draft text, then close.
    co_await bob.send(
        R"({"name":"bob","roomId":4321,"type":"leave","text":"draft","id":1700000000003})");
    co_await bob.close();
    const auto left = co_await alice.receive();
    CHECK(left.at("event") == "leave");
    CHECK(left.at("name") == "bob");
    CHECK(left.at("reason") == "left");
    CHECK(left.at("users") == 1);
  });
}

TEST_CASE("the seed's errors go to the requester only, echoing its roomId and name") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    auto other = co_await test_client::connect(server.port());
    co_await alice.create("1234", "alice");

    const auto exists = co_await other.create("1234", "carol");
    CHECK(exists.at("code") == 5001);
    CHECK(exists.at("error") == "room_exists");
    CHECK(exists.at("roomId") == "1234");
    CHECK(exists.at("name") == "carol");

    co_await other.send(R"({"type":"join","roomId":5555,"name":"carol"})");
    const auto missing = co_await other.receive();
    CHECK(missing.at("code") == 5004);
    CHECK(missing.at("roomId") == 5555);  // as the client wrote it: a number

    const auto taken = co_await other.join("1234", "alice");
    CHECK(taken.at("code") == 5002);
    CHECK(taken.at("name") == "alice");

    // Alice heard none of it: the next frame she gets is her own message.
    co_await alice.say("still here");
    const auto got6 = co_await alice.receive();
    CHECK(got6.at("text") == "still here");
  });
}

TEST_CASE("two rooms are fully isolated") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto a1 = co_await test_client::connect(server.port());
    auto a2 = co_await test_client::connect(server.port());
    auto b1 = co_await test_client::connect(server.port());
    co_await a1.create("1111", "ann");
    co_await a2.join("1111", "amy");
    co_await a1.receive();
    co_await b1.create("2222", "ann");  // the same name in another room is fine

    co_await a1.say("for room 1111");
    co_await b1.say("for room 2222");
    const auto got7 = co_await a2.receive();
    CHECK(got7.at("text") == "for room 1111");
    const auto got8 = co_await a1.receive();
    CHECK(got8.at("text") == "for room 1111");
    const auto own = co_await b1.receive();
    CHECK(own.at("text") == "for room 2222");
    CHECK(own.at("users") == 1);
    co_await a2.say("end");
    const auto got9 = co_await a1.receive();
    CHECK(got9.at("text") == "end");
  });
}

TEST_CASE("the server decides who a connection is") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    auto bob = co_await test_client::connect(server.port());
    auto eve = co_await test_client::connect(server.port());
    co_await alice.create("1111", "alice");
    co_await eve.create("2222", "eve");
    co_await bob.join("1111", "bob");
    co_await alice.receive();

    // Bob claims to be alice, in eve's room: ignored, the message is bob's and stays in 1111.
    co_await bob.send(R"({"type":"message","name":"alice","roomId":2222,"text":"it's me"})");
    const auto heard = co_await alice.receive();
    CHECK(heard.at("name") == "bob");
    CHECK(heard.at("roomId") == "1111");
    co_await bob.receive();

    {  // create or join while in a room is refused without ejecting
      const auto again = co_await bob.join("2222", "bob2");
      CHECK(again.at("code") == 4008);
      CHECK_FALSE(again.contains("name"));
      CHECK_FALSE(again.contains("roomId"));
      CHECK(again.at("users") == 2);
    }
    co_await eve.say("only eve hears this");
    const auto got10 = co_await eve.receive();
    CHECK(got10.at("text") == "only eve hears this");
    co_await bob.say("bob is still in 1111");
    const auto got11 = co_await alice.receive();
    CHECK(got11.at("text") == "bob is still in 1111");
  });
}

TEST_CASE("a dropped connection leaves its room and frees its name") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    co_await alice.create("1234", "alice");
    {
      auto bob = co_await test_client::connect(server.port());
      co_await bob.join("1234", "bob");
      co_await alice.receive();
    }  // bob's socket is destroyed without a close frame or a leave
    const auto gone = co_await alice.receive();
    CHECK(gone.at("event") == "leave");
    CHECK(gone.at("reason") == "disconnected");
    CHECK(gone.at("users") == 1);

    auto bob_again = co_await test_client::connect(server.port());
    const auto rejoined = co_await bob_again.join("1234", "bob");
    INFO(boost::json::serialize(rejoined));
    CHECK(rejoined.at("event") == "join");
  });
}

TEST_CASE("leave keeps the connection, and the last member leaving deletes the room") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    co_await alice.create("1234", "alice");
    co_await alice.send(R"({"type":"leave"})");
    const auto ack = co_await alice.receive();
    CHECK(ack.at("event") == "leave");
    CHECK(ack.at("users") == 0);
    CHECK(server.get().counters().rooms == 0);

    // The same connection can create the same number again: the old room is gone.
    const auto again = co_await alice.create("1234", "alice");
    CHECK(again.at("event") == "create");
    CHECK(again.at("seq") == 1);
  });
}

// 200 members is past the default --fanout-threshold (128): the room hands its events out through
// its fan-out lanes, on both of the server's threads.
TEST_CASE("200 clients in one room receive every message, in order, with no gap") {
  auto settings = test_config();
  settings.session.rate_limit = 0;  // the senders send as fast as they can
  running_server server(settings);
  run_client(
      [&]() -> net::awaitable<void> {
        constexpr int members = 200;
        constexpr int senders = 4;
        constexpr int per_sender = 25;
        std::vector<test_client> clients;
        std::vector<std::int64_t> first_seq;
        for (int i = 0; i < members; ++i) {
          auto client = co_await test_client::connect(server.port());
          clients.push_back(std::move(client));
          const auto name = "m" + std::to_string(i);
          json::object reply;
          if (i == 0) {
            reply = co_await clients.back().create("7777", name);
          } else {
            reply = co_await clients.back().join("7777", name);
          }
          REQUIRE(reply.at("code") == 200);
          first_seq.push_back(reply.at("seq").as_int64());
        }
        CHECK(server.get().counters().members == members);

        auto read_all = [&](int index) -> net::awaitable<void> {
          auto& client = clients[static_cast<std::size_t>(index)];
          std::int64_t expected_seq = first_seq[static_cast<std::size_t>(index)] + 1;
          std::map<std::string, int> next_from;
          int messages = 0;
          while (messages < senders * per_sender) {
            const auto frame = co_await client.receive();
            REQUIRE(frame.at("seq").as_int64() == expected_seq++);
            if (frame.at("event") != "message") continue;
            const std::string sender(frame.at("name").as_string());
            REQUIRE(frame.at("text").as_string()
                    == sender + ":" + std::to_string(next_from[sender]++));
            ++messages;
          }
        };
        auto send_all = [&](int index) -> net::awaitable<void> {
          auto& client = clients[static_cast<std::size_t>(index)];
          for (int i = 0; i < per_sender; ++i)
            co_await client.say("m" + std::to_string(index) + ":" + std::to_string(i));
        };
        std::vector<net::awaitable<void>> tasks;
        for (int i = 0; i < members; ++i)
          tasks.push_back(read_all(i));
        for (int i = 0; i < senders; ++i)
          tasks.push_back(send_all(i * 50));
        co_await all_of(std::move(tasks));
        CHECK(server.get().counters().evictions == 0);
      },
      std::chrono::seconds(60));
}

TEST_CASE("shutdown flushes what is queued and closes every client with 1001") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    auto bob = co_await test_client::connect(server.port());
    co_await alice.create("1234", "alice");
    co_await bob.join("1234", "bob");
    const auto joined = co_await alice.receive();  // bob's join
    CHECK(joined.at("event") == "join");
    co_await bob.say("last words");
    // The room hands a message to its members in the order they joined: once bob, the last,
    // has his copy, alice's is in her outbox or on the wire.
    const auto own = co_await bob.receive();
    CHECK(own.at("text") == "last words");

    server.get().stop();
    // Alice has not read bob's message yet: it still reaches her, then the close.
    const auto alice_end = co_await alice.receive_ending();
    CHECK(alice_end.frames_before == 1);
    CHECK(alice_end.close_code == 1001);
    const auto bob_end = co_await bob.receive_ending();
    CHECK(bob_end.close_code == 1001);
  });
  server.get().wait();  // every thread returns: nothing is left waiting
}

// 150 members is past the default --fanout-threshold: the room's lanes are drained too.
TEST_CASE("a shutdown under load: every member gets every event its room accepted, then 1001") {
  auto settings = test_config();
  settings.session.rate_limit = 0;  // the talkers send as fast as they can
  running_server server(settings);
  run_client(
      [&]() -> net::awaitable<void> {
        constexpr int members = 150;
        std::vector<test_client> clients;
        std::vector<std::int64_t> first_seq;
        for (int i = 0; i < members; ++i) {
          auto client = co_await test_client::connect(server.port());
          clients.push_back(std::move(client));
          json::object reply;
          if (i == 0) {
            reply = co_await clients.back().create("4321", "m0");
          } else {
            reply = co_await clients.back().join("4321", "m" + std::to_string(i));
          }
          REQUIRE(reply.at("code") == 200);
          first_seq.push_back(reply.at("seq").as_int64());
        }
        std::vector<ending> endings(members);
        auto read_to_end = [&](int index) -> net::awaitable<void> {
          auto end = co_await clients[static_cast<std::size_t>(index)].receive_ending(true);
          endings[static_cast<std::size_t>(index)] = std::move(end);
        };
        // Two members talk; the first stops the server after its 50th message and both go on
        // until their connections close.
        auto talk = [&](int index) -> net::awaitable<void> {
          auto& client = clients[static_cast<std::size_t>(index)];
          try {
            for (int i = 0; i < 100'000; ++i) {
              co_await client.say("m" + std::to_string(index) + ":" + std::to_string(i));
              if (index == 0 && i == 50) server.get().stop();
            }
          } catch (const boost::system::system_error&) {
            // closed by the drain
          }
        };
        std::vector<net::awaitable<void>> tasks;
        for (int i = 0; i < members; ++i)
          tasks.push_back(read_to_end(i));
        tasks.push_back(talk(0));
        tasks.push_back(talk(members - 1));
        co_await all_of(std::move(tasks));

        std::int64_t last_seq = -1;
        for (int i = 0; i < members; ++i) {
          const auto& end = endings[static_cast<std::size_t>(i)];
          CHECK(end.close_code == 1001);
          std::int64_t expected = first_seq[static_cast<std::size_t>(i)] + 1;
          bool in_order = true;
          for (const auto& f : end.frames)
            in_order = in_order && f.at("seq").as_int64() == expected++;
          CHECK(in_order);
          const std::int64_t last = expected - 1;
          // Everyone's stream ends at the same event: the last one the room accepted.
          if (last_seq < 0) last_seq = last;
          CHECK(last == last_seq);
        }
        CHECK(last_seq > first_seq.back() + 50);
      },
      std::chrono::seconds(60));
  server.get().wait();
}
