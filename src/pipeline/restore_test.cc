#include "pipeline/restore.h"

#include <gtest/gtest.h>

#include "util/testing.h"

namespace respawn {
namespace {

// A finished run "run/<id>" at `sequence` whose output "o" was written from `key`.
void AddRun(ledger::LedgerState& state, const std::string& id, uint64_t sequence,
            const std::string& key, const std::string& result = "done") {
  RunReportMeta meta;
  meta.result = result;
  meta.results = std::vector<std::string>{key};
  meta.outputs = {{"o", "s", 3, 100, {{key, 100, 7}}}};
  ledger::Entry e;
  e.fingerprint = "run";
  e.sequence = sequence;
  e.committed_at_ms = static_cast<int64_t>(sequence) * 1000;
  e.meta = EncodeRunReportMeta(meta);
  state.entries[RunEntryName(id)] = e;
}

// Runs aaaa1111 (key k1), aaaa2222 (k2), bbbb3333 (k3), a failed run, then the current state
// naming k3.
ledger::LedgerState ThreeRuns() {
  ledger::LedgerState state;
  AddRun(state, "aaaa1111", 1, "k1");
  AddRun(state, "aaaa2222", 2, "k2");
  AddRun(state, "cccc0000", 3, "kx", "failed");
  AddRun(state, "bbbb3333", 4, "k3");
  state.entries["stage/s"].objects = {{"k3", 100, 7}};
  state.entries["stage/s"].sequence = 4;
  return state;
}

TEST(ListRestorableRunsTest, FinishedRunsNewestFirstRestorableWhileGcKeepsThem) {
  ASSERT_OK_AND_ASSIGN(std::vector<RestorableRun> runs, ListRestorableRuns(ThreeRuns(), 2));
  ASSERT_EQ(runs.size(), 3u);  // the failed run is not listed
  EXPECT_EQ(runs[0].run_id, "bbbb3333");
  EXPECT_EQ(runs[0].finished_at_ms, 4000);
  EXPECT_TRUE(runs[0].restorable);
  ASSERT_EQ(runs[0].outputs.size(), 1u);
  EXPECT_EQ(runs[0].outputs[0].stage, "s");
  EXPECT_EQ(runs[0].outputs[0].rows, 3u);
  EXPECT_TRUE(runs[1].restorable);
  // keep_runs = 2: the oldest finished run's results are no longer retained.
  EXPECT_EQ(runs[2].run_id, "aaaa1111");
  EXPECT_FALSE(runs[2].restorable);
  EXPECT_NE(runs[2].why_not.find("keep_runs = 2"), std::string::npos) << runs[2].why_not;

  ASSERT_OK_AND_ASSIGN(runs, ListRestorableRuns(ThreeRuns(), 3));
  EXPECT_TRUE(runs[2].restorable);
}

TEST(ListRestorableRunsTest, AReportWithoutOutputsIsNotRestorable) {
  ledger::LedgerState state;
  ledger::Entry e;
  e.meta = {{"result", "done"}, {"results", {"k"}}};
  state.entries["run/old"] = e;
  ASSERT_OK_AND_ASSIGN(std::vector<RestorableRun> runs, ListRestorableRuns(state, 1));
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_FALSE(runs[0].restorable);
  EXPECT_NE(runs[0].why_not.find("names no outputs"), std::string::npos);
}

TEST(FindRestorableRunTest, PrefixUnknownAmbiguousAndDropped) {
  ASSERT_OK_AND_ASSIGN(std::vector<RestorableRun> runs, ListRestorableRuns(ThreeRuns(), 2));
  ASSERT_OK_AND_ASSIGN(const RestorableRun* run, FindRestorableRun(runs, "bbbb"));
  EXPECT_EQ(run->run_id, "bbbb3333");
  ASSERT_OK_AND_ASSIGN(run, FindRestorableRun(runs, "aaaa2222"));
  EXPECT_EQ(run->run_id, "aaaa2222");

  Result<const RestorableRun*> unknown = FindRestorableRun(runs, "zz");
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(unknown.status().message().find("restorable runs, newest first: bbbb3333, aaaa2222"),
            std::string::npos)
      << unknown.status().message();
  // The failed run is not a run to restore.
  EXPECT_EQ(FindRestorableRun(runs, "cccc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(FindRestorableRun(runs, "").status().code(), StatusCode::kInvalidArgument);

  Result<const RestorableRun*> ambiguous = FindRestorableRun(runs, "aaaa");
  EXPECT_EQ(ambiguous.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ambiguous.status().message().find("ambiguous (aaaa2222, aaaa1111)"), std::string::npos)
      << ambiguous.status().message();

  Result<const RestorableRun*> dropped = FindRestorableRun(runs, "aaaa1");
  EXPECT_EQ(dropped.status().code(), StatusCode::kNotFound);
  EXPECT_NE(dropped.status().message().find("GC dropped its results"), std::string::npos)
      << dropped.status().message();
}

TEST(RestoreDestinationTest, LocalPathsBecomeAbsoluteUrlsStay) {
  DataLocation url = RestoreDestination("s3://bucket/x.parquet");
  EXPECT_TRUE(url.is_url);
  EXPECT_EQ(url.resolved, "s3://bucket/x.parquet");
  DataLocation local = RestoreDestination("a/../b/x.csv");
  EXPECT_FALSE(local.is_url);
  EXPECT_EQ(local.resolved.front(), '/');
  EXPECT_TRUE(local.resolved.ends_with("/b/x.csv")) << local.resolved;
  EXPECT_EQ(RestoreDestination("file:///tmp/x.csv").resolved, "/tmp/x.csv");
}

}  // namespace
}  // namespace respawn
