#pragma once
/** @file
 * Learning the client's address from a trusted proxy, as plain code: no sockets, no clock.
 *
 * - The PROXY protocol header (haproxy's `send-proxy` and `send-proxy-v2`): version 1 (one text
 *   line) and version 2 (binary), parsed from bytes as they arrive.
 * - CIDRs (`10.0.0.0/8`, `fd00::/8`) and the list of trusted proxies (`--trusted-proxy`).
 * - The client address that an `X-Forwarded-For` chain names, seen from a trusted proxy.
 *
 * src/session.cpp reads the header from the socket and feeds it here; docs/security.md says who
 * is trusted with what.
 */
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/ip/address.hpp>

namespace roomcast::proxy {

using address = boost::asio::ip::address;

/** `a` with an IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports
 * for an IPv4 client) turned into the IPv4 address, so that one client is one address. */
address canonical(const address& a);

// --- CIDRs and the trusted proxies ------------------------------------------------------------

/** A network: an address and a prefix length (0..32 for IPv4, 0..128 for IPv6). */
struct cidr {
  address network;  ///< with the bits beyond the prefix cleared
  unsigned prefix = 0;

  bool contains(const address& a) const noexcept;
  std::string to_string() const;
  friend bool operator==(const cidr&, const cidr&) = default;
};

/** Parses `192.0.2.0/24`, `2001:db8::/32`, or a single address (a /32 or /128). A network with
 * host bits set (`10.1.2.3/8`) is refused: it is almost always a typo, and silently clearing the
 * bits would trust more than the operator read. nullopt on anything else. */
std::optional<cidr> parse_cidr(std::string_view text);

/** The proxies whose word about the client's address is taken (--trusted-proxy). */
class trusted_proxies {
 public:
  trusted_proxies() = default;
  explicit trusted_proxies(std::vector<cidr> networks) : networks_(std::move(networks)) {}

  /** Whether `a` (IPv4-mapped or not) is within one of the networks. */
  bool trusts(const address& a) const noexcept;
  bool empty() const noexcept { return networks_.empty(); }
  const std::vector<cidr>& networks() const noexcept { return networks_; }
  /** "10.0.0.0/8,::1/128", or "(none)". */
  std::string to_string() const;

 private:
  std::vector<cidr> networks_;
};

/** Parses a comma-separated list of CIDRs ("10.0.0.0/8, fd00::/8"); on a bad entry, nullopt and
 * `error` says which entry and why. */
std::optional<std::vector<cidr>> parse_cidr_list(std::string_view text, std::string& error);

// --- The PROXY protocol header ----------------------------------------------------------------

/** The longest header accepted: a v1 line is at most 107 bytes by the specification; a v2 header
 * is 16 bytes and its announced length, which is capped here at 4 KiB (haproxy's own addresses
 * and TLVs take well under 1 KiB). Bytes a header announces beyond that are refused, not read. */
inline constexpr std::size_t max_v1_length = 107;
inline constexpr std::size_t max_v2_payload = 4096;

/** What a connection's first bytes are. */
enum class header_status : std::uint8_t {
  need_more,  ///< a header so far (or too few bytes to tell): read more
  parsed,     ///< a complete, valid header of `length` bytes
  invalid,    ///< a header that breaks the specification (`error` says how)
  absent,     ///< these bytes cannot start a header (an HTTP request, or anything else)
};

struct header_result {
  header_status status = header_status::need_more;
  int version = 0;                ///< parsed, invalid: 1 or 2; absent: 0
  std::size_t length = 0;         ///< parsed: bytes to drop before the HTTP request
  std::optional<address> source;  ///< parsed: the client's address, canonical; nullopt when the
                                  ///< header names none (v2 LOCAL: the proxy's own health check;
                                  ///< v1 UNKNOWN; v2 UNSPEC or AF_UNIX): then the socket's peer
                                  ///< stands
  std::string_view error;         ///< invalid: why, static text for the log
};

/** Looks at the first bytes of a connection. Never reads past a complete header: the bytes after
 * `length` belong to the HTTP request. Needs at most 16 bytes to tell a header from anything
 * else, and at most `max_v1_length` or 16 + `max_v2_payload` to parse one. */
header_result parse_header(std::string_view bytes) noexcept;

// --- X-Forwarded-For --------------------------------------------------------------------------

/** The client address an `X-Forwarded-For` value names, for a request whose sender is trusted:
 * walking the comma-separated entries from the right (the one the nearest proxy added), the
 * first that is not itself a trusted proxy; when every entry is trusted, the left-most. Entries
 * are addresses, optionally `[v6]`, `[v6]:port` or `v4:port`. nullopt when the value is empty or
 * an entry that would have to be read is not an address (the header is then not believed at
 * all). Values of repeated headers are joined with commas first, as HTTP says. */
std::optional<address> forwarded_client(std::string_view header, const trusted_proxies& proxies);

}  // namespace roomcast::proxy
