// The writer lease: how a ledger stays single-writer on stores that cannot put-if-absent
// (capabilities().put_if_absent == false, e.g. OpenStack Swift). See ledger.h, "Lease mode",
// for the assumptions it rests on.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "ledger/record.h"
#include "storage/store.h"
#include "util/retry.h"

namespace respawn::ledger {

struct LeaseOptions {
  std::chrono::milliseconds ttl{30000};            // a lease lives this long unless renewed
  std::chrono::milliseconds settle{0};             // wait before read-back; 0 = auto:
                                                   // max(100 ms, 2 x the observed lease PUT)
  std::chrono::milliseconds wait{0};               // how long Acquire waits for a live holder
  std::chrono::milliseconds max_clock_skew{2000};  // assumed bound on clock differences
};

/// One writer's claim on "<ns>/ledger/lease.json". Not thread-safe: the Ledger serializes calls.
class LeaseHolder {
 public:
  LeaseHolder(Store& store, std::string key, std::string holder, std::string run_id,
              LeaseOptions options, RetryPolicy retry);

  /// Acquires the lease for `epoch`: read it; if another holder's lease is live (its expiry plus
  /// max_clock_skew is in the future) wait up to options.wait for it to expire, else
  /// FailedPrecondition naming the holder; write ours; wait `settle`; read back and confirm it is
  /// still ours (else another writer won the race: wait or fail as above).
  /// Crash point: "ledger:lease-acquired".
  Status Acquire(uint64_t epoch);

  /// Before each publish: confirms (by GET) that the lease still names us, and renews it when
  /// less than half its TTL remains. If ours expired it is re-acquired (with the settle wait).
  /// FailedPrecondition naming the new holder if another writer took it over.
  /// Crash points: "ledger:before-lease-renew", "ledger:after-lease-renew".
  Status Ensure();

  /// Deletes the lease if it is still ours and live, so the next writer need not wait for it
  /// to expire. Best effort: an error leaves a lease that expires by itself.
  Status Release();

  void set_epoch(uint64_t epoch) { epoch_ = epoch; }
  bool held() const { return held_; }
  int64_t expires_at_ms() const { return expires_at_ms_; }
  /// The settle wait the last acquisition used.
  std::chrono::milliseconds last_settle() const { return last_settle_; }

 private:
  /// The lease object, or nullopt if absent (a corrupt lease counts as absent: it protects no one).
  Result<std::optional<Lease>> Read();
  Status Write(const Lease& lease, std::chrono::microseconds* latency);
  Status TryAcquireOnce(uint64_t epoch, bool* won, Lease* other);
  Status HeldBy(const Lease& other) const;

  Store& store_;
  std::string key_;
  std::string holder_;
  std::string run_id_;
  LeaseOptions options_;
  RetryPolicy retry_;
  uint64_t epoch_ = 0;
  bool held_ = false;
  std::string nonce_;
  int64_t acquired_at_ms_ = 0;
  int64_t expires_at_ms_ = 0;
  std::chrono::milliseconds last_settle_{0};
};

/// Unix epoch milliseconds, system clock.
int64_t WallClockMs();

}  // namespace respawn::ledger
