#pragma once
// What the load generator asks the operating system: CPU time and RSS of the server (from /proc)
// and of itself, the descriptor limit, CPU pinning, the ephemeral port range.
#include <cstdint>
#include <optional>
#include <string>

namespace roomcast::loadgen {

/// utime + stime of a whole process (all threads), from /proc/PID/stat.
std::optional<double> process_cpu_seconds(int pid);
/// VmRSS of a process in bytes, from /proc/PID/status.
std::optional<std::uint64_t> process_rss_bytes(int pid);
/// CPU time all cores spent busy since boot (user, nice, system, irq, softirq, steal), from
/// /proc/stat: with the server's and our own, it tells how much else ran during a window.
std::optional<double> machine_busy_seconds();
/// user + system CPU time of this process (getrusage).
double own_cpu_seconds();
/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
std::uint64_t raise_descriptor_limit();
/// Pins this process (one thread) to `cpu`; an error text on failure.
std::optional<std::string> pin_to_cpu(int cpu);
/// The number of ports in /proc/sys/net/ipv4/ip_local_port_range (28232 if unreadable).
int ephemeral_port_count();

}  // namespace roomcast::loadgen
