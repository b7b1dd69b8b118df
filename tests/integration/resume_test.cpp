// Room history and resume end to end: the real server on two threads, real WebSocket clients,
// TCP connections dropped mid-conversation.
#include <string>

#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include "server_fixture.hpp"
#include "test_client.hpp"

using namespace roomcast;
using namespace roomcast::testing;
namespace json = boost::json;

namespace {

// Sends `frame` and returns the client's next frame.
net::awaitable<json::object> ask(test_client& client, std::string frame) {
  co_await client.send(frame);
  co_return co_await client.receive();
}

config with_grace(std::chrono::milliseconds grace) {
  auto settings = test_config();
  settings.hub.resume_grace = grace;
  return settings;
}

}  // namespace

TEST_CASE("a dropped connection resumes: what was said meanwhile comes once, in order") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    const auto created = co_await ask(alice, admission_with_resume("create", "1234", "alice"));
    CHECK(created.at("event") == "create");
    CHECK(created.at("token").as_string().size() == 32);
    CHECK(created.at("epoch").as_string().size() == 16);

    std::string token;
    std::int64_t seen = 0;
    {
      auto bob = co_await test_client::connect(server.port());
      const auto joined = co_await ask(bob, admission_with_resume("join", "1234", "bob"));
      token = token_of(joined);
      co_await alice.receive();  // bob's join
      co_await alice.say("before the drop");
      const auto heard = co_await bob.receive();
      CHECK(heard.at("text") == "before the drop");
      seen = heard.at("seq").as_int64();
      co_await alice.receive();
    }  // bob's TCP connection ends here, without a close frame

    co_await alice.say("while you were away");
    const auto first = co_await alice.receive();
    co_await alice.say("and again");
    const auto second = co_await alice.receive();
    CHECK(first.at("users") == 2);  // bob's seat is held: no leave, the count unchanged
    CHECK(second.at("seq") == first.at("seq").as_int64() + 1);

    auto bob = co_await test_client::connect(server.port());
    const auto ack = co_await ask(bob, resume_frame(token, seen, "1234"));
    CHECK(ack.at("event") == "resume");
    CHECK(ack.at("recovered") == true);
    CHECK(ack.at("missed") == 2);
    CHECK(ack.at("name") == "bob");
    CHECK(ack.at("users") == 2);
    CHECK(ack.at("members") == json::array{"alice", "bob"});
    CHECK(ack.at("epoch") == created.at("epoch"));
    CHECK(token_of(ack) != token);
    const auto missed1 = co_await bob.receive();
    const auto missed2 = co_await bob.receive();
    CHECK(missed1 == first);  // byte for byte what alice got, seq included
    CHECK(missed2 == second);

    co_await alice.say("welcome back");
    const auto live = co_await bob.receive();
    CHECK(live.at("text") == "welcome back");
    CHECK(live.at("seq") == second.at("seq").as_int64() + 1);
    // alice heard no leave or join: her next frame is her own message.
    const auto echoed = co_await alice.receive();
    CHECK(echoed == live);

    // The token was used up; a second resume with it is refused, to the requester only.
    auto thief = co_await test_client::connect(server.port());
    const auto refused = co_await ask(thief, resume_frame(token, seen));
    CHECK(refused.at("code") == 4010);
    CHECK(refused.at("error") == "invalid_token");
  });
}

TEST_CASE("a seat not resumed within the grace leaves as disconnected, and its token dies") {
  running_server server(with_grace(std::chrono::milliseconds(200)));
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    co_await alice.create("1234", "alice");
    std::string token;
    {
      auto bob = co_await test_client::connect(server.port());
      token = token_of(co_await ask(bob, admission_with_resume("join", "1234", "bob")));
      co_await alice.receive();
    }
    const auto left = co_await alice.receive();  // after the grace
    CHECK(left.at("event") == "leave");
    CHECK(left.at("name") == "bob");
    CHECK(left.at("reason") == "disconnected");
    CHECK(left.at("users") == 1);

    auto late = co_await test_client::connect(server.port());
    const auto refused = co_await ask(late, resume_frame(token, 0));
    CHECK(refused.at("code") == 4010);
    const auto again = co_await late.join("1234", "bob");  // the name is free again
    CHECK(again.at("event") == "join");
  });
}

TEST_CASE("bad resumes get their documented code, to the requester only, and take no seat") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    const auto created = co_await ask(alice, admission_with_resume("create", "1234", "alice"));
    const auto token = token_of(created);
    const auto seq = created.at("seq").as_int64();
    auto carol = co_await test_client::connect(server.port());
    co_await carol.create("5678", "carol");

    auto mallory = co_await test_client::connect(server.port());
    const auto code_of = [&](std::string frame) -> net::awaitable<std::int64_t> {
      const auto reply = co_await ask(mallory, std::move(frame));
      CHECK(reply.at("event") == "error");
      co_return reply.at("code").as_int64();
    };
    std::int64_t code = co_await code_of(resume_frame("not-a-token", 0));
    CHECK(code == 4010);
    auto forged = token;
    forged[0] = forged[0] == 'A' ? 'B' : 'A';
    code = co_await code_of(resume_frame(forged, seq));
    CHECK(code == 4010);
    code = co_await code_of(resume_frame(token, seq, "5678"));
    CHECK(code == 4011);
    code = co_await code_of(resume_frame(token, seq + 1));
    CHECK(code == 4012);
    code = co_await code_of(R"({"type":"resume","token":")" + token + R"(","since":"3"})");
    CHECK(code == 4002);
    code = co_await code_of(R"({"type":"resume","token":")" + token + R"(","since":-1})");
    CHECK(code == 4002);
    code = co_await code_of(R"({"type":"resume","since":0})");
    CHECK(code == 4002);
    code = co_await code_of(R"({"type":"join","roomId":"1234","name":"m","history":"yes"})");
    CHECK(code == 4002);
    // None of these used up alice's token or touched her seat.
    co_await alice.say("still mine");
    const auto own = co_await alice.receive();
    CHECK(own.at("text") == "still mine");
    CHECK(own.at("users") == 1);
  });
}

TEST_CASE("a resume while the old connection is open closes the old one with 4100") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    co_await alice.create("1234", "alice");
    auto laptop = co_await test_client::connect(server.port());
    const auto joined = co_await ask(laptop, admission_with_resume("join", "1234", "bob"));
    co_await alice.receive();

    auto phone = co_await test_client::connect(server.port());
    const auto ack =
        co_await ask(phone, resume_frame(token_of(joined), joined.at("seq").as_int64()));
    CHECK(ack.at("event") == "resume");
    CHECK(ack.at("missed") == 0);
    const auto ended = co_await laptop.receive_ending();
    CHECK(ended.close_code == 4100);

    // A resume from inside a room is refused.
    const auto refused = co_await ask(phone, resume_frame(token_of(ack), 0));
    CHECK(refused.at("code") == 4008);

    co_await alice.say("still there?");
    const auto heard = co_await phone.receive();
    CHECK(heard.at("text") == "still there?");
    CHECK(heard.at("users") == 2);
    const auto own = co_await alice.receive();
    CHECK(own == heard);  // no leave or join of bob in between
  });
}

TEST_CASE("a newcomer asking for history gets the recent chat, marked, then live events") {
  running_server server;
  run_client([&]() -> net::awaitable<void> {
    auto alice = co_await test_client::connect(server.port());
    co_await alice.create("1234", "alice");
    co_await alice.say("one");
    co_await alice.receive();
    co_await alice.say("two");
    const auto two = co_await alice.receive();

    auto bob = co_await test_client::connect(server.port());
    const auto joined = co_await ask(bob, admission_with_resume("join", "1234", "bob"));
    CHECK(joined.at("event") == "join");
    const auto h1 = co_await bob.receive();
    const auto h2 = co_await bob.receive();
    CHECK(h1.at("history") == true);
    CHECK(h1.at("text") == "one");
    CHECK(h2.at("history") == true);
    auto unmarked = h2;
    unmarked.erase("history");
    CHECK(unmarked == two);
    co_await alice.say("three");
    const auto live = co_await bob.receive();
    CHECK_FALSE(live.contains("history"));
    CHECK(live.at("seq") == joined.at("seq").as_int64() + 1);

    // The seed client's frames ask for neither: no history, no token.
    auto seed = co_await test_client::connect(server.port(), {.target = "/"});
    co_await seed.send(R"({"name":"dora","roomId":"1234","type":"join","text":"","id":1})");
    const auto plain = co_await seed.receive();
    CHECK(plain.at("event") == "join");
    CHECK_FALSE(plain.contains("token"));
    co_await alice.say("four");
    const auto next = co_await seed.receive();
    CHECK(next.at("text") == "four");
  });
}
