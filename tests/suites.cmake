# ctest registration of the cross-module suites in tests/ (included from tests/CMakeLists.txt,
# which builds every tests/*_test.cc into a binary of the same name).
#
# Server fixtures: "radosgw" (Ceph RADOS Gateway, full S3 with put-if-absent), "swift"
# (OpenStack Swift s3api, no conditional PUT) and "postgres" (PostgreSQL 15, the commit
# coordinator). ctest runs `scripts/s3-server.sh start SERVER ${CMAKE_BINARY_DIR}/servers/SERVER`
# (`scripts/pg-server.sh start ...` for postgres) before the first test that requires the fixture
# and `stop` after the last one, also when only some tests are selected (`ctest -R conformance`)
# or run in parallel (`ctest -j4`). Tests that need a server get RESPAWN_TEST_S3_ENV_<SERVER>=
# <dir>/env (RESPAWN_TEST_PG_ENV=<dir>/env for postgres) in their environment (read it with
# tests/test_env.h).
#
# A suite declares the servers it needs with one line in its source, no CMake edit needed:
#   // respawn-test-servers: radosgw swift postgres  (tests/*_test.cc, GoogleTest, cases discovered)
#   # respawn-test-servers: radosgw               (tests/*_test.sh, run with bash)
# Suites without such a line run without servers. Shell suites also get RESPAWN_BINARY (the
# respawn executable) and RESPAWN_SOURCE_DIR.
#
# For hand-written registrations:
#   respawn_server_test(<ctest-test-name> SERVERS radosgw [swift] [postgres])
#   respawn_discover_server_tests(<gtest-target> SERVERS radosgw [swift] [postgres] [TEST_FILTER f]
#                                 [TEST_PREFIX p] [TIMEOUT s] [LABELS l...])

set(RESPAWN_SERVERS_DIR "${CMAKE_BINARY_DIR}/servers")
set(RESPAWN_S3_SERVERS radosgw swift)
set(RESPAWN_TEST_SERVERS ${RESPAWN_S3_SERVERS} postgres)
set(RESPAWN_S3_SERVER_SCRIPT "${PROJECT_SOURCE_DIR}/scripts/s3-server.sh")
set(RESPAWN_PG_SERVER_SCRIPT "${PROJECT_SOURCE_DIR}/scripts/pg-server.sh")
set(RESPAWN_SERVER_TEST_TIMEOUT 600)  # seconds per test (case) that uses a server

foreach(server IN LISTS RESPAWN_S3_SERVERS)
  add_test(NAME ${server}_start
           COMMAND "${RESPAWN_S3_SERVER_SCRIPT}" start ${server} "${RESPAWN_SERVERS_DIR}/${server}")
  set_tests_properties(${server}_start PROPERTIES FIXTURES_SETUP ${server} TIMEOUT 300
                                                  LABELS "servers")
  add_test(NAME ${server}_stop COMMAND "${RESPAWN_S3_SERVER_SCRIPT}" stop "${RESPAWN_SERVERS_DIR}/${server}")
  set_tests_properties(${server}_stop PROPERTIES FIXTURES_CLEANUP ${server} TIMEOUT 60
                                                 LABELS "servers")
endforeach()
add_test(NAME postgres_start
         COMMAND "${RESPAWN_PG_SERVER_SCRIPT}" start "${RESPAWN_SERVERS_DIR}/postgres")
set_tests_properties(postgres_start PROPERTIES FIXTURES_SETUP postgres TIMEOUT 120
                                               LABELS "servers")
add_test(NAME postgres_stop
         COMMAND "${RESPAWN_PG_SERVER_SCRIPT}" stop "${RESPAWN_SERVERS_DIR}/postgres")
set_tests_properties(postgres_stop PROPERTIES FIXTURES_CLEANUP postgres TIMEOUT 60
                                              LABELS "servers")

# The ENVIRONMENT entries that point a test at `servers`: RESPAWN_TEST_S3_ENV_<SERVER>=<dir>/env,
# RESPAWN_TEST_PG_ENV=<dir>/env for postgres.
function(respawn_server_env out_var)
  set(env)
  foreach(server IN LISTS ARGN)
    if(NOT server IN_LIST RESPAWN_TEST_SERVERS)
      message(FATAL_ERROR "unknown test server '${server}' (known: ${RESPAWN_TEST_SERVERS})")
    endif()
    if(server STREQUAL "postgres")
      list(APPEND env "RESPAWN_TEST_PG_ENV=${RESPAWN_SERVERS_DIR}/${server}/env")
      continue()
    endif()
    string(TOUPPER "${server}" upper)
    list(APPEND env "RESPAWN_TEST_S3_ENV_${upper}=${RESPAWN_SERVERS_DIR}/${server}/env")
  endforeach()
  set(${out_var} "${env}" PARENT_SCOPE)
endfunction()

# Makes an existing ctest test require the server fixtures and see their env files.
function(respawn_server_test test_name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "TIMEOUT" "SERVERS")
  if(NOT arg_SERVERS)
    message(FATAL_ERROR "respawn_server_test(${test_name}): SERVERS radosgw/swift/postgres needed")
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT ${RESPAWN_SERVER_TEST_TIMEOUT})
  endif()
  respawn_server_env(env ${arg_SERVERS})
  set_property(TEST ${test_name} APPEND PROPERTY FIXTURES_REQUIRED ${arg_SERVERS})
  set_property(TEST ${test_name} APPEND PROPERTY ENVIRONMENT ${env})
  set_property(TEST ${test_name} APPEND PROPERTY LABELS s3)
  set_property(TEST ${test_name} PROPERTY TIMEOUT ${arg_TIMEOUT})
endfunction()

# gtest_discover_tests whose cases require the server fixtures. One server list per call: call it
# again with another TEST_FILTER for cases that need other servers.
function(respawn_discover_server_tests target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "TEST_FILTER;TEST_PREFIX;TIMEOUT" "SERVERS;LABELS")
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT ${RESPAWN_SERVER_TEST_TIMEOUT})
  endif()
  set(extra)
  if(arg_TEST_FILTER)
    list(APPEND extra TEST_FILTER "${arg_TEST_FILTER}")
  endif()
  if(arg_TEST_PREFIX)
    list(APPEND extra TEST_PREFIX "${arg_TEST_PREFIX}")
  endif()
  set(properties TIMEOUT ${arg_TIMEOUT})
  if(arg_SERVERS)
    # gtest_discover_tests cannot carry a list-valued property (its argument parsing splits
    # "a\;b" into items), so the fixtures and the environment are set on the discovered cases
    # by a script ctest includes after the discovery's own (TEST_INCLUDE_FILES run in order).
    get_property(calls GLOBAL PROPERTY RESPAWN_SERVER_DISCOVERIES)
    if(NOT calls)
      set(calls 0)
    endif()
    math(EXPR calls "${calls} + 1")
    set_property(GLOBAL PROPERTY RESPAWN_SERVER_DISCOVERIES ${calls})
    set(list_var "${target}_SERVER_TESTS_${calls}")
    list(APPEND extra TEST_LIST ${list_var})
    respawn_server_env(env ${arg_SERVERS})
    set(script "${CMAKE_CURRENT_BINARY_DIR}/${list_var}.cmake")
    file(WRITE "${script}"
         "if(${list_var})\n"
         "  set_tests_properties(\${${list_var}} PROPERTIES\n"
         "                       FIXTURES_REQUIRED \"${arg_SERVERS}\" ENVIRONMENT \"${env}\")\n"
         "endif()\n")
    # One label per test: a list does not survive gtest_discover_tests' POST_BUILD command line
    # (its items land as separate properties). Cases that need a server are "s3", so that
    # `ctest -L s3` selects them all; select them further by name (-R conformance).
    set(arg_LABELS s3)
  endif()
  if(arg_LABELS)
    list(GET arg_LABELS 0 label)
    list(APPEND properties LABELS "${label}")
  endif()
  gtest_discover_tests(${target} ${extra} NO_PRETTY_VALUES DISCOVERY_TIMEOUT 60
                       PROPERTIES ${properties})
  if(arg_SERVERS)
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${script}")
  endif()
endfunction()

# The conformance suite: memory/posix cases need no server; each S3 backend's cases need theirs.
if(TARGET store_conformance_test)
  respawn_discover_server_tests(store_conformance_test TEST_PREFIX "store_conformance."
                                TEST_FILTER "*/memory:*/posix" TIMEOUT 300 LABELS conformance)
  foreach(server IN LISTS RESPAWN_S3_SERVERS)
    respawn_discover_server_tests(store_conformance_test TEST_PREFIX "store_conformance."
                                  TEST_FILTER "*/${server}" SERVERS ${server} TIMEOUT 600
                                  LABELS conformance)
  endforeach()
endif()

# Every other suite: servers from its "respawn-test-servers:" line.
file(GLOB respawn_suite_files CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/*_test.cc"
     "${CMAKE_CURRENT_SOURCE_DIR}/*_test.sh")
foreach(file IN LISTS respawn_suite_files)
  get_filename_component(name "${file}" NAME_WE)
  get_filename_component(ext "${file}" LAST_EXT)
  if(name STREQUAL "store_conformance_test")
    continue()
  endif()
  file(STRINGS "${file}" servers_line LIMIT_COUNT 1 REGEX "respawn-test-servers:")
  set(servers)
  if(servers_line)
    string(REGEX REPLACE ".*respawn-test-servers:[ \t]*" "" servers "${servers_line}")
    string(STRIP "${servers}" servers)
    string(REGEX REPLACE "[ \t,]+" ";" servers "${servers}")
  endif()
  string(REGEX REPLACE "_test$" "" short "${name}")
  if(ext STREQUAL ".cc")
    if(TARGET ${name})
      respawn_discover_server_tests(${name} TEST_PREFIX "${short}." SERVERS ${servers}
                                    LABELS suite)
    endif()
  else()
    add_test(NAME ${short} COMMAND bash "${file}")
    set_property(TEST ${short} APPEND PROPERTY ENVIRONMENT
                 "RESPAWN_BINARY=$<TARGET_FILE:respawn>" "RESPAWN_SOURCE_DIR=${PROJECT_SOURCE_DIR}")
    set_property(TEST ${short} PROPERTY LABELS suite)
    if(servers)
      respawn_server_test(${short} SERVERS ${servers})
    else()
      set_property(TEST ${short} PROPERTY TIMEOUT ${RESPAWN_SERVER_TEST_TIMEOUT})
    endif()
  endif()
endforeach()
