#pragma once
/** @file
 * One `io_context` per thread.
 *
 * With a single io_context shared by every thread, each handoff between strands (a sender's
 * connection, a room's inbox, the shard that owns the room) goes through one scheduler queue and
 * one lock, and may wake the other thread: on two cores that cost as much as the second core
 * gave (docs/benchmarks.md, "The hub alone"). Here each thread runs a context of its own; a
 * connection and a room shard are each bound to one, so work crosses threads only when a
 * message's sender and its room live on different ones, and the rooms of one thread share
 * nothing with those of another.
 */
#include <cstddef>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

namespace roomcast {

class io_pool {
 public:
  /** `threads` contexts (at least one), none running yet. */
  explicit io_pool(std::size_t threads);
  ~io_pool();
  io_pool(const io_pool&) = delete;
  io_pool& operator=(const io_pool&) = delete;

  std::size_t size() const noexcept { return contexts_.size(); }
  boost::asio::io_context& context(std::size_t index) noexcept { return *contexts_[index]; }
  /** The contexts' executors, in index order (what the hub spreads its shards over). */
  std::vector<boost::asio::any_io_executor> executors() const;
  /** The next context in turn: new connections are spread round-robin. Not thread-safe (the
   * acceptor calls it from one strand). */
  boost::asio::io_context& next() noexcept;

  /** Starts one thread per context. Each runs until its context is stopped, or until release()
   * has been called and its work has run out. */
  void start();
  /** Lets the contexts return once they run out of work (the server's drain is over). */
  void release();
  /** Stops every context at once (abandoning what is queued). Thread-safe. */
  void stop();
  /** Joins the threads (not the calling one, if it is one of them). */
  void join();

 private:
  using guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  std::vector<std::unique_ptr<boost::asio::io_context>> contexts_;
  std::vector<std::optional<guard>> guards_;  // keep idle contexts running until release()
  std::vector<std::thread> threads_;
  std::size_t next_ = 0;
};

}  // namespace roomcast
