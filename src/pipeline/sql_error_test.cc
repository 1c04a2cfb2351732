#include "pipeline/sql_error.h"

#include <gtest/gtest.h>

namespace respawn {
namespace {

TEST(SqlErrorTest, LineBlockBecomesTheFilesLineIndentedUnderTheMessage) {
  // The SQL starts on file line 8; DuckDB numbered the statement, which had one line in front.
  PlacedSqlError e = PlaceSqlError(
      "Binder Error: Referenced column \"x\" not found in FROM clause!\n"
      "Candidate bindings: \"y\"\n\nLINE 3: SELECT x FROM t\n               ^",
      {.line = 8, .column = 1, .lines_before = 1});
  EXPECT_EQ(e.line, 9);
  EXPECT_EQ(e.message,
            "Binder Error: Referenced column \"x\" not found in FROM clause!\n"
            "  Candidate bindings: \"y\"\n"
            "  LINE 9: SELECT x FROM t\n"
            "                 ^");
}

TEST(SqlErrorTest, CaretMovesWhenTheLineNumberGrowsOrShrinks) {
  PlacedSqlError longer =
      PlaceSqlError("E\n\nLINE 2: SELECT x\n               ^", {.line = 120, .column = 1});
  EXPECT_EQ(longer.line, 121);
  EXPECT_EQ(longer.message, "E\n  LINE 121: SELECT x\n                   ^");
  PlacedSqlError shorter = PlaceSqlError("E\n\nLINE 12: SELECT x\n                ^",
                                         {.line = 1, .column = 1, .lines_before = 10});
  EXPECT_EQ(shorter.line, 2);
  EXPECT_EQ(shorter.message, "E\n  LINE 2: SELECT x\n                 ^");
}

TEST(SqlErrorTest, ParserPositionCountsFromTheFilesLineAndColumn) {
  // sql = '''SELECT 1 +''' on line 3: the text starts at column 10.
  PlacedSqlError first_line = PlaceSqlError(
      "Parser Error: syntax error at end of input (line 1, column 11)", {.line = 3, .column = 10});
  EXPECT_EQ(first_line.line, 3);
  EXPECT_EQ(first_line.message, "Parser Error: syntax error at end of input (line 3, column 20)");
  // Further down, columns are the file's already.
  PlacedSqlError later =
      PlaceSqlError("Parser Error: syntax error at or near \"FROM\" (line 3, column 4)",
                    {.line = 6, .column = 1});
  EXPECT_EQ(later.line, 8);
  EXPECT_EQ(later.message, "Parser Error: syntax error at or near \"FROM\" (line 8, column 4)");
}

TEST(SqlErrorTest, StandInTablesAreCalledTables) {
  PlacedSqlError e = PlaceSqlError(
      "Binder Error: Values list \"u\" does not have a column named \"idd\"\n\nLINE 6: SELECT "
      "u.idd FROM u\n               ^",
      {.line = 1, .column = 1});
  EXPECT_EQ(e.message,
            "Binder Error: table \"u\" does not have a column named \"idd\"\n"
            "  LINE 6: SELECT u.idd FROM u\n"
            "                 ^");
}

TEST(SqlErrorTest, UnknownPlacementOrNumbersLeaveTheTextAlone) {
  PlacedSqlError unplaced =
      PlaceSqlError("E (line 2, column 3)\n\nLINE 2: x\n        ^", {.line = 0, .column = 1});
  EXPECT_EQ(unplaced.line, 0);
  EXPECT_EQ(unplaced.message, "E (line 2, column 3)\n  LINE 2: x\n          ^");
  // A line DuckDB counts inside the wrapper in front of the SQL: not the file's.
  PlacedSqlError wrapper =
      PlaceSqlError("E\nLINE 1: COPY (\n        ^", {.line = 5, .column = 1, .lines_before = 1});
  EXPECT_EQ(wrapper.line, 5);
  EXPECT_EQ(wrapper.message, "E\n  LINE 1: COPY (\n          ^");
  // Huge or malformed numbers never wrap around.
  PlacedSqlError huge =
      PlaceSqlError("E (line 99999999999999999999, column 1)", {.line = 5, .column = 1});
  EXPECT_EQ(huge.line, 5);
  EXPECT_EQ(huge.message, "E (line 99999999999999999999, column 1)");
  EXPECT_EQ(PlaceSqlError("one line", {.line = 2}).message, "one line");
}

}  // namespace
}  // namespace respawn
