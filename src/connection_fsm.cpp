#include "roomcast/connection_fsm.hpp"

#include <cassert>
#include <string>
#include <utility>

namespace roomcast {

std::string_view describe(ending why) noexcept {
  switch (why) {
    case ending::none:
      return "open";
    case ending::proxy_refused:
      return "PROXY protocol header refused";
    case ending::http_done:
      return "done";
    case ending::handshake_failed:
      return "websocket handshake failed";
    case ending::client_closed:
      return "closed by the client";
    case ending::client_gone:
      return "the client closed the connection";
    case ending::read_failed:
      return "read failed";
    case ending::write_failed:
      return "write failed";
    case ending::protocol_error:
      return "protocol error";
    case ending::binary_frame:
      return "binary frame (close 1003)";
    case ending::rate_limited:
      return "rate limit exceeded (close 1008)";
    case ending::slow_consumer:
      return "slow consumer (close 1008)";
    case ending::idle_timeout:
      return "idle timeout";
    case ending::shutdown:
      return "server shutting down";
    case ending::restarted:
      return "the room must be joined again (close 1012)";
    case ending::replaced:
      return "its seat was resumed on another connection (close 4100)";
  }
  return "unknown";
}

bool connection_fsm::proxy_header_read() noexcept {
  if (state_ != state::proxy_header) return false;
  enter(state::http);
  return true;
}

bool connection_fsm::begin_upgrade() noexcept {
  if (state_ != state::http) return false;
  enter(state::upgrading);
  return true;
}

decision connection_fsm::upgraded() {
  if (state_ != state::upgrading) return {.what = decision::action::disconnect};
  enter(state::open);
  return {};
}

void connection_fsm::http_ended(ending why, std::string_view detail) {
  record(why, detail);
  if (state_ == state::proxy_header || state_ == state::http || state_ == state::upgrading) {
    enter(state::closed);
  }
}

decision connection_fsm::on_frame(frame_kind kind, std::chrono::steady_clock::time_point now,
                                  std::uint16_t fail_code) {
  using enum decision::action;
  if (state_ != state::open) return {};  // closing: our close is out, the rest is discarded
  heard_ = true;
  if (kind == frame_kind::fail) {  // not a frame: the reader refused the bytes
    record(ending::protocol_error, "close " + std::to_string(fail_code));
    return start_closing(ending::protocol_error, fail_code, "");
  }
  // Every frame costs a token, whatever its kind: a ping is work (a pong to send) like a chat
  // message. A frame over budget is refused (text: 4009; a ping: no pong, which RFC 6455 allows
  // when pings come faster than they are answered), and a client that goes on after
  // --flood-limit refusals is closed with 1008.
  const bool within_budget = frames_allowed_.try_take(now);
  if (!within_budget && !refusals_allowed_.try_take(now)) {
    return start_closing(ending::rate_limited, ws::close_code::policy_violation,
                         "rate limit exceeded");
  }
  switch (kind) {
    case frame_kind::text:
      return {.what = within_budget ? handle_text : refuse_rate_limited};
    case frame_kind::binary:
      return start_closing(ending::binary_frame, ws::close_code::unsupported_data,
                           "binary frames are not supported");
    case frame_kind::ping:
      return {.what = within_budget ? send_pong : none};
    case frame_kind::pong:      // being heard is all it means
    case frame_kind::fragment:  // the message is decided by its last frame
      return {};
    case frame_kind::close:
      return start_closing(ending::client_closed, ws::close_code::normal, "");
    case frame_kind::fail:
    case frame_kind::need_more:
      break;
  }
  return {};
}

decision connection_fsm::on_read_end(std::string_view error) {
  if (!reading()) return {};
  // In closing this is the normal end: the client read our close frame and closed its side.
  return close_now(error.empty() ? ending::client_gone : ending::read_failed, error);
}

decision connection_fsm::on_write_failed(std::string_view error) {
  if (!reading()) return {};
  return close_now(ending::write_failed, error);
}

decision connection_fsm::on_timer() {
  if (state_ == state::closing) return close_now(ending::none);  // --close-timeout is up
  if (state_ != state::open) return {};
  // Twice per --idle-timeout: a client heard from since the last tick is fine; one silent for a
  // whole tick gets a ping; one still silent at the next tick is gone.
  if (std::exchange(heard_, false)) {
    pinged_ = false;
    return {};
  }
  if (!pinged_) {
    pinged_ = true;
    return {.what = decision::action::send_ping};
  }
  return close_now(ending::idle_timeout);
}

decision connection_fsm::on_evicted() {
  if (state_ != state::open) return {};
  // Frames the slow client has not started to receive would only delay its close.
  return start_closing(ending::slow_consumer, ws::close_code::policy_violation, "slow consumer",
                       /*drop_queued=*/true);
}

decision connection_fsm::on_shutdown(bool in_room) {
  switch (state_) {
    case state::proxy_header:
    case state::http:
    case state::upgrading:  // nothing is queued yet: just end it
      return close_now(ending::shutdown);
    case state::open:
      if (in_room) {
        shutdown_pending_ = true;
        return {};
      }
      return start_closing(ending::shutdown, ws::close_code::going_away, "server shutting down");
    default:
      return {};
  }
}

decision connection_fsm::on_room_closing() {
  if (state_ != state::open) return {};
  return start_closing(ending::shutdown, ws::close_code::going_away, "server shutting down");
}

decision connection_fsm::on_left_room() {
  if (state_ != state::open || !shutdown_pending_) return {};
  return on_room_closing();
}

decision connection_fsm::on_restart() {
  if (state_ != state::open) return {};
  return start_closing(ending::restarted, ws::close_code::service_restart, "service restart");
}

decision connection_fsm::on_replaced() {
  if (state_ != state::open) return {};
  return start_closing(ending::replaced, ws::close_code::replaced, "resumed elsewhere");
}

decision connection_fsm::start_closing(ending why, std::uint16_t code, std::string_view reason,
                                       bool drop_queued) {
  record(why);
  enter(state::closing);
  return {.what = decision::action::send_close,
          .close_code = code,
          .close_reason = reason,
          .drop_queued = drop_queued};
}

decision connection_fsm::close_now(ending why, std::string_view detail) {
  record(why, detail);
  enter(state::closed);
  return {.what = decision::action::disconnect};
}

void connection_fsm::record(ending why, std::string_view detail) {
  if (ending_ != ending::none || why == ending::none) return;
  ending_ = why;
  detail_ = detail;
}

void connection_fsm::enter(state next) noexcept {
  // The transitions of the diagram in the header, and no others.
  [[maybe_unused]] const bool allowed = next == state::closed
                                        || (state_ == state::proxy_header && next == state::http)
                                        || (state_ == state::http && next == state::upgrading)
                                        || (state_ == state::upgrading && next == state::open)
                                        || (state_ == state::open && next == state::closing);
  assert(allowed);
  state_ = next;
}

}  // namespace roomcast
