#include "util/retry.h"

#include <algorithm>

namespace respawn {

Backoff::Backoff(const RetryPolicy& policy, Clock& clock)
    : policy_(policy), clock_(clock), start_(clock.SteadyNow()), rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::DelayFor(int attempt) {
  // Full jitter (AWS architecture blog's recommendation): uniform in [0, min(cap, base*2^n)].
  const int64_t base = policy_.base_delay.count();
  const int64_t cap = policy_.max_delay.count();
  int64_t ceiling = base;
  for (int i = 1; i < attempt && ceiling < cap; ++i) ceiling *= 2;
  ceiling = std::max<int64_t>(1, std::min(ceiling, cap));
  std::uniform_int_distribution<int64_t> dist(ceiling / 4, ceiling);
  return std::chrono::milliseconds(dist(rng_));
}

bool Backoff::Next() {
  if (attempts_ >= policy_.max_attempts) return false;
  auto delay = DelayFor(attempts_);
  auto elapsed = clock_.SteadyNow() - start_;
  if (elapsed + delay > policy_.deadline) return false;
  clock_.SleepFor(delay);
  ++attempts_;
  return true;
}

}  // namespace respawn
