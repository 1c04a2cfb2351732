// What every `respawn` subcommand shares: the global options, how a command is registered and
// run, exit codes, error reporting, and opening stores with the global options applied.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "storage/store_url.h"
#include "util/status.h"

namespace CLI {
class App;
}  // namespace CLI

namespace respawn::cli {

/// The version `respawn --version` prints (the project() VERSION in CMakeLists.txt).
#ifdef RESPAWN_VERSION
inline constexpr std::string_view kVersion = RESPAWN_VERSION;
#else
inline constexpr std::string_view kVersion = "0.1.0";
#endif

/// Exit codes of the `respawn` binary. Later subcommands reuse them.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;        // an operation failed (not found, data loss, fenced)
inline constexpr int kExitUsage = 2;         // bad arguments, URL, chaos spec, credentials, bucket
inline constexpr int kExitInterrupted = 75;  // SIGINT/SIGTERM: stopped early, re-running resumes

/// Options given before or after any subcommand (`respawn --json store ls ...`).
struct GlobalOptions {
  std::string chaos;      // fault-injection spec; "" = RESPAWN_CHAOS from the environment
  double timeout_s = 30;  // bounds the retries of each store operation
  bool quiet = false;
  bool verbose = false;
  bool json = false;
};

/// What a parsed subcommand runs; returns the process exit code.
using CommandFn = std::function<int()>;

/// Each subcommand file adds its subcommands to `app`. When one is chosen on the command line,
/// its parse callback stores the work into `*run`. `globals` outlives the parse and the run.
void AddStoreCommands(CLI::App& app, const GlobalOptions& globals, CommandFn* run);
void AddDoctorCommand(CLI::App& app, const GlobalOptions& globals, CommandFn* run);
void AddPipelineCommands(CLI::App& app, const GlobalOptions& globals, CommandFn* run);
void AddShowCommand(CLI::App& app, const GlobalOptions& globals, CommandFn* run);
void AddLogCommand(CLI::App& app, const GlobalOptions& globals, CommandFn* run);
void AddRestoreCommand(CLI::App& app, const GlobalOptions& globals, CommandFn* run);
void AddDebugCommands(CLI::App& app, const GlobalOptions& globals, CommandFn* run);

/// Where an error happened: while reading arguments and opening stores (a bad URL or missing
/// credentials is the user's configuration: exit 2), or during an operation (exit 1 unless the
/// input itself was invalid).
enum class Phase { kConfig, kOperation };

/// The one place that maps a Status to an exit code.
int ExitCodeFor(const Status& status, Phase phase);

/// Prints `respawn: <message>` as one line on stderr (newlines folded, known secrets redacted).
void PrintError(std::string_view message);
/// PrintError(status.message()) and returns ExitCodeFor(status, phase). With --json, the error
/// is also one JSON object on stdout: {"event":"error","code":<exit code>,"message":...}.
int Fail(const Status& status, Phase phase);

/// Whether Fail also prints errors as JSON on stdout (--json). Set once, before commands run.
void SetJsonErrors(bool json);

/// Secrets (S3 secret keys, session tokens) that must never be printed; PrintError and Redact
/// replace them. Thread-safe.
void RegisterSecret(const std::string& secret);
std::string Redact(std::string text);

/// Registers the password of a commit coordinator URL (as written and decoded) with
/// RegisterSecret.
void RegisterCoordinatorSecrets(const std::string& url);

/// OpenStore with the global options: retry deadline = --timeout, chaos = --chaos (or
/// RESPAWN_CHAOS). Registers the S3 credentials' secrets with RegisterSecret.
/// `read_only`: the command writes nothing (status, ls, gc --dry-run), so a local store root
/// that does not exist is NotFound rather than created.
Result<OpenedStore> OpenStoreForCli(const std::string& url, const GlobalOptions& globals,
                                    bool read_only = false);

/// Checks the chaos spec (from --chaos or RESPAWN_CHAOS) parses: InvalidArgument otherwise.
Status ValidateChaos(const GlobalOptions& globals);

/// SIGINT/SIGTERM handling for long operations: while an InterruptScope lives, the first signal
/// sets interrupted() (work stops starting new items and finishes what is in flight); a second
/// one exits at once with kExitInterrupted. Outside a scope the default actions apply.
class InterruptScope {
 public:
  /// `on_interrupt`, a string literal, says what the first interrupt makes the command do.
  explicit InterruptScope(
      const char* on_interrupt = "stopping what is in flight, keeping what finished");
  ~InterruptScope();
  InterruptScope(const InterruptScope&) = delete;
  InterruptScope& operator=(const InterruptScope&) = delete;

  static bool interrupted();
  static const std::atomic<bool>* flag();
};

/// Whether the file descriptor is a terminal.
bool IsTerminal(int fd);
/// "1.5 MiB", "512 B".
std::string FormatBytes(uint64_t bytes);
/// "1,234,567".
std::string Thousands(uint64_t n);
/// MiB per second of `bytes` moved in `seconds` (0 when seconds is 0), as "123.4".
std::string FormatMiBps(uint64_t bytes, double seconds);
/// "2024-05-01 12:00:00" in local time, or "-" for 0.
std::string FormatLocalTime(int64_t mtime_ms);
/// "2024-05-01T12:00:00.000Z", or "" for 0.
std::string FormatIsoTime(int64_t mtime_ms);

}  // namespace respawn::cli
