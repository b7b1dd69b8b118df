// The PROXY protocol header (v1 and v2), CIDRs and X-Forwarded-For, as plain code: every valid
// form, every malformed one, and every split of the bytes.
#include "roomcast/proxy.hpp"

#include <string>
#include <string_view>

#include <catch2/catch.hpp>

using namespace roomcast::proxy;
using status = header_status;

namespace {

address ip(std::string_view text) {
  return boost::asio::ip::make_address(text);
}

// A v2 header: signature, version/command byte, family/transport byte, length, payload.
std::string v2(unsigned version_command, unsigned family, const std::string& payload) {
  std::string header("\r\n\r\n\0\r\nQUIT\n", 12);
  header += static_cast<char>(version_command);
  header += static_cast<char>(family);
  header += static_cast<char>((payload.size() >> 8) & 0xFF);
  header += static_cast<char>(payload.size() & 0xFF);
  return header + payload;
}

std::string bytes_of(const address& a) {
  std::string out;
  if (a.is_v4()) {
    for (const auto b : a.to_v4().to_bytes())
      out += static_cast<char>(b);
  } else {
    for (const auto b : a.to_v6().to_bytes())
      out += static_cast<char>(b);
  }
  return out;
}

// Addresses and ports of a v2 TCP header: source, destination, source port, destination port.
std::string addresses(std::string_view source, std::string_view destination) {
  return bytes_of(ip(source)) + bytes_of(ip(destination)) + std::string("\xDB\x04\x01\xBB", 4);
}

constexpr unsigned v2_proxy = 0x21;
constexpr unsigned v2_local = 0x20;
constexpr unsigned tcp4 = 0x11;
constexpr unsigned tcp6 = 0x21;

// Checks that every proper prefix of `header` needs more, and that the whole parses the same
// with HTTP bytes behind it.
void check_every_split(const std::string& header) {
  for (std::size_t size = 1; size < header.size(); ++size) {
    INFO("prefix of " << size << " bytes");
    CHECK(parse_header(header.substr(0, size)).status == status::need_more);
  }
  const auto whole = parse_header(header);
  const auto with_request = parse_header(header + "GET / HTTP/1.1\r\n\r\n");
  CHECK(whole.status == status::parsed);
  CHECK(with_request.status == status::parsed);
  CHECK(with_request.length == header.size());
  CHECK(with_request.source == whole.source);
}

header_result invalid_v1(std::string_view line) {
  const auto result = parse_header(std::string(line) + "GET / HTTP/1.1\r\n\r\n");
  CHECK(result.version == 1);
  CHECK_FALSE(result.error.empty());
  return result;
}

}  // namespace

TEST_CASE("a v1 header names the client, and the request behind it is left alone") {
  const std::string header = "PROXY TCP4 203.0.113.7 192.0.2.10 56324 443\r\n";
  const auto result = parse_header(header + "GET /ws HTTP/1.1\r\n");
  REQUIRE(result.status == status::parsed);
  CHECK(result.version == 1);
  CHECK(result.length == header.size());
  CHECK(result.source == ip("203.0.113.7"));
  check_every_split(header);

  const auto v6 = parse_header("PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n");
  REQUIRE(v6.status == status::parsed);
  CHECK(v6.source == ip("2001:db8::7"));
  // An IPv4 client of a dual-stack proxy is the IPv4 address.
  const auto mapped = parse_header("PROXY TCP6 ::ffff:203.0.113.7 ::1 0 80\r\n");
  REQUIRE(mapped.status == status::parsed);
  CHECK(mapped.source == ip("203.0.113.7"));
}

TEST_CASE("a v1 UNKNOWN header names no client: the socket's address stands") {
  for (const std::string header :
       {"PROXY UNKNOWN\r\n", "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"}) {
    const auto result = parse_header(header);
    REQUIRE(result.status == status::parsed);
    CHECK(result.length == header.size());
    CHECK_FALSE(result.source);
    check_every_split(header);
  }
}

TEST_CASE("malformed v1 headers are invalid, each with its reason") {
  SECTION("no CRLF within 107 bytes") {
    const auto result = parse_header("PROXY TCP4 " + std::string(120, '1'));
    CHECK(result.status == status::invalid);
    CHECK(result.version == 1);
  }
  SECTION("a 108-byte line") {
    const std::string line = "PROXY UNKNOWN " + std::string(92, 'x') + "\r\n";
    REQUIRE(line.size() == 108);
    CHECK(parse_header(line).status == status::invalid);
  }
  SECTION("LF without CR") {
    CHECK(invalid_v1("PROXY TCP4 203.0.113.7 192.0.2.10 1 2\n").status == status::invalid);
  }
  SECTION("a NUL or other control byte") {
    CHECK(invalid_v1(std::string("PROXY TCP4 203.0.113.7\0 192.0.2.10 1 2\r\n", 40)).status
          == status::invalid);
    CHECK(invalid_v1("PROXY TCP4\t203.0.113.7 192.0.2.10 1 2\r\n").status == status::invalid);
  }
  SECTION("an unknown or lower-case protocol") {
    CHECK(invalid_v1("PROXY TCP5 203.0.113.7 192.0.2.10 1 2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY tcp4 203.0.113.7 192.0.2.10 1 2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY UDP4 203.0.113.7 192.0.2.10 1 2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY \r\n").status == status::invalid);
  }
  SECTION("missing, extra or empty fields") {
    CHECK(invalid_v1("PROXY TCP4 203.0.113.7 192.0.2.10 1\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP4 203.0.113.7 192.0.2.10 1 2 3\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP4 203.0.113.7  192.0.2.10 1 2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP4 203.0.113.7 192.0.2.10 1 2 \r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP4\r\n").status == status::invalid);
  }
  SECTION("an address of the other family, or not an address") {
    CHECK(invalid_v1("PROXY TCP4 2001:db8::7 192.0.2.10 1 2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP6 203.0.113.7 2001:db8::1 1 2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP4 203.0.113 192.0.2.10 1 2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP4 example.com 192.0.2.10 1 2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP6 fe80::1%eth0 2001:db8::1 1 2\r\n").status == status::invalid);
  }
  SECTION("a port out of range, signed, or with a leading zero") {
    CHECK(invalid_v1("PROXY TCP4 203.0.113.7 192.0.2.10 65536 2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP4 203.0.113.7 192.0.2.10 1 -2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP4 203.0.113.7 192.0.2.10 080 2\r\n").status == status::invalid);
    CHECK(invalid_v1("PROXY TCP4 203.0.113.7 192.0.2.10 1 x\r\n").status == status::invalid);
  }
}

TEST_CASE("a v2 header names an IPv4 or IPv6 client, TLVs and all") {
  const auto header4 = v2(v2_proxy, tcp4, addresses("203.0.113.7", "192.0.2.10"));
  const auto result4 = parse_header(header4 + "GET / HTTP/1.1\r\n");
  REQUIRE(result4.status == status::parsed);
  CHECK(result4.version == 2);
  CHECK(result4.length == 16 + 12);
  CHECK(result4.source == ip("203.0.113.7"));
  check_every_split(header4);

  const auto header6 = v2(v2_proxy, tcp6, addresses("2001:db8::7", "2001:db8::1"));
  const auto result6 = parse_header(header6);
  REQUIRE(result6.status == status::parsed);
  CHECK(result6.length == 16 + 36);
  CHECK(result6.source == ip("2001:db8::7"));
  check_every_split(header6);

  // haproxy adds TLVs (here a PP2_TYPE_ALPN "http/1.1" and a NOOP): skipped, length includes them.
  const std::string tlvs =
      std::string("\x01\x00\x08http/1.1", 11) + std::string("\x04\x00\x02xx", 5);
  const auto with_tlvs = v2(v2_proxy, tcp4, addresses("203.0.113.7", "192.0.2.10") + tlvs);
  const auto result = parse_header(with_tlvs + "GET");
  REQUIRE(result.status == status::parsed);
  CHECK(result.length == with_tlvs.size());
  CHECK(result.source == ip("203.0.113.7"));
}

TEST_CASE("v2 LOCAL (a health check), UNSPEC and AF_UNIX name no client") {
  for (const auto& header :
       {v2(v2_local, 0x00, ""), v2(v2_local, tcp4, addresses("203.0.113.7", "192.0.2.10")),
        v2(v2_local, 0x12, ""),  // LOCAL ignores the family
        v2(v2_proxy, 0x00, ""), v2(v2_proxy, 0x00, "ignored"),
        v2(v2_proxy, 0x31, std::string(216, '\0'))}) {
    const auto result = parse_header(header);
    REQUIRE(result.status == status::parsed);
    CHECK(result.version == 2);
    CHECK(result.length == header.size());
    CHECK_FALSE(result.source);
    check_every_split(header);
  }
}

TEST_CASE("malformed v2 headers are invalid, each with its reason") {
  const auto four = addresses("203.0.113.7", "192.0.2.10");
  const auto check_invalid = [](const std::string& header) {
    const auto result = parse_header(header);
    CHECK(result.status == status::invalid);
    CHECK(result.version == 2);
    CHECK_FALSE(result.error.empty());
  };
  SECTION("a version other than 2") {
    check_invalid(v2(0x11, tcp4, four));
    check_invalid(v2(0x31, tcp4, four));
  }
  SECTION("an unknown command") {
    check_invalid(v2(0x22, tcp4, four));
    check_invalid(v2(0x2F, tcp4, four));
  }
  SECTION("an undefined family or transport") {
    check_invalid(v2(v2_proxy, 0x41, four));
    check_invalid(v2(v2_proxy, 0x13, four));
    check_invalid(v2(v2_proxy, 0x10, four));
    check_invalid(v2(v2_local, 0x01, ""));
  }
  SECTION("a datagram connection") {
    check_invalid(v2(v2_proxy, 0x12, four));
    check_invalid(v2(v2_proxy, 0x22, std::string(36, '\0')));
    check_invalid(v2(v2_proxy, 0x32, std::string(216, '\0')));
  }
  SECTION("a payload too short for its addresses") {
    check_invalid(v2(v2_proxy, tcp4, four.substr(0, 11)));
    check_invalid(v2(v2_proxy, tcp6, std::string(35, '\0')));
    check_invalid(v2(v2_proxy, 0x31, std::string(215, '\0')));
  }
  SECTION("a length over 4 KiB is refused before its bytes arrive") {
    std::string header("\r\n\r\n\0\r\nQUIT\n\x21\x11\x10\x01", 16);  // 4097 bytes announced
    check_invalid(header);
    CHECK(parse_header(v2(v2_proxy, tcp4, four + std::string(4096 - 12, '\0'))).status
          == status::parsed);
  }
}

TEST_CASE("bytes that cannot start a header are absent at once, and a prefix needs more") {
  for (const std::string_view request :
       {"GET / HTTP/1.1\r\n", "POST", "PUT", "PRI * HTTP/2.0", "\r\nGET /", "G", "Q", "\n"}) {
    INFO(request);
    CHECK(parse_header(request).status == status::absent);
  }
  for (const std::string_view prefix : {"", "P", "PR", "PROX", "PROXY", "\r", "\r\n\r\n"}) {
    INFO(prefix);
    CHECK(parse_header(prefix).status == status::need_more);
  }
  CHECK(parse_header(std::string("\r\n\r\n\0\r\nQUIT\n", 12)).status == status::need_more);
  CHECK(parse_header("PROXY TCP4 203.0.113.7 192.0.2.10 56324 443\r").status == status::need_more);
}

TEST_CASE("CIDRs: IPv4 and IPv6 networks, single addresses, and what they contain") {
  const auto ten = parse_cidr("10.0.0.0/8");
  REQUIRE(ten);
  CHECK(ten->contains(ip("10.1.2.3")));
  CHECK(ten->contains(ip("::ffff:10.1.2.3")));  // a dual-stack socket's view of it
  CHECK_FALSE(ten->contains(ip("11.0.0.1")));
  CHECK_FALSE(ten->contains(ip("::a01:203")));
  CHECK(ten->to_string() == "10.0.0.0/8");

  const auto host = parse_cidr("192.0.2.7");
  REQUIRE(host);
  CHECK(host->prefix == 32);
  CHECK(host->contains(ip("192.0.2.7")));
  CHECK_FALSE(host->contains(ip("192.0.2.8")));

  const auto odd = parse_cidr("172.16.0.0/12");
  REQUIRE(odd);
  CHECK(odd->contains(ip("172.31.255.255")));
  CHECK_FALSE(odd->contains(ip("172.32.0.0")));

  const auto all4 = parse_cidr("0.0.0.0/0");
  REQUIRE(all4);
  CHECK(all4->contains(ip("198.51.100.1")));
  CHECK_FALSE(all4->contains(ip("2001:db8::1")));

  const auto doc6 = parse_cidr("2001:db8::/32");
  REQUIRE(doc6);
  CHECK(doc6->contains(ip("2001:db8:ffff::1")));
  CHECK_FALSE(doc6->contains(ip("2001:db9::1")));
  CHECK_FALSE(doc6->contains(ip("10.0.0.1")));
  const auto loopback6 = parse_cidr("::1");
  REQUIRE(loopback6);
  CHECK(loopback6->prefix == 128);

  // An IPv4-mapped network is the IPv4 network.
  CHECK(parse_cidr("::ffff:10.0.0.0/104") == ten);
}

TEST_CASE("bad CIDRs are refused") {
  for (const std::string_view bad :
       {"", "/8", "10.0.0.0/", "10.0.0.0/33", "2001:db8::/129", "10.0.0.0/08", "10.0.0.0/-1",
        "10.0.0.1/8", "2001:db8::1/32", "10.0.0.0/8/8", " 10.0.0.0/8", "10.0.0.0/8 ",
        "example.com/8", "10.0.0/8", "fe80::%eth0/10", "10.0.0.0/8x"}) {
    INFO(bad);
    CHECK_FALSE(parse_cidr(bad));
  }
}

TEST_CASE("a CIDR list is comma-separated with spaces allowed, and a bad entry is named") {
  std::string error;
  const auto list = parse_cidr_list("10.0.0.0/8, fd00::/8 ,192.0.2.1", error);
  REQUIRE(list);
  REQUIRE(list->size() == 3);
  CHECK(list->at(1).to_string() == "fd00::/8");
  CHECK(list->at(2).prefix == 32);

  CHECK_FALSE(parse_cidr_list("", error));
  CHECK_FALSE(parse_cidr_list("10.0.0.0/8,,fd00::/8", error));
  CHECK_THAT(error, Catch::Contains("empty"));
  CHECK_FALSE(parse_cidr_list("10.0.0.0/8,10.0.0.1/8", error));
  CHECK_THAT(error, Catch::Contains("'10.0.0.1/8'"));

  const trusted_proxies trusted(*list);
  CHECK(trusted.trusts(ip("10.9.9.9")));
  CHECK(trusted.trusts(ip("fd12::1")));
  CHECK(trusted.trusts(ip("::ffff:192.0.2.1")));
  CHECK_FALSE(trusted.trusts(ip("192.0.2.2")));
  CHECK(trusted.to_string() == "10.0.0.0/8,fd00::/8,192.0.2.1/32");
  CHECK(trusted_proxies().to_string() == "(none)");
  CHECK_FALSE(trusted_proxies().trusts(ip("127.0.0.1")));
}

TEST_CASE("X-Forwarded-For: the right-most address that is not a trusted proxy") {
  std::string error;
  const trusted_proxies trusted(*parse_cidr_list("10.0.0.0/8,fd00::/8", error));
  const auto client = [&trusted](std::string_view header) {
    return forwarded_client(header, trusted);
  };
  CHECK(client("203.0.113.7") == ip("203.0.113.7"));
  CHECK(client("203.0.113.7, 10.0.0.5") == ip("203.0.113.7"));
  // The left part was written by the client itself and could be anything.
  CHECK(client("198.51.100.1, 203.0.113.7, 10.0.0.5") == ip("203.0.113.7"));
  CHECK(client("forged, 203.0.113.7") == ip("203.0.113.7"));
  // Every hop a trusted proxy: the left-most is the best knowledge there is.
  CHECK(client("10.0.0.9,10.0.0.5") == ip("10.0.0.9"));
  CHECK(client("203.0.113.7:5555") == ip("203.0.113.7"));
  CHECK(client("[2001:db8::7]:443, fd00::1") == ip("2001:db8::7"));
  CHECK(client("[2001:db8::7]") == ip("2001:db8::7"));
  CHECK(client("2001:db8::7") == ip("2001:db8::7"));
  CHECK(client("::ffff:203.0.113.7") == ip("203.0.113.7"));
  CHECK(client("\t203.0.113.7 ") == ip("203.0.113.7"));
}

TEST_CASE("X-Forwarded-For that cannot be read where it matters is not believed") {
  const trusted_proxies trusted(std::vector<cidr>{*parse_cidr("10.0.0.0/8")});
  for (const std::string_view header :
       {"", " ", "203.0.113.7,", "203.0.113.7, forged", "unknown",
        "203.0.113.7, 10.0.0.1:", "[2001:db8::7", "[2001:db8::7]x", "[203.0.113.7]",
        "203.0.113.7:99999", "fe80::1%eth0", "203.0.113.7, , 10.0.0.1"}) {
    INFO(header);
    CHECK_FALSE(forwarded_client(header, trusted));
  }
}
