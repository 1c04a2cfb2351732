// The ledger: respawn's commit protocol. It records, durably and atomically, which immutable
// data objects make up the committed value of each name (a stage output, a partition, a stream
// checkpoint), on any Store: local disk, NFS/EFS, S3-compatible object stores, Swift.
//
// ============================================================================================
// Protocol (implements "Invariants of the commit protocol" in /work/shared/DESIGN.md)
// ============================================================================================
//
// Layout under a namespace <ns> of a Store (every object below is framed with the XXH3 of its
// body, see record.h):
//
//   <ns>/data/<stage>/<fingerprint>/<attempt>/...   data objects (immutable, unique per attempt)
//   <ns>/ledger/rec/<20-digit sequence>.json        commit records 1, 2, 3, ... (immutable)
//   <ns>/ledger/snap/<20-digit sequence>.json       full state as of that sequence (derived)
//   <ns>/ledger/head.json                           hint: latest sequence + snapshot (may be stale)
//   <ns>/ledger/floor.json                          oldest snapshot GC keeps (written before GC)
//   <ns>/ledger/lease.json                          writer lease (lease mode only)
//
// 1. Data before commit. The caller writes data objects first (PutData/PutDataFile) under
//    NewAttemptPrefix(stage, fingerprint), which includes a random attempt id: no two attempts
//    can produce the same key, nothing is overwritten or renamed. The commit names each object
//    with its size and XXH3.
//
// 2. One atomic step publishes. The state is the replay of records 1..N. A writer that has
//    replayed up to N commits by creating record N+1 with ONE put-if-absent. Winning means the
//    commit is durable and ordered. Losing (AlreadyExists) means another writer committed N+1:
//    the writer reads forward, checks it is not fenced and that nobody changed the names it is
//    changing (same name, different fingerprint => Aborted), then retries at the new end.
//    Because a writer can only create the record right after the last one it has read, every
//    record is written by someone who saw all records before it; each record also carries the
//    checksum of its predecessor ("prev"), so a record overwritten outside the protocol breaks
//    the chain visibly (DataLoss) instead of silently.
//    An ambiguous put (timeout: did it land?) is retried with the same bytes; AlreadyExists is
//    then resolved by reading the record back and comparing bytes.
//    After publishing, the committer may write a snapshot (every `compaction_interval` records)
//    and then overwrites head.json. Neither is needed for correctness: a crash between them
//    only makes the next recovery read a few more records.
//
// 3. Recovery never depends on LIST. Recover: (a) read head.json (a lower bound, maybe stale or
//    missing) and floor.json; (b) load the newest snapshot among those they name, verifying its
//    checksum (a missing or corrupt one falls back to the next candidate, then to sequence 0);
//    (c) confirm the hint's sequence by HEAD of that record key; (d) find the true end by
//    galloping forward with HEAD probes (+1, +2, +4, ... until one is missing) and binary search
//    between the last found and the first missing -- records exist as a gap-free run above the
//    GC floor, so this is exact; (e) GET and verify the records after the snapshot (in parallel)
//    and replay them in order. Recovery reads O(compaction_interval + staleness of the hint)
//    objects. A LIST of snap/ is used only when head.json is missing, and only as a source of
//    candidate snapshots that are then verified by GET; a lagging listing costs speed, never
//    correctness. If record 1 is missing and no snapshot can be found although a hint, the
//    floor or a listing says records exist, recovery fails (FailedPrecondition) instead of
//    starting a new chain over old data.
//    Deviation from the first design: snapshots are not aligned to multiples of K (a committer
//    that crashed before writing one would leave a hole), so without head.json they cannot be
//    found by probing; floor.json and the listing hint cover that case, and in the worst case
//    recovery replays every record from the floor (correct, slower), then writes a snapshot.
//
// 4. Stale writers are fenced. Open() in write mode claims epoch E = (highest epoch in the
//    chain) + 1 by committing a claim record. Every record carries its writer's epoch and the
//    writer whose claim it acts under. Replay ignores a record whose epoch is below the highest
//    claimed so far (a zombie's late write), a claim that does not raise the epoch, and a commit
//    under a claim that is not the winning one (record.h, ApplyRecord). A writer that reads a
//    higher claim is fenced: every later Commit returns
//      FailedPrecondition("fenced: a newer writer (epoch N, id ...) took over ...").
//    With put-if-absent a zombie cannot even append (its next record number is taken by the
//    claim it has not read); the replay rule is the second line of defence.
//    Join mode: processes of ONE run (e.g. workers committing partitions of one stage) may open
//    the ledger with LedgerMode::kJoin: they adopt the current epoch instead of claiming a new
//    one, and commit concurrently with its claimer; a newer claim fences them all.
//
// 5. Everything read back is verified: record/snapshot/head checksums on every read (DataLoss
//    naming the key), data objects' size and XXH3 on GetData/GetDataToFile/VerifyData.
//
// 6. Garbage is defined by references. ReferencedKeys() returns the data keys named by the live
//    state (and, if asked, by every retained snapshot and record); CollectObsolete() moves the
//    GC floor and returns the ledger keys (records, snapshots) below it. Deleting data objects
//    that no retained commit names -- and orphans of failed attempts, after a grace period --
//    is the GC layer's job.
//
// 7. Lease mode, for stores without put-if-absent (capabilities().put_if_absent == false, e.g.
//    Swift; or LedgerOptions::force_lease). One writer at a time holds <ns>/ledger/lease.json
//    {holder, nonce, run, epoch, expires_at}:
//      acquire: GET the lease; if another holder's is live, wait (lease_wait) or fail with
//               FailedPrecondition naming it; else PUT ours, wait `settle`, GET it back and
//               hold it only if it still carries our nonce;
//      commit:  before each publish GET the lease (still ours? else fenced), renew it when less
//               than half the TTL remains; then HEAD record N+1 (exists => someone committed:
//               read forward), plain PUT it, GET it back and compare bytes;
//      release: Close() deletes the lease if it is still ours and live.
//    This is safe only under assumptions that put-if-absent does not need, stated honestly:
//      - clocks of all writers differ by less than lease_max_clock_skew (expiry is wall-clock);
//      - a writer is never paused (GC, swap, VM freeze) for longer than the settle time between
//        reading the lease and writing its own, nor for longer than the TTL minus the skew
//        between its lease check and its record PUT;
//      - the store's GET of a key after a PUT of that key returns the new bytes (true for Swift
//        objects when no replica is down; a partition can violate it).
//    If an assumption breaks, two writers can overwrite the same record; the "prev" chain
//    checksum then turns the damage into DataLoss on the next recovery rather than wrong data.
//    `respawn doctor` reports lease mode (DESIGN.md invariant 7).
//
// Crash points (util/crash_point.h), in protocol order:
//   ledger:before-data, ledger:after-data            PutData / PutDataFile
//   ledger:lease-acquired                            lease mode, Open
//   ledger:before-claim, ledger:after-claim          Open: the epoch claim record
//   ledger:before-lease-renew, ledger:after-lease-renew
//   ledger:before-publish, ledger:after-publish      the record put (claims and commits)
//   ledger:before-snapshot, ledger:after-snapshot    compaction
//   ledger:before-head, ledger:after-head            the head hint
//   ledger:before-floor, ledger:after-floor          CollectObsolete
// A crash at any of them leaves the ledger at the state before or after the commit.
//
// Thread-safety: a Ledger is safe for concurrent use. Commits of one Ledger are serialized
// (one publish in flight); readers (state(), Find()) never wait for store I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/data.h"
#include "ledger/lease.h"
#include "ledger/record.h"
#include "storage/store.h"
#include "util/retry.h"

namespace respawn::ledger {

enum class LedgerMode {
  kWrite,     // claim a new epoch: fences every earlier writer
  kJoin,      // adopt the current epoch (processes of the same run); needs put-if-absent
  kReadOnly,  // recover and Refresh only; Commit is FailedPrecondition
};

struct LedgerOptions {
  LedgerMode mode = LedgerMode::kWrite;
  std::string run_id;                 // "" = a random id (kJoin: must match the claimer's if set)
  uint64_t compaction_interval = 64;  // write a snapshot once this many records follow the last
  int max_commit_attempts = 64;       // publish races lost before Commit gives up (Aborted)
  RetryPolicy retry;                  // transient store errors, per store call
  bool list_hints = true;             // may LIST (as a hint only) when head.json is missing
  size_t read_parallelism = 16;       // records fetched at once during recovery
  bool force_lease = false;           // use the lease even if the store can put-if-absent
  LeaseOptions lease;
};

struct CommitOptions {
  /// The sequence the caller's decision was based on (from sequence() or an Entry). Changes to
  /// the same names committed after it by others are conflicts (Aborted). Default: this
  /// Ledger's sequence when Commit is called.
  std::optional<uint64_t> base_sequence;
};

/// What the last recovery read (tests and `respawn doctor` use it).
struct RecoveryStats {
  bool head_hint_used = false;
  bool list_used = false;
  uint64_t snapshot_sequence = 0;  // 0 = replayed from the beginning
  uint64_t latest_sequence = 0;
  uint64_t records_read = 0;
  uint64_t probes = 0;  // HEAD requests of record keys
  uint64_t ignored_records = 0;
};

/// Ledger keys below the GC floor: safe to delete once CollectObsolete returned them.
struct LedgerGarbage {
  uint64_t floor = 0;  // sequence of the oldest snapshot kept
  std::vector<std::string> keys;
};

class Ledger {
 public:
  /// Recovers the ledger under `ns` ("" or "a/b") of `store`; in write mode also takes the
  /// lease (lease mode) and claims a new epoch, fencing every earlier writer.
  /// Errors: DataLoss (a record or snapshot that must be read fails verification),
  /// FailedPrecondition (lease held by another live writer; kJoin with no or another run's
  /// epoch), Unavailable (store errors after retries), InvalidArgument (bad ns/options).
  static Result<std::unique_ptr<Ledger>> Open(std::shared_ptr<Store> store, std::string ns,
                                              LedgerOptions options = {});

  /// Releases the lease (best effort) if Close() was not called.
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  /// Publishes `changes` as one record and returns its sequence. Re-reads and retries by itself
  /// when other writers commit concurrently, as long as they did not change the same names.
  /// Errors: Aborted (conflict on a name, or too many lost races: re-read and decide again),
  /// FailedPrecondition (fenced by a newer writer, lease lost, closed, read-only: stop),
  /// InvalidArgument (bad changes), Unavailable (store down; the commit may or may not have
  /// landed: Refresh() to find out).
  Result<uint64_t> Commit(const Changes& changes, const CommitOptions& options = {});

  /// Reads records committed by others since the last read.
  Status Refresh();

  /// Refresh(), then the fenced error (FailedPrecondition, StatusDetail::kFenced) if a newer
  /// writer took over. A writer calls it right before an effect outside the ledger (publishing
  /// an output file), so a zombie does not overwrite what the newer run published. OK for
  /// read-only ledgers.
  Status CheckNotFenced();

  // Current view (as of sequence()). Cheap; never does I/O.
  LedgerState state() const;
  std::optional<Entry> Find(std::string_view name) const;
  uint64_t sequence() const;

  uint64_t epoch() const;  // this writer's epoch (0 read-only)
  const std::string& writer_id() const { return writer_id_; }
  const std::string& run_id() const { return run_id_; }
  const std::string& ns() const { return keys_.ns(); }
  const Keys& keys() const { return keys_; }
  bool lease_mode() const { return lease_mode_; }
  Store& store() const { return *store_; }
  RecoveryStats last_recovery() const;

  /// "<ns>/data/<stage>/<fingerprint>/<random attempt id>/": a fresh prefix on every call.
  /// `stage` may contain '/' (partitions); neither may be empty or contain empty, "." or ".."
  /// segments, and `fingerprint` may not contain '/'.
  Result<std::string> NewAttemptPrefix(std::string_view stage, std::string_view fingerprint) const;
  /// NewAttemptPrefix(stage, fingerprint) + file: the key of a single-object attempt.
  Result<std::string> DataKey(std::string_view stage, std::string_view fingerprint,
                              std::string_view file = "data") const;

  // Data objects in this ledger's store (data.h), with this ledger's retry policy.
  Result<DataObject> PutData(std::string_view key, std::string_view data);
  Result<DataObject> PutDataFile(std::string_view key, const std::string& path);
  Result<std::string> GetData(const DataObject& object);
  Status GetDataToFile(const DataObject& object, const std::string& path);
  Status VerifyData(const Entry& entry, bool checksum = true);

  /// Sorted, unique data keys named by the current state; with `include_history`, also those
  /// named by every retained snapshot and record (from the GC floor up to sequence()).
  /// GC must also spare objects younger than a grace period: an in-flight attempt's data is
  /// not referenced until its commit lands.
  Result<std::vector<std::string>> ReferencedKeys(bool include_history = false);

  /// Moves the GC floor to the `keep_snapshots`-th newest readable snapshot (writing floor.json
  /// first) and returns the records and snapshots below it. Uses LIST to enumerate them (a
  /// lagging listing only leaves garbage for next time). Writers only; keep_snapshots >= 1.
  Result<LedgerGarbage> CollectObsolete(size_t keep_snapshots = 2);

  /// Stops committing and releases the lease. Further Commits are FailedPrecondition.
  Status Close();

 private:
  Ledger(std::shared_ptr<Store> store, std::string ns, LedgerOptions options);

  // All REQUIRES commit_mu_ held.
  Status Recover();
  Status ReadForward();
  /// Refuses (FailedPrecondition, kLedgerDamaged) when `*latest`, the end recovery found, is
  /// below what floor.json, head.json or (without a head) a listing of records proves existed.
  /// May raise `*latest` when another writer committed meanwhile.
  Status CheckEndIsProven(uint64_t* latest, const std::optional<HeadHint>& head,
                          const std::optional<Floor>& floor);
  Status ClaimEpoch();
  Status JoinEpoch();
  Status CheckFenced();
  Status CheckConflicts(const Changes& changes, uint64_t base) const;
  /// Creates record r.sequence; OK if ours landed, AlreadyExists if another writer's did.
  Status Publish(const Record& record);
  Status PublishIfAbsent(const std::string& key, const std::string& bytes);
  Status PublishUnderLease(const std::string& key, const std::string& bytes);
  void AfterPublish();
  Status WriteSnapshot();
  Status WriteHead();
  Record NewRecord(RecordKind kind, const Changes& changes) const;
  /// Applies a verified record at sequence_+1 (chain check included).
  Status ApplyLocked(const Record& record, const std::string& checksum);
  /// Highest existing record >= `known` (which exists, or is 0 / a snapshot's sequence).
  Result<uint64_t> ProbeLatest(uint64_t known);
  Result<bool> RecordExists(uint64_t sequence);
  /// Reads, verifies and applies records (sequence_, last], in parallel fetches.
  Status ReadAndApply(uint64_t last);
  Result<std::optional<std::string>> GetOptional(const std::string& key);
  Result<std::optional<HeadHint>> ReadHead();
  Result<std::optional<Floor>> ReadFloor();
  /// NotFound if absent; DataLoss if corrupt.
  Result<Snapshot> ReadSnapshot(uint64_t sequence);
  Result<std::vector<uint64_t>> ListSequences(const std::string& prefix, bool snapshots);
  std::string Where() const;  // "<store url>/<ns>" for messages

  std::shared_ptr<Store> store_;
  Keys keys_;
  LedgerOptions options_;
  std::string writer_id_;
  std::string run_id_;
  bool lease_mode_ = false;
  std::unique_ptr<LeaseHolder> lease_;  // lease mode, write mode only

  std::mutex commit_mu_;  // serializes store-mutating operations and replay
  mutable std::mutex mu_;
  // Invariant: state_ is the replay of records 1..sequence_; last_checksum_ is the body checksum
  // of record sequence_ ("" when sequence_ == 0).
  LedgerState state_;                           // GUARDED_BY(mu_)
  uint64_t sequence_ = 0;                       // GUARDED_BY(mu_)
  std::string last_checksum_;                   // GUARDED_BY(mu_)
  uint64_t snapshot_sequence_ = 0;              // newest snapshot known; GUARDED_BY(mu_)
  uint64_t start_sequence_ = 0;                 // sequence recovery started from; GUARDED_BY(mu_)
  std::map<std::string, uint64_t> removed_at_;  // name -> sequence of its removal; GUARDED_BY(mu_)
  uint64_t epoch_ = 0;                          // GUARDED_BY(mu_)
  std::string epoch_owner_;                     // GUARDED_BY(mu_)
  Status fenced_;                               // sticky; GUARDED_BY(mu_)
  bool closed_ = false;                         // GUARDED_BY(mu_)
  RecoveryStats recovery_;                      // GUARDED_BY(mu_)
};

}  // namespace respawn::ledger
