// A checkpoint is type-exact (issue 9, section 2b): a query exported with ExportQueryToStore and
// imported with ImportFromStore has the column names, the DuckDB types and the values that plain
// DuckDB gives for the query, for every DuckDB type, nested ones included.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "sql/parquet_transfer.h"
#include "storage/memory_store.h"
#include "util/hash.h"
#include "util/testing.h"

namespace respawn {
namespace {

using ::testing::HasSubstr;

class CheckpointTypesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DatabaseOptions options;
    options.threads = 2;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Database> db, Database::Open(options));
    db_ = std::move(db);
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<Connection> conn, db_->Connect());
    conn_ = std::move(conn);
    store_ = std::make_shared<MemoryStore>();
  }

  // (name, type) of every column of the table or view `name`, as DESCRIBE gives them.
  std::vector<std::pair<std::string, std::string>> Describe(const std::string& name) {
    std::vector<std::pair<std::string, std::string>> out;
    Result<QueryResult> r = conn_->Query("SELECT column_name, column_type FROM (DESCRIBE " +
                                         QuoteIdentifier(name) + ")");
    EXPECT_OK(r);
    if (!r.ok()) return out;
    for (const auto& row : r->rows()) out.emplace_back(row[0].ToString(), row[1].ToString());
    return out;
  }

  // Exports `sql` as a checkpoint, imports it as the view "back" and expects what a view of `sql`
  // gives: the same column names and types, and in every row (matched by the column "rn") the
  // same value, compared three ways: IS NOT DISTINCT FROM (NaN equals NaN; a UNION's tag counts
  // even when its value is NULL), the text form (which tells -0.0 from 0.0, '1 month' from
  // '30 days' and shows a TIME WITH TIME ZONE's offset), and typeof().
  void ExpectRoundTripExact(const std::string& sql) {
    SCOPED_TRACE(sql.substr(0, 200));
    ASSERT_OK(conn_->Execute("CREATE OR REPLACE VIEW orig AS " + sql));
    std::string key = "checkpoint-" + std::to_string(++exports_) + ".parquet";
    ASSERT_OK_AND_ASSIGN(ExportedObject exported, ExportQueryToStore(*conn_, sql, *store_, key));
    Result<ImportedObject> imported = ImportFromStore(*conn_, *store_, exported, "back");
    ASSERT_OK(imported);

    std::vector<std::pair<std::string, std::string>> want = Describe("orig");
    std::vector<std::pair<std::string, std::string>> got = Describe("back");
    ASSERT_FALSE(want.empty());
    EXPECT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size() && i < got.size(); ++i) {
      EXPECT_EQ(got[i].first, want[i].first) << "name of column " << i;
      EXPECT_EQ(got[i].second, want[i].second) << "type of column " << want[i].first;
    }

    ASSERT_OK_AND_ASSIGN(
        Value rows,
        conn_->QueryScalar("SELECT (SELECT count(*) FROM orig) = (SELECT count(*) FROM back) AND "
                           "(SELECT count(*) FROM orig) = (SELECT count(DISTINCT rn) FROM orig)"));
    EXPECT_EQ(rows.ToString(), "true") << "row counts differ (or rn is not unique)";

    for (const auto& [name, type] : want) {
      std::string c = QuoteIdentifier(name);
      std::string differs = "o.rn IS NULL OR b.rn IS NULL OR o." + c + " IS DISTINCT FROM b." + c +
                            " OR CAST(o." + c + " AS VARCHAR) IS DISTINCT FROM CAST(b." + c +
                            " AS VARCHAR) OR typeof(o." + c + ") <> typeof(b." + c + ")";
      Result<QueryResult> diff = conn_->Query(
          "SELECT coalesce(o.rn, b.rn) AS rn, CAST(o." + c + " AS VARCHAR), CAST(b." + c +
          " AS VARCHAR) FROM orig AS o FULL OUTER JOIN back AS b ON o.rn = b.rn WHERE " + differs +
          " ORDER BY 1 LIMIT 5");
      if (!diff.ok()) {
        ADD_FAILURE() << "column " << name << " (" << type
                      << "): cannot compare: " << diff.status().ToString();
        continue;
      }
      EXPECT_EQ(diff->num_rows(), 0u)
          << "column " << name << " (" << type << ") differs; rn|original|restored:\n"
          << diff->ToText();
    }
  }

  std::unique_ptr<Database> db_;
  std::unique_ptr<Connection> conn_;
  std::shared_ptr<Store> store_;
  int exports_ = 0;
};

// The issue's example: sum() of a BIGINT column is HUGEINT, and it must stay one, exactly.
TEST_F(CheckpointTypesTest, SumOfBigintStaysAnExactHugeint) {
  const std::string sql = "SELECT 1 AS rn, sum(9007199254740993::BIGINT) AS s FROM range(3)";
  ExpectRoundTripExact(sql);
  ASSERT_OK_AND_ASSIGN(QueryResult r,
                       conn_->Query("SELECT typeof(s), CAST(s AS VARCHAR) FROM back"));
  EXPECT_EQ(r.ToText(), "HUGEINT|27021597764222979\n");
}

// Every type DuckDB has, with its minimum, maximum and NULL (test_all_types() is DuckDB's own
// list: integers of every width signed and unsigned, HUGEINT/UHUGEINT, BIGNUM, DECIMAL widths,
// every temporal type, UUID, INTERVAL, BLOB, BIT, ENUMs, LIST/ARRAY/STRUCT/MAP/UNION nested in
// each other).
TEST_F(CheckpointTypesTest, EveryDuckDBTypeAtItsExtremes) {
  ExpectRoundTripExact("SELECT row_number() OVER () AS rn, * FROM test_all_types()");
}

// An ENUM with 70,000 labels (a UINTEGER dictionary).
TEST_F(CheckpointTypesTest, LargeEnumKeepsItsDictionary) {
  ExpectRoundTripExact(
      "SELECT row_number() OVER () AS rn, large_enum, [large_enum] AS in_list "
      "FROM test_all_types(use_large_enum = true)");
}

// Values test_all_types() lacks: NaN, -0.0, infinities, empty and unicode strings, empty lists and
// maps, NULL inside containers, a STRUCT that is NULL next to one whose fields are NULL, UNION
// members with a NULL value, the extremes of INTERVAL components and of HUGEINT halves, and the
// lossy types nested inside each other.
TEST_F(CheckpointTypesTest, SpecialValuesAndNestedLossyTypes) {
  ExpectRoundTripExact(R"sql(
    SELECT unnest(range(1, 9)) AS rn,
      unnest(['nan', '-0.0', 'inf', '-inf', '0.0', NULL, '4.9e-324',
              '1.7976931348623157e308']::DOUBLE[]) AS d,
      unnest(['nan', '-0.0', 'inf', '-inf', '0.0', NULL, '1.4e-45', '3.4028235e38']::FLOAT[]) AS f,
      unnest([['-0.0', 'nan', NULL], [], NULL]::DOUBLE[][]) AS dl,
      unnest(['', 'ünïcödé ☃ 日本語 🦆', 'it''s "quoted"' || chr(10) || 'two lines', NULL,
              repeat('x', 10000)]) AS s,
      unnest([''::BLOB, '\x00\xFF\x80'::BLOB, NULL]) AS bl,
      unnest([[], [NULL], NULL, [1, 2]]::INTEGER[][]) AS il,
      unnest(['-170141183460469231731687303715884105728', '170141183460469231731687303715884105727',
              '-1', '0', NULL, '18446744073709551616', '-18446744073709551616',
              '-18446744073709551617']::HUGEINT[]) AS h,
      unnest(['340282366920938463463374607431768211455', '0', NULL, '18446744073709551615',
              '18446744073709551616']::UHUGEINT[]) AS uh,
      unnest([to_months(2147483647) + to_days(2147483647) + to_microseconds(9223372036854775807),
              to_months(-2147483648) + to_days(-2147483648) + to_microseconds(-9223372036854775808),
              INTERVAL '1 month', INTERVAL '30 days', to_microseconds(-1), NULL,
              INTERVAL '1 ms 1 us', INTERVAL '-13 months 5 days']) AS iv,
      unnest(['12:34:56.789012+05:30', '00:00:00+15:59:59', '24:00:00-15:59:59', '12:00:00+00',
              NULL]::TIME WITH TIME ZONE[]) AS ttz,
      unnest(['01:02:03.123456789', '00:00:00', '23:59:59.999999999', NULL]::TIME_NS[]) AS tns,
      unnest(['2024-01-31 13:45:00.123456789', NULL]::TIMESTAMP_NS[]) AS tsns,
      unnest(['2024-01-31 13:45:07', 'infinity', '-infinity', NULL]::TIMESTAMP_S[]) AS tss,
      unnest(['2024-01-31 13:45:07.123', NULL]::TIMESTAMP_MS[]) AS tsms,
      unnest(['2024-01-31 13:45:07.123456+02', 'infinity', NULL]::TIMESTAMPTZ[]) AS tstz,
      unnest(['infinity', '-infinity', '2024-02-29', NULL]::DATE[]) AS dt,
      unnest(['010110', '1', NULL]::BIT[]) AS bits,
      unnest(['-123456789012345678901234567890123456789012345678901234567890', '0',
              NULL]::BIGNUM[]) AS bn,
      unnest(['{"a": [1, 2.5, null]}', '""', NULL]::JSON[]) AS js,
      unnest(['a', 'it''s', '', 'ünï', NULL]::ENUM('a', 'it''s', '', 'ünï')[]) AS e,
      unnest([union_value(n := 'x')::UNION(n VARCHAR, "A ge" SMALLINT, h HUGEINT),
              union_value("A ge" := NULL::SMALLINT), union_value(h := NULL::HUGEINT),
              union_value(h := '-170141183460469231731687303715884105728'::HUGEINT),
              NULL, union_value("A ge" := 7::SMALLINT)]) AS u,
      unnest([[union_value(a := 1)::UNION(a INTEGER, b INTERVAL),
               union_value(b := NULL::INTERVAL), NULL], [], NULL]) AS ul,
      unnest([{'h': 1::HUGEINT, 'iv': INTERVAL '1 us', 'e': 'b'::ENUM('a', 'b'),
               't': '01:00:00+01'::TIMETZ},
              NULL, {'h': NULL, 'iv': NULL, 'e': NULL, 't': NULL}]) AS st,
      unnest([MAP {1::HUGEINT: [INTERVAL '1 us', NULL]}, MAP {}, NULL,
              MAP {'-170141183460469231731687303715884105728'::HUGEINT: []}]) AS m,
      unnest([MAP {'k': 'a'::ENUM('a', 'b')}, MAP {}, NULL]) AS me,
      unnest([[1::HUGEINT, NULL]::HUGEINT[2], NULL, [NULL, NULL]::HUGEINT[2]]) AS ha,
      unnest([[[1, 2, 3]::INTEGER[3]], []]) AS arr_in_list,
      unnest([[{'x': [2::UHUGEINT]}], [NULL, {'x': []}, {'x': NULL}]]) AS deep,
      unnest([['1.5', '-999.9'], [], NULL]::DECIMAL(4,1)[][]) AS decl,
      unnest(['99999999999999999999999999999999999999', '-99999999999999999999999999999999999999',
              NULL]::DECIMAL(38,0)[]) AS dec38,
      unnest(['00000000-0000-0000-0000-000000000000', 'ffffffff-ffff-ffff-ffff-ffffffffffff',
              NULL]::UUID[]) AS uid,
      unnest([255, 0, NULL]::UTINYINT[]) AS u8,
      unnest(['18446744073709551615', '0', NULL]::UBIGINT[]) AS u64,
      unnest([row(1::HUGEINT, 'a'), NULL]) AS unnamed
  )sql");
  // The UNION tags, told apart even where the value is NULL.
  Result<QueryResult> tags =
      conn_->Query("SELECT CAST(union_tag(u) AS VARCHAR) FROM back ORDER BY rn");
  ASSERT_OK(tags);
  EXPECT_EQ(tags->ToText(), "n\nA ge\nh\nh\nNULL\nA ge\nNULL\nNULL\n");
}

// Column names survive exactly: blanks, quotes, unicode, case, and duplicates (which DuckDB
// renames the way a view of the query does).
TEST_F(CheckpointTypesTest, OddColumnNames) {
  ExpectRoundTripExact(
      "SELECT 1 AS rn, 1::HUGEINT AS \"a b\", 2::HUGEINT AS \"it's\", 3 AS \"quo\"\"ted\", "
      "4::HUGEINT AS \"Ünï 日本\", 5 AS x, 6::HUGEINT AS x, 7 AS \"Mixed Case\", "
      "sum(9007199254740993::BIGINT) OVER ()");
  // The same with only lossless types (the query is written as it is).
  ExpectRoundTripExact("SELECT 1 AS rn, 5 AS x, 6 AS x, 'a' AS \"it's \"\"x\"\"\"");
}

// A checkpoint written without the type record (by respawn before the record existed) is not
// served with whatever types Parquet left: HUGEINT read back as DOUBLE would be wrong.
TEST_F(CheckpointTypesTest, CheckpointWithoutTypeRecordIsRefused) {
  std::string path = db_->temp_directory() + "/old.parquet";
  ASSERT_OK(conn_->Execute("COPY (SELECT sum(9007199254740993::BIGINT) AS s FROM range(3)) TO " +
                           QuoteLiteral(path) + " (FORMAT parquet)"));
  ASSERT_OK(store_->PutFile("old.parquet", path));
  ASSERT_OK_AND_ASSIGN(FileDigest digest, DigestFile(path));
  ExportedObject old{"old.parquet", digest.size, digest.xxh3, 1, ""};
  Result<ImportedObject> imported = ImportFromStore(*conn_, *store_, old, "old");
  EXPECT_EQ(imported.status().code(), StatusCode::kFailedPrecondition)
      << imported.status().ToString();
  EXPECT_THAT(imported.status().message(), HasSubstr("old.parquet"));
  EXPECT_THAT(imported.status().message(), HasSubstr("recompute"));
}

// ---- Parquet outputs (files for other readers) ----

class ParquetOutputTest : public CheckpointTypesTest {
 protected:
  // Writes `sql` to a Parquet file the way the runner writes an output, and returns the status
  // of the COPY; the file is then readable as `read_parquet(Path())`.
  Status WriteOutput(const std::string& sql) {
    Result<std::string> select = ParquetOutputQuery(*conn_, sql);
    if (!select.ok()) return select.status();
    return conn_->Execute("COPY (" + *select + ") TO " + QuoteLiteral(Path()) +
                          " (FORMAT parquet, COMPRESSION zstd)");
  }
  // "type|text" of each row of the column `column` of the written file.
  std::string Read(const std::string& column) {
    Result<QueryResult> r =
        conn_->Query("SELECT typeof(" + column + "), CAST(" + column + " AS VARCHAR) FROM " +
                     "read_parquet(" + QuoteLiteral(Path()) + ")");
    EXPECT_OK(r);
    return r.ok() ? r->ToText() : "";
  }

  // In the database's own temporary directory: ctest runs test cases as parallel processes, and
  // a shared path let one case read a file another was writing.
  std::string Path() const { return db_->temp_directory() + "/output-test.parquet"; }
};

TEST_F(ParquetOutputTest, LosslessColumnsAreWrittenAsTheyAre) {
  const std::string sql =
      "SELECT 1 AS a, 'x' AS b, [1.5::DOUBLE] AS c, {'d': DATE '2024-01-01'} AS d";
  ASSERT_OK_AND_ASSIGN(std::string select, ParquetOutputQuery(*conn_, sql));
  EXPECT_EQ(select, sql);
}

TEST_F(ParquetOutputTest, HugeintIsAnExactDecimal) {
  ASSERT_OK(
      WriteOutput("SELECT sum(9007199254740993::BIGINT) AS s, "
                  "'-99999999999999999999999999999999999999'::HUGEINT AS lo, "
                  "'99999999999999999999999999999999999999'::UHUGEINT AS hi, "
                  "[1::HUGEINT, NULL] AS l, NULL::HUGEINT AS n FROM range(3)"));
  EXPECT_EQ(Read("s"), "DECIMAL(38,0)|27021597764222979\n");
  EXPECT_EQ(Read("lo"), "DECIMAL(38,0)|-99999999999999999999999999999999999999\n");
  EXPECT_EQ(Read("hi"), "DECIMAL(38,0)|99999999999999999999999999999999999999\n");
  EXPECT_EQ(Read("l"), "DECIMAL(38,0)[]|[1, NULL]\n");
  EXPECT_EQ(Read("n"), "DECIMAL(38,0)|NULL\n");
}

TEST_F(ParquetOutputTest, HugeintBeyondThirtyEightDigitsFailsNamingTheColumn) {
  Status st =
      WriteOutput("SELECT 1 AS ok, '100000000000000000000000000000000000000'::HUGEINT AS big");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("output column \"big\""));
  EXPECT_THAT(st.message(), HasSubstr("100000000000000000000000000000000000000"));
  st = WriteOutput("SELECT ['340282366920938463463374607431768211455'::UHUGEINT] AS \"u l\"");
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
  EXPECT_THAT(st.message(), HasSubstr("output column \"u l\""));
}

TEST_F(ParquetOutputTest, IntervalIsKeptOrRefusedNeverTruncated) {
  ASSERT_OK(WriteOutput("SELECT INTERVAL '14 months 3 days 01:02:03.004' AS i"));
  EXPECT_EQ(Read("i"), "INTERVAL|1 year 2 months 3 days 01:02:03.004\n");
  for (const char* bad :
       {"INTERVAL '1 microsecond'", "INTERVAL '-1 day'", "INTERVAL '2000 hours'"}) {
    Status st = WriteOutput(std::string("SELECT ") + bad + " AS i");
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << bad << ": " << st.ToString();
    EXPECT_THAT(st.message(), HasSubstr("output column \"i\"")) << bad;
  }
}

TEST_F(ParquetOutputTest, TimeWithTimeZoneIsConvertedToUtc) {
  ASSERT_OK(WriteOutput("SELECT '12:00:00+02'::TIMETZ AS t"));
  EXPECT_EQ(Read("t"), "TIME WITH TIME ZONE|10:00:00+00\n");
}

TEST_F(ParquetOutputTest, UnionIsAStructWithATag) {
  ASSERT_OK(
      WriteOutput("SELECT union_value(n := 2::HUGEINT)::UNION(s VARCHAR, n HUGEINT, "
                  "tag INTEGER) AS u"));
  EXPECT_EQ(Read("u"),
            "STRUCT(_tag VARCHAR, s VARCHAR, n DECIMAL(38,0), tag INTEGER)|"
            "{'_tag': n, 's': NULL, 'n': 2, 'tag': NULL}\n");
}

}  // namespace
}  // namespace respawn
