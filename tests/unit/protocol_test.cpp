#include "roomcast/protocol.hpp"

#include <set>
#include <string>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <catch2/catch.hpp>

#include "roomcast/ws_codec.hpp"

using namespace roomcast;
namespace json = boost::json;

namespace {
command parse_ok(std::string_view frame, std::size_t max_text = 100) {
  auto result = parse_command(frame, max_text);
  if (auto* refusal = std::get_if<rejection>(&result)) {
    FAIL("refused with " << static_cast<int>(refusal->code) << ": " << frame);
  }
  return std::get<command>(std::move(result));
}

rejection parse_refused(std::string_view frame, std::size_t max_text = 100) {
  auto result = parse_command(frame, max_text);
  REQUIRE(std::holds_alternative<rejection>(result));
  return std::get<rejection>(std::move(result));
}
}  // namespace

TEST_CASE("the seed client's first frame creates or joins a room") {
  // What its ChatRoom sends on open: the state spread, an empty text and a Date.now() id.
  const auto create =
      parse_ok(R"({"name":"alice","roomId":1234,"type":"create","text":"","id":1700000000000})");
  REQUIRE(std::holds_alternative<create_room>(create));
  CHECK(std::get<create_room>(create).name == "alice");
  CHECK(std::get<create_room>(create).room.key() == 1234);
  CHECK(std::get<create_room>(create).room.to_json() == 1234);  // replies keep the number

  const auto join = parse_ok(R"({"name":"bob","roomId":"1234","type":"join","text":"","id":1})");
  REQUIRE(std::holds_alternative<join_room>(join));
  CHECK(std::get<join_room>(join).room.key() == 1234);
  CHECK(std::get<join_room>(join).room.to_json() == "1234");  // and the string
}

TEST_CASE("a click on the seed client's Send button is a chat message") {
  // Its button passes the click event as `type`; JSON.stringify makes it {"isTrusted":true}.
  const auto clicked =
      parse_ok(R"({"name":"alice","roomId":1234,"type":{"isTrusted":true},"text":"hi","id":1})");
  REQUIRE(std::holds_alternative<say>(clicked));
  CHECK(std::get<say>(clicked).text == "hi");

  SECTION("and so are an empty type, no type, and \"message\"") {
    CHECK(std::holds_alternative<say>(parse_ok(R"({"type":"","text":"a"})")));
    CHECK(std::holds_alternative<say>(parse_ok(R"({"text":"a"})")));
    CHECK(std::holds_alternative<say>(parse_ok(R"({"type":"message","text":"a"})")));
  }
}

TEST_CASE("leave ignores the fields the seed client sends along") {
  CHECK(std::holds_alternative<leave_room>(
      parse_ok(R"({"name":"alice","roomId":1234,"type":"leave","text":"draft","id":2})")));
}

TEST_CASE("malformed frames are refused with a documented code") {
  SECTION("not JSON") {
    CHECK(parse_refused("{nope").code == wire_code::malformed_frame);
  }
  SECTION("JSON that is not an object") {
    CHECK(parse_refused("[1,2]").code == wire_code::malformed_frame);
    CHECK(parse_refused("\"create\"").code == wire_code::malformed_frame);
    CHECK(parse_refused("").code == wire_code::malformed_frame);
  }
  SECTION("unknown type") {
    CHECK(parse_refused(R"({"type":"shout","text":"a"})").code == wire_code::unknown_type);
    CHECK(parse_refused(R"({"type":7,"text":"a"})").code == wire_code::unknown_type);
    CHECK(parse_refused(R"({"type":["create"]})").code == wire_code::unknown_type);
  }
  SECTION("chat text of the wrong type or missing") {
    CHECK(parse_refused(R"({"type":"message","text":5})").code == wire_code::invalid_field);
    CHECK(parse_refused(R"({"type":"message"})").code == wire_code::invalid_field);
  }
  SECTION("empty or white-space-only text") {
    CHECK(parse_refused(R"({"text":""})").code == wire_code::empty_text);
    CHECK(parse_refused(R"({"text":" \n\t　"})").code == wire_code::empty_text);
  }
  SECTION("text over the limit, counted in code points") {
    const std::string hundred_han = [] {
      std::string s;
      for (int i = 0; i < 100; ++i)
        s += "字";
      return s;
    }();
    CHECK(std::holds_alternative<say>(parse_ok(R"({"text":")" + hundred_han + "\"}")));
    CHECK(parse_refused(R"({"text":")" + hundred_han + "x\"}").code == wire_code::text_too_long);
    CHECK(parse_refused(R"({"text":"abc"})", 2).code == wire_code::text_too_long);
  }
}

// parse_command takes frames the WebSocket codec has validated as UTF-8 (its precondition); the
// codec's refusal of the rest is in ws_codec_test.cpp. What JSON escapes decode to is the parser's.
TEST_CASE("JSON escapes cannot make a name or a text that is not valid UTF-8") {
  const auto valid_utf8 = [](std::string_view bytes) {
    ws::utf8_validator check;
    return check.feed(bytes) && check.complete();
  };
  SECTION("a lone surrogate is refused as malformed, as a name or as a text") {
    // Each once near the end of the frame and once followed by more fields: Boost.JSON decodes
    // an escape on two paths, depending on how much input is left.
    for (const char* escape : {R"(\ud800)", R"(\udbff)", R"(\udc00)", R"(\udfff)",
                               R"(\ud800\u0041)", R"(\ud800x)", R"(\ud800\ud800)"}) {
      INFO(escape);
      const std::string name = std::string(R"(")") + escape + R"(")";
      CHECK(parse_refused(R"({"type":"create","roomId":1234,"name":)" + name + "}").code
            == wire_code::malformed_frame);
      CHECK(
          parse_refused(R"({"type":"create","name":)" + name + R"(,"roomId":1234,"text":""})").code
          == wire_code::malformed_frame);
      CHECK(parse_refused(R"({"text":)" + name + "}").code == wire_code::malformed_frame);
      CHECK(parse_refused(R"({"text":)" + name + R"(,"type":"message","id":1700000000000})").code
            == wire_code::malformed_frame);
    }
  }
  SECTION("a surrogate pair is one valid 4-byte character") {
    const auto admitted =
        parse_ok(R"({"type":"create","roomId":1234,"name":"\ud83d\ude00 \u5c0f\u660e"})");
    const auto& name = std::get<create_room>(admitted).name;
    CHECK(name == "😀 小明");
    CHECK(valid_utf8(name));

    std::string escaped;
    for (int i = 0; i < 32; ++i)
      escaped += R"(\ud83d\ude00)";
    const auto longest = parse_ok(R"({"type":"join","roomId":1234,"name":")" + escaped + R"("})");
    CHECK(std::get<join_room>(longest).name.size() == 4 * 32);  // 32 code points: the limit
    CHECK(parse_refused(R"({"type":"join","roomId":1234,"name":")" + escaped + R"(a"})").code
          == wire_code::invalid_name);

    const auto said = parse_ok(R"({"text":"\ud83d\ude00\ud83d\ude00"})", 2);
    CHECK(std::get<say>(said).text == "😀😀");
    CHECK(valid_utf8(std::get<say>(said).text));
    CHECK(parse_refused(R"({"text":"\ud83d\ude00\ud83d\ude00!"})", 2).code
          == wire_code::text_too_long);
  }
  SECTION("escaped controls are valid UTF-8, and still no part of a name") {
    CHECK(parse_refused(R"({"type":"create","roomId":1234,"name":"a\u0000"})").code
          == wire_code::invalid_name);
    CHECK(parse_refused(R"({"type":"create","roomId":1234,"name":"\u009f"})").code
          == wire_code::invalid_name);
    CHECK(std::get<create_room>(parse_ok(R"({"type":"create","roomId":1234,"name":"\u00a1"})")).name
          == "\xC2\xA1");
    CHECK(std::get<say>(parse_ok(R"({"text":"a\u0000b"})")).text == std::string("a\0b", 3));
  }
}

TEST_CASE("room numbers are exactly four digits") {
  const auto code_for = [](std::string_view room) {
    return parse_refused(std::string(R"({"type":"join","name":"a","roomId":)") + std::string(room)
                         + "}")
        .code;
  };
  CHECK(code_for("999") == wire_code::invalid_room_id);
  CHECK(code_for("10000") == wire_code::invalid_room_id);
  CHECK(code_for("-1234") == wire_code::invalid_room_id);
  CHECK(code_for("1234.5") == wire_code::invalid_room_id);
  CHECK(code_for("\"123\"") == wire_code::invalid_room_id);
  CHECK(code_for("\"12345\"") == wire_code::invalid_room_id);
  CHECK(code_for("\"12a4\"") == wire_code::invalid_room_id);
  CHECK(code_for("null") == wire_code::invalid_room_id);
  CHECK(code_for("[1234]") == wire_code::invalid_room_id);
  CHECK(parse_refused(R"({"type":"create","name":"a"})").code == wire_code::invalid_room_id);

  const auto leading_zero = parse_ok(R"({"type":"create","name":"a","roomId":"0042"})");
  CHECK(std::get<create_room>(leading_zero).room.key() == 42);
  CHECK(json::serialize(std::get<create_room>(leading_zero).room.to_json()) == "\"0042\"");
}

TEST_CASE("names are trimmed, 1 to 32 code points, without control characters") {
  const auto name_of = [](std::string_view raw) {
    return std::get<create_room>(parse_ok(std::string(R"({"type":"create","roomId":1234,"name":)")
                                          + std::string(raw) + "}"))
        .name;
  };
  const auto code_for = [](std::string_view raw) {
    return parse_refused(std::string(R"({"type":"create","roomId":1234,"name":)") + std::string(raw)
                         + "}")
        .code;
  };
  CHECK(name_of(R"("  alice ")") == "alice");
  CHECK(name_of(R"("小明")") == "小明");
  CHECK(name_of("\"" + std::string(32, 'x') + "\"") == std::string(32, 'x'));
  CHECK(code_for("\"" + std::string(33, 'x') + "\"") == wire_code::invalid_name);
  CHECK(code_for(R"("   ")") == wire_code::invalid_name);
  CHECK(code_for(R"("")") == wire_code::invalid_name);
  CHECK(code_for(R"("a\u0007b")") == wire_code::invalid_name);
  CHECK(code_for(R"("a\u0085b")") == wire_code::invalid_name);
  CHECK(code_for("42") == wire_code::invalid_name);
  CHECK(code_for("null") == wire_code::invalid_name);
}

TEST_CASE("a refused create or join echoes the frame's roomId and name") {
  const auto refusal = parse_refused(R"({"type":"join","roomId":"12","name":"bob"})");
  CHECK(refusal.code == wire_code::invalid_room_id);
  CHECK(refusal.room == json::value("12"));
  CHECK(refusal.name == json::value("bob"));

  SECTION("while other refusals carry neither, so the seed client does not leave its room") {
    const auto chat = parse_refused(R"({"type":"message","roomId":1234,"name":"bob","text":""})");
    CHECK(chat.room.is_null());
    CHECK(chat.name.is_null());
    const auto frame = json::parse(serialize(chat, 3)).as_object();
    CHECK_FALSE(frame.contains("name"));
    CHECK_FALSE(frame.contains("roomId"));
    CHECK(frame.at("users") == 3);
  }
}

TEST_CASE("room events serialize to what the seed client reads") {
  const auto room =
      std::get<create_room>(parse_ok(R"({"type":"create","roomId":1234,"name":"a"})")).room;
  const std::string_view members[] = {"alice", "bob"};
  const room_event joined{.kind = room_event_kind::join,
                          .room = room,
                          .name = "bob",
                          .text = {},
                          .users = 2,
                          .seq = 2,
                          .time_ms = 1700000000001,
                          .members = members};
  const auto frame = json::parse(serialize(joined)).as_object();
  CHECK(frame.at("code") == 200);
  CHECK(frame.at("event") == "join");
  CHECK(frame.at("roomId") == 1234);  // a number, as the creator wrote it
  CHECK(frame.at("name") == "bob");
  CHECK(frame.at("text") == "bob joined the room");
  CHECK(frame.at("users") == 2);
  CHECK(frame.at("id") == 1700000000001);
  CHECK(frame.at("seq") == 2);
  CHECK(frame.at("members") == json::array{"alice", "bob"});
  CHECK_FALSE(frame.contains("reason"));

  room_event said = joined;
  said.kind = room_event_kind::message;
  said.text = "<b>hi</b> \"quoted\"";
  const auto message = json::parse(serialize(said)).as_object();
  CHECK(message.at("text") == "<b>hi</b> \"quoted\"");
  CHECK_FALSE(message.contains("members"));

  room_event left = joined;
  left.kind = room_event_kind::leave;
  left.reason = leave_reason::slow_consumer;
  const auto leave = json::parse(serialize(left)).as_object();
  CHECK(leave.at("reason") == "slow_consumer");
  CHECK_FALSE(leave.contains("members"));  // a roster goes only with a newcomer's own admission

  room_event others_copy = joined;
  others_copy.members = {};
  CHECK_FALSE(json::parse(serialize(others_copy)).as_object().contains("members"));
}

TEST_CASE("every wire code has its own token and a description") {
  std::set<std::string_view> tokens;
  std::set<std::string_view> texts;
  const int codes[] = {200,  4000, 4001, 4002, 4003, 4004, 4005, 4006, 4007,
                       4008, 4009, 5001, 5002, 5003, 5004, 5005, 5006};
  for (const int code : codes) {
    const auto value = static_cast<wire_code>(code);
    tokens.insert(token(value));
    texts.insert(describe(value));
  }
  CHECK(tokens.size() == std::size(codes));
  CHECK(texts.size() == std::size(codes));
  CHECK(token(wire_code::name_taken) == "name_taken");
}

TEST_CASE("regression (fuzz_protocol): an infinite or NaN echo is dropped, the reply stays JSON") {
  for (const char* frame : {R"({"type":"join","roomId":1e999,"name":"bob"})",
                            R"({"type":"join","roomId":0e99999,"name":"bob"})",
                            R"({"type":"create","roomId":1234,"name":-1e999})"}) {
    INFO(frame);
    const auto refusal = parse_refused(frame);
    const auto text = serialize(refusal, 0);
    CHECK(text.find("Infinity") == std::string::npos);
    boost::system::error_code ec;
    const auto reply = json::parse(text, ec);
    CHECK_FALSE(ec);
  }
}

TEST_CASE("create and join may ask for history and a resume token, as booleans") {
  const auto plain = parse_ok(R"({"type":"join","roomId":"1234","name":"bob"})");
  CHECK_FALSE(std::get<join_room>(plain).wishes.history);
  CHECK_FALSE(std::get<join_room>(plain).wishes.resume);
  const auto both =
      parse_ok(R"({"type":"create","roomId":"1234","name":"bob","history":true,"resume":true})");
  CHECK(std::get<create_room>(both).wishes.history);
  CHECK(std::get<create_room>(both).wishes.resume);
  const auto nulls =
      parse_ok(R"({"type":"join","roomId":"1234","name":"bob","history":null,"resume":false})");
  CHECK_FALSE(std::get<join_room>(nulls).wishes.history);
  const auto wrong = parse_refused(R"({"type":"join","roomId":"1234","name":"bob","resume":1})");
  CHECK(wrong.code == wire_code::invalid_field);
  CHECK(wrong.name == "bob");  // an admission refusal: echoed, like 4003 and 4004
}

TEST_CASE("a resume frame needs a string token and a non-negative integer since") {
  const auto ok = parse_ok(R"({"type":"resume","token":"abc","since":7,"roomId":1234})");
  const auto& resume = std::get<resume_seat>(ok);
  CHECK(resume.token == "abc");
  CHECK(resume.since == 7);
  REQUIRE(resume.room.has_value());
  CHECK(resume.room->key() == 1234);
  CHECK_FALSE(std::get<resume_seat>(parse_ok(R"({"type":"resume","token":"t","since":0})"))
                  .room.has_value());
  for (const auto* bad :
       {R"({"type":"resume","since":1})", R"({"type":"resume","token":"t"})",
        R"({"type":"resume","token":5,"since":1})", R"({"type":"resume","token":"t","since":-1})",
        R"({"type":"resume","token":"t","since":1.5})",
        R"({"type":"resume","token":"t","since":"1"})"}) {
    INFO(bad);
    CHECK(parse_refused(bad).code == wire_code::invalid_field);
  }
  CHECK(parse_refused(R"({"type":"resume","token":"t","since":1,"roomId":"12"})").code
        == wire_code::invalid_room_id);
}

TEST_CASE("a resume's reply and a history message serialize as documented") {
  const auto room = *room_id::from_json(json::value("1234"));
  const std::string_view members[] = {"alice", "bob"};
  const auto ack = json::parse(serialize(resume_ack{.room = room,
                                                    .name = "bob",
                                                    .users = 2,
                                                    .members = members,
                                                    .epoch = "e",
                                                    .token = "t",
                                                    .recovered = true,
                                                    .missed = 3,
                                                    .last = 9}))
                       .as_object();
  CHECK(ack.at("code") == 200);
  CHECK(ack.at("event") == "resume");
  CHECK(ack.at("roomId") == "1234");
  CHECK(ack.at("members") == json::array{"alice", "bob"});
  CHECK(ack.at("recovered") == true);
  CHECK(ack.at("missed") == 3);
  CHECK(ack.at("last") == 9);
  CHECK(ack.at("token") == "t");
  CHECK(ack.at("epoch") == "e");
  CHECK(ack.at("users") == 2);

  const auto marked = json::parse(as_history(R"({"code":200,"seq":4})")).as_object();
  CHECK(marked == json::object{{"history", true}, {"code", 200}, {"seq", 4}});
}
