// Inspecting and repairing a damaged ledger: what `respawn verify` and `respawn repair` do.
//
// Every object of a ledger is verified on read (record.h), so damage never turns into wrong
// data; but a damaged or missing record above the GC floor stops recovery (DataLoss, or the
// proven-end check of Ledger::Open), and nothing could run again. Repair makes the chain
// readable again, giving up only what the damage already took:
//   - a damaged or missing record N is replaced by a void record (record.h, RecordKind::kVoid):
//     it changes no entry, carries the checksum N had (from record N+1's `prev`) so the chain
//     goes on, claims the epoch the records after it act under when N was that claim, and names
//     what N held as far as its bytes can still be read. Entries N committed are then absent
//     (or older) in the state, so the next run recomputes them; their data objects become
//     orphans for GC.
//   - a damaged snapshot is rebuilt exactly from an older readable base and the records up to
//     it; when those are gone (collected below the GC floor), a void snapshot with an empty
//     state takes its place (everything before it is recomputed);
//   - a damaged head.json or lease.json is deleted (a hint and a lock: both are made anew); a
//     damaged floor.json is rewritten to the lowest snapshot recovery can start from.
// Repair writes each fix with one put (or delete), in ascending order, so an interrupted repair
// can simply be run again. It does not fence running writers by itself: the caller opens the
// ledger in write mode afterwards (which claims a new epoch and proves recovery works).
//
// Both functions LIST the ledger prefix (they are on-demand scans, not the commit path).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ledger/record.h"
#include "storage/store.h"

namespace respawn::ledger {

struct LedgerDamage {
  enum class Kind { kMissing, kCorrupt };
  Kind kind = Kind::kCorrupt;
  std::string key;
  std::string object;     // "record", "snapshot", "head", "floor", "lease"
  uint64_t sequence = 0;  // records and snapshots
  std::string detail;     // the verification error
  /// Whether recovery needs the object (records above the floor; a snapshot nothing can stand
  /// in for); damage to the rest only costs speed or garbage.
  bool needed = true;
  /// Records: what the damaged record held, as far as its bytes can be read ("stage/x
  /// (fingerprint f)", "removed stage/y", "claim of epoch 3"), or one line saying it is
  /// unreadable. Snapshots replaced by a void one: the entries lost with it, when known.
  std::vector<std::string> held;
  /// What repair does about it, in words.
  std::string fix;
};

struct LedgerInspection {
  std::string ns;
  uint64_t floor = 0;         // floor.json's snapshot (0: none)
  uint64_t end = 0;           // last record that exists or is proven to have existed
  uint64_t records_read = 0;  // records checked (all existing ones, below the floor too)
  uint64_t snapshots_read = 0;
  std::vector<LedgerDamage> damage;  // ascending by key
  /// The state recovery would give after repair: damaged records read as voids.
  LedgerState state;
  bool ok() const { return damage.empty(); }
};

/// Reads and verifies every ledger object under `ns` (never writes). Store errors other than
/// a missing object fail the call; damage is reported, not returned as an error.
Result<LedgerInspection> InspectLedger(Store& store, const std::string& ns);

/// Applies the fixes InspectLedger describes (re-inspecting first, so a stale plan is never
/// applied). `writer` names the repairing process in the void records. Returns the inspection
/// it acted on.
Result<LedgerInspection> RepairLedger(Store& store, const std::string& ns,
                                      const std::string& writer);

}  // namespace respawn::ledger
