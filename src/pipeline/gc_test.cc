#include "pipeline/gc.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace respawn
