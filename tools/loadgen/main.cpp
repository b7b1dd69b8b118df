// roomcast-loadgen: the command line. Parses flags, prepares the process (descriptor limit, CPU
// pinning), runs one scenario on this thread and prints its report as one JSON line.
#include <iostream>

#include "options.hpp"
#include "scenarios.hpp"
#include "system.hpp"

int main(int argc, char** argv) {
  using namespace roomcast::loadgen;
  const auto parsed = parse_options(argc, argv);
  if (!parsed.value) {
    (parsed.exit_code == 0 ? std::cout : std::cerr) << parsed.message << '\n';
    return parsed.exit_code;
  }
  const options& opts = *parsed.value;
  const auto descriptors = raise_descriptor_limit();
  const auto needed = static_cast<std::uint64_t>(
      opts.kind == scenario::fanout  ? opts.rooms * opts.members
      : opts.kind == scenario::idle  ? opts.connections
      : opts.kind == scenario::flood ? opts.flooders + 1
      : opts.kind == scenario::mixed ? opts.rooms * opts.members + opts.big_members
                                     : opts.concurrency + 1);
  if (descriptors < needed + 16) {
    std::cerr << "roomcast-loadgen: " << needed << " connections need more descriptors than the "
              << "limit of " << descriptors << " (ulimit -Hn)\n";
    return 1;
  }
  if (opts.cpu) {
    if (const auto error = pin_to_cpu(*opts.cpu)) {
      std::cerr << "roomcast-loadgen: " << *error << '\n';
      return 1;
    }
  }
  json_line report;
  int status = 1;
  try {
    switch (opts.kind) {
      case scenario::fanout:
        status = run_fanout(opts, report);
        break;
      case scenario::idle:
        status = run_idle(opts, report);
        break;
      case scenario::churn:
        status = run_churn(opts, report);
        break;
      case scenario::flood:
        status = run_flood(opts, report);
        break;
      case scenario::mixed:
        status = run_mixed(opts, report);
        break;
    }
  } catch (const std::exception& e) {
    std::cerr << "roomcast-loadgen: " << e.what() << '\n';
    return 1;
  }
  report.add("exit_code", status);
  std::cout << report.str() << std::endl;
  if (status != 0) {
    std::cerr << "roomcast-loadgen: "
              << (status == 3 ? "the run completed but a check failed" : "the run failed")
              << " (see \"error\" in the report)\n";
  }
  return status;
}
