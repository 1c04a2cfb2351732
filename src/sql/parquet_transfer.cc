#include "sql/parquet_transfer.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "sql/parquet_types.h"
#include "util/hash.h"
#include "util/log.h"

namespace respawn {
namespace {

constexpr std::string_view kCompressions[] = {"zstd",    "snappy", "gzip",        "lz4",
                                              "lz4_raw", "brotli", "uncompressed"};

Status ValidateCompression(const std::string& compression) {
  for (std::string_view c : kCompressions) {
    if (compression == c) return Status::OK();
  }
  std::string known;
  for (std::string_view c : kCompressions) known += (known.empty() ? "" : ", ") + std::string(c);
  return InvalidArgument("unknown Parquet compression \"" + compression +
                         "\" (use one of: " + known + ")");
}

// A unique file name in `dir`, e.g. "<dir>/.respawn-export-<pid>-<n>-<random>.parquet".
std::string StagingPath(const std::string& dir, std::string_view what) {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t seed = std::random_device{}();
  uint64_t n = counter.fetch_add(1);
  return dir + "/.respawn-" + std::string(what) + "-" + std::to_string(getpid()) + "-" +
         std::to_string(n) + "-" + HexU64(seed ^ (n * 0x9E3779B97F4A7C15ULL)) + ".parquet";
}

// Removes a file when it goes out of scope (best effort).
class FileRemover {
 public:
  explicit FileRemover(std::string path) : path_(std::move(path)) {}
  ~FileRemover() {
    if (path_.empty()) return;
    std::error_code ec;
    std::filesystem::remove(path_, ec);
    if (ec) RESPAWN_LOG(kWarn, "cannot remove temporary file " << path_ << ": " << ec.message());
  }
  FileRemover(const FileRemover&) = delete;
  FileRemover& operator=(const FileRemover&) = delete;
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

// `query` without trailing blanks and semicolons, so that it fits inside COPY (...).
std::string_view TrimQuery(std::string_view query) {
  while (!query.empty()) {
    char c = query.back();
    if (c == ';' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      query.remove_suffix(1);
    } else {
      break;
    }
  }
  return query;
}

std::string DigestText(uint64_t size, uint64_t xxh3) {
  return "size " + std::to_string(size) + " xxh3 " + HexU64(xxh3);
}

void RemoveQuietly(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove(path, ec);
}

// The Parquet key-value metadata entry holding a checkpoint's column types (EncodeColumns).
constexpr std::string_view kTypeRecordKey = "respawn.columns";

// The exact columns of `sql` (a SELECT). A column whose type the C API does not describe (it
// holds TIME_NS) is taken whole by its SQL spelling from DESCRIBE (type "OTHER"): the Parquet
// writer keeps its values exactly (TIME_NS as text) and a CAST restores it, unless it also holds
// a type whose values need converting, which is refused.
Result<std::vector<TypedColumn>> DescribeExactly(Connection& conn, const std::string& sql) {
  ASSIGN_OR_RETURN(std::vector<TypedColumn> columns, conn.Describe(sql));
  bool all_described = true;
  for (const TypedColumn& c : columns) all_described = all_described && c.type.IsDescribed();
  if (all_described) return columns;
  ASSIGN_OR_RETURN(QueryResult spelled,
                   conn.Query("SELECT column_type FROM (DESCRIBE " + sql + ")"));
  if (spelled.num_rows() != columns.size()) {
    return Internal("DESCRIBE gives " + std::to_string(spelled.num_rows()) + " columns, not " +
                    std::to_string(columns.size()));
  }
  for (size_t i = 0; i < columns.size(); ++i) {
    if (columns[i].type.IsDescribed()) continue;
    std::string text = spelled.at(i, 0).ToString();
    if (NeedsParquetConversion(columns[i].type)) {
      return Unimplemented("column \"" + columns[i].name + "\" has the type " + text +
                           ", which mixes TIME_NS with types Parquet cannot hold as they are: "
                           "cast its TIME_NS values to TIME or VARCHAR");
    }
    columns[i].type = SqlType();
    columns[i].type.id = "OTHER";
    columns[i].type.alias = text;
  }
  return columns;
}

// The exact columns of the SELECT `select`. The query starts on line 2, as in the COPY (\n...)
// the export runs, so an error points at the same line either way.
Result<std::vector<TypedColumn>> DescribeSelect(Connection& conn, std::string_view select) {
  return DescribeExactly(conn, "SELECT * FROM (\n" + std::string(select) + "\n)");
}

// `select` with each column replaced by `exprs[i]` (an expression of the column `t."c<i>"`, or
// nullopt to keep it) and named `columns[i].name`; nullopt when every expression is nullopt,
// unless `rename`. The query stays on its own lines, from line 2.
std::optional<std::string> RewriteColumns(std::string_view select,
                                          const std::vector<TypedColumn>& columns,
                                          const std::vector<std::optional<std::string>>& exprs,
                                          bool rename = false) {
  bool any = rename;
  for (const auto& e : exprs) any = any || e.has_value();
  if (!any) return std::nullopt;
  std::string aliases, list;
  for (size_t i = 0; i < columns.size(); ++i) {
    std::string c = QuoteIdentifier("c" + std::to_string(i));
    aliases += (i ? ", " : "") + c;
    list +=
        (i ? ", " : "") + exprs[i].value_or("t." + c) + " AS " + QuoteIdentifier(columns[i].name);
  }
  // FROM first: the select list after the query keeps the query's line numbers.
  return "FROM (\n" + std::string(select) + "\n) AS t(" + aliases + ") SELECT " + list;
}

std::string ColumnRef(size_t i) { return "t." + QuoteIdentifier("c" + std::to_string(i)); }

}  // namespace

namespace {

// The COPY that writes `select` type-exact to `path`. `what` names the export in messages.
Result<std::string> TypeExactCopy(Connection& conn, std::string_view select,
                                  const std::string& path, const ExportOptions& options,
                                  const std::string& what) {
  // The exact column types, recorded in the file, and the columns Parquet cannot hold as they
  // are rewritten in a lossless form (sql/parquet_types.h).
  Result<std::vector<TypedColumn>> columns = DescribeSelect(conn, select);
  if (!columns.ok()) return columns.status().WithContext(what);
  std::vector<std::optional<std::string>> store_exprs;
  for (size_t i = 0; i < columns->size(); ++i) {
    const TypedColumn& c = (*columns)[i];
    // Fails here, before anything is written, when an import could not restore the type.
    Result<std::optional<std::string>> restorable = CheckpointRestoreExpr(c.type, "x");
    if (!restorable.ok()) {
      return restorable.status().WithContext(what + ": column \"" + c.name + "\"");
    }
    store_exprs.push_back(CheckpointStoreExpr(c.type, ColumnRef(i)));
  }
  std::optional<std::string> rewritten = RewriteColumns(select, *columns, store_exprs);
  // The newline before ')' keeps a trailing "-- comment" in `query` from swallowing it.
  std::string copy = "COPY (" + rewritten.value_or("\n" + std::string(select) + "\n") + ") TO " +
                     QuoteLiteral(path) + " (FORMAT parquet, COMPRESSION " + options.compression;
  if (options.row_group_size != 0) {
    copy += ", ROW_GROUP_SIZE " + std::to_string(options.row_group_size);
  }
  copy += ", KV_METADATA {" + QuoteLiteral(kTypeRecordKey) + ": " +
          QuoteLiteral(EncodeColumns(*columns)) + "})";
  return copy;
}

// Runs `copy` and returns the rows it wrote.
Result<uint64_t> RunCopy(Connection& conn, const std::string& copy, const std::string& what) {
  Result<QueryResult> copied = conn.Query(copy);
  if (!copied.ok()) return copied.status().WithContext(what);
  uint64_t rows = copied->rows_changed();
  if (copied->num_rows() == 1 && copied->num_columns() >= 1) {
    Result<uint64_t> count = copied->at(0, 0).AsUInt64();
    if (count.ok()) rows = *count;
  }
  return rows;
}

// Writes `select` to a staging file in `dir` (removed on failure) and returns it described.
Result<ExportedFile> ExportToStaging(Connection& conn, std::string_view select,
                                     const std::string& dir, const ExportOptions& options,
                                     const std::string& what) {
  ExportedFile out;
  out.path = StagingPath(dir, "export");
  FileRemover remove_tmp(out.path);
  ASSIGN_OR_RETURN(std::string copy, TypeExactCopy(conn, select, out.path, options, what));
  // Profiling covers the COPY alone: the statements around it would overwrite its profile.
  const bool profiled = !options.profile_path.empty() &&
                        conn.Execute("SET enable_profiling = 'json'; SET profiling_output = " +
                                     QuoteLiteral(options.profile_path))
                            .ok();
  Result<uint64_t> rows = RunCopy(conn, copy, what);
  if (profiled) conn.Execute("PRAGMA disable_profiling; RESET profiling_output").IgnoreError();
  ASSIGN_OR_RETURN(out.rows, std::move(rows));
  Result<FileDigest> digest = DigestFile(out.path);
  if (!digest.ok()) {
    return digest.status().WithContext(what + ": reading DuckDB's Parquet output");
  }
  out.size = digest->size;
  out.xxh3 = digest->xxh3;
  remove_tmp.Release();
  return out;
}

// Moves the exported file into `cache_dir` under the name ImportFromStore's cache gives it;
// false (the file stays where it is) when that fails.
bool MoveIntoCache(ExportedFile& file, const std::string& cache_dir) {
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  std::string cached =
      cache_dir + "/" + HexU64(file.xxh3) + "-" + std::to_string(file.size) + ".parquet";
  // Same filesystem in the usual case (the cache lives in the temp directory).
  std::filesystem::rename(file.path, cached, ec);
  if (ec) return false;
  file.path = cached;
  return true;
}

}  // namespace

Result<ExportedFile> ExportQueryToFile(Connection& conn, std::string_view query,
                                       const std::string& dir, const ExportOptions& options) {
  RETURN_IF_ERROR(ValidateCompression(options.compression));
  const std::string what = "export to " + dir;
  std::string_view select = TrimQuery(query);
  if (select.empty()) return InvalidArgument(what + ": empty query");
  if (dir.empty() || dir[0] != '/') {
    return InvalidArgument(what + ": the directory must be an absolute path");
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return FailedPrecondition("cannot create the export directory " + dir + ": " + ec.message());
  ASSIGN_OR_RETURN(ExportedFile out, ExportToStaging(conn, select, dir, options, what));
  if (!MoveIntoCache(out, dir)) {
    RemoveQuietly(out.path);
    return FailedPrecondition(what + ": cannot name the exported file by its checksum in " + dir);
  }
  return out;
}

Result<ExportedObject> ExportQueryToStore(Connection& conn, std::string_view query, Store& store,
                                          std::string_view key, const ExportOptions& options) {
  RETURN_IF_ERROR(ValidateKey(key));
  RETURN_IF_ERROR(ValidateCompression(options.compression));
  const std::string what = "export to " + std::string(key);
  std::string_view select = TrimQuery(query);
  if (select.empty()) return InvalidArgument(what + ": empty query");
  ASSIGN_OR_RETURN(ExportedFile file,
                   ExportToStaging(conn, select, conn.database().temp_directory(), options, what));
  FileRemover remove_tmp(file.path);  // on success too: the store has its own copy
  Status put = store.PutFile(key, file.path, options.put);
  if (!put.ok()) return put.WithContext(what + " in " + store.Url());
  ExportedObject out;
  out.key = std::string(key);
  out.size = file.size;
  out.xxh3 = file.xxh3;
  out.rows = file.rows;
  // A failed move only costs a download later.
  if (!options.keep_in_cache_dir.empty() && MoveIntoCache(file, options.keep_in_cache_dir)) {
    remove_tmp.Release();
    out.local_path = file.path;
  }
  return out;
}

Result<ExportedObject> ExportTableToStore(Connection& conn, std::string_view table, Store& store,
                                          std::string_view key, const ExportOptions& options) {
  if (table.empty()) return InvalidArgument("export to " + std::string(key) + ": empty table name");
  return ExportQueryToStore(conn, "SELECT * FROM " + QuoteIdentifier(table), store, key, options);
}

Result<ParquetFileInfo> CheckParquetFile(Connection& conn, const std::string& path,
                                         ParquetCheck check) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    return NotFound("Parquet file " + path + " does not exist (or is not a regular file)");
  }
  auto as_data_loss = [&path](const Status& st) -> Status {
    // Interruptions and resource limits are not about the file.
    if (st.code() == StatusCode::kAborted || (st.code() == StatusCode::kFailedPrecondition &&
                                              st.message().starts_with("Out of Memory"))) {
      return st;
    }
    return DataLoss("Parquet file " + path + " is unreadable: " + st.message());
  };
  std::string source = "read_parquet(" + QuoteLiteral(path) + ")";
  ParquetFileInfo info;
  Result<QueryResult> shape = conn.Query("SELECT * FROM " + source + " LIMIT 0");
  if (!shape.ok()) return as_data_loss(shape.status());
  info.columns = shape->num_columns();

  // count(*) comes from the footer; hashing the whole row (the table alias as a struct) makes
  // DuckDB decode every value of every column.
  std::string sql = check == ParquetCheck::kFullScan
                        ? "SELECT count(*), bit_xor(hash(t)) FROM " + source + " AS t"
                        : "SELECT count(*) FROM " + source;
  Result<QueryResult> counted = conn.Query(sql);
  if (!counted.ok()) return as_data_loss(counted.status());
  Result<uint64_t> rows = counted->at(0, 0).AsUInt64();
  if (!rows.ok()) return Internal("Parquet file " + path + ": unexpected row count");
  info.rows = *rows;
  return info;
}

Result<ImportedObject> ImportFromStore(Connection& conn, Store& store,
                                       const ExportedObject& expected, std::string_view view_name,
                                       const ImportOptions& options) {
  RETURN_IF_ERROR(ValidateKey(expected.key));
  if (view_name.empty()) {
    return InvalidArgument("import of " + expected.key + ": empty view name");
  }
  std::string cache_dir = options.cache_dir.empty()
                              ? conn.database().temp_directory() + "/import-cache"
                              : options.cache_dir;
  if (cache_dir[0] != '/') {
    return InvalidArgument("import cache_dir \"" + cache_dir +
                           "\" is relative: give an absolute path");
  }
  std::error_code ec;
  std::filesystem::create_directories(cache_dir, ec);
  if (ec) {
    return FailedPrecondition("cannot create the import cache directory " + cache_dir + ": " +
                              ec.message());
  }
  std::string path =
      cache_dir + "/" + HexU64(expected.xxh3) + "-" + std::to_string(expected.size) + ".parquet";

  ImportedObject out;
  out.path = path;
  Result<FileDigest> cached = DigestFile(path);
  if (cached.ok()) {
    if (cached->size == expected.size && cached->xxh3 == expected.xxh3) {
      out.cache_hit = true;
    } else {
      RESPAWN_LOG(kWarn, "cached copy " << path << " of " << expected.key << " does not verify ("
                                        << DigestText(cached->size, cached->xxh3)
                                        << "): downloading it again");
      RemoveQuietly(path);
    }
  }

  if (!out.cache_hit) {
    Status got = store.GetToFile(expected.key, path, options.get);
    if (!got.ok()) {
      return got.WithContext("import of " + expected.key + " from " + store.Url());
    }
    Result<FileDigest> digest = DigestFile(path);
    if (!digest.ok()) {
      return digest.status().WithContext("import of " + expected.key + ": reading the download");
    }
    if (digest->size != expected.size || digest->xxh3 != expected.xxh3) {
      RemoveQuietly(path);
      return DataLoss("object " + expected.key + " in " + store.Url() +
                      " does not verify: expected " + DigestText(expected.size, expected.xxh3) +
                      ", got " + DigestText(digest->size, digest->xxh3) +
                      " (the stored object is corrupt or was replaced; re-create it from its "
                      "inputs)");
    }
  }

  Result<ParquetFileInfo> info = CheckParquetFile(conn, path, ParquetCheck::kFooter);
  if (!info.ok()) return info.status().WithContext("import of " + expected.key);
  if (info->rows != expected.rows) {
    return DataLoss("object " + expected.key + " in " + store.Url() + " holds " +
                    std::to_string(info->rows) + " rows, but its record says " +
                    std::to_string(expected.rows));
  }

  RETURN_IF_ERROR(CreateCheckpointView(conn, view_name, path)
                      .WithContext("import of " + expected.key + " from " + store.Url()));
  return out;
}

Status CreateCheckpointView(Connection& conn, std::string_view view_name, const std::string& path) {
  if (view_name.empty()) return InvalidArgument("checkpoint " + path + ": empty view name");
  std::string source = "read_parquet(" + QuoteLiteral(path) + ")";
  ASSIGN_OR_RETURN(QueryResult record,
                   conn.Query("SELECT value FROM parquet_kv_metadata(" + QuoteLiteral(path) +
                              ") WHERE key = CAST(" + QuoteLiteral(kTypeRecordKey) + " AS BLOB)"));
  if (record.num_rows() == 0) {
    return FailedPrecondition(
        "checkpoint file " + path +
        " has no record of its DuckDB column types (respawn wrote checkpoints without one "
        "before types were kept exactly, and Parquet alone changes some, e.g. HUGEINT to "
        "DOUBLE): recompute it");
  }
  Result<std::vector<TypedColumn>> columns = DecodeColumns(record.at(0, 0).string_value());
  if (!columns.ok()) return columns.status().WithContext("checkpoint file " + path);
  ASSIGN_OR_RETURN(std::vector<TypedColumn> stored,
                   DescribeExactly(conn, "SELECT * FROM " + source));
  if (stored.size() != columns->size()) {
    return DataLoss("checkpoint file " + path + " holds " + std::to_string(stored.size()) +
                    " columns, but its type record names " + std::to_string(columns->size()));
  }

  std::vector<std::optional<std::string>> exprs;
  bool renamed = false;
  for (size_t i = 0; i < stored.size(); ++i) {
    const TypedColumn& c = (*columns)[i];
    Result<std::optional<std::string>> restore = CheckpointRestoreExpr(c.type, ColumnRef(i));
    if (!restore.ok()) return restore.status().WithContext("checkpoint file " + path);
    renamed = renamed || stored[i].name != c.name;
    exprs.push_back(std::move(restore).value());
  }
  std::string all = "SELECT * FROM " + source;
  std::string sql = "CREATE OR REPLACE VIEW " + QuoteIdentifier(view_name) + " AS " +
                    RewriteColumns(all, *columns, exprs, renamed).value_or(all);
  RETURN_IF_ERROR(conn.Execute(sql).WithContext("checkpoint file " + path));

  // The view must give exactly the recorded names and types.
  ASSIGN_OR_RETURN(std::vector<TypedColumn> got,
                   DescribeExactly(conn, "SELECT * FROM " + QuoteIdentifier(view_name)));
  for (size_t i = 0; i < columns->size(); ++i) {
    const TypedColumn& want = (*columns)[i];
    if (i >= got.size() || !(got[i] == want)) {
      std::string have =
          i < got.size() ? "\"" + got[i].name + "\" " + got[i].type.ToSql() : "nothing";
      return Internal("checkpoint file " + path + ": column " + std::to_string(i + 1) +
                      " reads back as " + have + ", not as the recorded \"" + want.name + "\" " +
                      want.type.ToSql() + " (a bug in respawn; please report it)");
    }
  }
  return Status::OK();
}

Result<std::string> ParquetOutputQuery(Connection& conn, std::string_view query) {
  std::string_view select = TrimQuery(query);
  ASSIGN_OR_RETURN(std::vector<TypedColumn> columns, DescribeSelect(conn, select));
  std::vector<std::optional<std::string>> exprs;
  for (size_t i = 0; i < columns.size(); ++i) {
    exprs.push_back(ParquetOutputExpr(columns[i].type, ColumnRef(i), columns[i].name));
  }
  return RewriteColumns(select, columns, exprs).value_or(std::string(select));
}

}  // namespace respawn
