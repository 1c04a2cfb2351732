// Which pipeline file owns a pipeline's namespace ("pipelines/<name>") in a store.
//
// Two pipeline files with one `name` (a dev and a prod copy, say) would share the namespace:
// each would reuse the other's checkpoints where fingerprints match, and each run's GC would
// delete the other's results. So the first run under a namespace records its file in the ledger
// entry "owner" (the file's canonical path and a random owner id); a run or GC from another file
// under the same name is refused before it claims the ledger, with the ways out: give the file
// another `name`, use another store, or, when it is the same pipeline moved or copied, run it
// once with `--adopt` (RunOptions::adopt), which records the new file as the owner. A namespace
// written before owners existed gets one at its next run.
//
// A file's identity is its canonical path: a pipeline respawned on another machine must run the
// file at the same path (a container image, a checkout in a fixed place), or adopt it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ledger/record.h"
#include "pipeline/schema.h"  // kOwnerEntry, OwnerMeta
#include "pipeline/spec.h"
#include "util/status.h"

namespace respawn {

struct PipelineOwner {
  std::string path;      // canonical path of the owning pipeline file
  std::string id;        // random, new each time the owner is recorded
  int64_t since_ms = 0;  // when it was recorded (committer's clock)
  std::string run_id;    // the run that recorded it
};

/// What identifies `spec`'s file: PipelineSpec::path, or for a spec parsed from a string, its
/// display name joined to its base_dir.
std::string PipelineFileIdentity(const PipelineSpec& spec);

/// The recorded owner; nullopt when the namespace has none (or the entry is unreadable).
std::optional<PipelineOwner> FindPipelineOwner(const ledger::LedgerState& state);

/// OK when the namespace has no owner or `spec`'s file owns it. Otherwise InvalidArgument
/// naming both files and how to proceed; `command` ("run", "gc") is what was refused.
Status CheckPipelineOwner(const PipelineSpec& spec, const ledger::LedgerState& state,
                          std::string_view store_url, std::string_view command);

/// The "owner" entry recording `spec`'s file, with a new random id.
ledger::Entry NewOwnerEntry(const PipelineSpec& spec);

}  // namespace respawn
