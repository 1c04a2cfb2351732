#include "cli/common.h"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>

#include "ledger/coordinator.h"
#include "storage/chaos_store.h"
#include "storage/s3_store.h"
#include "util/strings.h"

namespace respawn::cli {
namespace {

std::mutex g_secrets_mu;
std::vector<std::string>* Secrets() {  // GUARDED_BY(g_secrets_mu)
  static std::vector<std::string> secrets;
  return &secrets;
}

}  // namespace

int ExitCodeFor(const Status& status, Phase phase) {
  // Credentials the server rejects and a missing bucket are configuration, whenever they show.
  if (status.detail() == StatusDetail::kConfiguration) return kExitUsage;
  switch (status.code()) {
    case StatusCode::kOk:
      return kExitOk;
    case StatusCode::kInvalidArgument:
      return kExitUsage;
    case StatusCode::kCancelled:  // SIGINT/SIGTERM: what finished stays; re-running resumes
      return kExitInterrupted;
    case StatusCode::kFailedPrecondition:  // e.g. no credentials configured
    case StatusCode::kPermissionDenied:    // e.g. a store root this user may not write
    case StatusCode::kUnimplemented:       // e.g. a URL naming a backend this build lacks
      return phase == Phase::kConfig ? kExitUsage : kExitFailed;
    default:
      return kExitFailed;
  }
}

void RegisterSecret(const std::string& secret) {
  if (secret.size() < 4) return;  // too short to redact without mangling ordinary text
  std::lock_guard<std::mutex> lock(g_secrets_mu);
  for (const auto& s : *Secrets()) {
    if (s == secret) return;
  }
  Secrets()->push_back(secret);
}

std::string Redact(std::string text) {
  std::vector<std::string> secrets;
  {
    std::lock_guard<std::mutex> lock(g_secrets_mu);
    secrets = *Secrets();
  }
  for (const char* env : {"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD"}) {
    const char* v = std::getenv(env);
    if (v != nullptr && std::string_view(v).size() >= 4) secrets.emplace_back(v);
  }
  for (const auto& secret : secrets) {
    for (size_t pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos)) {
      text.replace(pos, secret.size(), "<redacted>");
      pos += 10;
    }
  }
  return text;
}

void PrintError(std::string_view message) {
  // One "respawn: " line per error; a line that starts with a blank continues the one above
  // (a SQL error's LINE block and caret stay under it); blank lines are dropped.
  const std::string text = Redact(std::string(message));
  std::string out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const bool continues = !out.empty() && (line[0] == ' ' || line[0] == '\t');
    out += (continues ? "" : "respawn: ") + line + "\n";
  }
  if (out.empty()) out = "respawn: \n";
  std::fflush(stdout);
  std::fputs(out.c_str(), stderr);
  std::fflush(stderr);
}

namespace {
std::atomic<bool> g_json_errors{false};
}  // namespace

void SetJsonErrors(bool json) { g_json_errors.store(json); }

int Fail(const Status& status, Phase phase) {
  const std::string message = status.message().empty() ? status.ToString() : status.message();
  PrintError(message);
  const int code = ExitCodeFor(status, phase);
  if (g_json_errors.load()) {
    nlohmann::json j = {{"event", "error"},
                        {"code", code},
                        {"status", std::string(StatusCodeName(status.code()))},
                        {"message", Redact(message)}};
    std::printf("%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
    std::fflush(stdout);
  }
  return code;
}

void RegisterCoordinatorSecrets(const std::string& url) {
  RegisterSecret(ledger::CoordinatorUrlPassword(url));
  // As written (percent-encoded): "scheme://user:PASSWORD@host...".
  size_t start = url.find("://");
  if (start == std::string::npos) return;
  start += 3;
  size_t end = url.find_first_of("/?", start);
  if (end == std::string::npos) end = url.size();
  size_t at = url.rfind('@', end);
  if (at == std::string::npos || at < start) return;
  size_t colon = url.find(':', start);
  if (colon != std::string::npos && colon < at)
    RegisterSecret(url.substr(colon + 1, at - colon - 1));
}

Status ValidateChaos(const GlobalOptions& globals) {
  std::string spec = globals.chaos;
  std::string source = "--chaos";
  if (spec.empty()) {
    const char* env = std::getenv("RESPAWN_CHAOS");
    if (env == nullptr || env[0] == '\0') return Status::OK();
    spec = env;
    source = "environment variable RESPAWN_CHAOS";
  }
  Result<ChaosSpec> parsed = ParseChaosSpec(spec);
  if (!parsed.ok()) {
    return InvalidArgument(source + " " + Quoted(spec) +
                           " is invalid: " + parsed.status().message() +
                           " (example: error_rate=0.1,ops=put+get,latency_ms=5)");
  }
  return Status::OK();
}

Result<OpenedStore> OpenStoreForCli(const std::string& url, const GlobalOptions& globals,
                                    bool read_only) {
  OpenStoreOptions options;
  options.read_only = read_only;
  options.retry_policy.deadline =
      std::chrono::milliseconds(static_cast<int64_t>(globals.timeout_s * 1000));
  options.chaos = globals.chaos;
  ASSIGN_OR_RETURN(OpenedStore opened, OpenStore(url, options));
  if (auto* s3 = dynamic_cast<S3Store*>(opened.backend.get()); s3 != nullptr) {
    RegisterSecret(s3->config().credentials.secret_access_key);
    RegisterSecret(s3->config().credentials.session_token);
  }
  return opened;
}

// --- interruption ---

namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<int> g_signals{0};
// What the first interrupt makes the command do, printed by the handler (a string literal).
std::atomic<const char*> g_on_interrupt{nullptr};
struct sigaction g_old_int;
struct sigaction g_old_term;

void WriteStderr(const char* text) {
  size_t n = 0;
  while (text[n] != '\0') ++n;
  ssize_t ignored = ::write(STDERR_FILENO, text, n);
  (void)ignored;
}

extern "C" void OnInterrupt(int /*signo*/) {
  if (g_signals.fetch_add(1) > 0) {
    WriteStderr("\nrespawn: interrupted again: stopping now\n");
    ::_exit(kExitInterrupted);
  }
  g_interrupted.store(true);
  WriteStderr("\nrespawn: interrupted: ");
  WriteStderr(g_on_interrupt.load());
  WriteStderr(" (interrupt again to exit at once; the same command resumes)\n");
}

}  // namespace

InterruptScope::InterruptScope(const char* on_interrupt) {
  g_on_interrupt.store(on_interrupt);
  g_interrupted.store(false);
  g_signals.store(0);
  struct sigaction sa = {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGINT, &sa, &g_old_int);
  sigaction(SIGTERM, &sa, &g_old_term);
}

InterruptScope::~InterruptScope() {
  sigaction(SIGINT, &g_old_int, nullptr);
  sigaction(SIGTERM, &g_old_term, nullptr);
}

bool InterruptScope::interrupted() { return g_interrupted.load(); }
const std::atomic<bool>* InterruptScope::flag() { return &g_interrupted; }

// --- formatting ---

bool IsTerminal(int fd) { return ::isatty(fd) == 1; }

std::string Thousands(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  static const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes) / 1024;
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, kUnits[unit]);
  return buf;
}

std::string FormatMiBps(uint64_t bytes, double seconds) {
  double rate = seconds > 0 ? static_cast<double>(bytes) / (1024.0 * 1024.0) / seconds : 0;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", rate);
  return buf;
}

std::string FormatLocalTime(int64_t mtime_ms) {
  if (mtime_ms == 0) return "-";
  std::time_t t = static_cast<std::time_t>(mtime_ms / 1000);
  std::tm tm = {};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string FormatIsoTime(int64_t mtime_ms) {
  if (mtime_ms == 0) return "";
  std::time_t t = static_cast<std::time_t>(mtime_ms / 1000);
  std::tm tm = {};
  gmtime_r(&t, &tm);
  char buf[40];
  size_t n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(mtime_ms % 1000));
  return buf;
}

}  // namespace respawn::cli
