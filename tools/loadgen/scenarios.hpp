#pragma once
// The scenarios. Each runs on the calling thread (one io_context), fills `report` with its
// parameters and figures (and "error" when it failed) and returns the exit status: 0 all checks
// passed, 1 the run failed, 3 the run completed but a check failed.
#include "json_line.hpp"
#include "options.hpp"

namespace roomcast::loadgen {

int run_fanout(const options& opts, json_line& report);
int run_idle(const options& opts, json_line& report);
int run_churn(const options& opts, json_line& report);
int run_flood(const options& opts, json_line& report);

}  // namespace roomcast::loadgen
