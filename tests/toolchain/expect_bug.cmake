# Runs one reproduction of a g++ 12 bug and passes only when the bug shows: the program fails and
# its output matches EXPECT. When it runs clean, this compiler no longer has the bug, and the rule
# in docs/architecture.md that avoids it can go.
#   cmake -DREPRO=<executable> -DEXPECT=<regex> -P expect_bug.cmake
execute_process(COMMAND "${REPRO}" RESULT_VARIABLE result OUTPUT_VARIABLE output
                ERROR_VARIABLE output)
if(result EQUAL 0)
  message(FATAL_ERROR "${REPRO} ran clean: this compiler no longer has the bug it reproduces; "
                      "the rule in docs/architecture.md that avoids it can go.\n${output}")
endif()
if(NOT output MATCHES "${EXPECT}")
  message(FATAL_ERROR "${REPRO} failed (${result}) but not with '${EXPECT}':\n${output}")
endif()
message(STATUS "${REPRO} failed as expected (${result}): '${EXPECT}'")
