#include "roomcast/server.hpp"

#include <cstdlib>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "roomcast/http.hpp"
#include "roomcast/hub.hpp"
#include "roomcast/log.hpp"
#include "roomcast/metrics.hpp"
#include "roomcast/net.hpp"
#include "roomcast/session.hpp"

namespace roomcast {

// The acceptor, the table of live connections and the shutdown sequence all live on `control`.
struct server::impl {
  explicit impl(const config& c)
      : settings(c),
        io(static_cast<int>(c.threads)),
        control(net::make_strand(io)),
        acceptor(control),
        rooms(io.get_executor(), hub_options{.room_inbox_capacity = c.room_inbox,
                                             .max_rooms = c.max_rooms,
                                             .max_members = c.max_members,
                                             .delivery_latency = &metrics.delivery_latency}),
        router(c.web_root),
        context{.rooms = rooms,
                .router = router,
                .options = {.max_text = c.max_text,
                            .max_frame = c.max_frame,
                            .outbox_frames = c.outbox_frames,
                            .send_buffer = c.send_buffer,
                            .handshake_timeout = c.handshake_timeout,
                            .idle_timeout = c.idle_timeout,
                            .close_timeout = c.close_timeout,
                            .rate_limit = c.rate_limit,
                            .rate_burst = c.rate_burst,
                            .flood_limit = c.flood_limit,
                            .allowed_origins = c.allowed_origins},
                .metrics = metrics},
        signals(control),
        drain_deadline(control) {
    const tcp::endpoint endpoint(net::ip::make_address(c.host), c.port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(net::socket_base::reuse_address(true));
    acceptor.bind(endpoint);
    acceptor.listen(net::socket_base::max_listen_connections);
  }

  net::awaitable<void> accept_loop() {
    while (!stopping) {
      // Each connection gets a strand of its own: its read and write loops never run at once.
      auto [ec, socket] = co_await acceptor.async_accept(net::make_strand(io), use_nothrow);
      if (stopping) co_return;
      if (ec) {
        // Typically EMFILE: back off briefly instead of spinning on the failing accept.
        log_warn("accept failed: ", ec.message());
        net::steady_timer pause(control, std::chrono::milliseconds(50));
        co_await pause.async_wait(use_nothrow);
        continue;
      }
      const auto executor = socket.get_executor();
      const auto id = next_connection_id++;
      error_code peer_error;
      auto peer = socket.remote_endpoint(peer_error).address().to_string();
      // Over a cap, the connection still gets an HTTP 503 (and counts until it is gone).
      const bool over_capacity = live.size() >= settings.max_connections
                                 || per_address[peer] >= settings.max_connections_per_ip;
      if (over_capacity) log_info("refusing a connection from ", peer, ": at capacity");
      ++per_address[peer];
      auto client = make_connection(tcp::socket(std::move(socket)), context, over_capacity);
      live.emplace(id, tracked{client, std::move(peer)});
      auto served = [this, id](std::exception_ptr error) {
        log_exception{"connection"}(error);
        net::dispatch(control, [this, id] { forget(id); });
      };
      net::co_spawn(executor, serve(std::move(client)), std::move(served));
    }
  }

  void forget(std::uint64_t id) {
    const auto found = live.find(id);
    if (found == live.end()) return;
    if (const auto count = per_address.find(found->second.peer); count != per_address.end()) {
      if (--count->second == 0) per_address.erase(count);
    }
    live.erase(found);
    if (stopping && live.empty()) finish_stop();
  }

  // Nothing is left to drain: release the last waits so that the io_context runs out of work.
  void finish_stop() {
    error_code ignored;
    drain_deadline.cancel();
    signals.cancel(ignored);
  }

  // Stop accepting, end every room, ask every connection to flush and close; the io_context then
  // runs out of work and its threads return. Only past --drain-timeout is it stopped by force.
  void begin_stop() {
    if (stopping) return;
    stopping = true;
    error_code ignored;
    acceptor.close(ignored);
    rooms.shutdown();
    log_info("stopping: closing ", live.size(), " connection(s)");
    for (auto& [id, entry] : live) {
      if (auto client = entry.client.lock()) shut_down(client);
    }
    if (live.empty()) {
      finish_stop();
      return;
    }
    drain_deadline.expires_after(settings.drain_timeout);
    drain_deadline.async_wait([this](error_code ec) {
      if (ec) return;
      log_warn("drain timeout: cutting off ", live.size(), " connection(s)");
      forced_stop = true;
      io.stop();
    });
  }

  config settings;
  server_metrics metrics;  // before `rooms` and `context`, which keep its address
  net::io_context io;
  net::strand<net::io_context::executor_type> control;
  tcp::acceptor acceptor;
  hub rooms;
  http_router router;
  session_context context;
  net::signal_set signals;
  net::steady_timer drain_deadline;
  std::vector<std::thread> threads;
  // Owned by `control`:
  struct tracked {
    std::weak_ptr<connection> client;
    std::string peer;  // remote address, for --max-connections-per-ip
  };
  std::unordered_map<std::uint64_t, tracked> live;
  std::unordered_map<std::string, std::size_t> per_address;
  std::uint64_t next_connection_id = 0;
  bool stopping = false;
  bool forced_stop = false;
};

server::server(const config& settings) : impl_(std::make_unique<impl>(settings)) {}

server::~server() {
  stop();
  wait();
  if (impl_->forced_stop) {
    // Coroutines abandoned in a channel wait own their channel; destroying the io_context now
    // would destroy such a channel from inside Asio 1.26's channel_service::shutdown, which holds
    // the service's lock. The process is about to exit, so the memory is left to it.
    (void)impl_.release();
  }
}

std::uint16_t server::port() const noexcept {
  return impl_->acceptor.local_endpoint().port();
}

const hub_counters& server::counters() const noexcept {
  return impl_->rooms.counters();
}

const server_metrics& server::metrics() const noexcept { return impl_->metrics; }

void server::start() {
  auto accepting = impl_->accept_loop();
  net::co_spawn(impl_->control, std::move(accepting), log_exception{"acceptor"});
  for (unsigned i = 0; i < impl_->settings.threads; ++i) {
    impl_->threads.emplace_back([this] { impl_->io.run(); });
  }
}

void server::stop_on_signals() {
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->signals.async_wait([this](error_code ec, int signal) {
    if (ec) return;
    log_info("signal ", signal, " received: draining (a second signal exits at once)");
    impl_->begin_stop();
    if (!impl_->stopping || impl_->live.empty()) return;
    impl_->signals.async_wait([](error_code again, int) {
      if (again) return;
      log_warn("second signal: exiting without draining");
      std::_Exit(1);
    });
  });
}

void server::wait() {
  for (auto& thread : impl_->threads) {
    if (thread.joinable() && thread.get_id() != std::this_thread::get_id()) thread.join();
  }
}

void server::stop() {
  net::dispatch(impl_->control, [this] { impl_->begin_stop(); });
}

}  // namespace roomcast
