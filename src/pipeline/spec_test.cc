#include "pipeline/spec.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "util/testing.h"

namespace respawn {
namespace {

Result<PipelineSpec> Parse(std::string_view text) {
  return ParsePipelineString(text, "pipeline.toml", "/base");
}

// The full message of a parse that must fail with InvalidArgument.
std::string ParseError(std::string_view text) {
  Result<PipelineSpec> r = Parse(text);
  EXPECT_FALSE(r.ok()) << "parsed without error";
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().ToString();
  return r.status().message();
}

constexpr std::string_view kSales = R"toml(name = "sales"
store = "s3://bucket/prefix"

[sources.orders]
path = "data/orders/*.csv"
options = { header = true, delim = "," }

[sources.numbers]
sql = "SELECT range AS n FROM range(${rows})"
params = { rows = 1000 }

[stages.clean_orders]
sql = """
SELECT * FROM orders
WHERE amount >= ${min_amount} AND region = '${region}'
"""
params = { min_amount = 10, region = "eu", ratio = 0.5, since = 2024-01-31 }

[stages.daily]
sql = "SELECT day, sum(amount) AS revenue FROM clean_orders GROUP BY day"
depends_on = ["numbers"]
checkpoint = false

[outputs.daily_report]
from = "daily"
path = "out/daily.parquet"

[outputs.raw]
from = "orders"
path = "s3://other/raw.csv"
)toml";

TEST(SpecTest, ParsesAFullPipeline) {
  Result<PipelineSpec> r = Parse(kSales);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const PipelineSpec& spec = *r;
  EXPECT_EQ(spec.name, "sales");
  EXPECT_EQ(spec.store, "s3://bucket/prefix");
  EXPECT_EQ(spec.store_line, 2);
  EXPECT_EQ(spec.base_dir, "/base");

  ASSERT_EQ(spec.sources.size(), 2u);
  const SourceSpec& orders = spec.sources[0];
  EXPECT_EQ(orders.name, "orders");
  EXPECT_EQ(orders.line, 4);
  EXPECT_EQ(orders.kind, SourceKind::kFiles);
  EXPECT_EQ(orders.location.written, "data/orders/*.csv");
  EXPECT_EQ(orders.location.resolved, "/base/data/orders/*.csv");
  EXPECT_FALSE(orders.location.is_url);
  EXPECT_EQ(orders.format, DataFormat::kCsv);
  ASSERT_EQ(orders.options.size(), 2u);
  EXPECT_EQ(orders.options[0].name, "delim");  // sorted by name
  EXPECT_EQ(orders.options[0].value.SqlLiteral(), "','");
  EXPECT_EQ(orders.options[1].name, "header");
  EXPECT_EQ(orders.options[1].value.SqlLiteral(), "true");

  const SourceSpec& numbers = spec.sources[1];
  EXPECT_EQ(numbers.kind, SourceKind::kSql);
  EXPECT_EQ(numbers.sql, "SELECT range AS n FROM range(1000)");
  EXPECT_EQ(numbers.raw_sql, "SELECT range AS n FROM range(${rows})");
  EXPECT_EQ(numbers.sql_line, 9);

  ASSERT_EQ(spec.stages.size(), 2u);
  const StageSpec& clean = spec.stages[0];
  EXPECT_EQ(clean.name, "clean_orders");
  EXPECT_EQ(clean.line, 12);
  EXPECT_EQ(clean.sql_line, 14);  // the newline after """ is trimmed
  EXPECT_EQ(clean.sql, "SELECT * FROM orders\nWHERE amount >= 10 AND region = 'eu'\n");
  EXPECT_TRUE(clean.checkpoint);
  ASSERT_EQ(clean.params.size(), 4u);
  EXPECT_EQ(clean.params[0].name, "min_amount");
  EXPECT_EQ(clean.params[1].name, "ratio");
  EXPECT_EQ(clean.params[1].value.text, "0.5");
  EXPECT_EQ(clean.params[3].name, "since");
  EXPECT_EQ(clean.params[3].value.SqlLiteral(), "DATE '2024-01-31'");

  const StageSpec& daily = spec.stages[1];
  EXPECT_FALSE(daily.checkpoint);
  ASSERT_EQ(daily.depends_on.size(), 1u);
  EXPECT_EQ(daily.depends_on[0].name, "numbers");
  EXPECT_EQ(daily.depends_on[0].line, 21);

  ASSERT_EQ(spec.outputs.size(), 2u);
  EXPECT_EQ(spec.outputs[0].name, "daily_report");
  EXPECT_EQ(spec.outputs[0].from.name, "daily");
  EXPECT_EQ(spec.outputs[0].location.resolved, "/base/out/daily.parquet");
  EXPECT_EQ(spec.outputs[0].format, DataFormat::kParquet);
  EXPECT_EQ(spec.outputs[1].format, DataFormat::kCsv);
  EXPECT_TRUE(spec.outputs[1].location.is_url);
  EXPECT_EQ(spec.outputs[1].location.resolved, "s3://other/raw.csv");

  EXPECT_NE(spec.FindStage("DAILY"), nullptr);
  EXPECT_NE(spec.FindSource("Orders"), nullptr);
  EXPECT_EQ(spec.FindSource("daily"), nullptr);
  EXPECT_NE(spec.FindOutput("raw"), nullptr);
  EXPECT_EQ(spec.Where(7), "pipeline.toml:7");
}

TEST(SpecTest, KeepsDeclarationOrderNotKeyOrder) {
  Result<PipelineSpec> r = Parse(R"toml(name = "p"
[stages.zeta]
sql = "SELECT 1"
[stages.alpha]
sql = "SELECT 2"
[stages]
mid = { sql = "SELECT 3" }
)toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->stages.size(), 3u);
  EXPECT_EQ(r->stages[0].name, "zeta");
  EXPECT_EQ(r->stages[1].name, "alpha");
  EXPECT_EQ(r->stages[2].name, "mid");
  EXPECT_EQ(r->stages[2].line, 7);
}

TEST(SpecTest, FormatsFromExtensionOrKey) {
  Result<PipelineSpec> r = Parse(R"toml(name = "p"
[sources.a]
path = "a.parquet"
[sources.b]
path = "b/*.jsonl"
[sources.c]
path = "c.csv.gz"
[sources.d]
path = "d.dat"
format = "CSV"
[sources.e]
path = "file:///abs/e.json"
[outputs.o]
from = "a"
path = "o.dat"
format = "csv"
)toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->sources[0].format, DataFormat::kParquet);
  EXPECT_EQ(r->sources[1].format, DataFormat::kJson);
  EXPECT_EQ(r->sources[2].format, DataFormat::kCsv);
  EXPECT_EQ(r->sources[3].format, DataFormat::kCsv);
  EXPECT_EQ(r->sources[4].location.resolved, "/abs/e.json");
  EXPECT_FALSE(r->sources[4].location.is_url);
  EXPECT_EQ(r->outputs[0].format, DataFormat::kCsv);
}

TEST(SpecTest, TomlSyntaxErrorHasLineAndColumn) {
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.a]\nsql = \"SELECT 1\n"),
            "pipeline.toml:3:16: invalid TOML: the string is not closed on its line; end it with "
            "the quote it starts with, or use \"\"\"...\"\"\" for text over several lines");
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.a]\nsql = 'SELECT 1"),
            "pipeline.toml:3:16: invalid TOML: encountered end-of-file (while parsing literal "
            "string)");
}

TEST(SpecTest, RedefinedTableIsATomlError) {
  std::string e = ParseError("name = \"p\"\n[stages.a]\nsql = \"x\"\n[stages.a]\nsql = \"y\"\n");
  EXPECT_TRUE(e.starts_with("pipeline.toml:4:1: invalid TOML: ")) << e;
}

TEST(SpecTest, UnknownKeysSuggestTheValidOne) {
  EXPECT_EQ(ParseError(R"toml(name = "p"
[stages.a]
sql = "SELECT 1"
dependson = ["b"]
)toml"),
            "pipeline.toml:4: stage \"a\": unknown key \"dependson\" (did you mean "
            "\"depends_on\"?); valid keys are sql, depends_on, checkpoint, keep, params, expect, "
            "expect_sql, severity");
  EXPECT_EQ(ParseError("name = \"p\"\n[stage.a]\nsql = \"SELECT 1\"\n"),
            "pipeline.toml:2: pipeline: unknown key \"stage\" (did you mean \"stages\"?); valid "
            "keys are name, store, coordinator, sources, stages, outputs, gc, profiles");
  EXPECT_EQ(ParseError("name = \"p\"\n[sources.a]\nSQL = \"SELECT 1\"\n"),
            "pipeline.toml:2: source \"a\" needs path = \"...\" (files to read) or sql = "
            "\"SELECT ...\" (rows to generate)\n"
            "pipeline.toml:3: source \"a\": unknown key \"SQL\" (did you mean \"sql\"?); valid "
            "keys are path, sql, format, options, params");
}

TEST(SpecTest, MissingSql) {
  EXPECT_EQ(ParseError("name = \"p\"\n\n[stages.daily]\ncheckpoint = true\n"),
            "pipeline.toml:3: stage \"daily\" has no sql; add sql = \"SELECT ...\" (the query "
            "that computes it)");
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.daily]\nsql = \"  \"\n"),
            "pipeline.toml:3: stage \"daily\": sql is empty; write the query (e.g. sql = "
            "\"SELECT ...\")");
}

TEST(SpecTest, SourceNeedsExactlyOneOfPathAndSql) {
  EXPECT_EQ(ParseError("name = \"p\"\n[sources.o]\npath = \"o.csv\"\nsql = \"SELECT 1\"\n"),
            "pipeline.toml:2: source \"o\" sets both path and sql; keep path to read files or "
            "sql to generate rows, not both");
  EXPECT_EQ(ParseError("name = \"p\"\n[sources.o]\nformat = \"csv\"\n"),
            "pipeline.toml:2: source \"o\" needs path = \"...\" (files to read) or sql = "
            "\"SELECT ...\" (rows to generate)");
}

TEST(SpecTest, WrongTypes) {
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.a]\nsql = 5\n"),
            "pipeline.toml:3: stage \"a\": sql must be a string, not an integer (e.g. sql = "
            "\"SELECT ...\")");
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.a]\nsql = \"SELECT 1\"\ncheckpoint = \"yes\"\n"),
            "pipeline.toml:4: stage \"a\": checkpoint must be true or false, not a string");
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.a]\nsql = \"SELECT 1\"\ndepends_on = \"b\"\n"),
            "pipeline.toml:4: stage \"a\": depends_on must be an array of names, not a string "
            "(e.g. depends_on = [\"orders\"])");
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.a]\nsql = \"SELECT 1\"\nparams = { x = [1] }\n"),
            "pipeline.toml:4: stage \"a\": params.x must be a string, number, boolean, date or "
            "time, not an array");
  EXPECT_EQ(ParseError("name = \"p\"\nstages = 3\n"),
            "pipeline.toml:2: stages must be a table of stages, not an integer (e.g. "
            "[stages.name])");
  EXPECT_EQ(ParseError("name = \"p\"\n[sources]\norders = \"o.csv\"\n"),
            "pipeline.toml:3: source \"orders\" must be a table, not a string (write "
            "[sources.orders] and its keys below it)");
  EXPECT_EQ(ParseError("name = 1\n"),
            "pipeline.toml:1: pipeline: name must be a string, not an integer (e.g. name = "
            "\"sales\")");
}

TEST(SpecTest, WorkTablesTtlIsADurationOrZero) {
  constexpr std::string_view kStage = "name = \"p\"\n[stages.a]\nsql = \"SELECT 1\"\n";
  EXPECT_EQ(Parse(kStage)->gc.work_tables_ttl_ms, 6 * 3'600'000);
  EXPECT_EQ(
      Parse(std::string(kStage) + "[gc]\nwork_tables_ttl = \"4h30m\"\n")->gc.work_tables_ttl_ms,
      (4 * 60 + 30) * 60'000);
  EXPECT_EQ(Parse(std::string(kStage) + "[gc]\nwork_tables_ttl = \"0\"\n")->gc.work_tables_ttl_ms,
            0);
  EXPECT_EQ(ParseError(std::string(kStage) + "[gc]\nwork_tables_ttl = \"4 hours\"\n"),
            "pipeline.toml:5: [gc]: work_tables_ttl: duration \"4 hours\" is not valid: write a "
            "number and a unit (s, m, h, d), e.g. \"90s\", \"30m\", \"1h30m\", \"2d\"");
  EXPECT_EQ(ParseError(std::string(kStage) + "[gc]\nwork_tables_ttl = 4\n"),
            "pipeline.toml:5: [gc]: work_tables_ttl must be a string, not an integer (e.g. "
            "work_tables_ttl = \"6h\")");
}

TEST(SpecTest, DuplicateNamesAcrossKinds) {
  EXPECT_EQ(ParseError(R"toml(name = "p"
[sources.orders]
path = "o.csv"
[stages.Orders]
sql = "SELECT 1"
)toml"),
            "pipeline.toml:4: stage \"Orders\" has the same name as source \"orders\" (line 2); "
            "sources, stages and outputs share one namespace, ignoring case: rename one");
  EXPECT_EQ(ParseError(R"toml(name = "p"
[stages.daily]
sql = "SELECT 1"
[outputs.daily]
from = "daily"
path = "d.parquet"
)toml"),
            "pipeline.toml:4: output \"daily\" has the same name as stage \"daily\" (line 2); "
            "sources, stages and outputs share one namespace, ignoring case: rename one");
}

TEST(SpecTest, OutputsMustReadAKnownTableAndOwnTheirPath) {
  EXPECT_EQ(ParseError(R"toml(name = "p"
[stages.daily]
sql = "SELECT 1"
[outputs.report]
from = "dayly"
path = "d.parquet"
)toml"),
            "pipeline.toml:5: output \"report\" reads from \"dayly\", which no stage or source "
            "defines (did you mean \"daily\"?)");
  EXPECT_EQ(ParseError(R"toml(name = "p"
[stages.daily]
sql = "SELECT 1"
[outputs.a]
from = "daily"
path = "d.parquet"
[outputs.b]
from = "daily"
path = "./d.parquet"
)toml"),
            "pipeline.toml:9: output \"b\" writes \"./d.parquet\", which output \"a\" also "
            "writes; give each output its own path");
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.d]\nsql = \"SELECT 1\"\n[outputs.o]\nfrom = "
                       "\"d\"\npath = \"o.txt\"\n"),
            "pipeline.toml:6: output \"o\": cannot tell the format of \"o.txt\" from its "
            "extension; end it in .parquet, .csv or .json, or add format = \"parquet\", \"csv\" "
            "or \"json\"");
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.d]\nsql = \"SELECT 1\"\n[outputs.o]\nfrom = "
                       "\"d\"\n"),
            "pipeline.toml:4: output \"o\" needs path = \"out/o.parquet\" (where it is written)");
}

TEST(SpecTest, OutputOptionsBecomeCopyOptionsAndPartOfTheContentId) {
  Result<PipelineSpec> r = Parse(R"toml(name = "p"
[stages.d]
sql = "SELECT 1"
[outputs.plain]
from = "d"
path = "plain.csv"
[outputs.semi]
from = "d"
path = "semi.csv"
options = { delimiter = ";", null = "NA", header = false }
[outputs.lines]
from = "d"
path = "lines.json"
[outputs.fast]
from = "d"
path = "fast.parquet"
options = { compression = "snappy", row_group_size = 1000 }
)toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->outputs.size(), 4u);
  EXPECT_EQ(r->outputs[0].copy_options, "FORMAT csv, HEADER true");
  EXPECT_EQ(r->outputs[1].copy_options, "FORMAT csv, DELIMITER ';', HEADER false, NULLSTR 'NA'");
  EXPECT_EQ(r->outputs[2].format, DataFormat::kJson);
  EXPECT_EQ(r->outputs[2].copy_options, "FORMAT json");
  EXPECT_EQ(r->outputs[3].copy_options,
            "FORMAT parquet, COMPRESSION 'snappy', ROW_GROUP_SIZE 1000");
  // Default options keep the id outputs had before options existed; others change it.
  EXPECT_EQ(r->outputs[0].ContentId("f1"), "f1/csv");
  EXPECT_EQ(r->outputs[2].ContentId("f1"), "f1/json");
  EXPECT_NE(r->outputs[1].ContentId("f1"), "f1/csv");
  EXPECT_EQ(r->outputs[1].ContentId("f1").rfind("f1/csv/", 0), 0u);
  EXPECT_NE(r->outputs[3].ContentId("f1"), r->outputs[3].ContentId("f2"));
}

TEST(SpecTest, OutputOptionsAreChecked) {
  const std::string head =
      "name = \"p\"\n[stages.d]\nsql = \"SELECT 1\"\n[outputs.o]\nfrom = \"d\"\n";
  EXPECT_EQ(ParseError(head + "path = \"o.csv\"\noptions = { delimeter = \";\" }\n"),
            "pipeline.toml:7: output \"o\": csv outputs take no option \"delimeter\" (did you "
            "mean \"delimiter\"?); options are delimiter, header, quote, escape, null, "
            "compression");
  EXPECT_EQ(ParseError(head + "path = \"o.csv\"\noptions = { header = \"yes\" }\n"),
            "pipeline.toml:7: output \"o\": options.header must be a boolean");
  EXPECT_EQ(ParseError(head + "path = \"o.parquet\"\noptions = { row_group_size = 0 }\n"),
            "pipeline.toml:7: output \"o\": options.row_group_size must be at least 1");
  EXPECT_EQ(
      ParseError(head + "path = \"o.parquet\"\noptions = { compression = \"lzo\" }\n"),
      "pipeline.toml:7: output \"o\": options.compression \"lzo\" is not a Parquet codec (did you "
      "mean \"lz4\"?); "
      "use one of zstd, snappy, gzip, lz4, brotli, uncompressed");
  EXPECT_EQ(ParseError(head + "path = \"o.json\"\noptions = { delimiter = \";\" }\n"),
            "pipeline.toml:7: output \"o\": json outputs take no option \"delimiter\"; options "
            "are array, compression");
}

TEST(SpecTest, DependsOnMustNameATable) {
  EXPECT_EQ(ParseError(R"toml(name = "p"
[sources.orders]
path = "o.csv"
[stages.a]
sql = "SELECT 1"
depends_on = ["ordres"]
)toml"),
            "pipeline.toml:6: stage \"a\" depends_on \"ordres\", which no source or stage "
            "defines (did you mean \"orders\"?)");
}

TEST(SpecTest, NamesMustBeSqlIdentifiers) {
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.daily-report]\nsql = \"SELECT 1\"\n"),
            "pipeline.toml:2: stage name \"daily-report\" is not a SQL identifier; use letters, "
            "digits and _, not starting with a digit (e.g. \"daily_report\")");
  EXPECT_EQ(ParseError("name = \"p\"\n[sources.2020]\npath = \"a.csv\"\n"),
            "pipeline.toml:2: source name \"2020\" is not a SQL identifier; use letters, "
            "digits and _, not starting with a digit (e.g. \"_2020\")");
  EXPECT_EQ(ParseError("name = \"my sales\"\n"),
            "pipeline.toml:1: pipeline name \"my sales\" may contain only letters, digits, "
            "'_', '-' and '.' (it names the pipeline's checkpoints in the store)");
  EXPECT_EQ(ParseError("[stages.a]\nsql = \"SELECT 1\"\n"),
            "pipeline.toml:1: missing name = \"...\" at the top of the file (it names the "
            "pipeline's checkpoints in the store)");
}

TEST(SpecTest, ParamsAreSubstitutedAndChecked) {
  EXPECT_EQ(ParseError(R"toml(name = "p"
[stages.a]
sql = """
SELECT *
FROM t WHERE x > ${min_amont}
"""
params = { min_amount = 1 }
)toml"),
            "pipeline.toml:5: stage \"a\": sql uses ${min_amont}, which params does not define "
            "(did you mean \"min_amount\"?); defined params are min_amount");
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.a]\nsql = \"SELECT ${x}\"\n"),
            "pipeline.toml:3: stage \"a\": sql uses ${x}, but no params are defined; add "
            "params = { x = ... }");
  EXPECT_EQ(ParseError("name = \"p\"\n[stages.a]\nsql = \"SELECT ${1x}\"\nparams = {}\n"),
            "pipeline.toml:3: stage \"a\": malformed parameter reference \"${1x}\" in sql; "
            "write ${name} where name is a key of params");

  Result<PipelineSpec> r = Parse(R"toml(name = "p"
[stages.a]
sql = "SELECT ${n} AS n, '${s}' AS s, ${f} AS f, ${b} AS b, $1 AS dollar"
params = { n = -3, s = "it's", f = 10.0, b = false }
)toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->stages[0].sql, "SELECT -3 AS n, 'it's' AS s, 10.0 AS f, false AS b, $1 AS dollar");
  EXPECT_EQ(r->stages[0].params[3].value.SqlLiteral(), "'it''s'");
}

TEST(SpecTest, ReportsEveryProblemSortedByLine) {
  std::string e = ParseError(R"toml(name = "p"
[stages.b]
sql = 1
[stages.a]
sqll = "x"
)toml");
  EXPECT_EQ(e,
            "pipeline.toml:3: stage \"b\": sql must be a string, not an integer (e.g. sql = "
            "\"SELECT ...\")\n"
            "pipeline.toml:4: stage \"a\" has no sql; add sql = \"SELECT ...\" (the query that "
            "computes it)\n"
            "pipeline.toml:5: stage \"a\": unknown key \"sqll\" (did you mean \"sql\"?); valid "
            "keys are sql, depends_on, checkpoint, keep, params, expect, expect_sql, severity");
}

TEST(SpecTest, SourceOnlyKeys) {
  EXPECT_EQ(ParseError("name = \"p\"\n[sources.a]\nsql = \"SELECT 1\"\nformat = \"csv\"\n"),
            "pipeline.toml:4: source \"a\": format applies only to sources read from files "
            "(path = ...); remove it");
  EXPECT_EQ(ParseError("name = \"p\"\n[sources.a]\npath = \"a.xlsx\"\n"),
            "pipeline.toml:3: source \"a\": cannot tell the format of \"a.xlsx\" from its "
            "extension; add format = \"csv\", \"parquet\" or \"json\"");
  EXPECT_EQ(ParseError("name = \"p\"\n[sources.a]\npath = \"a.x\"\nformat = \"parket\"\n"),
            "pipeline.toml:4: source \"a\": unknown format \"parket\" (did you mean "
            "\"parquet\"?); use \"csv\", \"parquet\" or \"json\"");
  EXPECT_EQ(ParseError("name = \"p\"\n[sources.a]\npath = \"gs://b/a.csv\"\n"),
            "pipeline.toml:3: source \"a\": path \"gs://b/a.csv\" uses an unsupported scheme "
            "\"gs://\"; use a local path or s3://bucket/key");
}

TEST(SpecTest, EffectiveStoreUrlPrecedence) {
  Result<PipelineSpec> with = Parse("name = \"p\"\nstore = \"ckpt\"\n");
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  Result<PipelineSpec> without = Parse("name = \"p\"\n");
  ASSERT_TRUE(without.ok());
  ::unsetenv("RESPAWN_STORE");
  EXPECT_EQ(EffectiveStoreUrl(*with), "/base/ckpt");
  EXPECT_EQ(EffectiveStoreUrl(*without), "/base/.respawn");
  ::setenv("RESPAWN_STORE", "s3://env/x", 1);
  EXPECT_EQ(EffectiveStoreUrl(*with), "s3://env/x");
  EXPECT_EQ(EffectiveStoreUrl(*with, "memory://flag"), "memory://flag");
  ::unsetenv("RESPAWN_STORE");
}

TEST(SpecTest, CoordinatorIsAPostgresUrlAndTheEnvironmentWins) {
  Result<PipelineSpec> with =
      Parse("name = \"p\"\ncoordinator = \"postgresql://u:secret@db:5432/respawn\"\n");
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  EXPECT_EQ(with->coordinator, "postgresql://u:secret@db:5432/respawn");
  EXPECT_EQ(with->coordinator_line, 2);
  Result<PipelineSpec> without = Parse("name = \"p\"\n");
  ASSERT_TRUE(without.ok());
  ::unsetenv("RESPAWN_COORDINATOR");
  EXPECT_EQ(EffectiveCoordinatorUrl(*with), "postgresql://u:secret@db:5432/respawn");
  EXPECT_EQ(EffectiveCoordinatorUrl(*without), "");
  ::setenv("RESPAWN_COORDINATOR", "postgres://env@db/x", 1);
  EXPECT_EQ(EffectiveCoordinatorUrl(*with), "postgres://env@db/x");
  EXPECT_EQ(EffectiveCoordinatorUrl(*without), "postgres://env@db/x");
  ::unsetenv("RESPAWN_COORDINATOR");
  // Not a PostgreSQL URL: the line, what is expected, and never the password.
  std::string error = ParseError("name = \"p\"\ncoordinator = \"mysql://u:secret@db/x\"\n");
  EXPECT_NE(error.find("pipeline.toml:2: "), std::string::npos) << error;
  EXPECT_NE(error.find("not a PostgreSQL URL"), std::string::npos) << error;
  EXPECT_EQ(error.find("secret"), std::string::npos) << error;
  EXPECT_NE(ParseError("name = \"p\"\ncoordinator = 5\n").find("pipeline.toml:2: "),
            std::string::npos);
}

TEST(SpecTest, ParsePipelineFileResolvesAgainstItsDirectory) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("respawn_spec_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  { std::ofstream(dir / "pipeline.toml") << "name = \"p\"\n[sources.a]\npath = \"in/a.csv\"\n"; }
  Result<PipelineSpec> r = ParsePipelineFile((dir / "pipeline.toml").string());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->sources[0].location.resolved, (dir / "in/a.csv").string());
  EXPECT_EQ(r->base_dir, dir.string());

  Result<PipelineSpec> missing = ParsePipelineFile((dir / "nope.toml").string());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("nope.toml"), std::string::npos);
  fs::remove_all(dir);
}

TEST(SpecTest, DidYouMean) {
  std::vector<std::string> names = {"orders", "customers", "daily", "daily_report"};
  EXPECT_EQ(DidYouMean("orderz", names), "orders");
  EXPECT_EQ(DidYouMean("ORDERS_", names), "orders");
  EXPECT_EQ(DidYouMean("odrers", names), "orders");     // transposition counts once
  EXPECT_EQ(DidYouMean("custom", names), "customers");  // prefix
  EXPECT_EQ(DidYouMean("dialy", names), "daily");
  EXPECT_EQ(DidYouMean("revenue", names), std::nullopt);
  EXPECT_EQ(DidYouMean("orders", names), std::nullopt);  // itself is no suggestion
  EXPECT_EQ(DidYouMean("SQL", {"sql"}), "sql");          // TOML keys are case-sensitive
  EXPECT_EQ(DidYouMean("x", {"y"}), std::nullopt);       // too short to guess
  EXPECT_EQ(DidYouMeanSuffix("dayly", names), " (did you mean \"daily\"?)");
  EXPECT_EQ(DidYouMeanSuffix("zzz", names), "");
}

TEST(SpecTest, IdentifiersAndLines) {
  EXPECT_TRUE(IsSqlIdentifier("_a1"));
  EXPECT_TRUE(IsSqlIdentifier("Orders"));
  EXPECT_FALSE(IsSqlIdentifier("1a"));
  EXPECT_FALSE(IsSqlIdentifier("a-b"));
  EXPECT_FALSE(IsSqlIdentifier(""));
  EXPECT_EQ(LineInSql("a\nb\nc", 10, 0), 10);
  EXPECT_EQ(LineInSql("a\nb\nc", 10, 4), 12);
  EXPECT_EQ(LineInSql("a", 3, 99), 3);
}

TEST(SpecTest, SqlLiterals) {
  EXPECT_EQ((SpecValue{SpecValue::Type::kTime, "07:32:00"}).SqlLiteral(), "TIME '07:32:00'");
  EXPECT_EQ((SpecValue{SpecValue::Type::kDateTime, "2024-01-31T07:32:00Z"}).SqlLiteral(),
            "TIMESTAMPTZ '2024-01-31T07:32:00Z'");
  EXPECT_EQ((SpecValue{SpecValue::Type::kDateTime, "2024-01-31T07:32:00"}).SqlLiteral(),
            "TIMESTAMP '2024-01-31T07:32:00'");
  EXPECT_EQ((SpecValue{SpecValue::Type::kFloat, "inf"}).SqlLiteral(), "'inf'::DOUBLE");
}

// Paths are expanded as a shell would (the TOML file is never seen by one), and mistyped store
// URLs are errors with the right form, not local directories named "s3:".
TEST(SpecTest, PathsExpandHomeAndVariablesAndRefuseMistypedUrls) {
  ::setenv("HOME", "/home/ada", 1);
  ::setenv("RESPAWN_SPEC_TEST_BUCKET", "team-bucket", 1);
  Result<PipelineSpec> spec = Parse(R"toml(name = "p"
store = "s3://${RESPAWN_SPEC_TEST_BUCKET}/ckpt"
[sources.a]
path = "~/in/*.csv"
[outputs.o]
from = "a"
path = "$HOME/out/a.parquet"
)toml");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->store, "s3://team-bucket/ckpt");
  EXPECT_EQ(spec->sources[0].location.resolved, "/home/ada/in/*.csv");
  EXPECT_EQ(spec->outputs[0].location.resolved, "/home/ada/out/a.parquet");

  ::unsetenv("RESPAWN_SPEC_TEST_UNSET");
  std::string unset = ParseError(R"toml(name = "p"
[sources.a]
path = "$RESPAWN_SPEC_TEST_UNSET/a.csv"
)toml");
  EXPECT_NE(unset.find("pipeline.toml:3:"), std::string::npos) << unset;
  EXPECT_NE(unset.find("$RESPAWN_SPEC_TEST_UNSET, which is not set"), std::string::npos) << unset;

  std::string slash = ParseError(R"toml(name = "p"
store = "s3:/bucket/ckpt"
[sources.a]
sql = "SELECT 1"
)toml");
  EXPECT_NE(slash.find("pipeline.toml:2:"), std::string::npos) << slash;
  EXPECT_NE(slash.find("write s3://bucket/ckpt"), std::string::npos) << slash;
}

// --profile and --param override params (and the profile the store); ${env:NAME} reads the
// environment; all of them end up in the SQL, so in the fingerprint.
TEST(SpecTest, ProfilesParamsAndEnvironment) {
  constexpr std::string_view kText = R"toml(name = "p"
[profiles.dev]
params = { rows = 100 }
[profiles.prod]
store = "/stores/prod"
params = { rows = 5000 }
[sources.nums]
sql = "SELECT range AS n FROM range(${rows})"
params = { rows = 1000 }
[stages.total]
sql = "SELECT count(*) * ${factor} AS c, '${env:RESPAWN_SPEC_TEST_TAG}' AS tag FROM nums"
params = { factor = 2 }
)toml";
  ::setenv("RESPAWN_SPEC_TEST_TAG", "blue", 1);
  SpecOverrides prod;
  prod.profile = "prod";
  prod.params = {"factor=3"};
  Result<PipelineSpec> spec = ParsePipelineString(kText, "pipeline.toml", "/base", prod);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->store, "/stores/prod");
  EXPECT_EQ(spec->sources[0].sql, "SELECT range AS n FROM range(5000)");
  EXPECT_EQ(spec->stages[0].sql, "SELECT count(*) * 3 AS c, 'blue' AS tag FROM nums");
  EXPECT_EQ(spec->stages[0].params[0].value.type, SpecValue::Type::kInteger);

  Result<PipelineSpec> plain = ParsePipelineString(kText, "pipeline.toml", "/base");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->store, "");
  EXPECT_EQ(plain->sources[0].sql, "SELECT range AS n FROM range(1000)");

  SpecOverrides bad;
  bad.params = {"fctor=3", "factor=abc"};
  Result<PipelineSpec> r = ParsePipelineString(kText, "pipeline.toml", "/base", bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--param fctor=3: no source or stage defines the param "
                                      "\"fctor\" (did you mean \"factor\"?)"),
            std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("\"abc\" is not a whole number"), std::string::npos);
  SpecOverrides unknown;
  unknown.profile = "staging";
  r = ParsePipelineString(kText, "pipeline.toml", "/base", unknown);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("no [profiles.staging]; profiles are dev, prod"),
            std::string::npos)
      << r.status().message();
  ::unsetenv("RESPAWN_SPEC_TEST_TAG");
  r = ParsePipelineString(kText, "pipeline.toml", "/base");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("RESPAWN_SPEC_TEST_TAG is not set"), std::string::npos);
}

TEST(SpecTest, ParsesExpectationsOfAStage) {
  Result<PipelineSpec> r = Parse(R"toml(name = "x"
[stages.orders]
sql = "SELECT 1 AS id, 'new' AS status"
params = { floor = 0 }
expect = ["unique(id)",
          "accepted_values(status, ['new', 'paid'])"]
expect_sql = "SELECT * FROM orders WHERE id < ${floor}"
severity = "warn"
[stages.plain]
sql = "SELECT 1"
expect = "rows > 0"
expect_sql = ["SELECT 1 WHERE false", """
SELECT 2 WHERE false"""]
)toml");
  ASSERT_OK(r.status());
  const StageSpec& orders = r->stages[0];
  ASSERT_EQ(orders.expectations.size(), 3u);
  EXPECT_EQ(orders.expectations[0].kind, Expectation::Kind::kUnique);
  EXPECT_EQ(orders.expectations[0].line, 5);
  EXPECT_EQ(orders.expectations[1].kind, Expectation::Kind::kAcceptedValues);
  EXPECT_EQ(orders.expectations[1].line, 6);
  EXPECT_EQ(orders.expectations[2].kind, Expectation::Kind::kSql);
  EXPECT_EQ(orders.expectations[2].text, "SELECT * FROM orders WHERE id < 0");
  EXPECT_EQ(orders.expectations[2].line, 7);
  EXPECT_EQ(orders.expectations[2].sql_column, 15);
  EXPECT_EQ(orders.severity, Severity::kWarn);
  const StageSpec& plain = r->stages[1];
  EXPECT_EQ(plain.severity, Severity::kError);
  ASSERT_EQ(plain.expectations.size(), 3u);
  EXPECT_EQ(plain.expectations[0].kind, Expectation::Kind::kRowCount);
  EXPECT_EQ(plain.expectations[2].text, "SELECT 2 WHERE false");
  EXPECT_EQ(plain.expectations[2].line, 13);
  EXPECT_EQ(plain.expectations[2].sql_column, 1);
}

TEST(SpecTest, ReportsBadExpectationsWithTheirLine) {
  EXPECT_EQ(ParseError(R"toml(name = "x"
[stages.orders]
sql = "SELECT 1 AS id"
expect = ["unique(id)", "uniq(id)", 3]
expect_sql = ""
severity = "warning"
)toml"),
            "pipeline.toml:4: stage \"orders\": expect must be a string, not an integer (e.g. "
            "expect = [\"unique(id)\", \"rows > 0\"])\n"
            "pipeline.toml:4: stage \"orders\": expect \"uniq(id)\": unknown expectation \"uniq\" "
            "(did you mean \"unique\"?); write unique(col, ...), not_null(col, ...), "
            "accepted_values(col, ['a', 'b']) or rows > N, or the query returning the violating "
            "rows in expect_sql\n"
            "pipeline.toml:5: stage \"orders\": expect_sql is empty; write a query returning the "
            "rows that violate the expectation (none: it holds)\n"
            "pipeline.toml:6: stage \"orders\": unknown severity \"warning\" (did you mean "
            "\"warn\"?); use \"error\" (a failed expectation fails the stage) or \"warn\" (it is "
            "reported and the run goes on)");
  EXPECT_EQ(ParseError("name = \"x\"\n[stages.a]\nsql = \"SELECT 1\"\nexpects = []\n"),
            "pipeline.toml:4: stage \"a\": unknown key \"expects\" (did you mean \"expect\"?); "
            "valid keys are sql, depends_on, checkpoint, keep, params, expect, expect_sql, "
            "severity");
  EXPECT_EQ(ParseError("name = \"x\"\n[stages.a]\nsql = \"SELECT 1\"\nexpect = { a = 1 }\n"),
            "pipeline.toml:4: stage \"a\": expect must be a string or an array of strings, not a "
            "table (e.g. expect = [\"unique(id)\", \"rows > 0\"])");
}

}  // namespace
}  // namespace respawn
