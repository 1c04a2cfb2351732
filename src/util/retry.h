// Exponential backoff with full jitter, shared by the S3 client and the retry wrapper (the one
// layer that retries store calls: storage/store.h says which), and by the ledger for its commit
// coordinator's calls.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

#include "util/clock.h"
#include "util/status.h"

namespace respawn {

struct RetryPolicy {
  int max_attempts = 6;                                         // total attempts, first included
  std::chrono::milliseconds base_delay{50};                     // first backoff ceiling
  std::chrono::milliseconds max_delay{5000};                    // cap of any single backoff
  std::chrono::milliseconds deadline{std::chrono::minutes(5)};  // give up after this in total

  /// Whether `s` is worth retrying the same call for (Unavailable, DeadlineExceeded).
  static bool IsRetryable(const Status& s) {
    return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
  }
};

/// Tracks attempts of one call. Usage:
///   Backoff b(policy);
///   for (;;) { Status s = Try(); if (!RetryPolicy::IsRetryable(s) || !b.Next()) return s; }
/// Not thread-safe; one per call.
class Backoff {
 public:
  /// Times the deadline and sleeps on `clock` (tests pass a ManualClock), which must outlive
  /// this.
  explicit Backoff(const RetryPolicy& policy, Clock& clock = *Clock::System());
  /// Sleeps for the next backoff and returns true, or returns false when attempts or the
  /// deadline are used up (a retry that could only start after the deadline is not made).
  bool Next();
  /// The delay Next() would sleep for attempt `attempt` (1-based), without sleeping (for tests).
  std::chrono::milliseconds DelayFor(int attempt);
  int attempts() const { return attempts_; }

 private:
  RetryPolicy policy_;
  Clock& clock_;
  int attempts_ = 1;
  Clock::SteadyTime start_;
  std::mt19937_64 rng_;
};

}  // namespace respawn
