// The embedded engine: a thin RAII layer over DuckDB's C API (DuckDB 1.4.4).
//
// DuckDB reports failure as duckdb_state plus an error type and message; this layer converts it
// to Status exactly once (engine.cc, SqlErrorToStatus), so nothing above src/sql/ sees a
// duckdb_state. The codes:
//   InvalidArgument    the SQL is wrong: parser, syntax, binder and catalog errors (unknown
//                      table or column), type mismatches, failed casts, constraint violations
//   Aborted            the query was interrupted (Connection::Interrupt), or a transaction
//                      conflict ("Conflict on update"): retry the whole transaction
//   FailedPrecondition I/O errors (missing file, disk full), out of memory
//   PermissionDenied   DuckDB refused file access
//   Unimplemented      a feature DuckDB lacks here (not implemented, missing extensions: the
//                      engine runs offline with its built-in parquet, json and icu only)
//   Internal           anything else (DuckDB internal and fatal errors)
// The Status message is DuckDB's message (which names the table or column and shows the line
// and a caret under the position), with a hint appended for some codes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "duckdb.h"
#include "sql/query_result.h"
#include "sql/sql_type.h"
#include "util/status.h"

namespace respawn {

/// The DuckDB version linked in, e.g. "v1.4.4" (duckdb_library_version()).
std::string EngineVersion();

struct DatabaseOptions {
  /// Empty (or ":memory:") for an in-memory database, else the path of a database file.
  std::string path;
  /// Absolute directory where DuckDB spills to disk and where respawn stages Parquet files
  /// (exports, the default import cache). Created if missing; never removed by respawn.
  /// Empty: a fresh directory "$TMPDIR/respawn-duckdb-<pid>-XXXXXX" ("/tmp" without TMPDIR),
  /// created by Open and removed with its contents when the Database is destroyed (and by a
  /// later Open if this process is killed first: the owner holds an flock on it). Each
  /// Database gets its own: DuckDB names its spill files the same in every instance.
  std::string temp_directory;
  /// DuckDB's memory_limit in bytes. 0: 40% of the memory this process may use (physical RAM,
  /// or the cgroup limit when lower). Not more by default because DuckDB's RSS can reach about
  /// twice its limit, and the process needs memory besides DuckDB (uploads, buffers).
  uint64_t memory_limit_bytes = 0;
  /// Worker threads of the database. 0: DuckDB's default (one per core).
  int threads = 0;
  /// Further DuckDB settings (name, value) applied when the database is opened, after respawn's
  /// own (which they may override). An unknown name is InvalidArgument.
  std::vector<std::pair<std::string, std::string>> settings;
};

/// Progress of the query running on a Connection.
struct QueryProgress {
  double percentage = -1;  // 0..100, or -1 when unknown (no query, or not estimable)
  uint64_t rows_processed = 0;
  uint64_t total_rows_to_process = 0;
};

class Connection;

/// One DuckDB database instance.
///
/// Always set: autoinstall_known_extensions=false and autoload_known_extensions=false (no
/// network), an absolute temp_directory, memory_limit, threads.
///
/// Thread-safety: Connect() may be called from any thread. REQUIRES: every Connection is
/// destroyed before its Database.
class Database {
 public:
  static Result<std::unique_ptr<Database>> Open(const DatabaseOptions& options = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  /// A new connection (with its own transaction state).
  Result<std::unique_ptr<Connection>> Connect();

  /// Absolute; exists while the Database lives.
  const std::string& temp_directory() const { return temp_directory_; }
  uint64_t memory_limit_bytes() const { return memory_limit_bytes_; }

 private:
  friend class Connection;
  Database() = default;

  duckdb_database db_ = nullptr;
  std::string temp_directory_;
  bool owns_temp_directory_ = false;  // created by Open: removed by the destructor
  int lock_fd_ = -1;  // flock held on <temp_directory_>/.owner-lock while this Database lives
  uint64_t memory_limit_bytes_ = 0;
  std::atomic<int> open_connections_{0};
};

/// A session on a Database.
///
/// Thread-safety: a Connection is used by one thread at a time (DuckDB crashes when a
/// connection runs statements from two threads). Open one Connection per thread. The exceptions
/// are Interrupt() and Progress(), which other threads may call while a statement runs.
class Connection {
 public:
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs `sql` and returns all rows of the result of its last statement. Without `params`,
  /// `sql` may hold several statements separated by ';'. With `params`, `sql` is one statement
  /// whose placeholders ($1, ? ...) take the params in order.
  Result<QueryResult> Query(std::string_view sql, const std::vector<Value>& params = {});
  /// Runs `sql` (as Query) without reading its rows.
  Status Execute(std::string_view sql, const std::vector<Value>& params = {});
  /// The single value of a query returning one row of one column; InvalidArgument otherwise.
  Result<Value> QueryScalar(std::string_view sql, const std::vector<Value>& params = {});
  /// The columns the one statement `sql` would return, with their exact DuckDB types, without
  /// running it (DuckDB prepares it; binding reads the schemas of the tables and files it names).
  /// A type the C API does not describe (TIME_NS) has the id "" (SqlType::IsDescribed).
  /// Errors as Query's; Unimplemented for a type outside SqlType's list.
  Result<std::vector<TypedColumn>> Describe(std::string_view sql);

  /// Asks the running statement to stop; it then fails with Aborted within milliseconds and the
  /// connection stays usable. Does nothing when no statement runs (the next one is not
  /// affected). Safe to call from any thread while the Connection lives.
  void Interrupt();
  /// Progress of the running statement. Safe to call from any thread while the Connection lives.
  QueryProgress Progress();

  Database& database() const { return *database_; }

 private:
  friend class Database;
  Connection(Database* database, duckdb_connection connection)
      : database_(database), connection_(connection) {}

  Database* database_;
  duckdb_connection connection_;
};

/// `name` as a double-quoted SQL identifier ("my ""table"""). One identifier: a schema-qualified
/// name is quoted part by part by the caller.
std::string QuoteIdentifier(std::string_view name);
/// `text` as a single-quoted SQL string literal ('it''s').
std::string QuoteLiteral(std::string_view text);

}  // namespace respawn
