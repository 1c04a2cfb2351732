// Pipeline spec: the parsed and validated form of a pipeline TOML file.
//
//   name = "sales"
//   store = "s3://bucket/prefix"              # optional
//   coordinator = "postgresql://u@host/db"    # optional: commit coordinator (ledger/coordinator.h)
//   [sources.orders]
//   path = "data/orders/*.csv"                # or sql = "SELECT ..." (exactly one)
//   format = "csv"                            # optional; else from the extension
//   options = { header = true }               # optional; passed to the DuckDB reader
//   [stages.clean]
//   sql = "SELECT * FROM orders WHERE amount >= ${min_amount}"
//   params = { min_amount = 10 }              # optional
//   depends_on = ["other"]                    # optional extra edges
//   checkpoint = true                         # optional, default true
//   keep = false                              # optional: keep the checkpoint through GC
//   expect = ["unique(id)", "rows > 0"]       # optional data tests (pipeline/expect.h)
//   expect_sql = "SELECT * FROM clean WHERE amount < 0"   # optional: a string or a list
//   severity = "warn"                         # optional: "error" (default) or "warn"
//   [outputs.report]
//   from = "clean"
//   path = "out/clean.parquet"                # parquet or csv, by extension or format
//   [gc]                                      # optional
//   keep_runs = 1                             # runs whose results stay
//   orphan_grace = "1h"                       # never-committed objects younger than this stay
//   keep_run_reports = 30                     # run reports kept in the ledger (status, ls)
//   work_tables_ttl = "6h"                    # the latest run's work-tables stay this long
//
// Every error is InvalidArgument, one line per problem, sorted by line, each shaped
// `<file>:<line>: <what is wrong and how to fix it>`.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace respawn {

/// A scalar TOML value kept with its type (stage params, reader options).
struct SpecValue {
  enum class Type { kBool, kInteger, kFloat, kString, kDate, kTime, kDateTime };
  Type type = Type::kString;
  /// Canonical text: true/false, 42, 2.5, the string itself, 2024-01-31, 07:32:00,
  /// 2024-01-31T07:32:00Z. This is what ${name} substitutes (strings without quotes).
  std::string text;

  /// The value as a DuckDB literal: true, 42, 2.5, 'it''s', DATE '2024-01-31', ...
  std::string SqlLiteral() const;
  friend bool operator==(const SpecValue&, const SpecValue&) = default;
};

struct NamedValue {
  std::string name;
  SpecValue value;
  int line = 0;
};

enum class SourceKind { kFiles, kSql };
enum class DataFormat { kCsv, kParquet, kJson };
/// "csv", "parquet", "json".
std::string_view DataFormatName(DataFormat format);

/// Where data lives: a local path (absolute, may be a glob) or a store URL (s3://...).
struct DataLocation {
  std::string written;   // as written in the file
  std::string resolved;  // absolute local path, or the URL unchanged
  bool is_url = false;
  int line = 0;
};

struct SourceSpec {
  std::string name;
  int line = 0;  // line of the [sources.<name>] header (or key)
  SourceKind kind = SourceKind::kFiles;

  // kFiles
  DataLocation location;
  DataFormat format = DataFormat::kCsv;
  std::vector<NamedValue> options;  // sorted by name

  // kSql
  std::string sql;                 // with ${param} substituted
  std::string raw_sql;             // as written
  int sql_line = 0;                // line on which the SQL text starts
  int sql_column = 1;              // column (code points) of its first character on that line
  std::vector<NamedValue> params;  // sorted by name
};

struct NameRef {
  std::string name;
  int line = 0;
};

/// One data test of a stage (`expect = [...]` or `expect_sql = ...`): what pipeline/expect.h
/// turns into a query returning the stage's rows that violate it (none: it holds).
struct Expectation {
  enum class Kind {
    kUnique,          // unique(col, ...): no two rows share the columns' values (NULLs aside)
    kNotNull,         // not_null(col, ...): no NULL in these columns
    kRowCount,        // rows > N (or >=, <, <=, =, !=): the stage's row count
    kAcceptedValues,  // accepted_values(col, ['a', 'b']): the column holds only these (or NULL)
    kSql,             // expect_sql: a SELECT returning the violating rows
  };
  Kind kind = Kind::kSql;
  std::string text;                  // as written (kSql: the SQL, with ${param} substituted)
  std::vector<std::string> columns;  // kUnique, kNotNull: one or more; kAcceptedValues: one
  std::vector<std::string> values;   // kAcceptedValues: SQL literals ('new', 42, true)
  std::string op;                    // kRowCount: ">", ">=", "<", "<=", "=", "!="
  uint64_t count = 0;                // kRowCount
  int line = 0;                      // of the string in the file
  int sql_column = 1;                // kSql: column of the SQL's first character on `line`
  friend bool operator==(const Expectation&, const Expectation&) = default;
};

/// What a failing expectation does: fail the stage (nothing of it commits) or warn and go on.
enum class Severity { kError, kWarn };

struct StageSpec {
  std::string name;
  int line = 0;         // line of the [stages.<name>] header (or key)
  std::string sql;      // with ${param} substituted
  std::string raw_sql;  // as written
  int sql_line = 0;     // line on which the SQL text starts
  int sql_column = 1;   // column (code points) of its first character on that line
  std::vector<NameRef> depends_on;
  bool checkpoint = true;
  /// Keep this stage's checkpoint after the run's outputs are committed (garbage collection
  /// otherwise deletes work-tables nothing retained needs).
  bool keep = false;
  std::vector<NamedValue> params;  // sorted by name
  /// Data tests, checked right after the stage computes and before its checkpoint commits:
  /// `expect` in order, then `expect_sql` in order.
  std::vector<Expectation> expectations;
  Severity severity = Severity::kError;
};

/// [gc]: what garbage collection keeps.
struct GcSpec {
  int keep_runs = 1;                    // runs whose results (output stages, kept stages) stay
  int64_t orphan_grace_ms = 3'600'000;  // never-committed objects younger than this stay
  int keep_run_reports = 30;            // run reports the ledger keeps (bounds its state)
  /// How long the work-tables of the latest run stay in the ledger (so that editing a stage
  /// reuses its inputs) before GC drops them; 0: dropped as soon as the run finishes.
  int64_t work_tables_ttl_ms = 6 * 3'600'000;
  int line = 0;
};

/// "90s", "30m", "1h", "2d", "1h30m" -> milliseconds; InvalidArgument otherwise.
Result<int64_t> ParseDuration(std::string_view text);

struct OutputSpec {
  std::string name;
  int line = 0;
  NameRef from;  // a stage or source
  DataLocation location;
  DataFormat format = DataFormat::kParquet;
  /// The options of DuckDB's COPY that writes it, from the format and `options = {...}`:
  /// "FORMAT parquet, COMPRESSION zstd" (default), "FORMAT csv, HEADER true, DELIMITER ';'", ...
  std::string copy_options;
  /// Columns of a partitioned output (`partition_by = ["day"]`): `path` is then a folder,
  /// written in hive layout (day=2024-01-01/data_0.parquet) and replaced as a whole. Their
  /// PARTITION_BY is part of copy_options.
  std::vector<std::string> partition_by;
  int partition_line = 0;

  /// What the written file is a function of: the node's fingerprint, the format and (when not
  /// the defaults) the COPY options; an output whose recorded id differs is written again.
  std::string ContentId(std::string_view fingerprint) const;
};

struct PipelineSpec {
  std::string name;
  std::string display_name;  // the file as named in messages ("pipeline.toml")
  std::string base_dir;      // absolute directory relative paths are resolved against
  /// The file's canonical absolute path (symlinks resolved); empty when parsed from a string.
  std::string path;
  /// The store named in the file: a URL, or an absolute local path; empty when not set.
  std::string store;
  int store_line = 0;
  /// The commit coordinator named in the file (a PostgreSQL URL, syntax checked; may hold a
  /// password: print it only through ledger::RedactCoordinatorUrl); empty when not set.
  std::string coordinator;
  int coordinator_line = 0;
  // Each in declaration order.
  std::vector<SourceSpec> sources;
  std::vector<StageSpec> stages;
  std::vector<OutputSpec> outputs;
  GcSpec gc;

  /// Case-insensitive lookups (DuckDB identifiers are case-insensitive); null when absent.
  const SourceSpec* FindSource(std::string_view name) const;
  const StageSpec* FindStage(std::string_view name) const;
  const OutputSpec* FindOutput(std::string_view name) const;

  /// "<display_name>:<line>".
  std::string Where(int line) const;
};

/// Reads and parses the file at `path`; messages name it as written, relative paths in it are
/// resolved against its directory. NotFound when the file cannot be read.
/// What the command line changes in a pipeline file (`--profile`, `--param`).
struct SpecOverrides {
  /// `[profiles.NAME]` to apply: its `store` replaces the file's, its `params` override params of
  /// that name in every source and stage. "" = none.
  std::string profile;
  /// "name=value", applied after the profile: overrides the param `name` wherever it is defined
  /// (the value is read as the type the file gives it). A name no source or stage defines is an
  /// error. Params are part of fingerprints: a changed value recomputes what uses it.
  std::vector<std::string> params;
};

Result<PipelineSpec> ParsePipelineFile(const std::string& path);
Result<PipelineSpec> ParsePipelineFile(const std::string& path, const SpecOverrides& overrides);

/// Parses `text`; `display_name` names it in messages, `base_dir` is where relative paths in it
/// are resolved from (made absolute against the current directory if relative).
Result<PipelineSpec> ParsePipelineString(std::string_view text, std::string_view display_name,
                                         std::string_view base_dir);
Result<PipelineSpec> ParsePipelineString(std::string_view text, std::string_view display_name,
                                         std::string_view base_dir, const SpecOverrides& overrides);

/// The store a run uses: `flag_override` (--store) if not empty, else $RESPAWN_STORE if set and
/// not empty, else the file's `store`, else "<base_dir>/.respawn".
std::string EffectiveStoreUrl(const PipelineSpec& spec, std::string_view flag_override = {});

/// The commit coordinator a run uses: $RESPAWN_COORDINATOR if set and not empty, else the file's
/// `coordinator`, else "" (none).
std::string EffectiveCoordinatorUrl(const PipelineSpec& spec);

/// [A-Za-z_][A-Za-z0-9_]*
bool IsSqlIdentifier(std::string_view name);

/// The candidate closest to `name`, ignoring case, if it is plausibly a typo: an optimal string
/// alignment (Damerau-Levenshtein) distance of at most 2 (and less than the name's length), or
/// one a prefix of the other (at least 3 characters). Ties go to the earliest candidate. Never
/// returns `name` itself (but does return "sql" for "SQL").
std::optional<std::string> DidYouMean(std::string_view name,
                                      const std::vector<std::string>& candidates);

/// " (did you mean \"x\"?)" or "".
std::string DidYouMeanSuffix(std::string_view name, const std::vector<std::string>& candidates);

/// The file line of byte `offset` of `sql`, whose text starts on line `sql_line`.
int LineInSql(std::string_view sql, int sql_line, size_t offset);

}  // namespace respawn
