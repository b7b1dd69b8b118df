#pragma once
/** @file
 * The socket half of the Redis client: a pipelined command connection and a pub/sub subscriber,
 * each owning one socket (TCP or unix) on a strand of its own, speaking RESP2 through
 * roomcast/resp.hpp. Cluster mode uses one of each per node (docs/architecture.md, "The Redis
 * client").
 *
 * Error codes. Every operation returns a boost::system::error_code and never throws for an
 * expected failure:
 * - `boost::asio::error::timed_out`: `connect_timeout` or `command_timeout` passed;
 * - `boost::asio::error::operation_aborted`: close() was called (or the object was destroyed);
 * - what the socket said: `boost::asio::error::eof` (the server closed the connection),
 *   `connection_reset`, `broken_pipe`, `connection_refused`, `host_not_found`, ...;
 * - roomcast::redis::errc (category "roomcast.redis") for the rest: see below.
 * An error reply from Redis (`-ERR ...`) to execute() is not an error code: it is the reply, with
 * `reply::is_error()`.
 */
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>

#include "roomcast/resp.hpp"

namespace roomcast::redis {

/** The client's own error codes (category "roomcast.redis"). */
enum class errc {
  /** The server sent bytes that are not RESP2 (reply_parser failed): the connection is closed. */
  protocol_error = 1,
  /** A reply nobody waits for, or a subscriber reply of the wrong kind: the connection is closed,
   * since later replies could no longer be matched. */
  unexpected_reply,
  /** execute(), subscribe(), ... on a connection that is not open (never connected, or closed). */
  not_connected,
  /** A command this connection refuses: empty, or one that would break FIFO matching of replies
   * (SUBSCRIBE and friends, MONITOR, QUIT, RESET: use a subscriber). Nothing was sent. */
  bad_command,
  /** Redis answered a command made by the client itself (SELECT on connect, SUBSCRIBE,
   * UNSUBSCRIBE, PING on a subscriber) with an error reply. */
  server_error,
};

const boost::system::error_category& category() noexcept;
boost::system::error_code make_error_code(errc code) noexcept;

/** Bounds of a connection or subscriber. */
struct client_options {
  /** For resolve + connect (+ SELECT) together. */
  std::chrono::milliseconds connect_timeout{2000};
  /** For each command, from the moment it is queued for the socket to its reply, and for each
   * wait for a free slot (max_in_flight). */
  std::chrono::milliseconds command_timeout{2000};
  /** Commands sent (or queued to be sent) whose replies have not arrived; more callers wait. */
  std::size_t max_in_flight = 1024;
};

namespace detail {
class link;
class command_link;
class subscriber_link;
}  // namespace detail

/**
 * A pipelined command connection. All its state lives on a strand of its own, made from the
 * executor given to the constructor (give it an io_context's executor: a strand made from a strand
 * would also wait for everything else on that one); its methods may be called from any thread, and
 * many coroutines may execute() at once. Replies are matched to commands first in, first out, so
 * commands go to the socket in the order their execute() calls reached the strand.
 *
 * Writes: what callers queue while a write is in progress goes in the next one, all of it in one
 * gather write. Reads: one read loop feeds a reply_parser and completes the oldest command.
 * The object may be destroyed at any time: that is close().
 */
class connection {
 public:
  connection(const boost::asio::any_io_executor& executor, endpoint where,
             client_options options = {});
  /** close(). */
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /** Resolves and connects (TCP, with TCP_NODELAY, or the unix socket), then SELECTs `db` when it
   * is not 0, all within `connect_timeout`. Also reconnects a connection that was closed or lost;
   * `already_connected` when it is open, `already_started` while another connect() runs. */
  boost::asio::awaitable<boost::system::error_code> connect();

  /**
   * Sends one command (`args`: the command name, then its arguments; see redis::command) and
   * returns its reply. While `max_in_flight` commands are outstanding it first waits for one of
   * them to be answered (at most `command_timeout`: then `timed_out`, nothing sent, the connection
   * stays open).
   *
   * A command that gets no reply within `command_timeout`, a broken socket, or bytes that are not
   * RESP fail this command and EVERY other outstanding one with the same error code, and close
   * the connection: replies could no longer be matched to their commands. Reconnect with
   * connect(). `not_connected` when the connection is not open, `bad_command` for an empty
   * command or one that breaks reply matching (errc).
   */
  boost::asio::awaitable<std::pair<boost::system::error_code, reply>> execute(
      std::vector<std::string> args);

  /** Closes the socket; every outstanding and waiting command fails with operation_aborted.
   * Thread-safe; takes effect on the strand (at once when called on it). */
  void close();
  /** Connected, and not closed or lost since. Thread-safe. */
  bool is_open() const noexcept;
  /** Commands sent or queued and not yet answered, for metrics. Thread-safe. */
  std::size_t in_flight() const noexcept;
  /** Callers waiting for a slot because max_in_flight commands are outstanding. Thread-safe. */
  std::size_t waiting() const noexcept;
  /** The connection's strand, where its work runs (and a subscriber's callbacks). */
  boost::asio::any_io_executor executor() const noexcept;

 private:
  std::shared_ptr<detail::command_link> link_;
};

/**
 * The pub/sub connection: SUBSCRIBE and UNSUBSCRIBE, and the messages of the channels it is
 * subscribed to. Like `connection`, all its work runs on a strand of its own.
 *
 * The callbacks are taken when connect() is called (set them before; a change takes effect at the
 * next connect()). They run on the subscriber's strand, and must not throw.
 * The subscriptions do not survive a lost connection: after on_lost, connect() again (or make a
 * new subscriber) and subscribe again.
 */
class subscriber {
 public:
  subscriber(const boost::asio::any_io_executor& executor, endpoint where,
             client_options options = {});
  /** close(). */
  ~subscriber();
  subscriber(const subscriber&) = delete;
  subscriber& operator=(const subscriber&) = delete;

  /** As connection::connect, without the SELECT (pub/sub channels do not belong to a db). */
  boost::asio::awaitable<boost::system::error_code> connect();

  /** SUBSCRIBE: completes when Redis confirms it (messages published from then on arrive), or
   * fails like connection::execute (`server_error` for an error reply). */
  boost::asio::awaitable<boost::system::error_code> subscribe(std::string channel);
  /** UNSUBSCRIBE: completes on Redis's confirmation; no message of `channel` comes after it. */
  boost::asio::awaitable<boost::system::error_code> unsubscribe(std::string channel);
  /** PING: completes when the pong arrives, behind every message sent before it (a probe of the
   * connection). */
  boost::asio::awaitable<boost::system::error_code> ping();

  /** Called for every message of a subscribed channel, in the order Redis sent them. The views
   * are valid during the call only. */
  std::function<void(std::string_view channel, std::string_view payload)> on_message;
  /** Called once when the connection is lost (a socket error, a timeout, bytes that are not
   * RESP), after every waiting subscribe/unsubscribe/ping has failed with the same code. Not
   * called for close(). The owner then reconnects. */
  std::function<void(boost::system::error_code)> on_lost;

  /** Closes the socket; waiting calls fail with operation_aborted; no callback is called once the
   * strand has run the close. Thread-safe. */
  void close();
  bool is_open() const noexcept;
  boost::asio::any_io_executor executor() const noexcept;

 private:
  std::shared_ptr<detail::subscriber_link> link_;
};

}  // namespace roomcast::redis

template <>
struct boost::system::is_error_code_enum<roomcast::redis::errc> : std::true_type {};
