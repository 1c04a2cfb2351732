#include "pipeline/fingerprint.h"

#include <gtest/gtest.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "storage/memory_store.h"
#include "util/hash.h"

namespace respawn {
namespace {

namespace fs = std::filesystem;

std::vector<NamedValue> Params(std::vector<std::pair<std::string, int>> values) {
  std::vector<NamedValue> out;
  for (auto& [name, v] : values) {
    out.push_back({name, SpecValue{SpecValue::Type::kInteger, std::to_string(v)}, 0});
  }
  return out;
}

TEST(SqlTextTest, FormattingAndCommentsDoNotCount) {
  const std::string a = "SELECT day, sum(amount) AS revenue FROM clean_orders GROUP BY day";
  const std::string b = R"toml(
    -- revenue per day
    SELECT day,
           sum( amount )   AS revenue   /* total /* nested */ still comment */
    FROM clean_orders
    GROUP BY day;
  )toml";
  EXPECT_EQ(NormalizeSql(a), NormalizeSql(b));
  EXPECT_EQ(NormalizeSql("SELECT a+b FROM t"), NormalizeSql("SELECT a + b\nFROM t"));
  EXPECT_EQ(NormalizeSql("SELECT 1"), "SELECT 1");
}

TEST(SqlTextTest, LiteralsIdentifiersAndCaseCount) {
  EXPECT_NE(NormalizeSql("SELECT 'a  b'"), NormalizeSql("SELECT 'a b'"));
  EXPECT_NE(NormalizeSql("SELECT '-- x'"), NormalizeSql("SELECT ''"));
  EXPECT_NE(NormalizeSql("SELECT \"a  b\" FROM t"), NormalizeSql("SELECT \"a b\" FROM t"));
  EXPECT_NE(NormalizeSql("SELECT 10"), NormalizeSql("SELECT 11"));
  EXPECT_NE(NormalizeSql("SELECT 1e5"), NormalizeSql("SELECT 1 e5"));  // alias vs exponent
  EXPECT_NE(NormalizeSql("SELECT a <= b"), NormalizeSql("SELECT a < = b"));
  EXPECT_NE(NormalizeSql("SELECT 1 AS Revenue"), NormalizeSql("SELECT 1 AS revenue"));
  EXPECT_NE(NormalizeSql("SELECT E'a\\'  b'"), NormalizeSql("SELECT E'a\\' b'"));
  EXPECT_NE(NormalizeSql("SELECT $$a  b$$"), NormalizeSql("SELECT $$a b$$"));
  EXPECT_NE(NormalizeSql("SELECT U&'x'"), NormalizeSql("SELECT U & 'x'"));
  // A quote inside a comment does not open a string.
  EXPECT_EQ(NormalizeSql("SELECT 1 -- it's\n, 2"), "SELECT 1 , 2");
  // Doubled quotes stay inside the literal.
  EXPECT_EQ(NormalizeSql("SELECT  'it''s  here'  "), "SELECT 'it''s  here'");
}

TEST(SqlTextTest, Tokens) {
  const std::string sql = "SELECT \"Weird \"\"col\"\"\", x::INT, $1, $tag$a$tag$ FROM t";
  std::vector<SqlToken> t = TokenizeSql(sql);
  ASSERT_EQ(t.size(), 12u);
  EXPECT_EQ(t[1].kind, SqlTokenKind::kQuotedIdentifier);
  EXPECT_EQ(t[1].text, "\"Weird \"\"col\"\"\"");
  EXPECT_EQ(t[3].text, "x");
  EXPECT_EQ(t[4].kind, SqlTokenKind::kOperator);
  EXPECT_EQ(t[4].text, "::");
  EXPECT_EQ(t[7].kind, SqlTokenKind::kParameter);
  EXPECT_EQ(t[9].kind, SqlTokenKind::kString);
  EXPECT_EQ(t[9].text, "$tag$a$tag$");
  EXPECT_EQ(t[10].text, "FROM");
  EXPECT_EQ(t[11].text, "t");
  EXPECT_EQ(t[11].offset, sql.size() - 1);
  // Unterminated constructs run to the end without crashing.
  EXPECT_EQ(TokenizeSql("SELECT 'abc").size(), 2u);
  EXPECT_EQ(TokenizeSql("SELECT /* abc").size(), 1u);
  EXPECT_EQ(TokenizeSql("x -").back().text, "-");
}

TEST(FingerprintTest, HexForms) {
  Fingerprint f{0x0123456789abcdefull};
  EXPECT_EQ(f.Hex(), "0123456789abcdef");
  EXPECT_EQ(f.Short(), "01234567");
  EXPECT_EQ(Fingerprint::FromHex("0123456789ABCDEF")->value, f.value);
  EXPECT_FALSE(Fingerprint::FromHex("0123").ok());
  EXPECT_FALSE(Fingerprint::FromHex("0123456789abcdeg").ok());
}

TEST(FingerprintTest, StageFingerprintCoversItsParts) {
  std::vector<NamedFingerprint> inputs = {{"orders", Fingerprint{1}},
                                          {"customers", Fingerprint{2}}};
  FingerprintComponents base =
      StageFingerprint("SELECT * FROM orders", Params({{"a", 1}, {"b", 2}}), inputs, "v1.4.4");

  // Order of params and inputs does not matter; formatting does not.
  std::vector<NamedFingerprint> reversed = {inputs[1], inputs[0]};
  EXPECT_EQ(StageFingerprint("select_me", {}, {}, "v").total,
            StageFingerprint("  select_me ; ", {}, {}, "v").total);
  EXPECT_EQ(base.total, StageFingerprint("SELECT *\n  FROM orders -- all\n",
                                         Params({{"b", 2}, {"a", 1}}), reversed, "v1.4.4")
                            .total);
  EXPECT_EQ(base.inputs[0].name, "customers");

  FingerprintComponents sql = StageFingerprint("SELECT * FROM orders WHERE 1",
                                               Params({{"a", 1}, {"b", 2}}), inputs, "v1.4.4");
  FingerprintComponents param =
      StageFingerprint("SELECT * FROM orders", Params({{"a", 1}, {"b", 3}}), inputs, "v1.4.4");
  std::vector<NamedFingerprint> changed_input = {{"orders", Fingerprint{9}},
                                                 {"customers", Fingerprint{2}}};
  FingerprintComponents input = StageFingerprint(
      "SELECT * FROM orders", Params({{"a", 1}, {"b", 2}}), changed_input, "v1.4.4");
  FingerprintComponents engine =
      StageFingerprint("SELECT * FROM orders", Params({{"a", 1}, {"b", 2}}), inputs, "v1.5.0");
  for (const FingerprintComponents* c : {&sql, &param, &input, &engine}) {
    EXPECT_NE(c->total, base.total);
  }
  EXPECT_EQ(ExplainChange(base, base), std::vector<std::string>{});
  EXPECT_EQ(ExplainChangeText(base, base), "unchanged");
  EXPECT_EQ(ExplainChange(base, sql), std::vector<std::string>{"changed SQL"});
  EXPECT_EQ(ExplainChange(base, param), std::vector<std::string>{"changed param b"});
  // A param used in the SQL changes the substituted SQL too; the text as written tells that the
  // param alone changed, or that the SQL was edited as well.
  const char kRaw[] = "SELECT * FROM orders WHERE amount > ${min}";
  FingerprintComponents low = StageFingerprint("SELECT * FROM orders WHERE amount > 1",
                                               Params({{"min", 1}}), inputs, "v1.4.4", kRaw);
  FingerprintComponents high = StageFingerprint("SELECT * FROM orders WHERE amount > 2",
                                                Params({{"min", 2}}), inputs, "v1.4.4", kRaw);
  EXPECT_EQ(ExplainChange(low, high), std::vector<std::string>{"changed param min"});
  FingerprintComponents edited =
      StageFingerprint("SELECT * FROM orders WHERE amount >= 2", Params({{"min", 2}}), inputs,
                       "v1.4.4", "SELECT * FROM orders WHERE amount >= ${min}");
  EXPECT_EQ(ExplainChange(low, edited),
            (std::vector<std::string>{"changed SQL", "changed param min"}));
  // The template survives the commit record's text form, and stays out of the total.
  Result<FingerprintComponents> parsed = FingerprintComponents::Parse(high.Serialize());
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  EXPECT_EQ(parsed->sql_template, high.sql_template);
  EXPECT_EQ(StageFingerprint("SELECT * FROM orders WHERE amount > 2", Params({{"min", 2}}), inputs,
                             "v1.4.4")
                .total,
            high.total);
  EXPECT_EQ(ExplainChange(base, input), std::vector<std::string>{"changed input orders"});
  EXPECT_EQ(ExplainChange(base, engine),
            std::vector<std::string>{"engine version changed (v1.4.4 -> v1.5.0)"});

  FingerprintComponents more =
      StageFingerprint("SELECT * FROM orders", Params({{"a", 1}, {"c", 2}}),
                       {{"orders", Fingerprint{1}}, {"regions", Fingerprint{3}}}, "v1.4.4");
  EXPECT_EQ(ExplainChangeText(base, more),
            "new param c, removed param b, new input regions, dropped input customers");
}

TEST(FingerprintTest, ParamTypesCount) {
  std::vector<NamedValue> as_int = {{"x", {SpecValue::Type::kInteger, "10"}, 0}};
  std::vector<NamedValue> as_string = {{"x", {SpecValue::Type::kString, "10"}, 0}};
  EXPECT_NE(StageFingerprint("s", as_int, {}, "v").total,
            StageFingerprint("s", as_string, {}, "v").total);
}

TEST(FingerprintTest, KindsDoNotCollide) {
  EXPECT_NE(StageFingerprint("SELECT 1", {}, {}, "v").total,
            SqlSourceFingerprint("SELECT 1", {}, "v").total);
  EXPECT_EQ(ExplainChangeText(StageFingerprint("SELECT 1", {}, {}, "v"),
                              SqlSourceFingerprint("SELECT 1", {}, "v")),
            "changed from a stage to a generated source");
}

TEST(FingerprintTest, SerializeRoundTripsAndVerifies) {
  FingerprintComponents stage = StageFingerprint(
      "SELECT 1", Params({{"a", 1}}), {{"orders", Fingerprint{42}}}, "v1.4.4 (build\nx)");
  Result<FingerprintComponents> back = FingerprintComponents::Parse(stage.Serialize());
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->total, stage.total);
  EXPECT_EQ(back->inputs, stage.inputs);
  EXPECT_EQ(back->params, stage.params);
  EXPECT_EQ(back->engine_version, "v1.4.4 (build x)");
  EXPECT_TRUE(ExplainChange(*back, stage).empty());

  SourceFile f{"a.csv", 10, 5, "", true, 77};
  FingerprintComponents files = FileSourceFingerprint({f}, DataFormat::kCsv, {}, "v");
  Result<FingerprintComponents> fback = FingerprintComponents::Parse(files.Serialize());
  ASSERT_TRUE(fback.ok()) << fback.status().ToString();
  EXPECT_EQ(fback->total, files.total);
  EXPECT_EQ(fback->file_count, 1u);
  EXPECT_TRUE(fback->content_hashed);

  std::string tampered = stage.Serialize();
  tampered.replace(tampered.find("input orders ") + 13, 16, "00000000000000ff");
  Result<FingerprintComponents> bad = FingerprintComponents::Parse(tampered);
  EXPECT_EQ(bad.status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(FingerprintComponents::Parse("").status().code(), StatusCode::kDataLoss);
  const std::string now = std::to_string(kFingerprintFormatVersion);
  const std::string next = std::to_string(kFingerprintFormatVersion + 1);
  EXPECT_EQ(
      FingerprintComponents::Parse("respawn-fingerprint " + now + "\nbogus 1\n").status().code(),
      StatusCode::kDataLoss);
  // A number that does not fit is malformed, not an exception.
  std::string huge = files.Serialize();
  const size_t count = huge.find("file_count ") + 11;
  huge.replace(count, huge.find('\n', count) - count, "99999999999999999999999");
  EXPECT_EQ(FingerprintComponents::Parse(huge).status().code(), StatusCode::kDataLoss);

  // A number too large for 64 bits is a malformed record, not an exception (std::stoull threw).
  EXPECT_EQ(
      FingerprintComponents::Parse("respawn-fingerprint 99999999999999999999999\n").status().code(),
      StatusCode::kDataLoss);
  EXPECT_EQ(FingerprintComponents::Parse("respawn-fingerprint -1\n").status().code(),
            StatusCode::kDataLoss);

  // A record from a future format parses (without verification) and explains itself.
  Result<FingerprintComponents> future = FingerprintComponents::Parse(
      "respawn-fingerprint " + next + "\nkind stage\nnew_thing x\ntotal 00000000000000aa\n");
  ASSERT_TRUE(future.ok()) << future.status().ToString();
  EXPECT_EQ(ExplainChangeText(*future, stage),
            "fingerprint format changed (" + next + " -> " + now + ")");
}

TEST(FingerprintTest, FileSources) {
  SourceFile a{"a.csv", 10, 1000, "", true, 1};
  SourceFile b{"sub/b.csv", 20, 2000, "", true, 2};
  FingerprintComponents base = FileSourceFingerprint({a, b}, DataFormat::kCsv, {}, "v");
  EXPECT_EQ(base.file_count, 2u);
  EXPECT_EQ(base.total_bytes, 30u);
  EXPECT_TRUE(base.content_hashed);

  // Listing order and mtimes (when contents are hashed) do not count.
  SourceFile touched = a;
  touched.mtime_ms = 99999;
  EXPECT_EQ(FileSourceFingerprint({b, touched}, DataFormat::kCsv, {}, "v").total, base.total);

  SourceFile edited = a;
  edited.content_hash = 5;
  EXPECT_EQ(ExplainChangeText(base, FileSourceFingerprint({edited, b}, DataFormat::kCsv, {}, "v")),
            "changed file contents or names");
  SourceFile c{"c.csv", 2048, 3000, "", true, 3};
  EXPECT_EQ(ExplainChangeText(base, FileSourceFingerprint({a, b, c}, DataFormat::kCsv, {}, "v")),
            "changed files (2 files, 30 B -> 3 files, 2.0 KiB)");
  std::vector<NamedValue> opts = {{"header", {SpecValue::Type::kBool, "true"}, 0}};
  EXPECT_EQ(ExplainChangeText(base, FileSourceFingerprint({a, b}, DataFormat::kCsv, opts, "v")),
            "changed format or reader options");
  EXPECT_EQ(ExplainChangeText(base, FileSourceFingerprint({a, b}, DataFormat::kParquet, {}, "v")),
            "changed format or reader options");

  // Without content hashes, mtime counts.
  SourceFile big1{"a.csv", 10, 1000, "", false, 0};
  SourceFile big2{"a.csv", 10, 1001, "", false, 0};
  FingerprintComponents m1 = FileSourceFingerprint({big1}, DataFormat::kCsv, {}, "v");
  FingerprintComponents m2 = FileSourceFingerprint({big2}, DataFormat::kCsv, {}, "v");
  EXPECT_FALSE(m1.content_hashed);
  EXPECT_EQ(ExplainChangeText(m1, m2), "changed files (names, modification times or ETags)");
}

class ListFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("respawn_fp_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "orders" / "2024");
    Write("orders/a.csv", "x\n1\n");
    Write("orders/b.csv", "x\n22\n");
    Write("orders/notes.txt", "hi");
    Write("orders/2024/c.csv", "x\n3\n");
  }
  void TearDown() override { fs::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& data) {
    std::ofstream(dir_ / rel, std::ios::binary) << data;
  }
  std::string P(const std::string& rel) const { return (dir_ / rel).string(); }

  fs::path dir_;
};

TEST_F(ListFilesTest, GlobsAndHashes) {
  Result<std::vector<SourceFile>> r = ListLocalSourceFiles(P("orders/*.csv"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].path, "a.csv");
  EXPECT_EQ((*r)[0].size, 4u);
  EXPECT_TRUE((*r)[0].has_content_hash);
  EXPECT_EQ((*r)[0].content_hash, Xxh3("x\n1\n"));
  EXPECT_GT((*r)[0].mtime_ms, 0);

  Result<std::vector<SourceFile>> deep = ListLocalSourceFiles(P("orders/**/*.csv"));
  ASSERT_TRUE(deep.ok()) << deep.status().ToString();
  ASSERT_EQ(deep->size(), 3u);
  EXPECT_EQ((*deep)[0].path, "2024/c.csv");

  Result<std::vector<SourceFile>> one = ListLocalSourceFiles(P("orders/b.csv"));
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].path, "b.csv");

  Result<std::vector<SourceFile>> no_hash = ListLocalSourceFiles(P("orders/*.csv"), 4);
  ASSERT_TRUE(no_hash.ok());
  EXPECT_FALSE((*no_hash)[0].has_content_hash);
}

TEST_F(ListFilesTest, MovingTheProjectKeepsTheFingerprint) {
  FingerprintComponents before =
      FileSourceFingerprint(*ListLocalSourceFiles(P("orders/*.csv")), DataFormat::kCsv, {}, "v");
  fs::rename(dir_ / "orders", dir_ / "moved");
  FingerprintComponents after =
      FileSourceFingerprint(*ListLocalSourceFiles(P("moved/*.csv")), DataFormat::kCsv, {}, "v");
  EXPECT_EQ(before.total, after.total);
  Write("moved/a.csv", "x\n5\n");
  FingerprintComponents edited =
      FileSourceFingerprint(*ListLocalSourceFiles(P("moved/*.csv")), DataFormat::kCsv, {}, "v");
  EXPECT_EQ(ExplainChangeText(after, edited), "changed file contents or names");
}

TEST_F(ListFilesTest, Errors) {
  EXPECT_EQ(ListLocalSourceFiles(P("orders/*.parquet")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ListLocalSourceFiles(P("nope/*.csv")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ListLocalSourceFiles(P("orders/zz.csv")).status().code(), StatusCode::kNotFound);
  Result<std::vector<SourceFile>> d = ListLocalSourceFiles(P("orders"));
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("/*.csv"), std::string::npos) << d.status().message();
}

TEST(ListStoreFilesTest, GlobsOverKeys) {
  MemoryStore store("fp-test");
  ASSERT_TRUE(store.Put("data/orders/a.csv", "1").ok());
  ASSERT_TRUE(store.Put("data/orders/b.csv", "22").ok());
  ASSERT_TRUE(store.Put("data/orders/c.txt", "333").ok());
  ASSERT_TRUE(store.Put("data/orders/x/d.csv", "4444").ok());
  Result<std::vector<SourceFile>> r = ListStoreSourceFiles(store, "data/orders/*.csv");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].path, "a.csv");
  EXPECT_EQ((*r)[1].size, 2u);
  Result<std::vector<SourceFile>> one = ListStoreSourceFiles(store, "data/orders/x/d.csv");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ((*one)[0].path, "d.csv");
  EXPECT_EQ(ListStoreSourceFiles(store, "data/*.parquet").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(ListStoreSourceFiles(store, "data/none.csv").status().code(), StatusCode::kNotFound);
}

TEST(FingerprintPipelineTest, ChangesPropagateDownstreamOnly) {
  auto parse = [](std::string_view min) {
    std::string text = R"toml(name = "p"
[sources.orders]
path = "o.csv"
[sources.numbers]
sql = "SELECT range AS n FROM range(10)"
[stages.clean]
sql = "SELECT * FROM orders WHERE amount >= )toml" +
                       std::string(min) + R"toml("
[stages.nums]
sql = "SELECT n FROM numbers"
[stages.report]
sql = "SELECT * FROM clean, nums"
)toml";
    return ParsePipelineString(text, "pipeline.toml", "/base").value();
  };
  TableResolver resolve = [](std::string_view sql) -> Result<std::vector<std::string>> {
    if (sql.find("FROM orders") != std::string_view::npos)
      return std::vector<std::string>{"orders"};
    if (sql.find("FROM numbers") != std::string_view::npos) {
      return std::vector<std::string>{"numbers"};
    }
    if (sql.find("FROM clean") != std::string_view::npos) {
      return std::vector<std::string>{"clean", "nums"};
    }
    return std::vector<std::string>{};
  };
  auto files = [](const SourceSpec&) -> Result<FingerprintComponents> {
    return FileSourceFingerprint({SourceFile{"o.csv", 1, 1, "", true, 1}}, DataFormat::kCsv, {},
                                 "v");
  };
  PipelineSpec s1 = parse("10");
  PipelineSpec s2 = parse("11");
  Dag d1 = BuildDag(s1, resolve).value();
  Dag d2 = BuildDag(s2, resolve).value();
  std::vector<FingerprintComponents> f1 = FingerprintPipeline(s1, d1, "v", files).value();
  std::vector<FingerprintComponents> f2 = FingerprintPipeline(s2, d2, "v", files).value();
  auto at = [&](const Dag& d, const std::vector<FingerprintComponents>& f, const char* name) {
    return f[*d.Find(name)];
  };
  EXPECT_EQ(at(d1, f1, "orders").total, at(d2, f2, "orders").total);
  EXPECT_EQ(at(d1, f1, "nums").total, at(d2, f2, "nums").total);
  EXPECT_EQ(ExplainChangeText(at(d1, f1, "clean"), at(d2, f2, "clean")), "changed SQL");
  EXPECT_EQ(ExplainChangeText(at(d1, f1, "report"), at(d2, f2, "report")), "changed input clean");
  EXPECT_EQ(at(d1, f1, "numbers").kind, FingerprintKind::kSqlSource);

  auto failing = [](const SourceSpec&) -> Result<FingerprintComponents> {
    return NotFound("o.csv matches no files");
  };
  Result<std::vector<FingerprintComponents>> err = FingerprintPipeline(s1, d1, "v", failing);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.status().message(), "pipeline.toml:3: source \"orders\": o.csv matches no files");
}

TEST(FingerprintTest, FilesReadInSqlCountAndExplain) {
  // FingerprintPipeline adds them; a stage without files keeps the total it always had.
  std::string text = R"toml(name = "p"
[stages.a]
sql = "SELECT * FROM 'my data.csv'"
[stages.b]
sql = "SELECT 1"
)toml";
  PipelineSpec spec = ParsePipelineString(text, "pipeline.toml", "/base").value();
  TableResolver tables = [](std::string_view) -> Result<std::vector<std::string>> {
    return std::vector<std::string>{};
  };
  FileResolver refs = [](std::string_view sql) -> Result<std::vector<SqlFileRef>> {
    if (sql.find("my data.csv") == std::string_view::npos) return std::vector<SqlFileRef>{};
    return std::vector<SqlFileRef>{{"", "my data.csv", sql.find('\'')}};
  };
  Dag dag = BuildDag(spec, tables, refs).value();
  auto no_sources = [](const SourceSpec&) -> Result<FingerprintComponents> {
    return Internal("no file sources here");
  };
  uint64_t contents = 1;
  auto file = [&](const DagFileRead& f) -> Result<Fingerprint> {
    EXPECT_EQ(f.resolved, "/base/my data.csv");
    return FileListFingerprint({SourceFile{"my data.csv", 10, 1, "", true, contents}});
  };
  std::vector<FingerprintComponents> before =
      FingerprintPipeline(spec, dag, "v", no_sources, file).value();
  contents = 2;
  std::vector<FingerprintComponents> after =
      FingerprintPipeline(spec, dag, "v", no_sources, file).value();
  const int a = *dag.Find("a"), b = *dag.Find("b");
  EXPECT_EQ(before[b].total, StageFingerprint("SELECT 1", {}, {}, "v").total);
  EXPECT_EQ(after[b].total, before[b].total);
  ASSERT_EQ(before[a].files_read.size(), 1u);
  EXPECT_NE(before[a].total, StageFingerprint(spec.stages[0].sql, {}, {}, "v").total);
  EXPECT_EQ(ExplainChangeText(before[a], after[a]), "changed file my data.csv");
  FingerprintComponents gone = StageFingerprint(spec.stages[0].sql, {}, {}, "v");
  EXPECT_EQ(ExplainChangeText(before[a], gone), "no longer reads file my data.csv");
  EXPECT_EQ(ExplainChangeText(gone, before[a]), "new file my data.csv");
  // The record round-trips (the name has a space in it).
  Result<FingerprintComponents> same = FingerprintComponents::Parse(before[a].Serialize());
  ASSERT_TRUE(same.ok()) << same.status().ToString();
  EXPECT_EQ(same->files_read, before[a].files_read);
  EXPECT_EQ(same->total, before[a].total);
  // Without a file_read callback a node that reads files is an error, not a silent miss.
  EXPECT_FALSE(FingerprintPipeline(spec, dag, "v", no_sources).ok());
}

}  // namespace
}  // namespace respawn
