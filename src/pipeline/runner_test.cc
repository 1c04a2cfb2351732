#include "pipeline/runner.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "ledger/ledger.h"
#include "respawn/respawn.h"  // the public API compiles on its own
#include "storage/memory_store.h"
#include "util/clock.h"

namespace respawn {
namespace {

// Tests of the runner's decisions (reuse, recompute, verification) on the in-memory store.
// End-to-end behaviour on real stores, with kills, is in tests/pipeline_*_test.sh.
class RunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("respawn-runner-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    store_ = std::make_shared<MemoryStore>("runner-test");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // `ttl`: [gc] work_tables_ttl ("0": work-tables go as soon as a run finishes).
  PipelineSpec Spec(const std::string& min_amount = "10", const std::string& ttl = "0") {
    std::string text = R"toml(
name = "t"
[sources.orders]
sql = "SELECT i AS id, i % 5 AS cust, (i * 7) % 100 AS amount FROM range(1000) t(i)"
[stages.clean]
sql = "SELECT * FROM orders WHERE amount >= ${min}"
params = { min = )toml" +
                       min_amount + R"toml( }
[stages.per_cust]
sql = "SELECT cust, sum(amount) AS total, count(*) AS n FROM clean GROUP BY cust ORDER BY cust"
[stages.scratch]
sql = "SELECT cust FROM per_cust WHERE n > 0"
checkpoint = false
[stages.other]
sql = "SELECT count(*) AS n FROM orders"
[outputs.report]
from = "per_cust"
path = "out/report.csv"
[gc]
work_tables_ttl = ")toml" +
                       ttl + R"toml("
)toml";
    Result<PipelineSpec> spec = ParsePipelineString(text, "pipeline.toml", dir_.string());
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    return *spec;
  }

  RunReport Run(const PipelineSpec& spec, bool fresh = false, bool gc = false) {
    RunOptions options;
    options.store = store_;
    options.fresh = fresh;
    options.gc = gc;
    options.threads = 2;
    Result<RunReport> report = RunPipeline(spec, options);
    EXPECT_TRUE(report.ok()) << report.status().ToString();
    EXPECT_TRUE(report->status.ok()) << report->status.ToString();
    return *report;
  }

  static const NodeReport& Node(const RunReport& report, const std::string& name) {
    for (const NodeReport& n : report.nodes) {
      if (n.name == name) return n;
    }
    ADD_FAILURE() << "no node " << name;
    return report.nodes.front();
  }

  std::string ReadOutput() {
    std::ifstream in(dir_ / "out/report.csv");
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::filesystem::path dir_;
  std::shared_ptr<MemoryStore> store_;
};

TEST_F(RunnerTest, FirstRunComputesEveryStageAndWritesOutputs) {
  RunReport report = Run(Spec());
  for (const char* name : {"orders", "clean", "per_cust", "scratch", "other"}) {
    EXPECT_EQ(Node(report, name).action, NodeAction::kComputed) << name;
  }
  EXPECT_EQ(Node(report, "clean").reason, "no checkpoint");
  EXPECT_EQ(Node(report, "per_cust").rows, 5u);
  // 1000 rows, amount = (7i) % 100 takes each value 0..99 ten times; >= 10 keeps 900 rows.
  EXPECT_EQ(Node(report, "clean").rows, 900u);
  std::string csv = ReadOutput();
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "cust,total,n");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 6);
}

TEST_F(RunnerTest, RerunReusesEverythingAndLeavesOutputsAlone) {
  Run(Spec());
  std::string first = ReadOutput();
  RunReport again = Run(Spec());
  for (const char* name : {"orders", "clean", "per_cust", "other"}) {
    EXPECT_EQ(Node(again, name).action, NodeAction::kReused) << name;
  }
  // A non-checkpointed stage that nothing reads runs every time (it has no checkpoint to reuse).
  EXPECT_EQ(Node(again, "scratch").action, NodeAction::kComputed);
  ASSERT_EQ(again.outputs.size(), 1u);
  EXPECT_FALSE(again.outputs[0].written);
  EXPECT_EQ(ReadOutput(), first);
}

TEST_F(RunnerTest, ChangedParamRecomputesTheStageAndItsDescendantsOnly) {
  Run(Spec("10"));
  RunReport changed = Run(Spec("50"));
  EXPECT_EQ(Node(changed, "orders").action, NodeAction::kReused);
  EXPECT_EQ(Node(changed, "other").action, NodeAction::kReused);
  EXPECT_EQ(Node(changed, "clean").action, NodeAction::kComputed);
  EXPECT_NE(Node(changed, "clean").reason.find("changed param min"), std::string::npos)
      << Node(changed, "clean").reason;
  EXPECT_EQ(Node(changed, "per_cust").action, NodeAction::kComputed);
  EXPECT_EQ(Node(changed, "per_cust").reason, "changed input clean");
  EXPECT_EQ(Node(changed, "clean").rows, 500u);
  EXPECT_TRUE(changed.outputs[0].written);

  Result<PipelineStatus> status = GetPipelineStatus(Spec("10"), store_);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  for (const NodeStatus& n : status->nodes) {
    if (n.name == "clean") {
      EXPECT_EQ(n.state, "stale");
      EXPECT_NE(n.reason.find("changed param min"), std::string::npos) << n.reason;
    }
    if (n.name == "orders") {
      EXPECT_EQ(n.state, "committed");
    }
  }
}

TEST_F(RunnerTest, CorruptCheckpointIsRecomputedNeverUsed) {
  Run(Spec());
  // Flip one byte of the committed checkpoint of "clean"; the next run must not read it.
  ledger::LedgerOptions ro;
  ro.mode = ledger::LedgerMode::kReadOnly;
  auto ledger = ledger::Ledger::Open(store_, "pipelines/t", ro);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  std::optional<ledger::Entry> clean = (*ledger)->Find("stage/clean");
  ASSERT_TRUE(clean.has_value());
  const std::string key = clean->objects.at(0).key;
  Result<std::string> bytes = store_->Get(key);
  ASSERT_TRUE(bytes.ok());
  std::string bad = *bytes;
  bad[bad.size() / 2] ^= 0x5a;
  ASSERT_TRUE(store_->Put(key, bad).ok());

  std::filesystem::remove(dir_ / "out/report.csv");
  RunReport rerun = Run(Spec());
  // per_cust is reused and its output only needs per_cust: clean is not read, so not judged.
  EXPECT_EQ(Node(rerun, "per_cust").action, NodeAction::kReused);

  // With per_cust's checkpoint gone, clean must be read: the corrupt object must be caught.
  PipelineSpec spec = Spec();
  ASSERT_TRUE(store_->Delete((*ledger)->Find("stage/per_cust")->objects.at(0).key).ok());
  RunReport repaired = Run(spec);
  EXPECT_EQ(Node(repaired, "per_cust").action, NodeAction::kComputed);
  EXPECT_NE(Node(repaired, "per_cust").reason.find("checkpoint missing"), std::string::npos)
      << Node(repaired, "per_cust").reason;
  EXPECT_EQ(Node(repaired, "clean").action, NodeAction::kComputed);
  EXPECT_NE(Node(repaired, "clean").reason.find("checkpoint corrupt"), std::string::npos)
      << Node(repaired, "clean").reason;
  EXPECT_EQ(Node(repaired, "orders").action, NodeAction::kReused);
}

TEST_F(RunnerTest, BindErrorIsFoundBeforeAnythingRuns) {
  std::string text = R"toml(
name = "bad"
[sources.orders]
sql = "SELECT 1 AS a"
[stages.broken]
sql = "SELECT no_such_column FROM orders"
)toml";
  Result<PipelineSpec> spec = ParsePipelineString(text, "pipeline.toml", dir_.string());
  ASSERT_TRUE(spec.ok());
  RunOptions options;
  options.store = store_;
  Result<RunReport> report = RunPipeline(*spec, options);
  ASSERT_FALSE(report.ok());
  EXPECT_EQ(report.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(report.status().message().find("pipeline.toml:6: stage \"broken\""), std::string::npos)
      << report.status().message();
  EXPECT_NE(report.status().message().find("no_such_column"), std::string::npos);
  // Nothing ran, nothing was written.
  Result<ListPage> listed = store_->List(ListOptions{});
  ASSERT_TRUE(listed.ok());
  EXPECT_TRUE(listed->objects.empty());
}

TEST_F(RunnerTest, RuntimeSqlErrorNamesFileLineAndStage) {
  std::string text = R"toml(
name = "bad"
[sources.orders]
sql = "SELECT 'x' AS a"
[stages.broken]
sql = "SELECT CAST(a AS INTEGER) AS n FROM orders"
)toml";
  Result<PipelineSpec> spec = ParsePipelineString(text, "pipeline.toml", dir_.string());
  ASSERT_TRUE(spec.ok());
  RunOptions options;
  options.store = store_;
  Result<RunReport> report = RunPipeline(*spec, options);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_FALSE(report->status.ok());
  EXPECT_NE(report->status.message().find("pipeline.toml:6: stage \"broken\""), std::string::npos)
      << report->status.message();
  EXPECT_EQ(Node(*report, "orders").action, NodeAction::kComputed);  // committed, kept
}

TEST_F(RunnerTest, FreshRecomputesEverything) {
  Run(Spec());
  RunReport fresh = Run(Spec(), /*fresh=*/true);
  EXPECT_EQ(Node(fresh, "clean").action, NodeAction::kComputed);
  EXPECT_EQ(Node(fresh, "clean").reason, "--fresh");
  EXPECT_TRUE(fresh.outputs[0].written);
}

TEST_F(RunnerTest, GcAfterARunDropsWorkTablesAndARerunStillReusesTheResults) {
  RunReport first = Run(Spec(), /*fresh=*/false, /*gc=*/true);
  ASSERT_TRUE(first.gc_ran);
  EXPECT_TRUE(first.gc_status.ok()) << first.gc_status.ToString();
  // Work-tables: orders and clean (read by other stages, feed no output). Results: per_cust
  // (feeds the output) and other (nothing reads it).
  EXPECT_EQ(first.gc.replaced, 2u);
  EXPECT_EQ(first.gc.live_objects, 2u);

  ledger::LedgerOptions ro;
  ro.mode = ledger::LedgerMode::kReadOnly;
  auto ledger = ledger::Ledger::Open(store_, "pipelines/t", ro);
  ASSERT_TRUE(ledger.ok());
  EXPECT_FALSE((*ledger)->Find("stage/clean").has_value());
  EXPECT_FALSE((*ledger)->Find("stage/orders").has_value());
  ASSERT_TRUE((*ledger)->Find("stage/per_cust").has_value());
  // Exactly the live objects remain under data/.
  Result<std::vector<ObjectInfo>> objects = ListAll(*store_, "pipelines/t/data/");
  ASSERT_TRUE(objects.ok());
  EXPECT_EQ(objects->size(), 2u);
  for (const ObjectInfo& o : *objects) {
    EXPECT_TRUE(o.key == (*ledger)->Find("stage/per_cust")->objects[0].key ||
                o.key == (*ledger)->Find("stage/other")->objects[0].key)
        << o.key;
  }

  std::string csv = ReadOutput();
  RunReport again = Run(Spec(), false, true);
  EXPECT_EQ(Node(again, "per_cust").action, NodeAction::kReused);
  EXPECT_EQ(Node(again, "other").action, NodeAction::kReused);
  EXPECT_EQ(Node(again, "clean").action, NodeAction::kSkipped);
  EXPECT_EQ(ReadOutput(), csv);

  // A changed per_cust needs clean again: recomputed from the sources.
  PipelineSpec changed = Spec();
  for (StageSpec& s : changed.stages) {
    if (s.name == "per_cust") s.sql += " LIMIT 4";
  }
  RunReport third = Run(changed, false, true);
  EXPECT_EQ(Node(third, "clean").action, NodeAction::kComputed);
  EXPECT_EQ(Node(third, "per_cust").action, NodeAction::kComputed);
  EXPECT_EQ(Node(third, "other").action, NodeAction::kReused);
}

TEST_F(RunnerTest, WorkTablesStayForTheirTtlSoEditingALeafReusesItsInputs) {
  auto edited = [&](const std::string& limit) {
    PipelineSpec spec = Spec("10", "4h");
    for (StageSpec& s : spec.stages) {
      if (s.name == "per_cust") s.sql += " LIMIT " + limit;
    }
    return spec;
  };
  Run(Spec("10", "4h"), false, true);
  RunReport second = Run(edited("4"), false, true);
  EXPECT_EQ(Node(second, "per_cust").action, NodeAction::kComputed);
  EXPECT_EQ(Node(second, "per_cust").reason, "changed SQL");
  EXPECT_EQ(Node(second, "clean").action, NodeAction::kReused);
  EXPECT_EQ(Node(second, "other").action, NodeAction::kReused);

  // `respawn gc` keeps them until the last run is 4h old (the clock seam: GC's now_ms).
  const int64_t now = Clock::System()->WallNowMs();
  PipelineGcOptions within;
  within.now_ms = now + 3 * 3'600'000;
  Result<PipelineGcReport> kept = CollectPipelineGarbage(edited("4"), store_, within);
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  EXPECT_TRUE(kept->trimmed.empty());
  EXPECT_EQ(kept->kept_by_ttl, (std::vector<std::string>{"stage/clean", "stage/orders"}));
  EXPECT_EQ(kept->kept_for_run, second.run_id);

  PipelineGcOptions after;
  after.now_ms = now + 5 * 3'600'000;
  after.dry_run = true;
  Result<PipelineGcReport> dry = CollectPipelineGarbage(edited("4"), store_, after);
  ASSERT_TRUE(dry.ok()) << dry.status().ToString();
  after.dry_run = false;
  Result<PipelineGcReport> real = CollectPipelineGarbage(edited("4"), store_, after);
  ASSERT_TRUE(real.ok()) << real.status().ToString();
  EXPECT_EQ(real->trimmed, (std::vector<std::string>{"stage/clean", "stage/orders"}));
  EXPECT_EQ(dry->trimmed, real->trimmed);
  EXPECT_TRUE(real->kept_by_ttl.empty());
  EXPECT_EQ(dry->gc.deleted_objects, real->gc.deleted_objects);
  EXPECT_EQ(dry->gc.replaced, real->gc.replaced);
  EXPECT_EQ(dry->gc.live_objects, real->gc.live_objects);

  // Editing the leaf again needs clean, which GC dropped: the reason says so.
  RunReport third = Run(edited("3"), false, true);
  EXPECT_EQ(Node(third, "clean").action, NodeAction::kComputed);
  EXPECT_EQ(Node(third, "clean").reason,
            "dropped by GC after run " + second.run_id.substr(0, 8) + " (needed by per_cust)");
  EXPECT_EQ(Node(third, "orders").reason,
            "dropped by GC after run " + second.run_id.substr(0, 8) + " (needed by clean)");
}

TEST_F(RunnerTest, GcKeepsOrphansYoungerThanTheGracePeriodAndDeletesOlderOnes) {
  Run(Spec(), false, true);
  ASSERT_TRUE(store_->Put("pipelines/t/data/clean/0123/abcd/deadbeef.parquet", "orphan").ok());
  Result<PipelineGcReport> young = CollectPipelineGarbage(Spec(), store_, {});
  ASSERT_TRUE(young.ok()) << young.status().ToString();
  EXPECT_EQ(young->gc.young_orphans_kept, 1u);
  EXPECT_EQ(young->gc.deleted_objects, 0u);

  PipelineGcOptions later;
  later.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count() +
                 2 * 3'600'000;
  later.dry_run = true;
  Result<PipelineGcReport> dry = CollectPipelineGarbage(Spec(), store_, later);
  ASSERT_TRUE(dry.ok());
  EXPECT_EQ(dry->gc.orphans, 1u);
  EXPECT_TRUE(store_->Stat("pipelines/t/data/clean/0123/abcd/deadbeef.parquet").ok());
  later.dry_run = false;
  Result<PipelineGcReport> real = CollectPipelineGarbage(Spec(), store_, later);
  ASSERT_TRUE(real.ok());
  EXPECT_EQ(real->gc.deleted_objects, 1u);
  EXPECT_TRUE(
      store_->Stat("pipelines/t/data/clean/0123/abcd/deadbeef.parquet").status().IsNotFound());
  // The results survive.
  EXPECT_EQ(Node(Run(Spec(), false, true), "per_cust").action, NodeAction::kReused);
}

// Keys with their ETags: what a refused command must leave as it was.
std::map<std::string, std::string> Contents(Store& store) {
  std::map<std::string, std::string> out;
  Result<std::vector<ObjectInfo>> all = ListAll(store, "");
  EXPECT_TRUE(all.ok()) << all.status().ToString();
  if (all.ok()) {
    for (const ObjectInfo& o : *all) out[o.key] = o.etag;
  }
  return out;
}

TEST_F(RunnerTest, AnotherFileUnderTheSameNameIsRefusedUntilAdopted) {
  Run(Spec(), false, true);
  PipelineSpec copy = Spec();
  copy.path = "/elsewhere/pipeline.toml";
  const std::map<std::string, std::string> before = Contents(*store_);
  RunOptions options;
  options.store = store_;
  Result<RunReport> refused = RunPipeline(copy, options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("belongs to " + (dir_ / "pipeline.toml").string()),
            std::string::npos)
      << refused.status().message();
  EXPECT_NE(refused.status().message().find("--adopt"), std::string::npos);
  Result<PipelineGcReport> gc = CollectPipelineGarbage(copy, store_, {});
  EXPECT_EQ(gc.status().code(), StatusCode::kInvalidArgument) << gc.status().ToString();
  EXPECT_EQ(Contents(*store_), before);

  Result<PipelineStatus> status = GetPipelineStatus(copy, store_);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->owner_path, (dir_ / "pipeline.toml").string());
  EXPECT_EQ(status->owner_id.size(), 32u);

  // Adopted: it is the same pipeline, so its checkpoints are reused; the old path is refused now.
  options.adopt = true;
  Result<RunReport> adopted = RunPipeline(copy, options);
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  ASSERT_TRUE(adopted->status.ok()) << adopted->status.ToString();
  EXPECT_EQ(Node(*adopted, "per_cust").action, NodeAction::kReused);
  EXPECT_EQ(GetPipelineStatus(copy, store_)->owner_path, "/elsewhere/pipeline.toml");
  options.adopt = false;
  EXPECT_EQ(RunPipeline(Spec(), options).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(RunPipeline(copy, options).ok());
}

TEST_F(RunnerTest, ANamespaceWithoutAnOwnerGetsOneAtItsNextRun) {
  Run(Spec());
  {
    // As a namespace written before owners were recorded.
    auto writer = ledger::Ledger::Open(store_, "pipelines/t");
    ASSERT_TRUE(writer.ok()) << writer.status().ToString();
    ledger::Changes changes;
    changes.removals.insert("owner");
    ASSERT_TRUE((*writer)->Commit(changes).ok());
    ASSERT_TRUE((*writer)->Close().ok());
  }
  EXPECT_EQ(GetPipelineStatus(Spec(), store_)->owner_path, "");
  PipelineSpec moved = Spec();
  moved.path = "/moved/pipeline.toml";
  RunReport report = Run(moved);
  EXPECT_EQ(Node(report, "per_cust").action, NodeAction::kReused);
  EXPECT_EQ(GetPipelineStatus(Spec(), store_)->owner_path, "/moved/pipeline.toml");
}

TEST_F(RunnerTest, FilesReadInSqlAreFingerprintedAndResolvedAgainstTheFolder) {
  auto write = [&](const std::string& text) {
    std::ofstream(dir_ / "data.csv", std::ios::trunc) << text;
  };
  write("k,v\na,1\nb,2\n");
  std::string text = R"toml(
name = "files"
[stages.total]
sql = "SELECT sum(v)::BIGINT AS s FROM 'data.csv'"
[stages.after]
sql = "SELECT s * 2 AS s2 FROM total"
[outputs.report]
from = "after"
path = "out/report.csv"
)toml";
  PipelineSpec spec = ParsePipelineString(text, "pipeline.toml", dir_.string()).value();
  RunReport first = Run(spec);
  EXPECT_EQ(Node(first, "total").action, NodeAction::kComputed);
  EXPECT_EQ(ReadOutput(), "s2\n6\n");
  EXPECT_EQ(Node(Run(spec), "total").action, NodeAction::kReused);

  write("k,v\na,1\nb,2\nc,10\n");
  Result<PipelineStatus> status = GetPipelineStatus(spec, store_);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  for (const NodeStatus& n : status->nodes) {
    if (n.name == "total") {
      EXPECT_EQ(n.reason, "changed file data.csv");
    }
  }
  RunReport changed = Run(spec);
  EXPECT_EQ(Node(changed, "total").action, NodeAction::kComputed);
  EXPECT_EQ(Node(changed, "total").reason, "changed file data.csv");
  EXPECT_EQ(Node(changed, "after").reason, "changed input total");
  EXPECT_EQ(ReadOutput(), "s2\n26\n");
}

}  // namespace
}  // namespace respawn
