#include "roomcast/redis.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cstdint>
#include <deque>
#include <exception>
#include <span>
#include <sys/un.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "roomcast/log.hpp"
#include "roomcast/net.hpp"

namespace roomcast::redis {
namespace {

class error_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "roomcast.redis"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::protocol_error:
        return "the Redis server sent bytes that are not RESP2";
      case errc::unexpected_reply:
        return "a Redis reply that matches no command";
      case errc::not_connected:
        return "not connected to Redis";
      case errc::bad_command:
        return "a command this Redis connection does not send";
      case errc::server_error:
        return "Redis answered with an error";
    }
    return "unknown roomcast.redis error";
  }
};

// Case-insensitive equality with a lower-case ASCII word.
bool is_word(std::string_view text, std::string_view lower) {
  return text.size() == lower.size()
         && std::equal(text.begin(), text.end(), lower.begin(), [](char a, char b) {
              return std::tolower(static_cast<unsigned char>(a)) == b;
            });
}

// Commands after which replies no longer come one per command (or no longer in RESP2).
bool breaks_matching(const std::vector<std::string>& args) {
  constexpr std::array<std::string_view, 10> refused = {
      "subscribe",    "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
      "sunsubscribe", "monitor",    "quit",       "reset",       "hello"};
  const std::string_view name = args.front();
  if (std::any_of(refused.begin(), refused.end(),
                  [name](std::string_view word) { return is_word(name, word); })) {
    return true;
  }
  return is_word(name, "client") && args.size() > 1 && is_word(args[1], "reply");
}

std::pair<error_code, reply> failure(error_code ec) {
  return {ec, reply{}};
}

// SUBSCRIBE or UNSUBSCRIBE of one channel.
std::vector<std::string> channel_command(const char* name, std::string channel) {
  std::vector<std::string> args;
  args.reserve(2);
  args.emplace_back(name);
  args.push_back(std::move(channel));
  return args;
}

}  // namespace

const boost::system::error_category& category() noexcept {
  static const error_category_impl instance;
  return instance;
}

error_code make_error_code(errc code) noexcept {
  return {static_cast<int>(code), category()};
}

namespace detail {

using strand_type = net::strand<net::any_io_executor>;
using stream = net::generic::stream_protocol;

// A caller waiting on the link's strand, for a free slot or for its reply. It lives in the
// waiting coroutine's frame, and the link points at it only while it waits. Its timer is the
// wait: the link sets `done` and cancels the timer to wake it; if the timer expires instead, the
// deadline passed.
struct waiter {
  explicit waiter(const strand_type& strand) : timer(strand) {}
  net::steady_timer timer;
  std::string bytes;                       // the command, while it waits for a slot
  bool sent = false;                       // queued for the socket, in pending_
  net::steady_timer::time_point deadline;  // for its reply, once sent
  bool done = false;                       // answered, or failed: `ec`
  error_code ec;
  reply result;
  // For a subscriber: the kind of confirmation this request expects ("subscribe", "pong", ...).
  std::string_view expect;
};

enum class link_state { closed, connecting, open };

/**
 * One socket to Redis and the RESP traffic on it: connect with a deadline, a FIFO of requests
 * waiting for replies, a bounded number of them in flight, one writer that sends everything
 * queued in one gather write, and one reader that feeds a reply_parser. What a reply means is
 * the subclass's: on_reply. Every member is used on the strand only, except the atomics (read
 * anywhere, for is_open() and the metrics).
 *
 * `generation_` counts connects and failures: a reader, writer or timer started for one socket
 * finds it changed once that socket is gone, and then touches nothing.
 */
class link : public std::enable_shared_from_this<link> {
 public:
  link(const net::any_io_executor& executor, endpoint where, client_options options)
      : strand_(net::make_strand(executor)),
        where_(std::move(where)),
        options_(options),
        socket_(strand_),
        resolver_(strand_),
        connect_timer_(strand_) {
    options_.max_in_flight = std::max<std::size_t>(options_.max_in_flight, 1);
  }
  link(const link&) = delete;
  link& operator=(const link&) = delete;
  link(link&&) = delete;
  link& operator=(link&&) = delete;
  virtual ~link() = default;

  const strand_type& strand() const noexcept { return strand_; }
  bool is_open() const noexcept { return open_.load(std::memory_order_acquire); }
  std::size_t in_flight() const noexcept { return in_flight_.load(std::memory_order_relaxed); }
  std::size_t waiting() const noexcept { return waiting_count_.load(std::memory_order_relaxed); }

  // On the strand: fails everything waiting with operation_aborted; no on_lost.
  void close() { fail(net::error::operation_aborted, /*lost=*/false); }

 protected:
  // Resolves and connects within connect_timeout, SELECTing the db when `select_db`.
  net::awaitable<error_code> open_link(bool select_db) {
    if (state_ == link_state::open) co_return net::error::already_connected;
    if (state_ == link_state::connecting) co_return net::error::already_started;
    state_ = link_state::connecting;
    const auto generation = ++generation_;
    parser_ = reply_parser();
    arm_connect_deadline(generation);

    error_code ec = co_await connect_socket(generation);
    if (generation_ != generation) co_return last_error_;  // timed out or closed meanwhile
    if (ec) {
      fail(ec, /*lost=*/false);
      co_return ec;
    }
    start_reader(generation);
    if (select_db && where_.db != 0) {
      const auto select = command("SELECT", std::to_string(where_.db));
      auto selected = co_await round_trip(format_command(std::span<const std::string>(select)), {});
      if (generation_ != generation) co_return last_error_;
      if (selected.first || selected.second.is_error()) {
        ec = selected.first ? selected.first : make_error_code(errc::server_error);
        fail(ec, /*lost=*/false);
        co_return ec;
      }
    }
    connect_timer_.cancel();
    state_ = link_state::open;
    open_.store(true, std::memory_order_release);
    co_return error_code{};
  }

  // Queues `bytes` (one formatted command) and waits for its reply, first for a free slot when
  // max_in_flight requests are outstanding. See connection::execute for the failures.
  //
  // A request that waits for a slot is sent by grant_slots(), in the order the requests came,
  // before it resumes: with several threads, the resumptions of two woken coroutines may reach the
  // strand in either order, so they must not decide the order of the commands on the wire.
  net::awaitable<std::pair<error_code, reply>> round_trip(std::string bytes,
                                                          std::string_view expect) {
    if (state_ == link_state::closed) co_return failure(errc::not_connected);
    waiter request(strand_);
    request.expect = expect;
    if (pending_.size() >= options_.max_in_flight || !waiting_.empty()) {
      request.bytes = std::move(bytes);
      request.timer.expires_after(options_.command_timeout);
      waiting_.push_back(&request);
      waiting_count_.store(waiting_.size(), std::memory_order_relaxed);
      co_await request.timer.async_wait(use_nothrow);
      if (!request.sent) {
        if (request.done) co_return failure(request.ec);  // the connection failed meanwhile
        // No slot within command_timeout. Nothing was sent: the connection stays as it is.
        std::erase(waiting_, &request);
        waiting_count_.store(waiting_.size(), std::memory_order_relaxed);
        co_return failure(net::error::timed_out);
      }
    } else {
      send(request, std::move(bytes));
    }
    if (!request.done) {
      request.timer.expires_at(request.deadline);
      co_await request.timer.async_wait(use_nothrow);
      if (!request.done) {
        // No reply in time: later replies could belong to anyone, so everything fails.
        fail(net::error::timed_out, /*lost=*/true);
      }
    }
    co_return std::pair<error_code, reply>(request.ec, std::move(request.result));
  }

  // Hands `r` to the oldest outstanding request; false when nothing is outstanding.
  bool complete_oldest(reply&& r) {
    if (pending_.empty()) return false;
    waiter* first = pending_.front();
    pending_.pop_front();
    in_flight_.store(pending_.size(), std::memory_order_relaxed);
    first->result = std::move(r);
    wake(*first, {});
    grant_slots();
    return true;
  }

  const waiter* oldest() const { return pending_.empty() ? nullptr : pending_.front(); }

  // Closes the socket and fails every outstanding and waiting request with `ec`; `lost` (not a
  // close() or a failed connect) tells the subclass too, when the link was open.
  void fail(error_code ec, bool lost) {
    if (state_ == link_state::closed) return;
    const bool was_open = state_ == link_state::open;
    state_ = link_state::closed;
    open_.store(false, std::memory_order_release);
    ++generation_;
    last_error_ = ec;
    error_code ignored;
    resolver_.cancel();
    connect_timer_.cancel();
    socket_.close(ignored);
    outgoing_.clear();
    writing_ = false;  // a writer still suspended belongs to the old generation
    auto pending = std::exchange(pending_, {});
    auto waiting = std::exchange(waiting_, {});
    in_flight_.store(0, std::memory_order_relaxed);
    waiting_count_.store(0, std::memory_order_relaxed);
    for (waiter* request : pending)
      wake(*request, ec);
    for (waiter* request : waiting)
      wake(*request, ec);
    if (lost && was_open) on_lost(ec);
  }

  link_state state() const noexcept { return state_; }

 private:
  // What a complete reply means, on the strand.
  virtual void on_reply(reply&& r) = 0;
  // The open link was lost (not closed by its owner).
  virtual void on_lost(error_code ec) = 0;

  static void wake(waiter& request, error_code ec) {
    request.done = true;
    request.ec = ec;
    request.timer.cancel();
  }

  // Makes `request` outstanding: its reply is the one after those of the requests before it.
  void send(waiter& request, std::string bytes) {
    request.sent = true;
    request.deadline = net::steady_timer::clock_type::now() + options_.command_timeout;
    pending_.push_back(&request);
    in_flight_.store(pending_.size(), std::memory_order_relaxed);
    queue_write(std::move(bytes));
  }

  // Sends the requests waiting for a slot, oldest first, while slots are free, and wakes them
  // (to wait for their replies).
  void grant_slots() {
    while (!waiting_.empty() && pending_.size() < options_.max_in_flight) {
      waiter* next = waiting_.front();
      waiting_.pop_front();
      waiting_count_.store(waiting_.size(), std::memory_order_relaxed);
      send(*next, std::move(next->bytes));
      next->timer.cancel();
    }
  }

  // The connect deadline: a failure with timed_out ends whatever step connect is in (the
  // resolver is cancelled, the socket closed, a SELECT fails).
  void arm_connect_deadline(std::uint64_t generation) {
    connect_timer_.expires_after(options_.connect_timeout);
    auto expired = [self = shared_from_this(), generation](error_code ec) {
      if (ec || self->generation_ != generation || self->state_ != link_state::connecting) return;
      self->fail(net::error::timed_out, /*lost=*/false);
    };
    connect_timer_.async_wait(std::move(expired));
  }

  // Connects socket_ to the unix socket or to the first resolved address that answers.
  net::awaitable<error_code> connect_socket(std::uint64_t generation) {
    error_code ignored;
    socket_.close(ignored);
    if (!where_.unix_path.empty()) {
      if (where_.unix_path.size() >= sizeof(sockaddr_un::sun_path)) {
        co_return net::error::name_too_long;
      }
      const stream::endpoint peer{net::local::stream_protocol::endpoint(where_.unix_path)};
      auto [ec] = co_await socket_.async_connect(peer, use_nothrow);
      co_return ec;
    }
    auto [resolve_ec, addresses] =
        co_await resolver_.async_resolve(where_.host, std::to_string(where_.port), use_nothrow);
    if (generation_ != generation || resolve_ec) co_return resolve_ec;
    error_code ec = net::error::host_not_found;
    for (const auto& address : addresses) {
      socket_.close(ignored);
      const stream::endpoint peer{address.endpoint()};
      auto [connect_ec] = co_await socket_.async_connect(peer, use_nothrow);
      if (generation_ != generation) co_return connect_ec;
      if (!connect_ec) {
        socket_.set_option(tcp::no_delay(true), ignored);  // commands are small and awaited
        co_return error_code{};
      }
      ec = connect_ec;
    }
    co_return ec;
  }

  void start_reader(std::uint64_t generation) {
    net::co_spawn(strand_, read_loop(shared_from_this(), generation),
                  log_exception{"redis reader"});
  }

  // Reads what the server sends, and hands each complete reply to on_reply, in order.
  net::awaitable<void> read_loop([[maybe_unused]] std::shared_ptr<link> self,
                                 std::uint64_t generation) {
    std::array<char, 16 * 1024> buffer;
    for (;;) {
      auto [ec, size] = co_await socket_.async_read_some(net::buffer(buffer), use_nothrow);
      if (generation_ != generation) co_return;
      if (ec) {
        fail(ec, /*lost=*/true);
        co_return;
      }
      parser_.feed(std::string_view(buffer.data(), size));
      while (auto r = parser_.next()) {
        on_reply(std::move(*r));
        if (generation_ != generation) co_return;
      }
      if (parser_.failed()) {
        log_warn("redis: ", parser_.error());
        fail(errc::protocol_error, /*lost=*/true);
        co_return;
      }
    }
  }

  // Writes go through one writer at a time, which takes everything queued at once.
  void queue_write(std::string bytes) {
    outgoing_.push_back(std::move(bytes));
    if (writing_) return;
    writing_ = true;
    net::co_spawn(strand_, write_loop(shared_from_this(), generation_),
                  log_exception{"redis writer"});
  }

  // write_some in a loop rather than async_write: a composed write whose step completed before
  // a failure would go on writing its old bytes into the next connection's socket (the same
  // object, reopened by connect()); here every step checks the generation first.
  net::awaitable<void> write_loop([[maybe_unused]] std::shared_ptr<link> self,
                                  std::uint64_t generation) {
    std::vector<std::string> batch;
    std::vector<net::const_buffer> buffers;
    while (generation_ == generation && !outgoing_.empty()) {
      batch.swap(outgoing_);
      buffers.clear();
      for (const auto& bytes : batch)
        buffers.push_back(net::buffer(bytes));
      std::size_t first = 0;  // buffers before it are written
      while (first < buffers.size()) {
        const std::span<const net::const_buffer> rest(buffers.data() + first,
                                                      buffers.size() - first);
        auto [ec, written] = co_await socket_.async_write_some(rest, use_nothrow);
        if (generation_ != generation) co_return;  // failed or closed meanwhile
        if (ec) {
          fail(ec, /*lost=*/true);
          co_return;
        }
        for (; first < buffers.size() && written >= buffers[first].size(); ++first)
          written -= buffers[first].size();
        if (first < buffers.size()) buffers[first] += written;
      }
      batch.clear();
    }
    if (generation_ == generation) writing_ = false;
  }

  strand_type strand_;
  endpoint where_;
  client_options options_;
  stream::socket socket_;
  tcp::resolver resolver_;
  net::steady_timer connect_timer_;
  reply_parser parser_;
  std::deque<waiter*> pending_;  // sent or queued, oldest first: the next reply is the front's
  std::deque<waiter*> waiting_;  // for a slot, oldest first
  std::vector<std::string> outgoing_;  // formatted commands for the next write
  bool writing_ = false;
  link_state state_ = link_state::closed;
  std::uint64_t generation_ = 0;
  error_code last_error_;
  std::atomic<bool> open_{false};
  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> waiting_count_{0};
};

// The command connection: every reply belongs to the oldest command.
class command_link final : public link {
 public:
  using link::link;

  net::awaitable<error_code> connect([[maybe_unused]] std::shared_ptr<command_link> self) {
    const error_code ec = co_await open_link(/*select_db=*/true);
    co_return ec;
  }

  net::awaitable<std::pair<error_code, reply>> execute(
      [[maybe_unused]] std::shared_ptr<command_link> self, std::vector<std::string> args) {
    if (state() != link_state::open) co_return failure(errc::not_connected);
    if (args.empty() || breaks_matching(args)) co_return failure(errc::bad_command);
    std::string bytes = format_command(std::span<const std::string>(args));
    auto result = co_await round_trip(std::move(bytes), {});
    co_return result;
  }

 private:
  void on_reply(reply&& r) override {
    if (!complete_oldest(std::move(r))) fail(errc::unexpected_reply, /*lost=*/true);
  }
  void on_lost(error_code) override {}
};

// The subscriber: messages go to on_message; every other reply confirms the oldest request.
class subscriber_link final : public link {
 public:
  using link::link;
  using message_handler = std::function<void(std::string_view, std::string_view)>;
  using lost_handler = std::function<void(error_code)>;

  net::awaitable<error_code> connect([[maybe_unused]] std::shared_ptr<subscriber_link> self,
                                     message_handler message_callback, lost_handler lost_callback) {
    if (state() == link_state::closed) {
      on_message_ = std::move(message_callback);
      on_lost_ = std::move(lost_callback);
    }
    const error_code ec = co_await open_link(/*select_db=*/false);
    co_return ec;
  }

  // SUBSCRIBE, UNSUBSCRIBE or PING, confirmed by a reply of kind `expect`.
  net::awaitable<error_code> request([[maybe_unused]] std::shared_ptr<subscriber_link> self,
                                     std::vector<std::string> args, std::string_view expect) {
    if (state() != link_state::open) co_return make_error_code(errc::not_connected);
    std::string bytes = format_command(std::span<const std::string>(args));
    auto [ec, confirmation] = co_await round_trip(std::move(bytes), expect);
    if (ec) co_return ec;
    if (confirmation.is_error()) co_return make_error_code(errc::server_error);
    co_return error_code{};
  }

 private:
  static bool is_message(const reply& r) {
    if (r.type != reply::kind::array || r.elements.empty()) return false;
    const reply& kind = r.elements.front();
    if (kind.type != reply::kind::string) return false;
    return (kind.str == "message" && r.elements.size() == 3)
           || (kind.str == "pmessage" && r.elements.size() == 4);
  }

  static bool confirms(const reply& r, std::string_view expect) {
    if (r.is_error()) return true;  // the request's answer, a refusal
    if (expect == "pong" && r.type == reply::kind::status) return r.str == "PONG";  // unsubscribed
    return r.type == reply::kind::array && !r.elements.empty()
           && r.elements.front().type == reply::kind::string && r.elements.front().str == expect;
  }

  void on_reply(reply&& r) override {
    if (is_message(r)) {
      // The last two elements: channel and payload (a pmessage has its pattern first).
      const auto& channel = r.elements[r.elements.size() - 2].str;
      const auto& payload = r.elements.back().str;
      if (on_message_) {
        try {
          on_message_(channel, payload);
        } catch (...) {
          log_exception{"redis subscriber on_message"}(std::current_exception());
        }
      }
      return;
    }
    const waiter* first = oldest();
    if (first == nullptr || !confirms(r, first->expect)) {
      fail(errc::unexpected_reply, /*lost=*/true);
      return;
    }
    complete_oldest(std::move(r));
  }

  void on_lost(error_code ec) override {
    if (!on_lost_) return;
    try {
      on_lost_(ec);
    } catch (...) {
      log_exception{"redis subscriber on_lost"}(std::current_exception());
    }
  }

  message_handler on_message_;
  lost_handler on_lost_;
};

}  // namespace detail

// --- connection -------------------------------------------------------------------------------

connection::connection(const net::any_io_executor& executor, endpoint where, client_options options)
    : link_(std::make_shared<detail::command_link>(executor, std::move(where), options)) {}

connection::~connection() {
  try {
    close();
  } catch (...) {
    // Only std::bad_alloc (posting the close): the socket then stays open until it fails.
  }
}

net::awaitable<error_code> connection::connect() {
  return net::co_spawn(link_->strand(), link_->connect(link_), net::use_awaitable);
}

net::awaitable<std::pair<error_code, reply>> connection::execute(std::vector<std::string> args) {
  return net::co_spawn(link_->strand(), link_->execute(link_, std::move(args)), net::use_awaitable);
}

void connection::close() {
  net::dispatch(link_->strand(), [link = link_] { link->close(); });
}

bool connection::is_open() const noexcept {
  return link_->is_open();
}

std::size_t connection::in_flight() const noexcept {
  return link_->in_flight();
}

std::size_t connection::waiting() const noexcept {
  return link_->waiting();
}

net::any_io_executor connection::executor() const noexcept {
  return link_->strand();
}

// --- subscriber -------------------------------------------------------------------------------

subscriber::subscriber(const net::any_io_executor& executor, endpoint where, client_options options)
    : link_(std::make_shared<detail::subscriber_link>(executor, std::move(where), options)) {}

subscriber::~subscriber() {
  try {
    close();
  } catch (...) {
    // Only std::bad_alloc (posting the close): the socket then stays open until it fails.
  }
}

net::awaitable<error_code> subscriber::connect() {
  return net::co_spawn(link_->strand(), link_->connect(link_, on_message, on_lost),
                       net::use_awaitable);
}

net::awaitable<error_code> subscriber::subscribe(std::string channel) {
  return net::co_spawn(
      link_->strand(),
      link_->request(link_, channel_command("SUBSCRIBE", std::move(channel)), "subscribe"),
      net::use_awaitable);
}

net::awaitable<error_code> subscriber::unsubscribe(std::string channel) {
  return net::co_spawn(
      link_->strand(),
      link_->request(link_, channel_command("UNSUBSCRIBE", std::move(channel)), "unsubscribe"),
      net::use_awaitable);
}

net::awaitable<error_code> subscriber::ping() {
  return net::co_spawn(link_->strand(), link_->request(link_, command("PING"), "pong"),
                       net::use_awaitable);
}

void subscriber::close() {
  net::dispatch(link_->strand(), [link = link_] { link->close(); });
}

bool subscriber::is_open() const noexcept {
  return link_->is_open();
}

net::any_io_executor subscriber::executor() const noexcept {
  return link_->strand();
}

}  // namespace roomcast::redis
