#include "fanout_lane.hpp"

#include <algorithm>
#include <utility>

#include <boost/asio/post.hpp>

#include "roomcast/metrics.hpp"

namespace roomcast {
namespace {

void remove_ids(std::vector<fanout_lane::seat>& seats, const std::vector<std::uint64_t>& ids) {
  std::erase_if(seats, [&ids](const fanout_lane::seat& seat) {
    return std::binary_search(ids.begin(), ids.end(), seat.member_id);
  });
}

}  // namespace

void release_writes(const frame& sent, std::uint32_t count, latency_histogram* latency) {
  if (sent.arrived == frame::clock::time_point{}) return;  // not a chat message: not counted
  if (sent.writes_left.fetch_sub(count) == count && latency != nullptr)
    latency->observe(frame::clock::now() - sent.arrived);
}

fanout_lane::fanout_lane(const boost::asio::any_io_executor& executor, std::size_t chunk,
                         std::size_t max_backlog, latency_histogram* latency, slow_report report,
                         std::function<void()> caught_up)
    : strand_(boost::asio::make_strand(executor)),
      chunk_(std::max<std::size_t>(1, chunk)),
      max_backlog_(max_backlog),
      latency_(latency),
      report_(std::move(report)),
      caught_up_(std::move(caught_up)) {}

void fanout_lane::fill(std::vector<seat> members) {
  members_ = std::move(members);
}

void fanout_lane::add(seat joined) {
  give(std::move(joined));
}

void fanout_lane::remove(std::vector<std::uint64_t> member_ids) {
  give(departure{std::move(member_ids)});
}

void fanout_lane::hand_out(shared_frame frame, std::uint64_t personal_id, shared_frame personal,
                           std::shared_ptr<member> also) {
  backlog_.fetch_add(1, std::memory_order_relaxed);
  give(event{std::move(frame), personal_id, std::move(personal), std::move(also)});
}

void fanout_lane::close_all() {
  give(closing{});
}

void fanout_lane::give(item next) {
  boost::asio::post(strand_, [self = shared_from_this(), next = std::move(next)]() mutable {
    self->queue_.push_back(std::move(next));
    if (self->pumping_) return;  // a turn is already posted; it will get here
    self->pumping_ = true;
    self->pump();
  });
}

// Not recursion: the next turn is posted, and runs after this one has returned.
// NOLINTNEXTLINE(misc-no-recursion)
void fanout_lane::pump() {
  std::size_t budget = chunk_;
  while (!queue_.empty()) {
    auto& front = queue_.front();
    if (auto* current = std::get_if<event>(&front)) {
      if (!work_on(*current, budget)) break;  // the turn's budget is spent
    } else if (auto* joined = std::get_if<seat>(&front)) {
      members_.push_back(std::move(*joined));  // ids ascend: appending keeps the order
    } else if (auto* gone = std::get_if<departure>(&front)) {
      remove_ids(members_, gone->member_ids);
    } else {
      for (const auto& s : members_)
        s.who->room_closing();
      members_.clear();
    }
    queue_.pop_front();
  }
  if (queue_.empty()) {
    pumping_ = false;
    return;
  }
  // Yield: what the thread queued meanwhile runs before this lane's next turn.
  // NOLINTNEXTLINE(misc-no-recursion)
  boost::asio::post(strand_, [self = shared_from_this()] { self->pump(); });
}

bool fanout_lane::work_on(event& current, std::size_t& budget) {
  for (; next_ < members_.size(); ++next_) {
    if (budget == 0) return false;
    --budget;
    const auto& s = members_[next_];
    const bool personal = s.member_id == current.personal_id && current.personal;
    const auto outcome = s.who->deliver(personal ? current.personal : current.frame);
    if (outcome != delivery::queued) ++undelivered_;
    if (outcome == delivery::full) slow_.push_back(s.member_id);
  }
  if (current.also && current.also->deliver(current.frame) != delivery::queued) ++undelivered_;
  release_writes(*current.frame, undelivered_, latency_);
  if (backlog_.fetch_sub(1, std::memory_order_acq_rel) == max_backlog_ + 1 && caught_up_)
    caught_up_();
  next_ = 0;
  undelivered_ = 0;
  if (!slow_.empty()) {
    // Nothing more for them: the room evicts them, and the leave notices of many slow members
    // would otherwise each find the others full again.
    remove_ids(members_, slow_);
    report_(std::exchange(slow_, {}));
  }
  return true;
}

}  // namespace roomcast
