// fuzz_proxy: arbitrary first bytes of a connection through proxy::parse_header, and arbitrary
// text through parse_cidr and forwarded_client (include/roomcast/proxy.hpp).
//
// - The verdict never changes once given: every prefix of the input is need_more or has the
//   input's own verdict, and more bytes after a decided input change nothing. So reading a
//   header in any split gives what reading it whole gives, and the bytes behind a header (the
//   HTTP request) never change how it parses.
// - A parsed header has a length within the input and the limits, its source (if any) is
//   canonical (never IPv4-mapped), and parsing exactly its bytes gives the same result.
// - need_more never holds more than the largest header; absent is decided within 16 bytes.
// - A CIDR that parses prints as text that parses back to the same network, which contains its
//   own address. forwarded_client names a canonical address, never a trusted one unless every
//   entry is.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "roomcast/proxy.hpp"

#include "fuzz_check.hpp"

using namespace roomcast::proxy;

namespace {

bool same(const header_result& a, const header_result& b) {
  return a.status == b.status && a.version == b.version && a.length == b.length
         && a.source == b.source && a.error == b.error;
}

const char* name(header_status s) {
  switch (s) {
    case header_status::need_more:
      return "need_more";
    case header_status::parsed:
      return "parsed";
    case header_status::invalid:
      return "invalid";
    case header_status::absent:
      return "absent";
  }
  return "?";
}

void check_header(std::string_view input) {
  const auto whole = parse_header(input);
  switch (whole.status) {
    case header_status::parsed:
      FUZZ_CHECK(whole.length > 0 && whole.length <= input.size(), "length ", whole.length);
      FUZZ_CHECK(whole.length <= 16 + max_v2_payload, "length ", whole.length);
      FUZZ_CHECK(whole.version != 1 || whole.length <= max_v1_length, "v1 of ", whole.length);
      FUZZ_CHECK(!whole.source || !whole.source->is_v6() || !whole.source->to_v6().is_v4_mapped(),
                 "an IPv4-mapped source");
      FUZZ_CHECK(same(parse_header(input.substr(0, whole.length)), whole),
                 "the header's own bytes parse differently");
      break;
    case header_status::need_more:
      FUZZ_CHECK(input.size() < 16 + max_v2_payload, "need_more after ", input.size(), " bytes");
      break;
    case header_status::absent:
      FUZZ_CHECK(whole.version == 0 && whole.length == 0, "absent with a version or length");
      break;
    case header_status::invalid:
      FUZZ_CHECK(!whole.error.empty(), "invalid without a reason");
      break;
  }
  // Every prefix: still undecided, or decided exactly as the whole.
  bool decided = false;
  for (std::size_t size = 0; size < input.size(); ++size) {
    const auto prefix = parse_header(input.substr(0, size));
    if (prefix.status == header_status::need_more) continue;
    FUZZ_CHECK(same(prefix, whole), "a prefix of ", size, " bytes is ", name(prefix.status),
               ", the whole input ", name(whole.status));
    if (!decided && whole.status == header_status::absent) {
      FUZZ_CHECK(size <= 16, "absent decided only after ", size, " bytes");
    }
    decided = true;
  }
  if (whole.status != header_status::need_more) {
    const std::string longer = std::string(input) + "GET / HTTP/1.1\r\n\r\n";
    FUZZ_CHECK(same(parse_header(longer), whole), "bytes behind a decided input changed it");
  }
}

void check_cidr(std::string_view input) {
  const auto network = parse_cidr(input);
  if (!network) return;
  const auto text = network->to_string();
  const auto again = parse_cidr(text);
  FUZZ_CHECK(again && *again == *network, "'", text, "' does not parse back");
  FUZZ_CHECK(network->contains(network->network), "a network without its own address");
  FUZZ_CHECK(network->prefix <= (network->network.is_v4() ? 32U : 128U), "prefix ",
             network->prefix);
}

void check_forwarded(std::string_view input) {
  static const trusted_proxies trusted({*parse_cidr("10.0.0.0/8"), *parse_cidr("fd00::/8")});
  const auto client = forwarded_client(input, trusted);
  if (!client) return;
  FUZZ_CHECK(!client->is_v6() || !client->to_v6().is_v4_mapped(), "an IPv4-mapped client");
  if (trusted.trusts(*client)) {
    // Only when every entry is trusted, the right-most one included.
    const auto comma = input.rfind(',');
    const auto rightmost = input.substr(comma == std::string_view::npos ? 0 : comma + 1);
    const auto nearest = forwarded_client(rightmost, trusted);
    FUZZ_CHECK(nearest && trusted.trusts(*nearest), "a trusted client behind an untrusted hop");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_header(input);
  check_cidr(input);
  check_forwarded(input);
  return 0;
}
