#include "pipeline/checkpointer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <mutex>

#include "ledger/ledger_test_util.h"
#include "storage/memory_store.h"
#include "util/hash.h"

namespace respawn {
namespace {

using ledger::testing::GatedStore;
using ledger::testing::TempDir;

// Puts of keys containing "fail" are refused.
class FailingStore : public StoreWrapper {
 public:
  using StoreWrapper::StoreWrapper;
  Status PutFile(std::string_view key, const std::string& path, const PutOptions& o = {}) override {
    if (key.find("fail") != std::string_view::npos) return PermissionDenied("test: refused");
    return target_->PutFile(key, path, o);
  }
};

// What each job's `done` reported.
struct Outcomes {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::pair<Status, uint64_t>> by_entry;
  std::map<std::string, int> calls;

  std::function<void(const Status&, uint64_t)> For(const std::string& entry) {
    return [this, entry](const Status& s, uint64_t seq) {
      std::lock_guard<std::mutex> lock(mu);
      by_entry[entry] = {s, seq};
      ++calls[entry];
      cv.notify_all();
    };
  }
  void Await(const std::string& entry) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return by_entry.count(entry) > 0; });
  }
};

class CheckpointerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    memory_ = std::make_shared<MemoryStore>("ckpt");
    gate_ = std::make_shared<GatedStore>(std::make_shared<FailingStore>(memory_), "/gated");
    auto ledger = ledger::Ledger::Open(gate_, "pipelines/t", ledger::testing::Options());
    ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
    ledger_ = std::move(*ledger);
  }

  // A job for `entry` whose object `name` holds `bytes` (written to a local file).
  CheckpointJob Job(const std::string& entry, const std::string& name, const std::string& bytes,
                    std::vector<int> after = {}) {
    CheckpointJob job;
    job.entry = entry;
    job.what = entry;
    job.value.fingerprint = "fp-" + entry;
    job.path = dir_.path() + "/" + name;
    std::ofstream(job.path, std::ios::binary) << bytes;
    job.object = {"pipelines/t/data/" + name + "/fp/att/run.parquet", bytes.size(), Xxh3(bytes)};
    job.after = std::move(after);
    job.done = outcomes_.For(entry);
    return job;
  }

  TempDir dir_;
  std::shared_ptr<MemoryStore> memory_;
  std::shared_ptr<GatedStore> gate_;
  std::shared_ptr<ledger::Ledger> ledger_;
  Outcomes outcomes_;
};

TEST_F(CheckpointerTest, UploadsThenCommitsEveryJob) {
  {
    Checkpointer checkpointer(ledger_, 3);
    for (int i = 0; i < 8; ++i) {
      std::string n = std::to_string(i);
      EXPECT_EQ(checkpointer.Submit(Job("stage/s" + n, "s" + n, "bytes " + n)), i);
    }
    EXPECT_TRUE(checkpointer.Drain().ok());
    EXPECT_EQ(checkpointer.committed(), 8u);
  }
  for (int i = 0; i < 8; ++i) {
    const std::string entry = "stage/s" + std::to_string(i);
    EXPECT_EQ(outcomes_.calls[entry], 1) << entry;
    ASSERT_TRUE(outcomes_.by_entry[entry].first.ok()) << outcomes_.by_entry[entry].first.ToString();
    std::optional<ledger::Entry> e = ledger_->Find(entry);
    ASSERT_TRUE(e.has_value()) << entry;
    EXPECT_EQ(e->sequence, outcomes_.by_entry[entry].second);
    EXPECT_EQ(e->fingerprint, "fp-" + entry);
    ASSERT_EQ(e->objects.size(), 1u);
    // The object is in the store, verified against what the commit names.
    EXPECT_TRUE(ledger_->VerifyData(*e).ok()) << entry;
  }
}

TEST_F(CheckpointerTest, AJobCommitsOnlyAfterTheJobsItReadAndNotIfOneFailed) {
  gate_->Close();
  Checkpointer checkpointer(ledger_, 2);
  const int a = checkpointer.Submit(Job("stage/a", "gated-a", "aaa"));
  const int failed = checkpointer.Submit(Job("stage/f", "fail-f", "fff"));
  checkpointer.Submit(Job("stage/b", "b", "bbb", {a}));
  checkpointer.Submit(Job("stage/c", "c", "ccc", {a, failed}));
  outcomes_.Await("stage/f");
  outcomes_.Await("stage/c");  // failed input: not committed, without waiting for a
  gate_->AwaitEntered(1);
  EXPECT_FALSE(ledger_->Find("stage/b").has_value()) << "b committed before a";
  gate_->Open();
  EXPECT_TRUE(checkpointer.Drain().ok());
  EXPECT_EQ(outcomes_.by_entry["stage/f"].first.code(), StatusCode::kPermissionDenied);
  EXPECT_TRUE(outcomes_.by_entry["stage/c"].first.IsCancelled());
  EXPECT_FALSE(ledger_->Find("stage/c").has_value());
  ASSERT_TRUE(outcomes_.by_entry["stage/a"].first.ok());
  ASSERT_TRUE(outcomes_.by_entry["stage/b"].first.ok());
  EXPECT_LT(outcomes_.by_entry["stage/a"].second, outcomes_.by_entry["stage/b"].second);
}

TEST_F(CheckpointerTest, DrainAbandonsUploadsStillRunningAtTheDeadline) {
  gate_->Close();
  auto checkpointer = std::make_unique<Checkpointer>(ledger_, 2);
  checkpointer->Submit(Job("stage/stuck", "gated-stuck", "sss"));
  checkpointer->Submit(Job("stage/quick", "quick", "qqq"));
  outcomes_.Await("stage/quick");
  gate_->AwaitEntered(1);  // the stuck upload is in flight
  Status drained = checkpointer->Drain(std::chrono::steady_clock::now());
  EXPECT_TRUE(drained.IsCancelled()) << drained.ToString();
  // What completed is committed; the stuck one is reported and never committed.
  EXPECT_TRUE(outcomes_.by_entry["stage/quick"].first.ok());
  EXPECT_TRUE(outcomes_.by_entry["stage/stuck"].first.IsCancelled());
  // No new work after a drain.
  EXPECT_EQ(checkpointer->Submit(Job("stage/late", "late", "lll")), -1);
  EXPECT_TRUE(outcomes_.by_entry["stage/late"].first.IsCancelled());
  checkpointer.reset();  // does not wait for the stuck upload
  gate_->Open();         // it lands later, as an orphan nothing names
  EXPECT_FALSE(ledger_->Find("stage/stuck").has_value());
  EXPECT_EQ(outcomes_.calls["stage/stuck"], 1);
}

}  // namespace
}  // namespace respawn
