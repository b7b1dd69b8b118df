// roomcast: the command line. The only file that reads argv and the environment.
#include <cstdlib>
#include <exception>
#include <iostream>

#include "roomcast/config.hpp"
#include "roomcast/log.hpp"
#include "roomcast/server.hpp"

namespace {

int run(int argc, char** argv) {
  using namespace roomcast;
  const auto parsed = parse_config({argv + 1, static_cast<std::size_t>(argc - 1)},
                                   [](const char* name) { return std::getenv(name); });
  if (!parsed.settings) {
    (parsed.exit_code == 0 ? std::cout : std::cerr)
        << parsed.message << (parsed.message.ends_with('\n') ? "" : "\n");
    return parsed.exit_code;
  }
  const config& settings = *parsed.settings;
  set_log_level(settings.level);
  set_log_format(settings.format);
  set_log_queue_capacity(settings.log_queue_lines);
  try {
    server chat(settings);
    log_info("roomcast ", ROOMCAST_VERSION, " starting: ", settings.summary());
    chat.stop_on_signals();
    chat.start();
    log_info("listening on http://", settings.host, ":", chat.port(), "/ (WebSocket on / and /ws)");
    if (const auto admin = chat.admin_port()) {
      log_info("admin endpoints on http://", settings.host, ":", *admin, "/ (/readyz, /metrics)");
    }
    chat.wait();
    log_info("stopped");
  } catch (const std::exception& e) {
    log_error("cannot start: ", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const int code = run(argc, argv);
  // Lines are written by the log thread: wait for it, but not for a stderr that takes nothing.
  roomcast::flush_logs(roomcast::log_flush_bound);
  return code;
}
