#include "pipeline/owner.h"

#include <filesystem>

#include "ledger/data.h"

namespace respawn {

std::string PipelineFileIdentity(const PipelineSpec& spec) {
  if (!spec.path.empty()) return spec.path;
  return (std::filesystem::path(spec.base_dir) / spec.display_name).lexically_normal().string();
}

std::optional<PipelineOwner> FindPipelineOwner(const ledger::LedgerState& state) {
  auto it = state.entries.find(std::string(kOwnerEntry));
  if (it == state.entries.end()) return std::nullopt;
  Result<OwnerMeta> meta = DecodeOwnerMeta(it->second.meta, kOwnerEntry);
  if (!meta.ok() || meta->path.empty()) return std::nullopt;
  PipelineOwner owner;
  owner.path = meta->path;
  owner.id = meta->id;
  owner.since_ms = it->second.committed_at_ms;
  owner.run_id = it->second.run_id;
  return owner;
}

Status CheckPipelineOwner(const PipelineSpec& spec, const ledger::LedgerState& state,
                          std::string_view store_url, std::string_view command) {
  std::optional<PipelineOwner> owner = FindPipelineOwner(state);
  const std::string self = PipelineFileIdentity(spec);
  if (!owner || owner->path == self) return Status::OK();
  const std::string quoted_name = "\"" + spec.name + "\"";
  return InvalidArgument(
      "pipeline " + quoted_name + " in store " + std::string(store_url) + " belongs to " +
      owner->path + " (owner id " + owner->id.substr(0, 8) + "), not to " + self +
      ": two files with one name would share checkpoints, and each run's garbage collection "
      "would delete the other's results, so `respawn " +
      std::string(command) +
      "` from this file is refused and nothing was changed. Give this file another `name`, or "
      "use another store (--store); if it is the same pipeline moved or copied here, run "
      "`respawn run " +
      (spec.path.empty() ? spec.display_name : spec.path) +
      " --adopt` once to make this file the owner");
}

ledger::Entry NewOwnerEntry(const PipelineSpec& spec) {
  ledger::Entry entry;
  entry.fingerprint = "owner";
  entry.meta = EncodeOwnerMeta({PipelineFileIdentity(spec), ledger::NewRandomId()});
  return entry;
}

}  // namespace respawn
