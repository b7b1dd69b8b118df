#include "roomcast/server.hpp"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "roomcast/cluster.hpp"
#include "roomcast/http.hpp"
#include "roomcast/hub.hpp"
#include "roomcast/io_pool.hpp"
#include "roomcast/log.hpp"
#include "roomcast/metrics.hpp"
#include "roomcast/net.hpp"
#include "roomcast/proxy.hpp"
#include "roomcast/session.hpp"

namespace roomcast {
namespace {

void listen_on(tcp::acceptor& acceptor, const std::string& host, std::uint16_t port) {
  const tcp::endpoint endpoint(net::ip::make_address(host), port);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(net::socket_base::reuse_address(true));
  acceptor.bind(endpoint);
  acceptor.listen(net::socket_base::max_listen_connections);
}

}  // namespace

// The acceptors, the table of live connections and the shutdown sequence live on `control`.
struct server::impl {
  explicit impl(const config& c)
      : settings(c),
        io(c.threads),
        control(net::make_strand(io.context(0))),
        acceptor(control),
        admin_acceptor(control),
        hub(io.executors(), settings.hub, &metrics.delivery_latency),
        cluster(make_cluster(settings, io, cluster_stats)),
        // /readyz and /metrics are on the main port unless an admin port takes them.
        router({.web_root = c.web_root,
                .endpoints = c.admin_port < 0 ? operational_endpoints() : dynamic_endpoints{}}),
        admin_router({.serve_files = false, .endpoints = operational_endpoints()}),
        context{.hub = hub,
                .router = router,
                .options = settings.session,
                .metrics = metrics,
                .cluster = cluster.get()},
        admin_context{.hub = hub,
                      .router = admin_router,
                      .options = settings.session,
                      .metrics = metrics,
                      .websocket = false},
        signals(control),
        drain_deadline(control) {
    listen_on(acceptor, c.host, c.port);
    if (c.admin_port >= 0)
      listen_on(admin_acceptor, c.host, static_cast<std::uint16_t>(c.admin_port));
  }

  // Cluster mode's node, on the first two threads: its rooms and subscription on one, its
  // command connection on the other.
  static std::unique_ptr<cluster_node> make_cluster(const config& c, io_pool& threads,
                                                    cluster_metrics& stats) {
    if (c.cluster.redis_url.empty()) return nullptr;
    return std::make_unique<cluster_node>(threads.context(0).get_executor(),
                                          threads.context(1 % threads.size()).get_executor(),
                                          c.cluster, c.hub, stats);
  }

  dynamic_endpoints operational_endpoints() {
    return [this](std::string_view path) -> std::optional<http_reply> {
      http_reply reply;
      if (path == "/readyz") {
        const bool accepting = ready.load(std::memory_order_relaxed);
        const bool redis = !cluster || cluster->ready();
        reply.status = accepting && redis ? 200 : 503;
        reply.body = !accepting ? "draining\n" : redis ? "ready\n" : "redis unavailable\n";
        return reply;
      }
      if (path == "/metrics" && settings.metrics) {
        reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
        reply.body = render_prometheus(metrics, hub.counters());
        if (cluster) render_cluster_prometheus(reply.body, cluster_stats, cluster->in_flight());
        return reply;
      }
      return std::nullopt;
    };
  }

  // Accepts on `from` until it is closed. Each connection gets a strand of its own, so its read
  // and write loops never run at once, on the threads' contexts in turn.
  net::awaitable<void> accept_loop(tcp::acceptor& from, const session_context& with, bool admin) {
    while (from.is_open()) {
      auto [ec, socket] = co_await from.async_accept(net::make_strand(io.next()), use_nothrow);
      if (!from.is_open()) co_return;
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
      const auto peer_address = proxy::canonical(socket.remote_endpoint(peer_error).address());
      connection_origin origin;
      origin.peer = peer_address.to_string();
      origin.trusted_proxy = !admin && settings.session.proxy.trusted.trusts(peer_address);
      // A trusted proxy is not capped per address itself: each connection it forwards is charged
      // to the client it names (recharge), once it names one.
      const auto charged = (admin || origin.trusted_proxy) ? std::string() : origin.peer;
      const bool over_total = !admin && chat_connections >= settings.max_connections;
      origin.over_capacity = over_total || over_address_cap(charged);
      // Over a cap, the connection still gets an HTTP 503 (and counts until it is gone).
      if (origin.over_capacity)
        log_info("refusing a connection from ", origin.peer, ": at capacity");
      if (!admin) ++chat_connections;
      charge(charged);
      origin.charge_to = [this, id](std::string client) {
        return net::co_spawn(control, recharge(id, std::move(client)), net::use_awaitable);
      };
      // Posted, not dispatched: the last reference may be dropped on the control strand itself,
      // in the middle of a walk over `live`.
      auto gone = [this, id] { net::post(control, [this, id] { forget(id); }); };
      auto label = "#" + std::to_string(id) + " " + origin.peer + (admin ? " (admin)" : "");
      auto client = make_connection(std::move(socket), with, std::move(origin), std::move(label),
                                    std::move(gone));
      live.emplace(id, tracked{client, charged, admin, over_total});
      net::co_spawn(executor, serve(std::move(client)), log_exception{"connection"});
    }
  }

  void start_accepting() {
    if (cluster) {
      log_info("cluster mode: node ", cluster->node_id(), ", Redis at ",
               settings.cluster.redis_url);
      cluster->start();
    }
    net::co_spawn(control, accept_loop(acceptor, context, false), log_exception{"acceptor"});
    if (admin_acceptor.is_open())
      net::co_spawn(control, accept_loop(admin_acceptor, admin_context, true),
                    log_exception{"admin acceptor"});
  }

  // --max-connections-per-ip, on `control`. An empty address is charged nothing: an admin
  // connection, or one from a trusted proxy that has not named its client.
  bool over_address_cap(const std::string& address) const {
    if (address.empty()) return false;
    const auto count = per_address.find(address);
    return count != per_address.end() && count->second >= settings.max_connections_per_ip;
  }

  void charge(const std::string& address) {
    if (!address.empty()) ++per_address[address];
  }

  void release(const std::string& address) {
    const auto count = per_address.find(address);
    if (count != per_address.end() && --count->second == 0) per_address.erase(count);
  }

  // A trusted proxy named the client of connection `id`: its per-address charge moves to the
  // client. Completes with whether the connection is over a cap now. The connection waits for
  // this, so it is still in `live`.
  net::awaitable<bool> recharge(std::uint64_t id, std::string client) {
    const auto found = live.find(id);
    if (found == live.end()) co_return true;
    auto& entry = found->second;
    release(entry.charged);
    const bool over = entry.over_total || over_address_cap(client);
    if (over) log_info("refusing connection #", id, " for ", client, ": at capacity");
    charge(client);
    entry.charged = std::move(client);
    co_return over;
  }

  void forget(std::uint64_t id) {
    const auto found = live.find(id);
    if (found == live.end()) return;
    if (!found->second.admin) --chat_connections;
    release(found->second.charged);
    live.erase(found);
    if (stopping && chat_connections == 0) finish_stop();
  }

  // Stop accepting chat, end every room, ask every chat connection to flush and close. /readyz
  // answers 503 from the start; the admin port keeps answering until the chat side is drained.
  void begin_stop() {
    if (stopping) return;
    stopping = true;
    ready.store(false, std::memory_order_relaxed);
    error_code ignored;
    acceptor.close(ignored);
    hub.shutdown();
    if (cluster) cluster->shutdown();
    log_info("draining: closing ", chat_connections, " connection(s)");
    for (auto& [id, entry] : live) {
      if (auto client = entry.client.lock(); client && !entry.admin) shut_down(client);
    }
    if (chat_connections == 0) {
      finish_stop();
      return;
    }
    drain_deadline.expires_after(settings.drain_timeout);
    drain_deadline.async_wait([this](error_code ec) {
      if (ec) return;
      log_warn("drain timeout: cutting off ", chat_connections, " connection(s)");
      forced_stop = true;
      io.stop();
    });
  }

  // Nothing is left to drain: close the admin side and release the last waits, so that the
  // contexts run out of work and their threads return.
  void finish_stop() {
    if (finished) return;
    finished = true;
    error_code ignored;
    admin_acceptor.close(ignored);
    for (auto& [id, entry] : live) {
      if (auto client = entry.client.lock()) shut_down(client);
    }
    drain_deadline.cancel();
    signals.cancel(ignored);
    // The node's loops (heartbeat, reconnects, both Redis connections) would keep the contexts
    // running for ever: every member has left by now, so they can end.
    if (cluster) cluster->stop();
    io.release();
  }

  config settings;
  server_metrics metrics;  // before `hub` and the contexts, which keep its address
  cluster_metrics cluster_stats;
  std::atomic<bool> ready{true};
  io_pool io;  // before everything that holds its executors
  net::strand<net::io_context::executor_type> control;
  tcp::acceptor acceptor;
  tcp::acceptor admin_acceptor;
  roomcast::hub hub;
  std::unique_ptr<cluster_node> cluster;  // cluster mode only
  http_router router;
  http_router admin_router;
  session_context context;
  session_context admin_context;
  net::signal_set signals;
  net::steady_timer drain_deadline;
  // Owned by `control`:
  struct tracked {
    std::weak_ptr<connection> client;
    std::string charged;  // the address charged for --max-connections-per-ip ("" for none)
    bool admin;           // on the admin port: not counted, closed last
    bool over_total;      // over --max-connections when accepted
  };
  std::unordered_map<std::uint64_t, tracked> live;
  std::unordered_map<std::string, std::size_t> per_address;
  std::size_t chat_connections = 0;
  std::uint64_t next_connection_id = 0;
  bool stopping = false;
  bool finished = false;
  bool forced_stop = false;
};

server::server(const config& settings) : impl_(std::make_unique<impl>(settings)) {}

server::~server() {
  try {
    stop();
    wait();
  } catch (...) {
    // A destructor must not throw; what could (an allocation in dispatch, a failed join) leaves
    // the threads to the process's exit.
    std::fputs("roomcast: error while stopping the server\n", stderr);
    (void)impl_.release();
    return;
  }
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

std::optional<std::uint16_t> server::admin_port() const noexcept {
  if (!impl_->admin_acceptor.is_open()) return std::nullopt;
  return impl_->admin_acceptor.local_endpoint().port();
}

const hub_counters& server::counters() const noexcept {
  return impl_->hub.counters();
}

const server_metrics& server::metrics() const noexcept {
  return impl_->metrics;
}

void server::start() {
  net::dispatch(impl_->control, [this] { impl_->start_accepting(); });
  impl_->io.start();
}

void server::stop_on_signals() {
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->signals.async_wait([this](error_code ec, int signal) {
    if (ec) return;
    log_info("signal ", signal, " received: draining (a second signal exits at once)");
    impl_->begin_stop();
    if (impl_->finished) return;
    impl_->signals.async_wait([](error_code again, int) {
      if (again) return;
      log_warn("second signal: exiting without draining");
      flush_logs(log_flush_bound);
      std::_Exit(1);
    });
  });
}

void server::wait() {
  impl_->io.join();
}

void server::stop() {
  impl_->ready.store(false, std::memory_order_relaxed);  // at once, for /readyz
  net::dispatch(impl_->control, [this] { impl_->begin_stop(); });
}

}  // namespace roomcast
