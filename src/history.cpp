#include "roomcast/history.hpp"

#include <cassert>

namespace roomcast {

void room_history::record(std::uint64_t seq, shared_frame event, kind what) {
  assert(!last_ || seq == *last_ + 1);
  last_ = seq;
  if (limits_.events == 0) return;
  bytes_ += event->payload().size();
  entries_.push_back({seq, std::move(event), what});
  trim();
}

void room_history::trim() {
  while (!entries_.empty() && (entries_.size() > limits_.events || bytes_ > limits_.bytes)) {
    bytes_ -= entries_.front().event->payload().size();
    entries_.pop_front();
  }
}

std::optional<std::vector<shared_frame>> room_history::after(std::uint64_t since) const {
  if (!last_ || since > *last_) return std::nullopt;
  std::vector<shared_frame> missed;
  if (since == *last_) return missed;
  // Kept events are numbered without gaps up to last_: the ones after `since` are all here when
  // the oldest kept one is at most since + 1.
  if (entries_.empty() || entries_.front().seq > since + 1) return std::nullopt;
  missed.reserve(static_cast<std::size_t>(*last_ - since));
  for (const auto& e : entries_)
    if (e.seq > since) missed.push_back(e.event);
  return missed;
}

std::vector<shared_frame> room_history::chat() const {
  std::vector<shared_frame> messages;
  for (const auto& e : entries_)
    if (e.what == kind::chat) messages.push_back(e.event);
  return messages;
}

}  // namespace roomcast
