# ROOMCAST_SANITIZE=address,undefined | thread — applied to every target of the project.
if(ROOMCAST_SANITIZE)
  add_compile_options(-fsanitize=${ROOMCAST_SANITIZE} -fno-omit-frame-pointer -g)
  if(ROOMCAST_SANITIZE STREQUAL "thread")
    # g++ warns that TSan does not model std::atomic_thread_fence (used inside Asio); the
    # tests are what tell whether a race exists.
    add_compile_options(-Wno-tsan)
  endif()
  add_link_options(-fsanitize=${ROOMCAST_SANITIZE})
  if(ROOMCAST_SANITIZE MATCHES "undefined")
    # Make UBSan findings fail the test instead of only printing.
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()
