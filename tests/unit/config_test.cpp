#include "roomcast/config.hpp"

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace roomcast;

namespace {
config_result parse(std::vector<const char*> args, std::map<std::string, std::string> env = {}) {
  return parse_config(args, [&env](const char* name) -> const char* {
    const auto found = env.find(name);
    return found == env.end() ? nullptr : found->second.c_str();
  });
}

void check_bad(const config_result& result, std::string_view mention) {
  CHECK_FALSE(result.settings);
  CHECK(result.exit_code == 2);
  CHECK_THAT(result.message, Catch::Contains(std::string(mention)));
}
}  // namespace

TEST_CASE("defaults match the seed: 127.0.0.1:3000, 100-character messages") {
  const auto result = parse({});
  REQUIRE(result.settings);
  CHECK(result.settings->host == "127.0.0.1");
  CHECK(result.settings->port == 3000);
  CHECK(result.settings->session.max_text == 100);
  CHECK(result.settings->session.max_frame == 16 * 1024);
  CHECK(result.settings->threads >= 1);
  CHECK(result.settings->hub.fanout_threshold == 128);
  CHECK(result.settings->hub.fanout_lanes == 0);  // one per thread
}

TEST_CASE("flags win over the environment, which wins over defaults") {
  CHECK(parse({}, {{"PORT", "4000"}}).settings->port == 4000);
  CHECK(parse({}, {{"PORT", "4000"}, {"ROOMCAST_PORT", "4001"}}).settings->port == 4001);
  CHECK(parse({"--port", "4002"}, {{"PORT", "4000"}}).settings->port == 4002);
  CHECK(parse({"--port=4003"}).settings->port == 4003);
  const auto result =
      parse({"--threads", "3", "--max-text", "20", "--log-level", "debug", "--log-queue", "8"},
            {{"ROOMCAST_HOST", "0.0.0.0"},
             {"ROOMCAST_OUTBOX", "8"},
             {"ROOMCAST_FANOUT_THRESHOLD", "50"},
             {"ROOMCAST_FANOUT_LANES", "4"}});
  REQUIRE(result.settings);
  CHECK(result.settings->threads == 3);
  CHECK(result.settings->session.max_text == 20);
  CHECK(result.settings->level == log_level::debug);
  CHECK(result.settings->log_queue_lines == 8);
  CHECK(result.settings->host == "0.0.0.0");
  CHECK(result.settings->session.outbox_frames == 8);
  CHECK(result.settings->hub.fanout_threshold == 50);
  CHECK(result.settings->hub.fanout_lanes == 4);
}

TEST_CASE("bad flags and values exit with code 2 and say what was wrong") {
  check_bad(parse({"--port", "70000"}), "--port");
  check_bad(parse({"--port", "12x"}), "12x");
  check_bad(parse({"--port"}), "needs a value");
  check_bad(parse({"--frobnicate"}), "unknown option");
  check_bad(parse({"--threads", "0"}), "--threads");
  check_bad(parse({"--log-level", "loud"}), "debug, info");
  check_bad(parse({"--log-queue", "0"}), "--log-queue");
  check_bad(parse({"--fanout-threshold", "0"}), "--fanout-threshold");
  check_bad(parse({"--fanout-lanes", "many"}), "--fanout-lanes");
  check_bad(parse({}, {{"PORT", "-1"}}), "PORT");
  check_bad(parse({}, {{"ROOMCAST_IDLE_TIMEOUT", "soon"}}), "ROOMCAST_IDLE_TIMEOUT");
}

TEST_CASE("the help and version flags print and exit 0") {
  const auto help = parse({"--help"});
  CHECK_FALSE(help.settings);
  CHECK(help.exit_code == 0);
  CHECK_THAT(help.message, Catch::Contains("--max-frame") && Catch::Contains("ROOMCAST_PORT"));
  CHECK_THAT(parse({"--version"}).message, Catch::Contains("roomcast "));
}

TEST_CASE("the PROXY protocol is off and no proxy is trusted by default") {
  const auto result = parse({});
  REQUIRE(result.settings);
  CHECK_FALSE(result.settings->session.proxy.protocol);
  CHECK(result.settings->session.proxy.trusted.empty());
  CHECK_THAT(result.settings->summary(),
             Catch::Contains("proxy_protocol=off") && Catch::Contains("trusted_proxy=(none)"));
}

TEST_CASE("the proxy settings come from flags or the environment") {
  const auto flags = parse({"--proxy-protocol", "on", "--trusted-proxy", "10.0.0.0/8, fd00::/8",
                            "--trusted-proxy=192.0.2.1"});
  REQUIRE(flags.settings);
  const auto& proxy = flags.settings->session.proxy;
  CHECK(proxy.protocol);
  CHECK(proxy.trusted.to_string() == "10.0.0.0/8,fd00::/8,192.0.2.1/32");
  CHECK_THAT(flags.settings->summary(),
             Catch::Contains("proxy_protocol=on trusted_proxy=10.0.0.0/8,fd00::/8,192.0.2.1/32"));

  const auto env =
      parse({}, {{"ROOMCAST_PROXY_PROTOCOL", "on"}, {"ROOMCAST_TRUSTED_PROXY", "172.16.0.0/12"}});
  REQUIRE(env.settings);
  CHECK(env.settings->session.proxy.protocol);
  CHECK(env.settings->session.proxy.trusted.to_string() == "172.16.0.0/12");

  // Flags replace the environment's list, as --allowed-origin does.
  const auto both =
      parse({"--trusted-proxy", "::1"}, {{"ROOMCAST_TRUSTED_PROXY", "172.16.0.0/12"}});
  REQUIRE(both.settings);
  CHECK(both.settings->session.proxy.trusted.to_string() == "::1/128");
  // X-Forwarded-For alone needs no PROXY protocol.
  CHECK_FALSE(both.settings->session.proxy.protocol);
}

TEST_CASE("bad proxy settings exit with code 2 and say what was wrong") {
  check_bad(parse({"--proxy-protocol", "yes", "--trusted-proxy", "10.0.0.0/8"}), "on or off");
  check_bad(parse({"--trusted-proxy", "10.0.0.1/8"}), "'10.0.0.1/8' is not a CIDR");
  check_bad(parse({"--trusted-proxy", "300.0.0.0/8"}), "300.0.0.0/8");
  check_bad(parse({"--trusted-proxy", "10.0.0.0/8,"}), "empty");
  check_bad(parse({"--trusted-proxy", ""}), "--trusted-proxy");
  check_bad(parse({}, {{"ROOMCAST_TRUSTED_PROXY", "localhost"}}), "ROOMCAST_TRUSTED_PROXY");
  check_bad(parse({}, {{"ROOMCAST_PROXY_PROTOCOL", "1"}}), "ROOMCAST_PROXY_PROTOCOL");
  // Nobody's header would be believed: every proxied connection would be refused.
  check_bad(parse({"--proxy-protocol", "on"}), "needs --trusted-proxy");
}

TEST_CASE("cluster mode is off by default, and its flags are checked") {
  const auto plain = parse({});
  REQUIRE(plain.settings);
  CHECK(plain.settings->cluster.redis_url.empty());
  CHECK(plain.settings->cluster.node_timeout == std::chrono::milliseconds(5000));

  const auto cluster = parse(
      {"--redis", "redis://127.0.0.1:6380/2", "--node-id", "web-1", "--node-timeout", "1500"});
  REQUIRE(cluster.settings);
  CHECK(cluster.settings->cluster.redis_url == "redis://127.0.0.1:6380/2");
  CHECK(cluster.settings->cluster.node_id == "web-1");
  CHECK(cluster.settings->cluster.node_timeout == std::chrono::milliseconds(1500));
  CHECK(parse({}, {{"ROOMCAST_REDIS", "unix:///run/redis.sock"}}).settings->cluster.redis_url
        == "unix:///run/redis.sock");

  check_bad(parse({"--redis", "http://x"}), "--redis");
  check_bad(parse({"--redis", "redis://h:99999"}), "--redis");
  check_bad(parse({}, {{"ROOMCAST_REDIS", "rediss://h"}}), "ROOMCAST_REDIS");
  check_bad(parse({"--node-id", "a b"}), "--node-id");
  check_bad(parse({"--node-id", ""}), "--node-id");
  check_bad(parse({"--node-id", std::string(65, 'x').c_str()}), "--node-id");
  check_bad(parse({"--node-timeout", "10"}), "--node-timeout");
  check_bad(parse({"--node-timeout", "5s"}), "5s");
}

TEST_CASE("history and resume settings: defaults, flags, environment, bad values") {
  const auto plain = parse({});
  REQUIRE(plain.settings);
  CHECK(plain.settings->hub.history_events == 100);
  CHECK(plain.settings->hub.history_bytes == 65536);
  CHECK(plain.settings->hub.resume_grace == std::chrono::milliseconds(30'000));

  const auto set = parse({"--history", "0", "--history-bytes", "4096", "--resume-grace", "500"},
                         {{"ROOMCAST_HISTORY", "7"}});
  REQUIRE(set.settings);
  CHECK(set.settings->hub.history_events == 0);  // the flag wins
  CHECK(set.settings->hub.history_bytes == 4096);
  CHECK(set.settings->hub.resume_grace == std::chrono::milliseconds(500));
  CHECK(parse({}, {{"ROOMCAST_RESUME_GRACE", "1000"}}).settings->hub.resume_grace
        == std::chrono::milliseconds(1000));

  check_bad(parse({"--history", "-1"}), "--history");
  check_bad(parse({"--history", "lots"}), "--history");
  check_bad(parse({"--history-bytes", "10"}), "--history-bytes");
  check_bad(parse({"--resume-grace", "0"}), "--resume-grace");
  check_bad(parse({}, {{"ROOMCAST_HISTORY", "x"}}), "ROOMCAST_HISTORY");
}
