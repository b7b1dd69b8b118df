#pragma once
/** @file
 * Short names for the Asio and Beast namespaces, used by the few translation units that touch
 * sockets. Headers of the plain modules (protocol, rules, config, http) do not include this.
 */
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/system/error_code.hpp>

namespace roomcast {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using boost::system::error_code;

/** Completion token for operations whose failure is an expected outcome: the coroutine receives
 * `std::tuple<error_code, T...>` instead of an exception, and branches on the error code. */
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

}  // namespace roomcast
