// Which tables a SQL query reads, found by DuckDB's own parser (for DAG inference).
//
// The SQL is parsed, not bound: the tables need not exist. DuckDB serializes the parse tree
// (json_serialize_sql, built in) and the tree is walked for base-table references, with CTE
// names resolved as DuckDB does: a CTE is visible to the CTEs after it and to the query's body
// and subqueries; a non-recursive CTE's own name inside its body means the base table of that
// name; a WITH RECURSIVE CTE sees itself. Table functions (read_parquet(...), range(...)) are
// not tables and are left out. A quoted file name used as a table (FROM 'data.csv', DuckDB's
// replacement scan) is reported like a table, as written.
#pragma once

#include <cstddef>
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

}  // namespace respawn
