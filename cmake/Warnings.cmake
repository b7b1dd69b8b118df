# roomcast_warnings: an interface target carrying the project's warning flags, so that third-party
# code (Boost headers are system headers) stays quiet while ours is held to -Wall -Wextra -Wpedantic.
add_library(roomcast_warnings INTERFACE)
target_compile_options(roomcast_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
                                                   -Wno-sign-conversion
                                                   # g++ 12 false positive on Asio's awaitable
                                                   # frame operator new/delete pair at -O2
                                                   -Wno-mismatched-new-delete
                                                   # designated initializers that leave fields
                                                   # at their defaults are intended
                                                   -Wno-missing-field-initializers)
