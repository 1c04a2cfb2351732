// The writer lease of the single-writer commit mode (ledger.h, "Commit modes"): on a store that
// cannot put-if-absent and has no commit coordinator, a user who promises that only one process
// writes (`--single-writer`) gets this lease as best-effort detection of a second writer. It is
// not safe against a writer that is paused (VM freeze, SIGSTOP, swap) between its lease check
// and its record PUT: nothing the store checks fences such a writer. ledger.h states the
// assumptions.
//
// Time: every decision uses this process's steady clock (the Clock given, util/clock.h; tests
// pass a ManualClock), never a comparison of wall clocks
// across machines. A holder counts its lease from just before it wrote it (minus
// max_clock_skew). An acquirer that finds another holder's lease times it from when it first
// saw that exact version of the lease object: only after the version stayed unchanged for the
// lease's TTL plus max_clock_skew on the acquirer's own clock may it take over. (The wall-clock
// times in the object are for people reading it.)
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "ledger/record.h"
#include "storage/store.h"
#include "util/clock.h"

namespace respawn::ledger {

struct LeaseOptions {
  std::chrono::milliseconds ttl{30000};  // a lease lives this long unless renewed
  std::chrono::milliseconds settle{0};   // wait before read-back; 0 = auto:
                                         // max(100 ms, 2 x the observed lease PUT)
  /// How long Acquire waits for another holder's lease to end. nullopt: ttl + max_clock_skew +
  /// 1 s, enough to outwait the lease of a holder that died (which has to be observed for a
  /// whole TTL before it counts as expired).
  std::optional<std::chrono::milliseconds> wait;
  /// Margin for clocks that run at different rates over one TTL and for the delay between a
  /// lease write and its observation.
  std::chrono::milliseconds max_clock_skew{2000};
};

/// One writer's claim on "<ns>/ledger/lease.json". Not thread-safe: the Ledger serializes calls.
class LeaseHolder {
 public:
  using Duration = Clock::SteadyTime::duration;

  /// Store calls are made once (the store retries its own, store.h). `clock` times the lease,
  /// the waits and the timestamps in the lease object.
  LeaseHolder(Store& store, std::string key, std::string holder, std::string run_id,
              LeaseOptions options, std::shared_ptr<Clock> clock);

  /// Acquires the lease for `epoch`: read it; if another holder's lease is live (that version
  /// was first seen less than its TTL + max_clock_skew ago, on this process's clock), wait (up
  /// to options.wait) for it to expire, else FailedPrecondition naming the holder; write ours;
  /// wait `settle`; read back and confirm it is still ours (else another writer won the race:
  /// wait or fail as above). Crash point: "ledger:lease-acquired".
  Status Acquire(uint64_t epoch);

  /// Before each publish: confirms (by GET) that the lease still names us, and renews it when
  /// less than half its TTL remains. If ours may have expired it is acquired anew (with the
  /// settle wait). FailedPrecondition with StatusDetail::kFenced naming the new holder if
  /// another writer took it over. Crash points: "ledger:before-lease-renew",
  /// "ledger:after-lease-renew".
  Status Ensure();

  /// After a record PUT: confirms (by GET) that the lease still names us and that it did not
  /// run out while the PUT ran. Otherwise the lease counts as lost: FailedPrecondition with
  /// StatusDetail::kFenced (another writer holds it, it disappeared, or it ran out: in every
  /// case this process must stop committing).
  Status Recheck();

  /// How long the lease is still ours by this process's clock (already less max_clock_skew);
  /// zero or negative when it may have expired. A record PUT must finish within it.
  std::chrono::milliseconds TimeLeft() const;

  /// Deletes the lease if it is still ours and live, so the next writer need not wait for it
  /// to expire. Best effort: an error leaves a lease that expires by itself.
  Status Release();

  void set_epoch(uint64_t epoch) { epoch_ = epoch; }
  bool held() const { return held_; }
  /// The settle wait the last acquisition used.
  std::chrono::milliseconds last_settle() const { return last_settle_; }

 private:
  /// The lease object (and its exact bytes), or nullopt if absent (a corrupt lease counts as
  /// absent: it protects no one).
  Result<std::optional<Lease>> Read(std::string* bytes = nullptr);
  Status Write(const Lease& lease, std::chrono::microseconds* latency);
  /// One attempt. Not won: `other` is the holder in the way and `other_left` how long its
  /// lease may still live as observed here.
  Status TryAcquireOnce(uint64_t epoch, bool* won, Lease* other, Duration* other_left);
  Status HeldBy(const Lease& other, Duration left) const;
  Status TakenOver(const Lease& current, std::string_view how);
  std::chrono::milliseconds Wait() const;

  Store& store_;
  std::string key_;
  std::string holder_;
  std::string run_id_;
  LeaseOptions options_;
  std::shared_ptr<Clock> clock_;
  uint64_t epoch_ = 0;
  bool held_ = false;
  std::string nonce_;
  int64_t acquired_at_ms_ = 0;       // wall clock, for people reading the object
  Clock::SteadyTime valid_until_{};  // ours ends here (this process's clock), skew deducted
  // Another holder's lease as first observed: its exact bytes and when we first saw them.
  std::string observed_bytes_;
  Clock::SteadyTime observed_at_{};
  std::chrono::milliseconds last_settle_{0};
};

/// Unix epoch milliseconds, system clock (timestamps in records and leases, for people).
int64_t WallClockMs();

}  // namespace respawn::ledger
