// DuckDB's error messages about a node's SQL, restated in the pipeline file's terms.
//
// DuckDB numbers lines and columns within the statement it was sent, prints the offending line
// under the message with a caret, and names the tables a check binds against by what they are
// inside DuckDB (a VALUES list standing in for an input). A user reads the pipeline file, so:
// line numbers become the file's lines, a column on the SQL's first line counts from the start of
// the file's line, the "LINE n:" block stays on its own lines (indented, so the CLI prints it
// under the message), and a stand-in table is called a table.
#pragma once

#include <string>
#include <string_view>

namespace respawn {

/// Where a node's SQL text sits in the pipeline file.
struct SqlPlacement {
  int line = 0;    ///< line of the text's first character; 0 when unknown
  int column = 1;  ///< column (code points, 1-based) of that character
  /// Lines sent in front of the node's SQL in the statement DuckDB numbered (a wrapper such as
  /// `COPY (` on its own line); DuckDB's line n is the SQL's line n - lines_before.
  int lines_before = 0;
};

struct PlacedSqlError {
  int line = 0;         ///< the file line the error points at (the SQL's first line if none)
  std::string message;  ///< the first line, then indented continuation lines ("\n  ...")
};

/// Restates `message`, DuckDB's text for an error in SQL placed at `where`:
/// - "LINE n: <text>" and its caret line: n becomes the file's line (the caret moves with it),
///   and the block is indented under the message;
/// - "(line l, column c)" (a parser position): the file's line and column;
/// - "Values list \"t\"": "table \"t\"".
/// Any other line break in the message starts an indented continuation line.
PlacedSqlError PlaceSqlError(std::string_view message, const SqlPlacement& where);

}  // namespace respawn
