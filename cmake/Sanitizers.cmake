# ROOMCAST_SANITIZE=address,undefined | thread — applied to every target of the project.
if(ROOMCAST_SANITIZE)
  add_compile_options(-fsanitize=${ROOMCAST_SANITIZE} -fno-omit-frame-pointer -g)
  add_link_options(-fsanitize=${ROOMCAST_SANITIZE})
  if(ROOMCAST_SANITIZE MATCHES "undefined")
    # Make UBSan findings fail the test instead of only printing.
    add_compile_options(-fno-sanitize-recover=undefined)
  endif()
endif()
