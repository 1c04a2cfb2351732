// The `respawn` command: global options, then one subcommand per file (store_cmd.cc,
// doctor_cmd.cc, ...). To add one, write an Add*Command(app, globals, &run) in its own file,
// declare it in common.h and call it below.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "cli/common.h"
#include "util/log.h"

namespace respawn::cli {
namespace {

int Main(int argc, char** argv) {
  CLI::App app(
      "respawn: checkpointed data pipelines on local disks, shared filesystems and "
      "S3-compatible object stores",
      "respawn");
  app.set_version_flag("--version", "respawn " + std::string(kVersion));
  app.require_subcommand(1);
  app.fallthrough();  // global options may follow the subcommand: respawn store ls --json URL

  GlobalOptions globals;
  app.add_option("--chaos", globals.chaos,
                 "Inject store faults, e.g. error_rate=0.1,latency_ms=5 (default: $RESPAWN_CHAOS)");
  app.add_option("--timeout", globals.timeout_s, "Seconds each store operation may spend retrying")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("-q,--quiet", globals.quiet, "Print only errors (and data)");
  app.add_flag("-v,--verbose", globals.verbose, "Debug logging (like RESPAWN_LOG=debug)");
  app.add_flag("--json", globals.json, "Print results as JSON");
  app.footer(
      "Exit status: 0 ok, 1 an operation failed, 2 bad usage or configuration, 75 interrupted "
      "(re-run to resume).");

  CommandFn run;
  AddPipelineCommands(app, globals, &run);
  AddStoreCommands(app, globals, &run);
  AddDoctorCommand(app, globals, &run);
  AddDebugCommands(app, globals, &run);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    PrintError(std::string(e.what()) + " (see respawn --help)");
    return kExitUsage;
  }
  if (globals.verbose) SetLogLevel(LogLevel::kDebug);
  if (globals.quiet && globals.verbose) {
    PrintError("--quiet and --verbose contradict each other; choose one");
    return kExitUsage;
  }
  if (Status s = ValidateChaos(globals); !s.ok()) return Fail(s, Phase::kConfig);
  if (!run) {
    PrintError("no command given (see respawn --help)");
    return kExitUsage;
  }
  return run();
}

}  // namespace
}  // namespace respawn::cli

int main(int argc, char** argv) {
  try {
    return respawn::cli::Main(argc, argv);
  } catch (const std::exception& e) {
    respawn::cli::PrintError(std::string("internal error: ") + e.what());
    return respawn::cli::kExitFailed;
  }
}
