// Moving tables between DuckDB and a Store as Parquet objects.
//
// Export: COPY the rows to a temporary file in the database's temp_directory, hash it, upload
// it with Store::PutFile, remove it. The temporary file is never published under the key when
// the COPY fails or is interrupted (DuckDB leaves a partial file without a footer behind): the
// object appears in the store only complete.
//
// Import: download into a local cache named by the object's checksum, verify size and xxh3
// against what the export reported (DataLoss otherwise), then define a view over the file.
//
// Checkpoints are type-exact: the export records every column's exact DuckDB type in the file
// and writes the types Parquet cannot hold in a lossless form; the view casts them back, so it
// has the names, types and values of the exported query (sql/parquet_types.h).
//
// Thread-safety: functions use the given Connection (one thread at a time, see engine.h); the
// Store is safe for concurrent use. Exports and imports of different objects may run on
// different connections at once; two imports of the same object share one cache file safely.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sql/engine.h"
#include "storage/store.h"
#include "util/status.h"

namespace respawn {

struct ExportOptions {
  /// Parquet compression codec: "zstd", "snappy", "gzip", "lz4", "brotli" or "uncompressed".
  std::string compression = "zstd";
  /// Rows per row group; 0: DuckDB's default (122,880).
  uint64_t row_group_size = 0;
  /// Passed to Store::PutFile (if_absent, progress).
  PutOptions put;
  /// Absolute directory: keep the exported file there as ImportFromStore's cache would name it
  /// ("<xxh3>-<size>.parquet"), so a later import of the object is a cache hit with no download.
  /// Empty: the local file is removed once uploaded.
  std::string keep_in_cache_dir;
  /// Absolute path: DuckDB's JSON profile of the export's query (its operators with their time
  /// and rows, as EXPLAIN ANALYZE shows them) is written there. Empty: not profiled.
  std::string profile_path;
};

/// What an export wrote: everything a commit record needs to verify the object later.
struct ExportedObject {
  std::string key;
  uint64_t size = 0;  // bytes of the Parquet object
  uint64_t xxh3 = 0;  // XXH3-64 of those bytes
  uint64_t rows = 0;  // rows in it
  /// The kept local copy (ExportOptions::keep_in_cache_dir), else empty.
  std::string local_path;

  friend bool operator==(const ExportedObject&, const ExportedObject&) = default;
};

/// A Parquet file written by ExportQueryToFile.
struct ExportedFile {
  std::string path;   // absolute: "<dir>/<xxh3>-<size>.parquet"
  uint64_t size = 0;  // bytes
  uint64_t xxh3 = 0;  // XXH3-64 of those bytes
  uint64_t rows = 0;
  friend bool operator==(const ExportedFile&, const ExportedFile&) = default;
};

/// Writes the result of the SELECT `query` type-exact (as ExportQueryToStore) to a local
/// Parquet file in the absolute directory `dir` (created), named as ImportFromStore's cache
/// names objects ("<xxh3>-<size>.parquet"), so `dir` may be the import cache: a later import of
/// the same bytes is a cache hit. The file appears under that name only complete. Errors: the
/// query's (engine.h), InvalidArgument for bad options, FailedPrecondition when `dir` is not
/// writable, Unimplemented as ExportQueryToStore. `options.put` and `keep_in_cache_dir` are
/// not used.
Result<ExportedFile> ExportQueryToFile(Connection& conn, std::string_view query,
                                       const std::string& dir, const ExportOptions& options = {});

/// Writes the result of the SELECT `query` to `store` as the Parquet object `key`, type-exact:
/// the file records the exact DuckDB type of every column (Parquet key-value metadata
/// "respawn.columns"), and columns of types Parquet cannot hold are written in a lossless form
/// (sql/parquet_types.h); ImportFromStore and CreateCheckpointView restore both. Columns of other
/// types are written as they are, at no extra cost.
/// Errors: the query's (engine.h), InvalidArgument for bad options, the store's from PutFile
/// (with the key as context), FailedPrecondition when the temp directory is not writable,
/// Unimplemented for a type that could not be restored (an unnamed STRUCT holding a converted
/// type).
Result<ExportedObject> ExportQueryToStore(Connection& conn, std::string_view query, Store& store,
                                          std::string_view key, const ExportOptions& options = {});

/// Writes all rows of the table or view `table` (one identifier, unquoted: it is quoted here)
/// to `store` as the Parquet object `key`.
Result<ExportedObject> ExportTableToStore(Connection& conn, std::string_view table, Store& store,
                                          std::string_view key, const ExportOptions& options = {});

struct ImportOptions {
  /// Absolute directory of downloaded objects, named "<xxh3>-<size>.parquet". Empty:
  /// "<database temp_directory>/import-cache". Files in it must stay while views use them.
  std::string cache_dir;
  /// Passed to Store::GetToFile (progress).
  GetOptions get;
};

struct ImportedObject {
  std::string path;        // the local Parquet file the view reads
  bool cache_hit = false;  // true when a cached file verified and nothing was downloaded
};

/// Makes the object `expected.key` of `store` readable as the view `view_name` (one identifier,
/// unquoted), replacing any view of that name: CreateCheckpointView over the cached file, so the
/// view has the exact names and types of the exported query.
///
/// A cached file whose size and xxh3 match is reused; one that does not is deleted and
/// downloaded again. DataLoss naming the key, the store and the expected and actual size and
/// xxh3 when the downloaded bytes do not verify (the bad file is deleted), or when the file
/// does not hold `expected.rows` rows. NotFound when the store has no such key. The errors of
/// CreateCheckpointView.
Result<ImportedObject> ImportFromStore(Connection& conn, Store& store,
                                       const ExportedObject& expected, std::string_view view_name,
                                       const ImportOptions& options = {});

/// Defines the view `view_name` (one identifier, unquoted; replaced if it exists) over the local
/// Parquet file `path` written by ExportQueryToStore: the recorded column names and exact types,
/// converted columns read back from their lossless form. FailedPrecondition when the file has
/// no type record (respawn wrote none before types were kept exactly): recompute it. Internal
/// when the view does not come out with the recorded types.
Status CreateCheckpointView(Connection& conn, std::string_view view_name, const std::string& path);

/// The query to COPY into a Parquet file for other readers instead of the SELECT `query`: the
/// same rows and names, each column as sql/parquet_types.h writes outputs (HUGEINT as
/// DECIMAL(38,0), TIME WITH TIME ZONE in UTC, ...), failing with InvalidArgument naming the
/// column on a value the file cannot hold. `query` itself when every column is written exactly.
/// Errors as Connection::Describe's.
Result<std::string> ParquetOutputQuery(Connection& conn, std::string_view query);

enum class ParquetCheck {
  kFooter,    // read the footer (metadata): catches truncation and files that are not Parquet
  kFullScan,  // also decode every value of every column
};

struct ParquetFileInfo {
  uint64_t rows = 0;
  uint64_t columns = 0;
};

/// Checks that DuckDB can read the local Parquet file at `path`. NotFound when it does not
/// exist; DataLoss naming the path and carrying DuckDB's message when it is unreadable (e.g.
/// truncated: no footer).
Result<ParquetFileInfo> CheckParquetFile(Connection& conn, const std::string& path,
                                         ParquetCheck check = ParquetCheck::kFooter);

}  // namespace respawn
