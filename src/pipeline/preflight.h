// Checks of a pipeline's local files that need no store and no DuckDB, made before a run starts
// so that a mistake costs nothing: today, that every local output can be written.
#pragma once

#include "pipeline/spec.h"
#include "util/status.h"

namespace respawn {

/// InvalidArgument naming the output, its line and the fix when a local output (not a store
/// URL) cannot be written where it is declared: its path is a folder, a file stands where a
/// folder of the path would be created, or the nearest existing folder is not writable (by
/// this user, or a read-only file system). Folders that do not exist yet are fine: the run
/// creates them.
Status CheckLocalOutputsWritable(const PipelineSpec& spec);

}  // namespace respawn
