// History and resume in cluster mode (docs/cluster.md, "History and resume"): a redis-server of
// the test's own and three roomcast nodes on ephemeral ports, as in cluster_test.cpp. Every wait
// has a deadline (run_client's, or a log line's); nothing sleeps. Every process is ended by its
// PID when its object goes.
//
// No co_await is written inside a CHECK or REQUIRE (docs/architecture.md, "Toolchain traps").
#include <chrono>
#include <csignal>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include "cluster_nodes.hpp"
#include "redis_process.hpp"
#include "server_fixture.hpp"
#include "server_process.hpp"
#include "test_client.hpp"

using namespace roomcast;
using namespace roomcast::testing;
using namespace std::chrono_literals;
namespace json = boost::json;

namespace {

// The shared set-up: tests/support/cluster_nodes.hpp.
using cluster = cluster_nodes;
constexpr auto node_timeout = cluster_nodes::node_timeout;

// Sends `frame` and returns the client's next frame.
net::awaitable<json::object> ask(test_client& client, std::string frame) {
  co_await client.send(frame);
  co_return co_await client.receive();
}

net::awaitable<std::vector<json::object>> collect(test_client& client, std::size_t count) {
  std::vector<json::object> frames;
  for (std::size_t i = 0; i < count; ++i) {
    auto frame = co_await client.receive();
    frames.push_back(std::move(frame));
  }
  co_return frames;
}

}  // namespace

TEST_CASE("history across nodes: own frame then the recent chat then live events with none twice") {
  // Four events kept: create, carol's join and five messages make seven, so the stream holds
  // the last four (m2..m5), all chat.
  cluster nodes({"--history", "4"});
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(nodes.port(0));
    auto carol = co_await test_client::connect(nodes.port(2));
    const auto created = co_await ask(alice, admission_with_resume("create", "1234", "alice"));
    CHECK(created.at("event") == "create");
    CHECK(created.at("epoch").as_string().size() == 16);
    co_await carol.join("1234", "carol");
    co_await alice.receive();
    std::vector<json::object> said;
    for (int i = 1; i <= 5; ++i) {
      co_await alice.say("m" + std::to_string(i));
      auto heard = co_await alice.receive();
      said.push_back(std::move(heard));
    }
    co_await collect(carol, 5);

    // bob joins on node 1 while carol (node 2) keeps talking: the boundary between history
    // and live events must lose nothing and repeat nothing.
    auto bob = co_await test_client::connect(nodes.port(1));
    co_await bob.send(admission_with_resume("join", "1234", "bob"));
    for (int i = 0; i < 10; ++i)
      co_await carol.say("live" + std::to_string(i));

    const auto own = co_await bob.receive();
    CHECK(own.at("event") == "join");
    CHECK(own.at("name") == "bob");
    CHECK(own.at("members") == json::array{"alice", "carol", "bob"});
    CHECK(own.at("epoch") == created.at("epoch"));
    const auto join_seq = own.at("seq").as_int64();
    // What alice saw, by seq: m1..m5, then bob's join and carol's ten messages in some order.
    const auto at_alice = co_await collect(alice, 11);
    std::map<std::int64_t, json::object> by_seq;
    for (const auto& frame : said)
      by_seq[frame.at("seq").as_int64()] = frame;
    for (const auto& frame : at_alice)
      by_seq[frame.at("seq").as_int64()] = frame;
    REQUIRE(by_seq.size() == 16);  // seq 3..18, none twice

    // The history: the four events before the join (the stream's cap), all chat here, marked,
    // each as broadcast (seq and id included).
    const auto history = co_await collect(bob, 4);
    for (std::size_t i = 0; i < history.size(); ++i) {
      INFO(json::serialize(history[i]));
      CHECK(history[i].at("history") == true);
      auto plain = history[i];
      plain.erase("history");
      const auto seq = join_seq - 4 + static_cast<std::int64_t>(i);
      CHECK(plain.at("seq") == seq);
      CHECK(plain == by_seq[seq]);
    }
    // Then every live event after the join, once, in order, as alice saw it.
    std::int64_t expected = join_seq + 1;
    while (expected <= 18) {
      const auto live = co_await bob.receive();
      INFO(json::serialize(live));
      CHECK_FALSE(live.contains("history"));
      CHECK(live == by_seq[expected]);
      ++expected;
    }
    // The last event is carol's last message, or bob's join when all of them came first.
    CHECK((by_seq[18].at("text") == "live9" || by_seq[18].at("seq") == join_seq));

    // A joiner that does not ask for history gets none.
    auto dave = co_await test_client::connect(nodes.port(2));
    const auto dave_joined = co_await dave.join("1234", "dave");
    CHECK(dave_joined.at("epoch") == created.at("epoch"));
    co_await carol.say("after dave");
    const auto dave_next = co_await dave.receive();
    CHECK(dave_next.at("text") == "after dave");
  });
}

TEST_CASE(
    "resume on another node: what was said meanwhile comes once and in order and nobody sees it") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(nodes.port(0));
    auto carol = co_await test_client::connect(nodes.port(2));
    const auto created = co_await ask(alice, admission_with_resume("create", "1234", "alice"));
    CHECK(created.at("token").as_string().size() == 32);
    std::string token;
    std::int64_t seen = 0;
    {
      auto bob = co_await test_client::connect(nodes.port(1));
      const auto joined = co_await ask(bob, admission_with_resume("join", "1234", "bob"));
      CHECK(joined.at("epoch") == created.at("epoch"));
      token = token_of(joined);
      co_await alice.receive();  // bob's join
      co_await carol.join("1234", "carol");
      co_await alice.receive();
      co_await bob.receive();
      co_await alice.say("before the drop");
      const auto heard = co_await bob.receive();
      CHECK(heard.at("text") == "before the drop");
      seen = heard.at("seq").as_int64();
      co_await alice.receive();
      co_await carol.receive();
    }  // bob's TCP connection ends here, without a close frame
    REQUIRE(nodes.logged(1, "holding the seat of 'bob'"));

    co_await alice.say("while you were away");
    const auto first = co_await alice.receive();
    co_await carol.say("and again");
    const auto second = co_await alice.receive();
    CHECK(first.at("users") == 3);  // bob's seat is held: no leave, the count unchanged
    CHECK(second.at("seq") == first.at("seq").as_int64() + 1);
    co_await collect(carol, 2);

    auto bob = co_await test_client::connect(nodes.port(2));
    const auto ack = co_await ask(bob, resume_frame(token, seen, "1234"));
    CHECK(ack.at("event") == "resume");
    CHECK(ack.at("recovered") == true);
    CHECK(ack.at("missed") == 2);
    CHECK(ack.at("name") == "bob");
    CHECK(ack.at("users") == 3);
    CHECK(ack.at("members") == json::array{"alice", "bob", "carol"});
    CHECK(ack.at("epoch") == created.at("epoch"));
    CHECK(ack.at("last") == second.at("seq"));
    CHECK(token_of(ack) != token);
    const auto missed1 = co_await bob.receive();
    const auto missed2 = co_await bob.receive();
    CHECK(missed1 == first);  // byte for byte what alice got, seq included
    CHECK(missed2 == second);

    co_await alice.say("welcome back");
    const auto live = co_await bob.receive();
    CHECK(live.at("text") == "welcome back");
    CHECK(live.at("seq") == second.at("seq").as_int64() + 1);
    // alice and carol heard no leave or join: their next frame is alice's message.
    const auto echoed = co_await alice.receive();
    CHECK(echoed == live);
    const auto at_carol = co_await carol.receive();
    CHECK(at_carol == live);

    // bob speaks from his new node, as himself.
    co_await bob.say("I am back");
    const auto back = co_await alice.receive();
    CHECK(back.at("name") == "bob");
    CHECK(back.at("text") == "I am back");

    const auto metrics = co_await http_exchange(
        nodes.port(2), "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    CHECK_THAT(metrics, Catch::Contains("roomcast_cluster_resumes_total 1")
                            && Catch::Contains("roomcast_cluster_resumes_unrecovered_total 0"));
    REQUIRE(nodes.logged(1, "was resumed: its grace ends without a leave"));
    const auto held = co_await http_exchange(
        nodes.port(1), "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    // Node 1 no longer holds bob's seat (the resume told it), though its grace (30 s) runs on.
    CHECK_THAT(held, Catch::Contains("roomcast_cluster_held_seats 0"));

    // The token was used up; a second resume with it is refused, to the requester only.
    auto thief = co_await test_client::connect(nodes.port(0));
    const auto refused = co_await ask(thief, resume_frame(token, seen));
    CHECK(refused.at("code") == 4010);
    CHECK(refused.at("error") == "invalid_token");
  });
}

TEST_CASE("resume after the room's other members all left: the held seat kept the room") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(nodes.port(0));
    const auto created = co_await ask(alice, admission_with_resume("create", "1234", "alice"));
    std::string token;
    std::int64_t seen = 0;
    {
      auto bob = co_await test_client::connect(nodes.port(1));
      const auto joined = co_await ask(bob, admission_with_resume("join", "1234", "bob"));
      token = token_of(joined);
      seen = joined.at("seq").as_int64();
      co_await alice.receive();
    }
    REQUIRE(nodes.logged(1, "holding the seat of 'bob'"));
    co_await alice.say("bye bob");
    const auto said = co_await alice.receive();
    co_await alice.send(R"({"type":"leave"})");
    const auto left = co_await alice.receive();
    CHECK(left.at("event") == "leave");
    CHECK(left.at("users") == 1);  // bob's held seat

    // The room still exists (bob holds a seat): its number is taken.
    auto dave = co_await test_client::connect(nodes.port(2));
    const auto taken = co_await dave.create("1234", "dave");
    CHECK(taken.at("code") == 5001);

    auto bob = co_await test_client::connect(nodes.port(2));
    const auto ack = co_await ask(bob, resume_frame(token, seen));
    CHECK(ack.at("event") == "resume");
    CHECK(ack.at("recovered") == true);
    CHECK(ack.at("missed") == 2);
    CHECK(ack.at("users") == 1);
    CHECK(ack.at("members") == json::array{"bob"});
    CHECK(ack.at("epoch") == created.at("epoch"));
    const auto missed = co_await collect(bob, 2);
    CHECK(missed[0] == said);
    CHECK(missed[1] == left);

    // bob is alone in a live room; his leave ends it, and the number is free again.
    co_await bob.say("anyone?");
    const auto echo = co_await bob.receive();
    CHECK(echo.at("seq") == left.at("seq").as_int64() + 1);
    co_await bob.send(R"({"type":"leave"})");
    const auto bob_left = co_await bob.receive();
    CHECK(bob_left.at("users") == 0);
    const auto recreated = co_await dave.create("1234", "dave");
    CHECK(recreated.at("event") == "create");
    CHECK(recreated.at("epoch") != created.at("epoch"));
  });
}

TEST_CASE("a held seat not resumed within the grace leaves as disconnected on every node") {
  cluster nodes({"--resume-grace", "300"});
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(nodes.port(0));
    auto carol = co_await test_client::connect(nodes.port(2));
    co_await alice.create("1234", "alice");
    co_await carol.join("1234", "carol");
    co_await alice.receive();
    std::string token;
    {
      auto bob = co_await test_client::connect(nodes.port(1));
      token = token_of(co_await ask(bob, admission_with_resume("join", "1234", "bob")));
      co_await alice.receive();
      co_await carol.receive();
    }
    const auto at_alice = co_await alice.receive();  // after the grace
    const auto at_carol = co_await carol.receive();
    CHECK(at_alice == at_carol);
    CHECK(at_alice.at("event") == "leave");
    CHECK(at_alice.at("name") == "bob");
    CHECK(at_alice.at("reason") == "disconnected");
    CHECK(at_alice.at("users") == 2);

    auto late = co_await test_client::connect(nodes.port(1));
    const auto refused = co_await ask(late, resume_frame(token, 0));
    CHECK(refused.at("code") == 4010);
    const auto again = co_await late.join("1234", "bob");  // the name is free again
    CHECK(again.at("event") == "join");
  });
}

TEST_CASE(
    "bad resumes in cluster mode get 4010 or 4011 or 4012 and the token stays good for a 4100") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(nodes.port(0));
    co_await alice.create("1234", "alice");
    auto laptop = co_await test_client::connect(nodes.port(1));
    const auto joined = co_await ask(laptop, admission_with_resume("join", "1234", "bob"));
    co_await alice.receive();
    const auto token = token_of(joined);
    const auto seq = joined.at("seq").as_int64();

    auto other = co_await test_client::connect(nodes.port(2));
    const auto forged = co_await ask(other, resume_frame(std::string(32, 'A'), 0));
    CHECK(forged.at("code") == 4010);
    const auto malformed = co_await ask(other, resume_frame("not a token", 0));
    CHECK(malformed.at("code") == 4010);
    auto near = token;  // the right index, the wrong rest
    near.back() = near.back() == 'A' ? 'B' : 'A';
    const auto close_guess = co_await ask(other, resume_frame(near, 0));
    CHECK(close_guess.at("code") == 4010);
    const auto wrong_room = co_await ask(other, resume_frame(token, 0, "4321"));
    CHECK(wrong_room.at("code") == 4011);
    CHECK(wrong_room.at("error") == "wrong_room");
    const auto ahead = co_await ask(other, resume_frame(token, seq + 5));
    CHECK(ahead.at("code") == 4012);
    CHECK_FALSE(ahead.contains("roomId"));

    // None of that changed anything: the token still works, and the laptop (still open on
    // node 1) gives way with 4100.
    const auto ack = co_await ask(other, resume_frame(token, seq, "1234"));
    CHECK(ack.at("event") == "resume");
    CHECK(ack.at("missed") == 0);
    const auto ended = co_await laptop.receive_ending();
    CHECK(ended.close_code == 4100);

    co_await alice.say("still there?");
    const auto heard = co_await other.receive();
    CHECK(heard.at("text") == "still there?");
    CHECK(heard.at("users") == 2);
    const auto own = co_await alice.receive();
    CHECK(own == heard);  // no leave or join of bob in between
  });
}

TEST_CASE("resume gives recovered false past the history and nothing twice under live traffic") {
  cluster nodes({"--history", "50"});
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(nodes.port(0));
    co_await alice.create("1234", "alice");
    std::string token;
    {
      auto bob = co_await test_client::connect(nodes.port(1));
      token = token_of(co_await ask(bob, admission_with_resume("join", "1234", "bob")));
      co_await alice.receive();
    }
    REQUIRE(nodes.logged(1, "holding the seat of 'bob'"));
    // 50 messages: seq 3..52. The stream keeps 50 events (3..52), so since 0 cannot be
    // recovered (1 and 2 are gone).
    for (int i = 0; i < 50; ++i)
      co_await alice.say("m" + std::to_string(i));
    const auto said = co_await collect(alice, 50);
    std::int64_t since = 0;
    {
      auto bob = co_await test_client::connect(nodes.port(2));
      const auto ack = co_await ask(bob, resume_frame(token, 0));
      CHECK(ack.at("event") == "resume");
      CHECK(ack.at("recovered") == false);
      CHECK(ack.at("missed") == 0);
      CHECK(ack.at("last") == said.back().at("seq"));
      token = token_of(ack);
      since = ack.at("last").as_int64();
      // Nothing follows but live events.
      co_await alice.say("live");
      const auto live = co_await bob.receive();
      CHECK(live.at("text") == "live");
      CHECK(live.at("seq") == since + 1);
      co_await alice.receive();
      since = live.at("seq").as_int64();
    }  // dropped again, now on node 2
    REQUIRE(nodes.logged(2, "holding the seat of 'bob'"));

    // alice talks while bob resumes on node 1: whatever the resume's reply holds and whatever
    // comes live, bob gets each event once, in order.
    for (int i = 0; i < 20; ++i)
      co_await alice.send(R"({"type":"message","text":"f)" + std::to_string(i) + R"("})");
    auto bob = co_await test_client::connect(nodes.port(1));
    const auto ack = co_await ask(bob, resume_frame(token, since, "1234"));
    CHECK(ack.at("event") == "resume");
    CHECK(ack.at("recovered") == true);
    const auto at_alice = co_await collect(alice, 20);
    std::int64_t expected = since + 1;
    for (;;) {
      const auto frame = co_await bob.receive();
      INFO(json::serialize(frame));
      REQUIRE(frame.at("seq") == expected);
      CHECK(frame == at_alice.at(static_cast<std::size_t>(expected - since - 1)));
      ++expected;
      if (frame.at("text") == "f19") break;
    }
    CHECK(expected - since - 1 == 20);
  });
}

TEST_CASE("SIGTERM: a node's held seats leave during its drain and it exits without the grace") {
  cluster nodes;  // the default grace, 30 s: longer than every deadline here
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(nodes.port(0));
    co_await alice.create("1234", "alice");
    {
      auto bob = co_await test_client::connect(nodes.port(1));
      co_await ask(bob, admission_with_resume("join", "1234", "bob"));
      co_await alice.receive();
    }
    REQUIRE(nodes.logged(1, "holding the seat of 'bob'"));
    const auto signalled = std::chrono::steady_clock::now();
    nodes.node(1).signal(SIGTERM);
    const auto left = co_await alice.receive();
    // Sent by the draining node itself: well before the others would reap it (--node-timeout).
    CHECK(std::chrono::steady_clock::now() - signalled < node_timeout);
    CHECK(left.at("event") == "leave");
    CHECK(left.at("name") == "bob");
    CHECK(left.at("reason") == "disconnected");
    CHECK(left.at("users") == 1);
  });
  CHECK(nodes.node(1).wait_exit(6s) == 0);
}

TEST_CASE("a room's history and tokens go with it and a resume on the same node works too") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(nodes.port(0));
    co_await ask(alice, admission_with_resume("create", "1234", "alice"));
    auto laptop = co_await test_client::connect(nodes.port(0));
    const auto joined = co_await ask(laptop, admission_with_resume("join", "1234", "bob"));
    co_await alice.receive();
    co_await alice.say("hello");
    co_await alice.receive();
    const auto heard = co_await laptop.receive();
    CHECK(nodes.redis_output({"XLEN", "rc:{r:1234}:h"}) == "3\n");
    CHECK(nodes.redis_output({"HLEN", "rc:{r:1234}:tok"}) == "2\n");

    // bob's phone takes the seat on the same node as his laptop, which gives way.
    auto phone = co_await test_client::connect(nodes.port(0));
    const auto ack =
        co_await ask(phone, resume_frame(token_of(joined), heard.at("seq").as_int64(), "1234"));
    CHECK(ack.at("event") == "resume");
    CHECK(ack.at("recovered") == true);
    CHECK(ack.at("missed") == 0);
    const auto ended = co_await laptop.receive_ending();
    CHECK(ended.close_code == 4100);
    co_await alice.say("both here?");
    const auto at_phone = co_await phone.receive();
    CHECK(at_phone.at("text") == "both here?");
    CHECK(at_phone.at("users") == 2);
    co_await alice.receive();

    co_await phone.send(R"({"type":"leave"})");
    co_await phone.receive();
    co_await alice.receive();
    co_await alice.send(R"({"type":"leave"})");
    co_await alice.receive();
    // The last leave deleted every key of the room: its stream, its token map and the tokens.
    CHECK(nodes.redis_output({"EXISTS", "rc:{r:1234}:h", "rc:{r:1234}:tok", "rc:{r:1234}:meta"})
          == "0\n");
    CHECK(nodes.redis_output({"KEYS", "rc:tok:*"}) == "\n");  // redis-cli: an empty list
    CHECK(nodes.redis_output({"KEYS", "rc:{r:1234}:*"}) == "\n");
  });
}
