// Cluster mode over real sockets: a redis-server of the test's own (tests/support/redis_process:
// a unix socket in a temporary directory, no persistence) and three roomcast nodes (the real
// binary, tests/support/server_process) on ephemeral ports, with clients on different nodes. One
// node may reach Redis through a TCP proxy of the test's (tests/support/redis_proxy), which can
// make its subscription go silent, or fall behind until Redis's output-buffer limit drops it.
// Every wait has a deadline (run_client's, or a log line's); nothing sleeps. Every process is
// ended by its PID when its object goes.
//
// No co_await is written inside a CHECK or REQUIRE (docs/architecture.md, "Toolchain traps").
#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include "cluster_nodes.hpp"
#include "redis_process.hpp"
#include "redis_proxy.hpp"
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

std::string get(std::string_view path) {
  return "GET " + std::string(path) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
}

// Sends both frames before reading either answer, and checks that exactly one of the two
// admissions won and the other got `refusal`. True when the first won.
net::awaitable<bool> race(test_client& first, std::string first_frame, test_client& second,
                          std::string second_frame, int refusal) {
  co_await first.send(first_frame);
  co_await second.send(second_frame);
  const auto a = co_await first.receive();
  const auto b = co_await second.receive();
  const bool first_won = a.at("code") == 200;
  const bool second_won = b.at("code") == 200;
  CHECK(first_won != second_won);
  CHECK((first_won ? b : a).at("code") == refusal);
  co_return first_won;
}

net::awaitable<std::vector<json::object>> collect(test_client& client, std::size_t count) {
  std::vector<json::object> frames;
  for (std::size_t i = 0; i < count; ++i) {
    auto frame = co_await client.receive();
    frames.push_back(std::move(frame));
  }
  co_return frames;
}

// One client on each node: the i-th on node i.
net::awaitable<std::vector<test_client>> one_per_node(cluster& nodes) {
  std::vector<test_client> clients;
  for (int i = 0; i < 3; ++i) {
    auto client = co_await test_client::connect(nodes.port(i));
    clients.push_back(std::move(client));
  }
  co_return clients;
}

// alice on node 0 creates room 1234, bob joins it on node 1, and alice has read bob's join.
net::awaitable<std::pair<test_client, test_client>> alice_and_bob(cluster& nodes) {
  auto alice = co_await test_client::connect(nodes.port(0));
  auto bob = co_await test_client::connect(nodes.port(1));
  co_await alice.create("1234", "alice");
  co_await bob.join("1234", "bob");
  co_await alice.receive();
  co_return std::pair<test_client, test_client>(std::move(alice), std::move(bob));
}

// Reads until the member's own leave acknowledgement; returns how many frames that took.
net::awaitable<std::size_t> until_own_leave(test_client& client, std::string_view name) {
  std::size_t frames = 0;
  for (;;) {
    const auto frame = co_await client.receive();
    ++frames;
    if (frame.at("event") == "leave" && frame.at("name").as_string() == name) co_return frames;
  }
}

json::array names(std::initializer_list<const char*> list) {
  json::array out;
  for (const char* name : list)
    out.emplace_back(name);
  return out;
}

// What redis-server 7 logs when client-output-buffer-limit drops a client.
constexpr std::string_view output_buffer_drop =
    "closed ASAP for overcoming of output buffer limits";

// alice says 100-character messages in batches until Redis has logged that it dropped a client
// for its output buffer; `said` counts them. She reads each one back before the next, and keeps
// in `others` the frames that are not her own messages (bob's leave may come meanwhile: node 1
// can resync between two batches). Every frame she gets is the next seq of room 1234.
net::awaitable<void> say_until_dropped(cluster& nodes, test_client& alice, int& said,
                                       std::vector<json::object>& others) {
  const std::string text(100, 'x');
  std::int64_t last_seq = 2;  // bob's join
  while (!nodes.redis().logged(output_buffer_drop)) {
    REQUIRE(said < 5000);  // far more than a 64 kB limit and a socket's buffer hold
    for (int i = 0; i < 50; ++i) {
      co_await alice.say(text);
      ++said;
      for (;;) {
        auto frame = co_await alice.receive();
        CHECK(frame.at("seq") == last_seq + 1);
        last_seq = frame.at("seq").as_int64();
        const bool own = frame.at("event") == "message" && frame.at("name") == "alice";
        if (own) break;
        others.push_back(std::move(frame));
      }
    }
  }
}

// Reads what `member` gets until its connection ends, keeping the frames.
net::awaitable<void> read_to_end(test_client& member, ending& out) {
  auto got = co_await member.receive_ending(true);
  out = std::move(got);
}

}  // namespace

TEST_CASE("a room spans three nodes: one order, gapless seq, users, ids and the roster") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto clients = co_await one_per_node(nodes);
    auto& alice = clients[0];
    auto& bob = clients[1];
    auto& carol = clients[2];

    const auto created = co_await alice.create("1234", "alice");
    CHECK(created.at("event") == "create");
    CHECK(created.at("seq") == 1);
    CHECK(created.at("users") == 1);
    CHECK(created.at("members").as_array() == names({"alice"}));

    const auto bob_joined = co_await bob.join("1234", "bob");
    CHECK(bob_joined.at("seq") == 2);
    CHECK(bob_joined.at("users") == 2);
    CHECK(bob_joined.at("members").as_array() == names({"alice", "bob"}));
    const auto bob_seen = co_await alice.receive();
    CHECK(bob_seen.at("name") == "bob");
    CHECK_FALSE(bob_seen.contains("members"));

    const auto carol_joined = co_await carol.join("1234", "carol");
    CHECK(carol_joined.at("seq") == 3);
    CHECK(carol_joined.at("members").as_array() == names({"alice", "bob", "carol"}));
    const auto carol_at_alice = co_await alice.receive();
    const auto carol_at_bob = co_await bob.receive();
    CHECK(carol_at_alice == carol_at_bob);
    CHECK(carol_at_alice.at("users") == 3);

    // Three senders on three nodes at once: every member gets the same stream.
    for (int i = 0; i < 5; ++i) {
      co_await alice.say("a" + std::to_string(i));
      co_await bob.say("b" + std::to_string(i));
      co_await carol.say("c" + std::to_string(i));
    }
    const auto at_alice = co_await collect(alice, 15);
    const auto at_bob = co_await collect(bob, 15);
    const auto at_carol = co_await collect(carol, 15);
    CHECK(at_alice == at_bob);
    CHECK(at_alice == at_carol);
    std::int64_t last_id = carol_at_alice.at("id").as_int64();
    for (std::size_t i = 0; i < at_alice.size(); ++i) {
      INFO(json::serialize(at_alice[i]));
      CHECK(at_alice[i].at("seq") == static_cast<std::int64_t>(4 + i));
      CHECK(at_alice[i].at("users") == 3);
      CHECK(at_alice[i].at("event") == "message");
      CHECK(at_alice[i].at("id").as_int64() > last_id);
      last_id = at_alice[i].at("id").as_int64();
    }

    // What bob said before leaving reaches everyone before his leave.
    co_await bob.say("bye");
    co_await bob.send(R"({"type":"leave"})");
    const auto bob_end = co_await collect(bob, 2);
    CHECK(bob_end[0].at("text") == "bye");
    CHECK(bob_end[1].at("event") == "leave");
    CHECK(bob_end[1].at("reason") == "left");
    CHECK(bob_end[1].at("users") == 2);
    const auto alice_sees = co_await collect(alice, 2);
    const auto carol_sees = co_await collect(carol, 2);
    CHECK(alice_sees == bob_end);
    CHECK(carol_sees == bob_end);

    // bob comes back on the same node while the others hold the room (the rejoin that once
    // kept a node from shutting down).
    const auto rejoined = co_await bob.join("1234", "bob");
    CHECK(rejoined.at("members").as_array() == names({"alice", "carol", "bob"}));
    co_await alice.receive();
    co_await carol.receive();

    // The last one out deletes the room, and its number is free at once, on any node. Each
    // leave is acknowledged before the next is sent, so the last is carol's.
    co_await alice.send(R"({"type":"leave"})");
    co_await until_own_leave(alice, "alice");
    co_await bob.send(R"({"type":"leave"})");
    co_await until_own_leave(bob, "bob");
    co_await carol.send(R"({"type":"leave"})");
    const auto carol_saw = co_await until_own_leave(carol, "carol");
    CHECK(carol_saw == 3);  // alice's, bob's, her own
    auto dave = co_await test_client::connect(nodes.port(1));
    const auto recreated = co_await dave.create("1234", "dave");
    CHECK(recreated.at("event") == "create");
    CHECK(recreated.at("seq") == 1);
    CHECK(recreated.at("users") == 1);
  });
}

TEST_CASE("admissions race and limits hold cluster-wide") {
  cluster nodes({"--max-members", "3", "--max-rooms", "2"});
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(nodes.port(0));
    auto bob = co_await test_client::connect(nodes.port(1));
    // Two creates of one number on two nodes, both sent before either answer: one wins.
    const bool alice_won = co_await race(alice, admission_frame("create", "2000", "alice"), bob,
                                         admission_frame("create", "2000", "bob"), 5001);
    auto& owner = alice_won ? alice : bob;

    // Two joins with one name on two nodes: one wins, the other gets 5002.
    auto carol = co_await test_client::connect(nodes.port(2));
    auto dave = co_await test_client::connect(nodes.port(1));
    co_await race(carol, admission_frame("join", "2000", "zed"), dave,
                  admission_frame("join", "2000", "zed"), 5002);
    const auto zed = co_await owner.receive();
    CHECK(zed.at("name") == "zed");
    CHECK(zed.at("users") == 2);

    auto erin = co_await test_client::connect(nodes.port(2));
    const auto unknown = co_await erin.join("3000", "erin");
    CHECK(unknown.at("code") == 5004);
    const auto third = co_await erin.join("2000", "erin");  // 3 of --max-members 3
    CHECK(third.at("code") == 200);
    auto fay = co_await test_client::connect(nodes.port(0));
    const auto full = co_await fay.join("2000", "fay");
    CHECK(full.at("code") == 5003);
    CHECK(full.at("error") == "room_full");

    const auto second_room = co_await fay.create("2001", "fay");  // 2 of --max-rooms 2
    CHECK(second_room.at("code") == 200);
    auto gus = co_await test_client::connect(nodes.port(1));
    const auto too_many = co_await gus.create("2002", "gus");
    CHECK(too_many.at("code") == 5005);
  });
}

TEST_CASE(
    "Redis goes away: 5006 and /readyz 503, then it comes back restarted: 1012, then service") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto [alice, bob] = co_await alice_and_bob(nodes);

    nodes.redis().kill();
    REQUIRE(nodes.logged(0, "Redis unavailable"));
    REQUIRE(nodes.logged(2, "Redis unavailable"));
    const auto not_ready = co_await http_exchange(nodes.port(0), get("/readyz"));
    CHECK_THAT(not_ready, Catch::StartsWith("HTTP/1.1 503") && Catch::EndsWith("unavailable\n"));
    co_await alice.say("anyone?");
    const auto refused = co_await alice.receive();
    CHECK(refused.at("code") == 5006);
    CHECK(refused.at("error") == "unavailable");
    CHECK_FALSE(refused.contains("roomId"));  // a chat refusal does not eject the seed client
    auto carol = co_await test_client::connect(nodes.port(2));
    const auto no_join = co_await carol.join("1234", "carol");
    CHECK(no_join.at("code") == 5006);
    CHECK(no_join.at("roomId") == "1234");

    // A restarted server has lost the rooms: their members must join again.
    nodes.redis().restart();
    const auto alice_end = co_await alice.receive_ending();
    CHECK(alice_end.close_code == 1012);
    const auto bob_end = co_await bob.receive_ending();
    CHECK(bob_end.close_code == 1012);
    REQUIRE(nodes.logged(0, "reconnected"));
    REQUIRE(nodes.logged(2, "reconnected"));
    const auto ready = co_await http_exchange(nodes.port(0), get("/readyz"));
    CHECK_THAT(ready, Catch::StartsWith("HTTP/1.1 200"));
    const auto metrics = co_await http_exchange(nodes.port(0), get("/metrics"));
    CHECK_THAT(metrics, Catch::Contains("roomcast_redis_up 1")
                            && Catch::Contains("roomcast_redis_reconnects_total 1")
                            && Catch::Contains("roomcast_cluster_resync_closes_total 1"));
    const auto created = co_await carol.create("1234", "carol");
    CHECK(created.at("code") == 200);
    CHECK(created.at("seq") == 1);
  });
}

TEST_CASE("subscriptions dropped by Redis: a node that missed events closes that room's members") {
  // A long node timeout: node 1 is paused below, and must not be taken for dead meanwhile.
  cluster nodes({"--node-timeout", "10000"});
  run_client([&]() -> net::awaitable<void> {
    auto [alice, bob] = co_await alice_and_bob(nodes);

    // Every subscriber is dropped (as client-output-buffer-limit would drop a slow one) while
    // node 1 is paused: node 0 resyncs with the same server at once, and has missed nothing.
    nodes.node(1).signal(SIGSTOP);
    REQUIRE(nodes.redis_command({"CLIENT", "KILL", "TYPE", "pubsub"}));
    REQUIRE(nodes.logged(0, "reconnected"));
    co_await alice.say("while bob's node was away");
    const auto said = co_await alice.receive();
    CHECK(said.at("seq") == 3);

    // Node 1 finds its subscription gone and room 1234 past what it saw: bob must join again.
    nodes.node(1).signal(SIGCONT);
    const auto bob_end = co_await bob.receive_ending();
    CHECK(bob_end.close_code == 1012);
    const auto left = co_await alice.receive();
    CHECK(left.at("name") == "bob");
    CHECK(left.at("reason") == "disconnected");
    const auto metrics = co_await http_exchange(nodes.port(1), get("/metrics"));
    CHECK_THAT(metrics, Catch::Contains("roomcast_cluster_sequence_gaps_total 1"));
  });
}

TEST_CASE("a silent subscription: the probe finds it, and the node resubscribes and resyncs") {
  // Node 1 reaches Redis through the test's proxy. With --node-timeout 1000 it probes its
  // subscription every beat (250 ms), and takes it for dead after 1 s without the echo.
  cluster nodes({}, 1);
  run_client([&]() -> net::awaitable<void> {
    auto [alice, bob] = co_await alice_and_bob(nodes);
    // dave is alone in a room of his own on node 1: nothing happens there while node 1 is deaf.
    auto dave = co_await test_client::connect(nodes.port(1));
    const auto dave_created = co_await dave.create("4321", "dave");
    REQUIRE(dave_created.at("code") == 200);
    REQUIRE(nodes.proxy().subscriber_connections() == 1);

    // Node 1's subscription stays open and delivers nothing; its commands still go through (it
    // keeps its heartbeat, so nobody reaps it).
    REQUIRE(nodes.proxy().freeze_subscribers() == 1);
    co_await alice.say("while bob's node hears nothing");
    const auto said = co_await alice.receive();
    CHECK(said.at("seq") == 3);

    // The probe's echo does not come: node 1 reconnects (a new subscriber connection through the
    // proxy), finds room 1234 past what it saw, and closes bob with 1012 without delivering the
    // message it missed. dave's room did not move: he stays.
    const auto bob_end = co_await bob.receive_ending();
    CHECK(bob_end.close_code == 1012);
    CHECK(bob_end.frames_before == 0);
    REQUIRE(nodes.logged(1, "the subscription stopped delivering"));
    REQUIRE(nodes.logged(1, "reconnected"));
    CHECK(nodes.proxy().subscriber_connections() == 2);
    const auto left = co_await alice.receive();
    CHECK(left.at("name") == "bob");
    CHECK(left.at("reason") == "disconnected");
    const auto metrics = co_await http_exchange(nodes.port(1), get("/metrics"));
    CHECK_THAT(metrics, Catch::Contains("roomcast_redis_failures_total{kind=\"probe\"} 1")
                            && Catch::Contains("roomcast_redis_reconnects_total 1")
                            && Catch::Contains("roomcast_cluster_sequence_gaps_total 1")
                            && Catch::Contains("roomcast_cluster_resync_closes_total 1")
                            && Catch::Contains("roomcast_redis_up 1"));

    // Chat across nodes works again: bob joins again on node 1, and dave's room goes on.
    auto again = co_await test_client::connect(nodes.port(1));
    const auto rejoined = co_await again.join("1234", "bob");
    CHECK(rejoined.at("members").as_array() == names({"alice", "bob"}));
    const auto bob_back = co_await alice.receive();
    CHECK(bob_back.at("name") == "bob");
    CHECK(bob_back.at("seq") == rejoined.at("seq"));
    co_await again.say("back");
    const auto at_alice = co_await alice.receive();
    const auto at_bob = co_await again.receive();
    CHECK(at_alice == at_bob);
    CHECK(at_alice.at("text") == "back");
    co_await alice.say("welcome back");
    const auto welcome = co_await again.receive();
    CHECK(welcome.at("text") == "welcome back");
    CHECK(welcome.at("seq") == at_alice.at("seq").as_int64() + 1);
    co_await dave.say("still here");
    const auto dave_heard = co_await dave.receive();
    CHECK(dave_heard.at("text") == "still here");
    CHECK(dave_heard.at("seq") == 2);
  });
}

// (No ':' late in a test's name: Catch2's console reporter indents the wrapped name past the
// colon, and asserts when that is wider than the line.)
TEST_CASE(
    "a node that falls behind and is dropped by Redis's client-output-buffer-limit pubsub is "
    "treated as a gap") {
  // Node 1 reaches Redis through the test's proxy, which stops reading its subscription below.
  // --node-timeout 10000: the probe would take the subscription for dead only after 5 s without
  // its echo, so what ends it here is Redis, not the node.
  cluster nodes({"--node-timeout", "10000"}, 1);
  REQUIRE(nodes.redis_command({"CONFIG", "SET", "client-output-buffer-limit", "pubsub 64kb 0 0"}));
  run_client([&]() -> net::awaitable<void> {
    auto [alice, bob] = co_await alice_and_bob(nodes);
    // dave is alone in a room of his own on node 1: it does not move while node 1 falls behind.
    auto dave = co_await test_client::connect(nodes.port(1));
    const auto dave_created = co_await dave.create("4321", "dave");
    REQUIRE(dave_created.at("code") == 200);
    REQUIRE(nodes.proxy().subscriber_connections() == 1);
    REQUIRE_FALSE(nodes.redis().logged(output_buffer_drop));

    // Node 1 stops reading its subscription (as a node too slow to keep up would): the socket
    // from Redis fills, then Redis's output buffer for it, past the 64 kB hard limit, and Redis
    // closes it. Meanwhile bob reads whatever node 1 still delivers, until his connection ends.
    REQUIRE(nodes.proxy().stall_subscribers() == 1);
    int said = 0;
    std::vector<json::object> at_alice_meanwhile;
    ending bob_end;
    std::vector<net::awaitable<void>> tasks;
    tasks.push_back(say_until_dropped(nodes, alice, said, at_alice_meanwhile));
    tasks.push_back(read_to_end(bob, bob_end));
    co_await all_of(std::move(tasks));
    INFO("alice said " << said << ", bob got " << bob_end.frames_before << " frames");

    // Node 1 got what Redis had sent before it dropped the subscription (a gapless prefix of
    // alice's messages), then the end of the stream: it reconnected, resubscribed, found room
    // 1234 past what it saw, and closed bob with 1012 instead of delivering the rest.
    CHECK(bob_end.close_code == 1012);
    CHECK(bob_end.frames_before < static_cast<std::size_t>(said));
    for (std::size_t i = 0; i < bob_end.frames.size(); ++i) {
      CHECK(bob_end.frames[i].at("event") == "message");
      CHECK(bob_end.frames[i].at("seq") == static_cast<std::int64_t>(3 + i));
    }
    // It was Redis's output-buffer limit, on a pub/sub client (flags=P in the client's line), and
    // node 1 saw its subscription end (not its probe go unanswered).
    CHECK(nodes.redis().logged("flags=P"));
    REQUIRE(nodes.logged(1, "Redis unavailable (subscription lost"));
    REQUIRE(nodes.logged(1, "reconnected"));
    CHECK_FALSE(nodes.logged(1, "the subscription stopped delivering", 0ms));
    CHECK(nodes.proxy().subscriber_connections() == 2);
    // bob's leave reaches alice (during her messages or after them), and nothing else does.
    if (at_alice_meanwhile.empty()) {
      auto frame = co_await alice.receive();
      CHECK(frame.at("seq") == 3 + said);
      at_alice_meanwhile.push_back(std::move(frame));
    }
    REQUIRE(at_alice_meanwhile.size() == 1);
    const auto& left = at_alice_meanwhile.front();
    INFO(json::serialize(left));
    CHECK(left.at("event") == "leave");
    CHECK(left.at("name") == "bob");
    CHECK(left.at("reason") == "disconnected");
    CHECK(left.at("users") == 1);
    const auto metrics = co_await http_exchange(nodes.port(1), get("/metrics"));
    CHECK_THAT(metrics, Catch::Contains("roomcast_redis_failures_total{kind=\"probe\"} 0")
                            && Catch::Contains("roomcast_redis_reconnects_total 1")
                            && Catch::Contains("roomcast_cluster_sequence_gaps_total 1")
                            && Catch::Contains("roomcast_cluster_resync_closes_total 1")
                            && Catch::Contains("roomcast_redis_up 1"));
    // The other nodes' subscriptions were not touched.
    const auto metrics_0 = co_await http_exchange(nodes.port(0), get("/metrics"));
    CHECK_THAT(metrics_0, Catch::Contains("roomcast_redis_reconnects_total 0"));

    // The room works again: bob joins again on node 1, and chat goes both ways; dave's room went
    // on as before.
    auto again = co_await test_client::connect(nodes.port(1));
    const auto rejoined = co_await again.join("1234", "bob");
    CHECK(rejoined.at("members").as_array() == names({"alice", "bob"}));
    const auto bob_back = co_await alice.receive();
    CHECK(bob_back.at("name") == "bob");
    co_await again.say("back");
    const auto at_alice = co_await alice.receive();
    const auto at_bob = co_await again.receive();
    CHECK(at_alice == at_bob);
    CHECK(at_alice.at("text") == "back");
    co_await alice.say("welcome back");
    const auto welcome = co_await again.receive();
    CHECK(welcome.at("text") == "welcome back");
    CHECK(welcome.at("seq") == at_alice.at("seq").as_int64() + 1);
    co_await dave.say("still here");
    const auto dave_heard = co_await dave.receive();
    CHECK(dave_heard.at("text") == "still here");
    CHECK(dave_heard.at("seq") == 2);
  });
}

TEST_CASE(
    "a gap in a room's events closes its members with 1012, and junk on its channel is ignored") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto [alice, bob] = co_await alice_and_bob(nodes);

    REQUIRE(nodes.redis_command({"PUBLISH", "rc:{r:1234}:ev", "not a room event"}));
    co_await alice.say("still here");
    const auto said = co_await alice.receive();
    CHECK(said.at("seq") == 3);
    co_await bob.receive();

    // seq 9 after 3: events 4 to 8 never came. The nodes cannot vouch for the room any more.
    REQUIRE(nodes.redis_command(
        {"PUBLISH", "rc:{r:1234}:ev",
         R"({"k":"message","r":1234,"f":"n","n":"mallory","t":"forged","u":2,"s":9,"i":1})"}));
    const auto alice_end = co_await alice.receive_ending();
    CHECK(alice_end.close_code == 1012);
    CHECK(alice_end.frames_before == 0);  // nothing after the gap is delivered
    const auto bob_end = co_await bob.receive_ending();
    CHECK(bob_end.close_code == 1012);
    const auto metrics = co_await http_exchange(nodes.port(0), get("/metrics"));
    CHECK_THAT(metrics, Catch::Contains("roomcast_cluster_sequence_gaps_total 1"));
  });
}

TEST_CASE("a killed node's members leave on the other nodes within the node timeout") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto clients = co_await one_per_node(nodes);
    auto& alice = clients[0];
    auto& bob = clients[1];
    auto& carol = clients[2];
    co_await alice.create("1234", "alice");
    co_await bob.join("1234", "bob");
    co_await carol.join("1234", "carol");
    co_await collect(alice, 2);
    co_await bob.receive();

    const auto killed_at = std::chrono::steady_clock::now();
    nodes.node(2).signal(SIGKILL);
    const auto left = co_await alice.receive();
    const auto elapsed = std::chrono::steady_clock::now() - killed_at;
    CHECK(left.at("event") == "leave");
    CHECK(left.at("name") == "carol");
    CHECK(left.at("reason") == "disconnected");
    CHECK(left.at("users") == 2);
    CHECK(elapsed < node_timeout + 1s);
    const auto at_bob = co_await bob.receive();
    CHECK(at_bob == left);
  });
}

TEST_CASE("a node paused past the timeout finds it was reaped and closes its clients with 1012") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto [alice, bob] = co_await alice_and_bob(nodes);

    nodes.node(1).signal(SIGSTOP);
    const auto left = co_await alice.receive();
    CHECK(left.at("name") == "bob");
    CHECK(left.at("reason") == "disconnected");
    nodes.node(1).signal(SIGCONT);
    const auto bob_end = co_await bob.receive_ending();
    CHECK(bob_end.close_code == 1012);
    REQUIRE(nodes.logged(1, "taken for dead"));

    // What roomcast's page does then: reconnect and join again.
    auto again = co_await test_client::connect(nodes.port(1));
    const auto rejoined = co_await again.join("1234", "bob");
    CHECK(rejoined.at("members").as_array() == names({"alice", "bob"}));
  });
}

TEST_CASE("SIGTERM: a node drains, its members leave on the others, and it exits") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto [alice, bob] = co_await alice_and_bob(nodes);
    // Leave and join again on the same node while another node holds the room.
    co_await bob.send(R"({"type":"leave"})");
    co_await bob.receive();
    co_await bob.join("1234", "bob");
    co_await collect(alice, 2);

    nodes.node(1).signal(SIGTERM);
    const auto bob_end = co_await bob.receive_ending();
    CHECK(bob_end.close_code == 1001);
    const auto left = co_await alice.receive();
    CHECK(left.at("name") == "bob");
    CHECK(left.at("reason") == "disconnected");
    CHECK(left.at("users") == 1);
  });
  CHECK(nodes.node(1).wait_exit(6s) == 0);
  nodes.node(0).signal(SIGTERM);
  nodes.node(2).signal(SIGTERM);
  CHECK(nodes.node(0).wait_exit(6s) == 0);
  CHECK(nodes.node(2).wait_exit(6s) == 0);
}

TEST_CASE("SIGTERM while Redis is away: the node drains and exits all the same") {
  cluster nodes;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(nodes.port(0));
    co_await alice.create("1234", "alice");
    nodes.redis().kill();
    REQUIRE(nodes.logged(0, "Redis unavailable"));
    nodes.node(0).signal(SIGTERM);
    const auto alice_end = co_await alice.receive_ending();
    CHECK(alice_end.close_code == 1001);
  });
  CHECK(nodes.node(0).wait_exit(6s) == 0);
}
