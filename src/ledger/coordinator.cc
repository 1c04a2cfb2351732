#include "ledger/coordinator.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "util/log.h"
#include "util/strings.h"

namespace respawn::ledger {
namespace {

constexpr char kTable[] = "respawn_ledger_records";
constexpr char kExpectedForm[] =
    "expected postgresql://USER@HOST:PORT/DATABASE (the password from PGPASSWORD or ~/.pgpass, "
    "or postgresql://USER:PASSWORD@HOST:PORT/DATABASE)";

// The first line of a libpq message, without its trailing newline.
std::string FirstLine(const char* message) {
  std::string s = message != nullptr ? message : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (char& c : s) {
    if (c == '\n') c = ' ';
  }
  return s;
}

struct ConninfoOptions {
  std::vector<std::pair<std::string, std::string>> values;  // keyword -> value, set ones only
  std::string error;
};

ConninfoOptions ParseConninfo(std::string_view url) {
  ConninfoOptions out;
  char* err = nullptr;
  std::string text(url);
  PQconninfoOption* options = PQconninfoParse(text.c_str(), &err);
  if (options == nullptr) {
    out.error = err != nullptr ? FirstLine(err) : "out of memory";
    if (err != nullptr) PQfreemem(err);
    return out;
  }
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val != nullptr) out.values.emplace_back(o->keyword, o->val);
  }
  PQconninfoFree(options);
  return out;
}

// Frees a PGresult when it goes out of scope.
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

uint64_t ReadInt8(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string Int8Text(uint64_t v) { return std::to_string(v); }

class PgCoordinator : public CommitCoordinator {
 public:
  PgCoordinator(std::string url, std::string display)
      : url_(std::move(url)), display_(std::move(display)) {}
  ~PgCoordinator() override {
    if (conn_ != nullptr) PQfinish(conn_);
  }

  std::string Url() const override { return display_; }

  // Connects and creates the table: the configuration check OpenCoordinator makes.
  Status Init() {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(ConnectLocked(/*config=*/true));
    std::string create = std::string("CREATE TABLE IF NOT EXISTS ") + kTable +
                         " (namespace text NOT NULL,"
                         " sequence bigint NOT NULL CHECK (sequence > 0),"
                         " record bytea NOT NULL,"
                         " created_at timestamptz NOT NULL DEFAULT now(),"
                         " PRIMARY KEY (namespace, sequence))";
    for (int attempt = 1;; ++attempt) {
      PgResult r(PQexec(conn_, create.c_str()));
      if (PQresultStatus(r.get()) == PGRES_COMMAND_OK) return Status::OK();
      const char* state = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
      std::string sqlstate = state != nullptr ? state : "";
      // Two processes creating the table at once: one of them gets a unique violation on the
      // catalog (23505) or "already exists" (42P07); the table is there either way.
      if ((sqlstate == "23505" || sqlstate == "42P07") && attempt < 3) continue;
      std::string why = FirstLine(PQresultErrorMessage(r.get()));
      if (sqlstate == "42501") {
        return FailedPrecondition("commit coordinator " + display_ +
                                  ": no permission to create table " + kTable + " (" + why +
                                  "); create it as the database owner, or grant CREATE on the "
                                  "schema to this user");
      }
      if (PQstatus(conn_) != CONNECTION_OK) {
        return FailedPrecondition("commit coordinator " + display_ +
                                  ": the connection broke while creating table " + kTable + " (" +
                                  why + "); check that the server stays up and retry");
      }
      return FailedPrecondition("commit coordinator " + display_ + ": cannot create table " +
                                kTable + ": " + why);
    }
  }

  Status CreateIfAbsent(const std::string& ns, uint64_t sequence, std::string_view bytes) override {
    if (sequence == 0) return InvalidArgument("coordinator record sequence must be >= 1");
    std::string seq = Int8Text(sequence);
    std::string body(bytes);
    const char* values[3] = {ns.c_str(), seq.c_str(), body.data()};
    int lengths[3] = {0, 0, static_cast<int>(body.size())};
    int formats[3] = {0, 0, 1};
    std::string sql = std::string("INSERT INTO ") + kTable +
                      " (namespace, sequence, record) VALUES ($1, $2::bigint, $3)"
                      " ON CONFLICT (namespace, sequence) DO NOTHING";
    ASSIGN_OR_RETURN(PgResult r, Exec(sql, 3, values, lengths, formats, "inserting record " + seq,
                                      /*ambiguous=*/true));
    const char* tuples = PQcmdTuples(r.get());
    if (tuples != nullptr && std::strcmp(tuples, "1") == 0) return Status::OK();
    return AlreadyExists("commit coordinator " + display_ + ": record " + seq + " of " +
                         Quoted(ns) + " already exists");
  }

  Result<std::map<uint64_t, std::string>> Read(const std::string& ns, uint64_t first,
                                               uint64_t last) override {
    std::map<uint64_t, std::string> out;
    if (first > last) return out;
    std::string lo = Int8Text(first), hi = Int8Text(last);
    const char* values[3] = {ns.c_str(), lo.c_str(), hi.c_str()};
    std::string sql = std::string("SELECT sequence, record FROM ") + kTable +
                      " WHERE namespace = $1 AND sequence BETWEEN $2::bigint AND $3::bigint"
                      " ORDER BY sequence";
    ASSIGN_OR_RETURN(PgResult r, Exec(sql, 3, values, nullptr, nullptr,
                                      "reading records " + lo + ".." + hi, false));
    int rows = PQntuples(r.get());
    for (int i = 0; i < rows; ++i) {
      if (PQgetlength(r.get(), i, 0) != 8) {
        return Internal("commit coordinator " + display_ + ": unexpected sequence column");
      }
      uint64_t seq = ReadInt8(PQgetvalue(r.get(), i, 0));
      out.emplace(seq, std::string(PQgetvalue(r.get(), i, 1),
                                   static_cast<size_t>(PQgetlength(r.get(), i, 1))));
    }
    return out;
  }

  Result<uint64_t> Latest(const std::string& ns) override {
    const char* values[1] = {ns.c_str()};
    std::string sql =
        std::string("SELECT coalesce(max(sequence), 0) FROM ") + kTable + " WHERE namespace = $1";
    ASSIGN_OR_RETURN(PgResult r,
                     Exec(sql, 1, values, nullptr, nullptr, "finding the latest record", false));
    if (PQntuples(r.get()) != 1 || PQgetlength(r.get(), 0, 0) != 8) {
      return Internal("commit coordinator " + display_ + ": unexpected answer to max(sequence)");
    }
    return ReadInt8(PQgetvalue(r.get(), 0, 0));
  }

  Result<uint64_t> DeleteBelow(const std::string& ns, uint64_t below) override {
    std::string b = Int8Text(below);
    const char* values[2] = {ns.c_str(), b.c_str()};
    std::string sql =
        std::string("DELETE FROM ") + kTable + " WHERE namespace = $1 AND sequence < $2::bigint";
    ASSIGN_OR_RETURN(PgResult r,
                     Exec(sql, 2, values, nullptr, nullptr, "deleting records below " + b, false));
    const char* tuples = PQcmdTuples(r.get());
    return static_cast<uint64_t>(std::strtoull(tuples != nullptr ? tuples : "0", nullptr, 10));
  }

 private:
  // REQUIRES: mu_ held. `config`: errors are the user's configuration (FailedPrecondition,
  // naming the fix); otherwise a failure to reconnect is Unavailable (retry).
  Status ConnectLocked(bool config) {
    if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) return Status::OK();
    if (conn_ != nullptr) {
      PQfinish(conn_);
      conn_ = nullptr;
    }
    // Defaults first: parameters in the URL override them (expand_dbname). Keepalives and the
    // TCP user timeout bound a call to a server that disappeared.
    const char* keywords[] = {"connect_timeout",     "keepalives",       "keepalives_idle",
                              "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                              "application_name",    "dbname",           nullptr};
    const char* values[] = {"10", "1", "10", "5", "3", "30000", "respawn", url_.c_str(), nullptr};
    conn_ = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
    if (conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK) {
      // Server notices ("relation ... already exists, skipping") go to the debug log, not to
      // stderr as libpq's default does.
      PQsetNoticeProcessor(conn_, &PgCoordinator::OnNotice, nullptr);
      return Status::OK();
    }
    std::string why = conn_ != nullptr ? FirstLine(PQerrorMessage(conn_)) : "out of memory";
    if (conn_ != nullptr) {
      PQfinish(conn_);
      conn_ = nullptr;
    }
    if (!config) {
      return Unavailable("commit coordinator " + display_ + " is unreachable (" + why + ")");
    }
    std::string lower = why;
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string fix;
    if (lower.find("password") != std::string::npos ||
        lower.find("authentication") != std::string::npos) {
      fix =
          "the server rejected the credentials: set the right user and password (PGPASSWORD, "
          "~/.pgpass or the URL)";
    } else if (lower.find("does not exist") != std::string::npos) {
      fix =
          "the database or user named in the URL does not exist on that server: create it, or "
          "fix the URL";
    } else {
      fix =
          "is PostgreSQL running there and listening on that host and port? Fix the URL, or "
          "start the server";
    }
    return FailedPrecondition("cannot use the commit coordinator " + display_ + ": " + why + "; " +
                              fix +
                              " (the coordinator comes from `coordinator = ...` in the pipeline "
                              "file or RESPAWN_COORDINATOR)");
  }

  static void OnNotice(void*, const char* message) {
    RESPAWN_LOG(kDebug, "commit coordinator: " << FirstLine(message));
  }

  // Runs one statement (binary results), reconnecting first if the connection broke.
  // `ambiguous`: a broken connection may have left the statement's effect in place.
  Result<PgResult> Exec(const std::string& sql, int n, const char* const* values,
                        const int* lengths, const int* formats, const std::string& what,
                        bool ambiguous) {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(ConnectLocked(/*config=*/false));
    PgResult r(PQexecParams(conn_, sql.c_str(), n, nullptr, values, lengths, formats,
                            /*resultFormat=*/1));
    ExecStatusType status = PQresultStatus(r.get());
    if (r != nullptr && (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)) return r;
    std::string why =
        FirstLine(r != nullptr ? PQresultErrorMessage(r.get()) : PQerrorMessage(conn_));
    if (why.empty()) why = FirstLine(PQerrorMessage(conn_));
    const char* state = r != nullptr ? PQresultErrorField(r.get(), PG_DIAG_SQLSTATE) : nullptr;
    std::string sqlstate = state != nullptr ? state : "";
    std::string where = "commit coordinator " + display_ + ": " + what;
    if (PQstatus(conn_) != CONNECTION_OK || r == nullptr) {
      PQfinish(conn_);
      conn_ = nullptr;
      return Unavailable(where + " failed: the connection broke (" + why + ")" +
                         (ambiguous ? "; it is unknown whether it took effect" : ""));
    }
    // Class 08 (connection), 40 (rollback: serialization, deadlock), 53 (resources), 57
    // (operator intervention: shutdown, cancel) and 58 (system): worth a retry.
    std::string cls = sqlstate.substr(0, 2);
    if (cls == "08" || cls == "40" || cls == "53" || cls == "57" || cls == "58") {
      return Unavailable(where + " failed (" + why + ", SQLSTATE " + sqlstate + ")");
    }
    if (cls == "42" && sqlstate == "42P01") {
      return FailedPrecondition(where + " failed: table " + kTable +
                                " is missing (dropped while in use?); reopen the coordinator to "
                                "create it");
    }
    return Internal(where + " failed (" + why + ", SQLSTATE " + sqlstate + ")");
  }

  const std::string url_;      // as configured, may hold a password: never printed
  const std::string display_;  // without the password
  std::mutex mu_;
  PGconn* conn_ = nullptr;  // GUARDED_BY(mu_)
};

}  // namespace

// ---------------------------------------------------------------------------------------------

bool IsCoordinatorUrl(std::string_view url) {
  return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

Status ValidateCoordinatorUrl(std::string_view url) {
  if (url.empty())
    return InvalidArgument(std::string("commit coordinator URL is empty; ") + kExpectedForm);
  if (!IsCoordinatorUrl(url)) {
    std::string shown = RedactCoordinatorUrl(url);
    return InvalidArgument("commit coordinator " + Quoted(shown.substr(0, 60)) +
                           " is not a PostgreSQL URL; " + kExpectedForm);
  }
  ConninfoOptions parsed = ParseConninfo(url);
  if (!parsed.error.empty()) {
    return InvalidArgument("commit coordinator URL " + RedactCoordinatorUrl(url) +
                           " does not parse (" + parsed.error + "); " + kExpectedForm);
  }
  return Status::OK();
}

std::string RedactCoordinatorUrl(std::string_view url) {
  std::string s(url);
  size_t scheme = s.find("://");
  if (scheme == std::string::npos) return s;
  size_t start = scheme + 3;
  size_t end = s.find_first_of("/?", start);
  if (end == std::string::npos) end = s.size();
  size_t at = s.rfind('@', end == 0 ? 0 : end - 1);
  if (at != std::string::npos && at >= start) {
    size_t colon = s.find(':', start);
    if (colon != std::string::npos && colon < at) s.erase(colon, at - colon);
  }
  // Query parameters: drop password=...
  size_t q = s.find('?');
  if (q != std::string::npos) {
    std::string query = s.substr(q + 1);
    std::string kept;
    size_t pos = 0;
    while (pos <= query.size()) {
      size_t amp = query.find('&', pos);
      std::string param =
          query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
      if (!param.empty() && !param.starts_with("password=")) {
        if (!kept.empty()) kept += '&';
        kept += param;
      }
      if (amp == std::string::npos) break;
      pos = amp + 1;
    }
    s = s.substr(0, q) + (kept.empty() ? "" : "?" + kept);
  }
  return s;
}

std::string CoordinatorUrlPassword(std::string_view url) {
  if (!IsCoordinatorUrl(url)) return "";
  ConninfoOptions parsed = ParseConninfo(url);
  for (const auto& [key, value] : parsed.values) {
    if (key == "password") return value;
  }
  return "";
}

Result<std::shared_ptr<CommitCoordinator>> OpenCoordinator(const std::string& url) {
  RETURN_IF_ERROR(ValidateCoordinatorUrl(url));
  auto coordinator = std::make_shared<PgCoordinator>(url, RedactCoordinatorUrl(url));
  RETURN_IF_ERROR(coordinator->Init());
  RESPAWN_LOG(kInfo, "commit coordinator " << coordinator->Url() << " ready");
  return std::shared_ptr<CommitCoordinator>(std::move(coordinator));
}

}  // namespace respawn::ledger
