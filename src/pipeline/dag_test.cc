#include "pipeline/dag.h"

#include <gtest/gtest.h>

#include <map>

namespace respawn {
namespace {

// Answers from a table keyed by the exact SQL; unknown SQL is a "syntax error".
class FakeResolver {
 public:
  FakeResolver& On(std::string sql, std::vector<std::string> tables) {
    answers_[std::move(sql)] = std::move(tables);
    return *this;
  }
  TableResolver Get() const {
    return [this](std::string_view sql) -> Result<std::vector<std::string>> {
      auto it = answers_.find(std::string(sql));
      if (it == answers_.end()) {
        return InvalidArgument("Parser Error: syntax error at or near \"" + std::string(sql) +
                               "\"");
      }
      return it->second;
    };
  }

 private:
  std::map<std::string, std::vector<std::string>> answers_;
};

PipelineSpec MustParse(std::string_view text) {
  Result<PipelineSpec> r = ParsePipelineString(text, "pipeline.toml", "/base");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(r).value() : PipelineSpec{};
}

std::vector<std::string> Names(const Dag& dag, const std::vector<int>& nodes) {
  std::vector<std::string> out;
  for (int n : nodes) out.push_back(dag.node(n).name);
  return out;
}

constexpr std::string_view kDiamond = R"toml(name = "p"
[sources.orders]
path = "o.csv"
[stages.clean]
sql = "q_clean"
[stages.by_day]
sql = "q_by_day"
[stages.by_region]
sql = "q_by_region"
[sources.regions]
sql = "q_regions"
[stages.report]
sql = "q_report"
depends_on = ["orders"]
[outputs.out]
from = "report"
path = "r.parquet"
)toml";

FakeResolver DiamondResolver() {
  FakeResolver f;
  f.On("q_clean", {"orders"})
      .On("q_by_day", {"clean", "CLEAN"})
      .On("q_by_region", {"clean", "Regions"})
      .On("q_regions", {})
      .On("q_report", {"by_region", "by_day"});
  return f;
}

TEST(DagTest, BuildsEdgesLevelsAndOrders) {
  PipelineSpec spec = MustParse(kDiamond);
  FakeResolver f = DiamondResolver();
  Result<Dag> r = BuildDag(spec, f.Get());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const Dag& dag = *r;
  // Declaration order: sources and stages interleaved as written.
  ASSERT_EQ(dag.size(), 6);
  EXPECT_EQ(
      Names(dag, {0, 1, 2, 3, 4, 5}),
      (std::vector<std::string>{"orders", "clean", "by_day", "by_region", "regions", "report"}));
  EXPECT_EQ(dag.node(4).kind, NodeKind::kSource);
  EXPECT_EQ(dag.InputNames(2), (std::vector<std::string>{"clean"}));  // deduplicated
  EXPECT_EQ(dag.InputNames(3), (std::vector<std::string>{"clean", "regions"}));
  EXPECT_EQ(dag.InputNames(5), (std::vector<std::string>{"orders", "by_day", "by_region"}));
  EXPECT_TRUE(dag.node(5).inputs[0].declared);
  EXPECT_EQ(dag.node(5).inputs[0].line, 14);
  EXPECT_FALSE(dag.node(5).inputs[1].declared);
  EXPECT_EQ(dag.node(1).consumers, (std::vector<int>{2, 3}));

  EXPECT_EQ(
      Names(dag, dag.TopologicalOrder()),
      (std::vector<std::string>{"orders", "clean", "by_day", "regions", "by_region", "report"}));
  std::vector<std::vector<int>> levels = dag.Levels();
  ASSERT_EQ(levels.size(), 4u);
  EXPECT_EQ(Names(dag, levels[0]), (std::vector<std::string>{"orders", "regions"}));
  EXPECT_EQ(Names(dag, levels[1]), (std::vector<std::string>{"clean"}));
  EXPECT_EQ(Names(dag, levels[2]), (std::vector<std::string>{"by_day", "by_region"}));
  EXPECT_EQ(Names(dag, levels[3]), (std::vector<std::string>{"report"}));

  EXPECT_EQ(Names(dag, dag.Descendants(1)),
            (std::vector<std::string>{"by_day", "by_region", "report"}));
  EXPECT_EQ(Names(dag, dag.Ancestors(3)), (std::vector<std::string>{"orders", "clean", "regions"}));
  EXPECT_TRUE(dag.Descendants(5).empty());
  EXPECT_EQ(dag.Find("BY_DAY"), 2);
  EXPECT_EQ(dag.Find("nope"), std::nullopt);
  EXPECT_EQ(dag.output_nodes(), (std::vector<int>{5}));
}

TEST(DagTest, CriticalPathFollowsTheHeaviestChain) {
  PipelineSpec spec = MustParse(kDiamond);
  FakeResolver f = DiamondResolver();
  Result<Dag> r = BuildDag(spec, f.Get());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::map<std::string, double> cost = {{"orders", 1},   {"clean", 5},     {"by_day", 2},
                                        {"regions", 50}, {"by_region", 1}, {"report", 1}};
  auto by_name = [&](int n) { return cost[r->node(n).name]; };
  EXPECT_EQ(Names(*r, r->CriticalPath(by_name)),
            (std::vector<std::string>{"regions", "by_region", "report"}));
  cost["regions"] = 1;
  EXPECT_EQ(Names(*r, r->CriticalPath(by_name)),
            (std::vector<std::string>{"orders", "clean", "by_day", "report"}));
}

TEST(DagTest, UnknownTableNamesTheLineAndSuggests) {
  PipelineSpec spec = MustParse(R"toml(name = "p"
[sources.orders]
path = "o.csv"
[stages.daily]
sql = """
SELECT day,
       sum(amount)
FROM orderz
GROUP BY day"""
)toml");
  FakeResolver f;
  f.On(spec.stages[0].sql, {"orderz"});
  Result<Dag> r = BuildDag(spec, f.Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(),
            "pipeline.toml:8: stage \"daily\" reads table \"orderz\", which no source or stage "
            "defines (did you mean \"orders\"?)");
}

TEST(DagTest, ResolverErrorsNameTheStage) {
  PipelineSpec spec = MustParse("name = \"p\"\n[stages.x]\nsql = \"SELEC 1\"\n");
  FakeResolver f;
  Result<Dag> r = BuildDag(spec, f.Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "pipeline.toml:3: stage \"x\": Parser Error: syntax error at or near \"SELEC 1\"");
}

TEST(DagTest, AStatementThatIsNotAQuerySaysSo) {
  PipelineSpec spec = MustParse(
      "name = \"p\"\n[stages.x]\nsql = \"\"\"\n-- note\n(CREATE TABLE t AS SELECT 1)\n\"\"\"\n");
  FakeResolver f;
  Result<Dag> r = BuildDag(spec, f.Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "pipeline.toml:4: stage \"x\": this SQL is a CREATE statement, not a query; a stage "
            "is one SELECT (or WITH ... SELECT), and respawn makes its result the table \"x\"");
}

TEST(DagTest, GeneratedSourcesCannotReadTables) {
  PipelineSpec spec = MustParse(R"toml(name = "p"
[stages.a]
sql = "q_a"
[sources.gen]
sql = "q_gen"
)toml");
  FakeResolver f;
  f.On("q_a", {}).On("q_gen", {"a"});
  Result<Dag> r = BuildDag(spec, f.Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "pipeline.toml:5: source \"gen\" is generated by sql and cannot read table \"a\"; "
            "declare it as a stage ([stages.gen]) instead");
}

TEST(DagTest, CyclesAreReportedFromTheFirstDeclaredStage) {
  PipelineSpec spec = MustParse(R"toml(name = "p"
[stages.c]
sql = "q_c"
[stages.a]
sql = "q_a"
[stages.b]
sql = "q_b"
[stages.tail]
sql = "q_tail"
)toml");
  FakeResolver f;
  // c reads b, b reads a, a reads c: c -> a -> b -> c; tail hangs off the cycle.
  f.On("q_c", {"b"}).On("q_a", {"c"}).On("q_b", {"a"}).On("q_tail", {"c"});
  Result<Dag> r = BuildDag(spec, f.Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "pipeline.toml:3: stages form a cycle: c -> a -> b -> c (each reads the one before "
            "it); remove one of these reads or depends_on entries");
}

TEST(DagTest, SelfReferenceIsACycle) {
  PipelineSpec spec = MustParse("name = \"p\"\n[stages.a]\nsql = \"q_a\"\n");
  FakeResolver f;
  f.On("q_a", {"a"});
  Result<Dag> r = BuildDag(spec, f.Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "pipeline.toml:3: stages form a cycle: a -> a (each reads the one before it); "
            "remove one of these reads or depends_on entries");
}

TEST(DagTest, DependsOnCanCloseACycle) {
  PipelineSpec spec = MustParse(R"toml(name = "p"
[stages.a]
sql = "q_a"
depends_on = ["b"]
[stages.b]
sql = "q_b"
)toml");
  FakeResolver f;
  f.On("q_a", {}).On("q_b", {"a"});
  Result<Dag> r = BuildDag(spec, f.Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "pipeline.toml:4: stages form a cycle: a -> b -> a (each reads the one before it); "
            "remove one of these reads or depends_on entries");
}

TEST(DagTest, EmptyPipeline) {
  PipelineSpec spec = MustParse("name = \"p\"\n");
  FakeResolver f;
  Result<Dag> r = BuildDag(spec, f.Get());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->size(), 0);
  EXPECT_TRUE(r->Levels().empty());
  EXPECT_TRUE(r->CriticalPath([](int) { return 1.0; }).empty());
}

TEST(DagTest, FilesReadByNameAreResolvedAgainstThePipelineFolder) {
  const std::string sql =
      "SELECT * FROM 'data.csv' JOIN read_parquet('/abs/p.parquet') USING (k)\n"
      "JOIN read_csv(['in/*.csv', 'data.csv']) USING (k), glob('x/*')";
  PipelineSpec spec = MustParse(R"toml(name = "p"
[stages.s]
sql = """
SELECT * FROM 'data.csv' JOIN read_parquet('/abs/p.parquet') USING (k)
JOIN read_csv(['in/*.csv', 'data.csv']) USING (k), glob('x/*')"""
)toml");
  ASSERT_EQ(spec.stages.at(0).sql, sql);
  TableResolver tables = [](std::string_view) -> Result<std::vector<std::string>> {
    return std::vector<std::string>{};
  };
  FileResolver files = [&](std::string_view) -> Result<std::vector<SqlFileRef>> {
    return std::vector<SqlFileRef>{{"", "data.csv", sql.find("'data.csv'")},
                                   {"read_parquet", "/abs/p.parquet", sql.find("'/abs")},
                                   {"read_csv", "in/*.csv", sql.find("'in/")},
                                   {"read_csv", "data.csv", sql.rfind("'data.csv'")},
                                   {"glob", "x/*", sql.find("'x/*'")},
                                   {"read_csv", "s3://b/k.csv", SIZE_MAX}};
  };
  Result<Dag> dag = BuildDag(spec, tables, files);
  ASSERT_TRUE(dag.ok()) << dag.status().ToString();
  const std::vector<DagFileRead>& read = dag->node(0).files;
  ASSERT_EQ(read.size(), 4u);  // data.csv once; the URL is DuckDB's to refuse
  EXPECT_EQ(read[0].written, "data.csv");
  EXPECT_EQ(read[0].resolved, "/base/data.csv");
  EXPECT_EQ(read[0].literals.size(), 2u);
  EXPECT_EQ(read[0].line, 4);
  EXPECT_FALSE(read[0].may_be_empty);
  EXPECT_EQ(read[1].resolved, "/abs/p.parquet");
  EXPECT_TRUE(read[1].literals.empty());
  EXPECT_EQ(read[2].resolved, "/base/in/*.csv");
  EXPECT_EQ(read[2].line, 5);
  EXPECT_EQ(read[3].written, "x/*");
  EXPECT_TRUE(read[3].may_be_empty);
  EXPECT_EQ(RunnableSql(spec, *dag, 0),
            "SELECT * FROM '/base/data.csv' JOIN read_parquet('/abs/p.parquet') USING (k)\n"
            "JOIN read_csv(['/base/in/*.csv', '/base/data.csv']) USING (k), glob('/base/x/*')");
}

TEST(DagTest, FileResolverErrorsAndUnresolvablePathsNameTheLine) {
  PipelineSpec spec = MustParse(R"toml(name = "p"
[stages.a]
sql = "q_a"
[stages.b]
sql = "q_b"
)toml");
  TableResolver tables = [](std::string_view) -> Result<std::vector<std::string>> {
    return std::vector<std::string>{};
  };
  FileResolver files = [](std::string_view sql) -> Result<std::vector<SqlFileRef>> {
    if (sql == "q_a") return InvalidArgument("read_csv(a column): not a literal");
    // An offset that does not point at the literal: the path cannot be rewritten.
    return std::vector<SqlFileRef>{{"read_csv", "rel.csv", 0}};
  };
  Result<Dag> dag = BuildDag(spec, tables, files);
  ASSERT_FALSE(dag.ok());
  EXPECT_EQ(dag.status().message(),
            "pipeline.toml:3: stage \"a\": read_csv(a column): not a literal\n"
            "pipeline.toml:5: stage \"b\" reads file \"rel.csv\" by a relative path written in "
            "a way respawn cannot resolve against the pipeline file's folder; write it as a plain "
            "'...' string, or as an absolute path");
}

}  // namespace
}  // namespace respawn
