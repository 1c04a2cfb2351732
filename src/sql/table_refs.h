// Which tables a SQL query reads, found by DuckDB's own parser (for DAG inference).
//
// The SQL is parsed, not bound: the tables need not exist. DuckDB serializes the parse tree
// (json_serialize_sql, built in) and the tree is walked for base-table references, with CTE
// names resolved as DuckDB does: a CTE is visible to the CTEs after it and to the query's body
// and subqueries; a non-recursive CTE's own name inside its body means the base table of that
// name; a WITH RECURSIVE CTE sees itself. Table functions (read_parquet(...), range(...)) are
// not tables and are left out. A name with a '.' or '/' in it used as a table (FROM 'data.csv',
// DuckDB's replacement scan) is a file, not a table: FindFilesRead reports it, with the paths
// that file-reading table functions (read_parquet('plans.parquet'), read_csv([...]), glob(...))
// name.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sql/engine.h"
#include "util/status.h"

namespace respawn {

/// A base table named in a query, as written (unquoted; case preserved).
struct TableReference {
  std::string catalog;  // empty unless written (catalog.schema.table)
  std::string schema;   // empty unless written
  std::string table;
  size_t offset = 0;    // byte offset of the first reference in the SQL text

  /// The written parts joined by '.': "orders", "sales.orders", "db.sales.orders".
  std::string QualifiedName() const;
};

/// The distinct base tables `sql` reads (compared case-insensitively, as DuckDB resolves
/// names), ordered by their first reference in the text. `sql` may hold several SELECT
/// statements.
///
/// InvalidArgument with DuckDB's message for a syntax error, with "(line L, column C)" of the
/// error appended, and `*error_offset` (if given) set to its byte offset in `sql`.
/// InvalidArgument too for statements DuckDB cannot analyze: anything but SELECT (DDL, DML)
/// and PIVOT without an explicit IN list (it runs a query to find its columns).
Result<std::vector<TableReference>> FindTablesRead(Connection& conn, std::string_view sql,
                                                   std::optional<size_t>* error_offset = nullptr);

/// FindTablesRead's QualifiedName()s, in the same order (the shape of pipeline's
/// TableResolver).
Result<std::vector<std::string>> FindTableNamesRead(Connection& conn, std::string_view sql);

/// A file a query reads by name.
struct FileReference {
  /// The table function, lower case ("read_parquet", "read_csv", "glob", ...); "" for a file
  /// named as a table (FROM 'data.csv').
  std::string function;
  std::string path;          // as written; may be a glob
  size_t offset = SIZE_MAX;  // byte offset of the literal naming it (its opening quote)
};

/// The table functions whose first argument names the files they read: DuckDB's CSV, Parquet,
/// JSON, text and blob readers (and their metadata functions), and glob().
bool IsFileReadingFunction(std::string_view name);

/// The files `sql` reads by name, in text order (one per path; a list argument gives one per
/// string): the first argument of each file-reading table function and each file named as a
/// table. Errors as FindTablesRead's, and InvalidArgument when a file-reading function's first
/// argument is not a string literal or a list of them (a column, a parameter, an expression):
/// the files it reads cannot be known before it runs.
Result<std::vector<FileReference>> FindFilesRead(Connection& conn, std::string_view sql);

}  // namespace respawn
