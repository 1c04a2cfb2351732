#include "sql/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "util/testing.h"

namespace respawn {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::unique_ptr<Database> OpenDb(DatabaseOptions options = {}) {
  if (options.threads == 0) options.threads = 2;
  Result<std::unique_ptr<Database>> db = Database::Open(options);
  EXPECT_OK(db);
  return std::move(db).value();
}

std::unique_ptr<Connection> Connect(Database& db) {
  Result<std::unique_ptr<Connection>> conn = db.Connect();
  EXPECT_OK(conn);
  return std::move(conn).value();
}

std::string Scalar(Connection& conn, const std::string& sql) {
  Result<Value> v = conn.QueryScalar(sql);
  EXPECT_OK(v) << sql;
  return v.ok() ? v->ToString() : "<error>";
}

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

TEST(EngineTest, VersionIsTheLinkedDuckDb) { EXPECT_EQ(EngineVersion(), "v1.4.4"); }

TEST(EngineTest, DefaultTempDirectoryIsAbsoluteAndRemovedWithTheDatabase) {
  std::string dir;
  {
    auto db = OpenDb();
    dir = db->temp_directory();
    ASSERT_THAT(dir, StartsWith("/"));
    EXPECT_THAT(dir, HasSubstr("respawn-duckdb-"));
    EXPECT_TRUE(std::filesystem::is_directory(dir));
    auto conn = Connect(*db);
    EXPECT_EQ(Scalar(*conn, "SELECT current_setting('temp_directory')"), dir);
    // Two databases never share a spill directory.
    auto other = OpenDb();
    EXPECT_NE(other->temp_directory(), dir);
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(EngineTest, SettingsAreApplied) {
  TempDir tmp;
  DatabaseOptions options;
  options.temp_directory = tmp.path() + "/spill/";
  options.memory_limit_bytes = 512ULL << 20;
  options.threads = 1;
  options.settings = {{"preserve_insertion_order", "false"}};
  auto db = OpenDb(options);
  auto conn = Connect(*db);
  EXPECT_EQ(db->temp_directory(), tmp.path() + "/spill");
  EXPECT_EQ(Scalar(*conn, "SELECT current_setting('temp_directory')"), tmp.path() + "/spill");
  EXPECT_EQ(Scalar(*conn, "SELECT current_setting('autoload_known_extensions')"), "false");
  EXPECT_EQ(Scalar(*conn, "SELECT current_setting('autoinstall_known_extensions')"), "false");
  EXPECT_EQ(Scalar(*conn, "SELECT current_setting('threads')"), "1");
  EXPECT_EQ(Scalar(*conn, "SELECT current_setting('memory_limit')"), "512.0 MiB");
  EXPECT_EQ(Scalar(*conn, "SELECT current_setting('preserve_insertion_order')"), "false");
  EXPECT_EQ(Scalar(*conn, "SELECT current_setting('enable_progress_bar')"), "true");
  EXPECT_EQ(Scalar(*conn, "SELECT current_setting('enable_progress_bar_print')"), "false");
  // The built-in extensions work offline.
  EXPECT_EQ(Scalar(*conn, "SELECT json_extract('{\"a\": 7}', '$.a')"), "7");
}

TEST(EngineTest, DefaultMemoryLimitIsBelowHalfOfRam) {
  auto db = OpenDb();
  EXPECT_GT(db->memory_limit_bytes(), 0u);
  uint64_t ram = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE);
  EXPECT_LE(db->memory_limit_bytes(), ram / 2);
}

TEST(EngineTest, OpenRejectsBadOptions) {
  DatabaseOptions relative;
  relative.temp_directory = "relative/dir";
  EXPECT_EQ(Database::Open(relative).status().code(), StatusCode::kInvalidArgument);

  DatabaseOptions unknown;
  unknown.settings = {{"no_such_setting_xyz", "1"}};
  Result<std::unique_ptr<Database>> db = Database::Open(unknown);
  EXPECT_EQ(db.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(db.status().message(), HasSubstr("no_such_setting_xyz"));
}

TEST(EngineTest, FileDatabasePersists) {
  TempDir tmp;
  DatabaseOptions options;
  options.path = tmp.path() + "/db.duckdb";
  {
    auto db = OpenDb(options);
    auto conn = Connect(*db);
    ASSERT_OK(conn->Execute("CREATE TABLE t AS SELECT range AS x FROM range(5)"));
  }
  auto db = OpenDb(options);
  auto conn = Connect(*db);
  EXPECT_EQ(Scalar(*conn, "SELECT sum(x) FROM t"), "10");
}

TEST(EngineTest, ScalarTypes) {
  auto db = OpenDb();
  auto conn = Connect(*db);
  Result<QueryResult> r = conn->Query(
      "SELECT 42::TINYINT AS i8, -7::INTEGER AS i32, 9000000000::BIGINT AS i64, "
      "18446744073709551615::UBIGINT AS u64, 1.5::DOUBLE AS d, 0.25::FLOAT AS f, "
      "'héllo' AS s, NULL::VARCHAR AS n, true AS b, 12.340::DECIMAL(10,3) AS dec, "
      "-0.05::DECIMAL(4,2) AS small_dec, 170141183460469231731687303715884105727::HUGEINT AS h, "
      "DATE '2024-02-29' AS dt, TIME '13:45:00.5' AS tm, "
      "TIMESTAMP '2024-01-31 13:45:00.123456' AS ts, TIMESTAMP '1969-12-31 23:59:59' AS ts_neg, "
      "'\\xAA\\x00'::BLOB AS bl, '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID AS u, "
      "INTERVAL '1 year 2 months 3 days 04:05:06' AS iv, 'infinity'::DATE AS inf");
  ASSERT_OK(r);
  ASSERT_EQ(r->num_rows(), 1u);
  auto cell = [&](const char* name) { return r->at(0, *r->ColumnIndex(name)); };
  EXPECT_EQ(*cell("i8").AsInt64(), 42);
  EXPECT_EQ(*cell("i32").AsInt64(), -7);
  EXPECT_EQ(*cell("i64").AsInt64(), 9000000000);
  EXPECT_EQ(cell("u64").kind(), Value::Kind::kUInt64);
  EXPECT_EQ(*cell("u64").AsUInt64(), 18446744073709551615ULL);
  EXPECT_FALSE(cell("u64").AsInt64().ok());
  EXPECT_DOUBLE_EQ(*cell("d").AsDouble(), 1.5);
  EXPECT_DOUBLE_EQ(*cell("f").AsDouble(), 0.25);
  EXPECT_EQ(cell("s").ToString(), "héllo");
  EXPECT_TRUE(cell("n").is_null());
  EXPECT_EQ(cell("n").ToString(), "NULL");
  EXPECT_FALSE(cell("n").AsInt64().ok());
  EXPECT_TRUE(*cell("b").AsBool());
  EXPECT_EQ(cell("dec").ToString(), "12.340");
  EXPECT_DOUBLE_EQ(*cell("dec").AsDouble(), 12.34);
  EXPECT_EQ(cell("small_dec").ToString(), "-0.05");
  EXPECT_EQ(cell("h").ToString(), "170141183460469231731687303715884105727");
  EXPECT_EQ(cell("dt").ToString(), "2024-02-29");
  EXPECT_EQ(cell("tm").ToString(), "13:45:00.5");
  EXPECT_EQ(cell("ts").ToString(), "2024-01-31 13:45:00.123456");
  EXPECT_EQ(cell("ts_neg").ToString(), "1969-12-31 23:59:59");
  EXPECT_EQ(cell("bl").ToString(), std::string("\xAA\x00", 2));
  EXPECT_EQ(cell("u").ToString(), "6ba7b810-9dad-11d1-80b4-00c04fd430c8");
  EXPECT_EQ(cell("iv").ToString(), "1 year 2 months 3 days 04:05:06");
  EXPECT_EQ(cell("inf").ToString(), "infinity");

  std::vector<std::string> types;
  for (const Column& c : r->columns()) types.push_back(c.type);
  EXPECT_EQ(types[0], "TINYINT");
  EXPECT_EQ(types[9], "DECIMAL(10,3)");
  EXPECT_EQ(types[17], "UUID");
}

TEST(EngineTest, TypesAgreeWithDuckDbsOwnRendering) {
  auto db = OpenDb();
  auto conn = Connect(*db);
  // Each expression is read natively and as DuckDB's VARCHAR cast; both must agree.
  const char* exprs[] = {
      "TIMESTAMP_NS '2024-01-31 13:45:00.123456789'",
      "TIMESTAMP_MS '2024-01-31 13:45:00.123'",
      "TIMESTAMP_S '2024-01-31 13:45:00'",
      "DATE '0044-03-15'",
      "TIME '00:00:00'",
      "INTERVAL '-3 days'",
      "INTERVAL '90 minutes'",
      "-123456789012345678901234567890.12345::DECIMAL(38,5)",
      "0.001::DECIMAL(18,3)",
      "TIME '23:59:59.999999'",
  };
  for (const char* e : exprs) {
    Result<QueryResult> r = conn->Query(std::string("SELECT ") + e + ", (" + e + ")::VARCHAR");
    ASSERT_OK(r) << e;
    EXPECT_EQ(r->at(0, 0).ToString(), r->at(0, 1).ToString()) << e;
  }
}

TEST(EngineTest, NestedTypes) {
  auto db = OpenDb();
  auto conn = Connect(*db);
  ASSERT_OK(conn->Execute("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')"));
  ASSERT_OK_AND_ASSIGN(
      QueryResult r,
      conn->Query(
          "SELECT [1, NULL, 3] AS l, ['a', 'b'] AS ls, {'x': 1, 'y': 'z'} AS st, "
          "MAP {'k1': 10, 'k2': 20} AS m, [1, 2]::INTEGER[2] AS arr, 'happy'::mood AS e, "
          "[[1], [], [2, 3]] AS ll, union_value(num := 2)::UNION(num INTEGER, str VARCHAR) AS un, "
          "[]::INTEGER[] AS empty"));
  EXPECT_EQ(r.at(0, 0).ToString(), "[1, NULL, 3]");
  EXPECT_EQ(r.at(0, 1).ToString(), "['a', 'b']");
  EXPECT_EQ(r.at(0, 2).ToString(), "{'x': 1, 'y': 'z'}");
  EXPECT_EQ(r.at(0, 3).ToString(), "{'k1'=10, 'k2'=20}");
  EXPECT_EQ(r.at(0, 4).ToString(), "[1, 2]");
  EXPECT_EQ(r.at(0, 5).ToString(), "happy");
  EXPECT_EQ(r.at(0, 6).ToString(), "[[1], [], [2, 3]]");
  EXPECT_EQ(r.at(0, 7).ToString(), "2");
  EXPECT_EQ(r.at(0, 8).ToString(), "[]");
  EXPECT_EQ(r.columns()[0].type, "INTEGER[]");
  EXPECT_EQ(r.columns()[2].type, "STRUCT(x INTEGER, y VARCHAR)");
  EXPECT_EQ(r.columns()[3].type, "MAP(VARCHAR, INTEGER)");
  EXPECT_EQ(r.columns()[4].type, "INTEGER[2]");
}

TEST(EngineTest, UnreadableTypeIsUnimplementedWithAFix) {
  auto db = OpenDb();
  auto conn = Connect(*db);
  Result<QueryResult> r = conn->Query("SELECT '1010'::BIT AS bits");
  EXPECT_EQ(r.status().code(), StatusCode::kUnimplemented);
  EXPECT_THAT(r.status().message(), HasSubstr("bits"));
  EXPECT_THAT(r.status().message(), HasSubstr("VARCHAR"));
}

TEST(EngineTest, ManyRowsAcrossChunks) {
  auto db = OpenDb();
  auto conn = Connect(*db);
  ASSERT_OK_AND_ASSIGN(
      QueryResult r,
      conn->Query("SELECT range AS i, CASE WHEN range % 3 = 0 THEN NULL ELSE range::VARCHAR END "
                  "AS s FROM range(5000) ORDER BY i"));
  ASSERT_EQ(r.num_rows(), 5000u);
  for (size_t i = 0; i < 5000; ++i) {
    ASSERT_EQ(*r.at(i, 0).AsInt64(), static_cast<int64_t>(i));
    ASSERT_EQ(r.at(i, 1).is_null(), i % 3 == 0);
  }
}

TEST(EngineTest, ParametersAndRowsChanged) {
  auto db = OpenDb();
  auto conn = Connect(*db);
  ASSERT_OK(conn->Execute("CREATE TABLE t (a BIGINT, b VARCHAR, c DOUBLE, d BOOLEAN)"));
  Result<QueryResult> ins =
      conn->Query("INSERT INTO t VALUES ($1, $2, $3, $4), (2, NULL, 0, false)",
                  {Value(1), Value("it's"), Value(2.5), Value(true)});
  ASSERT_OK(ins);
  EXPECT_EQ(ins->rows_changed(), 2u);
  Result<Value> b = conn->QueryScalar("SELECT b FROM t WHERE a = ?", {Value(int64_t{1})});
  ASSERT_OK(b);
  EXPECT_EQ(b->ToString(), "it's");
  Result<Value> n =
      conn->QueryScalar("SELECT count(*) FROM t WHERE b IS NOT DISTINCT FROM ?", {Value::Null()});
  ASSERT_OK(n);
  EXPECT_EQ(*n->AsInt64(), 1);

  EXPECT_EQ(conn->Query("SELECT $1, $2", {Value(1)}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(conn->QueryScalar("SELECT 1, 2").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(conn->QueryScalar("SELECT 1 FROM range(2)").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Scalar(*conn, "SELECT 1; SELECT 2"), "2");  // the last statement's result
  EXPECT_EQ(Scalar(*conn,
                   "CREATE TABLE u AS SELECT 5 AS x; INSERT INTO u VALUES (6);\n"
                   "SELECT sum(x) FROM u;"),
            "11");
  Status second_fails = conn->Execute("SELECT 1; SELECT * FROM nowhere; SELECT 3");
  EXPECT_EQ(second_fails.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(second_fails.message(), HasSubstr("nowhere"));
}

TEST(EngineTest, ErrorsAreConvertedOnceWithDuckDbsMessage) {
  auto db = OpenDb();
  auto conn = Connect(*db);
  ASSERT_OK(conn->Execute("CREATE TABLE orders AS SELECT 1 AS amount"));

  Status syntax = conn->Execute("SELECT * FORM orders");
  EXPECT_EQ(syntax.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(syntax.message(), HasSubstr("Parser Error: syntax error at or near"));
  EXPECT_THAT(syntax.message(), HasSubstr("LINE 1"));

  Status table = conn->Execute("SELECT * FROM orderz");
  EXPECT_EQ(table.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(table.message(), HasSubstr("Table with name orderz does not exist"));
  EXPECT_THAT(table.message(), HasSubstr("orders"));  // DuckDB's did-you-mean

  Status column = conn->Execute("SELECT amountt FROM orders");
  EXPECT_EQ(column.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(column.message(), HasSubstr("amountt"));

  EXPECT_EQ(conn->Execute("SELECT 'abc'::INTEGER").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(conn->Execute("SELECT * FROM read_parquet('/nonexistent/x.parquet')").code(),
            StatusCode::kFailedPrecondition);

  // Prepared statements report errors as text only; they are classified the same way.
  Status prepared = conn->Execute("SELECT * FROM orderz WHERE amount = ?", {Value(1)});
  EXPECT_EQ(prepared.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(prepared.message(), HasSubstr("orderz"));

  // No network: extensions that need a download fail at once, not after a timeout.
  auto start = std::chrono::steady_clock::now();
  Status remote = conn->Execute("SELECT * FROM read_parquet('s3://bucket/x.parquet')");
  EXPECT_FALSE(remote.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));

  // The connection stays usable after errors.
  EXPECT_EQ(Scalar(*conn, "SELECT amount FROM orders"), "1");
}

TEST(EngineTest, TransactionConflictIsAborted) {
  auto db = OpenDb();
  auto a = Connect(*db);
  auto b = Connect(*db);
  ASSERT_OK(
      a->Execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER); "
                 "INSERT INTO t VALUES (1, 0)"));
  ASSERT_OK(a->Execute("BEGIN; UPDATE t SET v = 1 WHERE k = 1"));
  Status conflict = b->Execute("UPDATE t SET v = 2 WHERE k = 1");
  EXPECT_EQ(conflict.code(), StatusCode::kAborted) << conflict.ToString();
  ASSERT_OK(a->Execute("COMMIT"));
}

TEST(EngineTest, InterruptStopsALongQueryFromAnotherThread) {
  auto db = OpenDb();
  auto conn = Connect(*db);
  // Interrupting an idle connection does not affect the next statement.
  conn->Interrupt();
  EXPECT_EQ(Scalar(*conn, "SELECT 1"), "1");
  EXPECT_LT(conn->Progress().percentage, 0);

  ASSERT_OK(conn->Execute("CREATE TABLE big AS SELECT range AS a FROM range(20000000)"));
  std::atomic<bool> done{false};
  std::atomic<double> max_progress{-1};
  std::chrono::steady_clock::time_point interrupted_at;
  std::thread watcher([&] {
    auto start = std::chrono::steady_clock::now();
    while (!done) {
      double p = conn->Progress().percentage;
      if (p > max_progress) max_progress = p;
      auto elapsed = std::chrono::steady_clock::now() - start;
      if (elapsed > std::chrono::seconds(2) ||
          (p > 0 && elapsed > std::chrono::milliseconds(300))) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    interrupted_at = std::chrono::steady_clock::now();
    conn->Interrupt();
  });
  // Takes far longer than the watcher waits (about 8 s on 2 cores).
  Status st = conn->Execute("SELECT count(DISTINCT a::VARCHAR || (a * 7)::VARCHAR) FROM big");
  auto finished_at = std::chrono::steady_clock::now();
  done = true;
  watcher.join();
  EXPECT_EQ(st.code(), StatusCode::kAborted) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("Interrupt"));
  EXPECT_GT(max_progress.load(), 0.0);
  auto stop_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(finished_at - interrupted_at).count();
  RecordProperty("interrupt_to_stop_ms", static_cast<int>(stop_ms));
  std::printf("interrupt to stop: %lld ms, progress seen: %.1f%%\n",
              static_cast<long long>(stop_ms), max_progress.load());
  // Usable afterwards.
  EXPECT_EQ(Scalar(*conn, "SELECT count(*) FROM big"), "20000000");
}

TEST(EngineTest, OneConnectionPerThread) {
  auto db = OpenDb();
  {
    auto setup = Connect(*db);
    ASSERT_OK(setup->Execute("CREATE TABLE t AS SELECT range AS x FROM range(1000)"));
  }
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto conn = Connect(*db);
      for (int j = 0; j < 20; ++j) {
        Result<Value> v = conn->QueryScalar("SELECT sum(x) + ? FROM t", {Value(i)});
        if (v.ok() && *v->AsInt64() == 499500 + i) ok.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 80);
}

TEST(EngineTest, Quoting) {
  EXPECT_EQ(QuoteIdentifier("my \"t\""), "\"my \"\"t\"\"\"");
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
  auto db = OpenDb();
  auto conn = Connect(*db);
  std::string name = "odd \"name\"; DROP";
  ASSERT_OK(conn->Execute("CREATE TABLE " + QuoteIdentifier(name) + " AS SELECT " +
                          QuoteLiteral("a'b") + " AS v"));
  EXPECT_EQ(Scalar(*conn, "SELECT v FROM " + QuoteIdentifier(name)), "a'b");
}

TEST(ValueTest, Conversions) {
  EXPECT_EQ(Value(7).kind(), Value::Kind::kInt64);
  EXPECT_EQ(Value(7u).kind(), Value::Kind::kUInt64);
  EXPECT_EQ(Value(true).kind(), Value::Kind::kBool);
  EXPECT_EQ(Value(0.5).ToString(), "0.5");
  EXPECT_EQ(*Value("123").AsInt64(), 123);
  EXPECT_FALSE(Value("12x").AsInt64().ok());
  EXPECT_DOUBLE_EQ(*Value("-1.25").AsDouble(), -1.25);
  EXPECT_FALSE(Value(-1).AsUInt64().ok());
  EXPECT_EQ(Value("a"), Value(std::string("a")));
  EXPECT_FALSE(Value(1) == Value(1u));
}

}  // namespace
}  // namespace respawn
