#include "ledger/record.h"

#include <gtest/gtest.h>

namespace respawn::ledger {
namespace {

Record SampleRecord() {
  Record r;
  r.sequence = 7;
  r.kind = RecordKind::kCommit;
  r.epoch = 3;
  r.writer = "host/12/abc";
  r.epoch_owner = "host/12/abc";
  r.run_id = "run-1";
  r.commit_id = "c0ffee";
  r.committed_at_ms = 1700000000000;
  r.prev = "0123456789abcdef";
  Entry e;
  e.fingerprint = "fp1";
  e.objects = {{"ns/data/s/fp1/a/part-0", 123, 0xdeadbeefcafef00dULL}};
  e.meta = {{"rows", 10}, {"bytes", 123}, {"note", "d\xc3\xa9j\xc3\xa0 vu"}, {"ratio", 0.1}};
  r.changes.upserts["orders"] = e;
  r.changes.removals.insert("old");
  return r;
}

TEST(RecordTest, RoundTripsEveryField) {
  Record r = SampleRecord();
  std::string sum;
  auto bytes = EncodeRecord(r, &sum);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  std::string sum2;
  auto back = DecodeRecord("k", 7, *bytes, &sum2);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(sum, sum2);
  EXPECT_EQ(back->sequence, 7u);
  EXPECT_EQ(back->epoch, 3u);
  EXPECT_EQ(back->writer, r.writer);
  EXPECT_EQ(back->epoch_owner, r.epoch_owner);
  EXPECT_EQ(back->run_id, r.run_id);
  EXPECT_EQ(back->commit_id, r.commit_id);
  EXPECT_EQ(back->committed_at_ms, r.committed_at_ms);
  EXPECT_EQ(back->prev, r.prev);
  EXPECT_EQ(back->changes.removals, r.changes.removals);
  ASSERT_EQ(back->changes.upserts.size(), 1u);
  const Entry& e = back->changes.upserts.at("orders");
  EXPECT_EQ(e.fingerprint, "fp1");
  EXPECT_EQ(e.objects, r.changes.upserts.at("orders").objects);
  EXPECT_EQ(e.meta, r.changes.upserts.at("orders").meta);
  // The file is valid JSON as a whole.
  EXPECT_TRUE(nlohmann::json::accept(*bytes));
}

TEST(RecordTest, EveryFlippedByteIsDataLoss) {
  auto bytes = EncodeRecord(SampleRecord());
  ASSERT_TRUE(bytes.ok());
  for (size_t i = 0; i < bytes->size() - 1; ++i) {  // the final '\n' is optional
    std::string bad = *bytes;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    auto r = DecodeRecord("ns/ledger/rec/x.json", 7, bad);
    ASSERT_FALSE(r.ok()) << "flip at " << i;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
    EXPECT_NE(r.status().message().find("ns/ledger/rec/x.json"), std::string::npos);
  }
}

TEST(RecordTest, TruncationIsDataLoss) {
  auto bytes = EncodeRecord(SampleRecord());
  ASSERT_TRUE(bytes.ok());
  for (size_t n : {size_t{0}, size_t{5}, size_t{30}, bytes->size() / 2, bytes->size() - 2}) {
    auto r = DecodeRecord("k", 7, bytes->substr(0, n));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << n;
  }
}

TEST(RecordTest, WrongSequenceIsDataLoss) {
  auto bytes = EncodeRecord(SampleRecord());
  ASSERT_TRUE(bytes.ok());
  auto r = DecodeRecord("k", 8, *bytes);
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
}

TEST(RecordTest, NewerFormatIsFailedPrecondition) {
  std::string body = R"({"format":99,"type":"record"})";
  auto r = DecodeRecord("k", 1, Frame(body));
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("upgrade"), std::string::npos);
}

TEST(RecordTest, ChecksumCoversTheBytesAsWritten) {
  // Same JSON value, different formatting: each verifies against its own bytes.
  std::string a = Frame(R"({"x": 1.50})");
  std::string b = Frame(R"({"x":1.5})");
  EXPECT_NE(a, b);
  EXPECT_TRUE(Unframe("a", a).ok());
  EXPECT_TRUE(Unframe("b", b).ok());
}

TEST(RecordTest, NonUtf8IsInvalidArgument) {
  Record r = SampleRecord();
  r.changes.upserts["orders"].fingerprint = std::string("\xff\xfe", 2);
  auto bytes = EncodeRecord(r);
  EXPECT_EQ(bytes.status().code(), StatusCode::kInvalidArgument);
}

TEST(RecordTest, SnapshotHeadFloorLeaseRoundTrip) {
  Snapshot s;
  s.sequence = 64;
  s.record_checksum = "00000000000000ff";
  s.state.max_epoch = 2;
  s.state.epoch_writer = "w";
  s.state.epoch_run_id = "r";
  s.state.epoch_sequence = 40;
  Entry e = SampleRecord().changes.upserts.at("orders");
  e.sequence = 50;
  e.epoch = 2;
  e.committed_at_ms = 5;
  e.run_id = "r";
  e.writer = "w";
  s.state.entries["orders"] = e;
  auto sb = EncodeSnapshot(s);
  ASSERT_TRUE(sb.ok());
  auto s2 = DecodeSnapshot("k", 64, *sb);
  ASSERT_TRUE(s2.ok()) << s2.status().ToString();
  EXPECT_EQ(s2->state, s.state);
  EXPECT_EQ(s2->record_checksum, s.record_checksum);

  HeadHint h{12, 8, 3, "w", 99};
  auto hb = EncodeHead(h);
  ASSERT_TRUE(hb.ok());
  auto h2 = DecodeHead("k", *hb);
  ASSERT_TRUE(h2.ok());
  EXPECT_EQ(h2->sequence, 12u);
  EXPECT_EQ(h2->snapshot_sequence, 8u);

  Floor f{64, 1};
  auto f2 = DecodeFloor("k", *EncodeFloor(f));
  ASSERT_TRUE(f2.ok());
  EXPECT_EQ(f2->snapshot_sequence, 64u);

  Lease l{"w", "n", "r", 4, 10, 20, 10};
  auto l2 = DecodeLease("k", *EncodeLease(l));
  ASSERT_TRUE(l2.ok());
  EXPECT_EQ(l2->nonce, "n");
  EXPECT_EQ(l2->expires_at_ms, 20);
}

TEST(RecordTest, KeysSortBySequenceAndParseBack) {
  Keys keys("pipe/x");
  EXPECT_EQ(keys.Record(42), "pipe/x/ledger/rec/00000000000000000042.json");
  EXPECT_EQ(keys.Snapshot(7), "pipe/x/ledger/snap/00000000000000000007.json");
  EXPECT_EQ(keys.Head(), "pipe/x/ledger/head.json");
  EXPECT_LT(keys.Record(9), keys.Record(10));
  EXPECT_EQ(keys.SequenceOfRecord(keys.Record(123456789)), 123456789u);
  EXPECT_EQ(keys.SequenceOfSnapshot(keys.Snapshot(5)), 5u);
  EXPECT_EQ(keys.SequenceOfRecord(keys.Snapshot(5)), 0u);
  EXPECT_EQ(keys.SequenceOfRecord("pipe/x/ledger/rec/garbage.json"), 0u);
  Keys root("");
  EXPECT_EQ(root.Record(1), "ledger/rec/00000000000000000001.json");
}

TEST(RecordTest, DataKeysParseIntoStageFingerprintAttemptAndRun) {
  Keys keys("pipe/x");
  std::optional<DataKeyParts> p =
      keys.ParseDataKey("pipe/x/data/orders/p0007/fp1/att2/run3.parquet");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->stage, "orders/p0007");
  EXPECT_EQ(p->fingerprint, "fp1");
  EXPECT_EQ(p->attempt, "att2");
  EXPECT_EQ(p->file, "run3.parquet");
  EXPECT_EQ(p->run_id, "run3");
  EXPECT_EQ(keys.ParseDataKey("pipe/x/data/s/fp/att/run")->run_id, "run");
  // Not data keys of this namespace, or too few segments.
  EXPECT_FALSE(keys.ParseDataKey("pipe/y/data/s/fp/att/run.parquet").has_value());
  EXPECT_FALSE(keys.ParseDataKey("pipe/x/ledger/rec/1.json").has_value());
  EXPECT_FALSE(keys.ParseDataKey("pipe/x/data/fp/att/run.parquet").has_value());
  EXPECT_FALSE(keys.ParseDataKey("pipe/x/data/s/fp//run.parquet").has_value());
  EXPECT_FALSE(keys.ParseDataKey("pipe/x/data/s/fp/att/").has_value());
}

Record Claim(uint64_t seq, uint64_t epoch, const std::string& writer) {
  Record r;
  r.sequence = seq;
  r.kind = RecordKind::kClaim;
  r.epoch = epoch;
  r.writer = writer;
  r.epoch_owner = writer;
  return r;
}

Record Put(uint64_t seq, uint64_t epoch, const std::string& owner, const std::string& name) {
  Record r;
  r.sequence = seq;
  r.epoch = epoch;
  r.writer = owner;
  r.epoch_owner = owner;
  r.changes.upserts[name].fingerprint = "fp";
  return r;
}

TEST(ApplyRecordTest, FencingRules) {
  LedgerState s;
  EXPECT_TRUE(ApplyRecord(Claim(1, 1, "A"), s));
  EXPECT_TRUE(ApplyRecord(Put(2, 1, "A", "a"), s));
  EXPECT_TRUE(ApplyRecord(Claim(3, 2, "B"), s));
  EXPECT_EQ(s.max_epoch, 2u);
  EXPECT_EQ(s.epoch_writer, "B");
  // A zombie's late write.
  EXPECT_FALSE(ApplyRecord(Put(4, 1, "A", "zombie"), s));
  // A claim that does not raise the epoch (lost race without put-if-absent).
  EXPECT_FALSE(ApplyRecord(Claim(5, 2, "C"), s));
  // A commit under that losing claim.
  EXPECT_FALSE(ApplyRecord(Put(6, 2, "C", "c"), s));
  // A commit of an epoch nobody claimed.
  EXPECT_FALSE(ApplyRecord(Put(7, 9, "D", "d"), s));
  EXPECT_TRUE(ApplyRecord(Put(8, 2, "B", "b"), s));
  EXPECT_EQ(s.entries.count("zombie") + s.entries.count("c") + s.entries.count("d"), 0u);
  ASSERT_EQ(s.entries.count("b"), 1u);
  EXPECT_EQ(s.entries.at("b").sequence, 8u);
  EXPECT_EQ(s.entries.at("b").writer, "B");
  EXPECT_EQ(s.entries.count("a"), 1u);
}

}  // namespace
}  // namespace respawn::ledger
