// plain_duckdb: runs SQL files on an in-memory DuckDB and times each statement. The baseline
// that respawn's pipeline runner is compared with (bench/pipeline_bench.sh): the same engine, the
// same settings respawn uses (offline, absolute temp directory), no checkpoints.
//
// Usage: plain_duckdb [--threads N] [--memory-limit SIZE] [--temp-dir DIR] [--quiet] FILE.sql...
//
// Statements run in file order on one connection. Prints one line per statement
// ("   3.217 s  (cpu   6.100 s)  CREATE TABLE clean_orders AS": wall-clock and process CPU
// time), then "total X.XXX s  (cpu Y.YYY s)". Exit 0 when every statement
// succeeded, 1 when one failed (the error names the file and the statement), 2 on usage errors.
#include <time.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "duckdb.h"

namespace {

struct Options {
  int threads = 0;           // 0: DuckDB's default (one per core)
  std::string memory_limit;  // empty: DuckDB's default
  std::string temp_dir;      // empty: a fresh directory under $TMPDIR, removed at exit
  bool quiet = false;
  std::vector<std::string> files;
};

struct Statement {
  std::string sql;
  std::string label;  // first line of code, shortened
  int line = 0;       // line in its file where the statement starts
};

constexpr std::string_view kUsage =
    "Usage: plain_duckdb [--threads N] [--memory-limit SIZE] [--temp-dir DIR] [--quiet] "
    "FILE.sql...\n"
    "Runs each statement of each FILE on one in-memory DuckDB and prints its time and the "
    "total.\n";

bool ParseArgs(int argc, char** argv, Options* options) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](std::string_view name) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "plain_duckdb: %.*s needs a value\n", static_cast<int>(name.size()),
                     name.data());
        return nullptr;
      }
      return argv[++i];
    };
    if (arg == "--threads") {
      const char* v = value(arg);
      if (v == nullptr) return false;
      char* end = nullptr;
      long n = std::strtol(v, &end, 10);
      if (*v == '\0' || *end != '\0' || n < 1 || n > 1024) {
        std::fprintf(stderr, "plain_duckdb: --threads wants a number from 1 to 1024, got '%s'\n",
                     v);
        return false;
      }
      options->threads = static_cast<int>(n);
    } else if (arg == "--memory-limit") {
      const char* v = value(arg);
      if (v == nullptr) return false;
      options->memory_limit = v;
    } else if (arg == "--temp-dir") {
      const char* v = value(arg);
      if (v == nullptr) return false;
      options->temp_dir = v;
    } else if (arg == "--quiet") {
      options->quiet = true;
    } else if (arg == "-h" || arg == "--help") {
      std::fputs(kUsage.data(), stdout);
      std::exit(0);
    } else if (arg.starts_with("-") && arg != "-") {
      std::fprintf(stderr, "plain_duckdb: unknown option '%s'\n", argv[i]);
      return false;
    } else {
      options->files.emplace_back(arg);
    }
  }
  if (options->files.empty()) {
    std::fprintf(stderr, "plain_duckdb: no SQL file given\n");
    return false;
  }
  return true;
}

// The first line of code in `sql` (comments and blank lines skipped), at most 72 characters.
std::string Label(std::string_view sql) {
  std::istringstream in{std::string(sql)};
  std::string line;
  while (std::getline(in, line)) {
    size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos || line.compare(start, 2, "--") == 0) continue;
    line = line.substr(start);
    if (line.size() > 72) line = line.substr(0, 69) + "...";
    return line;
  }
  return "(empty)";
}

// Splits `text` on ';' outside string literals, quoted identifiers and comments. Only used to
// label and time statements one by one: DuckDB parses each piece itself, so a piece that still
// holds two statements runs as two (and is timed as one).
std::vector<Statement> SplitStatements(std::string_view text) {
  std::vector<Statement> out;
  size_t begin = 0;
  int line = 1;
  int begin_line = 1;
  bool has_code = false;
  auto flush = [&](size_t end) {
    std::string_view piece = text.substr(begin, end - begin);
    if (has_code) out.push_back({std::string(piece), Label(piece), begin_line});
    has_code = false;
  };
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\n') {
      ++line;
      continue;
    }
    if (c == '-' && i + 1 < text.size() && text[i + 1] == '-') {
      while (i < text.size() && text[i] != '\n') ++i;
      --i;  // let the loop see the newline
      continue;
    }
    if (c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
      size_t close = text.find("*/", i + 2);
      size_t stop = close == std::string_view::npos ? text.size() : close + 2;
      for (size_t j = i; j < stop; ++j) line += text[j] == '\n';
      i = stop - 1;
      continue;
    }
    if (c == '\'' || c == '"') {
      if (!has_code) begin_line = line;
      has_code = true;
      size_t j = i + 1;
      while (j < text.size()) {
        if (text[j] == '\n') ++line;
        if (text[j] == c) {
          if (j + 1 < text.size() && text[j + 1] == c) {
            j += 2;  // doubled quote inside the literal
            continue;
          }
          break;
        }
        ++j;
      }
      i = j;
      continue;
    }
    if (c == ';') {
      flush(i);
      begin = i + 1;
      continue;
    }
    if (c != ' ' && c != '\t' && c != '\r' && !has_code) {
      has_code = true;
      begin_line = line;
      begin = i;
    }
  }
  flush(text.size());
  return out;
}

bool ReadFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return static_cast<bool>(in) || in.eof();
}

bool SetConfig(duckdb_config config, const char* name, const std::string& value) {
  if (duckdb_set_config(config, name, value.c_str()) == DuckDBError) {
    std::fprintf(stderr, "plain_duckdb: DuckDB rejected the setting %s=%s\n", name, value.c_str());
    return false;
  }
  return true;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// CPU time of this process (all threads), in seconds.
double CpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

int Run(const Options& options) {
  std::error_code ec;
  std::string temp_dir = options.temp_dir;
  bool own_temp_dir = temp_dir.empty();
  if (own_temp_dir) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/plain-duckdb-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (mkdtemp(buffer.data()) == nullptr) {
      std::fprintf(stderr, "plain_duckdb: cannot create a temp directory like %s: %s\n",
                   pattern.c_str(), std::strerror(errno));
      return 1;
    }
    temp_dir = buffer.data();
  }
  temp_dir = std::filesystem::absolute(temp_dir, ec).string();

  duckdb_config config = nullptr;
  if (duckdb_create_config(&config) == DuckDBError) {
    std::fprintf(stderr, "plain_duckdb: duckdb_create_config failed\n");
    return 1;
  }
  bool ok = SetConfig(config, "autoinstall_known_extensions", "false") &&
            SetConfig(config, "autoload_known_extensions", "false") &&
            SetConfig(config, "temp_directory", temp_dir);
  if (ok && options.threads > 0) ok = SetConfig(config, "threads", std::to_string(options.threads));
  if (ok && !options.memory_limit.empty()) {
    ok = SetConfig(config, "memory_limit", options.memory_limit);
  }
  duckdb_database db = nullptr;
  char* open_error = nullptr;
  if (ok && duckdb_open_ext(nullptr, &db, config, &open_error) == DuckDBError) {
    std::fprintf(stderr, "plain_duckdb: cannot open DuckDB: %s\n",
                 open_error != nullptr ? open_error : "unknown error");
    duckdb_free(open_error);
    ok = false;
  }
  duckdb_destroy_config(&config);
  duckdb_connection conn = nullptr;
  if (ok && duckdb_connect(db, &conn) == DuckDBError) {
    std::fprintf(stderr, "plain_duckdb: cannot connect to DuckDB\n");
    ok = false;
  }

  auto total_start = std::chrono::steady_clock::now();
  double total_cpu_start = CpuSeconds();
  for (size_t f = 0; ok && f < options.files.size(); ++f) {
    const std::string& file = options.files[f];
    std::string text;
    if (!ReadFile(file, &text)) {
      std::fprintf(stderr, "plain_duckdb: cannot read %s: %s\n", file.c_str(),
                   std::strerror(errno));
      ok = false;
      break;
    }
    for (const Statement& statement : SplitStatements(text)) {
      auto start = std::chrono::steady_clock::now();
      double cpu_start = CpuSeconds();
      duckdb_result result;
      duckdb_state state = duckdb_query(conn, statement.sql.c_str(), &result);
      double seconds = Seconds(std::chrono::steady_clock::now() - start);
      double cpu = CpuSeconds() - cpu_start;
      if (state == DuckDBError) {
        std::fprintf(stderr, "plain_duckdb: %s:%d: %s failed after %.3f s:\n%s\n", file.c_str(),
                     statement.line, statement.label.c_str(), seconds,
                     duckdb_result_error(&result));
        duckdb_destroy_result(&result);
        ok = false;
        break;
      }
      duckdb_destroy_result(&result);
      if (!options.quiet) {
        std::printf("%8.3f s  (cpu %7.3f s)  %s\n", seconds, cpu, statement.label.c_str());
        std::fflush(stdout);
      }
    }
  }
  double total = Seconds(std::chrono::steady_clock::now() - total_start);
  if (ok) std::printf("total %.3f s  (cpu %.3f s)\n", total, CpuSeconds() - total_cpu_start);

  if (conn != nullptr) duckdb_disconnect(&conn);
  if (db != nullptr) duckdb_close(&db);
  if (own_temp_dir) std::filesystem::remove_all(temp_dir, ec);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  if (!ParseArgs(argc, argv, &options)) {
    std::fputs(kUsage.data(), stderr);
    return 2;
  }
  return Run(options);
}
