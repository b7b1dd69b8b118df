#pragma once
/** @file
 * A room's recent events, kept as the frames that were sent, for a newcomer who asks for the
 * recent chat and for a member who resumes after a dropped connection (issue 13). Plain data:
 * no sockets, no locking; the room's strand owns it like the rest of the room.
 */
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "roomcast/member.hpp"

namespace roomcast {

struct history_limits {
  std::size_t events = 100;        ///< 0: no history (and no resume)
  std::size_t bytes = 256 * 1024;  ///< cap on the kept frames' payload bytes
};

class room_history {
 public:
  enum class kind : std::uint8_t {
    chat,        ///< a message: what a newcomer's history shows
    membership,  ///< create, join, leave: replayed on resume, never shown as history
  };

  explicit room_history(history_limits limits) : limits_(limits) {}

  /** Keeps the event numbered `seq`, which must follow the last one kept (events are numbered
   * without gaps; the first may be any number). The oldest events go while either limit is
   * exceeded, so one event larger than the byte cap is not kept at all. */
  void record(std::uint64_t seq, shared_frame event, kind what);

  /** Every event after `since`, oldest first: empty when `since` is the last one; nullopt
   * when some of them are no longer kept, or when `since` is ahead of the last event. */
  std::optional<std::vector<shared_frame>> after(std::uint64_t since) const;

  /** The kept chat messages, oldest first: all of them precede `last_seq()`, so a newcomer
   * admitted now sees them, then live events, with nothing missed or twice. */
  std::vector<shared_frame> chat() const;

  /** Number of the last event recorded (kept or not), if any. */
  std::optional<std::uint64_t> last_seq() const noexcept { return last_; }
  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  struct entry {
    std::uint64_t seq;
    shared_frame event;
    kind what;
  };
  void trim();

  history_limits limits_;
  std::deque<entry> entries_;
  std::size_t bytes_ = 0;
  std::optional<std::uint64_t> last_;
};

}  // namespace roomcast
