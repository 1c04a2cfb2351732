// `respawn debug ...`: hidden commands for test suites (not listed in --help).
//   respawn debug crash-points   every crash point compiled into this binary, one per line, so
//                                end-to-end suites check they reach each one (util/crash_point.h)
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "cli/common.h"
#include "util/crash_point.h"

namespace respawn::cli {

void AddDebugCommands(CLI::App& app, const GlobalOptions& globals, CommandFn* run) {
  (void)globals;
  CLI::App* debug = app.add_subcommand("debug", "Commands for test suites");
  debug->group("");  // hidden from --help
  debug->require_subcommand(1);
  CLI::App* points = debug->add_subcommand(
      "crash-points", "Print every crash point of this binary (RESPAWN_CRASH_AT arms them)");
  points->callback([run] {
    *run = [] {
      for (const std::string& name : DeclaredCrashPoints()) std::printf("%s\n", name.c_str());
      return std::fflush(stdout) == 0 ? kExitOk : kExitFailed;
    };
  });
}

}  // namespace respawn::cli
