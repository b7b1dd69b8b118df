#include "roomcast/proxy.hpp"

#include <algorithm>
#include <array>

namespace roomcast::proxy {
namespace {

namespace ip = boost::asio::ip;

// --- Small text helpers -----------------------------------------------------------------------

std::string_view trim(std::string_view text) noexcept {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  const auto last = text.find_last_not_of(" \t");
  return text.substr(first, last - first + 1);
}

// A decimal number of at most `max_digits` digits, without a leading zero (but "0" itself).
std::optional<unsigned> parse_decimal(std::string_view text, std::size_t max_digits,
                                      unsigned max_value) noexcept {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  if (text.size() > 1 && text.front() == '0') return std::nullopt;
  unsigned value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  if (value > max_value) return std::nullopt;
  return value;
}

std::optional<unsigned> parse_port(std::string_view text) noexcept {
  return parse_decimal(text, 5, 65535);
}

// An address in its textual form, and nothing else: Asio would also take an IPv6 scope
// ("fe80::1%eth0"), which names an interface of the sender's machine, not a client.
std::optional<address> parse_address(std::string_view text) noexcept {
  if (text.empty() || text.find('%') != std::string_view::npos) return std::nullopt;
  boost::system::error_code ec;
  const auto parsed = ip::make_address(text, ec);
  if (ec) return std::nullopt;
  return parsed;
}

std::optional<address> parse_v4(std::string_view text) noexcept {
  auto parsed = parse_address(text);
  if (!parsed || !parsed->is_v4()) return std::nullopt;
  return parsed;
}

std::optional<address> parse_v6(std::string_view text) noexcept {
  auto parsed = parse_address(text);
  if (!parsed || !parsed->is_v6()) return std::nullopt;
  return parsed;
}

// --- Address bits -----------------------------------------------------------------------------

// The address's bytes, network order, in the first 4 (IPv4) or 16 (IPv6) of a 16-byte array.
std::array<unsigned char, 16> bytes_of(const address& a) noexcept {
  std::array<unsigned char, 16> out{};
  if (a.is_v4()) {
    const auto v4 = a.to_v4().to_bytes();
    std::copy(v4.begin(), v4.end(), out.begin());
  } else {
    out = a.to_v6().to_bytes();
  }
  return out;
}

unsigned width_of(const address& a) noexcept {
  return a.is_v4() ? 32 : 128;
}

// Whether the first `prefix` bits of `x` and `y` are equal.
bool same_prefix(const std::array<unsigned char, 16>& x, const std::array<unsigned char, 16>& y,
                 unsigned prefix) noexcept {
  const unsigned whole = prefix / 8;
  if (!std::equal(x.begin(), x.begin() + whole, y.begin())) return false;
  const unsigned rest = prefix % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
  return (x[whole] & mask) == (y[whole] & mask);
}

// Whether every bit after the first `prefix` of an address `width` bits wide is zero.
bool host_bits_clear(const std::array<unsigned char, 16>& bytes, unsigned prefix,
                     unsigned width) noexcept {
  for (unsigned bit = prefix; bit < width; ++bit) {
    if ((bytes.at(bit / 8) >> (7 - bit % 8)) & 1U) return false;
  }
  return true;
}

// --- The PROXY protocol header ----------------------------------------------------------------

constexpr std::string_view v1_signature = "PROXY ";
constexpr std::array<char, 12> v2_signature_bytes = {'\r', '\n', '\r', '\n', '\0', '\r',
                                                     '\n', 'Q',  'U',  'I',  'T',  '\n'};
constexpr std::string_view v2_signature(v2_signature_bytes.data(), v2_signature_bytes.size());
constexpr std::size_t v2_fixed_length = 16;  // signature, version/command, family, length

// Whether `bytes` could be the start of `signature` (or holds all of it).
bool starts_like(std::string_view bytes, std::string_view signature) noexcept {
  const auto n = std::min(bytes.size(), signature.size());
  return bytes.substr(0, n) == signature.substr(0, n);
}

header_result need_more(int version) noexcept {
  header_result r;
  r.status = header_status::need_more;
  r.version = version;
  return r;
}

header_result invalid(int version, std::string_view why) noexcept {
  header_result r;
  r.status = header_status::invalid;
  r.version = version;
  r.error = why;
  return r;
}

header_result parsed(int version, std::size_t length, std::optional<address> source) noexcept {
  header_result r;
  r.status = header_status::parsed;
  r.version = version;
  r.length = length;
  if (source) r.source = canonical(*source);
  return r;
}

bool printable(char c) noexcept {
  return c >= 0x20 && c <= 0x7E;
}

// "PROXY TCP4 192.0.2.1 192.0.2.2 56324 443\r\n", "PROXY TCP6 ...", "PROXY UNKNOWN ...\r\n".
header_result parse_v1(std::string_view bytes) noexcept {
  const auto window = bytes.substr(0, max_v1_length);
  const auto end = window.find("\r\n");
  const auto line_end = end == std::string_view::npos ? window.size() : end;
  for (std::size_t i = v1_signature.size(); i < line_end; ++i) {
    // A lone '\r' at the very end may be the first half of the CRLF still to come.
    const bool pending_cr =
        end == std::string_view::npos && i + 1 == window.size() && window[i] == '\r';
    if (!printable(window[i]) && !pending_cr) {
      return invalid(1, "a v1 header holds a byte that is not printable ASCII");
    }
  }
  if (end == std::string_view::npos) {
    if (bytes.size() >= max_v1_length) return invalid(1, "a v1 header without CRLF in 107 bytes");
    return need_more(1);
  }
  const auto line = bytes.substr(v1_signature.size(), end - v1_signature.size());
  const std::size_t length = end + 2;

  // Fields separated by exactly one space: an empty field is an error.
  std::array<std::string_view, 5> fields;
  std::size_t count = 0;
  for (std::size_t from = 0;;) {
    const auto space = line.find(' ', from);
    const auto field = line.substr(from, space == std::string_view::npos ? space : space - from);
    if (count == 0 && field == "UNKNOWN") {
      // The sender does not know (or will not say) the client: whatever follows is ignored.
      return parsed(1, length, std::nullopt);
    }
    if (field.empty()) return invalid(1, "a v1 header with an empty field");
    if (count == fields.size()) return invalid(1, "a v1 header with too many fields");
    fields.at(count++) = field;
    if (space == std::string_view::npos) break;
    from = space + 1;
  }
  const auto protocol = fields[0];
  if (protocol != "TCP4" && protocol != "TCP6") {
    return invalid(1, "a v1 header whose protocol is not TCP4, TCP6 or UNKNOWN");
  }
  if (count != fields.size()) return invalid(1, "a v1 header without both addresses and ports");
  const bool v4 = protocol == "TCP4";
  const auto source = v4 ? parse_v4(fields[1]) : parse_v6(fields[1]);
  const auto destination = v4 ? parse_v4(fields[2]) : parse_v6(fields[2]);
  if (!source || !destination) {
    return invalid(1, "a v1 header whose addresses are not of its protocol's family");
  }
  if (!parse_port(fields[3]) || !parse_port(fields[4])) {
    return invalid(1, "a v1 header with a port that is not 0..65535");
  }
  return parsed(1, length, source);
}

// The 16-byte fixed part, then the addresses of the family, then TLVs (skipped: roomcast uses
// none of them).
header_result parse_v2(std::string_view bytes) noexcept {
  const auto byte = [&bytes](std::size_t i) { return static_cast<unsigned char>(bytes[i]); };
  const auto high = [](unsigned char b) { return static_cast<unsigned>(b) >> 4U; };
  const auto low = [](unsigned char b) { return static_cast<unsigned>(b) & 0x0FU; };
  const unsigned version = high(byte(12));
  const unsigned command = low(byte(12));
  const unsigned family_and_transport = byte(13);
  const std::size_t payload = (std::size_t{byte(14)} << 8) | byte(15);
  if (version != 2) return invalid(2, "a v2 signature with a version other than 2");
  constexpr unsigned local = 0x0;  // the proxy's own connection (a health check)
  constexpr unsigned relayed = 0x1;
  if (command != local && command != relayed)
    return invalid(2, "a v2 header with an unknown command");
  // The seven combinations the specification defines; it asks receivers to refuse the others.
  constexpr std::array<unsigned, 7> defined = {0x00, 0x11, 0x12, 0x21, 0x22, 0x31, 0x32};
  if (std::find(defined.begin(), defined.end(), family_and_transport) == defined.end()) {
    return invalid(2, "a v2 header with an undefined address family or transport");
  }
  if (payload > max_v2_payload) return invalid(2, "a v2 header longer than 4 KiB");
  const std::size_t length = v2_fixed_length + payload;
  if (bytes.size() < length) return need_more(2);
  if (command == local) return parsed(2, length, std::nullopt);  // addresses, if any, ignored

  switch (family_and_transport) {
    case 0x00:  // UNSPEC: the specification says to ignore any address information
    case 0x31:  // AF_UNIX: a path, not an address; the socket's peer stands
      if (family_and_transport == 0x31 && payload < 216) {
        return invalid(2, "a v2 AF_UNIX header too short for its paths");
      }
      return parsed(2, length, std::nullopt);
    case 0x11: {  // TCP over IPv4: source, destination (4 bytes each), ports
      if (payload < 12) return invalid(2, "a v2 IPv4 header too short for its addresses");
      ip::address_v4::bytes_type source{};
      for (std::size_t i = 0; i < source.size(); ++i)
        source.at(i) = byte(v2_fixed_length + i);
      return parsed(2, length, address(ip::address_v4(source)));
    }
    case 0x21: {  // TCP over IPv6: 16 bytes each, ports
      if (payload < 36) return invalid(2, "a v2 IPv6 header too short for its addresses");
      ip::address_v6::bytes_type source{};
      for (std::size_t i = 0; i < source.size(); ++i)
        source.at(i) = byte(v2_fixed_length + i);
      return parsed(2, length, address(ip::address_v6(source)));
    }
    default:  // UDP (0x12, 0x22) or unix datagrams (0x32): not what reaches a TCP port
      return invalid(2, "a v2 header for a datagram connection");
  }
}

// One X-Forwarded-For entry: "192.0.2.1", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:443",
// "192.0.2.1:443".
std::optional<address> parse_forwarded_entry(std::string_view entry) noexcept {
  entry = trim(entry);
  if (entry.starts_with('[')) {
    const auto close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    const auto rest = entry.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !parse_port(rest.substr(1)))) return std::nullopt;
    return parse_v6(entry.substr(1, close - 1));
  }
  if (std::count(entry.begin(), entry.end(), ':') == 1) {  // IPv4 with a port
    const auto colon = entry.find(':');
    if (!parse_port(entry.substr(colon + 1))) return std::nullopt;
    return parse_v4(entry.substr(0, colon));
  }
  return parse_address(entry);
}

}  // namespace

address canonical(const address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  }
  return a;
}

// --- CIDRs ------------------------------------------------------------------------------------

bool cidr::contains(const address& a) const noexcept {
  const auto candidate = canonical(a);
  if (candidate.is_v4() != network.is_v4()) return false;
  return same_prefix(bytes_of(candidate), bytes_of(network), prefix);
}

std::string cidr::to_string() const {
  return network.to_string() + "/" + std::to_string(prefix);
}

std::optional<cidr> parse_cidr(std::string_view text) {
  const auto slash = text.find('/');
  auto network = parse_address(text.substr(0, slash));
  if (!network) return std::nullopt;
  const unsigned width = width_of(*network);
  unsigned prefix = width;
  if (slash != std::string_view::npos) {
    const auto bits = parse_decimal(text.substr(slash + 1), 3, width);
    if (!bits) return std::nullopt;
    prefix = *bits;
  }
  if (!host_bits_clear(bytes_of(*network), prefix, width)) return std::nullopt;
  // An IPv4-mapped IPv6 network is the IPv4 network it maps: addresses are matched canonical.
  if (network->is_v6() && network->to_v6().is_v4_mapped() && prefix >= 96) {
    return cidr{canonical(*network), prefix - 96};
  }
  return cidr{*network, prefix};
}

std::optional<std::vector<cidr>> parse_cidr_list(std::string_view text, std::string& error) {
  std::vector<cidr> networks;
  for (std::size_t from = 0; from <= text.size();) {
    const auto comma = std::min(text.find(',', from), text.size());
    const auto entry = trim(text.substr(from, comma - from));
    from = comma + 1;
    if (entry.empty()) {
      error = "expected CIDRs such as 10.0.0.0/8,fd00::/8 (an entry is empty)";
      return std::nullopt;
    }
    auto network = parse_cidr(entry);
    if (!network) {
      error = "'" + std::string(entry)
              + "' is not a CIDR such as 10.0.0.0/8 or fd00::/8 (an address, '/', a prefix "
                "length, and no bits set after the prefix)";
      return std::nullopt;
    }
    networks.push_back(*network);
  }
  return networks;
}

bool trusted_proxies::trusts(const address& a) const noexcept {
  return std::any_of(networks_.begin(), networks_.end(),
                     [&a](const cidr& network) { return network.contains(a); });
}

std::string trusted_proxies::to_string() const {
  if (networks_.empty()) return "(none)";
  std::string out;
  for (const auto& network : networks_) {
    if (!out.empty()) out += ',';
    out += network.to_string();
  }
  return out;
}

// --- The header -------------------------------------------------------------------------------

header_result parse_header(std::string_view bytes) noexcept {
  if (bytes.empty()) return need_more(0);
  if (starts_like(bytes, v2_signature)) {
    return bytes.size() < v2_fixed_length ? need_more(2) : parse_v2(bytes);
  }
  if (starts_like(bytes, v1_signature)) {
    return bytes.size() < v1_signature.size() ? need_more(1) : parse_v1(bytes);
  }
  header_result r;
  r.status = header_status::absent;
  return r;
}

// --- X-Forwarded-For --------------------------------------------------------------------------

std::optional<address> forwarded_client(std::string_view header, const trusted_proxies& proxies) {
  if (trim(header).empty()) return std::nullopt;
  std::optional<address> leftmost;
  // From the right: each trusted entry is a proxy that vouches for the one before it.
  for (std::size_t end = header.size();;) {
    const auto comma = end == 0 ? std::string_view::npos : header.rfind(',', end - 1);
    const auto from = comma == std::string_view::npos ? 0 : comma + 1;
    const auto entry = parse_forwarded_entry(header.substr(from, end - from));
    if (!entry) return std::nullopt;
    const auto client = canonical(*entry);
    if (!proxies.trusts(client)) return client;
    leftmost = client;
    if (comma == std::string_view::npos) break;
    end = comma;
  }
  return leftmost;
}

}  // namespace roomcast::proxy
