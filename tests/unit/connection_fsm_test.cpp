// The connection lifecycle without sockets: every transition of connection_fsm, and what each
// event decides in each state.
#include "roomcast/connection_fsm.hpp"

#include <algorithm>
#include <chrono>
#include <string_view>
#include <vector>

#include <catch2/catch.hpp>

#include "roomcast/ws_codec.hpp"

using namespace roomcast;
using state = connection_fsm::state;
using action = decision::action;

namespace {

using clock_type = std::chrono::steady_clock;
const clock_type::time_point t0 = clock_type::time_point{} + std::chrono::hours(1);

constexpr connection_fsm::limits generous{.rate_limit = 0, .rate_burst = 0, .flood_limit = 5};

connection_fsm in_state(state wanted, const connection_fsm::limits& limits = generous) {
  connection_fsm fsm(limits);
  if (wanted == state::http) return fsm;
  REQUIRE(fsm.begin_upgrade());
  if (wanted == state::upgrading) return fsm;
  REQUIRE(fsm.upgraded() == decision{});
  if (wanted == state::open) return fsm;
  if (wanted == state::closing) {
    REQUIRE(fsm.on_frame(frame_kind::close, t0).what == action::send_close);
  } else {
    REQUIRE(fsm.on_read_end("").what == action::disconnect);
  }
  REQUIRE(fsm.current() == wanted);
  return fsm;
}

decision close_with(std::uint16_t code, std::string_view reason, bool drop_queued = false) {
  return {.what = action::send_close,
          .close_code = code,
          .close_reason = reason,
          .drop_queued = drop_queued};
}

const decision disconnect{.what = action::disconnect};

}  // namespace

TEST_CASE("a connection starts in http and upgrades to open") {
  connection_fsm fsm(generous);
  CHECK(fsm.current() == state::http);
  CHECK_FALSE(fsm.reading());
  CHECK(fsm.why_ended() == ending::none);
  REQUIRE(fsm.begin_upgrade());
  CHECK(fsm.current() == state::upgrading);
  CHECK_FALSE(fsm.begin_upgrade());  // once
  CHECK(fsm.upgraded() == decision{});
  CHECK(fsm.current() == state::open);
  CHECK(fsm.reading());
}

TEST_CASE("an HTTP exchange or a failed upgrade ends in closed, with its reason") {
  SECTION("http") {
    auto fsm = in_state(state::http);
    fsm.http_ended(ending::http_done);
    CHECK(fsm.current() == state::closed);
    CHECK(fsm.why_ended() == ending::http_done);
    CHECK(describe(fsm.why_ended()) == "done");
  }
  SECTION("upgrading") {
    auto fsm = in_state(state::upgrading);
    fsm.http_ended(ending::handshake_failed, "bad version");
    fsm.http_ended(ending::http_done);  // the first reason stays
    CHECK(fsm.current() == state::closed);
    CHECK(fsm.why_ended() == ending::handshake_failed);
    CHECK(fsm.detail() == "bad version");
  }
}

TEST_CASE("a shutdown closes a connection in http or upgrading at once") {
  for (const auto from : {state::http, state::upgrading}) {
    auto fsm = in_state(from);
    CHECK(fsm.on_shutdown() == disconnect);
    CHECK(fsm.current() == state::closed);
    CHECK(fsm.why_ended() == ending::shutdown);
    CHECK_FALSE(fsm.begin_upgrade());
    // An upgrade that completes after the shutdown is cut off.
    CHECK(fsm.upgraded() == disconnect);
    CHECK(fsm.current() == state::closed);
  }
}

TEST_CASE("a shutdown sends an open connection close 1001 after its queued frames") {
  auto fsm = in_state(state::open);
  CHECK(fsm.on_shutdown() == close_with(ws::close_code::going_away, "server shutting down"));
  CHECK(fsm.current() == state::closing);
  CHECK(fsm.why_ended() == ending::shutdown);
  CHECK(fsm.on_shutdown() == decision{});  // a second request changes nothing
}

TEST_CASE("a member's shutdown waits for its room to hand out what it accepted") {
  const auto going_away = close_with(ws::close_code::going_away, "server shutting down");
  SECTION("the room ends in the drain: then the close") {
    auto fsm = in_state(state::open);
    CHECK(fsm.on_shutdown(/*in_room=*/true) == decision{});
    CHECK(fsm.current() == state::open);
    CHECK(fsm.on_room_closing() == going_away);
    CHECK(fsm.current() == state::closing);
    CHECK(fsm.why_ended() == ending::shutdown);
  }
  SECTION("the member leaves its room first: then the close") {
    auto fsm = in_state(state::open);
    CHECK(fsm.on_shutdown(/*in_room=*/true) == decision{});
    CHECK(fsm.on_left_room() == going_away);
    CHECK(fsm.current() == state::closing);
  }
  SECTION("the room's drain may come before the server's request") {
    auto fsm = in_state(state::open);
    CHECK(fsm.on_room_closing() == going_away);
    CHECK(fsm.on_shutdown(/*in_room=*/true) == decision{});
    CHECK(fsm.current() == state::closing);
  }
  SECTION("leaving a room without a shutdown changes nothing") {
    auto fsm = in_state(state::open);
    CHECK(fsm.on_left_room() == decision{});
    CHECK(fsm.current() == state::open);
  }
}

TEST_CASE("frames of an open connection decide what the socket side does") {
  auto fsm = in_state(state::open);
  CHECK(fsm.on_frame(frame_kind::text, t0) == decision{.what = action::handle_text});
  CHECK(fsm.on_frame(frame_kind::ping, t0) == decision{.what = action::send_pong});
  CHECK(fsm.on_frame(frame_kind::pong, t0) == decision{});
  CHECK(fsm.on_frame(frame_kind::fragment, t0) == decision{});
  CHECK(fsm.current() == state::open);

  SECTION("close from the client: answered with 1000") {
    CHECK(fsm.on_frame(frame_kind::close, t0) == close_with(ws::close_code::normal, ""));
    CHECK(fsm.why_ended() == ending::client_closed);
  }
  SECTION("binary: close 1003") {
    CHECK(fsm.on_frame(frame_kind::binary, t0)
          == close_with(ws::close_code::unsupported_data, "binary frames are not supported"));
    CHECK(fsm.why_ended() == ending::binary_frame);
  }
  SECTION("a protocol failure: the reader's close code") {
    CHECK(fsm.on_frame(frame_kind::fail, t0, ws::close_code::too_big)
          == close_with(ws::close_code::too_big, ""));
    CHECK(fsm.why_ended() == ending::protocol_error);
    CHECK(fsm.detail() == "close 1009");
  }
  CHECK(fsm.current() == state::closing);
  CHECK(fsm.reading());  // until the client closes its end
}

TEST_CASE("in closing, frames are discarded and the client's end of the stream closes") {
  auto fsm = in_state(state::closing);
  for (const auto kind : {frame_kind::text, frame_kind::ping, frame_kind::pong,
                          frame_kind::fragment, frame_kind::close, frame_kind::fail})
    CHECK(fsm.on_frame(kind, t0) == decision{});
  CHECK(fsm.on_evicted() == decision{});
  CHECK(fsm.on_shutdown() == decision{});
  CHECK(fsm.on_read_end("") == disconnect);
  CHECK(fsm.current() == state::closed);
  CHECK_FALSE(fsm.reading());
  CHECK(fsm.why_ended() == ending::client_closed);  // the cause, not the consequence
}

TEST_CASE("in closing, the timer is the close deadline") {
  auto fsm = in_state(state::closing);
  CHECK(fsm.on_timer() == disconnect);
  CHECK(fsm.current() == state::closed);
  CHECK(fsm.why_ended() == ending::client_closed);
}

TEST_CASE("the end of the stream or a socket error closes an open connection") {
  SECTION("eof") {
    auto fsm = in_state(state::open);
    CHECK(fsm.on_read_end("") == disconnect);
    CHECK(fsm.why_ended() == ending::client_gone);
    CHECK(fsm.current() == state::closed);
  }
  SECTION("read error") {
    auto fsm = in_state(state::open);
    CHECK(fsm.on_read_end("Connection reset by peer") == disconnect);
    CHECK(fsm.why_ended() == ending::read_failed);
    CHECK(fsm.detail() == "Connection reset by peer");
  }
  SECTION("write error, open or closing") {
    for (const auto from : {state::open, state::closing}) {
      auto fsm = in_state(from);
      CHECK(fsm.on_write_failed("Broken pipe") == disconnect);
      CHECK(fsm.current() == state::closed);
    }
  }
}

TEST_CASE("an evicted member gets close 1008 and its queued frames are dropped") {
  auto fsm = in_state(state::open);
  CHECK(fsm.on_evicted()
        == close_with(ws::close_code::policy_violation, "slow consumer", /*drop_queued=*/true));
  CHECK(fsm.current() == state::closing);
  CHECK(fsm.why_ended() == ending::slow_consumer);
  CHECK(describe(fsm.why_ended()) == "slow consumer (close 1008)");
}

TEST_CASE("a member whose node lost track of its room gets close 1012, once, while open") {
  auto fsm = in_state(state::open);
  CHECK(fsm.on_restart() == close_with(ws::close_code::service_restart, "service restart"));
  CHECK(fsm.current() == state::closing);
  CHECK(fsm.why_ended() == ending::restarted);
  CHECK(fsm.on_restart() == decision{});  // closing already
  auto upgrading = in_state(state::upgrading);
  CHECK(upgrading.on_restart() == decision{});
}

TEST_CASE("a connection whose seat was resumed elsewhere gets close 4100, once, while open") {
  auto fsm = in_state(state::open);
  CHECK(fsm.on_replaced() == close_with(ws::close_code::replaced, "resumed elsewhere"));
  CHECK(fsm.current() == state::closing);
  CHECK(fsm.why_ended() == ending::replaced);
  CHECK(fsm.on_replaced() == decision{});
  auto http = in_state(state::http);
  CHECK(http.on_replaced() == decision{});
}

TEST_CASE("the idle tick pings a silent client, then drops it") {
  auto fsm = in_state(state::open);
  SECTION("heard since the last tick: nothing") {
    CHECK(fsm.on_frame(frame_kind::pong, t0) == decision{});
    CHECK(fsm.on_timer() == decision{});
    CHECK(fsm.on_timer() == decision{.what = action::send_ping});
    CHECK(fsm.on_frame(frame_kind::text, t0).what == action::handle_text);  // alive again
    CHECK(fsm.on_timer() == decision{});
    CHECK(fsm.on_timer() == decision{.what = action::send_ping});
  }
  SECTION("silent through the ping") {
    CHECK(fsm.on_timer() == decision{.what = action::send_ping});
    CHECK(fsm.on_timer() == disconnect);
    CHECK(fsm.current() == state::closed);
    CHECK(fsm.why_ended() == ending::idle_timeout);
  }
}

TEST_CASE("text beyond the rate is refused with 4009, and a flood is closed with 1008") {
  auto fsm = in_state(state::open, {.rate_limit = 1, .rate_burst = 2, .flood_limit = 2});
  CHECK(fsm.on_frame(frame_kind::text, t0).what == action::handle_text);
  CHECK(fsm.on_frame(frame_kind::text, t0).what == action::handle_text);
  CHECK(fsm.on_frame(frame_kind::text, t0).what == action::refuse_rate_limited);
  CHECK(fsm.on_frame(frame_kind::text, t0).what == action::refuse_rate_limited);
  SECTION("a second later one more is allowed") {
    CHECK(fsm.on_frame(frame_kind::text, t0 + std::chrono::seconds(1)).what == action::handle_text);
  }
  SECTION("a third refusal in the same second closes") {
    CHECK(fsm.on_frame(frame_kind::text, t0)
          == close_with(ws::close_code::policy_violation, "rate limit exceeded"));
    CHECK(fsm.why_ended() == ending::rate_limited);
  }
}

// --- Every frame takes a token (issue 11): control frames and fragments are not free --------

namespace {
constexpr connection_fsm::limits tight{.rate_limit = 1, .rate_burst = 2, .flood_limit = 2};
const decision flood_close = close_with(ws::close_code::policy_violation, "rate limit exceeded");
}  // namespace

TEST_CASE("a ping flood: pongs within the budget, then no pong, then close 1008") {
  auto fsm = in_state(state::open, tight);
  CHECK(fsm.on_frame(frame_kind::ping, t0) == decision{.what = action::send_pong});
  CHECK(fsm.on_frame(frame_kind::ping, t0) == decision{.what = action::send_pong});
  // Over the budget: not answered, and each one is a refusal toward --flood-limit.
  CHECK(fsm.on_frame(frame_kind::ping, t0) == decision{});
  CHECK(fsm.on_frame(frame_kind::ping, t0) == decision{});
  CHECK(fsm.current() == state::open);
  SECTION("one more in the same second closes") {
    CHECK(fsm.on_frame(frame_kind::ping, t0) == flood_close);
    CHECK(fsm.current() == state::closing);
    CHECK(fsm.why_ended() == ending::rate_limited);
  }
  SECTION("a second later the next ping is answered again") {
    CHECK(fsm.on_frame(frame_kind::ping, t0 + std::chrono::seconds(1))
          == decision{.what = action::send_pong});
  }
}

TEST_CASE("a pong flood is closed with 1008") {
  auto fsm = in_state(state::open, tight);
  for (int i = 0; i < 4; ++i)  // two within the budget, two refused
    CHECK(fsm.on_frame(frame_kind::pong, t0) == decision{});
  CHECK(fsm.on_frame(frame_kind::pong, t0) == flood_close);
  CHECK(fsm.why_ended() == ending::rate_limited);
}

TEST_CASE("a flood of fragments is closed with 1008") {
  auto fsm = in_state(state::open, tight);
  for (int i = 0; i < 4; ++i)
    CHECK(fsm.on_frame(frame_kind::fragment, t0) == decision{});
  CHECK(fsm.on_frame(frame_kind::fragment, t0) == flood_close);
}

TEST_CASE("a close flood: the first close is answered and the rest discarded") {
  SECTION("within the budget: 1000") {
    auto fsm = in_state(state::open, tight);
    CHECK(fsm.on_frame(frame_kind::close, t0) == close_with(ws::close_code::normal, ""));
    for (int i = 0; i < 100; ++i)
      CHECK(fsm.on_frame(frame_kind::close, t0) == decision{});
    CHECK(fsm.why_ended() == ending::client_closed);
  }
  SECTION("over the budget with refusals left: still answered with 1000") {
    auto fsm = in_state(state::open, tight);
    fsm.on_frame(frame_kind::pong, t0);
    fsm.on_frame(frame_kind::pong, t0);
    CHECK(fsm.on_frame(frame_kind::close, t0) == close_with(ws::close_code::normal, ""));
  }
  SECTION("after the flood budget is spent: 1008") {
    auto fsm = in_state(state::open, tight);
    for (int i = 0; i < 4; ++i)
      fsm.on_frame(frame_kind::pong, t0);
    CHECK(fsm.on_frame(frame_kind::close, t0) == flood_close);
    CHECK(fsm.why_ended() == ending::rate_limited);
  }
}

TEST_CASE("frames of every kind share one budget, and refusals of every kind one flood limit") {
  auto fsm = in_state(state::open, tight);
  CHECK(fsm.on_frame(frame_kind::ping, t0).what == action::send_pong);
  CHECK(fsm.on_frame(frame_kind::fragment, t0) == decision{});
  // The pings and fragments took the budget: this text is refused.
  CHECK(fsm.on_frame(frame_kind::text, t0).what == action::refuse_rate_limited);
  CHECK(fsm.on_frame(frame_kind::ping, t0) == decision{});  // the second refusal
  CHECK(fsm.on_frame(frame_kind::text, t0) == flood_close);
}

TEST_CASE("a binary frame or a protocol failure closes with its own code, budget or not") {
  auto fsm = in_state(state::open, tight);
  for (int i = 0; i < 3; ++i)
    fsm.on_frame(frame_kind::pong, t0);  // budget spent, one refusal left
  SECTION("binary over the budget: 1003") {
    CHECK(fsm.on_frame(frame_kind::binary, t0)
          == close_with(ws::close_code::unsupported_data, "binary frames are not supported"));
  }
  SECTION("a failure takes no token: 1002 even once the flood budget is spent") {
    fsm.on_frame(frame_kind::pong, t0);
    CHECK(fsm.on_frame(frame_kind::fail, t0, ws::close_code::protocol_error)
          == close_with(ws::close_code::protocol_error, ""));
    CHECK(fsm.why_ended() == ending::protocol_error);
  }
}

TEST_CASE("a well-behaved client's pings all get pongs, beside its chat") {
  // The defaults: 10 frames/s, burst 20, flood limit 50.
  auto fsm = in_state(state::open, {.rate_limit = 10, .rate_burst = 20, .flood_limit = 50});
  auto now = t0;
  for (int second = 0; second < 120; ++second) {
    for (int i = 0; i < 4; ++i) {  // a chat message and a ping every 250 ms: 8 frames/s
      now += std::chrono::milliseconds(250);
      REQUIRE(fsm.on_frame(frame_kind::text, now).what == action::handle_text);
      REQUIRE(fsm.on_frame(frame_kind::ping, now) == decision{.what = action::send_pong});
    }
    if (second % 30 == 0) REQUIRE(fsm.on_frame(frame_kind::pong, now) == decision{});  // ours
  }
  // A burst of pings after a pause: the burst is answered.
  now += std::chrono::seconds(5);
  for (int i = 0; i < 20; ++i)
    REQUIRE(fsm.on_frame(frame_kind::ping, now) == decision{.what = action::send_pong});
  CHECK(fsm.current() == state::open);
}

TEST_CASE("a rate limit of 0: no frame of any kind is limited") {
  auto fsm = in_state(state::open);  // rate_limit 0, flood_limit 5
  for (int i = 0; i < 10'000; ++i) {
    REQUIRE(fsm.on_frame(frame_kind::ping, t0) == decision{.what = action::send_pong});
    REQUIRE(fsm.on_frame(frame_kind::pong, t0) == decision{});
    REQUIRE(fsm.on_frame(frame_kind::fragment, t0) == decision{});
    REQUIRE(fsm.on_frame(frame_kind::text, t0).what == action::handle_text);
  }
  CHECK(fsm.current() == state::open);
}

TEST_CASE("nothing happens to a closed connection") {
  auto fsm = in_state(state::closed);
  CHECK(fsm.on_frame(frame_kind::text, t0) == decision{});
  CHECK(fsm.on_timer() == decision{});
  CHECK(fsm.on_evicted() == decision{});
  CHECK(fsm.on_shutdown() == decision{});
  CHECK(fsm.on_read_end("") == decision{});
  CHECK(fsm.on_write_failed("x") == decision{});
  CHECK_FALSE(fsm.begin_upgrade());
  CHECK(fsm.current() == state::closed);
  CHECK(fsm.why_ended() == ending::client_gone);
}

TEST_CASE("before the upgrade, frame, timer and eviction events change nothing") {
  for (const auto from : {state::http, state::upgrading}) {
    auto fsm = in_state(from);
    CHECK(fsm.on_frame(frame_kind::text, t0) == decision{});
    CHECK(fsm.on_timer() == decision{});
    CHECK(fsm.on_evicted() == decision{});
    CHECK(fsm.on_read_end("") == decision{});
    CHECK(fsm.current() == from);
  }
}

TEST_CASE("every ending has its own log text") {
  std::vector<std::string_view> seen;
  for (int i = 0; i <= static_cast<int>(ending::restarted); ++i) {
    const auto text = describe(static_cast<ending>(i));
    CHECK_FALSE(text.empty());
    CHECK(std::find(seen.begin(), seen.end(), text) == seen.end());
    seen.push_back(text);
  }
}

TEST_CASE("with --proxy-protocol a connection starts in proxy_header, then goes on to http") {
  connection_fsm fsm(generous, /*proxy_header_first=*/true);
  CHECK(fsm.current() == state::proxy_header);
  CHECK_FALSE(fsm.reading());
  CHECK_FALSE(fsm.begin_upgrade());  // no HTTP before the header step
  REQUIRE(fsm.proxy_header_read());
  CHECK(fsm.current() == state::http);
  CHECK_FALSE(fsm.proxy_header_read());  // once
  CHECK(fsm.begin_upgrade());
}

TEST_CASE("a refused PROXY header closes the connection with its reason") {
  connection_fsm fsm(generous, /*proxy_header_first=*/true);
  fsm.http_ended(ending::proxy_refused, "a trusted proxy sent no PROXY header");
  CHECK(fsm.current() == state::closed);
  CHECK(fsm.why_ended() == ending::proxy_refused);
  CHECK(fsm.detail() == "a trusted proxy sent no PROXY header");
  CHECK_FALSE(fsm.proxy_header_read());
}

TEST_CASE("a shutdown during the PROXY header step closes the connection at once") {
  connection_fsm fsm(generous, /*proxy_header_first=*/true);
  CHECK(fsm.on_shutdown() == disconnect);
  CHECK(fsm.current() == state::closed);
  CHECK(fsm.why_ended() == ending::shutdown);
  CHECK_FALSE(fsm.proxy_header_read());  // the header that arrives afterwards changes nothing
  CHECK(fsm.current() == state::closed);
}

TEST_CASE("without --proxy-protocol there is no header step") {
  connection_fsm fsm(generous);
  CHECK(fsm.current() == state::http);
  CHECK_FALSE(fsm.proxy_header_read());
  CHECK(fsm.current() == state::http);
}
