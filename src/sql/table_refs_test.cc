#include "sql/table_refs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "util/testing.h"

namespace respawn {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class TableRefsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DatabaseOptions options;
    options.threads = 1;
    db_ = std::move(Database::Open(options)).value();
    conn_ = std::move(db_->Connect()).value();
  }

  std::vector<std::string> Names(const std::string& sql) {
    Result<std::vector<std::string>> names = FindTableNamesRead(*conn_, sql);
    EXPECT_OK(names) << sql;
    return names.ok() ? *names : std::vector<std::string>{"<error>"};
  }

  std::unique_ptr<Database> db_;
  std::unique_ptr<Connection> conn_;
};

TEST_F(TableRefsTest, SimpleAndJoins) {
  EXPECT_THAT(Names("SELECT * FROM orders"), ElementsAre("orders"));
  EXPECT_THAT(Names("SELECT o.id, c.name FROM orders o JOIN customers c ON o.cid = c.id "
                    "LEFT JOIN regions r USING (region_id), products"),
              ElementsAre("orders", "customers", "regions", "products"));
  EXPECT_THAT(Names("SELECT 1"), IsEmpty());
  EXPECT_THAT(Names(""), IsEmpty());
  EXPECT_THAT(Names("FROM orders"), ElementsAre("orders"));  // DuckDB's FROM-first
}

TEST_F(TableRefsTest, SubqueriesEverywhere) {
  EXPECT_THAT(Names("SELECT *, (SELECT max(x) FROM t_scalar) FROM (SELECT * FROM t_from) s "
                    "WHERE id IN (SELECT id FROM t_in) AND EXISTS (SELECT 1 FROM t_exists) "
                    "GROUP BY ALL HAVING count(*) > (SELECT count(*) FROM t_having)"),
              ElementsAre("t_scalar", "t_from", "t_in", "t_exists", "t_having"));
  EXPECT_THAT(Names("SELECT * FROM a, LATERAL (SELECT * FROM b WHERE b.x = a.x) l"),
              ElementsAre("a", "b"));
}

TEST_F(TableRefsTest, SetOperations) {
  EXPECT_THAT(Names("SELECT x FROM a UNION ALL SELECT x FROM b EXCEPT SELECT x FROM c "
                    "INTERSECT SELECT x FROM d"),
              ElementsAre("a", "b", "c", "d"));
  EXPECT_THAT(Names("SELECT * FROM a UNION BY NAME SELECT * FROM a"), ElementsAre("a"));
}

TEST_F(TableRefsTest, CtesAreNotTables) {
  EXPECT_THAT(Names("WITH recent AS (SELECT * FROM orders WHERE day > '2024-01-01'), "
                    "big AS (SELECT * FROM recent WHERE amount > 100) "
                    "SELECT * FROM big JOIN customers USING (cid)"),
              ElementsAre("orders", "customers"));
  // CTE names are case-insensitive, like every DuckDB identifier.
  EXPECT_THAT(Names("WITH Recent AS (SELECT * FROM orders) SELECT * FROM RECENT"),
              ElementsAre("orders"));
  // A CTE in a subquery is scoped to it: outside, the name is a table again.
  EXPECT_THAT(Names("SELECT * FROM (WITH x AS (SELECT * FROM a) SELECT * FROM x) s, x"),
              ElementsAre("a", "x"));
  // A non-recursive CTE's own name inside its body is the base table (DuckDB binds it so).
  EXPECT_THAT(Names("WITH orders AS (SELECT * FROM orders WHERE ok) SELECT * FROM orders"),
              ElementsAre("orders"));
  EXPECT_THAT(Names("WITH t AS (SELECT * FROM t) SELECT * FROM u"), ElementsAre("t", "u"));
  // A CTE is not visible to the CTEs before it.
  EXPECT_THAT(Names("WITH b AS (SELECT * FROM a), a AS (SELECT 1) SELECT * FROM b"),
              ElementsAre("a"));
  // A recursive CTE sees itself.
  EXPECT_THAT(Names("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
                    "SELECT * FROM r JOIN seed ON true"),
              ElementsAre("seed"));
  // Materialized CTEs and CTEs used from expressions.
  EXPECT_THAT(Names("WITH m AS MATERIALIZED (SELECT * FROM src) "
                    "SELECT (SELECT count(*) FROM m), * FROM other WHERE id IN (FROM m)"),
              ElementsAre("src", "other"));
}

TEST_F(TableRefsTest, QuotedAndQualifiedNames) {
  EXPECT_THAT(Names("SELECT * FROM \"Order Lines\" JOIN \"weird\"\"name\" ON true"),
              ElementsAre("Order Lines", "weird\"name"));
  EXPECT_THAT(Names("SELECT * FROM sales.orders, db.main.customers, Orders2"),
              ElementsAre("sales.orders", "db.main.customers", "Orders2"));
  Result<std::vector<TableReference>> refs =
      FindTablesRead(*conn_, "SELECT * FROM db.sales.orders");
  ASSERT_OK(refs);
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_EQ((*refs)[0].catalog, "db");
  EXPECT_EQ((*refs)[0].schema, "sales");
  EXPECT_EQ((*refs)[0].table, "orders");
  // A qualified name never matches a CTE.
  EXPECT_THAT(Names("WITH orders AS (SELECT 1) SELECT * FROM main.orders, orders"),
              ElementsAre("main.orders"));
}

TEST_F(TableRefsTest, TableFunctionsAreNotTables) {
  EXPECT_THAT(Names("SELECT * FROM read_parquet('data/*.parquet') p JOIN dims d ON p.k = d.k, "
                    "range(10), generate_series(1, 3), read_csv('x.csv')"),
              ElementsAre("dims"));
  EXPECT_THAT(Names("SELECT * FROM unnest([1, 2]) JOIN t ON true"), ElementsAre("t"));
}

TEST_F(TableRefsTest, DistinctInOrderOfFirstReferenceWithOffsets) {
  std::string sql = "SELECT * FROM b JOIN a ON true\nJOIN B ON true, a";
  Result<std::vector<TableReference>> refs = FindTablesRead(*conn_, sql);
  ASSERT_OK(refs);
  ASSERT_EQ(refs->size(), 2u);
  EXPECT_EQ((*refs)[0].table, "b");
  EXPECT_EQ((*refs)[0].offset, sql.find(" b ") + 1);
  EXPECT_EQ((*refs)[1].table, "a");
  EXPECT_EQ((*refs)[1].offset, sql.find(" a ") + 1);
  // Offsets are in bytes of the UTF-8 text.
  std::string utf8 = "SELECT 'é→' AS x FROM t1";
  refs = FindTablesRead(*conn_, utf8);
  ASSERT_OK(refs);
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_EQ((*refs)[0].offset, utf8.find("t1"));
}

TEST_F(TableRefsTest, SeveralStatements) {
  EXPECT_THAT(Names("SELECT * FROM a; SELECT * FROM b"), ElementsAre("a", "b"));
}

TEST_F(TableRefsTest, PivotWithExplicitValues) {
  EXPECT_THAT(Names("SELECT * FROM (PIVOT sales ON region IN ('eu', 'us') USING sum(amount))"),
              ElementsAre("sales"));
}

TEST_F(TableRefsTest, SyntaxErrorGivesMessageAndPosition) {
  std::string sql = "SELECT a,\n  b FROM t\nWHERE x = = 1";
  std::optional<size_t> offset;
  Result<std::vector<TableReference>> refs = FindTablesRead(*conn_, sql, &offset);
  ASSERT_EQ(refs.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(refs.status().message(), HasSubstr("syntax error at or near \"=\""));
  ASSERT_TRUE(offset.has_value());
  EXPECT_EQ(*offset, sql.find("= 1"));
  EXPECT_THAT(refs.status().message(), HasSubstr("line 3, column 11"));

  EXPECT_EQ(FindTableNamesRead(*conn_, "SELECT * FORM t").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(TableRefsTest, StatementsDuckDbCannotAnalyze) {
  for (const char* sql : {"CREATE TABLE x AS SELECT * FROM a", "INSERT INTO x SELECT * FROM a",
                          "PIVOT sales ON region USING sum(amount)"}) {
    std::optional<size_t> offset;
    Result<std::vector<TableReference>> refs = FindTablesRead(*conn_, sql, &offset);
    EXPECT_EQ(refs.status().code(), StatusCode::kInvalidArgument) << sql;
    EXPECT_THAT(refs.status().message(), HasSubstr("SELECT")) << sql;
    EXPECT_FALSE(offset.has_value());
  }
}

TEST_F(TableRefsTest, TablesNeedNotExistAndTheConnectionIsUntouched) {
  EXPECT_THAT(Names("SELECT * FROM never_created"), ElementsAre("never_created"));
  EXPECT_FALSE(conn_->Execute("SELECT * FROM never_created").ok());
  EXPECT_OK(conn_->Execute("SELECT 1"));
}

TEST_F(TableRefsTest, FilesReadByName) {
  const std::string sql =
      "SELECT * FROM read_parquet('plans.parquet') p JOIN 'data.csv' d USING (id), "
      "read_csv(['a.csv', 'b/*.csv'], header = true), range(3), orders\n"
      "WHERE id IN (SELECT id FROM \"sub/x.json\" UNION SELECT 1 FROM glob('in/*.txt'))";
  ASSERT_OK_AND_ASSIGN(std::vector<FileReference> files, FindFilesRead(*conn_, sql));
  std::vector<std::string> got;
  for (const FileReference& f : files) {
    got.push_back(f.function + ":" + f.path);
    ASSERT_LT(f.offset, sql.size()) << f.path;
    // The offset is the literal's opening quote.
    EXPECT_EQ(sql.substr(f.offset + 1, f.path.size()), f.path);
  }
  EXPECT_THAT(got, ElementsAre("read_parquet:plans.parquet", ":data.csv", "read_csv:a.csv",
                               "read_csv:b/*.csv", ":sub/x.json", "glob:in/*.txt"));
  // Files are not tables.
  EXPECT_THAT(Names(sql), ElementsAre("orders"));
  EXPECT_THAT(Names("SELECT * FROM main.orders, \"x.csv\""), ElementsAre("main.orders"));
}

TEST_F(TableRefsTest, FilesNotNamedByLiteralsAreRefused) {
  for (const char* sql :
       {"SELECT * FROM read_csv('a' || '.csv')", "SELECT * FROM read_parquet($1)",
        "SELECT * FROM read_json(t.path), t", "SELECT * FROM read_csv(['a.csv', lower('B')])"}) {
    Result<std::vector<FileReference>> files = FindFilesRead(*conn_, sql);
    EXPECT_EQ(files.status().code(), StatusCode::kInvalidArgument) << sql;
    EXPECT_THAT(files.status().message(), HasSubstr("declare a [sources.")) << sql;
    EXPECT_THAT(files.status().message(), HasSubstr("line 1, column 15")) << sql;
  }
  // Functions that read no files take any argument.
  Result<std::vector<FileReference>> none =
      FindFilesRead(*conn_, "SELECT * FROM range(1 + 2), generate_series(1, 3)");
  ASSERT_OK(none);
  EXPECT_THAT(*none, IsEmpty());
}

}  // namespace
}  // namespace respawn
