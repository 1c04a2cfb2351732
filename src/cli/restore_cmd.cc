// `respawn restore PIPELINE --run ID`: an earlier finished run's outputs written again from the
// checkpoints GC retains for it (pipeline/restore.h); `respawn ls PIPELINE --runs` lists them.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/common.h"
#include "ledger/coordinator.h"
#include "pipeline/restore.h"
#include "pipeline/spec.h"

namespace respawn::cli {
namespace {

struct RestoreCliOptions {
  std::string file;
  std::string store;
  std::string profile;
  std::vector<std::string> params;
  std::string run;
  std::vector<std::string> outputs;
  std::string to;
};

void PrintRestored(const RestoreCliOptions& o, const RestoreResult& r,
                   const GlobalOptions& globals) {
  if (globals.json) {
    nlohmann::json outputs = nlohmann::json::array();
    for (const RestoredOutput& out : r.outputs) {
      outputs.push_back({{"output", out.output},
                         {"stage", out.stage},
                         {"path", out.path},
                         {"rows", out.rows},
                         {"bytes", out.bytes}});
    }
    nlohmann::json j = {{"event", "restored"},
                        {"run_id", r.run_id},
                        {"finished_at", FormatIsoTime(r.finished_at_ms)},
                        {"outputs", outputs}};
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  if (globals.quiet) return;
  for (const RestoredOutput& out : r.outputs) {
    std::printf("restored output %s as after run %s (%s): %s rows from stage %s, %s to %s%s\n",
                out.output.c_str(), r.run_id.substr(0, 8).c_str(),
                FormatLocalTime(r.finished_at_ms).c_str(), Thousands(out.rows).c_str(),
                out.stage.c_str(), FormatBytes(out.bytes).c_str(), out.path.c_str(),
                o.to.empty() ? " (the output's own path: its file was replaced)" : "");
  }
  if (o.to.empty()) {
    std::printf("the ledger still records the newer files: `respawn run %s` writes them again\n",
                o.file.c_str());
  }
}

int RestoreCommand(const RestoreCliOptions& o, const GlobalOptions& globals) {
  SpecOverrides overrides;
  overrides.profile = o.profile;
  overrides.params = o.params;
  Result<PipelineSpec> spec = ParsePipelineFile(o.file, overrides);
  if (!spec.ok()) return Fail(spec.status(), Phase::kConfig);
  const std::string url = EffectiveStoreUrl(*spec, o.store);
  Result<OpenedStore> store = OpenStoreForCli(url, globals, /*read_only=*/true);
  if (store.status().IsNotFound()) {
    return Fail(NotFound("store " + Redact(url) + " does not exist yet: nothing to restore (run " +
                         "the pipeline first: respawn run " + o.file + ")"),
                Phase::kOperation);
  }
  if (!store.ok()) return Fail(store.status(), Phase::kConfig);
  RestoreOptions options;
  options.run = o.run;
  options.outputs = o.outputs;
  options.to = o.to;
  if (std::string c = EffectiveCoordinatorUrl(*spec); !c.empty()) {
    RegisterCoordinatorSecrets(c);
    Result<std::shared_ptr<ledger::CommitCoordinator>> opened = ledger::OpenCoordinator(c);
    if (opened.ok()) options.coordinator = *opened;
  }
  Result<RestoreResult> restored = RestoreOutputs(*spec, store->store, options);
  if (!restored.ok()) return Fail(restored.status(), Phase::kOperation);
  PrintRestored(o, *restored, globals);
  std::fflush(stdout);
  return kExitOk;
}

}  // namespace

void AddRestoreCommand(CLI::App& app, const GlobalOptions& globals, CommandFn* run) {
  auto o = std::make_shared<RestoreCliOptions>();
  CLI::App* cmd = app.add_subcommand(
      "restore", "Write outputs as they were after an earlier run (from its retained checkpoints)");
  cmd->add_option("pipeline", o->file, "The pipeline TOML file")->required();
  cmd->add_option("--run", o->run, "The run: its id or a prefix (`respawn ls PIPELINE --runs`)")
      ->required();
  cmd->add_option("--output", o->outputs, "An output to write (repeatable; default: every one)");
  cmd->add_option("--to", o->to,
                  "Write the (one) output here, a path or URL, instead of over its own file");
  cmd->add_option("--store", o->store, "Store URL (default: as for run)");
  cmd->add_option("--profile", o->profile, "Apply [profiles.NAME] of the pipeline file");
  cmd->add_option("--param", o->params, "name=value: override a param (as for run)");
  cmd->footer(
      "Without --to, each output's file is replaced atomically; the ledger is not changed, so the "
      "next `respawn run` sees the file is not the one it wrote and writes it again. Runs whose "
      "results GC dropped ([gc] keep_runs) cannot be restored. Exit status: 0 written, 1 the "
      "run's results or data objects are gone or do not verify, 2 unknown run, output or bad "
      "configuration.");
  cmd->callback(
      [o, &globals, run] { *run = [o, &globals] { return RestoreCommand(*o, globals); }; });
}

}  // namespace respawn::cli
