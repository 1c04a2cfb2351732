#include "pipeline/gc.h"

#include <gtest/gtest.h>

#include "pipeline/schema.h"
#include "util/clock.h"

namespace respawn {
namespace {

// A ledger state with run reports at sequences 1..n; `results[i]` is run i+1's result.
ledger::LedgerState RunReports(const std::vector<std::string>& results) {
  ledger::LedgerState state;
  for (size_t i = 0; i < results.size(); ++i) {
    ledger::Entry e;
    e.fingerprint = "run";
    e.sequence = i + 1;
    e.meta = {{"result", results[i]}};
    state.entries["run/r" + std::to_string(i + 1)] = e;
  }
  state.entries["stage/x"].sequence = 99;  // not a report: never expired
  return state;
}

TEST(ExpiredRunReportsTest, KeepsTheNewestReportsIncludingTheOneBeingAdded) {
  ledger::LedgerState state = RunReports({"done", "done", "done", "done", "done"});
  // 3 kept: the new one and r5, r4.
  EXPECT_EQ(ExpiredRunReports(state, 3, 1),
            (std::vector<std::string>{"run/r1", "run/r2", "run/r3"}));
  EXPECT_TRUE(ExpiredRunReports(state, 6, 1).empty());
  EXPECT_EQ(ExpiredRunReports(state, 5, 1), (std::vector<std::string>{"run/r1"}));
}

TEST(ExpiredRunReportsTest, FinishedRunsThatRetainResultsStay) {
  // keep_runs = 2: the reports of the newest two finished runs (r2, r1) retain their results.
  ledger::LedgerState state = RunReports({"done", "done", "failed", "interrupted", "failed"});
  EXPECT_EQ(ExpiredRunReports(state, 2, 2), (std::vector<std::string>{"run/r3", "run/r4"}));
  EXPECT_EQ(ExpiredRunReports(state, 1, 1),
            (std::vector<std::string>{"run/r1", "run/r3", "run/r4", "run/r5"}));
}

// src -> a -> b -> leaf (the output's): a and b are work-tables, src (a generated source read
// by a) too. `ttl` is [gc] work_tables_ttl.
struct TtlFixture {
  PipelineSpec spec;
  Dag dag;
  ledger::LedgerState state;
  ManualClock clock;  // commit times and GC's "now"
  uint64_t sequence = 0;

  explicit TtlFixture(const std::string& ttl) {
    const std::string text = "name = \"p\"\n[gc]\nwork_tables_ttl = \"" + ttl +
                             "\"\n[sources.src]\nsql = \"q_src\"\n[stages.a]\nsql = \"q_a\"\n"
                             "[stages.b]\nsql = \"q_b\"\n[stages.leaf]\nsql = \"q_leaf\"\n"
                             "[outputs.out]\nfrom = \"leaf\"\npath = \"out.csv\"\n";
    spec = ParsePipelineString(text, "pipeline.toml", "/base").value();
    const std::map<std::string, std::vector<std::string>> reads = {
        {"q_src", {}}, {"q_a", {"src"}}, {"q_b", {"a"}}, {"q_leaf", {"b"}}};
    dag = BuildDag(spec, [&](std::string_view sql) -> Result<std::vector<std::string>> {
            return reads.at(std::string(sql));
          }).value();
  }

  void Commit(const std::string& name, nlohmann::json meta = nlohmann::json::object()) {
    ledger::Entry& e = state.entries[name];
    e.fingerprint = "f";
    e.sequence = ++sequence;
    e.committed_at_ms = clock.WallNowMs();
    e.meta = std::move(meta);
  }
  // A run that computed every stage and reported `work_tables`.
  void Run(const std::string& run_id, const std::vector<std::string>& work_tables) {
    for (const char* n : {"stage/src", "stage/a", "stage/b", "stage/leaf", "output/out"}) {
      Commit(n);
    }
    RunReportMeta meta;
    meta.result = "done";
    meta.work_tables = work_tables;
    Commit(RunEntryName(run_id), EncodeRunReportMeta(meta));
  }
};

const std::vector<std::string> kWorkTables = {"stage/a", "stage/b", "stage/src"};

TEST(WorkTablesTtlTest, TheLatestRunsWorkTablesStayUntilTheTtlPasses) {
  TtlFixture f("4h");
  f.Run("r1", kWorkTables);
  EXPECT_EQ(RunWorkTables(f.spec, f.dag, f.state), kWorkTables);
  const int64_t finished = f.clock.WallNowMs();
  f.clock.Advance(std::chrono::hours(3));
  WorkTableTrim young = TrimWorkTables(f.spec, f.dag, f.state, f.clock.WallNowMs()).value();
  EXPECT_TRUE(young.drop.empty());
  EXPECT_EQ(young.kept, kWorkTables);
  EXPECT_EQ(young.run_id, "r1");
  EXPECT_EQ(young.kept_until_ms, finished + 4 * 3'600'000);

  f.clock.Advance(std::chrono::hours(1));  // exactly 4h: expired
  WorkTableTrim old = TrimWorkTables(f.spec, f.dag, f.state, f.clock.WallNowMs()).value();
  EXPECT_EQ(old.drop, kWorkTables);
  EXPECT_TRUE(old.kept.empty());
  EXPECT_EQ(old.run_id, "");
}

TEST(WorkTablesTtlTest, ZeroDropsAtOnceAndOnlyTheLatestRunsAreKept) {
  TtlFixture zero("0");
  zero.Run("r1", kWorkTables);
  EXPECT_EQ(TrimWorkTables(zero.spec, zero.dag, zero.state, zero.clock.WallNowMs())->drop,
            kWorkTables);
  EXPECT_EQ(TrimAtRunEnd(zero.spec, zero.dag, zero.state, kWorkTables), kWorkTables);

  TtlFixture f("6h");
  // A stage since removed from the pipeline is a work-table that no TTL keeps.
  f.Commit("stage/gone");
  f.Run("r1", {"stage/a", "stage/b", "stage/gone", "stage/src"});
  f.clock.Advance(std::chrono::hours(1));
  // The latest run (r2) had only a and src as work-tables (b is not listed): b goes.
  f.Run("r2", {"stage/a", "stage/src"});
  WorkTableTrim trim = TrimWorkTables(f.spec, f.dag, f.state, f.clock.WallNowMs()).value();
  EXPECT_EQ(trim.drop, (std::vector<std::string>{"stage/b", "stage/gone"}));
  EXPECT_EQ(trim.kept, (std::vector<std::string>{"stage/a", "stage/src"}));
  EXPECT_EQ(trim.run_id, "r2");
  // At a run's end, its own work-tables stay, a removed stage's go.
  EXPECT_EQ(TrimAtRunEnd(f.spec, f.dag, f.state, RunWorkTables(f.spec, f.dag, f.state)),
            std::vector<std::string>{"stage/gone"});
}

TEST(WorkTablesTtlTest, AReportThatDoesNotDecodeDropsNothing) {
  TtlFixture f("4h");
  f.Run("r1", kWorkTables);
  f.Commit("run/r2", {{"result", 7}});
  EXPECT_EQ(TrimWorkTables(f.spec, f.dag, f.state, f.clock.WallNowMs()).status().code(),
            StatusCode::kDataLoss);
}

TEST(WorkTablesTtlTest, DroppedWorkTablesNameTheNewestRunThatHadThem) {
  TtlFixture f("0");
  f.Run("r1", kWorkTables);
  f.Run("r2", {"stage/a", "stage/src"});
  f.state.entries.erase("stage/a");
  f.state.entries.erase("stage/b");
  EXPECT_EQ(DroppedWorkTables(f.state),
            (std::map<std::string, std::string>{{"stage/a", "r2"}, {"stage/b", "r1"}}));
}

}  // namespace
}  // namespace respawn
