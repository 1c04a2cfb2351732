#include "pipeline/expect.h"

#include <gtest/gtest.h>

#include "pipeline/check.h"
#include "sql/engine.h"
#include "util/testing.h"

namespace respawn {
namespace {

using Kind = Expectation::Kind;

std::string ParseError(std::string_view text) {
  Result<Expectation> e = ParseExpectation(text);
  EXPECT_FALSE(e.ok()) << text << " parsed";
  if (e.ok()) return "";
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  return e.status().message();
}

TEST(ExpectTest, ParsesEachForm) {
  ASSERT_OK_AND_ASSIGN(Expectation unique, ParseExpectation("unique(order_id)"));
  EXPECT_EQ(unique.kind, Kind::kUnique);
  EXPECT_EQ(unique.columns, std::vector<std::string>{"order_id"});
  EXPECT_EQ(unique.text, "unique(order_id)");

  ASSERT_OK_AND_ASSIGN(Expectation pair, ParseExpectation(" unique( a ,\"b c\" ) "));
  EXPECT_EQ(pair.columns, (std::vector<std::string>{"a", "b c"}));
  EXPECT_EQ(CanonicalExpectation(pair), "unique(a, b c)");

  ASSERT_OK_AND_ASSIGN(Expectation not_null, ParseExpectation("not_null(customer_id)"));
  EXPECT_EQ(not_null.kind, Kind::kNotNull);

  ASSERT_OK_AND_ASSIGN(Expectation rows, ParseExpectation("rows > 0"));
  EXPECT_EQ(rows.kind, Kind::kRowCount);
  EXPECT_EQ(rows.op, ">");
  EXPECT_EQ(rows.count, 0u);
  ASSERT_OK_AND_ASSIGN(Expectation exact, ParseExpectation("rows==12"));
  EXPECT_EQ(CanonicalExpectation(exact), "rows = 12");
  ASSERT_OK_AND_ASSIGN(Expectation differs, ParseExpectation("rows <> 3"));
  EXPECT_EQ(differs.op, "!=");

  ASSERT_OK_AND_ASSIGN(Expectation accepted,
                       ParseExpectation("accepted_values(status, ['new','paid', 'it''s'])"));
  EXPECT_EQ(accepted.kind, Kind::kAcceptedValues);
  EXPECT_EQ(accepted.columns, std::vector<std::string>{"status"});
  EXPECT_EQ(accepted.values, (std::vector<std::string>{"'new'", "'paid'", "'it''s'"}));
  ASSERT_OK_AND_ASSIGN(Expectation numbers,
                       ParseExpectation("accepted_values(n, [1, 2.5, -3, TRUE])"));
  EXPECT_EQ(numbers.values, (std::vector<std::string>{"1", "2.5", "-3", "true"}));
}

TEST(ExpectTest, RefusesWhatItCannotRead) {
  EXPECT_EQ(ParseError("uniqe(order_id)"),
            "unknown expectation \"uniqe\" (did you mean \"unique\"?); write unique(col, ...), "
            "not_null(col, ...), accepted_values(col, ['a', 'b']) or rows > N, or the query "
            "returning the violating rows in expect_sql");
  EXPECT_NE(ParseError("notnull(x)").find("(did you mean \"not_null\"?)"), std::string::npos);
  EXPECT_NE(ParseError("row > 0").find("(did you mean \"rows\"?)"), std::string::npos);
  EXPECT_NE(ParseError("rows > many").find("e.g. rows > 0"), std::string::npos);
  EXPECT_NE(ParseError("rows > -1").find("e.g. rows > 0"), std::string::npos);
  EXPECT_NE(ParseError("unique order_id").find("parentheses"), std::string::npos);
  EXPECT_NE(ParseError("unique()").find("unique(col)"), std::string::npos);
  EXPECT_NE(ParseError("unique(a) extra").find("unique(col)"), std::string::npos);
  EXPECT_NE(ParseError("not_null(1a)").find("not_null(col)"), std::string::npos);
  EXPECT_NE(ParseError("accepted_values(status, 'new')").find("accepted_values(col, ['a'"),
            std::string::npos);
  EXPECT_NE(ParseError("accepted_values(status, [new])").find("accepted_values(col"),
            std::string::npos);
  EXPECT_NE(ParseError("accepted_values(status, ['new)").find("accepted_values(col"),
            std::string::npos);
  EXPECT_NE(ParseError("").find("not an expectation"), std::string::npos);
}

TEST(ExpectTest, TranslatesEachFormToTheQueryOfItsViolations) {
  auto sql = [](std::string_view text) {
    Result<Expectation> e = ParseExpectation(text);
    EXPECT_OK(e.status());
    return e.ok() ? ViolationsSql(*e, "orders") : "";
  };
  EXPECT_EQ(sql("unique(id)"),
            "SELECT * FROM \"orders\" WHERE \"id\" IS NOT NULL QUALIFY count(*) OVER (PARTITION "
            "BY \"id\") > 1 ORDER BY ALL");
  EXPECT_EQ(sql("unique(a, b)"),
            "SELECT * FROM \"orders\" WHERE \"a\" IS NOT NULL AND \"b\" IS NOT NULL QUALIFY "
            "count(*) OVER (PARTITION BY \"a\", \"b\") > 1 ORDER BY ALL");
  EXPECT_EQ(sql("not_null(a, b)"), "SELECT * FROM \"orders\" WHERE \"a\" IS NULL OR \"b\" IS NULL");
  EXPECT_EQ(sql("rows >= 10"),
            "SELECT count(*) AS \"rows\" FROM \"orders\" HAVING NOT (count(*) >= 10)");
  EXPECT_EQ(sql("accepted_values(status, ['new', 'paid'])"),
            "SELECT * FROM \"orders\" WHERE \"status\" IS NOT NULL AND \"status\" NOT IN "
            "('new', 'paid')");
  Expectation free;
  free.text = "SELECT * FROM orders WHERE amount < 0";
  EXPECT_EQ(ViolationsSql(free, "orders"), free.text);
}

TEST(ExpectTest, IdChangesWithTheExpectationsAndSeverityOnly) {
  StageSpec stage;
  EXPECT_EQ(ExpectationsId(stage), "");
  stage.expectations.push_back(ParseExpectation("unique(id)").value());
  const std::string id = ExpectationsId(stage);
  EXPECT_EQ(id.size(), 16u);
  StageSpec respaced = stage;
  respaced.expectations[0] = ParseExpectation("unique( id )").value();
  EXPECT_EQ(ExpectationsId(respaced), id);  // the same test, written differently
  StageSpec warn = stage;
  warn.severity = Severity::kWarn;
  EXPECT_NE(ExpectationsId(warn), id);
  StageSpec more = stage;
  more.expectations.push_back(ParseExpectation("rows > 0").value());
  EXPECT_NE(ExpectationsId(more), id);
}

constexpr std::string_view kPipeline = R"toml(name = "orders"

[sources.raw]
sql = """
SELECT * FROM (VALUES (1, 'new', 10), (2, 'paid', 20), (2, 'lost', NULL), (3, NULL, 5))
  AS t(id, status, amount)
"""

[stages.orders]
sql = "SELECT * FROM raw"
expect = ["unique(id)", "not_null(amount)", "rows > 0", "rows < 2",
          "accepted_values(status, ['new', 'paid'])", "unique(status)"]
expect_sql = ["SELECT * FROM orders WHERE amount > 15", "SELECT * FROM orders WHERE amount < 0"]
)toml";

// The violations of the stage "orders" of `text`, computed on a fresh database.
Result<std::vector<ExpectationViolation>> Violations(std::string_view text) {
  ASSIGN_OR_RETURN(PipelineSpec spec, ParsePipelineString(text, "pipeline.toml", "/base"));
  ASSIGN_OR_RETURN(Dag dag, CheckPipeline(spec));
  ASSIGN_OR_RETURN(std::unique_ptr<Database> db, Database::Open());
  ASSIGN_OR_RETURN(std::unique_ptr<Connection> conn, db->Connect());
  for (int v : dag.TopologicalOrder()) {
    RETURN_IF_ERROR(conn->Execute("CREATE TABLE " + QuoteIdentifier(dag.node(v).name) + " AS " +
                                  RunnableSql(spec, dag, v)));
  }
  for (int v = 0; v < dag.size(); ++v) {
    if (dag.node(v).name == "orders") return CheckExpectations(spec, dag, v, *conn);
  }
  return NotFound("no stage orders");
}

TEST(ExpectTest, ChecksAStageAndShowsTheViolatingRows) {
  ASSERT_OK_AND_ASSIGN(std::vector<ExpectationViolation> v, Violations(kPipeline));
  ASSERT_EQ(v.size(), 5u);
  EXPECT_EQ(v[0].expectation, "unique(id)");
  EXPECT_EQ(v[0].line, 11);
  EXPECT_EQ(v[0].rows, 2u);
  EXPECT_EQ(v[0].message,
            "pipeline.toml:11: stage \"orders\": expect \"unique(id)\" failed: 2 rows violate it:\n"
            "  id | status | amount\n"
            "  ---+--------+-------\n"
            "  2  | lost   | NULL\n"
            "  2  | paid   | 20");
  EXPECT_EQ(v[1].expectation, "not_null(amount)");
  EXPECT_EQ(v[1].rows, 1u);
  EXPECT_EQ(v[2].expectation, "rows < 2");
  EXPECT_EQ(v[2].message,
            "pipeline.toml:11: stage \"orders\": expect \"rows < 2\" failed: the stage has 4 rows");
  EXPECT_EQ(v[3].expectation, "accepted_values(status, ['new', 'paid'])");
  EXPECT_EQ(v[3].line, 12);
  EXPECT_NE(v[3].message.find("failed: 1 row violates it:\n  id | status | amount\n"),
            std::string::npos)
      << v[3].message;
  // unique(status) holds: a NULL is not a duplicate.
  EXPECT_EQ(v[4].expectation, "expect_sql");
  EXPECT_EQ(v[4].line, 13);
  EXPECT_NE(v[4].message.find("stage \"orders\": expect_sql failed: 1 row violates it:"),
            std::string::npos);
}

TEST(ExpectTest, ShowsTheFirstTenOfManyViolatingRows) {
  ASSERT_OK_AND_ASSIGN(std::vector<ExpectationViolation> v, Violations(R"toml(name = "orders"
[stages.orders]
sql = "SELECT range AS id FROM range(25)"
expect_sql = "SELECT * FROM orders WHERE id >= 3 ORDER BY id"
)toml"));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].rows, 22u);
  EXPECT_NE(v[0].message.find("22 rows violate it (the first 10 shown):"), std::string::npos);
  EXPECT_TRUE(v[0].message.ends_with("\n  3\n  4\n  5\n  6\n  7\n  8\n  9\n  10\n  11\n  12"))
      << v[0].message;
}

TEST(ExpectTest, PipelineCheckFindsBadColumnsAndTables) {
  auto check = [](std::string_view expect) {
    std::string text = R"toml(name = "orders"
[sources.raw]
sql = "SELECT 1 AS order_id"
[stages.other]
sql = "SELECT 2 AS x"
[stages.orders]
sql = "SELECT * FROM raw"
)toml";
    text += std::string(expect) + "\n";
    Result<PipelineSpec> spec = ParsePipelineString(text, "pipeline.toml", "/base");
    EXPECT_OK(spec.status());
    if (!spec.ok()) return std::string();
    Result<Dag> dag = CheckPipeline(*spec);
    return dag.ok() ? std::string("OK") : dag.status().message();
  };
  EXPECT_EQ(check("expect = [\"unique(order_id)\"]"), "OK");
  EXPECT_EQ(check("expect = [\"unique(order_idd)\"]"),
            "pipeline.toml:8: stage \"orders\": expect \"unique(order_idd)\": Binder Error: "
            "Referenced column \"order_idd\" not found in FROM clause!\n"
            "  Candidate bindings: \"order_id\"");
  EXPECT_EQ(check("expect_sql = \"SELECT * FROM raw r WHERE r.order_id < 0\""), "OK");
  EXPECT_EQ(check("expect_sql = \"SELECT * FROM other\""),
            "pipeline.toml:8: stage \"orders\": expect_sql reads table \"other\"; an expectation "
            "may read only the stage and what it reads (orders, raw)");
  const std::string bad = check("expect_sql = \"SELECT nope FROM orders\"");
  EXPECT_EQ(bad.rfind("pipeline.toml:8: stage \"orders\": expect_sql: Binder Error: ", 0), 0u)
      << bad;
}

}  // namespace
}  // namespace respawn
