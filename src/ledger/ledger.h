// The ledger: respawn's commit protocol. It records, durably and atomically, which immutable
// data objects make up the committed value of each name (a stage output, a partition, a stream
// checkpoint), on any Store: local disk, NFS/EFS, S3-compatible object stores, Swift.
//
// ============================================================================================
// Protocol
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
//   <ns>/ledger/lease.json                          writer lease (single-writer mode only)
//
// 1. Data before commit. The caller writes data objects first (PutData/PutDataFile) under
//    NewAttemptPrefix(stage, fingerprint), which includes a random attempt id: no two attempts
//    can produce the same key, nothing is overwritten or renamed. The commit names each object
//    with its size and XXH3.
//
// 2. One atomic step publishes. The state is the replay of records 1..N. A writer that has
//    replayed up to N commits by creating record N+1 with ONE put-if-absent (or one coordinator
//    insert, 8). Winning means the
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
//    and then overwrites head.json (every `head_interval` records, after a snapshot or a claim,
//    and at Close). Neither is needed for correctness: a crash between them, or a hint a few
//    records behind, only makes the next recovery read or probe a few more records.
//    Group commit: concurrent Commit calls queue; the first publishes the changes of those
//    queued behind it (names disjoint, each checked for conflicts on its own) in one record,
//    and every caller gets that record's sequence, or its own error (LevelDB's writer queue).
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
//    With put-if-absent (or the coordinator) a zombie cannot even append (its next record
//    number is taken by the claim it has not read); the replay rule is the second line of
//    defence.
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
// 7. Commit modes. Step 2's "create record N+1 if absent" needs one linearizable step; where it
//    comes from is the ledger's commit mode, chosen at Open (ChooseCommitMode) and recorded in
//    the ledger:
//    put-if-absent  The store's own conditional create (POSIX link()/O_EXCL, S3 If-None-Match:
//                   *). Used whenever the store has it (a coordinator is then not used).
//    coordinator    For stores without it (Swift's s3api answers 501): a database row
//                   (coordinator.h; PostgreSQL: INSERT ... ON CONFLICT DO NOTHING on a primary
//                   key (namespace, sequence)) is the record. Below.
//    single-writer  No linearizable step at all: the writer lease (lease.h), only when the
//                   caller opts in (LedgerOptions::single_writer, `--single-writer`). Below.
//    Without put-if-absent, a coordinator or the opt-in, Open refuses to write
//    (FailedPrecondition naming both ways out). A store that cannot tell whether it has
//    put-if-absent (a failed S3 probe) fails Open with the probe's error: no guessing.
//    Recorded: every claim record names its writer's mode (Record::commit_mode); replay keeps
//    the first one as LedgerState::commit_mode (so snapshots carry it). A writer whose mode
//    differs refuses at Open (FailedPrecondition naming both modes and the fix) -- mixing modes
//    would let two writers overwrite each other's records. Ledgers whose claims predate
//    recorded modes adopt the mode of their next writer. (Two writers of different modes
//    opening one brand-new ledger at the same instant are not caught before their first
//    records; only a misconfiguration, and the later of the two refuses at its next Open.)
//
// 8. Coordinator mode. The coordinator's rows are the authoritative records; the store keeps a
//    copy of each ("mirror") at the usual record key, so everything that reads the store alone
//    (read-only tools, GC listings, a ledger opened without the coordinator) keeps working.
//      publish: the record's bytes are inserted into the coordinator under (namespace,
//               N+1); zero rows inserted = another writer's record (AlreadyExists). An
//               ambiguous answer (the connection broke during the insert) is retried with the
//               same bytes, and a conflict then is resolved by reading the row back and
//               comparing bytes, as for put-if-absent. The winner then writes the mirror with a
//               plain PUT. That is safe without put-if-absent because every writer of that key
//               writes the same bytes: the insert winner, or a writer repairing a missing
//               mirror with the row's bytes. A mirror failure never fails the commit.
//      mirrors form a gap-free run that may lag the coordinator's end: a writer mirrors N+1
//               only after mirror N exists (it wrote it, or found it, or repaired it from the
//               row). Writers repair the mirrors of records they read from the coordinator;
//               read-only opens never write.
//      recover: the end of the chain is the coordinator's highest row (Latest), never a
//               probe of the store; records are read from the coordinator in batches (a record
//               below its first row, from a ledger adopted into the coordinator, from the
//               store). If the coordinator's end is below what the store proves exists (its
//               mirror, a snapshot), the coordinator is not this ledger's (another database,
//               an older backup): FailedPrecondition, nothing written. A coordinator with no
//               rows for a ledger whose store has records adopts it when no mode is recorded
//               (a ledger written before it had a coordinator): the store's last record becomes
//               the coordinator's first row.
//      GC:      CollectObsolete also deletes the coordinator's rows below the floor (the floor's
//               own row stays, so the end is never lost).
//    Namespace: Where() -- the store's URL (no secrets) + "/" + ns, i.e. where the records
//    live. Two stores sharing a database never share a namespace; two spellings of one store
//    location give one namespace. The S3 endpoint is not part of it (a second spelling of one
//    endpoint must not split one ledger in two); two endpoints serving one bucket name and
//    prefix through one database would share a namespace: give them different prefixes.
//    Coordinator mode also allows LedgerMode::kJoin (GC joins the last run's epoch).
//
// 9. Single-writer mode: the writer lease. One writer at a time holds <ns>/ledger/lease.json
//    {holder, nonce, run, epoch, ttl}:
//      acquire: GET the lease; if another holder's is live (that version of the object was
//               first seen less than its TTL + max_clock_skew ago, on this process's steady
//               clock) wait for it (lease.wait) or fail with FailedPrecondition naming it; else
//               PUT ours, wait `settle`, GET it back and hold it only if it still has our nonce;
//      commit:  before each publish GET the lease (still ours? else fenced), renew it when less
//               than half its time is left; HEAD record N+1 (exists => someone committed: read
//               forward); PUT it with a time limit of the lease's time left (less the skew
//               margin: PutOptions::timeout, so the store's retry layer stops there); GET the
//               lease again (still ours and not run out? else stop); GET the record back and
//               compare bytes;
//      release: Close() deletes the lease if it is still ours and live.
//    It is NOT safe against a zombie, and says so (README, "Commit modes"): a writer paused
//    (GC, swap, VM freeze) between its lease check and the moment its PUT lands (a PUT in
//    flight cannot be recalled: the time limit stops retries, not an attempt on the wire) can
//    overwrite the record of a writer that took over meanwhile. It also assumes the store's GET
//    after a PUT returns the new bytes. When that goes wrong, the "prev" chain checksum turns
//    the damage into DataLoss at the next recovery rather than wrong data.
//    `respawn doctor` reports the commit mode.
//
// Crash points (util/crash_point.h), in protocol order:
//   ledger:before-data, ledger:after-data            PutData / PutDataFile
//   ledger:lease-acquired                            single-writer mode, Open
//   ledger:before-claim, ledger:after-claim          Open: the epoch claim record
//   ledger:before-lease-renew, ledger:after-lease-renew
//   ledger:before-publish, ledger:after-publish      the record put or coordinator insert (claims
//                                                    and commits); after-publish comes before
//                                                    the coordinator mode's mirror PUT
//   ledger:before-snapshot, ledger:after-snapshot    compaction
//   ledger:before-head, ledger:after-head            the head hint
//   ledger:before-floor, ledger:after-floor          CollectObsolete
// A crash at any of them leaves the ledger at the state before or after the commit.
//
// Thread-safety: a Ledger is safe for concurrent use. Commits of one Ledger are serialized
// (one publish in flight; commits waiting behind it are grouped); readers (state(), Find())
// never wait for store I/O.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ledger/coordinator.h"
#include "ledger/data.h"
#include "ledger/lease.h"
#include "ledger/record.h"
#include "storage/store.h"
#include "util/clock.h"
#include "util/retry.h"

namespace respawn::ledger {

enum class LedgerMode {
  kWrite,     // claim a new epoch: fences every earlier writer
  kJoin,      // adopt the current epoch (processes of the same run); not in single-writer mode
  kReadOnly,  // recover and Refresh only; Commit is FailedPrecondition
};

/// How records are published (protocol 7). Recorded in the ledger by name.
enum class CommitMode { kPutIfAbsent, kCoordinator, kSingleWriter };
/// "put-if-absent", "coordinator", "single-writer".
std::string_view CommitModeName(CommitMode mode);

struct LedgerOptions {
  LedgerMode mode = LedgerMode::kWrite;
  std::string run_id;                 // "" = a random id (kJoin: must match the claimer's if set)
  uint64_t compaction_interval = 64;  // write a snapshot once this many records follow the last
  int max_commit_attempts = 64;       // publish races lost before Commit gives up (Aborted)
  /// Transient errors of the commit coordinator's calls. Store calls are made once: the store
  /// retries its own (storage/store.h; OpenStore wraps a RetryStore where needed).
  RetryPolicy retry;
  bool list_hints = true;        // may LIST (as a hint only) when head.json is missing
  size_t read_parallelism = 16;  // records fetched at once during recovery
  /// The commit coordinator for stores without put-if-absent (protocol 8); null: none. A
  /// read-only ledger given one reads the records from it (else from the store's mirror).
  std::shared_ptr<CommitCoordinator> coordinator;
  /// Opt-in to single-writer mode (protocol 9) on a store without put-if-absent when no
  /// coordinator is given (`--single-writer`). Not safe against a paused writer.
  bool single_writer = false;
  /// Act as if the store could not put-if-absent: commit through `coordinator`, or under the
  /// lease with `single_writer` (tests: a POSIX or radosgw store standing in for Swift).
  bool force_lease = false;
  LeaseOptions lease;  // single-writer mode
  /// Times the lease, coordinator retries and the timestamps in records (tests pass a
  /// ManualClock). Null: the system clock.
  std::shared_ptr<Clock> clock = Clock::System();
  /// head.json is rewritten after a publish only once this many records followed the one it
  /// names (and always after a claim, a snapshot, CollectObsolete and at Close): the hint stays
  /// off most commits' path, and a crash costs recovery a few more probes. 1: every record.
  uint64_t head_interval = 4;
  /// Commits that arrive while another is publishing are published together, in one record,
  /// up to this many (group commit); each caller still gets its own result. 1: no grouping,
  /// one record per Commit (what callers that count records expect).
  size_t max_commit_group = 1;
};

/// The commit mode a writer with `options` uses on a store with `caps` (protocol 7): put-if-
/// absent if the store has it (and !force_lease), else the coordinator if given, else
/// single-writer if opted in. Errors: the store's probe error (put_if_absent_error: it could not
/// tell; retry), FailedPrecondition when none applies (the message names both ways out).
/// `where` names the store or ledger in messages. Callers (the CLI) use it to refuse at
/// configuration time; Ledger::Open applies the same rule.
Result<CommitMode> ChooseCommitMode(const Capabilities& caps, const LedgerOptions& options,
                                    std::string_view where);

/// FailedPrecondition (naming both modes and the fix) when `state` records a commit mode other
/// than `mode`; OK when it records none (the writer's mode is adopted) or the same. `options`
/// says why this writer is in `mode`; `where` names the ledger. Ledger::Open applies it.
Status CheckRecordedCommitMode(const LedgerState& state, CommitMode mode,
                               const LedgerOptions& options, std::string_view where);

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
  /// lease (single-writer mode) and claims a new epoch, fencing every earlier writer.
  /// Errors: DataLoss (a record or snapshot that must be read fails verification),
  /// FailedPrecondition (no commit mode applies; the ledger's recorded commit mode differs
  /// from this writer's; the coordinator does not hold this ledger's records; lease held by
  /// another live writer; kJoin with no or another run's epoch), Unavailable (store or
  /// coordinator errors after retries, or a put-if-absent probe that failed), InvalidArgument
  /// (bad ns/options).
  static Result<std::unique_ptr<Ledger>> Open(std::shared_ptr<Store> store, std::string ns,
                                              LedgerOptions options = {});

  /// If Close() was not called: points head.json at the end and releases the lease (both best
  /// effort).
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
  CommitMode commit_mode() const { return mode_; }
  bool lease_mode() const { return mode_ == CommitMode::kSingleWriter; }
  Store& store() const { return *store_; }
  RecoveryStats last_recovery() const;
  /// Commit calls waiting behind the one publishing (to be grouped into its next record).
  size_t queued_commits() const;
  /// "<store url>/<ns>": names the ledger in messages, and is its coordinator namespace.
  std::string Where() const;

  /// "<ns>/data/<stage>/<fingerprint>/<random attempt id>/": a fresh prefix on every call.
  /// `stage` may contain '/' (partitions); neither may be empty or contain empty, "." or ".."
  /// segments, and `fingerprint` may not contain '/'.
  Result<std::string> NewAttemptPrefix(std::string_view stage, std::string_view fingerprint) const;
  /// NewAttemptPrefix(stage, fingerprint) + file: the key of a single-object attempt.
  Result<std::string> DataKey(std::string_view stage, std::string_view fingerprint,
                              std::string_view file = "data") const;
  /// DataKey(stage, fingerprint, run_id() + extension): an object named after the run that
  /// wrote it, which Keys::ParseDataKey reads back (GC spares a run's objects while it may
  /// still commit them). `extension` is "" or starts with '.'.
  Result<std::string> RunDataKey(std::string_view stage, std::string_view fingerprint,
                                 std::string_view extension) const;

  // Data objects in this ledger's store (data.h).
  Result<DataObject> PutData(std::string_view key, std::string_view data);
  Result<DataObject> PutDataFile(std::string_view key, const std::string& path);
  Result<DataObject> PutDataFile(const DataObject& object, const std::string& path);
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
  struct Writer;  // a Commit call waiting in writers_
  /// The writers at the front of writers_ to publish together: the leader, then those behind it
  /// while their names are disjoint from the group's. REQUIRES: writers_mu_ held.
  std::vector<Writer*> BuildGroup();
  /// Publishes the group's changes as one record, sets each writer's result and releases the
  /// followers (ReleaseFollowers) before the snapshot and head hint are written.
  void PublishGroup(const std::vector<Writer*>& group);
  /// Publishes the changes of `live` (REQUIRES: commit_mu_); members that conflict get their
  /// own Aborted and leave `live`.
  Result<uint64_t> PublishMerged(std::vector<Writer*>& live);
  /// Marks the group's followers (all but the leader, at the front) done and takes them out of
  /// writers_.
  void ReleaseFollowers(const std::vector<Writer*>& group);
  Status CheckCanCommit(uint64_t base);
  /// Creates record r.sequence; OK if ours landed, AlreadyExists if another writer's did.
  Status Publish(const Record& record);
  Status PublishIfAbsent(const std::string& key, const std::string& bytes);
  Status PublishUnderLease(const std::string& key, const std::string& bytes);
  Status PublishToCoordinator(uint64_t sequence, const std::string& bytes);
  /// Coordinator mode: writes the store's copy of record `sequence` (after making sure the
  /// copies below it exist). Never fails the commit: a failure only logs.
  void MirrorRecord(uint64_t sequence, const std::string& bytes);
  /// Coordinator mode, writers: makes the copies of the records (mirrored_through_, last] exist
  /// in the store, reading their bytes from the coordinator. Gap-free: stops at the first
  /// failure.
  Status EnsureMirrors(uint64_t last);
  /// Writes the store's copies of `records` (sequence, bytes), which continue mirrored_through_
  /// without a gap, where they are missing.
  Status WriteMirrors(const std::vector<std::pair<uint64_t, std::string>>& records);
  /// Coordinator mode: the store holds records up to `last` that the coordinator has none of.
  Status AdoptIntoCoordinator(uint64_t last);
  Result<uint64_t> CoordinatorLatest();
  /// Snapshot and head hint after a publish; `claim`: the record was an epoch claim.
  void AfterPublish(bool claim);
  Status WriteSnapshot();
  Status WriteHead();
  Record NewRecord(RecordKind kind, const Changes& changes) const;
  /// Applies a verified record at sequence_+1 (chain check included).
  Status ApplyLocked(const Record& record, const std::string& checksum);
  /// Highest existing record >= `known` (which exists, or is 0 / a snapshot's sequence).
  Result<uint64_t> ProbeLatest(uint64_t known);
  Result<bool> RecordExists(uint64_t sequence);
  /// Reads, verifies and applies records (sequence_, last], in parallel fetches (from the
  /// coordinator in coordinator mode unless `from_store`).
  Status ReadAndApply(uint64_t last, bool from_store = false);
  using RecordUse =
      std::function<Status(Record&, const std::string& checksum, const std::string& bytes)>;
  /// Fetches and verifies records [from, to] in order: from the coordinator (coordinator mode,
  /// unless `from_store`; records below its first row from the store) or the store.
  Status FetchRecords(uint64_t from, uint64_t to, bool from_store, const RecordUse& use);
  Status FetchFromCoordinator(uint64_t from, uint64_t to, const RecordUse& use);
  Result<std::optional<std::string>> GetOptional(const std::string& key);
  Result<std::optional<HeadHint>> ReadHead();
  Result<std::optional<Floor>> ReadFloor();
  /// NotFound if absent; DataLoss if corrupt.
  Result<Snapshot> ReadSnapshot(uint64_t sequence);
  Result<std::vector<uint64_t>> ListSequences(const std::string& prefix, bool snapshots);

  std::shared_ptr<Store> store_;
  Keys keys_;
  LedgerOptions options_;
  std::string writer_id_;
  std::string run_id_;
  CommitMode mode_ = CommitMode::kPutIfAbsent;
  std::shared_ptr<CommitCoordinator> coordinator_;  // coordinator mode (or a reader given one)
  std::unique_ptr<LeaseHolder> lease_;              // single-writer mode, write mode only
  // Coordinator mode: the store holds copies of every record up to here (from the floor).
  uint64_t mirrored_through_ = 0;  // REQUIRES commit_mu_

  // Commit calls in arrival order, the one publishing first.
  std::deque<Writer*> writers_;  // GUARDED_BY(writers_mu_)
  mutable std::mutex writers_mu_;
  std::mutex commit_mu_;  // serializes store-mutating operations and replay
  mutable std::mutex mu_;
  // Invariant: state_ is the replay of records 1..sequence_; last_checksum_ is the body checksum
  // of record sequence_ ("" when sequence_ == 0).
  LedgerState state_;                           // GUARDED_BY(mu_)
  uint64_t sequence_ = 0;                       // GUARDED_BY(mu_)
  std::string last_checksum_;                   // GUARDED_BY(mu_)
  uint64_t snapshot_sequence_ = 0;              // newest snapshot known; GUARDED_BY(mu_)
  uint64_t head_sequence_ = 0;                  // head.json's, as far as known; GUARDED_BY(mu_)
  uint64_t start_sequence_ = 0;                 // sequence recovery started from; GUARDED_BY(mu_)
  std::map<std::string, uint64_t> removed_at_;  // name -> sequence of its removal; GUARDED_BY(mu_)
  uint64_t epoch_ = 0;                          // GUARDED_BY(mu_)
  std::string epoch_owner_;                     // GUARDED_BY(mu_)
  Status fenced_;                               // sticky; GUARDED_BY(mu_)
  bool closed_ = false;                         // GUARDED_BY(mu_)
  RecoveryStats recovery_;                      // GUARDED_BY(mu_)
};

}  // namespace respawn::ledger
