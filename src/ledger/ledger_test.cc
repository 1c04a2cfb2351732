#include "ledger/ledger.h"

#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <thread>

#include "ledger/ledger_test_util.h"
#include "ledger/repair.h"
#include "storage/chaos_store.h"

namespace respawn::ledger {
namespace {

using namespace ::respawn::ledger::testing;  // NOLINT

constexpr char kNs[] = "pipe/main";

// Runs every test against MemoryStore and PosixStore, and in coordinator mode (a PosixStore
// treated as if it could not put-if-absent, committing through a test coordinator; the
// PostgreSQL coordinator runs the same protocol in tests/coordinator_test.cc).
class LedgerTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "memory") {
      store_ = std::make_shared<MemoryStore>("ledger-test");
    } else {
      store_ = OpenPosix(dir_.path());
    }
    if (GetParam() == "coordinator") {
      coordinator_ = std::make_shared<StoreCoordinator>(OpenPosix(coordinator_dir_.path()));
    }
  }

  bool coordinated() const { return coordinator_ != nullptr; }

  // Options() with this test's commit mode.
  LedgerOptions Opts(LedgerMode mode = LedgerMode::kWrite, uint64_t compaction = 64) {
    LedgerOptions o = Options(mode, compaction);
    if (coordinator_ != nullptr) {
      o.coordinator = coordinator_;
      o.force_lease = true;
    }
    return o;
  }

  std::unique_ptr<Ledger> MustOpen() { return MustOpen(Opts()); }
  std::unique_ptr<Ledger> MustOpen(LedgerOptions options, std::shared_ptr<Store> store = nullptr) {
    auto l = Ledger::Open(store ? store : store_, kNs, options);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    return l.ok() ? std::move(l).value() : nullptr;
  }

  std::unique_ptr<Ledger> Reader(std::shared_ptr<Store> store = nullptr) {
    return MustOpen(Opts(LedgerMode::kReadOnly), store);
  }

  // Writes `bytes` as a data object of `stage` and returns it.
  DataObject Data(Ledger& l, const std::string& stage, const std::string& bytes) {
    auto key = l.DataKey(stage, "fp");
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    auto o = l.PutData(*key, bytes);
    EXPECT_TRUE(o.ok()) << o.status().ToString();
    return *o;
  }

  // Commits `n` entries "e0".."e<n-1>" (fingerprint "fp<i>"), one record each.
  void CommitMany(Ledger& l, int n, int offset = 0) {
    for (int i = offset; i < offset + n; ++i) {
      auto seq = l.Commit(Upsert("e" + std::to_string(i), MakeEntry("fp" + std::to_string(i))));
      ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    }
  }

  std::string Read(const std::string& key) {
    auto r = store_->Get(key);
    EXPECT_TRUE(r.ok()) << key << ": " << r.status().ToString();
    return r.ok() ? *r : "";
  }

  // The authoritative copy of record `seq`: the coordinator's row in coordinator mode, else the
  // store's object. Tests that damage or forge records go through these.
  std::string RecordBytes(uint64_t seq) {
    if (!coordinated()) return Read(Keys(kNs).Record(seq));
    auto r = coordinator_->store().Get(coordinator_->Key(Where(), seq));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "";
  }
  Status OverwriteRecord(uint64_t seq, const std::string& bytes) {
    if (!coordinated()) return store_->Put(Keys(kNs).Record(seq), bytes);
    return coordinator_->store().Put(coordinator_->Key(Where(), seq), bytes);
  }
  Status DeleteRecord(uint64_t seq) {
    if (!coordinated()) return store_->Delete(Keys(kNs).Record(seq));
    return coordinator_->store().Delete(coordinator_->Key(Where(), seq));
  }
  Status CreateRecord(uint64_t seq, const std::string& bytes) {
    if (coordinated()) return coordinator_->CreateIfAbsent(Where(), seq, bytes);
    PutOptions excl;
    excl.if_absent = true;
    return store_->Put(Keys(kNs).Record(seq), bytes, excl);
  }
  std::string Where() const { return store_->Url() + "/" + kNs; }

  TempDir dir_;
  TempDir coordinator_dir_;
  std::shared_ptr<Store> store_;
  std::shared_ptr<StoreCoordinator> coordinator_;  // "coordinator" only
};

INSTANTIATE_TEST_SUITE_P(Stores, LedgerTest, ::testing::Values("memory", "posix", "coordinator"),
                         [](const auto& info) { return info.param; });

TEST_P(LedgerTest, CommitAndRecoverRoundTrip) {
  auto w = MustOpen();
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->epoch(), 1u);
  EXPECT_EQ(w->sequence(), 1u);  // the epoch claim
  DataObject a = Data(*w, "orders", "id,amount\n1,10\n2,20\n");
  DataObject b = Data(*w, "orders", "more bytes");
  nlohmann::json meta = {{"rows", 2}, {"bytes", 20}};
  auto seq = w->Commit(Upsert("orders", MakeEntry("f-orders", {a, b}, meta)));
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  EXPECT_EQ(*seq, 2u);
  ASSERT_TRUE(w->Commit(Upsert("daily", MakeEntry("f-daily"))).ok());
  Changes rm;
  rm.removals.insert("daily");
  ASSERT_TRUE(w->Commit(rm).ok());
  LedgerState before = w->state();
  ASSERT_TRUE(w->Close().ok());
  EXPECT_EQ(w->Commit(Upsert("x", MakeEntry("f"))).status().code(),
            StatusCode::kFailedPrecondition);

  auto r = Reader();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->sequence(), 4u);
  EXPECT_EQ(r->state(), before);
  auto orders = r->Find("orders");
  ASSERT_TRUE(orders.has_value());
  EXPECT_FALSE(r->Find("daily").has_value());
  EXPECT_EQ(orders->fingerprint, "f-orders");
  EXPECT_EQ(orders->meta, meta);
  EXPECT_EQ(orders->sequence, 2u);
  EXPECT_EQ(orders->epoch, 1u);
  EXPECT_EQ(orders->run_id, w->run_id());
  EXPECT_GT(orders->committed_at_ms, 0);
  ASSERT_EQ(orders->objects.size(), 2u);
  auto bytes = r->GetData(orders->objects[0]);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, "id,amount\n1,10\n2,20\n");
  EXPECT_TRUE(r->VerifyData(*orders).ok());
  EXPECT_EQ(r->Commit(Upsert("x", MakeEntry("f"))).status().code(),
            StatusCode::kFailedPrecondition);

  // A second writer continues the chain with a higher epoch.
  auto w2 = MustOpen();
  EXPECT_EQ(w2->epoch(), 2u);
  EXPECT_EQ(w2->state().entries, before.entries);
}

TEST_P(LedgerTest, DataKeysAreUniqueAndValidated) {
  auto w = MustOpen();
  auto k1 = w->DataKey("orders/part-3", "abc");
  auto k2 = w->DataKey("orders/part-3", "abc");
  ASSERT_TRUE(k1.ok() && k2.ok());
  EXPECT_NE(*k1, *k2);
  EXPECT_EQ(k1->rfind("pipe/main/data/orders/part-3/abc/", 0), 0u) << *k1;
  EXPECT_EQ(k1->substr(k1->size() - 5), "/data");
  EXPECT_EQ(w->DataKey("../x", "abc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->DataKey("a//b", "abc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->DataKey("a", "f/g").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->DataKey("", "f").status().code(), StatusCode::kInvalidArgument);
  auto p = w->NewAttemptPrefix("s", "f");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->back(), '/');
  // A key named after the run parses back to it.
  auto run_key = w->RunDataKey("orders/p0001", "abc", ".parquet");
  ASSERT_TRUE(run_key.ok()) << run_key.status().ToString();
  std::optional<DataKeyParts> parts = w->keys().ParseDataKey(*run_key);
  ASSERT_TRUE(parts.has_value()) << *run_key;
  EXPECT_EQ(parts->run_id, w->run_id());
  EXPECT_EQ(parts->stage, "orders/p0001");
  EXPECT_EQ(parts->fingerprint, "abc");
  EXPECT_EQ(w->RunDataKey("s", "f", "parquet").status().code(), StatusCode::kInvalidArgument);
}

TEST_P(LedgerTest, PutDataFileAndGetDataToFileVerify) {
  auto w = MustOpen();
  std::string local = dir_.path() + "/local-input";
  if (GetParam() != "memory") local = dir_.path() + "-input";
  {
    std::ofstream out(local, std::ios::binary);
    out << std::string(100000, 'x') << "tail";
  }
  auto key = w->DataKey("big", "fp");
  ASSERT_TRUE(key.ok());
  auto o = w->PutDataFile(*key, local);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->size, 100004u);
  std::string out = local + ".out";
  EXPECT_TRUE(w->GetDataToFile(*o, out).ok());
  DataObject wrong = *o;
  wrong.xxh3 ^= 1;
  Status st = w->GetDataToFile(wrong, out);
  EXPECT_EQ(st.code(), StatusCode::kDataLoss) << st.ToString();
  EXPECT_FALSE(std::filesystem::exists(out));
  std::filesystem::remove(local);
}

TEST_P(LedgerTest, TruncatedOrAlteredDataIsDataLoss) {
  auto w = MustOpen();
  std::string bytes(5000, 'a');
  DataObject o = Data(*w, "s", bytes);
  ASSERT_TRUE(w->Commit(Upsert("s", MakeEntry("fp", {o}))).ok());
  Entry e = *w->Find("s");

  // Truncated.
  ASSERT_TRUE(store_->Put(o.key, bytes.substr(0, 4000)).ok());
  auto got = w->GetData(o);
  ASSERT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(got.status().message().find(o.key), std::string::npos) << got.status().ToString();
  EXPECT_NE(got.status().message().find("5000"), std::string::npos);
  EXPECT_NE(got.status().message().find("4000"), std::string::npos);
  EXPECT_EQ(w->VerifyData(e, /*checksum=*/false).code(), StatusCode::kDataLoss);
  EXPECT_EQ(w->VerifyData(e).code(), StatusCode::kDataLoss);

  // Same size, one byte changed.
  std::string altered = bytes;
  altered[2500] = 'b';
  ASSERT_TRUE(store_->Put(o.key, altered).ok());
  got = w->GetData(o);
  ASSERT_EQ(got.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(got.status().message().find("xxh3"), std::string::npos);
  EXPECT_TRUE(w->VerifyData(e, /*checksum=*/false).ok());
  EXPECT_EQ(w->VerifyData(e).code(), StatusCode::kDataLoss);

  // Gone.
  ASSERT_TRUE(store_->Delete(o.key).ok());
  EXPECT_EQ(w->GetData(o).status().code(), StatusCode::kNotFound);
}

TEST_P(LedgerTest, JoinedWritersCommitDisjointNamesConcurrently) {
  auto owner = MustOpen();
  constexpr int kThreads = 6;
  constexpr int kPerThread = 12;
  std::vector<std::unique_ptr<Ledger>> joined;
  for (int t = 0; t < kThreads; ++t) {
    joined.push_back(MustOpen(Opts(LedgerMode::kJoin, /*compaction=*/8)));
    ASSERT_EQ(joined.back()->epoch(), owner->epoch());
    ASSERT_EQ(joined.back()->run_id(), owner->run_id());
  }
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        std::string name = "t" + std::to_string(t) + "/p" + std::to_string(i);
        auto seq = joined[t]->Commit(Upsert(name, MakeEntry("fp")));
        if (!seq.ok()) {
          ADD_FAILURE() << name << ": " << seq.status().ToString();
          ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);

  auto r = Reader();
  const uint64_t expected_last = 1 + kThreads * kPerThread;
  EXPECT_EQ(r->sequence(), expected_last);
  EXPECT_EQ(r->state().entries.size(), static_cast<size_t>(kThreads * kPerThread));
  // No gaps, nothing beyond.
  Keys keys(kNs);
  for (uint64_t s = 1; s <= expected_last; ++s) EXPECT_TRUE(store_->Stat(keys.Record(s)).ok()) << s;
  EXPECT_TRUE(store_->Stat(keys.Record(expected_last + 1)).status().IsNotFound());
}

TEST_P(LedgerTest, ThreadsSharingOneLedgerCommit) {
  auto w = MustOpen(Opts(LedgerMode::kWrite, 5));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) {
        auto seq = w->Commit(Upsert("n" + std::to_string(t * 10 + i), MakeEntry("fp")));
        EXPECT_TRUE(seq.ok()) << seq.status().ToString();
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(w->sequence(), 41u);
  auto r = Reader();
  EXPECT_EQ(r->state(), w->state());
}

TEST_P(LedgerTest, ConflictingCommitsOfOneNameAreAborted) {
  auto a = MustOpen();
  auto b = MustOpen(Opts(LedgerMode::kJoin));
  ASSERT_TRUE(a->Commit(Upsert("x", MakeEntry("v1"))).ok());
  // b has not read a's commit: same name, different fingerprint.
  auto st = b->Commit(Upsert("x", MakeEntry("v2")));
  ASSERT_EQ(st.status().code(), StatusCode::kAborted) << st.status().ToString();
  EXPECT_NE(st.status().message().find("\"x\""), std::string::npos);
  EXPECT_NE(st.status().message().find(a->writer_id()), std::string::npos);
  // It read forward while trying: a fresh decision now commits.
  EXPECT_TRUE(b->Commit(Upsert("x", MakeEntry("v2"))).ok());

  // Same fingerprint concurrently is not a conflict (both computed the same thing).
  uint64_t base = a->sequence();
  ASSERT_TRUE(b->Commit(Upsert("y", MakeEntry("same"))).ok());
  CommitOptions opt;
  opt.base_sequence = base;
  EXPECT_TRUE(a->Commit(Upsert("y", MakeEntry("same")), opt).ok());

  // Removal against a concurrent upsert, and upsert against a concurrent removal.
  base = a->sequence();
  ASSERT_TRUE(b->Commit(Upsert("z", MakeEntry("z1"))).ok());
  Changes rm;
  rm.removals.insert("z");
  opt.base_sequence = base;
  EXPECT_EQ(a->Commit(rm, opt).status().code(), StatusCode::kAborted);
  ASSERT_TRUE(a->Refresh().ok());
  base = b->sequence();
  ASSERT_TRUE(a->Commit(rm).ok());
  opt.base_sequence = base;
  EXPECT_EQ(b->Commit(Upsert("z", MakeEntry("z2")), opt).status().code(), StatusCode::kAborted);

  // Disjoint names never conflict.
  EXPECT_TRUE(b->Commit(Upsert("w", MakeEntry("w"))).ok());
  EXPECT_TRUE(a->Commit(Upsert("v", MakeEntry("v"))).ok());
}

TEST_P(LedgerTest, InvalidChangesAreRejected) {
  auto w = MustOpen();
  Changes c = Upsert("x", MakeEntry("f"));
  c.removals.insert("x");
  EXPECT_EQ(w->Commit(c).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->Commit(Upsert("", MakeEntry("f"))).status().code(), StatusCode::kInvalidArgument);
  Entry bad = MakeEntry(std::string("\xff", 1));
  EXPECT_EQ(w->Commit(Upsert("x", bad)).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(w->sequence(), 1u);
}

TEST_P(LedgerTest, ZombieWriterIsFencedAndItsLateRecordIgnored) {
  auto a = MustOpen();
  ASSERT_TRUE(a->Commit(Upsert("a1", MakeEntry("f"))).ok());
  auto b = MustOpen();
  EXPECT_EQ(b->epoch(), 2u);
  auto st = a->Commit(Upsert("a2", MakeEntry("f")));
  ASSERT_EQ(st.status().code(), StatusCode::kFailedPrecondition) << st.status().ToString();
  EXPECT_NE(st.status().message().find("fenced"), std::string::npos);
  EXPECT_NE(st.status().message().find("epoch 2"), std::string::npos);
  EXPECT_NE(st.status().message().find(b->writer_id()), std::string::npos);
  // Sticky.
  EXPECT_EQ(a->Commit(Upsert("a3", MakeEntry("f"))).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(a->CollectObsolete().status().code(), StatusCode::kFailedPrecondition);

  // Force the zombie's record into the chain as if it had raced in: epoch 1 after epoch 2.
  Keys keys(kNs);
  uint64_t seq = b->sequence() + 1;
  std::string prev_checksum;
  ASSERT_TRUE(Unframe("k", RecordBytes(seq - 1), &prev_checksum).ok());
  Record zombie;
  zombie.sequence = seq;
  zombie.epoch = 1;
  zombie.writer = a->writer_id();
  zombie.epoch_owner = a->writer_id();
  zombie.run_id = a->run_id();
  zombie.commit_id = "zombie";
  zombie.prev = prev_checksum;
  zombie.changes = Upsert("zombie", MakeEntry("z"));
  zombie.changes.removals.insert("a1");
  auto bytes = EncodeRecord(zombie);
  ASSERT_TRUE(bytes.ok());
  ASSERT_TRUE(CreateRecord(seq, *bytes).ok());

  // b reads past it (its own commit lands after it) and ignores it.
  ASSERT_TRUE(b->Commit(Upsert("b1", MakeEntry("f"))).ok());
  EXPECT_EQ(b->sequence(), seq + 1);
  EXPECT_FALSE(b->Find("zombie").has_value());
  EXPECT_TRUE(b->Find("a1").has_value());
  auto r = Reader();
  EXPECT_EQ(r->sequence(), seq + 1);
  EXPECT_FALSE(r->Find("zombie").has_value());
  EXPECT_TRUE(r->Find("a1").has_value());
  EXPECT_TRUE(r->Find("b1").has_value());
  EXPECT_EQ(r->last_recovery().ignored_records, 1u);
}

TEST_P(LedgerTest, RecoveryNeverNeedsList) {
  for (auto mode : {NoListStore::Mode::kFail, NoListStore::Mode::kEmpty}) {
    SCOPED_TRACE(mode == NoListStore::Mode::kFail ? "list fails" : "list empty");
    TempDir dir;
    std::shared_ptr<Store> base = GetParam() == "memory"
                                      ? std::shared_ptr<Store>(std::make_shared<MemoryStore>())
                                      : OpenPosix(dir.path());
    auto nolist = std::make_shared<NoListStore>(base, mode);
    LedgerState expected;
    {
      auto w = MustOpen(Opts(LedgerMode::kWrite, 4), nolist);
      CommitMany(*w, 13);
      expected = w->state();
    }
    Keys keys(kNs);
    {
      auto r = MustOpen(Opts(LedgerMode::kReadOnly), nolist);
      EXPECT_EQ(r->state(), expected);
      EXPECT_EQ(r->sequence(), 14u);
    }
    // Without the head hint: probing from the beginning still finds the end.
    ASSERT_TRUE(base->Delete(keys.Head()).ok());
    {
      auto r = MustOpen(Opts(LedgerMode::kReadOnly), nolist);
      EXPECT_EQ(r->state(), expected);
      EXPECT_EQ(r->sequence(), 14u);
      EXPECT_EQ(r->last_recovery().snapshot_sequence, mode == NoListStore::Mode::kFail ? 0u : 0u);
    }
    // A writer on top of that continues without gaps.
    auto w = MustOpen(Opts(LedgerMode::kWrite, 4), nolist);
    EXPECT_EQ(w->sequence(), 15u);
    CommitMany(*w, 1, 100);
    EXPECT_TRUE(base->Stat(keys.Record(16)).ok());
  }
}

// (A head hint ahead of the records proves records were lost: RefusesAnEndBelowTheHeadHint.)
TEST_P(LedgerTest, StaleMissingOrCorruptHeadHintsStillFindTheLatest) {
  Keys keys(kNs);
  auto w = MustOpen(Opts(LedgerMode::kWrite, 1000));
  CommitMany(*w, 4);
  std::string old_head = Read(keys.Head());
  CommitMany(*w, 37, 4);
  LedgerState expected = w->state();
  const uint64_t last = w->sequence();
  ASSERT_EQ(last, 42u);

  struct Case {
    std::string name;
    std::optional<std::string> head;  // nullopt = delete it
  };
  std::vector<Case> cases = {
      {"stale", old_head}, {"missing", std::nullopt}, {"corrupt", "{\"not\": \"a head\"}"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    if (c.head) {
      ASSERT_TRUE(store_->Put(keys.Head(), *c.head).ok());
    } else {
      ASSERT_TRUE(store_->Delete(keys.Head()).ok());
    }
    auto r = Reader();
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->sequence(), last);
    EXPECT_EQ(r->state(), expected);
    // Gallop + binary search: logarithmic probes, not one per record.
    EXPECT_LE(r->last_recovery().probes, 16u) << r->last_recovery().probes;
  }
}

TEST_P(LedgerTest, CorruptRecordIsDataLossNamingTheKey) {
  Keys keys(kNs);
  {
    auto w = MustOpen(Opts(LedgerMode::kWrite, 1000));
    CommitMany(*w, 5);
  }
  std::string key = keys.Record(3);
  std::string bytes = RecordBytes(3);
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x20;
  for (const std::string& bad : {flipped, bytes.substr(0, bytes.size() / 3), std::string()}) {
    ASSERT_TRUE(OverwriteRecord(3, bad).ok());
    auto r = Ledger::Open(store_, kNs, Opts(LedgerMode::kReadOnly));
    ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
    EXPECT_NE(r.status().message().find(key), std::string::npos) << r.status().ToString();
    auto w = Ledger::Open(store_, kNs, Opts());
    EXPECT_EQ(w.status().code(), StatusCode::kDataLoss);
  }
  ASSERT_TRUE(OverwriteRecord(3, bytes).ok());
  EXPECT_TRUE(Ledger::Open(store_, kNs, Opts(LedgerMode::kReadOnly)).ok());
}

TEST_P(LedgerTest, MissingMiddleRecordIsDataLoss) {
  Keys keys(kNs);
  {
    auto w = MustOpen(Opts(LedgerMode::kWrite, 1000));
    CommitMany(*w, 6);
  }
  ASSERT_TRUE(DeleteRecord(4).ok());
  auto r = Ledger::Open(store_, kNs, Opts(LedgerMode::kReadOnly));
  ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  EXPECT_NE(r.status().message().find(keys.Record(4)), std::string::npos);
}

TEST_P(LedgerTest, RewrittenRecordBreaksTheChain) {
  // A record replaced by another valid record (what a writer without a valid lease could do)
  // is caught by the prev checksum of its successor.
  Keys keys(kNs);
  {
    auto w = MustOpen(Opts(LedgerMode::kWrite, 1000));
    CommitMany(*w, 5);
  }
  auto rec = DecodeRecord("k", 3, RecordBytes(3));
  ASSERT_TRUE(rec.ok());
  rec->commit_id = "someone-else";
  rec->changes = Upsert("other", MakeEntry("f"));
  ASSERT_TRUE(OverwriteRecord(3, *EncodeRecord(*rec)).ok());
  auto r = Ledger::Open(store_, kNs, Opts(LedgerMode::kReadOnly));
  ASSERT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  EXPECT_NE(r.status().message().find(keys.Record(4)), std::string::npos);
}

TEST_P(LedgerTest, CorruptOrMissingSnapshotFallsBack) {
  Keys keys(kNs);
  LedgerState expected;
  {
    auto w = MustOpen(Opts(LedgerMode::kWrite, 4));
    CommitMany(*w, 10);
    expected = w->state();
  }
  auto head = DecodeHead(keys.Head(), Read(keys.Head()));
  ASSERT_TRUE(head.ok());
  ASSERT_GT(head->snapshot_sequence, 0u);
  std::string snap_key = keys.Snapshot(head->snapshot_sequence);
  ASSERT_TRUE(store_->Put(snap_key, "garbage").ok());
  {
    auto r = Reader();
    EXPECT_EQ(r->state(), expected);
    EXPECT_LT(r->last_recovery().snapshot_sequence, head->snapshot_sequence);
  }
  ASSERT_TRUE(store_->Delete(snap_key).ok());
  auto r = Reader();
  EXPECT_EQ(r->state(), expected);
}

TEST_P(LedgerTest, CompactionBoundsWhatRecoveryReads) {
  auto counting = std::make_shared<CountingStore>(store_);
  constexpr uint64_t kInterval = 8;
  LedgerState expected;
  {
    auto w = MustOpen(Opts(LedgerMode::kWrite, kInterval), counting);
    CommitMany(*w, 200);
    expected = w->state();
  }
  counting->Reset();
  auto r = MustOpen(Opts(LedgerMode::kReadOnly), counting);
  EXPECT_EQ(r->state(), expected);
  RecoveryStats stats = r->last_recovery();
  EXPECT_GT(stats.snapshot_sequence, 0u);
  EXPECT_LT(stats.records_read, kInterval);
  // head + floor + snapshot + records after it + a few probes; no listing.
  EXPECT_LE(counting->gets.load(), 3 + kInterval) << counting->gets.load();
  EXPECT_LE(counting->stats.load(), 4u);
  EXPECT_EQ(counting->lists.load(), 0u);

  // Without compaction the same history costs a read per record.
  TempDir dir;
  std::shared_ptr<Store> other = GetParam() == "memory"
                                     ? std::shared_ptr<Store>(std::make_shared<MemoryStore>())
                                     : OpenPosix(dir.path());
  auto counting2 = std::make_shared<CountingStore>(other);
  {
    auto w = MustOpen(Opts(LedgerMode::kWrite, 100000), counting2);
    CommitMany(*w, 200);
  }
  counting2->Reset();
  auto r2 = MustOpen(Opts(LedgerMode::kReadOnly), counting2);
  EXPECT_GE(r2->last_recovery().records_read, 200u);
  // Coordinator mode reads the records from the coordinator, not the store.
  if (!coordinated()) {
    EXPECT_GE(counting2->gets.load(), 200u);
  }
}

TEST_P(LedgerTest, ObsoleteKeysCanBeDeletedAndRecoveryStillWorks) {
  Keys keys(kNs);
  auto w = MustOpen(Opts(LedgerMode::kWrite, 4));
  // History: "t" is rewritten many times, each with its own data object.
  std::vector<DataObject> objects;
  for (int i = 0; i < 30; ++i) {
    DataObject o = Data(*w, "t", "version " + std::to_string(i));
    objects.push_back(o);
    ASSERT_TRUE(w->Commit(Upsert("t", MakeEntry("fp" + std::to_string(i), {o}))).ok());
  }
  LedgerState expected = w->state();
  auto live = w->ReferencedKeys();
  ASSERT_TRUE(live.ok());
  EXPECT_EQ(*live, std::vector<std::string>{objects.back().key});
  auto history = w->ReferencedKeys(/*include_history=*/true);
  ASSERT_TRUE(history.ok());
  EXPECT_EQ(history->size(), objects.size());  // nothing collected yet: all of history

  auto garbage = w->CollectObsolete(2);
  ASSERT_TRUE(garbage.ok()) << garbage.status().ToString();
  EXPECT_GT(garbage->floor, 0u);
  EXPECT_FALSE(garbage->keys.empty());
  for (const auto& k : garbage->keys) {
    uint64_t rs = keys.SequenceOfRecord(k);
    uint64_t ss = keys.SequenceOfSnapshot(k);
    EXPECT_TRUE((rs > 0 && rs <= garbage->floor) || (ss > 0 && ss < garbage->floor)) << k;
  }
  auto deleted = store_->DeleteMany(garbage->keys);
  ASSERT_TRUE(deleted.ok());
  ASSERT_TRUE(deleted->FirstError().ok());
  EXPECT_TRUE(store_->Stat(keys.Record(1)).status().IsNotFound());
  if (coordinated()) {
    // Rows below the floor are gone from the coordinator too; the floor's own row stays.
    auto rows = coordinator_->Read(Where(), 1, garbage->floor);
    ASSERT_TRUE(rows.ok());
    ASSERT_EQ(rows->size(), 1u);
    EXPECT_EQ(rows->begin()->first, garbage->floor);
  }

  // History now starts at the floor: older versions' data is no longer referenced.
  history = w->ReferencedKeys(true);
  ASSERT_TRUE(history.ok());
  EXPECT_LT(history->size(), objects.size());
  EXPECT_TRUE(std::find(history->begin(), history->end(), objects.back().key) != history->end());

  {
    auto r = Reader();
    EXPECT_EQ(r->state(), expected);
  }
  // Without head.json, floor.json leads recovery to a snapshot that still exists.
  ASSERT_TRUE(store_->Delete(keys.Head()).ok());
  {
    auto r = Reader();
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->state(), expected);
  }
  // Writing continues.
  ASSERT_TRUE(w->Commit(Upsert("after-gc", MakeEntry("f"))).ok());
  auto r = Reader();
  EXPECT_TRUE(r->Find("after-gc").has_value());
}

TEST_P(LedgerTest, RefusesToStartOverACollectedLedger) {
  Keys keys(kNs);
  {
    auto w = MustOpen(Opts(LedgerMode::kWrite, 4));
    CommitMany(*w, 20);
    auto garbage = w->CollectObsolete(1);
    ASSERT_TRUE(garbage.ok());
    ASSERT_TRUE(store_->DeleteMany(garbage->keys).ok());
  }
  // Lose every snapshot: nothing can rebuild the early state.
  auto snaps = ListAll(*store_, keys.SnapshotPrefix());
  ASSERT_TRUE(snaps.ok());
  for (const auto& o : *snaps) ASSERT_TRUE(store_->Delete(o.key).ok());
  auto r = Ledger::Open(store_, kNs, Opts());
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.status().code() == StatusCode::kFailedPrecondition ||
              r.status().code() == StatusCode::kDataLoss)
      << r.status().ToString();
  EXPECT_TRUE(store_->Stat(keys.Record(1)).status().IsNotFound()) << "a new chain was started";
}

// After GC collected early records, a stray record 1 (restored from an old backup, say) and a
// missing head.json must not let a writer take that record as the whole chain: floor.json
// proves more existed.
TEST_P(LedgerTest, RefusesAnEndBelowWhatTheFloorOrHeadProves) {
  Keys keys(kNs);
  std::string record1, record2;
  LedgerState expected;
  {
    auto w = MustOpen(Options(LedgerMode::kWrite, 4));
    record1 = Read(keys.Record(1));
    CommitMany(*w, 1);
    record2 = Read(keys.Record(2));
    CommitMany(*w, 19, 1);
    expected = w->state();
    auto garbage = w->CollectObsolete(1);
    ASSERT_TRUE(garbage.ok());
    ASSERT_GT(garbage->floor, 2u);
    ASSERT_TRUE(store_->DeleteMany(garbage->keys).ok());
  }
  ASSERT_TRUE(store_->Delete(keys.Head()).ok());
  auto snaps = ListAll(*store_, keys.SnapshotPrefix());
  ASSERT_TRUE(snaps.ok());
  for (const auto& o : *snaps) ASSERT_TRUE(store_->Delete(o.key).ok());
  ASSERT_TRUE(store_->Put(keys.Record(1), record1).ok());
  ASSERT_TRUE(store_->Put(keys.Record(2), record2).ok());
  auto r = Ledger::Open(store_, kNs, Options());
  ASSERT_FALSE(r.ok()) << "a writer started over collected history";
  EXPECT_EQ(r.status().detail(), StatusDetail::kLedgerDamaged) << r.status().ToString();
  EXPECT_NE(r.status().message().find("floor.json names snapshot"), std::string::npos)
      << r.status().ToString();
  EXPECT_TRUE(store_->Stat(keys.Record(3)).status().IsNotFound()) << "a new chain was started";
}

TEST_P(LedgerTest, RefusesAnEndBelowTheHeadHint) {
  Keys keys(kNs);
  {
    auto w = MustOpen();
    CommitMany(*w, 6);
  }
  // The last two records vanish (a bad restore): head.json still names record 7.
  ASSERT_TRUE(store_->Delete(keys.Record(7)).ok());
  ASSERT_TRUE(store_->Delete(keys.Record(6)).ok());
  auto r = Ledger::Open(store_, kNs, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().detail(), StatusDetail::kLedgerDamaged) << r.status().ToString();
  EXPECT_NE(r.status().message().find("head.json names record 7"), std::string::npos)
      << r.status().ToString();
  EXPECT_TRUE(store_->Stat(keys.Record(6)).status().IsNotFound());
  // A hint far ahead of the records (they were lost, or deleted by hand) is refused the same way
  // (by a reader too; one without the coordinator of a coordinator-mode ledger may lag instead).
  if (GetParam() == "coordinator") return;
  ASSERT_TRUE(store_->Put(keys.Record(6), "").ok());
  ASSERT_TRUE(store_->Delete(keys.Record(6)).ok());
  HeadHint ahead{1000, 0, 1, "w", 0};
  ASSERT_TRUE(store_->Put(keys.Head(), *EncodeHead(ahead)).ok());
  r = Ledger::Open(store_, kNs, Options(LedgerMode::kReadOnly));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("head.json names record 1000"), std::string::npos)
      << r.status().ToString();
}

// A record damaged in the middle of the chain: inspection names it and what it held; repair
// replaces it by a void record, the chain reads again, and only that record's commit is lost.
TEST_P(LedgerTest, RepairReplacesADamagedRecordByAVoidOne) {
  if (GetParam() == "coordinator") GTEST_SKIP() << "repair of coordinator-mode ledgers: not yet";
  Keys keys(kNs);
  {
    auto w = MustOpen();
    CommitMany(*w, 8);  // records 2..9: e0..e7
  }
  std::string bytes = Read(keys.Record(5));  // e3
  bytes[bytes.size() / 2] ^= 0x01;
  ASSERT_TRUE(store_->Put(keys.Record(5), bytes).ok());
  ASSERT_FALSE(Ledger::Open(store_, kNs, Options(LedgerMode::kReadOnly)).ok());

  auto inspected = InspectLedger(*store_, kNs);
  ASSERT_TRUE(inspected.ok()) << inspected.status().ToString();
  ASSERT_EQ(inspected->damage.size(), 1u);
  EXPECT_EQ(inspected->damage[0].key, keys.Record(5));
  EXPECT_TRUE(inspected->damage[0].needed);
  ASSERT_FALSE(inspected->damage[0].held.empty());
  EXPECT_EQ(inspected->damage[0].held[0].rfind("e3", 0), 0u) << inspected->damage[0].held[0];
  EXPECT_EQ(Read(keys.Record(5)), bytes) << "inspection wrote";

  auto repaired = RepairLedger(*store_, kNs, "test-repair");
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  auto w = MustOpen();
  ASSERT_NE(w, nullptr);
  EXPECT_FALSE(w->Find("e3").has_value());
  for (int i : {0, 1, 2, 4, 5, 6, 7}) EXPECT_TRUE(w->Find("e" + std::to_string(i))) << i;
  CommitMany(*w, 1, 3);  // e3 again
  auto again = InspectLedger(*store_, kNs);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->ok()) << again->damage[0].key << ": " << again->damage[0].detail;
}

// A lost claim record: the commits after it act under its epoch, so its void must claim it, or
// replay would drop them as unclaimed.
TEST_P(LedgerTest, RepairOfALostClaimKeepsTheCommitsAfterIt) {
  if (GetParam() == "coordinator") GTEST_SKIP() << "repair of coordinator-mode ledgers: not yet";
  Keys keys(kNs);
  {
    auto w = MustOpen();
    CommitMany(*w, 2);  // 1 claim, 2-3
  }
  {
    auto w = MustOpen();   // 4 claim
    CommitMany(*w, 2, 2);  // 5-6
  }
  ASSERT_TRUE(store_->Delete(keys.Record(4)).ok());
  auto repaired = RepairLedger(*store_, kNs, "test-repair");
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  ASSERT_EQ(repaired->damage.size(), 1u);
  EXPECT_EQ(repaired->damage[0].kind, LedgerDamage::Kind::kMissing);
  auto r = Reader();
  ASSERT_NE(r, nullptr);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(r->Find("e" + std::to_string(i))) << i;
  EXPECT_EQ(r->state().max_epoch, 2u);
}

// The floor snapshot damaged after the records below it were collected: repair replaces it by an
// empty one (what it held is recomputed), and the records after it are kept.
TEST_P(LedgerTest, RepairOfACollectedFloorSnapshot) {
  if (GetParam() == "coordinator") GTEST_SKIP() << "repair of coordinator-mode ledgers: not yet";
  Keys keys(kNs);
  uint64_t floor = 0;
  {
    auto w = MustOpen(Options(LedgerMode::kWrite, 4));
    CommitMany(*w, 12);
    auto garbage = w->CollectObsolete(1);
    ASSERT_TRUE(garbage.ok());
    floor = garbage->floor;
    ASSERT_TRUE(store_->DeleteMany(garbage->keys).ok());
    CommitMany(*w, 2, 100);
  }
  ASSERT_GT(floor, 0u);
  std::string snap = Read(keys.Snapshot(floor));
  snap[snap.size() / 2] ^= 0x20;
  ASSERT_TRUE(store_->Put(keys.Snapshot(floor), snap).ok());
  ASSERT_TRUE(store_->Delete(keys.Head()).ok());
  auto snaps = ListAll(*store_, keys.SnapshotPrefix());
  ASSERT_TRUE(snaps.ok());
  for (const auto& o : *snaps) {
    if (o.key != keys.Snapshot(floor)) {
      ASSERT_TRUE(store_->Delete(o.key).ok());
    }
  }
  ASSERT_FALSE(Ledger::Open(store_, kNs, Options(LedgerMode::kReadOnly)).ok());
  auto repaired = RepairLedger(*store_, kNs, "test-repair");
  ASSERT_TRUE(repaired.ok()) << repaired.status().ToString();
  auto w = MustOpen();
  ASSERT_NE(w, nullptr);
  EXPECT_TRUE(w->Find("e100").has_value());
  EXPECT_TRUE(w->Find("e101").has_value());
  ASSERT_TRUE(w->Commit(Upsert("later", MakeEntry("f"))).ok());
}

TEST_P(LedgerTest, LostPutAnswerCommitsExactlyOnce) {
  // The lost answers reach the ledger through the store's retry layer, as in production.
  auto lossy = Retrying(std::make_shared<LostAnswerStore>(store_, "/ledger/rec/", 3));
  LedgerOptions options = Opts();
  std::shared_ptr<LostAnswerCoordinator> lossy_coordinator;
  if (coordinated()) {
    // The answer to the insert is lost (the connection broke after it landed).
    lossy_coordinator = std::make_shared<LostAnswerCoordinator>(coordinator_, 3);
    options.coordinator = lossy_coordinator;
  }
  auto w = MustOpen(options, lossy);  // the claim's answer is lost once
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->sequence(), 1u);
  auto seq = w->Commit(Upsert("x", MakeEntry("f")));
  ASSERT_TRUE(seq.ok()) << seq.status().ToString();
  EXPECT_EQ(*seq, 2u);
  ASSERT_TRUE(w->Commit(Upsert("y", MakeEntry("f"))).ok());
  auto r = Reader();
  EXPECT_EQ(r->sequence(), 3u);
  EXPECT_EQ(r->state(), w->state());
  if (lossy_coordinator != nullptr) {
    EXPECT_EQ(lossy_coordinator->left(), 0);
  }
}

TEST_P(LedgerTest, ReadOnlyAndJoinPreconditions) {
  auto j = Ledger::Open(store_, kNs, Opts(LedgerMode::kJoin));
  EXPECT_EQ(j.status().code(), StatusCode::kFailedPrecondition) << j.status().ToString();
  auto ro = Reader();
  EXPECT_EQ(ro->sequence(), 0u);
  EXPECT_EQ(ro->Commit(Upsert("x", MakeEntry("f"))).status().code(),
            StatusCode::kFailedPrecondition);
  auto w = MustOpen();
  LedgerOptions other_run = Opts(LedgerMode::kJoin);
  other_run.run_id = "not-the-owner";
  EXPECT_EQ(Ledger::Open(store_, kNs, other_run).status().code(), StatusCode::kFailedPrecondition);
  LedgerOptions same_run = Opts(LedgerMode::kJoin);
  same_run.run_id = w->run_id();
  EXPECT_TRUE(Ledger::Open(store_, kNs, same_run).ok());
  // A reader that refreshes sees new commits.
  ASSERT_TRUE(w->Commit(Upsert("x", MakeEntry("f"))).ok());
  ASSERT_TRUE(ro->Refresh().ok());
  EXPECT_TRUE(ro->Find("x").has_value());
}

TEST_P(LedgerTest, BadNamespaceOrOptions) {
  EXPECT_EQ(Ledger::Open(store_, "/abs", Opts()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Ledger::Open(store_, "a/../b", Opts()).status().code(), StatusCode::kInvalidArgument);
  LedgerOptions o = Opts();
  o.compaction_interval = 0;
  EXPECT_EQ(Ledger::Open(store_, kNs, o).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Ledger::Open(nullptr, kNs, Opts()).status().code(), StatusCode::kInvalidArgument);
  // The root namespace works.
  auto w = Ledger::Open(store_, "", Opts());
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(store_->Stat("ledger/rec/00000000000000000001.json").ok());
}

TEST_P(LedgerTest, CommitModeIsRecordedAndChecked) {
  const std::string mode = coordinated() ? "coordinator" : "put-if-absent";
  {
    auto w = MustOpen();
    EXPECT_EQ(CommitModeName(w->commit_mode()), mode);
    EXPECT_EQ(w->state().commit_mode, mode);
    CommitMany(*w, 3);
  }
  // A snapshot carries it too.
  {
    auto w = MustOpen(Opts(LedgerMode::kWrite, 1));
    CommitMany(*w, 2, 10);
  }
  auto r = Reader();
  EXPECT_GT(r->last_recovery().snapshot_sequence, 0u);
  EXPECT_EQ(r->state().commit_mode, mode);
  // A writer in another mode refuses, naming both modes; nothing is written.
  const uint64_t before = r->sequence();
  LedgerOptions other = Options();
  if (coordinated()) {
    other.force_lease = true;
    other.single_writer = true;  // no coordinator: the lease
  } else {
    other.force_lease = true;
    other.coordinator = std::make_shared<StoreCoordinator>(std::make_shared<MemoryStore>());
  }
  auto refused = Ledger::Open(store_, kNs, other);
  ASSERT_EQ(refused.status().code(), StatusCode::kFailedPrecondition)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("\"" + mode + "\""), std::string::npos)
      << refused.status().ToString();
  EXPECT_NE(
      refused.status().message().find(coordinated() ? "\"single-writer\"" : "\"coordinator\""),
      std::string::npos)
      << refused.status().ToString();
  ASSERT_TRUE(r->Refresh().ok());
  EXPECT_EQ(r->sequence(), before);
  // Joining in another mode refuses too; reading works in any mode.
  other.mode = LedgerMode::kJoin;
  EXPECT_EQ(Ledger::Open(store_, kNs, other).status().code(), StatusCode::kFailedPrecondition);
  other.mode = LedgerMode::kReadOnly;
  EXPECT_TRUE(Ledger::Open(store_, kNs, other).ok());
}

TEST_P(LedgerTest, WithoutPutIfAbsentNeedsACoordinatorOrTheOptIn) {
  if (coordinated()) GTEST_SKIP() << "about stores without a coordinator";
  auto no_pia = std::make_shared<NoConditionalPutStore>(store_);
  LedgerOptions o = Options();
  auto refused = Ledger::Open(no_pia, kNs, o);
  ASSERT_EQ(refused.status().code(), StatusCode::kFailedPrecondition)
      << refused.status().ToString();
  EXPECT_NE(refused.status().message().find("coordinator"), std::string::npos);
  EXPECT_NE(refused.status().message().find("--single-writer"), std::string::npos);
  EXPECT_TRUE(ListAll(*store_, "pipe/").value().empty()) << "a refused writer wrote something";
  o.mode = LedgerMode::kJoin;
  EXPECT_EQ(Ledger::Open(no_pia, kNs, o).status().code(), StatusCode::kFailedPrecondition);
  // Readers need no mode.
  EXPECT_TRUE(Ledger::Open(no_pia, kNs, Options(LedgerMode::kReadOnly)).ok());
  // Opted in: the lease.
  o.mode = LedgerMode::kWrite;
  o.single_writer = true;
  auto w = Ledger::Open(no_pia, kNs, o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ((*w)->commit_mode(), CommitMode::kSingleWriter);
  EXPECT_EQ((*w)->state().commit_mode, "single-writer");
  ASSERT_TRUE((*w)->Commit(Upsert("x", MakeEntry("f"))).ok());
  // A probe that could not tell fails closed, with its own (retryable) error.
  Capabilities unknown;
  unknown.put_if_absent_error = Unavailable("probe: connection reset");
  auto mode = ChooseCommitMode(unknown, Options(), "the store x");
  EXPECT_EQ(mode.status().code(), StatusCode::kUnavailable) << mode.status().ToString();
}

TEST_P(LedgerTest, SurvivesTransientStoreErrors) {
  if (GetParam() != "memory") GTEST_SKIP() << "one backend is enough for this";
  ChaosSpec spec;
  spec.error_rate = 0.15;
  spec.after_rate = 0.15;
  spec.seed = 7;
  auto chaos = std::make_shared<ChaosStore>(store_, spec);
  LedgerOptions o = Opts(LedgerMode::kWrite, 5);
  RetryPolicy retry = o.retry;
  retry.max_attempts = 20;
  // The store's retry layer above the faults, as OpenStore puts it under chaos.
  auto w = Ledger::Open(Retrying(chaos, retry), kNs, o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  std::set<std::string> committed;
  for (int i = 0; i < 60; ++i) {
    std::string name = "n" + std::to_string(i);
    auto seq = (*w)->Commit(Upsert(name, MakeEntry("f")));
    ASSERT_TRUE(seq.ok()) << seq.status().ToString();
    committed.insert(name);
  }
  auto r = Reader();
  EXPECT_EQ(r->state(), (*w)->state());
  EXPECT_EQ(r->state().entries.size(), committed.size());
  EXPECT_EQ(r->sequence(), 61u);  // no duplicate records
  EXPECT_GT(chaos->injected_errors(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Single-writer mode: the lease times everything on this process's steady clock.

class SlowRecordPuts : public StoreWrapper {
 public:
  using StoreWrapper::Put;
  using StoreWrapper::StoreWrapper;
  Status Put(std::string_view key, std::string_view data, const PutOptions& o) override {
    if (key.find("/ledger/rec/") != std::string_view::npos) {
      int n = ++record_puts;
      if (fail_record_puts) {
        // Far more attempts than the lease's time allows: stop the test instead of retrying
        // for the full retry deadline.
        if (n >= kGiveUp) return InvalidArgument("test: too many record PUT attempts");
        return Unavailable("test: record PUT failed");
      }
      clock->SleepFor(record_put_delay);
    }
    return target_->Put(key, data, o);
  }
  static constexpr int kGiveUp = 1000;
  std::shared_ptr<Clock> clock = Clock::System();  // what the delay sleeps on
  std::chrono::milliseconds record_put_delay{0};
  bool fail_record_puts = false;
  std::atomic<int> record_puts{0};
};

// The lease's times on `clock`: tests pass a ManualClock, so no test waits for a lease.
LedgerOptions LeaseOptionsForTest(std::shared_ptr<ManualClock> clock) {
  LedgerOptions o = Options();
  o.clock = std::move(clock);
  o.single_writer = true;
  o.lease.ttl = std::chrono::milliseconds(400);
  o.lease.settle = std::chrono::milliseconds(10);
  o.lease.max_clock_skew = std::chrono::milliseconds(50);
  return o;
}

// Another holder's lease whose wall-clock expiry says nothing true about now (its clock is
// off by an hour either way): an acquirer goes by how long it has itself seen that version.
TEST(LeaseTest, AnotherHoldersExpiryIsTimedOnTheAcquirersOwnClock) {
  for (int64_t offset_ms : {-3'600'000, 3'600'000}) {
    SCOPED_TRACE(offset_ms < 0 ? "holder's clock an hour behind" : "an hour ahead");
    auto clock = std::make_shared<ManualClock>();
    auto store = std::make_shared<NoConditionalPutStore>(std::make_shared<MemoryStore>());
    Lease other;
    other.holder = "other-host/1/abc";
    other.nonce = "n1";
    other.run_id = "other-run";
    other.epoch = 1;
    other.acquired_at_ms = clock->WallNowMs() + offset_ms;
    other.expires_at_ms = other.acquired_at_ms + 400;
    other.ttl_ms = 400;
    ASSERT_TRUE(store->Put(Keys(kNs).Lease(), *EncodeLease(other)).ok());
    // Not waiting: the version was only just seen here, so it is live whatever it says.
    LedgerOptions o = LeaseOptionsForTest(clock);
    o.lease.wait = std::chrono::milliseconds(0);
    auto refused = Ledger::Open(store, kNs, o);
    ASSERT_EQ(refused.status().code(), StatusCode::kFailedPrecondition)
        << refused.status().ToString();
    EXPECT_NE(refused.status().message().find("other-host/1/abc"), std::string::npos);
    // Waiting: once unchanged for its TTL (+ skew) as seen here, it is taken over -- also when
    // its wall-clock expiry is an hour in the future.
    o.lease.wait = std::chrono::seconds(30);
    const auto before = clock->SteadyNow();
    auto w = Ledger::Open(store, kNs, o);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    // ... and not before: taken over after TTL + skew of this process's (manual) time.
    EXPECT_GE(clock->SteadyNow() - before, o.lease.ttl + o.lease.max_clock_skew);
    auto lease = DecodeLease("lease", store->Get(Keys(kNs).Lease()).ValueOr(""));
    ASSERT_TRUE(lease.ok());
    EXPECT_EQ(lease->holder, (*w)->writer_id());
  }
}

// A renewal rewrites the lease object, which starts the observation over: a live holder that
// keeps renewing is never taken over.
TEST(LeaseTest, ARenewingHolderIsNotTakenOver) {
  auto clock = std::make_shared<ManualClock>();
  auto store = std::make_shared<NoConditionalPutStore>(std::make_shared<MemoryStore>());
  LedgerOptions o = LeaseOptionsForTest(clock);
  auto holder = Ledger::Open(store, kNs, o);
  ASSERT_TRUE(holder.ok()) << holder.status().ToString();
  // While the second writer waits, the holder commits every 50 ms of (manual) time.
  int commits = 0;
  clock->SetSleepHook([&](std::chrono::nanoseconds d) {
    for (auto left = d; left.count() > 0; left -= std::chrono::milliseconds(50)) {
      clock->Advance(std::min<std::chrono::nanoseconds>(left, std::chrono::milliseconds(50)));
      // Each commit renews the lease once less than half of it is left.
      Status st =
          (*holder)->Commit(Upsert("k" + std::to_string(commits++), MakeEntry("f"))).status();
      if (!st.ok()) ADD_FAILURE() << st.ToString();
    }
  });
  LedgerOptions other = o;
  other.lease.wait = std::chrono::milliseconds(1500);  // several TTLs
  const auto before = clock->SteadyNow();
  auto second = Ledger::Open(store, kNs, other);
  clock->SetSleepHook(nullptr);
  EXPECT_GE(clock->SteadyNow() - before, other.lease.wait);  // it did wait that long
  EXPECT_GE(commits, 1500 / 50);
  ASSERT_EQ(second.status().code(), StatusCode::kFailedPrecondition) << second.status().ToString();
  EXPECT_NE(second.status().message().find((*holder)->writer_id()), std::string::npos);
}

// A record PUT that outlasts the time left on the lease does not count: the writer stops
// (its lease may have passed to another writer meanwhile).
TEST(LeaseTest, ARecordPutThatOutlastsTheLeaseStopsTheWriter) {
  auto clock = std::make_shared<ManualClock>();
  auto slow = std::make_shared<SlowRecordPuts>(
      std::make_shared<NoConditionalPutStore>(std::make_shared<MemoryStore>()));
  slow->clock = clock;
  auto w = Ledger::Open(slow, kNs, LeaseOptionsForTest(clock));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE((*w)->Commit(Upsert("fast", MakeEntry("f"))).ok());
  slow->record_put_delay = std::chrono::milliseconds(500);  // longer than the whole TTL
  auto st = (*w)->Commit(Upsert("slow", MakeEntry("f")));
  ASSERT_EQ(st.status().code(), StatusCode::kFailedPrecondition) << st.status().ToString();
  EXPECT_NE(st.status().message().find("ran out"), std::string::npos) << st.status().ToString();
  slow->record_put_delay = std::chrono::milliseconds(0);
  EXPECT_EQ((*w)->Commit(Upsert("after", MakeEntry("f"))).status().code(),
            StatusCode::kFailedPrecondition);  // sticky
}

// Retries of a failing record PUT (by the store's retry layer, store.h) stop when the lease's
// time is up, not at the retry policy's deadline (5 minutes here): with at least 5 ms between
// attempts, a 400 ms lease leaves room for fewer than 80 of them.
TEST(LeaseTest, RecordPutRetriesStopAtTheLeasesTimeLeft) {
  auto clock = std::make_shared<ManualClock>();
  auto slow = std::make_shared<SlowRecordPuts>(
      std::make_shared<NoConditionalPutStore>(std::make_shared<MemoryStore>()));
  LedgerOptions o = LeaseOptionsForTest(clock);
  RetryPolicy retry;
  retry.max_attempts = 100000;
  retry.base_delay = std::chrono::milliseconds(20);
  retry.max_delay = std::chrono::milliseconds(20);  // full jitter: 5..20 ms
  retry.deadline = std::chrono::minutes(5);
  auto w = Ledger::Open(std::make_shared<RetryStore>(slow, retry, clock), kNs, o);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  slow->fail_record_puts = true;
  auto st = (*w)->Commit(Upsert("x", MakeEntry("f")));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.status().code(), StatusCode::kInvalidArgument) << st.status().ToString();
  EXPECT_GT(slow->record_puts.load(), 2);  // the claim's, then more than one attempt
  EXPECT_LT(slow->record_puts.load(), SlowRecordPuts::kGiveUp)
      << "retries were not bounded by the lease";
}

// Commits that queue while one publishes go out together in one record; each caller gets that
// record's sequence, and the state holds every change. (Grouping is opt-in: max_commit_group.)
TEST(GroupCommitTest, CommitsQueuedBehindAPublishShareOneRecord) {
  auto gate = std::make_shared<GatedStore>(std::make_shared<MemoryStore>("group"), "/ledger/rec/");
  LedgerOptions options = Options();
  options.max_commit_group = 64;
  auto ledger = Ledger::Open(gate, "pipe/main", options);
  ASSERT_TRUE(ledger.ok()) << ledger.status().ToString();
  Ledger& l = **ledger;
  const uint64_t start = l.sequence();
  constexpr int kWaiting = 6;
  gate->Close();
  std::vector<std::thread> threads;
  std::vector<Result<uint64_t>> results(kWaiting + 1, Status(Internal("not run")));
  threads.emplace_back([&] { results[0] = l.Commit(Upsert("first", MakeEntry("f"))); });
  gate->AwaitEntered(1);  // the first commit is publishing and held at the gate
  for (int i = 1; i <= kWaiting; ++i) {
    threads.emplace_back([&, i] {
      results[i] = l.Commit(Upsert("n" + std::to_string(i), MakeEntry("f" + std::to_string(i))));
    });
  }
  while (l.queued_commits() < kWaiting) std::this_thread::yield();
  gate->Open();
  for (std::thread& t : threads) t.join();
  ASSERT_TRUE(results[0].ok()) << results[0].status().ToString();
  EXPECT_EQ(*results[0], start + 1);
  for (int i = 1; i <= kWaiting; ++i) {
    ASSERT_TRUE(results[i].ok()) << results[i].status().ToString();
    EXPECT_EQ(*results[i], start + 2) << i;  // one record for all of them
  }
  EXPECT_EQ(l.sequence(), start + 2);
  for (int i = 1; i <= kWaiting; ++i) {
    std::optional<Entry> e = l.Find("n" + std::to_string(i));
    ASSERT_TRUE(e.has_value()) << i;
    EXPECT_EQ(e->fingerprint, "f" + std::to_string(i));
    EXPECT_EQ(e->sequence, start + 2);
  }
  // A reader replays the same state from the records.
  auto reader = Ledger::Open(gate, "pipe/main", Options(LedgerMode::kReadOnly));
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->state().entries, l.state().entries);
}

// A queued commit that conflicts with what was committed after its base fails on its own, and
// a queued commit to a name another queued one changes goes into a later record (the order of
// commits to one name is kept): it then conflicts like any commit decided before the other
// landed. The rest of the group is published.
TEST(GroupCommitTest, EachQueuedCommitGetsItsOwnResult) {
  auto gate = std::make_shared<GatedStore>(std::make_shared<MemoryStore>("group"), "/ledger/rec/");
  LedgerOptions options = Options();
  options.max_commit_group = 64;
  auto ledger = Ledger::Open(gate, "pipe/main", options);
  ASSERT_TRUE(ledger.ok());
  Ledger& l = **ledger;
  const uint64_t base = l.sequence();
  gate->Close();
  Result<uint64_t> first = Status(Internal("not run"));
  Result<uint64_t> stale = Status(Internal("not run"));
  Result<uint64_t> b = Status(Internal("not run"));
  Result<uint64_t> a1 = Status(Internal("not run"));
  Result<uint64_t> a2 = Status(Internal("not run"));
  std::thread t0([&] { first = l.Commit(Upsert("x", MakeEntry("x1"))); });
  gate->AwaitEntered(1);
  // Decided before "x" changed: conflicts.
  CommitOptions old_base;
  old_base.base_sequence = base;
  std::thread t1([&] { stale = l.Commit(Upsert("x", MakeEntry("x2")), old_base); });
  while (l.queued_commits() < 1) std::this_thread::yield();
  std::thread t2([&] { a1 = l.Commit(Upsert("a", MakeEntry("a1"))); });
  while (l.queued_commits() < 2) std::this_thread::yield();
  std::thread t3([&] { b = l.Commit(Upsert("b", MakeEntry("b1"))); });
  while (l.queued_commits() < 3) std::this_thread::yield();
  std::thread t4([&] { a2 = l.Commit(Upsert("a", MakeEntry("a2"))); });
  while (l.queued_commits() < 4) std::this_thread::yield();
  gate->Open();
  for (std::thread* t : {&t0, &t1, &t2, &t3, &t4}) t->join();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(stale.status().code(), StatusCode::kAborted) << stale.status().ToString();
  ASSERT_TRUE(a1.ok()) << a1.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(*a1, *first + 1);
  EXPECT_EQ(*b, *a1);  // grouped with a1 (t1's conflict left the group)
  EXPECT_EQ(a2.status().code(), StatusCode::kAborted) << a2.status().ToString();
  EXPECT_EQ(l.sequence(), *a1);
  EXPECT_EQ(l.Find("x")->fingerprint, "x1");
  EXPECT_EQ(l.Find("a")->fingerprint, "a1");
  EXPECT_EQ(l.Find("b")->fingerprint, "b1");
}

// head.json is written after a claim, every head_interval records and at Close.
TEST(HeadHintTest, WrittenEveryIntervalAndAtClose) {
  auto store = std::make_shared<MemoryStore>("head");
  LedgerOptions options = Options();
  options.head_interval = 3;
  auto ledger = Ledger::Open(store, "pipe/main", options);
  ASSERT_TRUE(ledger.ok());
  Keys keys("pipe/main");
  auto head = [&]() -> uint64_t {
    Result<std::string> bytes = store->Get(keys.Head());
    if (!bytes.ok()) return 0;
    Result<HeadHint> h = DecodeHead(keys.Head(), *bytes);
    return h.ok() ? h->sequence : 0;
  };
  const uint64_t claimed = (*ledger)->sequence();
  EXPECT_EQ(head(), claimed);
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE((*ledger)->Commit(Upsert("k" + std::to_string(i), MakeEntry("f"))).ok());
    EXPECT_EQ(head(), i < 3 ? claimed : claimed + 3) << i;
  }
  ASSERT_TRUE((*ledger)->Close().ok());
  EXPECT_EQ(head(), claimed + 4);
  // A hint behind the end costs only probes: recovery still finds it.
  auto reader = Ledger::Open(store, "pipe/main", Options(LedgerMode::kReadOnly));
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->sequence(), claimed + 4);
}

}  // namespace
}  // namespace respawn::ledger
