#include "ledger/repair.h"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "ledger/data.h"
#include "ledger/lease.h"
#include "util/json.h"

namespace respawn::ledger {
namespace {

Result<std::optional<std::string>> GetOptional(Store& store, const std::string& key) {
  Result<std::string> r = store.Get(key);
  if (r.status().IsNotFound()) return std::optional<std::string>();
  if (!r.ok()) return r.status();
  return std::optional<std::string>(std::move(r).value());
}

// What a damaged record held, read without trusting its checksum (the body may still parse).
std::vector<std::string> ReadableContents(const std::string& bytes) {
  const std::string marker = "\"body\":";
  size_t at = bytes.find(marker);
  size_t close = bytes.rfind('}');
  nlohmann::json body = nlohmann::json::value_t::discarded;
  if (at != std::string::npos && close != std::string::npos && close > at) {
    body = nlohmann::json::parse(bytes.substr(at + marker.size(), close - at - marker.size()),
                                 nullptr, /*allow_exceptions=*/false);
  }
  if (!body.is_object()) {
    return {"contents unreadable (" + std::to_string(bytes.size()) + " bytes)"};
  }
  std::vector<std::string> out;
  const std::string kind = JsonValueOr(body, "kind", std::string());
  if (kind == "claim") {
    out.push_back("claim of epoch " + std::to_string(JsonValueOr(body, "epoch", uint64_t{0})) +
                  " by run " + JsonValueOr(body, "run_id", std::string()));
  }
  if (const auto it = body.find("upserts"); it != body.end() && it->is_object()) {
    for (const auto& [name, value] : it->items()) {
      std::string fp = JsonValueOr(value, "fingerprint", std::string());
      out.push_back(name + (fp.empty() ? "" : " (fingerprint " + fp + ")"));
    }
  }
  if (const auto it = body.find("removals"); it != body.end() && it->is_array()) {
    for (const auto& name : *it) {
      if (name.is_string()) out.push_back("removed " + name.get<std::string>());
    }
  }
  if (out.empty()) out.push_back("nothing readable (a " + kind + " record)");
  return out;
}

class Scan {
 public:
  Scan(Store& store, const std::string& ns, bool apply, std::string writer)
      : store_(store), keys_(ns), apply_(apply), writer_(std::move(writer)) {
    out_.ns = ns;
  }

  Result<LedgerInspection> Run() {
    RETURN_IF_ERROR(ReadHints());
    RETURN_IF_ERROR(ListObjects());
    RETURN_IF_ERROR(FindEnd());
    RETURN_IF_ERROR(ChooseBase());
    RETURN_IF_ERROR(Replay());
    RETURN_IF_ERROR(FixSnapshots());
    RETURN_IF_ERROR(FixFloor());
    std::sort(out_.damage.begin(), out_.damage.end(),
              [](const LedgerDamage& a, const LedgerDamage& b) { return a.key < b.key; });
    out_.state = state_;
    return std::move(out_);
  }

 private:
  void Damage(LedgerDamage d) { out_.damage.push_back(std::move(d)); }

  Status ReadHints() {
    ASSIGN_OR_RETURN(std::optional<std::string> head, GetOptional(store_, keys_.Head()));
    if (head) {
      Result<HeadHint> h = DecodeHead(keys_.Head(), *head);
      if (h.ok()) {
        head_sequence_ = h->sequence;
      } else {
        Damage({LedgerDamage::Kind::kCorrupt,
                keys_.Head(),
                "head",
                0,
                h.status().message(),
                false,
                {},
                "delete it (a hint; the next writer writes it anew)"});
        if (apply_) RETURN_IF_ERROR(store_.Delete(keys_.Head()));
      }
    }
    ASSIGN_OR_RETURN(std::optional<std::string> floor, GetOptional(store_, keys_.Floor()));
    if (floor) {
      Result<Floor> f = DecodeFloor(keys_.Floor(), *floor);
      if (f.ok()) {
        out_.floor = f->snapshot_sequence;
      } else {
        floor_corrupt_ = true;
        Damage({LedgerDamage::Kind::kCorrupt,
                keys_.Floor(),
                "floor",
                0,
                f.status().message(),
                true,
                {},
                "rewrite it to name the snapshot recovery starts from"});
      }
    }
    ASSIGN_OR_RETURN(std::optional<std::string> lease, GetOptional(store_, keys_.Lease()));
    if (lease) {
      Result<Lease> l = DecodeLease(keys_.Lease(), *lease);
      if (!l.ok()) {
        Damage({LedgerDamage::Kind::kCorrupt,
                keys_.Lease(),
                "lease",
                0,
                l.status().message(),
                false,
                {},
                "delete it (a writer takes a new lease)"});
        if (apply_) RETURN_IF_ERROR(store_.Delete(keys_.Lease()));
      }
    }
    return Status::OK();
  }

  Status ListObjects() {
    ASSIGN_OR_RETURN(std::vector<ObjectInfo> recs, ListAll(store_, keys_.RecordPrefix()));
    for (const ObjectInfo& o : recs) {
      if (uint64_t s = keys_.SequenceOfRecord(o.key); s > 0) records_.insert(s);
    }
    ASSIGN_OR_RETURN(std::vector<ObjectInfo> snaps, ListAll(store_, keys_.SnapshotPrefix()));
    std::set<uint64_t> seqs;
    for (const ObjectInfo& o : snaps) {
      if (uint64_t s = keys_.SequenceOfSnapshot(o.key); s > 0) seqs.insert(s);
    }
    if (out_.floor > 0) seqs.insert(out_.floor);
    for (uint64_t s : seqs) {
      std::string key = keys_.Snapshot(s);
      ASSIGN_OR_RETURN(std::optional<std::string> bytes, GetOptional(store_, key));
      ++out_.snapshots_read;
      if (!bytes) {
        missing_snapshots_.insert(s);  // named by floor.json only
        continue;
      }
      Result<Snapshot> snap = DecodeSnapshot(key, s, *bytes);
      if (snap.ok()) {
        snapshots_.emplace(s, std::move(snap).value());
      } else {
        corrupt_snapshots_.emplace(s, snap.status().message());
      }
    }
    return Status::OK();
  }

  // The end: the highest record listed, named by head.json, or found by probing past them.
  Status FindEnd() {
    uint64_t end = records_.empty() ? 0 : *records_.rbegin();
    end = std::max(end, head_sequence_);
    for (;;) {
      Result<ObjectInfo> next = store_.Stat(keys_.Record(end + 1));
      if (next.status().IsNotFound()) break;
      if (!next.ok()) return next.status();
      ++end;
      records_.insert(end);
    }
    out_.end = end;
    return Status::OK();
  }

  // Where replay starts: the floor snapshot (records at or below it may be collected), else the
  // newest readable snapshot below the lowest record left, else nothing (record 1).
  Status ChooseBase() {
    uint64_t lowest = records_.empty() ? out_.end + 1 : *records_.begin();
    if (floor_corrupt_ || out_.floor == 0) {
      base_sequence_ = lowest > 0 ? lowest - 1 : 0;
    } else {
      base_sequence_ = out_.floor;
    }
    base_sequence_ = std::min(base_sequence_, out_.end);
    if (base_sequence_ == 0) return Status::OK();
    if (auto it = snapshots_.find(base_sequence_); it != snapshots_.end()) {
      state_ = it->second.state;
      last_checksum_ = it->second.record_checksum;
      return Status::OK();
    }
    // The base snapshot is damaged or gone. Rebuild it exactly when an older base and every
    // record up to it are readable; else start from an empty state at that point.
    for (auto it = snapshots_.rbegin(); it != snapshots_.rend(); ++it) {
      if (it->first < base_sequence_ && RebuildFrom(it->second)) return Status::OK();
    }
    Snapshot empty;
    if (RebuildFrom(empty)) return Status::OK();
    // Nothing to rebuild from: an empty state that links to the next record and keeps the epoch
    // it acts under (else replay would ignore its commits as unclaimed).
    state_ = LedgerState();
    last_checksum_.clear();
    for (uint64_t n = base_sequence_ + 1; n <= out_.end; ++n) {
      Result<std::string> bytes = store_.Get(keys_.Record(n));
      if (!bytes.ok()) continue;
      Result<Record> r = DecodeRecord(keys_.Record(n), n, *bytes, nullptr);
      if (!r.ok()) continue;
      if (n == base_sequence_ + 1) last_checksum_ = r->prev;
      if (r->kind == RecordKind::kCommit) {
        state_.max_epoch = r->epoch;
        state_.epoch_writer = r->epoch_owner;
        state_.epoch_run_id = r->run_id;
        state_.epoch_sequence = base_sequence_;
      }
      break;
    }
    base_snapshot_ = Snapshot{base_sequence_, last_checksum_, state_};
    return Status::OK();
  }

  // Replays `from` plus records (from.sequence, base_sequence_] if all verify; true on success.
  bool RebuildFrom(const Snapshot& from) {
    LedgerState state = from.state;
    std::string checksum = from.record_checksum;
    for (uint64_t s = from.sequence + 1; s <= base_sequence_; ++s) {
      Result<std::string> bytes = store_.Get(keys_.Record(s));
      if (!bytes.ok()) return false;
      std::string sum;
      Result<Record> r = DecodeRecord(keys_.Record(s), s, *bytes, &sum);
      if (!r.ok() || r->prev != checksum) return false;
      ApplyRecord(*r, state);
      checksum = r->kind == RecordKind::kVoid && !r->chain.empty() ? r->chain : sum;
    }
    state_ = std::move(state);
    last_checksum_ = checksum;
    rebuilt_base_ = true;
    base_snapshot_ = Snapshot{base_sequence_, last_checksum_, state_};
    return true;
  }

  // Reads records (base_sequence_, end], replacing each damaged one by a void record.
  Status Replay() {
    for (uint64_t s : records_) {
      if (s <= base_sequence_) RETURN_IF_ERROR(CheckBelowFloor(s));
    }
    std::optional<Record> next;  // the record after the current one, when read ahead
    std::string next_sum;
    std::optional<std::string> next_bytes;
    for (uint64_t s = base_sequence_ + 1; s <= out_.end; ++s) {
      const std::string key = keys_.Record(s);
      ASSIGN_OR_RETURN(std::optional<std::string> bytes, GetOptional(store_, key));
      ++out_.records_read;
      std::string sum;
      Result<Record> r = bytes ? DecodeRecord(key, s, *bytes, &sum)
                               : Result<Record>(NotFound("record " + key + " is missing"));
      if (r.ok() && r->prev != last_checksum_) {
        r = DataLoss("ledger record " + key +
                     " does not continue the chain (its predecessor "
                     "was replaced or overwritten)");
      }
      if (r.ok()) {
        ApplyRecord(*r, state_);
        last_checksum_ = r->kind == RecordKind::kVoid && !r->chain.empty() ? r->chain : sum;
        RememberSnapshotState(s);
        continue;
      }
      RETURN_IF_ERROR(ReplaceByVoid(s, bytes, r.status()));
      RememberSnapshotState(s);
    }
    return Status::OK();
  }

  Status CheckBelowFloor(uint64_t s) {
    const std::string key = keys_.Record(s);
    Result<std::string> bytes = store_.Get(key);
    if (bytes.status().IsNotFound()) return Status::OK();  // collected meanwhile
    if (!bytes.ok()) return bytes.status();
    ++out_.records_read;
    Result<Record> r = DecodeRecord(key, s, *bytes, nullptr);
    if (!r.ok()) {
      Damage({LedgerDamage::Kind::kCorrupt, key, "record", s, r.status().message(), false,
              ReadableContents(*bytes),
              "none needed: it is at or below the GC floor (GC deletes it)"});
    }
    return Status::OK();
  }

  Status ReplaceByVoid(uint64_t s, const std::optional<std::string>& bytes, const Status& why) {
    const std::string key = keys_.Record(s);
    Record v;
    v.sequence = s;
    v.kind = RecordKind::kVoid;
    v.prev = last_checksum_;
    v.writer = writer_;
    v.commit_id = NewRandomId();
    v.committed_at_ms = WallClockMs();
    v.lost = bytes ? ReadableContents(*bytes) : std::vector<std::string>{"the record is missing"};
    // Keep the epoch going: what the next readable record acts under.
    v.epoch = state_.max_epoch;
    v.epoch_owner = state_.epoch_writer;
    v.run_id = state_.epoch_run_id;
    for (uint64_t n = s + 1; n <= out_.end; ++n) {
      Result<std::string> nb = store_.Get(keys_.Record(n));
      if (!nb.ok()) continue;
      Result<Record> nr = DecodeRecord(keys_.Record(n), n, *nb, nullptr);
      if (!nr.ok()) continue;
      if (n == s + 1) v.chain = nr->prev;
      if (nr->kind == RecordKind::kCommit && nr->epoch > state_.max_epoch) {
        v.epoch = nr->epoch;
        v.epoch_owner = nr->epoch_owner;
        v.run_id = nr->run_id;
      }
      break;
    }
    std::string sum;
    ASSIGN_OR_RETURN(std::string encoded, EncodeRecord(v, &sum));
    LedgerDamage d{bytes ? LedgerDamage::Kind::kCorrupt : LedgerDamage::Kind::kMissing,
                   key,
                   "record",
                   s,
                   why.message(),
                   true,
                   v.lost,
                   "replace it by a void record: what it committed is recomputed by the next run"};
    Damage(std::move(d));
    if (apply_) RETURN_IF_ERROR(store_.Put(key, encoded));
    ApplyRecord(v, state_);
    last_checksum_ = v.chain.empty() ? sum : v.chain;
    return Status::OK();
  }

  void RememberSnapshotState(uint64_t s) {
    if (corrupt_snapshots_.count(s) || missing_snapshots_.count(s)) {
      Snapshot snap;
      snap.sequence = s;
      snap.record_checksum = last_checksum_;
      snap.state = state_;
      rebuilt_.emplace(s, std::move(snap));
    }
  }

  Status FixSnapshots() {
    std::set<uint64_t> bad;
    for (const auto& [s, why] : corrupt_snapshots_) bad.insert(s);
    for (uint64_t s : missing_snapshots_) bad.insert(s);
    for (uint64_t s : bad) {
      const std::string key = keys_.Snapshot(s);
      const bool missing = missing_snapshots_.count(s) > 0;
      LedgerDamage d{missing ? LedgerDamage::Kind::kMissing : LedgerDamage::Kind::kCorrupt,
                     key,
                     "snapshot",
                     s,
                     missing ? "snapshot named by floor.json is missing" : corrupt_snapshots_[s],
                     false,
                     {},
                     ""};
      std::optional<Snapshot> replacement;
      if (auto it = rebuilt_.find(s); it != rebuilt_.end()) {
        d.fix = "rebuild it from the records (nothing is lost)";
        replacement = it->second;
      } else if (s == base_sequence_) {
        d.needed = true;
        if (rebuilt_base_) {
          d.fix = "rebuild it from an older snapshot and the records (nothing is lost)";
        } else {
          d.fix =
              "replace it by an empty snapshot: the records before it were collected, so "
              "every checkpoint committed up to record " +
              std::to_string(s) + " is recomputed by the next run";
          d.held = {"everything committed up to record " + std::to_string(s)};
        }
        replacement = base_snapshot_;
      } else if (s < base_sequence_) {
        d.fix = "delete it (below the snapshot recovery starts from)";
      } else {
        d.fix = "delete it (derived data; the records stand in for it)";
      }
      Damage(std::move(d));
      if (!apply_) continue;
      if (replacement) {
        ASSIGN_OR_RETURN(std::string bytes, EncodeSnapshot(*replacement));
        RETURN_IF_ERROR(store_.Put(key, bytes));
      } else if (!missing) {
        RETURN_IF_ERROR(store_.Delete(key));
      }
    }
    return Status::OK();
  }

  Status FixFloor() {
    if (!floor_corrupt_) return Status::OK();
    if (!apply_) return Status::OK();
    if (base_sequence_ == 0) return store_.Delete(keys_.Floor());
    Floor f;
    f.snapshot_sequence = base_sequence_;
    f.written_at_ms = WallClockMs();
    ASSIGN_OR_RETURN(std::string bytes, EncodeFloor(f));
    return store_.Put(keys_.Floor(), bytes);
  }

  Store& store_;
  Keys keys_;
  const bool apply_;
  const std::string writer_;
  LedgerInspection out_;

  uint64_t head_sequence_ = 0;
  bool floor_corrupt_ = false;
  std::set<uint64_t> records_;              // existing record sequences
  std::map<uint64_t, Snapshot> snapshots_;  // readable snapshots
  std::map<uint64_t, std::string> corrupt_snapshots_;
  std::set<uint64_t> missing_snapshots_;
  std::map<uint64_t, Snapshot> rebuilt_;  // exact states for damaged snapshots
  uint64_t base_sequence_ = 0;
  bool rebuilt_base_ = false;
  Snapshot base_snapshot_;  // what replaces a damaged base snapshot (rebuilt, or empty)
  LedgerState state_;
  std::string last_checksum_;
};

}  // namespace

Result<LedgerInspection> InspectLedger(Store& store, const std::string& ns) {
  return Scan(store, ns, /*apply=*/false, "").Run();
}

Result<LedgerInspection> RepairLedger(Store& store, const std::string& ns,
                                      const std::string& writer) {
  return Scan(store, ns, /*apply=*/true, writer).Run();
}

}  // namespace respawn::ledger
