// The `respawn` command: global options, then one subcommand per file (store_cmd.cc,
// doctor_cmd.cc, ...). To add one, write an Add*Command(app, globals, &run) in its own file,
// declare it in common.h and call it below.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <exception>
#include <string>

#include "cli/common.h"
#include "pipeline/spec.h"
#include "util/log.h"

namespace respawn::cli {
namespace {

// The first word of the command line that is not an option or an option's value: the command.
std::string FirstCommandWord(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--") return "";
    if (a.rfind("-", 0) == 0) {
      // Global options that take a value in the next word.
      if (a == "--chaos" || a == "--timeout") ++i;
      continue;
    }
    return a;
  }
  return "";
}

// Every command's --help lists the global options it honours (CLI11 shows them only at the top).
void DescribeGlobalOptions(CLI::App& app) {
  const std::string globals =
      "Global options (before or after the command): --json (JSON output; errors as "
      "{\"event\":\"error\",...} on stdout too), -q/--quiet, -v/--verbose, --timeout SECONDS, "
      "--chaos SPEC. See respawn --help.";
  for (CLI::App* sub : app.get_subcommands({})) {
    std::string footer = sub->get_footer();
    sub->footer(footer.empty() ? globals : footer + "\n\n" + globals);
  }
}

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
  AddShowCommand(app, globals, &run);
  AddLogCommand(app, globals, &run);
  AddRestoreCommand(app, globals, &run);
  AddStoreCommands(app, globals, &run);
  AddDoctorCommand(app, globals, &run);
  AddDebugCommands(app, globals, &run);
  DescribeGlobalOptions(app);

  // An unknown command is named as such, with a did-you-mean (CLI11 would only say that a
  // subcommand is required, or that the word was not expected).
  bool json_requested = false;
  for (int i = 1; i < argc; ++i)
    json_requested = json_requested || std::string(argv[i]) == "--json";
  SetJsonErrors(json_requested);
  if (std::string word = FirstCommandWord(argc, argv); !word.empty()) {
    std::vector<std::string> names;  // the visible ones, for the message
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      known = known || sub->get_name() == word;
      if (!sub->get_group().empty()) names.push_back(sub->get_name());
    }
    if (!known) {
      std::string list;
      for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
      return Fail(InvalidArgument("unknown command '" + word + "'" + DidYouMeanSuffix(word, names) +
                                  "; commands: " + list + " (see respawn --help)"),
                  Phase::kConfig);
    }
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == static_cast<int>(CLI::ExitCodes::Success)) return app.exit(e);
    return Fail(InvalidArgument(std::string(e.what()) + " (see respawn --help)"), Phase::kConfig);
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
