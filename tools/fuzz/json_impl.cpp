// Boost.JSON compiled into the fuzz targets, with their instrumentation (instead of linking
// Debian's uninstrumented libboost_json; see docs/fuzzing.md).
#include <boost/json/src.hpp>
