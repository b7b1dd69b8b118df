// Asio's TLS support compiled once for the haproxy test (the project builds Asio separately:
// BOOST_ASIO_SEPARATE_COMPILATION; src/asio_impl.cpp compiles the rest, without OpenSSL).
#include <boost/asio/ssl/impl/src.hpp>
