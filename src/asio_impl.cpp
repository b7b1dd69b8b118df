// Asio and Beast compiled once, here, instead of in every translation unit that includes them
// (BOOST_ASIO_SEPARATE_COMPILATION and BOOST_BEAST_SEPARATE_COMPILATION are set for the project).
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>
