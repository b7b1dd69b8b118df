// Cluster mode's plain half: keys, the events the scripts publish, and what the scripts answer
// (tests/integration/cluster_test.cpp runs the scripts in a real Redis).
#include "roomcast/cluster_codec.hpp"

#include <boost/json/parse.hpp>
#include <catch2/catch.hpp>

using namespace roomcast;
using namespace roomcast::cluster_codec;
namespace json = boost::json;

namespace {
redis::reply integer(long long value) {
  redis::reply r;
  r.type = redis::reply::kind::integer;
  r.integer = value;
  return r;
}
redis::reply string(std::string value) {
  redis::reply r;
  r.type = redis::reply::kind::string;
  r.str = std::move(value);
  return r;
}
redis::reply array(std::vector<redis::reply> elements) {
  redis::reply r;
  r.type = redis::reply::kind::array;
  r.elements = std::move(elements);
  return r;
}
}  // namespace

TEST_CASE("a room's keys and channel share one hash tag") {
  CHECK(room_key(1234, "meta") == "rc:{r:1234}:meta");
  CHECK(room_key(42, "names") == "rc:{r:42}:names");
  CHECK(room_channel(1234) == "rc:{r:1234}:ev");
  CHECK(node_members_key("web-1") == "rc:node:web-1:m");
  CHECK(node_channel("web-1") == "rc:node:web-1");
}

TEST_CASE("every script starts with the shared prelude and has a body of its own") {
  for (const auto which : {script::create, script::join, script::say, script::leave,
                           script::heartbeat, script::resume}) {
    const auto text = script_text(which);
    CHECK_THAT(std::string(text), Catch::Contains("local function next_event"));
    CHECK_THAT(std::string(text), Catch::Contains("return"));
  }
  CHECK(script_text(script::create) != script_text(script::join));
}

TEST_CASE("a published join becomes the hub's frame, with the roster for the newcomer only") {
  const auto e = decode_event(
      R"({"k":"join","r":1234,"f":"n","n":"bob","u":2,"s":2,"i":1764100000105,"o":"a:7",)"
      R"("m":["alice","bob"]})");
  REQUIRE(e);
  CHECK(e->kind == room_event_kind::join);
  CHECK(e->room == 1234);
  CHECK(e->owner == "a:7");
  CHECK(e->members == std::vector<std::string>{"alice", "bob"});
  CHECK(event_frame(*e, true)
        == R"({"code":200,"event":"join","roomId":1234,"name":"bob","text":"bob joined the room",)"
           R"("users":2,"id":1764100000105,"seq":2,"members":["alice","bob"]})");
  CHECK(event_frame(*e, false)
        == R"({"code":200,"event":"join","roomId":1234,"name":"bob","text":"bob joined the room",)"
           R"("users":2,"id":1764100000105,"seq":2})");
}

TEST_CASE("a room created with a string number keeps that form; chat text is kept as sent") {
  const auto e = decode_event(
      R"({"k":"message","r":42,"f":"s","n":"al","t":"hi \/ \u4f60\n","u":1,"s":3,"i":5})");
  REQUIRE(e);
  const auto frame = json::parse(event_frame(*e, true)).as_object();
  CHECK(frame.at("roomId") == "0042");
  CHECK(frame.at("text") == "hi / \xe4\xbd\xa0\n");
  CHECK_FALSE(frame.contains("members"));  // not an admission
}

TEST_CASE("a leave carries its reason") {
  const auto e = decode_event(
      R"({"k":"leave","r":1234,"f":"n","n":"bob","u":0,"s":9,"i":7,"o":"b:1","w":"disconnected"})");
  REQUIRE(e);
  CHECK(e->reason == leave_reason::disconnected);
  const auto frame = json::parse(event_frame(*e, false)).as_object();
  CHECK(frame.at("reason") == "disconnected");
  CHECK(frame.at("text") == "bob disconnected");
  CHECK(frame.at("users") == 0);
}

TEST_CASE("anything that is not a whole room event is refused") {
  const char* bad[] = {
      "",
      "[]",
      "not json",
      R"({"k":"shout","r":1234,"f":"n","n":"a","u":1,"s":1,"i":1,"o":"x"})",
      R"({"k":"message","r":1234,"f":"n","n":"a","u":1,"s":1,"i":1})",         // no text
      R"({"k":"leave","r":1234,"f":"n","n":"a","u":1,"s":1,"i":1,"o":"x"})",   // no reason
      R"({"k":"join","r":1234,"f":"n","n":"a","u":1,"s":1,"i":1,"o":"x"})",    // no roster
      R"({"k":"join","r":1234,"f":"n","n":"a","u":1,"s":1,"i":1,"m":["a"]})",  // no owner
      R"({"k":"message","r":12345,"f":"n","n":"a","t":"x","u":1,"s":1,"i":1})",
      R"({"k":"message","r":999,"f":"n","n":"a","t":"x","u":1,"s":1,"i":1})",  // not 4 digits
      R"({"k":"message","r":1234,"f":"n","n":"a","t":"x","u":1,"s":0,"i":1})",
      R"({"k":"message","r":1234,"f":"n","n":"a","t":"x","u":-1,"s":1,"i":1})",
  };
  for (const char* payload : bad) {
    INFO(payload);
    CHECK_FALSE(decode_event(payload));
  }
}

TEST_CASE("admission answers: 0 admits, the seed's codes refuse, anything else is unavailable") {
  CHECK(decode_admission(array({integer(0)})) == wire_code::ok);
  CHECK(decode_admission(array({integer(5001)})) == wire_code::room_exists);
  CHECK(decode_admission(array({integer(5002)})) == wire_code::name_taken);
  CHECK(decode_admission(array({integer(5003)})) == wire_code::room_full);
  CHECK(decode_admission(array({integer(5004)})) == wire_code::no_such_room);
  CHECK(decode_admission(array({integer(5005)})) == wire_code::too_many_rooms);
  CHECK(decode_admission(array({integer(42)})) == wire_code::unavailable);
  CHECK(decode_admission(array({})) == wire_code::unavailable);
  CHECK(decode_admission(integer(0)) == wire_code::unavailable);
  redis::reply error;
  error.type = redis::reply::kind::error;
  error.str = "ERR script failed";
  CHECK(decode_admission(error) == wire_code::unavailable);
}

TEST_CASE("heartbeat answers") {
  const auto fine = decode_heartbeat(array({integer(0), integer(3), integer(2)}));
  REQUIRE(fine);
  CHECK_FALSE(fine->reaped_me);
  CHECK(fine->reaped == 3);
  CHECK(fine->live_nodes == 2);
  const auto reaped = decode_heartbeat(array({integer(1), integer(0), integer(1)}));
  REQUIRE(reaped);
  CHECK(reaped->reaped_me);
  CHECK_FALSE(decode_heartbeat(array({integer(0), integer(3)})));
  CHECK_FALSE(decode_heartbeat(integer(1)));
}

TEST_CASE("the run_id is read from INFO server") {
  const std::string info =
      "# Server\r\nredis_version:7.0.15\r\nrun_id:4c2ab1f0e9d8\r\ntcp_port:0\r\n";
  CHECK(run_id_of(info) == "4c2ab1f0e9d8");
  CHECK_FALSE(run_id_of("# Server\r\nredis_version:7.0.15\r\n"));
}

TEST_CASE(
    "the newcomer's own frame carries the room's epoch and its token and the others' do not") {
  const auto e = decode_event(
      R"({"k":"join","r":1234,"f":"s","n":"bob","u":2,"s":2,"i":1764100000105,"o":"a:7",)"
      R"("m":["alice","bob"],"e":"Xq3v0kT9bWm1aLzE"})");
  REQUIRE(e);
  CHECK(e->epoch == "Xq3v0kT9bWm1aLzE");
  const auto own = json::parse(event_frame(*e, true, "tok")).as_object();
  CHECK(own.at("epoch") == "Xq3v0kT9bWm1aLzE");
  CHECK(own.at("token") == "tok");
  const auto others = json::parse(event_frame(*e, false)).as_object();
  CHECK_FALSE(others.contains("epoch"));
  CHECK_FALSE(others.contains("token"));
}

TEST_CASE("a join's answer carries its history after the code") {
  CHECK(admission_history(array({integer(0)})).empty());
  CHECK(admission_history(array({integer(0), string("a"), string("b")}))
        == std::vector<std::string>{"a", "b"});
  CHECK(decode_admission(array({integer(0), string("a")})) == wire_code::ok);
}

TEST_CASE("token keys: 16 hex digits of the index") {
  CHECK(token_index(0x0123456789abcdefULL) == "0123456789abcdef");
  CHECK(token_index(1) == "0000000000000001");
  CHECK(token_key(255) == "rc:tok:00000000000000ff");
}

TEST_CASE("resume answers: a refusal or the seat with its missed events or nothing") {
  CHECK(decode_resume(array({integer(4010)}))->code == wire_code::invalid_token);
  CHECK(decode_resume(array({integer(4011)}))->code == wire_code::wrong_room);
  CHECK(decode_resume(array({integer(4012)}))->code == wire_code::since_ahead);
  CHECK_FALSE(decode_resume(array({integer(7)})));
  CHECK_FALSE(decode_resume(integer(0)));
  CHECK_FALSE(decode_resume(array({integer(0), string("bob")})));
  const auto back = decode_resume(
      array({integer(0), string("bob"), string("s"), integer(2), integer(9), string("ep"),
             integer(1), array({string("alice"), string("bob")}), string("{e8}"), string("{e9}")}));
  REQUIRE(back);
  CHECK(back->code == wire_code::ok);
  CHECK(back->name == "bob");
  CHECK_FALSE(back->room_as_number);
  CHECK(back->users == 2);
  CHECK(back->last == 9);
  CHECK(back->epoch == "ep");
  CHECK(back->recovered);
  CHECK(back->roster == std::vector<std::string>{"alice", "bob"});
  CHECK(back->missed == std::vector<std::string>{"{e8}", "{e9}"});
}

TEST_CASE("a moved notice names the room and the old owner and is not a room event") {
  const auto moved = decode_moved(R"({"k":"moved","r":1234,"o":"n1:7"})");
  REQUIRE(moved);
  CHECK(moved->first == 1234);
  CHECK(moved->second == "n1:7");
  CHECK_FALSE(decode_moved(R"({"k":"join","r":1234,"o":"n1:7"})"));
  CHECK_FALSE(decode_moved(R"({"k":"moved","r":12345,"o":"n1:7"})"));
  CHECK_FALSE(decode_moved("not json"));
  CHECK_FALSE(decode_event(R"({"k":"moved","r":1234,"o":"n1:7"})"));
}
