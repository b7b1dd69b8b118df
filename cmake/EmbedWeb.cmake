# roomcast_embed_web(TARGET DIR): compiles every file under DIR into TARGET as a byte array, so the
# binary alone serves the browser client. Each file also gets a content hash used as its ETag.
# The generated source is rebuilt whenever a file under DIR changes (or one is added: the glob
# is re-checked at build time through CONFIGURE_DEPENDS).
set(ROOMCAST_EMBED_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/embed_files.cmake")

function(roomcast_embed_web target dir)
  file(GLOB_RECURSE files CONFIGURE_DEPENDS LIST_DIRECTORIES false "${dir}/*")
  list(SORT files)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/embedded_web.cpp")
  string(REPLACE ";" "|" file_arg "${files}")
  add_custom_command(
    OUTPUT "${out}"
    COMMAND "${CMAKE_COMMAND}" "-DROOT=${dir}" "-DFILES=${file_arg}" "-DOUT=${out}" -P
            "${ROOMCAST_EMBED_SCRIPT}"
    DEPENDS ${files} "${ROOMCAST_EMBED_SCRIPT}"
    COMMENT "Embedding the web client (${dir})"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()
