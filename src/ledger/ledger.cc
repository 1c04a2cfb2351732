#include "ledger/ledger.h"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <functional>
#include <random>
#include <set>
#include <thread>

#include "util/crash_point.h"
#include "util/log.h"
#include "util/strings.h"
#include "util/thread_pool.h"

namespace respawn::ledger {
namespace {

constexpr uint64_t kFetchBatch = 256;  // records held in memory at once during replay

std::string Hostname() {
  char buf[256] = {};
  if (gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "unknown-host";
  return buf;
}

// Checks a '/'-separated path fragment: non-empty segments, no "." or "..".
Status CheckSegments(std::string_view what, std::string_view value, bool allow_slash) {
  if (value.empty()) return InvalidArgument(std::string(what) + " is empty");
  if (!allow_slash && value.find('/') != std::string_view::npos) {
    return InvalidArgument(std::string(what) + " " + Quoted(value) + " contains '/'");
  }
  size_t start = 0;
  for (;;) {
    size_t slash = value.find('/', start);
    std::string_view seg = value.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg.empty() || seg == "." || seg == "..") {
      return InvalidArgument(std::string(what) + " " + Quoted(value) +
                             " has an empty, \".\" or \"..\" path segment");
    }
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (value.find('\0') != std::string_view::npos) {
    return InvalidArgument(std::string(what) + " contains a NUL byte");
  }
  return Status::OK();
}

Status ValidateChanges(const Changes& changes) {
  for (const auto& [name, entry] : changes.upserts) {
    if (name.empty() || name.size() > 1024 || name.find('\0') != std::string::npos) {
      return InvalidArgument("ledger entry name " + Quoted(name) +
                             " must be 1..1024 bytes without NUL");
    }
    if (changes.removals.count(name) != 0) {
      return InvalidArgument("ledger entry " + Quoted(name) +
                             " is both upserted and removed in one commit");
    }
    for (const auto& o : entry.objects) {
      Status st = ValidateKey(o.key);
      if (!st.ok()) return st.WithContext("ledger entry " + Quoted(name) + " names a bad data key");
    }
  }
  for (const auto& name : changes.removals) {
    if (name.empty()) return InvalidArgument("ledger entry name to remove is empty");
  }
  return Status::OK();
}

// Runs a commit coordinator call until it succeeds, fails with a non-retryable error, or
// `retry` is used up. The coordinator makes one attempt per call (coordinator.h): the ledger is
// its retry layer. (Store calls are never retried here: the store retries its own, store.h.)
Status RetryCoordinatorCall(const RetryPolicy& retry, Clock& clock,
                            const std::function<Status()>& call) {
  Backoff backoff(retry, clock);
  for (;;) {
    Status s = call();
    if (s.ok() || !RetryPolicy::IsRetryable(s) || !backoff.Next()) return s;
  }
}

void Jitter(int attempt) {
  thread_local std::minstd_rand rng(std::random_device{}());
  int ceiling = std::min(50, attempt * 2);
  std::uniform_int_distribution<int> dist(0, ceiling);
  std::this_thread::sleep_for(std::chrono::milliseconds(dist(rng)));
}

}  // namespace

Ledger::Ledger(std::shared_ptr<Store> store, std::string ns, LedgerOptions options)
    : store_(std::move(store)), keys_(std::move(ns)), options_(std::move(options)) {
  writer_id_ = Hostname() + "/" + std::to_string(getpid()) + "/" + NewRandomId().substr(0, 12);
  run_id_ = options_.run_id.empty() ? NewRandomId().substr(0, 16) : options_.run_id;
}

Ledger::~Ledger() {
  bool head_behind;
  {
    std::lock_guard<std::mutex> g(mu_);
    head_behind = !closed_ && options_.mode != LedgerMode::kReadOnly && fenced_.ok() &&
                  head_sequence_ < sequence_;
  }
  // As Close(): point the hint at the end (best effort), while the lease is still ours.
  if (head_behind) WriteHead().IgnoreError();
  if (lease_ != nullptr && lease_->held()) lease_->Release().IgnoreError();
}

std::string Ledger::Where() const {
  return store_->Url() + (keys_.ns().empty() ? "" : "/" + keys_.ns());
}

std::string_view CommitModeName(CommitMode mode) {
  switch (mode) {
    case CommitMode::kPutIfAbsent:
      return "put-if-absent";
    case CommitMode::kCoordinator:
      return "coordinator";
    case CommitMode::kSingleWriter:
      return "single-writer";
  }
  return "put-if-absent";
}

Result<CommitMode> ChooseCommitMode(const Capabilities& caps, const LedgerOptions& options,
                                    std::string_view where) {
  if (!options.force_lease) {
    if (!caps.put_if_absent_error.ok()) return caps.put_if_absent_error;
    if (caps.put_if_absent) return CommitMode::kPutIfAbsent;
  }
  if (options.coordinator != nullptr) return CommitMode::kCoordinator;
  if (options.single_writer) return CommitMode::kSingleWriter;
  return FailedPrecondition(
      std::string(where) +
      (options.force_lease ? " is used as if it could not put-if-absent"
                           : " cannot put-if-absent (no conditional PUT)") +
      ", so nothing makes concurrent commits safe: a writer that stalls and wakes up could "
      "overwrite another's commit. Configure a commit coordinator (`coordinator = "
      "\"postgresql://user@host/db\"` in the pipeline file, or RESPAWN_COORDINATOR), or, if "
      "only one process ever writes here, opt in with --single-writer (a lease that detects a "
      "second writer on a best-effort basis; not safe against a paused process)");
}

Result<std::unique_ptr<Ledger>> Ledger::Open(std::shared_ptr<Store> store, std::string ns,
                                             LedgerOptions options) {
  if (store == nullptr) return InvalidArgument("Ledger::Open: store is null");
  if (!ns.empty()) RETURN_IF_ERROR(CheckSegments("ledger namespace", ns, true));
  if (options.compaction_interval == 0) {
    return InvalidArgument("ledger compaction_interval must be at least 1");
  }
  if (options.max_commit_attempts < 1) {
    return InvalidArgument("ledger max_commit_attempts must be at least 1");
  }
  if (options.read_parallelism == 0) options.read_parallelism = 1;
  if (options.clock == nullptr) options.clock = Clock::System();
  std::unique_ptr<Ledger> ledger(new Ledger(std::move(store), std::move(ns), std::move(options)));
  RETURN_IF_ERROR(ValidateKey(ledger->keys_.Lease()));
  Ledger& l = *ledger;
  std::lock_guard<std::mutex> lock(l.commit_mu_);
  if (l.options_.mode == LedgerMode::kReadOnly) {
    // Readers never commit: no mode to choose (and no put-if-absent probe). Given a
    // coordinator, they read the records from it.
    l.mode_ =
        l.options_.coordinator != nullptr ? CommitMode::kCoordinator : CommitMode::kPutIfAbsent;
  } else {
    ASSIGN_OR_RETURN(l.mode_, ChooseCommitMode(l.store_->capabilities(), l.options_,
                                               "the store " + l.store_->Url()));
  }
  if (l.mode_ == CommitMode::kCoordinator) l.coordinator_ = l.options_.coordinator;
  RETURN_IF_ERROR(l.Recover());
  auto check_mode = [&l]() {
    return CheckRecordedCommitMode(l.state(), l.mode_, l.options_, l.Where());
  };
  if (l.options_.mode != LedgerMode::kReadOnly) RETURN_IF_ERROR(check_mode());
  switch (l.options_.mode) {
    case LedgerMode::kReadOnly:
      break;
    case LedgerMode::kJoin:
      RETURN_IF_ERROR(l.JoinEpoch());
      break;
    case LedgerMode::kWrite:
      if (l.mode_ == CommitMode::kSingleWriter) {
        RESPAWN_LOG(kInfo, "ledger " << l.Where()
                                     << ": single-writer mode (the store cannot put-if-absent "
                                        "and no coordinator is configured); taking the lease");
        l.lease_ = std::make_unique<LeaseHolder>(*l.store_, l.keys_.Lease(), l.writer_id_,
                                                 l.run_id_, l.options_.lease, l.options_.clock);
        uint64_t next_epoch;
        {
          std::lock_guard<std::mutex> g(l.mu_);
          next_epoch = l.state_.max_epoch + 1;
        }
        RETURN_IF_ERROR(l.lease_->Acquire(next_epoch));
        RETURN_IF_ERROR(l.ReadForward());  // commits made before we got the lease
      }
      RETURN_IF_ERROR(l.ClaimEpoch());
      // Two writers of different modes racing on a brand-new ledger: the first claim's mode
      // won; the other stops here.
      RETURN_IF_ERROR(check_mode());
      break;
  }
  return ledger;
}

Status CheckRecordedCommitMode(const LedgerState& state, CommitMode mode,
                               const LedgerOptions& options, std::string_view where) {
  const std::string& recorded = state.commit_mode;
  const std::string mine(CommitModeName(mode));
  if (recorded.empty() || recorded == mine) return Status::OK();
  std::string why;
  switch (mode) {
    case CommitMode::kPutIfAbsent:
      why = "the store can put-if-absent";
      break;
    case CommitMode::kCoordinator:
      why = "a commit coordinator (" +
            (options.coordinator != nullptr ? options.coordinator->Url() : std::string("?")) +
            ") is configured";
      break;
    case CommitMode::kSingleWriter:
      why =
          "the store cannot put-if-absent, no coordinator is configured and --single-writer "
          "was given";
      break;
  }
  std::string fix;
  if (recorded == CommitModeName(CommitMode::kCoordinator)) {
    fix =
        "configure the same commit coordinator its writers use (`coordinator = ...` in the "
        "pipeline file, or RESPAWN_COORDINATOR)";
  } else if (recorded == CommitModeName(CommitMode::kSingleWriter)) {
    fix =
        "commit the same way (--single-writer, without a coordinator), or stop every writer "
        "and start a new ledger under another name or store";
  } else {
    fix =
        "use a store that can put-if-absent for it (as its writers did), or start a new "
        "ledger under another name or store";
  }
  return FailedPrecondition("ledger " + std::string(where) + " is committed in mode \"" + recorded +
                            "\" (recorded by its writers), but this process would "
                            "commit in mode \"" +
                            mine + "\" (" + why +
                            "); writers in different modes could overwrite each other's "
                            "commits. To write to it, " +
                            fix);
}

// ---------------------------------------------------------------------------------------------
// Reading

Result<std::optional<std::string>> Ledger::GetOptional(const std::string& key) {
  Result<std::string> r = store_->Get(key);
  if (r.status().IsNotFound()) return std::optional<std::string>();
  if (!r.ok()) return r.status();
  return std::optional<std::string>(std::move(r).value());
}

Result<std::optional<HeadHint>> Ledger::ReadHead() {
  std::string key = keys_.Head();
  ASSIGN_OR_RETURN(std::optional<std::string> bytes, GetOptional(key));
  if (!bytes) return std::optional<HeadHint>();
  auto head = DecodeHead(key, *bytes);
  if (!head.ok()) {
    RESPAWN_LOG(kWarn,
                "ledger " << Where() << ": ignoring head hint: " << head.status().ToString());
    return std::optional<HeadHint>();
  }
  return std::optional<HeadHint>(std::move(head).value());
}

Result<std::optional<Floor>> Ledger::ReadFloor() {
  std::string key = keys_.Floor();
  ASSIGN_OR_RETURN(std::optional<std::string> bytes, GetOptional(key));
  if (!bytes) return std::optional<Floor>();
  auto floor = DecodeFloor(key, *bytes);
  if (!floor.ok()) {
    RESPAWN_LOG(kWarn,
                "ledger " << Where() << ": ignoring GC floor: " << floor.status().ToString());
    return std::optional<Floor>();
  }
  return std::optional<Floor>(std::move(floor).value());
}

Result<Snapshot> Ledger::ReadSnapshot(uint64_t sequence) {
  std::string key = keys_.Snapshot(sequence);
  ASSIGN_OR_RETURN(std::optional<std::string> bytes, GetOptional(key));
  if (!bytes) return NotFound("ledger snapshot " + Quoted(key) + " does not exist");
  return DecodeSnapshot(key, sequence, *bytes);
}

Result<std::vector<uint64_t>> Ledger::ListSequences(const std::string& prefix, bool snapshots) {
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, ListAll(*store_, prefix));
  std::vector<uint64_t> out;
  for (const auto& o : objects) {
    uint64_t s = snapshots ? keys_.SequenceOfSnapshot(o.key) : keys_.SequenceOfRecord(o.key);
    if (s > 0) out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<bool> Ledger::RecordExists(uint64_t sequence) {
  Result<ObjectInfo> info = store_->Stat(keys_.Record(sequence));
  if (!info.ok() && !info.status().IsNotFound()) return info.status();
  const bool exists = info.ok();
  {
    std::lock_guard<std::mutex> g(mu_);
    ++recovery_.probes;
  }
  return exists;
}

Result<uint64_t> Ledger::ProbeLatest(uint64_t known) {
  // Records above the GC floor form a gap-free run, so existence is monotone: gallop to bracket
  // the end, then binary search inside the bracket.
  uint64_t lo = known;
  uint64_t hi = 0;
  for (uint64_t step = 1;; step *= 2) {
    uint64_t probe = lo + step;
    ASSIGN_OR_RETURN(bool exists, RecordExists(probe));
    if (!exists) {
      hi = probe;
      break;
    }
    lo = probe;
  }
  while (hi - lo > 1) {
    uint64_t mid = lo + (hi - lo) / 2;
    ASSIGN_OR_RETURN(bool exists, RecordExists(mid));
    if (exists) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return lo;
}

namespace {

struct Fetched {
  Status status;
  Record record;
  std::string checksum;
  std::string bytes;
};

}  // namespace

Status Ledger::FetchRecords(uint64_t from, uint64_t to, bool from_store, const RecordUse& use) {
  if (mode_ == CommitMode::kCoordinator && !from_store) return FetchFromCoordinator(from, to, use);
  for (uint64_t first = from; first <= to;) {
    uint64_t n = std::min<uint64_t>(to - first + 1, kFetchBatch);
    std::vector<Fetched> batch(n);
    ParallelFor(n, options_.read_parallelism, [&](size_t i) {
      uint64_t seq = first + i;
      std::string key = keys_.Record(seq);
      Result<std::string> got = store_->Get(key);
      Status st = got.status();
      std::string bytes = got.ok() ? std::move(got).value() : std::string();
      if (st.IsNotFound()) {
        st = DataLoss("ledger record " + Quoted(key) + " is missing although record " +
                      std::to_string(to) + " exists; records were deleted out of order");
      }
      if (!st.ok()) {
        batch[i].status = st;
        return;
      }
      auto rec = DecodeRecord(key, seq, bytes, &batch[i].checksum);
      if (!rec.ok()) {
        batch[i].status = rec.status();
        return;
      }
      batch[i].record = std::move(rec).value();
      batch[i].bytes = std::move(bytes);
    });
    for (auto& f : batch) {
      RETURN_IF_ERROR(f.status);
      RETURN_IF_ERROR(use(f.record, f.checksum, f.bytes));
    }
    first += n;
  }
  return Status::OK();
}

Status Ledger::FetchFromCoordinator(uint64_t from, uint64_t to, const RecordUse& use) {
  bool seen_row = false;  // below the coordinator's first row, records come from the store
  for (uint64_t first = from; first <= to;) {
    uint64_t last = first + std::min<uint64_t>(to - first, kFetchBatch - 1);
    std::map<uint64_t, std::string> rows;
    RETURN_IF_ERROR(RetryCoordinatorCall(options_.retry, *options_.clock, [&]() -> Status {
      ASSIGN_OR_RETURN(rows, coordinator_->Read(Where(), first, last));
      return Status::OK();
    }));
    for (uint64_t seq = first; seq <= last; ++seq) {
      auto it = rows.find(seq);
      if (it == rows.end()) {
        if (seen_row || (!rows.empty() && seq > rows.begin()->first)) {
          return DataLoss("ledger record " + Quoted(keys_.Record(seq)) +
                          " is missing from the commit coordinator " + coordinator_->Url() +
                          " although record " + std::to_string(to) +
                          " exists there; its rows were deleted out of order");
        }
        // Older than the coordinator's history (a ledger adopted into it): the store's copy.
        RETURN_IF_ERROR(FetchRecords(seq, seq, /*from_store=*/true, use));
        continue;
      }
      seen_row = true;
      std::string what = keys_.Record(seq) + " in the commit coordinator " + coordinator_->Url();
      std::string checksum;
      ASSIGN_OR_RETURN(Record record, DecodeRecord(what, seq, it->second, &checksum));
      RETURN_IF_ERROR(use(record, checksum, it->second));
    }
    first = last + 1;
  }
  return Status::OK();
}

Status Ledger::ApplyLocked(const Record& record, const std::string& checksum) {
  std::lock_guard<std::mutex> g(mu_);
  if (record.sequence != sequence_ + 1) {
    return Internal("ledger " + Where() + ": applying record " + std::to_string(record.sequence) +
                    " after " + std::to_string(sequence_));
  }
  if (record.prev != last_checksum_) {
    return DataLoss("ledger record " + Quoted(keys_.Record(record.sequence)) +
                    " does not continue the chain: it follows a record with checksum " +
                    Quoted(record.prev) + " but record " + std::to_string(sequence_) + " has " +
                    Quoted(last_checksum_) +
                    "; a record was overwritten (a lease-mode writer without a valid lease?)");
  }
  if (ApplyRecord(record, state_)) {
    for (const auto& name : record.changes.removals) removed_at_[name] = record.sequence;
  } else {
    ++recovery_.ignored_records;
    RESPAWN_LOG(kInfo, "ledger " << Where() << ": ignoring record " << record.sequence
                                 << " of fenced writer " << record.writer << " (epoch "
                                 << record.epoch << " < " << state_.max_epoch << ")");
  }
  sequence_ = record.sequence;
  // A void record carries the checksum of the record it replaced: the next one names that.
  last_checksum_ =
      record.kind == RecordKind::kVoid && !record.chain.empty() ? record.chain : checksum;
  return Status::OK();
}

Status Ledger::ReadAndApply(uint64_t last, bool from_store) {
  uint64_t from;
  {
    std::lock_guard<std::mutex> g(mu_);
    from = sequence_ + 1;
  }
  if (from > last) return Status::OK();
  uint64_t count = 0;
  const bool mirror =
      mode_ == CommitMode::kCoordinator && !from_store && options_.mode != LedgerMode::kReadOnly;
  std::vector<std::pair<uint64_t, std::string>> unmirrored;
  Status st = FetchRecords(from, last, from_store,
                           [&](Record& r, const std::string& checksum, const std::string& bytes) {
                             ++count;
                             if (mirror && r.sequence > mirrored_through_) {
                               unmirrored.emplace_back(r.sequence, bytes);
                             }
                             return ApplyLocked(r, checksum);
                           });
  {
    std::lock_guard<std::mutex> g(mu_);
    recovery_.records_read += count;
  }
  RETURN_IF_ERROR(st);
  if (mirror && mirrored_through_ < last) {
    // Records others won: make sure the store has their copies (a winner may have died before
    // writing its own). A failure only delays that to the next read.
    Status mirrored = !unmirrored.empty() && unmirrored.front().first == mirrored_through_ + 1
                          ? WriteMirrors(unmirrored)
                          : EnsureMirrors(last);
    if (!mirrored.ok()) {
      RESPAWN_LOG(kWarn, "ledger " << Where() << ": the store's copies of records up to " << last
                                   << " are not all written yet: " << mirrored.ToString());
    }
  }
  return Status::OK();
}

Status Ledger::Recover() {
  {
    std::lock_guard<std::mutex> g(mu_);
    recovery_ = RecoveryStats();
  }
  RecoveryStats stats;
  ASSIGN_OR_RETURN(std::optional<HeadHint> head, ReadHead());
  ASSIGN_OR_RETURN(std::optional<Floor> floor, ReadFloor());
  if (head) {
    std::lock_guard<std::mutex> g(mu_);
    head_sequence_ = head->sequence;
  }
  std::set<uint64_t, std::greater<>> candidates;
  if (head) {
    stats.head_hint_used = true;
    if (head->snapshot_sequence > 0) candidates.insert(head->snapshot_sequence);
  }
  if (floor && floor->snapshot_sequence > 0) candidates.insert(floor->snapshot_sequence);
  bool listed_snapshots = false;
  if (!head && options_.list_hints) {
    auto listed = ListSequences(keys_.SnapshotPrefix(), true);
    if (listed.ok()) {
      stats.list_used = true;
      listed_snapshots = !listed->empty();
      candidates.insert(listed->begin(), listed->end());
    } else {
      RESPAWN_LOG(kInfo, "ledger " << Where() << ": listing snapshots failed (only a hint): "
                                   << listed.status().ToString());
    }
  }
  std::optional<Snapshot> base;
  for (uint64_t c : candidates) {
    auto snap = ReadSnapshot(c);
    if (snap.ok()) {
      base = std::move(snap).value();
      break;
    }
    if (snap.status().IsNotFound() || snap.status().code() == StatusCode::kDataLoss) {
      // Snapshots are derived: an older one, or the records, can stand in for it.
      RESPAWN_LOG(kWarn, "ledger " << Where() << ": skipping snapshot " << c << ": "
                                   << snap.status().ToString());
      continue;
    }
    return snap.status();
  }
  {
    std::lock_guard<std::mutex> g(mu_);
    state_ = base ? base->state : LedgerState();
    sequence_ = base ? base->sequence : 0;
    last_checksum_ = base ? base->record_checksum : "";
    snapshot_sequence_ = sequence_;
    start_sequence_ = sequence_;
    removed_at_.clear();
    stats.snapshot_sequence = sequence_;
  }
  uint64_t known = stats.snapshot_sequence;
  if (head && head->sequence > known) {
    ASSIGN_OR_RETURN(bool exists, RecordExists(head->sequence));
    if (exists) {
      known = head->sequence;
    } else {
      RESPAWN_LOG(kWarn, "ledger " << Where() << ": head hint names record " << head->sequence
                                   << ", which does not exist; ignoring the hint");
    }
  }
  ASSIGN_OR_RETURN(uint64_t latest, ProbeLatest(known));  // in coordinator mode: the mirror's end
  bool from_store = false;
  uint64_t adopt = 0;
  if (mode_ == CommitMode::kCoordinator) {
    mirrored_through_ = latest;
    ASSIGN_OR_RETURN(uint64_t latest_c, CoordinatorLatest());
    if (latest_c == 0 && latest > 0) {
      // Records the coordinator never saw: a ledger written before it had one (adopted below,
      // once its recorded mode is known), or a coordinator database that is not this ledger's.
      from_store = true;
      adopt = latest;
    } else {
      uint64_t proven = std::max(latest, stats.snapshot_sequence);
      if (latest_c < proven) {
        return FailedPrecondition(
            "ledger " + Where() + ": the commit coordinator " + coordinator_->Url() +
            " holds its records only up to " + std::to_string(latest_c) + ", but the store " +
            (latest >= stats.snapshot_sequence
                 ? "has a copy of record " + std::to_string(latest)
                 : "has a snapshot at record " + std::to_string(stats.snapshot_sequence)) +
            ": this is not the database the ledger was committed through, or it was restored "
            "from an older backup. Nothing was written; point the coordinator at the right "
            "database");
      }
      latest = latest_c;
    }
  }
  // A reader without the coordinator of a coordinator-mode ledger reads the store's copies,
  // which may lag by the last commit: for it, a shortfall is only an error once replay shows
  // the ledger is not committed through a coordinator.
  Status proven = CheckEndIsProven(&latest, head, floor);
  const bool reader_without_coordinator =
      options_.mode == LedgerMode::kReadOnly && mode_ != CommitMode::kCoordinator;
  if (!proven.ok() && !reader_without_coordinator) return proven;
  if (stats.snapshot_sequence == 0 && latest == 0) {
    // A new ledger -- or one whose early records were collected and whose snapshots we cannot
    // read. Never start a new chain over the second.
    std::string evidence;
    if (head && head->sequence > 0) {
      evidence = "head.json names record " + std::to_string(head->sequence);
    } else if (floor) {
      evidence = "floor.json names snapshot " + std::to_string(floor->snapshot_sequence);
    } else if (listed_snapshots) {
      evidence = "snapshots are listed";
    } else if (options_.list_hints) {
      auto records = ListSequences(keys_.RecordPrefix(), false);
      if (records.ok() && !records->empty()) {
        evidence = "record " + std::to_string(records->front()) + " is listed";
      }
    }
    if (!evidence.empty()) {
      return Status(StatusCode::kFailedPrecondition,
                    "ledger " + Where() + " has no record 1 and no readable snapshot, but " +
                        evidence +
                        "; its records were deleted or damaged. Refusing to start a new ledger "
                        "over it: restore the missing objects, or delete the prefix " +
                        Quoted(keys_.LedgerPrefix()) + " to start over",
                    StatusDetail::kLedgerDamaged);
    }
  }
  if (Status st = ReadAndApply(latest, from_store); !st.ok()) {
    return st.code() == StatusCode::kDataLoss ? st.WithDetail(StatusDetail::kLedgerDamaged) : st;
  }
  if (adopt > 0) RETURN_IF_ERROR(AdoptIntoCoordinator(adopt));
  if (!proven.ok()) {
    std::lock_guard<std::mutex> g(mu_);
    if (state_.commit_mode != "coordinator") return proven;
    RESPAWN_LOG(kInfo, "ledger " << Where() << ": reading the store's copies of a ledger "
                                 << "committed through a coordinator; they may lag ("
                                 << proven.message() << ")");
  }
  std::lock_guard<std::mutex> g(mu_);
  stats.latest_sequence = sequence_;
  stats.records_read = recovery_.records_read;
  stats.probes = recovery_.probes;
  stats.ignored_records = recovery_.ignored_records;
  recovery_ = stats;
  return Status::OK();
}

Status Ledger::CheckEndIsProven(uint64_t* latest, const std::optional<HeadHint>& head,
                                const std::optional<Floor>& floor) {
  // Records above the GC floor are never deleted, so everything the hints prove existed must
  // still be there: an end below it means records were lost, and a writer that went on from
  // there would build a new chain over committed history.
  const uint64_t floor_seq = floor ? floor->snapshot_sequence : 0;
  std::string evidence;
  uint64_t proven = 0;
  if (floor_seq > *latest) {
    proven = floor_seq;
    evidence = "floor.json names snapshot " + std::to_string(floor_seq);
  }
  // A committer writes head.json after its record; one below the floor may be a late writer's.
  if (head && head->sequence > floor_seq && head->sequence > std::max(proven, *latest)) {
    proven = head->sequence;
    evidence = "head.json names record " + std::to_string(head->sequence);
  }
  if (!head && options_.list_hints && proven <= *latest) {
    auto listed = ListSequences(keys_.RecordPrefix(), false);
    if (listed.ok() && !listed->empty() && listed->back() > *latest) {
      // Maybe committed by another writer since the probe: look again before calling it lost.
      ASSIGN_OR_RETURN(uint64_t again, ProbeLatest(*latest));
      *latest = again;
      if (listed->back() > *latest) {
        proven = listed->back();
        evidence = "record " + std::to_string(proven) + " is listed";
      }
    }
  }
  if (proven <= *latest) return Status::OK();
  return Status(StatusCode::kFailedPrecondition,
                "ledger " + Where() + ": the chain of commit records ends at record " +
                    std::to_string(*latest) + ", but " + evidence +
                    "; records were deleted or damaged. Refusing to commit over it (that would "
                    "start a new chain over committed history)",
                StatusDetail::kLedgerDamaged);
}

Status Ledger::ReadForward() {
  if (mode_ == CommitMode::kCoordinator) {
    ASSIGN_OR_RETURN(uint64_t latest, CoordinatorLatest());
    return ReadAndApply(latest);
  }
  uint64_t known;
  {
    std::lock_guard<std::mutex> g(mu_);
    known = sequence_;
  }
  ASSIGN_OR_RETURN(uint64_t latest, ProbeLatest(known));
  return ReadAndApply(latest);
}

Result<uint64_t> Ledger::CoordinatorLatest() {
  uint64_t latest = 0;
  RETURN_IF_ERROR(RetryCoordinatorCall(options_.retry, *options_.clock, [&]() -> Status {
    ASSIGN_OR_RETURN(latest, coordinator_->Latest(Where()));
    return Status::OK();
  }));
  return latest;
}

Status Ledger::AdoptIntoCoordinator(uint64_t last) {
  std::string recorded;
  {
    std::lock_guard<std::mutex> g(mu_);
    recorded = state_.commit_mode;
  }
  if (recorded == CommitModeName(CommitMode::kCoordinator)) {
    return FailedPrecondition(
        "ledger " + Where() +
        " was committed through a coordinator and the store has its "
        "records up to " +
        std::to_string(last) + ", but the commit coordinator " + coordinator_->Url() +
        " has none of them: this is not the database the ledger was "
        "committed through. Nothing was written; point the coordinator at the right database");
  }
  if (options_.mode == LedgerMode::kReadOnly) return Status::OK();  // readers write nothing
  if (!recorded.empty()) return Status::OK();  // another mode: Open refuses it next
  // A ledger from before commit modes were recorded: its last record becomes the
  // coordinator's first row, and the chain continues there.
  std::string key = keys_.Record(last);
  ASSIGN_OR_RETURN(std::optional<std::string> bytes, GetOptional(key));
  if (!bytes) {
    return Unavailable("ledger " + Where() + ": record " + Quoted(key) +
                       " vanished while adopting the ledger into the coordinator; retry");
  }
  Status st = PublishToCoordinator(last, *bytes);
  if (st.IsAlreadyExists()) {
    return Aborted("ledger " + Where() +
                   ": another writer adopted it into the commit "
                   "coordinator at the same time with another record " +
                   std::to_string(last) + "; retry");
  }
  RETURN_IF_ERROR(st);
  RESPAWN_LOG(kInfo, "ledger " << Where() << ": adopted into the commit coordinator "
                               << coordinator_->Url() << " at record " << last);
  return Status::OK();
}

Status Ledger::Refresh() {
  std::lock_guard<std::mutex> lock(commit_mu_);
  return ReadForward();
}

Status Ledger::CheckNotFenced() {
  std::lock_guard<std::mutex> lock(commit_mu_);
  RETURN_IF_ERROR(ReadForward());
  return CheckFenced();
}

// ---------------------------------------------------------------------------------------------
// Epochs

Status Ledger::CheckFenced() {
  std::lock_guard<std::mutex> g(mu_);
  if (!fenced_.ok()) return fenced_;
  if (options_.mode == LedgerMode::kReadOnly) return Status::OK();
  if (state_.max_epoch > epoch_ ||
      (state_.max_epoch == epoch_ && state_.epoch_writer != epoch_owner_)) {
    fenced_ = Status(StatusCode::kFailedPrecondition,
                     "fenced: a newer writer (epoch " + std::to_string(state_.max_epoch) + ", id " +
                         Quoted(state_.epoch_writer) + ", run " + Quoted(state_.epoch_run_id) +
                         ") took over ledger " + Where() + " at record " +
                         std::to_string(state_.epoch_sequence) + "; this process (epoch " +
                         std::to_string(epoch_) + ", id " + Quoted(writer_id_) + ") must stop",
                     StatusDetail::kFenced);
    return fenced_;
  }
  return Status::OK();
}

Status Ledger::ClaimEpoch() {
  for (int attempt = 1; attempt <= options_.max_commit_attempts; ++attempt) {
    Record record;
    {
      std::lock_guard<std::mutex> g(mu_);
      epoch_ = state_.max_epoch + 1;
      epoch_owner_ = writer_id_;
      record = NewRecord(RecordKind::kClaim, Changes());
    }
    if (lease_ != nullptr) lease_->set_epoch(record.epoch);
    CrashPoint<"ledger:before-claim">();
    Status st = Publish(record);
    if (st.ok()) {
      CrashPoint<"ledger:after-claim">();
      RESPAWN_LOG(kInfo, "ledger " << Where() << ": writer " << writer_id_ << " claimed epoch "
                                   << record.epoch << " at record " << record.sequence);
      AfterPublish(/*claim=*/true);
      return Status::OK();
    }
    if (!st.IsAlreadyExists()) return st;
    RETURN_IF_ERROR(ReadForward());
    if (attempt > 2) Jitter(attempt);
  }
  return Aborted("ledger " + Where() + ": could not claim an epoch after " +
                 std::to_string(options_.max_commit_attempts) +
                 " attempts; other writers keep committing");
}

Status Ledger::JoinEpoch() {
  if (mode_ == CommitMode::kSingleWriter) {
    return FailedPrecondition("ledger " + Where() +
                              ": joining a run needs put-if-absent or a commit coordinator; in "
                              "single-writer mode only one process can write");
  }
  std::lock_guard<std::mutex> g(mu_);
  if (state_.max_epoch == 0) {
    return FailedPrecondition("ledger " + Where() +
                              " has no writer to join yet; open it in write mode first");
  }
  if (!options_.run_id.empty() && options_.run_id != state_.epoch_run_id) {
    return FailedPrecondition("ledger " + Where() + " is owned by run " +
                              Quoted(state_.epoch_run_id) + " (epoch " +
                              std::to_string(state_.max_epoch) + "), not by run " +
                              Quoted(options_.run_id) + "; cannot join it");
  }
  epoch_ = state_.max_epoch;
  epoch_owner_ = state_.epoch_writer;
  run_id_ = state_.epoch_run_id;
  return Status::OK();
}

// ---------------------------------------------------------------------------------------------
// Committing

Record Ledger::NewRecord(RecordKind kind, const Changes& changes) const {
  Record r;
  r.sequence = sequence_ + 1;
  r.kind = kind;
  r.epoch = epoch_;
  r.writer = writer_id_;
  r.epoch_owner = epoch_owner_;
  r.run_id = run_id_;
  r.commit_id = NewRandomId();
  r.committed_at_ms = options_.clock->WallNowMs();
  r.prev = last_checksum_;
  r.changes = changes;
  if (kind == RecordKind::kClaim) r.commit_mode = std::string(CommitModeName(mode_));
  return r;
}

Status Ledger::CheckConflicts(const Changes& changes, uint64_t base) const {
  std::lock_guard<std::mutex> g(mu_);
  auto conflict = [&](const std::string& name, const std::string& what) {
    return Aborted("ledger " + Where() + ": entry " + Quoted(name) + " " + what + " after record " +
                   std::to_string(base) +
                   ", which this commit was based on; re-read the ledger and decide again");
  };
  auto changed_by = [](const Entry& e) {
    return "by writer " + Quoted(e.writer) + " (run " + Quoted(e.run_id) + ") at record " +
           std::to_string(e.sequence) + " with fingerprint " + Quoted(e.fingerprint);
  };
  for (const auto& [name, entry] : changes.upserts) {
    auto it = state_.entries.find(name);
    if (it != state_.entries.end()) {
      if (it->second.sequence > base && it->second.fingerprint != entry.fingerprint) {
        return conflict(name, "was committed " + changed_by(it->second) +
                                  " (this commit has fingerprint " + Quoted(entry.fingerprint) +
                                  ")");
      }
      continue;
    }
    auto removed = removed_at_.find(name);
    if (removed != removed_at_.end() && removed->second > base) {
      return conflict(name, "was removed at record " + std::to_string(removed->second));
    }
  }
  for (const auto& name : changes.removals) {
    auto it = state_.entries.find(name);
    if (it != state_.entries.end() && it->second.sequence > base) {
      return conflict(name, "was committed " + changed_by(it->second));
    }
  }
  return Status::OK();
}

Status Ledger::PublishIfAbsent(const std::string& key, const std::string& bytes) {
  PutOptions put;
  put.if_absent = true;
  // One call: the store retries it (store.h).
  Status st = store_->Put(key, bytes, put);
  if (st.ok()) return st;
  if (st.IsAlreadyExists()) {
    // Another writer's record -- or ours, from an attempt whose answer was lost below us. Not
    // a retry: a re-read of the outcome. The bytes tell: ours has our commit id.
    ASSIGN_OR_RETURN(std::optional<std::string> existing, GetOptional(key));
    if (existing && *existing == bytes) return Status::OK();
    return st;
  }
  if (!RetryPolicy::IsRetryable(st)) return st;
  return Status(st.code(), "ledger " + Where() + ": publishing " + Quoted(key) +
                               " failed and it is unknown whether it landed (" + st.ToString() +
                               "); Refresh() shows whether the commit exists");
}

Status Ledger::PublishUnderLease(const std::string& key, const std::string& bytes) {
  auto lost = [&](const Status& st) {
    if (st.code() == StatusCode::kFailedPrecondition) {
      std::lock_guard<std::mutex> g(mu_);
      fenced_ = st.WithDetail(StatusDetail::kFenced);
      return fenced_;
    }
    return st;
  };
  Status lease =
      lease_ != nullptr ? lease_->Ensure() : FailedPrecondition("ledger " + Where() + ": no lease");
  if (!lease.ok()) return lost(lease);
  ASSIGN_OR_RETURN(std::optional<std::string> existing, GetOptional(key));
  if (existing) return *existing == bytes ? Status::OK() : AlreadyExists(key);
  // The PUT must land while the lease is ours: the store's retries stop at the time left on
  // the lease (already less the clock-skew margin), and the lease is checked again after it.
  PutOptions bounded;
  bounded.timeout = lease_->TimeLeft();
  Status put = bounded.timeout.count() > 0 ? store_->Put(key, bytes, bounded)
                                           : Unavailable("no time left on the lease");
  Status still = lease_->Recheck();
  if (!still.ok()) {
    if (put.ok()) {
      RESPAWN_LOG(kError, "ledger " << Where() << ": record " << key
                                    << " was written, but the lease was lost around the write "
                                       "("
                                    << still.message() << ")");
    }
    return lost(still);
  }
  RETURN_IF_ERROR(put);
  ASSIGN_OR_RETURN(std::optional<std::string> back, GetOptional(key));
  if (back && *back == bytes) return Status::OK();
  RESPAWN_LOG(kError, "ledger " << Where() << ": record " << key
                                << " was overwritten right after we wrote it; another writer "
                                   "is committing without a valid lease");
  return AlreadyExists(key);
}

Status Ledger::PublishToCoordinator(uint64_t sequence, const std::string& bytes) {
  const std::string ns = Where();
  Backoff backoff(options_.retry, *options_.clock);
  for (;;) {
    Status st = coordinator_->CreateIfAbsent(ns, sequence, bytes);
    if (st.ok()) return st;
    if (st.IsAlreadyExists()) {
      // Another writer's record -- or ours, from an attempt whose answer was lost (the
      // connection broke after the insert). The bytes tell: ours has our commit id.
      std::map<uint64_t, std::string> rows;
      RETURN_IF_ERROR(RetryCoordinatorCall(options_.retry, *options_.clock, [&]() -> Status {
        ASSIGN_OR_RETURN(rows, coordinator_->Read(ns, sequence, sequence));
        return Status::OK();
      }));
      auto it = rows.find(sequence);
      if (it != rows.end() && it->second == bytes) return Status::OK();
      return st;
    }
    if (!RetryPolicy::IsRetryable(st)) return st;
    if (!backoff.Next()) {
      return Unavailable("ledger " + Where() + ": publishing record " + std::to_string(sequence) +
                         " through the commit coordinator failed and it is unknown whether it "
                         "landed (" +
                         st.ToString() + "); Refresh() shows whether it exists");
    }
  }
}

Status Ledger::EnsureMirrors(uint64_t last) {
  if (mirrored_through_ >= last) return Status::OK();
  std::vector<std::pair<uint64_t, std::string>> records;
  RETURN_IF_ERROR(FetchRecords(mirrored_through_ + 1, last, /*from_store=*/false,
                               [&](Record& r, const std::string&, const std::string& bytes) {
                                 records.emplace_back(r.sequence, bytes);
                                 return Status::OK();
                               }));
  return WriteMirrors(records);
}

Status Ledger::WriteMirrors(const std::vector<std::pair<uint64_t, std::string>>& records) {
  std::vector<Status> done(records.size());
  ParallelFor(records.size(), options_.read_parallelism, [&](size_t i) {
    const std::string key = keys_.Record(records[i].first);
    Result<ObjectInfo> info = store_->Stat(key);
    if (info.ok()) return;
    // Every writer of this key writes the coordinator's bytes: a plain PUT is safe.
    done[i] = info.status().IsNotFound() ? store_->Put(key, records[i].second) : info.status();
  });
  for (size_t i = 0; i < records.size(); ++i) {
    if (records[i].first != mirrored_through_ + 1) {
      return Internal("ledger " + Where() + ": mirroring record " +
                      std::to_string(records[i].first) + " after " +
                      std::to_string(mirrored_through_));
    }
    RETURN_IF_ERROR(done[i]);
    mirrored_through_ = records[i].first;
  }
  return Status::OK();
}

void Ledger::MirrorRecord(uint64_t sequence, const std::string& bytes) {
  Status st = Status::OK();
  if (mirrored_through_ + 1 < sequence) st = EnsureMirrors(sequence - 1);
  if (st.ok()) {
    st = store_->Put(keys_.Record(sequence), bytes);
  }
  if (st.ok()) {
    mirrored_through_ = sequence;
    return;
  }
  // The record is committed (the coordinator holds it); the next writer or recovery writes
  // the copy.
  RESPAWN_LOG(kWarn, "ledger " << Where() << ": record " << sequence
                               << " is committed, but its copy in the store is not written yet: "
                               << st.ToString());
}

Status Ledger::Publish(const Record& record) {
  std::string checksum;
  ASSIGN_OR_RETURN(std::string bytes, EncodeRecord(record, &checksum));
  std::string key = keys_.Record(record.sequence);
  CrashPoint<"ledger:before-publish">();
  switch (mode_) {
    case CommitMode::kPutIfAbsent:
      RETURN_IF_ERROR(PublishIfAbsent(key, bytes));
      break;
    case CommitMode::kCoordinator:
      RETURN_IF_ERROR(PublishToCoordinator(record.sequence, bytes));
      break;
    case CommitMode::kSingleWriter:
      RETURN_IF_ERROR(PublishUnderLease(key, bytes));
      break;
  }
  CrashPoint<"ledger:after-publish">();
  if (mode_ == CommitMode::kCoordinator) MirrorRecord(record.sequence, bytes);
  return ApplyLocked(record, checksum);
}

Status Ledger::WriteSnapshot() {
  Snapshot snap;
  {
    std::lock_guard<std::mutex> g(mu_);
    snap.sequence = sequence_;
    snap.record_checksum = last_checksum_;
    snap.state = state_;
  }
  ASSIGN_OR_RETURN(std::string bytes, EncodeSnapshot(snap));
  std::string key = keys_.Snapshot(snap.sequence);
  CrashPoint<"ledger:before-snapshot">();
  RETURN_IF_ERROR(store_->Put(key, bytes));
  CrashPoint<"ledger:after-snapshot">();
  std::lock_guard<std::mutex> g(mu_);
  snapshot_sequence_ = std::max(snapshot_sequence_, snap.sequence);
  return Status::OK();
}

Status Ledger::WriteHead() {
  HeadHint head;
  {
    std::lock_guard<std::mutex> g(mu_);
    head.sequence = sequence_;
    head.snapshot_sequence = snapshot_sequence_;
    head.epoch = state_.max_epoch;
  }
  head.writer = writer_id_;
  head.written_at_ms = options_.clock->WallNowMs();
  ASSIGN_OR_RETURN(std::string bytes, EncodeHead(head));
  CrashPoint<"ledger:before-head">();
  RETURN_IF_ERROR(store_->Put(keys_.Head(), bytes));
  CrashPoint<"ledger:after-head">();
  std::lock_guard<std::mutex> g(mu_);
  head_sequence_ = std::max(head_sequence_, head.sequence);
  return Status::OK();
}

void Ledger::AfterPublish(bool claim) {
  bool compact;
  bool head_due;
  {
    std::lock_guard<std::mutex> g(mu_);
    compact = sequence_ - snapshot_sequence_ >= options_.compaction_interval;
    head_due = claim || sequence_ - head_sequence_ >= options_.head_interval;
  }
  // Coordinator mode: a snapshot is a recovery's starting point in the store, so the store
  // must hold the copies of the records up to it first.
  if (mode_ == CommitMode::kCoordinator && mirrored_through_ < sequence()) compact = false;
  // The commit is durable already; these only speed up the next recovery.
  if (compact) {
    Status st = WriteSnapshot();
    if (!st.ok()) {
      RESPAWN_LOG(kWarn, "ledger " << Where() << ": snapshot not written: " << st.ToString());
    }
    head_due = true;  // the hint names the newest snapshot: recovery starts there
  }
  if (!head_due) return;
  Status st = WriteHead();
  if (!st.ok()) {
    RESPAWN_LOG(kWarn, "ledger " << Where() << ": head hint not written: " << st.ToString());
  }
}

// One Commit call, queued in writers_ until it is done (by itself or by the leader of its group).
struct Ledger::Writer {
  const Changes* changes = nullptr;
  uint64_t base = 0;
  bool done = false;  // GUARDED_BY(writers_mu_)
  Status status;      // the outcome: OK with `sequence`, or why this commit failed
  uint64_t sequence = 0;
  std::condition_variable cv;
  Result<uint64_t> result() const { return status.ok() ? Result<uint64_t>(sequence) : status; }
};

Result<uint64_t> Ledger::Commit(const Changes& changes, const CommitOptions& options) {
  RETURN_IF_ERROR(ValidateChanges(changes));
  Writer w;
  w.changes = &changes;
  {
    std::lock_guard<std::mutex> g(mu_);
    w.base = options.base_sequence.value_or(sequence_);
  }
  std::unique_lock<std::mutex> lock(writers_mu_);
  writers_.push_back(&w);
  w.cv.wait(lock, [&] { return w.done || writers_.front() == &w; });
  if (w.done) return w.result();
  // The leader: publish the group at the front of the queue.
  std::vector<Writer*> group = BuildGroup();
  lock.unlock();
  PublishGroup(group);
  lock.lock();
  writers_.pop_front();
  if (!writers_.empty()) writers_.front()->cv.notify_one();  // the next leader
  return w.result();
}

void Ledger::ReleaseFollowers(const std::vector<Writer*>& group) {
  std::lock_guard<std::mutex> lock(writers_mu_);
  // The followers sit right behind the leader, in order.
  writers_.erase(writers_.begin() + 1, writers_.begin() + group.size());
  for (size_t i = 1; i < group.size(); ++i) {
    group[i]->done = true;
    group[i]->cv.notify_one();
  }
}

std::vector<Ledger::Writer*> Ledger::BuildGroup() {
  std::vector<Writer*> group;
  std::set<std::string_view> names;
  for (Writer* w : writers_) {
    if (group.size() >= std::max<size_t>(1, options_.max_commit_group)) break;
    const Changes& c = *w->changes;
    bool disjoint = true;
    for (const auto& [name, entry] : c.upserts) disjoint = disjoint && !names.count(name);
    for (const std::string& name : c.removals) disjoint = disjoint && !names.count(name);
    if (!disjoint && !group.empty()) break;  // keeps the order of commits to one name
    for (const auto& [name, entry] : c.upserts) names.insert(name);
    for (const std::string& name : c.removals) names.insert(name);
    group.push_back(w);
  }
  return group;
}

Status Ledger::CheckCanCommit(uint64_t base) {
  std::lock_guard<std::mutex> g(mu_);
  if (closed_) return FailedPrecondition("ledger " + Where() + " is closed");
  if (options_.mode == LedgerMode::kReadOnly) {
    return FailedPrecondition("ledger " + Where() + " was opened read-only; cannot commit");
  }
  if (base > sequence_) {
    return InvalidArgument("commit base sequence " + std::to_string(base) + " is ahead of ledger " +
                           Where() + " (at " + std::to_string(sequence_) + ")");
  }
  return Status::OK();
}

void Ledger::PublishGroup(const std::vector<Writer*>& group) {
  std::lock_guard<std::mutex> lock(commit_mu_);
  std::vector<Writer*> live;  // members still to publish
  for (Writer* w : group) {
    w->status = CheckCanCommit(w->base);
    if (w->status.ok()) live.push_back(w);
  }
  Result<uint64_t> published = PublishMerged(live);
  for (Writer* w : live) {
    w->status = published.status();
    w->sequence = published.ok() ? *published : 0;
  }
  // The followers' commits are done: the hints below are off their path.
  ReleaseFollowers(group);
  if (published.ok()) AfterPublish(/*claim=*/false);
}

Result<uint64_t> Ledger::PublishMerged(std::vector<Writer*>& live) {
  for (int attempt = 1; attempt <= options_.max_commit_attempts; ++attempt) {
    RETURN_IF_ERROR(CheckFenced());
    Changes merged;
    std::vector<Writer*> next;
    for (Writer* w : live) {
      if (Status conflict = CheckConflicts(*w->changes, w->base); !conflict.ok()) {
        w->status = conflict;
        continue;
      }
      merged.upserts.insert(w->changes->upserts.begin(), w->changes->upserts.end());
      merged.removals.insert(w->changes->removals.begin(), w->changes->removals.end());
      next.push_back(w);
    }
    live.swap(next);
    if (live.empty()) return Aborted("every commit of the group conflicted");
    Record record;
    {
      std::lock_guard<std::mutex> g(mu_);
      record = NewRecord(RecordKind::kCommit, merged);
    }
    Status st = Publish(record);
    if (st.ok()) return record.sequence;
    if (!st.IsAlreadyExists()) return st;
    RETURN_IF_ERROR(ReadForward());
    if (attempt > 2) Jitter(attempt);
  }
  return Aborted("ledger " + Where() + ": gave up after " +
                 std::to_string(options_.max_commit_attempts) +
                 " lost publish races; other writers keep committing. Retry later");
}

// ---------------------------------------------------------------------------------------------
// Accessors, data, GC

LedgerState Ledger::state() const {
  std::lock_guard<std::mutex> g(mu_);
  return state_;
}

std::optional<Entry> Ledger::Find(std::string_view name) const {
  std::lock_guard<std::mutex> g(mu_);
  auto it = state_.entries.find(std::string(name));
  if (it == state_.entries.end()) return std::nullopt;
  return it->second;
}

uint64_t Ledger::sequence() const {
  std::lock_guard<std::mutex> g(mu_);
  return sequence_;
}

uint64_t Ledger::epoch() const {
  std::lock_guard<std::mutex> g(mu_);
  return epoch_;
}

size_t Ledger::queued_commits() const {
  std::lock_guard<std::mutex> lock(writers_mu_);
  return writers_.empty() ? 0 : writers_.size() - 1;
}

RecoveryStats Ledger::last_recovery() const {
  std::lock_guard<std::mutex> g(mu_);
  return recovery_;
}

Result<std::string> Ledger::NewAttemptPrefix(std::string_view stage,
                                             std::string_view fingerprint) const {
  RETURN_IF_ERROR(CheckSegments("stage name", stage, true));
  RETURN_IF_ERROR(CheckSegments("fingerprint", fingerprint, false));
  std::string prefix = keys_.DataPrefix() + std::string(stage) + "/" + std::string(fingerprint) +
                       "/" + NewRandomId() + "/";
  RETURN_IF_ERROR(ValidateKey(prefix));
  return prefix;
}

Result<std::string> Ledger::DataKey(std::string_view stage, std::string_view fingerprint,
                                    std::string_view file) const {
  RETURN_IF_ERROR(CheckSegments("data file name", file, true));
  ASSIGN_OR_RETURN(std::string prefix, NewAttemptPrefix(stage, fingerprint));
  std::string key = prefix + std::string(file);
  RETURN_IF_ERROR(ValidateKey(key));
  return key;
}

Result<std::string> Ledger::RunDataKey(std::string_view stage, std::string_view fingerprint,
                                       std::string_view extension) const {
  if (!extension.empty() && extension.front() != '.') {
    return InvalidArgument("data file extension " + Quoted(extension) + " must start with '.'");
  }
  return DataKey(stage, fingerprint, run_id_ + std::string(extension));
}

Result<DataObject> Ledger::PutData(std::string_view key, std::string_view data) {
  return ledger::PutData(*store_, key, data);
}

Result<DataObject> Ledger::PutDataFile(std::string_view key, const std::string& path) {
  return ledger::PutDataFile(*store_, key, path);
}

Result<DataObject> Ledger::PutDataFile(const DataObject& object, const std::string& path) {
  return ledger::PutDataFile(*store_, object, path);
}

Result<std::string> Ledger::GetData(const DataObject& object) {
  return ledger::GetData(*store_, object);
}

Status Ledger::GetDataToFile(const DataObject& object, const std::string& path) {
  return ledger::GetDataToFile(*store_, object, path);
}

Status Ledger::VerifyData(const Entry& entry, bool checksum) {
  return ledger::VerifyData(*store_, entry, checksum);
}

Result<std::vector<std::string>> Ledger::ReferencedKeys(bool include_history) {
  std::lock_guard<std::mutex> lock(commit_mu_);
  std::set<std::string> keys;
  uint64_t last;
  {
    std::lock_guard<std::mutex> g(mu_);
    for (const auto& [name, e] : state_.entries) {
      for (const auto& o : e.objects) keys.insert(o.key);
    }
    last = sequence_;
  }
  if (include_history) {
    // Retained history = the floor snapshot plus every record after it; newer snapshots only
    // repeat what those name.
    ASSIGN_OR_RETURN(std::optional<Floor> floor, ReadFloor());
    uint64_t from = 1;
    if (floor && floor->snapshot_sequence > 0) {
      ASSIGN_OR_RETURN(Snapshot snap, ReadSnapshot(floor->snapshot_sequence));
      for (const auto& [name, e] : snap.state.entries) {
        for (const auto& o : e.objects) keys.insert(o.key);
      }
      from = floor->snapshot_sequence + 1;
    }
    if (from <= last) {
      RETURN_IF_ERROR(FetchRecords(from, last, /*from_store=*/false,
                                   [&](Record& r, const std::string&, const std::string&) {
                                     for (const auto& [name, e] : r.changes.upserts) {
                                       for (const auto& o : e.objects) keys.insert(o.key);
                                     }
                                     return Status::OK();
                                   }));
    }
  }
  return std::vector<std::string>(keys.begin(), keys.end());
}

Result<LedgerGarbage> Ledger::CollectObsolete(size_t keep_snapshots) {
  if (keep_snapshots == 0) return InvalidArgument("CollectObsolete: keep at least one snapshot");
  std::lock_guard<std::mutex> lock(commit_mu_);
  if (options_.mode == LedgerMode::kReadOnly) {
    return FailedPrecondition("ledger " + Where() + " was opened read-only; cannot collect it");
  }
  RETURN_IF_ERROR(ReadForward());
  RETURN_IF_ERROR(CheckFenced());
  uint64_t last;
  uint64_t known_snapshot;
  {
    std::lock_guard<std::mutex> g(mu_);
    last = sequence_;
    known_snapshot = snapshot_sequence_;
  }
  ASSIGN_OR_RETURN(std::vector<uint64_t> snaps, ListSequences(keys_.SnapshotPrefix(), true));
  if (known_snapshot > 0) snaps.push_back(known_snapshot);
  std::sort(snaps.begin(), snaps.end(), std::greater<>());
  snaps.erase(std::unique(snaps.begin(), snaps.end()), snaps.end());
  uint64_t new_floor = 0;
  size_t readable = 0;
  for (uint64_t s : snaps) {
    if (s > last) continue;
    auto snap = ReadSnapshot(s);
    if (!snap.ok()) {
      if (snap.status().IsNotFound() || snap.status().code() == StatusCode::kDataLoss) continue;
      return snap.status();
    }
    if (readable == 0) {
      std::lock_guard<std::mutex> g(mu_);
      snapshot_sequence_ = std::max(snapshot_sequence_, s);  // newest readable: head names it
    }
    if (++readable == keep_snapshots) {
      new_floor = s;
      break;
    }
  }
  ASSIGN_OR_RETURN(std::optional<Floor> floor, ReadFloor());
  LedgerGarbage garbage;
  garbage.floor = floor ? floor->snapshot_sequence : 0;
  if (new_floor > garbage.floor) {
    Floor f;
    f.snapshot_sequence = new_floor;
    f.written_at_ms = options_.clock->WallNowMs();
    ASSIGN_OR_RETURN(std::string bytes, EncodeFloor(f));
    CrashPoint<"ledger:before-floor">();
    RETURN_IF_ERROR(store_->Put(keys_.Floor(), bytes));
    CrashPoint<"ledger:after-floor">();
    garbage.floor = new_floor;
  }
  if (garbage.floor == 0) return garbage;
  WriteHead().IgnoreError();  // point the hint at a snapshot above the floor
  if (mode_ == CommitMode::kCoordinator) {
    // The floor's own row stays: the coordinator's end is never below the floor.
    uint64_t deleted = 0;
    Status st = RetryCoordinatorCall(options_.retry, *options_.clock, [&]() -> Status {
      ASSIGN_OR_RETURN(deleted, coordinator_->DeleteBelow(Where(), garbage.floor));
      return Status::OK();
    });
    if (!st.ok()) {
      RESPAWN_LOG(kWarn, "ledger " << Where() << ": old coordinator rows not deleted (the next "
                                   << "GC retries): " << st.ToString());
    } else if (deleted > 0) {
      RESPAWN_LOG(kInfo, "ledger " << Where() << ": deleted " << deleted
                                   << " coordinator rows below record " << garbage.floor);
    }
  }
  ASSIGN_OR_RETURN(std::vector<uint64_t> records, ListSequences(keys_.RecordPrefix(), false));
  for (uint64_t s : records) {
    if (s <= garbage.floor) garbage.keys.push_back(keys_.Record(s));
  }
  for (uint64_t s : snaps) {
    if (s < garbage.floor) garbage.keys.push_back(keys_.Snapshot(s));
  }
  std::sort(garbage.keys.begin(), garbage.keys.end());
  return garbage;
}

Status Ledger::Close() {
  std::lock_guard<std::mutex> lock(commit_mu_);
  bool head_behind;
  {
    std::lock_guard<std::mutex> g(mu_);
    head_behind = !closed_ && options_.mode != LedgerMode::kReadOnly && fenced_.ok() &&
                  head_sequence_ < sequence_;
    closed_ = true;
  }
  // Records published since the hint was last written: point it at the end.
  if (head_behind) {
    Status st = WriteHead();
    if (!st.ok()) {
      RESPAWN_LOG(kWarn, "ledger " << Where() << ": head hint not written: " << st.ToString());
    }
  }
  if (lease_ != nullptr) return lease_->Release();
  return Status::OK();
}

}  // namespace respawn::ledger
