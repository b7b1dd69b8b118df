#pragma once
// The scenarios. Each runs on the calling thread (one io_context), fills `report` with its
// parameters and figures (and "error" when it failed) and returns the exit status: 0 all checks
// passed, 1 the run failed, 3 the run completed but a check failed.
#include <atomic>
#include <cstdint>
#include <functional>

#include "json_line.hpp"
#include "options.hpp"

namespace roomcast::loadgen {

/// The figures of a fanout run that a composite scenario (mixed) puts side by side.
struct fanout_figures {
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
  std::uint64_t gaps = 0;
  std::uint64_t missing_deliveries = 0;
  std::uint64_t connections_lost = 0;
};

/// What a composite scenario hooks into a fanout run.
struct fanout_hooks {
  std::function<void()> on_sending;   // once, on the run's thread, when sending starts
  fanout_figures* figures = nullptr;  // filled when the run ends
  /// Set by another thread: the measured window ends within 100 ms (then the drain).
  const std::atomic<bool>* end_window = nullptr;
};

int run_fanout(const options& opts, json_line& report, const fanout_hooks& hooks = {});
int run_mixed(const options& opts, json_line& report);
int run_idle(const options& opts, json_line& report);
int run_churn(const options& opts, json_line& report);
int run_flood(const options& opts, json_line& report);

}  // namespace roomcast::loadgen
