// `respawn log PIPELINE STAGE`: a stage's last computation (stage_log.h): the SQL as it ran, when,
// how long, rows and bytes, why, its error if it failed, and DuckDB's profile of the query.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/common.h"
#include "pipeline/spec.h"
#include "pipeline/stage_log.h"

namespace respawn::cli {
namespace {

struct LogCliOptions {
  std::string file;
  std::string stage;
  std::string store;
  std::string profile;
  std::vector<std::string> params;
};

void PrintLog(const StageLog& log) {
  const std::string why = log.reason == "no checkpoint" ? "its first computation" : log.reason;
  std::printf("stage %s: %s by run %s at %s (%s)\n", log.node.c_str(), log.result.c_str(),
              log.run_id.substr(0, 8).c_str(), FormatLocalTime(log.finished_at_ms).c_str(),
              why.c_str());
  std::printf("  %.2f s, %s %s", log.seconds, Thousands(log.rows).c_str(),
              log.rows == 1 ? "row" : "rows");
  if (log.bytes > 0) std::printf(", %s checkpointed", FormatBytes(log.bytes).c_str());
  std::printf(", fingerprint %s\n", log.fingerprint.substr(0, 8).c_str());
  if (!log.error.empty()) std::printf("error:\n  %s\n", log.error.c_str());
  std::printf("SQL as run:\n");
  std::string sql = log.sql;
  while (!sql.empty() && (sql.back() == '\n' || sql.back() == ' ')) sql.pop_back();
  size_t start = 0;
  while (start <= sql.size()) {
    size_t end = sql.find('\n', start);
    if (end == std::string::npos) end = sql.size();
    std::printf("  %s\n", sql.substr(start, end - start).c_str());
    start = end + 1;
  }
  const std::string profile = FormatProfile(log.profile);
  if (!profile.empty()) {
    std::printf("DuckDB profile (operator, time, rows out):\n");
    size_t from = 0;
    while (from < profile.size()) {
      const size_t nl = profile.find('\n', from);
      std::printf("  %s\n", profile.substr(from, nl - from).c_str());
      from = nl + 1;
    }
  } else if (log.result == "computed") {
    std::printf("(no DuckDB profile: taken only for stages with a checkpoint)\n");
  }
}

int LogCommand(const LogCliOptions& o, const GlobalOptions& globals) {
  SpecOverrides overrides;
  overrides.profile = o.profile;
  overrides.params = o.params;
  Result<PipelineSpec> spec = ParsePipelineFile(o.file, overrides);
  if (!spec.ok()) return Fail(spec.status(), Phase::kConfig);
  const std::string url = EffectiveStoreUrl(*spec, o.store);
  Result<OpenedStore> store = OpenStoreForCli(url, globals, /*read_only=*/true);
  if (store.status().IsNotFound()) {
    return Fail(
        NotFound("store " + url + " does not exist yet: run the pipeline first (respawn run " +
                 o.file + ")"),
        Phase::kOperation);
  }
  if (!store.ok()) return Fail(store.status(), Phase::kConfig);
  Result<StageLog> log = FindStageLog(*spec, *store->store, o.stage);
  if (!log.ok()) {
    return Fail(log.status(), log.status().code() == StatusCode::kInvalidArgument
                                  ? Phase::kConfig
                                  : Phase::kOperation);
  }
  if (globals.json) {
    std::printf("%s\n", EncodeStageLog(*log).dump().c_str());
  } else {
    PrintLog(*log);
  }
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

void AddLogCommand(CLI::App& app, const GlobalOptions& globals, CommandFn* run) {
  auto o = std::make_shared<LogCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "log",
      "Show a stage's last computation: the SQL as run, timings, rows, its error, and "
      "DuckDB's query profile");
  cmd->add_option("pipeline", o->file, "The pipeline TOML file")->required();
  cmd->add_option("stage", o->stage, "A stage (or generated source)")->required();
  cmd->add_option("--store", o->store, "Store URL (default: as for run)");
  cmd->add_option("--profile", o->profile, "Apply [profiles.NAME] of the pipeline file");
  cmd->add_option("--param", o->params, "name=value: override a param (as for run)");
  cmd->callback([o, &globals, run] { *run = [o, &globals] { return LogCommand(*o, globals); }; });
}

}  // namespace respawn::cli
