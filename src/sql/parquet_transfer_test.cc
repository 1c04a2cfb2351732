#include "sql/parquet_transfer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "storage/memory_store.h"
#include "storage/posix_store.h"
#include "util/hash.h"
#include "util/testing.h"

namespace respawn {
namespace {

using ::testing::HasSubstr;

class TempDir {
 public:
  TempDir() {
    std::string templ = std::filesystem::temp_directory_path().string() + "/respawn-sql-XXXXXX";
    path_ = mkdtemp(templ.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Files in `dir` (not recursive) whose name contains `part`.
int CountFiles(const std::string& dir, const std::string& part) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename().string().find(part) != std::string::npos) ++n;
  }
  return n;
}

constexpr const char* kCreateSample = R"sql(
  CREATE TABLE sample AS
  SELECT range AS id,
         CASE WHEN range % 7 = 0 THEN NULL ELSE 'name-' || range END AS name,
         (range * 0.25)::DOUBLE AS score,
         (range % 1000)::DECIMAL(12,2) / 3 AS amount,
         DATE '2020-01-01' + (range % 365)::INTEGER AS day,
         TIMESTAMP '2024-01-01 00:00:00' + to_microseconds(range) AS ts,
         [range, range + 1] AS pair,
         {'k': range % 5, 'v': 'x'} AS kv,
         range % 2 = 0 AS even
  FROM range(50000)
)sql";

class ParquetTransferTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    DatabaseOptions options;
    options.threads = 2;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Database> db, Database::Open(options));
    db_ = std::move(db);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Connection> conn, db_->Connect());
    conn_ = std::move(conn);
    if (GetParam() == "posix") {
      PosixStoreOptions po;
      po.fsync = false;
      ASSERT_OK_AND_ASSIGN(std::unique_ptr<PosixStore> store,
                           PosixStore::Open(dir_.path() + "/store", po));
      store_ = std::move(store);
    } else {
      store_ = std::make_shared<MemoryStore>();
    }
    ASSERT_OK(conn_->Execute(kCreateSample));
  }

  // Rows of `a` missing from `b` plus rows of `b` missing from `a`, with duplicates.
  int64_t Difference(const std::string& a, const std::string& b) {
    Result<Value> v = conn_->QueryScalar(
        "SELECT (SELECT count(*) FROM (FROM " + a + " EXCEPT ALL FROM " + b +
        ")) + (SELECT count(*) FROM (FROM " + b + " EXCEPT ALL FROM " + a + "))");
    EXPECT_OK(v);
    return v.ok() ? *v->AsInt64() : -1;
  }

  TempDir dir_;
  std::unique_ptr<Database> db_;
  std::unique_ptr<Connection> conn_;
  std::shared_ptr<Store> store_;
};

TEST_P(ParquetTransferTest, RoundTripIsRowForRowIdentical) {
  Result<ExportedObject> exported =
      ExportTableToStore(*conn_, "sample", *store_, "stage/sample/part-0.parquet");
  ASSERT_OK(exported);
  EXPECT_EQ(exported->key, "stage/sample/part-0.parquet");
  EXPECT_EQ(exported->rows, 50000u);

  // The reported size and checksum are those of the stored bytes.
  ASSERT_OK_AND_ASSIGN(std::string bytes, store_->Get(exported->key));
  EXPECT_EQ(bytes.size(), exported->size);
  EXPECT_EQ(Xxh3(bytes), exported->xxh3);
  EXPECT_EQ(bytes.substr(0, 4), "PAR1");
  // Nothing staged is left behind.
  EXPECT_EQ(CountFiles(db_->temp_directory(), "respawn-export"), 0);

  ASSERT_OK_AND_ASSIGN(ImportedObject imported,
                       ImportFromStore(*conn_, *store_, *exported, "restored"));
  EXPECT_FALSE(imported.cache_hit);
  EXPECT_EQ(Difference("sample", "restored"), 0);
  ASSERT_OK_AND_ASSIGN(Value count, conn_->QueryScalar("SELECT count(*) FROM restored"));
  EXPECT_EQ(*count.AsInt64(), 50000);
  // Names and types survive.
  Result<QueryResult> before = conn_->Query("DESCRIBE sample");
  Result<QueryResult> after = conn_->Query("DESCRIBE restored");
  ASSERT_TRUE(before.ok() && after.ok());
  EXPECT_EQ(before->ToText(), after->ToText());
}

TEST_P(ParquetTransferTest, ExportOfAQueryWithOptions) {
  ExportOptions options;
  options.compression = "snappy";
  options.row_group_size = 10000;
  Result<ExportedObject> exported =
      ExportQueryToStore(*conn_, "SELECT id, name FROM sample WHERE even -- only even ids\n ; ",
                         *store_, "q.parquet", options);
  ASSERT_OK(exported);
  EXPECT_EQ(exported->rows, 25000u);
  ASSERT_OK_AND_ASSIGN(ImportedObject imported,
                       ImportFromStore(*conn_, *store_, *exported, "evens"));
  EXPECT_EQ(Difference("(SELECT id, name FROM sample WHERE even)", "evens"), 0);
  Result<Value> groups =
      conn_->QueryScalar("SELECT count(DISTINCT row_group_id) FROM parquet_metadata(" +
                         QuoteLiteral(imported.path) + ")");
  ASSERT_OK(groups);
  EXPECT_GE(*groups->AsInt64(), 3);
  ASSERT_OK_AND_ASSIGN(Value codec,
                       conn_->QueryScalar("SELECT DISTINCT compression FROM parquet_metadata(" +
                                          QuoteLiteral(imported.path) + ")"));
  EXPECT_EQ(codec.ToString(), "SNAPPY");
}

TEST_P(ParquetTransferTest, EmptyResultExportsAndImports) {
  Result<ExportedObject> exported =
      ExportQueryToStore(*conn_, "SELECT * FROM sample WHERE false", *store_, "empty.parquet");
  ASSERT_OK(exported);
  EXPECT_EQ(exported->rows, 0u);
  ASSERT_OK(ImportFromStore(*conn_, *store_, *exported, "nothing"));
  EXPECT_EQ(Difference("(SELECT * FROM sample WHERE false)", "nothing"), 0);
}

TEST_P(ParquetTransferTest, ExportToAFileNamesItAsTheImportCacheWould) {
  const std::string cache = dir_.path() + "/cache";
  Result<ExportedFile> file = ExportQueryToFile(*conn_, "SELECT * FROM sample", cache);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->rows, 50000u);
  EXPECT_EQ(file->path,
            cache + "/" + HexU64(file->xxh3) + "-" + std::to_string(file->size) + ".parquet");
  Result<FileDigest> digest = DigestFile(file->path);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(digest->size, file->size);
  EXPECT_EQ(digest->xxh3, file->xxh3);
  // Type-exact, like a checkpoint: a view over it has the names, types and values.
  ASSERT_TRUE(CreateCheckpointView(*conn_, "from_file", file->path).ok());
  EXPECT_EQ(Difference("sample", "from_file"), 0);
  // Uploaded elsewhere, an import with the same cache is a hit: nothing is downloaded.
  ASSERT_TRUE(store_->PutFile("k.parquet", file->path).ok());
  ExportedObject object{"k.parquet", file->size, file->xxh3, file->rows, ""};
  ImportOptions import;
  import.cache_dir = cache;
  Result<ImportedObject> imported = ImportFromStore(*conn_, *store_, object, "again", import);
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_TRUE(imported->cache_hit);
  // A failed query leaves nothing in the directory.
  Result<ExportedFile> bad = ExportQueryToFile(*conn_, "SELECT nope FROM sample", cache);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CountFiles(cache, "respawn-export"), 0);
  EXPECT_EQ(ExportQueryToFile(*conn_, "SELECT 1", "relative/dir").status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(ParquetTransferTest, FailedExportPublishesNothing) {
  Result<ExportedObject> bad =
      ExportQueryToStore(*conn_, "SELECT nope FROM sample", *store_, "bad");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("export to bad"));
  EXPECT_THAT(bad.status().message(), HasSubstr("nope"));
  EXPECT_TRUE(store_->Stat("bad").status().IsNotFound());

  EXPECT_EQ(ExportTableToStore(*conn_, "missing_table", *store_, "m").status().code(),
            StatusCode::kInvalidArgument);
  ExportOptions weird;
  weird.compression = "zstd); DROP TABLE sample; --";
  EXPECT_EQ(ExportTableToStore(*conn_, "sample", *store_, "w", weird).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ExportTableToStore(*conn_, "sample", *store_, "").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(CountFiles(db_->temp_directory(), "respawn-export"), 0);
}

TEST_P(ParquetTransferTest, InterruptedExportPublishesNothing) {
  ASSERT_OK(conn_->Execute(
      "CREATE TABLE big AS SELECT range AS a, range::VARCHAR AS s FROM range(10000000)"));
  std::atomic<bool> done{false};
  std::thread interrupter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    while (!done) {
      conn_->Interrupt();
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });
  Result<ExportedObject> exported = ExportQueryToStore(
      *conn_, "SELECT a, s, md5(s) AS h FROM big ORDER BY h", *store_, "interrupted.parquet");
  done = true;
  interrupter.join();
  ASSERT_FALSE(exported.ok()) << "finished before the interrupt; make the query slower";
  EXPECT_EQ(exported.status().code(), StatusCode::kAborted) << exported.status().ToString();
  EXPECT_TRUE(store_->Stat("interrupted.parquet").status().IsNotFound());
  EXPECT_EQ(CountFiles(db_->temp_directory(), "respawn-export"), 0);
}

TEST_P(ParquetTransferTest, CorruptObjectIsDataLossAndNotCached) {
  ASSERT_OK_AND_ASSIGN(ExportedObject exported,
                       ExportTableToStore(*conn_, "sample", *store_, "obj.parquet"));
  std::string bytes = *store_->Get("obj.parquet");

  // One flipped byte in the middle: same size, other checksum.
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x01;
  ASSERT_OK(store_->Put("obj.parquet", flipped));
  ImportOptions options;
  options.cache_dir = dir_.path() + "/cache";
  Result<ImportedObject> r = ImportFromStore(*conn_, *store_, exported, "t", options);
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << r.status().ToString();
  EXPECT_THAT(r.status().message(), HasSubstr("obj.parquet"));
  EXPECT_THAT(r.status().message(), HasSubstr("expected size " + std::to_string(exported.size) +
                                              " xxh3 " + HexU64(exported.xxh3)));
  EXPECT_EQ(CountFiles(options.cache_dir, ".parquet"), 0);  // the bad download is gone
  EXPECT_FALSE(conn_->Execute("SELECT * FROM t").ok());     // no view was made

  // Truncated: the size differs.
  ASSERT_OK(store_->Put("obj.parquet", bytes.substr(0, bytes.size() - 100)));
  r = ImportFromStore(*conn_, *store_, exported, "t", options);
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("got size " + std::to_string(bytes.size() - 100)));
  EXPECT_EQ(CountFiles(options.cache_dir, ".parquet"), 0);

  // Restored: imports again.
  ASSERT_OK(store_->Put("obj.parquet", bytes));
  r = ImportFromStore(*conn_, *store_, exported, "t", options);
  ASSERT_OK(r);
  EXPECT_EQ(Difference("sample", "t"), 0);

  // A record that disagrees on the row count is caught even when the bytes verify.
  ExportedObject wrong_rows = exported;
  wrong_rows.rows += 1;
  r = ImportFromStore(*conn_, *store_, wrong_rows, "t2", options);
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("rows"));

  // A missing object is NotFound.
  ExportedObject missing = exported;
  missing.key = "nope.parquet";
  missing.xxh3 ^= 1;
  EXPECT_EQ(ImportFromStore(*conn_, *store_, missing, "t3", options).status().code(),
            StatusCode::kNotFound);
}

TEST_P(ParquetTransferTest, CacheIsReusedOnlyWhenItVerifies) {
  ASSERT_OK_AND_ASSIGN(ExportedObject exported,
                       ExportTableToStore(*conn_, "sample", *store_, "c.parquet"));
  ImportOptions options;
  options.cache_dir = dir_.path() + "/it's cache";  // quotes in the path are escaped
  ASSERT_OK_AND_ASSIGN(ImportedObject first,
                       ImportFromStore(*conn_, *store_, exported, "a", options));
  EXPECT_FALSE(first.cache_hit);
  EXPECT_EQ(first.path.rfind(options.cache_dir + "/", 0), 0u);

  // Second import reads the cache: it works even with the object gone from the store.
  ASSERT_OK(store_->Delete("c.parquet"));
  ASSERT_OK_AND_ASSIGN(ImportedObject second,
                       ImportFromStore(*conn_, *store_, exported, "b", options));
  EXPECT_TRUE(second.cache_hit);
  EXPECT_EQ(second.path, first.path);
  EXPECT_EQ(Difference("sample", "b"), 0);

  // A damaged cached file is not used: it is replaced by a fresh download.
  ASSERT_OK(ExportTableToStore(*conn_, "sample", *store_, "c.parquet"));
  {
    std::fstream f(first.path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  ASSERT_OK_AND_ASSIGN(ImportedObject third,
                       ImportFromStore(*conn_, *store_, exported, "c", options));
  EXPECT_FALSE(third.cache_hit);
  EXPECT_EQ(Difference("sample", "c"), 0);
  ASSERT_OK_AND_ASSIGN(FileDigest digest, DigestFile(third.path));
  EXPECT_EQ(digest.xxh3, exported.xxh3);

  // Replacing a view works; the view name is quoted.
  ASSERT_OK(ImportFromStore(*conn_, *store_, exported, "My \"View\"", options));
  ASSERT_OK(ImportFromStore(*conn_, *store_, exported, "My \"View\"", options));
  EXPECT_EQ(Difference("sample", "\"My \"\"View\"\"\""), 0);
}

TEST_P(ParquetTransferTest, TruncatedLocalFileIsAnErrorNotGarbage) {
  Result<ExportedObject> exported = ExportTableToStore(*conn_, "sample", *store_, "f.parquet");
  ASSERT_OK(exported);
  std::string bytes = *store_->Get("f.parquet");
  std::string path = dir_.path() + "/f.parquet";
  auto write = [&path](const std::string& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  };

  write(bytes);
  for (ParquetCheck check : {ParquetCheck::kFooter, ParquetCheck::kFullScan}) {
    ASSERT_OK_AND_ASSIGN(ParquetFileInfo info, CheckParquetFile(*conn_, path, check));
    EXPECT_EQ(info.rows, 50000u);
    EXPECT_EQ(info.columns, 9u);
  }

  for (size_t keep : {bytes.size() / 2, bytes.size() - 1, size_t{10}, size_t{0}}) {
    write(bytes.substr(0, keep));
    Result<ParquetFileInfo> info = CheckParquetFile(*conn_, path);
    EXPECT_EQ(info.status().code(), StatusCode::kDataLoss) << keep;
    EXPECT_THAT(info.status().message(), HasSubstr(path));
  }
  write("not parquet at all");
  EXPECT_EQ(CheckParquetFile(*conn_, path).status().code(), StatusCode::kDataLoss);
  EXPECT_EQ(CheckParquetFile(*conn_, dir_.path() + "/none.parquet").status().code(),
            StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Stores, ParquetTransferTest, ::testing::Values("memory", "posix"),
                         [](const auto& info) { return info.param; });

// ~10M rows through a PosixStore: prints the time of each step (no timing asserts).
TEST(ParquetTransferScaleTest, TenMillionRows) {
  TempDir dir;
  DatabaseOptions options;
  options.threads = 2;
  auto db = std::move(Database::Open(options)).value();
  auto conn = std::move(db->Connect()).value();
  PosixStoreOptions po;
  po.fsync = false;
  std::shared_ptr<Store> store = std::move(PosixStore::Open(dir.path() + "/store", po)).value();
  ASSERT_OK(
      conn->Execute("CREATE TABLE big AS SELECT range AS id, range % 1000 AS k, "
                    "(range * 0.5)::DOUBLE AS v, 'row-' || (range % 100000) AS s "
                    "FROM range(10000000)"));
  using Clock = std::chrono::steady_clock;
  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };

  for (const char* codec : {"zstd", "snappy"}) {
    ExportOptions eo;
    eo.compression = codec;
    auto t0 = Clock::now();
    Result<ExportedObject> exported =
        ExportTableToStore(*conn, "big", *store, std::string("big-") + codec + ".parquet", eo);
    auto t1 = Clock::now();
    ASSERT_OK(exported);
    ASSERT_EQ(exported->rows, 10000000u);
    Result<ImportedObject> imported =
        ImportFromStore(*conn, *store, *exported, std::string("back_") + codec);
    auto t2 = Clock::now();
    ASSERT_OK(imported);
    Result<Value> sum = conn->QueryScalar(std::string("SELECT sum(id) FROM back_") + codec);
    auto t3 = Clock::now();
    ASSERT_OK(sum);
    EXPECT_EQ(sum->ToString(), "49999995000000");
    std::printf("10M rows %s: export %.2f s (%.1f MiB), import+verify %.2f s, scan %.2f s\n", codec,
                seconds(t1 - t0), exported->size / 1048576.0, seconds(t2 - t1), seconds(t3 - t2));
    RecordProperty(std::string("export_ms_") + codec, static_cast<int>(seconds(t1 - t0) * 1000));
  }
}

}  // namespace
}  // namespace respawn
