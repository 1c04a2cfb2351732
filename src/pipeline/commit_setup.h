// How the commands of a pipeline commit to its ledger where the store cannot put-if-absent.
#pragma once

#include <memory>

#include "ledger/coordinator.h"

namespace respawn {

/// How the pipeline's ledger commits where the store cannot put-if-absent (ledger/ledger.h,
/// "Commit modes"); passed to every ledger a command opens. On a store with put-if-absent
/// neither is used.
struct CommitSetup {
  /// The commit coordinator (`coordinator = ...` / RESPAWN_COORDINATOR, opened by the caller);
  /// null: none. Read-only commands given one read the records from it.
  std::shared_ptr<ledger::CommitCoordinator> coordinator;
  /// `--single-writer`: without put-if-absent and without a coordinator, commit under the
  /// best-effort writer lease (not safe against a paused process). Without it, such a store
  /// is refused (FailedPrecondition).
  bool single_writer = false;
};

}  // namespace respawn
