#include "util/clock.h"

#include <thread>
#include <utility>

namespace respawn {
namespace {

class SystemClock final : public Clock {
 public:
  SteadyTime SteadyNow() override { return std::chrono::steady_clock::now(); }
  int64_t WallNowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void SleepFor(std::chrono::nanoseconds duration) override {
    if (duration.count() > 0) std::this_thread::sleep_for(duration);
  }
};

// The thread running a ManualClock's sleep hook: its own SleepFor calls just advance.
thread_local const ManualClock* in_hook = nullptr;

}  // namespace

const std::shared_ptr<Clock>& Clock::System() {
  static const std::shared_ptr<Clock> clock = std::make_shared<SystemClock>();
  return clock;
}

ManualClock::ManualClock(int64_t wall_ms) : wall_ms_(wall_ms) {}

Clock::SteadyTime ManualClock::SteadyNow() {
  std::lock_guard<std::mutex> lock(mu_);
  return SteadyTime(std::chrono::duration_cast<SteadyTime::duration>(steady_));
}

int64_t ManualClock::WallNowMs() {
  std::lock_guard<std::mutex> lock(mu_);
  return wall_ms_;
}

void ManualClock::Advance(std::chrono::nanoseconds duration) {
  if (duration.count() <= 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  steady_ += duration;
  wall_extra_ += duration;
  const auto whole = std::chrono::duration_cast<std::chrono::milliseconds>(wall_extra_);
  wall_ms_ += whole.count();
  wall_extra_ -= whole;
}

void ManualClock::SleepFor(std::chrono::nanoseconds duration) {
  if (duration.count() <= 0) return;
  std::function<void(std::chrono::nanoseconds)> hook;
  {
    std::lock_guard<std::mutex> lock(mu_);
    slept_ += duration;
    if (in_hook != this) hook = hook_;
  }
  if (!hook) {
    Advance(duration);
    return;
  }
  in_hook = this;
  hook(duration);
  in_hook = nullptr;
}

void ManualClock::SetWallMs(int64_t wall_ms) {
  std::lock_guard<std::mutex> lock(mu_);
  wall_ms_ = wall_ms;
  wall_extra_ = std::chrono::nanoseconds(0);
}

void ManualClock::SetSleepHook(std::function<void(std::chrono::nanoseconds)> hook) {
  std::lock_guard<std::mutex> lock(mu_);
  hook_ = std::move(hook);
}

std::chrono::nanoseconds ManualClock::slept() const {
  std::lock_guard<std::mutex> lock(mu_);
  return slept_;
}

}  // namespace respawn
