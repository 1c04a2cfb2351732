// Fault injection around any Store (RocksDB's FaultInjectionTestFS, for objects): per-operation
// error probability and kinds, added latency, listings that lag behind writes (old S3, Swift
// container listings), and named crash points around each operation.
//
// Configured by a spec string, in code or through RESPAWN_CHAOS for the `respawn` binary:
//   "error_rate=0.1,ops=put+get,errors=unavailable+timeout,latency_ms=5,list_lag_ms=2000,seed=7"
// Keys:
//   error_rate   probability in [0,1] that a call fails before reaching the store (default 0)
//   after_rate   probability that a *successful* Put fails afterwards with Unavailable (the
//                write landed but the caller is told it timed out; exercises ambiguous commits)
//   ops          '+'-separated subset of put,get,stat,list,delete (default all)
//   errors       '+'-separated subset of unavailable,timeout,reset,slowdown (default unavailable)
//   latency_ms   added to every call
//   list_lag_ms  objects written (or deleted) less than this long ago are hidden from (or still
//                shown in) List
//   seed         RNG seed (default: random)
//   put_if_absent  "off" hides the target's put-if-absent: capabilities() says it has none (the
//                ledger then commits as on Swift) and a put with if_absent fails Unimplemented,
//                as Swift's 501 does; "on" (default) keeps what the target can do
// Crash points: each call passes CrashPoint("store:<op>:before") and "store:<op>:after"
// (util/crash_point.h), which RESPAWN_CRASH_AT arms.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "storage/store.h"
#include "util/clock.h"

namespace respawn {

struct ChaosSpec {
  double error_rate = 0;
  double after_rate = 0;
  std::set<std::string> ops;     // empty = all
  std::set<std::string> errors;  // empty = {"unavailable"}
  int latency_ms = 0;
  int list_lag_ms = 0;
  uint64_t seed = 0;  // 0 = random
  bool hide_put_if_absent = false;
  bool enabled() const {
    return error_rate > 0 || after_rate > 0 || latency_ms > 0 || list_lag_ms > 0 ||
           hide_put_if_absent;
  }
};

/// InvalidArgument naming the bad key or value.
Result<ChaosSpec> ParseChaosSpec(std::string_view spec);

class ChaosStore : public StoreWrapper {
 public:
  using StoreWrapper::Get;
  using StoreWrapper::GetToFile;
  using StoreWrapper::Put;
  using StoreWrapper::PutFile;

  /// Latency sleeps and listing lag are timed on `clock` (tests pass a ManualClock).
  ChaosStore(std::shared_ptr<Store> target, ChaosSpec spec,
             std::shared_ptr<Clock> clock = Clock::System());

  /// Listing lag makes listing inconsistent, whatever the target says; put_if_absent=off takes
  /// put-if-absent away.
  Capabilities capabilities() const override;

  Status Put(std::string_view key, std::string_view data, const PutOptions& o) override;
  Status PutFile(std::string_view key, const std::string& path, const PutOptions& o) override;
  Result<std::string> Get(std::string_view key, const GetOptions& o) override;
  Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length) override;
  Status GetToFile(std::string_view key, const std::string& path, const GetOptions& o) override;
  /// Always "": reading or writing the file behind an object directly would bypass the faults,
  /// latency and crash points this store injects.
  std::string LocalPath(std::string_view key) const override {
    (void)key;
    return "";
  }
  Result<ObjectInfo> Stat(std::string_view key) override;
  Result<ListPage> List(const ListOptions& o) override;
  Status Delete(std::string_view key) override;
  Result<DeleteResult> DeleteMany(const std::vector<std::string>& keys) override;

  uint64_t injected_errors() const;

 private:
  // Unimplemented for a put with if_absent while put_if_absent=off; OK otherwise.
  Status HiddenPutIfAbsent(std::string_view key, const PutOptions& o) const;
  friend class ChaosStorePeer;  // unit tests

  // Notes on behaviour (contracts of the implementation):
  // - `ops` selects the operations that get errors and latency (Put/PutFile are put;
  //   Get/GetRange/GetToFile are get; Delete/DeleteMany are delete). Crash points and listing
  //   lag apply to every operation.
  // - DeleteMany draws per key: injected keys land in DeleteResult::failed, the rest reach the
  //   target.
  // - With list_lag_ms, a Put hides the key from List until the lag has passed (also when it
  //   overwrote an older object), and a Delete keeps the key listed, with the ObjectInfo a Stat
  //   returned just before the delete. Common prefixes are never hidden. Continuation tokens
  //   are wrapped so each page knows where the previous one ended; a page may carry a few more
  //   than max_keys entries (the lingering deleted keys that fall inside it).
  struct DeletedObject {
    int64_t at_ms = 0;  // steady clock
    ObjectInfo info;
  };

  /// Passes the "before" crash point, then (for selected ops) sleeps and maybe injects an
  /// error for `what` ("put KEY").
  Status Before(std::string_view op, std::string_view what);
  void After(std::string_view op);
  bool Selected(std::string_view op) const;
  /// Draws an error with probability error_rate; OK otherwise. REQUIRES: mu_ held.
  Status MaybeInjectLocked(std::string_view what);
  /// Whether a successful put should be reported as failed (after_rate).
  bool DrawAfterFailure();
  void NoteWrite(std::string_view key);
  /// Stats `key` on the target (before a delete) when listing lag is on.
  std::optional<ObjectInfo> InfoBeforeDelete(std::string_view key);
  void NoteDelete(std::string_view key, std::optional<ObjectInfo> info);
  /// Drops bookkeeping older than the lag. REQUIRES: mu_ held.
  void PruneLocked(int64_t now_ms);

  int64_t SteadyMs() const;

  ChaosSpec spec_;
  std::shared_ptr<Clock> clock_;
  mutable std::mutex mu_;
  std::mt19937_64 rng_;                                  // GUARDED_BY(mu_)
  uint64_t injected_ = 0;                                // GUARDED_BY(mu_)
  std::map<std::string, int64_t> recent_writes_;         // key -> steady ms; GUARDED_BY(mu_)
  std::map<std::string, DeletedObject> recent_deletes_;  // GUARDED_BY(mu_)
  // Invariant: every entry of recent_writes_/recent_deletes_ has an entry here with its time,
  // in time order, so pruning pops from the front.
  std::deque<std::pair<int64_t, std::string>> write_order_;   // GUARDED_BY(mu_)
  std::deque<std::pair<int64_t, std::string>> delete_order_;  // GUARDED_BY(mu_)
};

}  // namespace respawn
