// The ledger's data model and its on-store encoding: entries, changes, commit records,
// snapshots, the head hint, the GC floor and the lease. ledger.h describes the protocol that
// uses them; this file only says what the objects look like and how they are verified.
//
// Every ledger object is one JSON document framed with a checksum of its body's exact bytes:
//
//   {"xxh3":"<16 hex digits>","body":<body JSON>}\n
//
// The checksum covers the body bytes as written (not a re-serialization), so a newer JSON
// library that formats numbers differently can still verify old objects. A mismatch, a bad frame
// or a body that does not parse is DataLoss naming the key.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace respawn::ledger {

/// Version of the record/snapshot body format written by this code. Bodies with a higher
/// version are FailedPrecondition ("upgrade respawn"), never guessed at.
inline constexpr int kFormatVersion = 1;

/// One immutable data object named by a commit: its key in the same Store, its size and the
/// XXH3-64 of its bytes. Restores check both (invariant 5).
struct DataObject {
  std::string key;
  uint64_t size = 0;
  uint64_t xxh3 = 0;
  friend bool operator==(const DataObject&, const DataObject&) = default;
};

/// The committed value of one name (a stage output, a partition, a stream checkpoint).
struct Entry {
  // Given by the committer.
  std::string fingerprint;
  std::vector<DataObject> objects;
  nlohmann::json meta = nlohmann::json::object();  // rows, bytes, offsets, anything JSON

  // Filled in by the ledger from the record that committed this value.
  uint64_t sequence = 0;
  uint64_t epoch = 0;
  int64_t committed_at_ms = 0;  // Unix epoch milliseconds, the committer's clock
  std::string run_id;
  std::string writer;

  friend bool operator==(const Entry&, const Entry&) = default;
};

/// What one commit changes. A name may not be both upserted and removed.
struct Changes {
  std::map<std::string, Entry> upserts;  // only fingerprint/objects/meta are read
  std::set<std::string> removals;
  bool empty() const { return upserts.empty() && removals.empty(); }
};

/// kVoid stands in for a record that was damaged or lost (written by `respawn repair`): it
/// changes no entry, keeps the chain going (`chain`) and, when the records after it act under
/// an epoch the lost record claimed, claims that epoch in its place.
enum class RecordKind { kClaim, kCommit, kVoid };

/// One commit record: "<ns>/ledger/rec/<20-digit sequence>.json", published by one
/// put-if-absent (or, on stores without it, under the lease; see ledger.h).
struct Record {
  uint64_t sequence = 0;
  RecordKind kind = RecordKind::kCommit;
  uint64_t epoch = 0;       // the writer's epoch; a claim raises the ledger's epoch to this
  std::string writer;       // "<host>/<pid>/<random>", unique per Ledger::Open
  std::string epoch_owner;  // writer whose claim of `epoch` this writer acts under (itself,
                            // or the claimer it joined)
  std::string run_id;       // the run (job) the writer belongs to
  std::string commit_id;    // random, unique per publish attempt (ours vs. theirs)
  int64_t committed_at_ms = 0;
  std::string prev;  // body checksum of record sequence-1; "" for sequence 1
  Changes changes;   // empty for claims and voids
  /// Claims: how the claimer publishes records ("put-if-absent", "coordinator",
  /// "single-writer"; ledger.h, "Commit modes"). "" in claims written before modes were
  /// recorded, and in commits.
  std::string commit_mode;
  // kVoid only: the body checksum the replaced record had ("" if unknown), which the next
  // record's `prev` names; and what the replaced record held, as far as it could be read.
  std::string chain;
  std::vector<std::string> lost;
};

/// What replaying the chain computes.
struct LedgerState {
  std::map<std::string, Entry> entries;
  uint64_t max_epoch = 0;       // highest epoch claimed so far
  std::string epoch_writer;     // writer that claimed max_epoch
  std::string epoch_run_id;     // its run id
  uint64_t epoch_sequence = 0;  // sequence of that claim
  /// The ledger's commit mode: the one named by the first applied claim that names one ("" for
  /// a ledger whose claims predate recorded modes). Writers in another mode refuse to open it.
  std::string commit_mode;
  friend bool operator==(const LedgerState&, const LedgerState&) = default;
};

/// Full state as of `sequence` ("<ns>/ledger/snap/<20-digit sequence>.json"). Derived data:
/// anyone can rebuild it from the records, so a plain (overwriting) put is fine.
struct Snapshot {
  uint64_t sequence = 0;
  std::string record_checksum;  // body checksum of record `sequence` (links the chain onward)
  LedgerState state;
};

/// "<ns>/ledger/head.json": a lower bound for recovery, nothing more. May be stale or missing.
struct HeadHint {
  uint64_t sequence = 0;
  uint64_t snapshot_sequence = 0;  // 0 = no snapshot known
  uint64_t epoch = 0;
  std::string writer;
  int64_t written_at_ms = 0;
};

/// "<ns>/ledger/floor.json": the oldest snapshot GC keeps. Written before GC deletes anything
/// older, so recovery without a head hint still has a snapshot to start from.
struct Floor {
  uint64_t snapshot_sequence = 0;
  int64_t written_at_ms = 0;
};

/// "<ns>/ledger/lease.json": the exclusive writer lease on stores without put-if-absent.
struct Lease {
  std::string holder;  // writer id
  std::string nonce;   // random per acquisition: tells our write from a rewrite by another
  std::string run_id;
  uint64_t epoch = 0;
  int64_t acquired_at_ms = 0;
  int64_t expires_at_ms = 0;
  int64_t ttl_ms = 0;
};

/// What a data key "<ns>/data/<stage>/<fingerprint>/<attempt>/<file>" says (Keys::ParseDataKey).
struct DataKeyParts {
  std::string stage;  // may contain '/' (partitions: "x/p0007")
  std::string fingerprint;
  std::string attempt;
  std::string file;
  /// The run that wrote the object: `file` up to its first '.' (Ledger::RunDataKey names the
  /// file "<run id><extension>").
  std::string run_id;
};

/// Key layout under a namespace ("" or "a/b", no leading/trailing '/').
class Keys {
 public:
  explicit Keys(std::string ns);
  const std::string& ns() const { return ns_; }
  std::string Record(uint64_t sequence) const;
  std::string Snapshot(uint64_t sequence) const;
  std::string RecordPrefix() const;    // "<ns>/ledger/rec/"
  std::string SnapshotPrefix() const;  // "<ns>/ledger/snap/"
  std::string LedgerPrefix() const;    // "<ns>/ledger/"
  std::string DataPrefix() const;      // "<ns>/data/"
  std::string Head() const;
  std::string Floor() const;
  std::string Lease() const;
  /// The sequence in a record or snapshot key under this namespace, or 0 if `key` is not one.
  uint64_t SequenceOfRecord(std::string_view key) const;
  uint64_t SequenceOfSnapshot(std::string_view key) const;
  /// The parts of a data key under this namespace whose file name is one segment (as
  /// Ledger::DataKey and RunDataKey write them); nullopt when `key` is not one.
  std::optional<DataKeyParts> ParseDataKey(std::string_view key) const;

 private:
  std::string base_;  // ns + "/" or ""
  std::string ns_;
};

/// 20 zero-padded decimal digits: keys sort in sequence order.
std::string SequenceName(uint64_t sequence);

/// Frames a body; the returned checksum is the body checksum stored in the frame.
std::string Frame(std::string_view body, std::string* checksum = nullptr);
/// Verifies the frame of `bytes` read from `key` and returns the body (a view into `bytes`).
Result<std::string_view> Unframe(std::string_view key, std::string_view bytes,
                                 std::string* checksum = nullptr);

// Encoders: InvalidArgument if a caller-provided string is not UTF-8 (JSON needs it).
Result<std::string> EncodeRecord(const Record& record, std::string* body_checksum = nullptr);
Result<std::string> EncodeSnapshot(const Snapshot& snapshot);
Result<std::string> EncodeHead(const HeadHint& head);
Result<std::string> EncodeFloor(const Floor& floor);
Result<std::string> EncodeLease(const Lease& lease);

// Decoders verify the frame. `key` is only used in messages (and, for records and snapshots,
// the sequence inside must match the one the caller expects).
Result<Record> DecodeRecord(std::string_view key, uint64_t expected_sequence,
                            std::string_view bytes, std::string* body_checksum = nullptr);
Result<Snapshot> DecodeSnapshot(std::string_view key, uint64_t expected_sequence,
                                std::string_view bytes);
Result<HeadHint> DecodeHead(std::string_view key, std::string_view bytes);
Result<Floor> DecodeFloor(std::string_view key, std::string_view bytes);
Result<Lease> DecodeLease(std::string_view key, std::string_view bytes);

/// Applies one record to `state` (the replay rule, shared by recovery and by the committer):
/// - a record whose epoch is lower than state.max_epoch is a zombie's late write: ignored;
/// - a claim must raise the epoch strictly, else it is ignored (a lost claim race that slipped
///   in without put-if-absent); an applied claim sets state.commit_mode if it is still "";
/// - a commit whose epoch nobody claimed (higher than max_epoch), or that acts under a claim of
///   the current epoch other than the one that won (epoch_owner != state.epoch_writer), is
///   ignored;
/// - otherwise upserts replace entries (stamped with the record's sequence, epoch, time, run,
///   writer) and removals erase them;
/// - a void changes no entry; if its epoch is above max_epoch it claims it for its epoch_owner
///   (the lost record was that claim).
/// Returns whether the record was applied.
bool ApplyRecord(const Record& record, LedgerState& state);

}  // namespace respawn::ledger
