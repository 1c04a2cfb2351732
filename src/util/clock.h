// Time behind an interface, so that logic that depends on it (leases, retry deadlines and
// backoff, grace periods) is tested without sleeping: tests pass a ManualClock and move it.
// The model is LevelDB's Env::NowMicros and RocksDB's SystemClock / MockSystemClock.
//
// Two kinds of time:
//   steady  monotonic, this process only: durations, deadlines, timeouts;
//   wall    Unix epoch milliseconds: timestamps people read and object mtimes are compared to.
// Never compare steady times across processes, nor decide safety by wall time.
//
// Thread-safety: every Clock is safe for concurrent use.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

namespace respawn {

class Clock {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;

  /// Monotonic time.
  virtual SteadyTime SteadyNow() = 0;
  /// Wall time, Unix epoch milliseconds.
  virtual int64_t WallNowMs() = 0;
  /// Blocks the calling thread for `duration` of steady time (nothing for zero or less).
  virtual void SleepFor(std::chrono::nanoseconds duration) = 0;

  /// The real clock of this process (std::chrono's steady and system clocks). Never null.
  static const std::shared_ptr<Clock>& System();
};

/// A clock that moves only when told: Advance(), or SleepFor() (which advances it at once
/// instead of blocking, so code that waits runs through its waits instantly). Steady and wall
/// time move together; SetWallMs() makes the wall clock jump without moving steady time.
class ManualClock final : public Clock {
 public:
  /// Starts at an arbitrary steady time and at `wall_ms` (default: 2024-01-01T00:00:00Z).
  explicit ManualClock(int64_t wall_ms = 1'704'067'200'000);

  SteadyTime SteadyNow() override;
  int64_t WallNowMs() override;
  /// Advances the clock by `duration`, or, with a sleep hook set, calls the hook instead (the
  /// hook then moves the clock). A SleepFor made from inside the hook just advances.
  void SleepFor(std::chrono::nanoseconds duration) override;

  /// Moves steady and wall time forward by `duration` (>= 0).
  void Advance(std::chrono::nanoseconds duration);
  /// Sets the wall time; steady time does not move.
  void SetWallMs(int64_t wall_ms);
  /// Lets a test act while code "sleeps": SleepFor(d) calls `hook(d)`, which must advance the
  /// clock (e.g. in steps, doing something between them). Empty: SleepFor just advances.
  void SetSleepHook(std::function<void(std::chrono::nanoseconds)> hook);
  /// Total steady time slept through SleepFor.
  std::chrono::nanoseconds slept() const;

 private:
  mutable std::mutex mu_;
  std::chrono::nanoseconds steady_{std::chrono::hours(1)};  // GUARDED_BY(mu_)
  int64_t wall_ms_;                                         // GUARDED_BY(mu_)
  std::chrono::nanoseconds wall_extra_{0};  // sub-millisecond wall remainder; GUARDED_BY(mu_)
  std::chrono::nanoseconds slept_{0};       // GUARDED_BY(mu_)
  std::function<void(std::chrono::nanoseconds)> hook_;  // GUARDED_BY(mu_)
};

}  // namespace respawn
