// Fingerprints: what a stage's output depends on, hashed, so a committed checkpoint with the same
// fingerprint can be reused and a change invalidates exactly the stage and what is downstream.
//
// A stage's fingerprint covers its normalized SQL (whitespace and comments do not count, a
// changed literal does), its params, the fingerprints of its inputs by name, the files its SQL
// reads by name (read_parquet('plans.parquet'), FROM 'data.csv'), the engine version and
// kFingerprintFormatVersion. A file source's covers the files it reads (relative name, size, and
// either their content hash or, for large inputs, their mtime/ETag) plus the format and reader
// options. A generated (sql) source's covers its SQL, params and the files its SQL reads.
//
// FingerprintComponents keeps the parts so a changed fingerprint can be explained
// ("changed SQL", "changed input orders", "engine version changed").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/dag.h"
#include "pipeline/spec.h"
#include "util/status.h"

namespace respawn {

class Store;

/// Bump when what goes into a fingerprint changes: every stored checkpoint becomes stale.
/// 2: checkpoints record their exact DuckDB column types (sql/parquet_transfer.h); those of
/// version 1 could have changed types (HUGEINT read back as DOUBLE) and are recomputed.
inline constexpr uint32_t kFingerprintFormatVersion = 2;

/// Files up to this many bytes in total are hashed by content; larger inputs by size and mtime.
inline constexpr uint64_t kContentHashLimitBytes = 64ull << 20;

/// A 64-bit XXH3 value.
struct Fingerprint {
  uint64_t value = 0;

  /// 16 lowercase hex digits.
  std::string Hex() const;
  /// The first 8 hex digits, for display.
  std::string Short() const;
  /// Parses 16 hex digits (either case).
  static Result<Fingerprint> FromHex(std::string_view hex);

  friend bool operator==(const Fingerprint&, const Fingerprint&) = default;
};

struct NamedFingerprint {
  std::string name;
  Fingerprint fingerprint;
  friend bool operator==(const NamedFingerprint&, const NamedFingerprint&) = default;
};

enum class FingerprintKind { kStage, kSqlSource, kFileSource };

/// What a fingerprint was computed from. `total` is the fingerprint; the rest explains it.
struct FingerprintComponents {
  FingerprintKind kind = FingerprintKind::kStage;
  uint32_t format_version = kFingerprintFormatVersion;
  std::string engine_version;
  Fingerprint sql;                       // stage, sql source: the normalized SQL
  /// Stage, sql source: the normalized SQL as written, before ${param} substitution (0 when
  /// unknown). Not part of `total`: it only tells a param change from an SQL edit.
  Fingerprint sql_template;
  std::vector<NamedFingerprint> params;  // stage, sql source: one per param, sorted by name
  std::vector<NamedFingerprint> inputs;  // stage: input fingerprints, sorted by name
  /// Stage, sql source: the files its SQL reads by name (FileListFingerprint of each path or
  /// glob, named as written), sorted by name. Counts in `total` only when not empty, so stages
  /// that read no files keep the fingerprints they had before files were tracked.
  std::vector<NamedFingerprint> files_read;
  Fingerprint files;            // file source: names, sizes, contents or mtimes
  uint64_t file_count = 0;      // file source
  uint64_t total_bytes = 0;     // file source
  bool content_hashed = false;  // file source: contents (not mtimes) were hashed
  Fingerprint reader;           // file source: format and reader options
  Fingerprint total;

  /// A small line-based text form for commit records ("key value" lines, no secrets).
  std::string Serialize() const;
  /// Parses Serialize()'s output; DataLoss if it is malformed or `total` does not recompute.
  static Result<FingerprintComponents> Parse(std::string_view text);
};

/// Why `now` differs from `before`, one reason each, e.g. "changed SQL", "changed param
/// min_amount", "changed input orders", "new input customers", "changed file plans.parquet",
/// "engine version changed (v1.4.3 -> v1.4.4)". Empty when the totals are equal.
std::vector<std::string> ExplainChange(const FingerprintComponents& before,
                                       const FingerprintComponents& now);

/// The reasons joined with ", " ("unchanged" when there are none).
std::string ExplainChangeText(const FingerprintComponents& before,
                              const FingerprintComponents& now);

/// `sql` is normalized here (callers pass the SQL as run, params substituted). `params` and
/// `inputs` may come in any order. `raw_sql`, the SQL as written (with ${param}), only feeds
/// sql_template, for explanations.
FingerprintComponents StageFingerprint(std::string_view sql, const std::vector<NamedValue>& params,
                                       std::vector<NamedFingerprint> inputs,
                                       std::string_view engine_version,
                                       std::string_view raw_sql = {});

FingerprintComponents SqlSourceFingerprint(std::string_view sql,
                                           const std::vector<NamedValue>& params,
                                           std::string_view engine_version,
                                           std::string_view raw_sql = {});

/// One file a source reads.
struct SourceFile {
  std::string path;  // relative to the source's base (the glob's fixed prefix)
  uint64_t size = 0;
  int64_t mtime_ms = 0;
  std::string etag;  // store objects; empty for local files
  bool has_content_hash = false;
  uint64_t content_hash = 0;  // XXH3 of the bytes, when has_content_hash
  // Local files: the identity a later check compares to prove the file was not changed or
  // replaced meanwhile (not part of the fingerprint; ctime changes on every write and cannot be
  // set back). 0 for store objects.
  uint64_t device = 0;
  uint64_t inode = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
};

/// A listing: `base` + SourceFile::path is each file's absolute local path (or store key).
struct SourceListing {
  std::string base;
  std::vector<SourceFile> files;  // sorted by path
};

/// A file source's fingerprint. Content hashes are used when every file has one (mtime and
/// ETag then do not count, so a touch or a copy keeps the fingerprint); otherwise size, mtime
/// and ETag are.
FingerprintComponents FileSourceFingerprint(const std::vector<SourceFile>& files, DataFormat format,
                                            const std::vector<NamedValue>& options,
                                            std::string_view engine_version);

/// The fingerprint of a file list alone (names, sizes, and contents or mtimes/ETags, as
/// FileSourceFingerprint's `files`): what a stage reading those files by name depends on.
Fingerprint FileListFingerprint(const std::vector<SourceFile>& files);

/// Lists the local files `pattern` (an absolute path, may be a glob) names, sorted, with paths
/// relative to the pattern's fixed directory prefix. Contents are hashed when their total size
/// is at most `content_hash_limit`. NotFound when nothing matches, InvalidArgument for a
/// directory.
Result<std::vector<SourceFile>> ListLocalSourceFiles(
    const std::string& pattern, uint64_t content_hash_limit = kContentHashLimitBytes);
/// ListLocalSourceFiles with the directory the paths are relative to.
Result<SourceListing> ListLocalSource(const std::string& pattern,
                                      uint64_t content_hash_limit = kContentHashLimitBytes);

/// Lists the objects of `store` that `key_pattern` (may be a glob) names, sorted, with paths
/// relative to its fixed prefix. Objects without an ETag are hashed by content when their total
/// size is at most `content_hash_limit`. NotFound when nothing matches.
Result<std::vector<SourceFile>> ListStoreSourceFiles(
    Store& store, std::string_view key_pattern,
    uint64_t content_hash_limit = kContentHashLimitBytes);
/// ListStoreSourceFiles with the key prefix the paths are relative to.
Result<SourceListing> ListStoreSource(Store& store, std::string_view key_pattern,
                                      uint64_t content_hash_limit = kContentHashLimitBytes);

/// Computes the fingerprint of every node of `dag` (indexed like dag.nodes()): sql sources and
/// stages here, file sources through `file_source` (which lists and hashes the files, e.g. with
/// ListLocalSourceFiles + FileSourceFingerprint), and the files a node's SQL reads by name
/// (DagNode::files) through `file_read` (e.g. ListLocalSourceFiles + FileListFingerprint; it may
/// be empty when no node reads files by name).
Result<std::vector<FingerprintComponents>> FingerprintPipeline(
    const PipelineSpec& spec, const Dag& dag, std::string_view engine_version,
    const std::function<Result<FingerprintComponents>(const SourceSpec&)>& file_source,
    const std::function<Result<Fingerprint>(const DagFileRead&)>& file_read = nullptr);

// ---- SQL text ----

enum class SqlTokenKind {
  kWord,              // keyword or unquoted identifier
  kQuotedIdentifier,  // "..."
  kString,            // '...', E'...', $$...$$, $tag$...$tag$
  kNumber,
  kParameter,    // $1, $name
  kOperator,     // a run of + - * / < > = ~ ! @ # % ^ & | ` ? :
  kPunctuation,  // ( ) [ ] { } , ; .
};

struct SqlToken {
  SqlTokenKind kind;
  std::string_view text;  // points into the tokenized SQL
  size_t offset = 0;
};

/// Splits SQL into tokens, dropping whitespace and comments (-- to end of line, nested /* */).
/// Quotes are respected. Never fails: an unterminated string or comment runs to the end.
std::vector<SqlToken> TokenizeSql(std::string_view sql);

/// The tokens joined by single spaces, trailing ';' dropped: formatting and comments do not
/// change it; anything inside a literal or quoted identifier does, and so does case (DuckDB
/// keeps the case of column names).
std::string NormalizeSql(std::string_view sql);

}  // namespace respawn
