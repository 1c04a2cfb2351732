# Finds DuckDB's C API (libduckdb.so + duckdb.h) under DUCKDB_ROOT and defines DuckDB::duckdb.
find_path(DUCKDB_INCLUDE_DIR duckdb.h HINTS "${DUCKDB_ROOT}/include" NO_DEFAULT_PATH)
find_library(DUCKDB_LIBRARY duckdb HINTS "${DUCKDB_ROOT}/lib" NO_DEFAULT_PATH)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(DuckDB
  REQUIRED_VARS DUCKDB_LIBRARY DUCKDB_INCLUDE_DIR
  FAIL_MESSAGE "DuckDB not found under DUCKDB_ROOT=${DUCKDB_ROOT}: run scripts/setup.sh")
if(DuckDB_FOUND AND NOT TARGET DuckDB::duckdb)
  add_library(DuckDB::duckdb SHARED IMPORTED)
  set_target_properties(DuckDB::duckdb PROPERTIES
    IMPORTED_LOCATION "${DUCKDB_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${DUCKDB_INCLUDE_DIR}")
  # Binaries find libduckdb.so without LD_LIBRARY_PATH.
  get_filename_component(_duckdb_libdir "${DUCKDB_LIBRARY}" DIRECTORY)
  set(CMAKE_BUILD_RPATH "${CMAKE_BUILD_RPATH};${_duckdb_libdir}")
  set(CMAKE_INSTALL_RPATH "${CMAKE_INSTALL_RPATH};${_duckdb_libdir}")
endif()
