#include "roomcast/outbox.hpp"

#include <cerrno>
#include <sys/socket.h>
#include <sys/types.h>

namespace roomcast {
namespace {

// One non-blocking send. Returns the bytes taken (0 when the socket buffer is full), or -1 when
// the connection is broken (the reader finds out why and ends it).
long send_now(int fd, const char* data, std::size_t size) noexcept {
  for (;;) {
    const ssize_t sent = ::send(fd, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (sent >= 0) return sent;
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return -1;
  }
}

}  // namespace

outbox::outbox(int fd, std::size_t limit, std::atomic<std::size_t>* high_water) noexcept
    : fd_(fd), limit_(limit), high_water_(high_water) {}

outbox::outcome outbox::offer(const shared_frame& frame, bool beyond_limit) {
  const std::lock_guard lock(mutex_);
  if (sealed_ || fd_ < 0) return outcome::closed;
  if (!writer_running_) {
    // Nothing is waiting (the writer runs whenever something is), so order allows sending now.
    const auto& bytes = frame->bytes;
    const long sent = send_now(fd_, bytes.data(), bytes.size());
    if (sent < 0) {
      sealed_ = true;
      return outcome::closed;
    }
    if (static_cast<std::size_t>(sent) == bytes.size()) return outcome::sent;
    return queue_locked(frame, static_cast<std::size_t>(sent));
  }
  if (!beyond_limit && waiting_.size() >= limit_) return outcome::full;
  return queue_locked(frame, 0);
}

outbox::outcome outbox::offer_last(const shared_frame& frame) {
  const std::lock_guard lock(mutex_);
  if (sealed_ || fd_ < 0) return outcome::closed;
  sealed_ = true;
  // Always through the writer, so that the caller can tell when the close frame is out.
  return queue_locked(frame, 0);
}

outbox::outcome outbox::queue_locked(const shared_frame& frame, std::size_t offset) {
  waiting_.push_back({frame, offset});
  waiting_bytes_ += frame->bytes.size() - offset;
  if (high_water_ != nullptr) {
    std::size_t seen = high_water_->load(std::memory_order_relaxed);
    while (
        waiting_bytes_ > seen
        && !high_water_->compare_exchange_weak(seen, waiting_bytes_, std::memory_order_relaxed)) {
    }
  }
  if (writer_running_) return outcome::queued;
  writer_running_ = true;
  return outcome::start_writer;
}

std::size_t outbox::drop_waiting() {
  const std::lock_guard lock(mutex_);
  // A frame already partly on the wire must be finished, or the stream would be corrupt.
  const auto keep = !waiting_.empty() && waiting_.front().offset > 0 ? 1U : 0U;
  const std::size_t dropped = waiting_.size() - keep;
  waiting_.resize(keep);
  waiting_bytes_ = keep ? waiting_.front().remaining() : 0;
  return dropped;
}

bool outbox::take(std::vector<pending_frame>& batch) {
  batch.clear();
  const std::lock_guard lock(mutex_);
  if (waiting_.empty() || fd_ < 0) {
    writer_running_ = false;
    waiting_ = {};  // give the memory back: most connections are idle most of the time
    waiting_bytes_ = 0;
    return false;
  }
  batch.swap(waiting_);
  waiting_bytes_ = 0;
  return true;
}

void outbox::shut() {
  const std::lock_guard lock(mutex_);
  fd_ = -1;
  sealed_ = true;
}

bool outbox::idle() const {
  const std::lock_guard lock(mutex_);
  return !writer_running_;
}

bool outbox::has_room() const {
  const std::lock_guard lock(mutex_);
  return !writer_running_ || waiting_.size() < limit_;
}

}  // namespace roomcast
