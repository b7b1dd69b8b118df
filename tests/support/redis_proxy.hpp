#pragma once
// A TCP proxy in front of a test's redis-server (its unix socket), on 127.0.0.1 and an ephemeral
// port, run by a thread of its own. It can make a node's subscription go silent the way a broken
// middlebox or a failover elsewhere can: the connections on which the client has sent SUBSCRIBE
// stop passing what Redis sends (those bytes are held, the connection stays open both ways), while
// every other connection (the node's commands) keeps working. It can also make a subscriber fall
// behind the way a slow node does: it stops reading what Redis sends on those connections, so
// that the socket's buffer fills and Redis's own output buffer for that client grows (until
// client-output-buffer-limit makes Redis close it). It tells subscriber connections from the
// others by what the client sends, not by their order.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>

namespace roomcast::testing {

class redis_proxy {
 public:
  /** Listens on 127.0.0.1, port 0, and forwards each connection to the unix socket `upstream`. */
  explicit redis_proxy(std::string upstream);
  /** Stops the thread; every connection through the proxy is closed. */
  ~redis_proxy();
  redis_proxy(const redis_proxy&) = delete;
  redis_proxy& operator=(const redis_proxy&) = delete;

  std::uint16_t port() const noexcept { return port_; }
  /** redis://127.0.0.1:PORT, for --redis. */
  std::string url() const;

  /** From now on, holds what Redis sends on every open connection that has carried a SUBSCRIBE
   * (a connection opened later passes everything). Returns how many connections it froze. */
  std::size_t freeze_subscribers();

  /** From now on, stops reading what Redis sends on every open connection that has carried a
   * SUBSCRIBE (a connection opened later passes everything): the socket from Redis fills, then
   * Redis's output buffer for that client. When Redis closes such a connection, the proxy reads
   * and passes on what was left in the socket, then closes the client's side, as a slow client
   * would find it. Returns how many connections it stalled. */
  std::size_t stall_subscribers();

  /** Connections accepted so far, and how many of them have carried a SUBSCRIBE. Thread-safe. */
  std::size_t connections() const noexcept;
  std::size_t subscriber_connections() const noexcept;

 private:
  struct state;
  boost::asio::io_context io_;  // destroyed last: the state's sockets belong to it
  std::shared_ptr<state> state_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace roomcast::testing
