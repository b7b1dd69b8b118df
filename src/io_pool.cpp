#include "roomcast/io_pool.hpp"

#include <algorithm>

namespace roomcast {

io_pool::io_pool(std::size_t threads) {
  const std::size_t count = std::max<std::size_t>(1, threads);
  contexts_.reserve(count);
  guards_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    // Concurrency hint 1: one thread runs it, so what that thread posts to its own context goes
    // to a thread-private queue, without the scheduler's lock. Other threads may still post.
    contexts_.push_back(std::make_unique<boost::asio::io_context>(1));
    guards_.emplace_back(contexts_.back()->get_executor());
  }
}

io_pool::~io_pool() {
  stop();
  join();
}

std::vector<boost::asio::any_io_executor> io_pool::executors() const {
  std::vector<boost::asio::any_io_executor> all;
  all.reserve(contexts_.size());
  for (const auto& context : contexts_)
    all.emplace_back(context->get_executor());
  return all;
}

boost::asio::io_context& io_pool::next() noexcept {
  auto& chosen = *contexts_[next_];
  next_ = (next_ + 1) % contexts_.size();
  return chosen;
}

void io_pool::start() {
  threads_.reserve(contexts_.size());
  for (auto& context : contexts_)
    threads_.emplace_back([&io = *context] { io.run(); });
}

void io_pool::release() {
  for (auto& held : guards_)
    held.reset();
}

void io_pool::stop() {
  for (auto& context : contexts_)
    context->stop();
}

void io_pool::join() {
  for (auto& thread : threads_) {
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }
}

}  // namespace roomcast
