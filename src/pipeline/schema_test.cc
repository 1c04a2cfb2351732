#include "pipeline/schema.h"

#include <gtest/gtest.h>

namespace respawn {
namespace {

using nlohmann::json;

TEST(EntryNameTest, FormatsAndParsesEveryKind) {
  struct Case {
    std::string text;
    std::optional<EntryName> parsed;
  };
  const std::vector<Case> cases = {
      {"stage/x", EntryName{EntryKind::kStage, "x", std::nullopt}},
      {"stage/x/p0007", EntryName{EntryKind::kStage, "x", 7}},
      {"stage/x/p12345", EntryName{EntryKind::kStage, "x", 12345}},
      {"output/y", EntryName{EntryKind::kOutput, "y", std::nullopt}},
      {"run/0123abcd", EntryName{EntryKind::kRun, "0123abcd", std::nullopt}},
      {"owner", EntryName{EntryKind::kOwner, "", std::nullopt}},
      // Not written by a pipeline: never mistaken for one of its entries.
      {"stage/", std::nullopt},
      {"stage/x/7", std::nullopt},
      {"stage/x/p07", std::nullopt},
      {"stage/x/p0007/more", std::nullopt},
      {"output/y/p0001", std::nullopt},
      {"run/", std::nullopt},
      {"owners", std::nullopt},
      {"other/x", std::nullopt},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    std::optional<EntryName> parsed = EntryName::Parse(c.text);
    EXPECT_EQ(parsed, c.parsed);
    if (parsed) {
      EXPECT_EQ(parsed->Format(), c.text);
    }
  }
  EXPECT_EQ(StageEntryName("a"), "stage/a");
  EXPECT_EQ(PartitionEntryName("a", 3), "stage/a/p0003");
  EXPECT_EQ(OutputEntryName("o"), "output/o");
  EXPECT_EQ(RunEntryName("r"), "run/r");
}

TEST(SchemaTest, CheckpointMetaRoundTripsAndReadsWhatEarlierVersionsWrote) {
  CheckpointMeta meta{900, 4321, 1.5, "{\"sql\":\"0123\"}", ""};
  Result<CheckpointMeta> back = DecodeCheckpointMeta(EncodeCheckpointMeta(meta), "stage/x");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, meta);
  // As the runner wrote it before the metadata had a version.
  json old = {{"rows", 900},
              {"bytes", 4321},
              {"compute_seconds", 1.5},
              {"components", "{\"sql\":\"0123\"}"}};
  back = DecodeCheckpointMeta(old, "stage/x");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, meta);
  // Missing fields take their defaults.
  EXPECT_EQ(*DecodeCheckpointMeta(json::object(), "stage/x"), CheckpointMeta{});
  // The expectations a checkpoint passed round-trip; none are not written.
  EXPECT_FALSE(EncodeCheckpointMeta(meta).contains("expectations"));
  meta.expectations = "0123456789abcdef";
  EXPECT_EQ(*DecodeCheckpointMeta(EncodeCheckpointMeta(meta), "stage/x"), meta);
  EXPECT_EQ(DecodeCheckpointMeta({{"expectations", 3}}, "stage/x").status().code(),
            StatusCode::kDataLoss);
}

TEST(SchemaTest, OutputMetaRoundTrips) {
  OutputMeta meta{"/data/out.csv", 77, 0x0123456789abcdefULL, "\"etag-1\""};
  Result<OutputMeta> back = DecodeOutputMeta(EncodeOutputMeta(meta), "output/o");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, meta);
  json old = {{"path", "/data/out.csv"}, {"size", 77}, {"xxh3", "0123456789abcdef"}};
  back = DecodeOutputMeta(old, "output/o");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->xxh3, 0x0123456789abcdefULL);
  EXPECT_EQ(back->etag, "");
}

TEST(SchemaTest, RunReportMetaRoundTrips) {
  RunReportMeta meta;
  meta.result = "done";
  meta.seconds = 3.25;
  meta.saved_seconds = 1;
  meta.computed = 2;
  meta.reused = 1;
  meta.nodes = {{"a", "computed", "no checkpoint", 1.5, {"pipeline.toml:3: stage \"a\": ..."}},
                {"b", "reused", "", 0, {}}};
  meta.requests = RequestCounts{1, 2, 3, 4, 5, 6, 7};
  meta.results = std::vector<std::string>{"k1", "k2"};
  meta.outputs = {{"o", "b", 10, 99, {{"k2", 99, 0xfedcba9876543210ULL}}}};
  meta.work_tables = std::vector<std::string>{"stage/a", "stage/b/p0001"};
  Result<RunReportMeta> back = DecodeRunReportMeta(EncodeRunReportMeta(meta), "run/r");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, meta);
  EXPECT_TRUE(back->finished());
  // Without requests and results.
  meta.requests.reset();
  meta.results.reset();
  meta.outputs.clear();
  meta.work_tables.reset();
  meta.result = "failed";
  meta.error = "boom";
  back = DecodeRunReportMeta(EncodeRunReportMeta(meta), "run/r");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, meta);
  EXPECT_FALSE(back->finished());
}

TEST(SchemaTest, OwnerMetaRoundTrips) {
  OwnerMeta meta{"/p/pipeline.toml", "abc"};
  EXPECT_EQ(*DecodeOwnerMeta(EncodeOwnerMeta(meta), "owner"), meta);
}

TEST(SchemaTest, BadInputIsAnErrorNamingTheEntryAndField) {
  struct Case {
    std::string what;
    json meta;
    std::string field;
  };
  const std::vector<Case> checkpoints = {
      {"not an object", json::array(), "its metadata"},
      {"string rows", {{"rows", "many"}}, "\"rows\""},
      {"negative bytes", {{"bytes", -1}}, "\"bytes\""},
      {"seconds as text", {{"compute_seconds", "1s"}}, "\"compute_seconds\""},
      {"components as number", {{"components", 5}}, "\"components\""},
      {"version as text", {{"v", "one"}}, "\"v\""},
  };
  for (const Case& c : checkpoints) {
    SCOPED_TRACE(c.what);
    Result<CheckpointMeta> r = DecodeCheckpointMeta(c.meta, "stage/x");
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
    EXPECT_NE(r.status().message().find("stage/x"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(c.field), std::string::npos) << r.status().message();
  }
  EXPECT_EQ(DecodeOutputMeta({{"xxh3", "not hex"}}, "output/o").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRunReportMeta({{"nodes", "x"}}, "run/r").status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRunReportMeta({{"nodes", {1, 2}}}, "run/r").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRunReportMeta({{"results", {"k", 3}}}, "run/r").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRunReportMeta({{"outputs", {{{"output", 1}}}}}, "run/r").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRunReportMeta({{"outputs", {{{"objects", {{{"xxh3", "zz"}}}}}}}}, "run/r")
                .status()
                .code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRunReportMeta({{"outputs", {7}}}, "run/r").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRunReportMeta({{"requests", {{"put", "x"}}}}, "run/r").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(DecodeRunReportMeta({{"computed", 1ULL << 40}}, "run/r").status().code(),
            StatusCode::kDataLoss);
  EXPECT_EQ(DecodeOwnerMeta({{"path", nullptr}}, "owner").status().code(), StatusCode::kDataLoss);
}

TEST(SchemaTest, ANewerVersionIsRefusedClearly) {
  json newer = EncodeCheckpointMeta(CheckpointMeta{});
  newer["v"] = kMetaVersion + 1;
  Result<CheckpointMeta> r = DecodeCheckpointMeta(newer, "stage/x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("newer respawn"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("upgrade"), std::string::npos);
  json report = EncodeRunReportMeta(RunReportMeta{});
  report["v"] = kMetaVersion + 1;
  EXPECT_EQ(DecodeRunReportMeta(report, "run/r").status().code(), StatusCode::kFailedPrecondition);
}

TEST(SchemaTest, RunReportsAreReadOldestFirst) {
  ledger::LedgerState state;
  for (int i = 0; i < 3; ++i) {
    ledger::Entry e;
    e.sequence = 10 - i;
    RunReportMeta meta;
    meta.result = i == 0 ? "done" : "failed";
    e.meta = EncodeRunReportMeta(meta);
    state.entries[RunEntryName("r" + std::to_string(i))] = e;
  }
  state.entries["stage/x"].meta = {{"rows", "not a report"}};
  Result<std::vector<RunReportEntry>> runs = ReadRunReports(state);
  ASSERT_TRUE(runs.ok()) << runs.status().ToString();
  ASSERT_EQ(runs->size(), 3u);
  EXPECT_EQ((*runs)[0].run_id, "r2");
  EXPECT_EQ((*runs)[2].run_id, "r0");
  EXPECT_TRUE((*runs)[2].meta.finished());
  state.entries["run/bad"].meta = {{"result", 1}};
  EXPECT_EQ(ReadRunReports(state).status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace respawn
