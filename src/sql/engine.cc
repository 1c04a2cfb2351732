#include "sql/engine.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include "sql/engine_internal.h"
#include "util/log.h"

namespace respawn {

namespace sql_internal {
namespace {

struct ErrorPrefix {
  std::string_view name;  // as DuckDB prints it before " Error: "
  duckdb_error_type type;
};

constexpr ErrorPrefix kErrorPrefixes[] = {
    {"Out of Range", DUCKDB_ERROR_OUT_OF_RANGE},
    {"Conversion", DUCKDB_ERROR_CONVERSION},
    {"Unknown Type", DUCKDB_ERROR_UNKNOWN_TYPE},
    {"Decimal", DUCKDB_ERROR_DECIMAL},
    {"Mismatch Type", DUCKDB_ERROR_MISMATCH_TYPE},
    {"Divide by Zero", DUCKDB_ERROR_DIVIDE_BY_ZERO},
    {"Object Size", DUCKDB_ERROR_OBJECT_SIZE},
    {"Invalid type", DUCKDB_ERROR_INVALID_TYPE},
    {"Serialization", DUCKDB_ERROR_SERIALIZATION},
    {"TransactionContext", DUCKDB_ERROR_TRANSACTION},
    {"Not implemented", DUCKDB_ERROR_NOT_IMPLEMENTED},
    {"Expression", DUCKDB_ERROR_EXPRESSION},
    {"Catalog", DUCKDB_ERROR_CATALOG},
    {"Parser", DUCKDB_ERROR_PARSER},
    {"Binder", DUCKDB_ERROR_BINDER},
    {"Planner", DUCKDB_ERROR_PLANNER},
    {"Scheduler", DUCKDB_ERROR_SCHEDULER},
    {"Executor", DUCKDB_ERROR_EXECUTOR},
    {"Constraint", DUCKDB_ERROR_CONSTRAINT},
    {"Index", DUCKDB_ERROR_INDEX},
    {"Stat", DUCKDB_ERROR_STAT},
    {"Connection", DUCKDB_ERROR_CONNECTION},
    {"Syntax", DUCKDB_ERROR_SYNTAX},
    {"Settings", DUCKDB_ERROR_SETTINGS},
    {"Optimizer", DUCKDB_ERROR_OPTIMIZER},
    {"NullPointer", DUCKDB_ERROR_NULL_POINTER},
    {"IO", DUCKDB_ERROR_IO},
    {"INTERRUPT", DUCKDB_ERROR_INTERRUPT},
    {"FATAL", DUCKDB_ERROR_FATAL},
    {"INTERNAL", DUCKDB_ERROR_INTERNAL},
    {"Invalid Input", DUCKDB_ERROR_INVALID_INPUT},
    {"Out of Memory", DUCKDB_ERROR_OUT_OF_MEMORY},
    {"Permission", DUCKDB_ERROR_PERMISSION},
    {"Parameter Not Resolved", DUCKDB_ERROR_PARAMETER_NOT_RESOLVED},
    {"Parameter Not Allowed", DUCKDB_ERROR_PARAMETER_NOT_ALLOWED},
    {"Dependency", DUCKDB_ERROR_DEPENDENCY},
    {"Missing Extension", DUCKDB_ERROR_MISSING_EXTENSION},
    {"HTTP", DUCKDB_ERROR_HTTP},
    {"Extension Autoloading", DUCKDB_ERROR_AUTOLOAD},
    {"Sequence", DUCKDB_ERROR_SEQUENCE},
    {"Invalid Configuration", DUCKDB_ERROR_SETTINGS},
    {"Network", DUCKDB_ERROR_NETWORK},
    {"Invalid", DUCKDB_ERROR_INVALID},
};

}  // namespace

duckdb_error_type ErrorTypeOfMessage(std::string_view message) {
  for (const ErrorPrefix& p : kErrorPrefixes) {
    if (message.size() > p.name.size() && message.substr(0, p.name.size()) == p.name &&
        message.substr(p.name.size()).starts_with(" Error: ")) {
      return p.type;
    }
  }
  return DUCKDB_ERROR_INVALID;
}

Status SqlErrorToStatus(duckdb_error_type type, std::string_view message) {
  std::string msg(message);
  if (msg.empty()) msg = "DuckDB reported an error without a message";
  switch (type) {
    case DUCKDB_ERROR_PARSER:
    case DUCKDB_ERROR_SYNTAX:
    case DUCKDB_ERROR_CATALOG:
    case DUCKDB_ERROR_BINDER:
    case DUCKDB_ERROR_PARAMETER_NOT_RESOLVED:
    case DUCKDB_ERROR_PARAMETER_NOT_ALLOWED:
    case DUCKDB_ERROR_MISMATCH_TYPE:
    case DUCKDB_ERROR_CONVERSION:
    case DUCKDB_ERROR_OUT_OF_RANGE:
    case DUCKDB_ERROR_DIVIDE_BY_ZERO:
    case DUCKDB_ERROR_DECIMAL:
    case DUCKDB_ERROR_INVALID_TYPE:
    case DUCKDB_ERROR_UNKNOWN_TYPE:
    case DUCKDB_ERROR_INVALID_INPUT:
    case DUCKDB_ERROR_CONSTRAINT:
    case DUCKDB_ERROR_DEPENDENCY:
    case DUCKDB_ERROR_SETTINGS:
    case DUCKDB_ERROR_SEQUENCE:
      return InvalidArgument(std::move(msg));
    case DUCKDB_ERROR_INTERRUPT:
      return Aborted(msg + " (the statement was interrupted by Connection::Interrupt)");
    case DUCKDB_ERROR_TRANSACTION:
      return Aborted(msg + " (a concurrent transaction conflicted: retry the transaction)");
    case DUCKDB_ERROR_IO:
      return FailedPrecondition(std::move(msg));
    case DUCKDB_ERROR_OUT_OF_MEMORY:
      return FailedPrecondition(
          msg +
          " (raise DatabaseOptions::memory_limit_bytes, lower threads, or make "
          "temp_directory larger so DuckDB can spill)");
    case DUCKDB_ERROR_PERMISSION:
      return PermissionDenied(std::move(msg));
    case DUCKDB_ERROR_NOT_IMPLEMENTED:
      return Unimplemented(std::move(msg));
    case DUCKDB_ERROR_MISSING_EXTENSION:
    case DUCKDB_ERROR_AUTOLOAD:
    case DUCKDB_ERROR_HTTP:
    case DUCKDB_ERROR_NETWORK:
      return Unimplemented(msg +
                           " (respawn runs DuckDB offline: only the built-in extensions parquet, "
                           "json and icu are available; read remote data through a Store)");
    default:
      return Internal(std::move(msg));
  }
}

}  // namespace sql_internal

namespace {

using sql_internal::SqlErrorToStatus;

// Destroys a duckdb_result, which must happen on success and on failure.
class ResultGuard {
 public:
  ResultGuard() { std::memset(&result_, 0, sizeof(result_)); }
  ~ResultGuard() { duckdb_destroy_result(&result_); }
  ResultGuard(const ResultGuard&) = delete;
  ResultGuard& operator=(const ResultGuard&) = delete;
  duckdb_result* get() { return &result_; }

 private:
  duckdb_result result_;
};

class PreparedGuard {
 public:
  PreparedGuard() = default;
  ~PreparedGuard() {
    if (stmt_ != nullptr) duckdb_destroy_prepare(&stmt_);
  }
  PreparedGuard(const PreparedGuard&) = delete;
  PreparedGuard& operator=(const PreparedGuard&) = delete;
  duckdb_prepared_statement* out() { return &stmt_; }
  duckdb_prepared_statement get() const { return stmt_; }

 private:
  duckdb_prepared_statement stmt_ = nullptr;
};

class ExtractedGuard {
 public:
  ExtractedGuard() = default;
  ~ExtractedGuard() { duckdb_destroy_extracted(&extracted_); }
  ExtractedGuard(const ExtractedGuard&) = delete;
  ExtractedGuard& operator=(const ExtractedGuard&) = delete;
  duckdb_extracted_statements* out() { return &extracted_; }
  duckdb_extracted_statements get() const { return extracted_; }

 private:
  duckdb_extracted_statements extracted_ = nullptr;
};

Status ResultError(duckdb_result* result) {
  const char* msg = duckdb_result_error(result);
  return SqlErrorToStatus(duckdb_result_error_type(result), msg != nullptr ? msg : "");
}

Status MessageError(const char* message) {
  std::string_view msg = message != nullptr ? message : "";
  return SqlErrorToStatus(sql_internal::ErrorTypeOfMessage(msg), msg);
}

Status BindParam(duckdb_prepared_statement stmt, idx_t index, const Value& v) {
  duckdb_state st = DuckDBError;
  switch (v.kind()) {
    case Value::Kind::kNull:
      st = duckdb_bind_null(stmt, index);
      break;
    case Value::Kind::kBool:
      st = duckdb_bind_boolean(stmt, index, *v.AsBool());
      break;
    case Value::Kind::kInt64:
      st = duckdb_bind_int64(stmt, index, *v.AsInt64());
      break;
    case Value::Kind::kUInt64:
      st = duckdb_bind_uint64(stmt, index, *v.AsUInt64());
      break;
    case Value::Kind::kDouble:
      st = duckdb_bind_double(stmt, index, *v.AsDouble());
      break;
    case Value::Kind::kString:
      st =
          duckdb_bind_varchar_length(stmt, index, v.string_value().data(), v.string_value().size());
      break;
  }
  if (st != DuckDBSuccess) {
    return InvalidArgument("cannot bind parameter " + std::to_string(index) + " (" + v.ToString() +
                           "): the statement has " + std::to_string(duckdb_nparams(stmt)) +
                           " parameter(s)");
  }
  return Status::OK();
}

// Memory this process may use: physical RAM, or the cgroup (v2, then v1) limit when lower.
uint64_t AvailableMemoryBytes() {
  uint64_t total = 0;
  long pages = sysconf(_SC_PHYS_PAGES);
  long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    total = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
  }
  for (const char* path :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream in(path);
    std::string text;
    if (!(in >> text) || text.empty() || text == "max") continue;
    char* end = nullptr;
    errno = 0;
    unsigned long long limit = std::strtoull(text.c_str(), &end, 10);
    if (errno != 0 || end == text.c_str() || *end != '\0' || limit == 0) continue;
    if (total == 0 || limit < total) total = limit;
  }
  return total;
}

constexpr uint64_t kMiB = 1024 * 1024;

constexpr const char* kOwnerLock = "/.owner-lock";

// Removes temp directories of databases whose process died without cleaning up (SIGKILL, OOM):
// each live owner holds an flock on <dir>/.owner-lock, which the kernel drops when it dies, in
// any pid namespace sharing the filesystem. Directories without the lock file are left alone.
void SweepAbandonedTempDirectories(const std::string& dir) {
  std::error_code ec;
  // Incremented with an error_code: the range-for's operator++ throws.
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::filesystem::directory_entry& entry = *it;
    const std::string name = entry.path().filename().string();
    if (name.rfind("respawn-duckdb-", 0) != 0) continue;
    const std::string lock = entry.path().string() + kOwnerLock;
    int fd = ::open(lock.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
      std::error_code rm;
      std::filesystem::remove_all(entry.path(), rm);
      if (!rm) RESPAWN_LOG(kInfo, "removed " << entry.path().string() << " of a dead process");
    }
    ::close(fd);
  }
}

Result<std::string> MakeTempDirectory(int* lock_fd) {
  const char* base = std::getenv("TMPDIR");
  std::string dir = (base != nullptr && base[0] == '/') ? base : "/tmp";
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  SweepAbandonedTempDirectories(dir);
  std::string templ = dir + "/respawn-duckdb-" + std::to_string(getpid()) + "-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    int err = errno;
    return FailedPrecondition("cannot create DuckDB's temp directory under " + dir + ": " +
                              std::strerror(err) +
                              " (set TMPDIR or DatabaseOptions::temp_directory to a writable "
                              "absolute directory)");
  }
  std::string lock = templ + kOwnerLock;
  *lock_fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (*lock_fd >= 0 && ::flock(*lock_fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(*lock_fd);
    *lock_fd = -1;
  }
  return templ;
}

class ConfigGuard {
 public:
  ConfigGuard() = default;
  ~ConfigGuard() {
    if (config_ != nullptr) duckdb_destroy_config(&config_);
  }
  ConfigGuard(const ConfigGuard&) = delete;
  ConfigGuard& operator=(const ConfigGuard&) = delete;
  duckdb_config* out() { return &config_; }
  duckdb_config get() const { return config_; }

 private:
  duckdb_config config_ = nullptr;
};

}  // namespace

std::string EngineVersion() { return duckdb_library_version(); }

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

std::string QuoteLiteral(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

Result<std::unique_ptr<Database>> Database::Open(const DatabaseOptions& options) {
  std::unique_ptr<Database> db(new Database());  // private constructor

  if (options.temp_directory.empty()) {
    ASSIGN_OR_RETURN(db->temp_directory_, MakeTempDirectory(&db->lock_fd_));
    db->owns_temp_directory_ = true;
  } else {
    if (options.temp_directory[0] != '/') {
      return InvalidArgument("DuckDB temp_directory \"" + options.temp_directory +
                             "\" is relative: give an absolute path");
    }
    std::error_code ec;
    std::filesystem::create_directories(options.temp_directory, ec);
    if (ec) {
      return FailedPrecondition("cannot create DuckDB temp_directory " + options.temp_directory +
                                ": " + ec.message());
    }
    db->temp_directory_ = options.temp_directory;
    while (db->temp_directory_.size() > 1 && db->temp_directory_.back() == '/') {
      db->temp_directory_.pop_back();
    }
  }
  // From here on the destructor removes an owned temp directory if Open fails.

  if (options.memory_limit_bytes != 0) {
    db->memory_limit_bytes_ = options.memory_limit_bytes;
  } else {
    uint64_t available = AvailableMemoryBytes();
    db->memory_limit_bytes_ = available != 0 ? available / 10 * 4 : 1024 * kMiB;
  }
  if (options.threads < 0) {
    return InvalidArgument("DatabaseOptions::threads is " + std::to_string(options.threads) +
                           ": give 0 (one per core) or a positive count");
  }

  ConfigGuard config;
  if (duckdb_create_config(config.out()) != DuckDBSuccess) {
    return Internal("duckdb_create_config failed");
  }
  std::vector<std::pair<std::string, std::string>> settings = {
      {"autoinstall_known_extensions", "false"},
      {"autoload_known_extensions", "false"},
      {"temp_directory", db->temp_directory_},
      {"memory_limit",
       std::to_string(std::max<uint64_t>(1, db->memory_limit_bytes_ / kMiB)) + "MiB"},
  };
  if (options.threads > 0) settings.emplace_back("threads", std::to_string(options.threads));
  settings.insert(settings.end(), options.settings.begin(), options.settings.end());
  for (const auto& [name, value] : settings) {
    if (duckdb_set_config(config.get(), name.c_str(), value.c_str()) != DuckDBSuccess) {
      return InvalidArgument("DuckDB rejected setting " + name + "=" + value +
                             " (unknown name or invalid value)");
    }
  }

  std::string path = options.path;
  char* error = nullptr;
  duckdb_state st =
      duckdb_open_ext(path.empty() ? nullptr : path.c_str(), &db->db_, config.get(), &error);
  if (st != DuckDBSuccess) {
    Status status = MessageError(error);
    if (error != nullptr) duckdb_free(error);
    db->db_ = nullptr;
    return status.WithContext("cannot open DuckDB database " +
                              (path.empty() ? std::string(":memory:") : path));
  }
  return db;
}

Database::~Database() {
  int open = open_connections_.load();
  if (open != 0) {
    RESPAWN_LOG(kError,
                "Database destroyed with " << open << " open Connection(s): a bug in the caller");
  }
  if (db_ != nullptr) duckdb_close(&db_);
  if (owns_temp_directory_) {
    std::error_code ec;
    std::filesystem::remove_all(temp_directory_, ec);
    if (lock_fd_ >= 0) ::close(lock_fd_);
    if (ec) {
      RESPAWN_LOG(
          kWarn, "cannot remove DuckDB temp directory " << temp_directory_ << ": " << ec.message());
    }
  }
}

Result<std::unique_ptr<Connection>> Database::Connect() {
  duckdb_connection raw = nullptr;
  if (duckdb_connect(db_, &raw) != DuckDBSuccess) {
    return Internal("duckdb_connect failed (is the database closed?)");
  }
  std::unique_ptr<Connection> conn(new Connection(this, raw));  // private constructor
  open_connections_.fetch_add(1);
  // Progress settings are per connection: DuckDB ignores them in the database config. The order
  // matters: enabling the progress bar turns printing on, which the second SET turns off.
  Status st =
      conn->Execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false;");
  if (!st.ok()) return st.WithContext("cannot configure a new DuckDB connection");
  return conn;
}

Connection::~Connection() {
  duckdb_disconnect(&connection_);
  database_->open_connections_.fetch_sub(1);
}

namespace {

// Runs `sql` on `conn` into `result` (which the caller destroys either way).
Status RunStatement(duckdb_connection conn, std::string_view sql, const std::vector<Value>& params,
                    duckdb_result* result) {
  std::string text(sql);
  if (params.empty()) {
    // duckdb_query runs every statement but returns the FIRST one's result; split the text so
    // that the last statement's result is returned.
    ExtractedGuard extracted;
    idx_t count = duckdb_extract_statements(conn, text.c_str(), extracted.out());
    if (count <= 1) {
      // One statement, or a parse error that duckdb_query reports with its exact error type.
      if (duckdb_query(conn, text.c_str(), result) != DuckDBSuccess) return ResultError(result);
      return Status::OK();
    }
    for (idx_t i = 0; i < count; ++i) {
      PreparedGuard stmt;
      if (duckdb_prepare_extracted_statement(conn, extracted.get(), i, stmt.out()) !=
          DuckDBSuccess) {
        return MessageError(duckdb_prepare_error(stmt.get()));
      }
      if (i + 1 < count) {
        ResultGuard intermediate;
        if (duckdb_execute_prepared(stmt.get(), intermediate.get()) != DuckDBSuccess) {
          return ResultError(intermediate.get());
        }
      } else if (duckdb_execute_prepared(stmt.get(), result) != DuckDBSuccess) {
        return ResultError(result);
      }
    }
    return Status::OK();
  }
  PreparedGuard stmt;
  if (duckdb_prepare(conn, text.c_str(), stmt.out()) != DuckDBSuccess) {
    return MessageError(duckdb_prepare_error(stmt.get()));
  }
  idx_t expected = duckdb_nparams(stmt.get());
  if (expected != params.size()) {
    return InvalidArgument("the statement has " + std::to_string(expected) + " parameter(s) but " +
                           std::to_string(params.size()) + " value(s) were given");
  }
  for (size_t i = 0; i < params.size(); ++i) {
    RETURN_IF_ERROR(BindParam(stmt.get(), i + 1, params[i]));
  }
  if (duckdb_execute_prepared(stmt.get(), result) != DuckDBSuccess) return ResultError(result);
  return Status::OK();
}

}  // namespace

Result<QueryResult> Connection::Query(std::string_view sql, const std::vector<Value>& params) {
  ResultGuard result;
  RETURN_IF_ERROR(RunStatement(connection_, sql, params, result.get()));
  return sql_internal::MaterializeResult(result.get());
}

Status Connection::Execute(std::string_view sql, const std::vector<Value>& params) {
  ResultGuard result;
  return RunStatement(connection_, sql, params, result.get());
}

Result<Value> Connection::QueryScalar(std::string_view sql, const std::vector<Value>& params) {
  ASSIGN_OR_RETURN(QueryResult r, Query(sql, params));
  if (r.num_columns() != 1 || r.num_rows() != 1) {
    return InvalidArgument("expected one row of one column, got " + std::to_string(r.num_rows()) +
                           " row(s) of " + std::to_string(r.num_columns()) +
                           " column(s) from: " + std::string(sql.substr(0, 200)));
  }
  return r.at(0, 0);
}

Result<std::vector<TypedColumn>> Connection::Describe(std::string_view sql) {
  std::string text(sql);
  PreparedGuard stmt;
  if (duckdb_prepare(connection_, text.c_str(), stmt.out()) != DuckDBSuccess) {
    return MessageError(duckdb_prepare_error(stmt.get()));
  }
  std::vector<TypedColumn> columns;
  idx_t n = duckdb_prepared_statement_column_count(stmt.get());
  for (idx_t i = 0; i < n; ++i) {
    TypedColumn c;
    // const in the signature, but the caller frees it (duckdb.h).
    char* name = const_cast<char*>(duckdb_prepared_statement_column_name(stmt.get(), i));
    if (name != nullptr) {
      c.name = name;
      duckdb_free(name);
    }
    duckdb_logical_type type = duckdb_prepared_statement_column_logical_type(stmt.get(), i);
    Result<SqlType> t = sql_internal::SqlTypeOf(type);
    duckdb_destroy_logical_type(&type);
    if (!t.ok()) return t.status().WithContext("column \"" + c.name + "\"");
    c.type = std::move(t).value();
    columns.push_back(std::move(c));
  }
  return columns;
}

void Connection::Interrupt() { duckdb_interrupt(connection_); }

QueryProgress Connection::Progress() {
  duckdb_query_progress_type p = duckdb_query_progress(connection_);
  QueryProgress out;
  out.percentage = p.percentage;
  out.rows_processed = p.rows_processed;
  out.total_rows_to_process = p.total_rows_to_process;
  return out;
}

}  // namespace respawn
