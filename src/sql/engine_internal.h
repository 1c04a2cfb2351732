// Internal to src/sql/: the one place DuckDB's C API failures become Status, and the reader that
// turns a duckdb_result into a QueryResult.
#pragma once

#include <string>
#include <string_view>

#include "duckdb.h"
#include "sql/query_result.h"
#include "sql/sql_type.h"
#include "util/status.h"

namespace respawn::sql_internal {

/// The Status for a DuckDB error of `type` with DuckDB's `message` (mapping in engine.h).
Status SqlErrorToStatus(duckdb_error_type type, std::string_view message);

/// The error type named by the "<Type> Error: " prefix DuckDB puts on its messages, for the C API
/// calls that return a message without a type (duckdb_prepare_error, duckdb_open_ext).
/// DUCKDB_ERROR_INVALID when no known prefix is there.
duckdb_error_type ErrorTypeOfMessage(std::string_view message);

/// A copy of a string DuckDB allocated, which it frees (duckdb_free); "" for nullptr.
inline std::string TakeString(char* s) {
  if (s == nullptr) return "";
  std::string out(s);
  duckdb_free(s);
  return out;
}

/// Reads every chunk of a successful `result` (duckdb_fetch_chunk). Unimplemented for a column
/// type it cannot decode (BIT, BIGNUM), naming the column and suggesting a cast to VARCHAR.
Result<QueryResult> MaterializeResult(duckdb_result* result);

/// The SqlType of a DuckDB logical type (sql_type.cc). Unimplemented for types SqlType does not
/// list (ANY, INVALID and other internal ones).
Result<SqlType> SqlTypeOf(duckdb_logical_type type);

}  // namespace respawn::sql_internal
