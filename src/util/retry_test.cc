#include "util/retry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

#include "util/clock.h"

namespace respawn {
namespace {

using std::chrono::milliseconds;

TEST(RetryPolicyTest, RetriesOnlyTransientCodes) {
  EXPECT_TRUE(RetryPolicy::IsRetryable(Unavailable("503")));
  EXPECT_TRUE(RetryPolicy::IsRetryable(DeadlineExceeded("timeout")));
  EXPECT_FALSE(RetryPolicy::IsRetryable(Status::OK()));
  EXPECT_FALSE(RetryPolicy::IsRetryable(NotFound("x")));
  EXPECT_FALSE(RetryPolicy::IsRetryable(AlreadyExists("x")));
  EXPECT_FALSE(RetryPolicy::IsRetryable(Aborted("x")));
  EXPECT_FALSE(RetryPolicy::IsRetryable(PermissionDenied("x")));
  EXPECT_FALSE(RetryPolicy::IsRetryable(DataLoss("x")));
}

TEST(BackoffTest, DelaysGrowAndAreCapped) {
  RetryPolicy policy;
  policy.base_delay = milliseconds(100);
  policy.max_delay = milliseconds(1000);
  Backoff backoff(policy);
  for (int attempt = 1; attempt <= 12; ++attempt) {
    // Ceiling doubles from the base until the cap: 100, 200, 400, 800, 1000, 1000, ...
    int64_t ceiling = std::min<int64_t>(100ll << (attempt - 1), 1000);
    milliseconds lowest = milliseconds::max();
    milliseconds highest = milliseconds::zero();
    for (int draw = 0; draw < 300; ++draw) {
      milliseconds d = backoff.DelayFor(attempt);
      ASSERT_LE(d.count(), ceiling) << "attempt " << attempt;
      ASSERT_GE(d.count(), ceiling / 4) << "attempt " << attempt;
      lowest = std::min(lowest, d);
      highest = std::max(highest, d);
    }
    EXPECT_LT(lowest, highest) << "attempt " << attempt << ": no jitter";
  }
  EXPECT_LE(backoff.DelayFor(1000), milliseconds(1000));  // no overflow far out
}

TEST(BackoffTest, StopsAfterMaxAttempts) {
  RetryPolicy policy;
  policy.max_attempts = 4;
  policy.base_delay = milliseconds(1);
  policy.max_delay = milliseconds(2);
  Backoff backoff(policy);
  EXPECT_EQ(backoff.attempts(), 1);
  int retries = 0;
  while (backoff.Next()) ++retries;
  EXPECT_EQ(retries, 3);
  EXPECT_EQ(backoff.attempts(), 4);
  EXPECT_FALSE(backoff.Next());
}

TEST(BackoffTest, SingleAttemptNeverRetries) {
  RetryPolicy policy;
  policy.max_attempts = 1;
  Backoff backoff(policy);
  EXPECT_FALSE(backoff.Next());
}

TEST(BackoffTest, RespectsDeadline) {
  RetryPolicy policy;
  policy.max_attempts = 1000000;
  policy.base_delay = milliseconds(20);
  policy.max_delay = milliseconds(20);
  policy.deadline = milliseconds(200);
  ManualClock clock;
  Backoff backoff(policy, clock);
  const auto start = clock.SteadyNow();
  while (backoff.Next()) {
  }
  // Next() never sleeps past the deadline, and it sleeps on the clock it was given.
  EXPECT_LE(clock.SteadyNow() - start, milliseconds(200));
  EXPECT_EQ(clock.slept(), clock.SteadyNow() - start);
  EXPECT_GT(clock.SteadyNow() - start, milliseconds(180));  // the last delay is at most 20 ms
  EXPECT_GE(backoff.attempts(), 200 / 20);                  // delays are 5..20 ms
  EXPECT_LE(backoff.attempts(), 200 / 5 + 1);
}

TEST(BackoffTest, DeadlineShorterThanFirstDelayMeansNoRetry) {
  RetryPolicy policy;
  policy.base_delay = milliseconds(400);
  policy.max_delay = milliseconds(400);
  policy.deadline = milliseconds(50);
  ManualClock clock;
  Backoff backoff(policy, clock);
  EXPECT_FALSE(backoff.Next());
  EXPECT_EQ(clock.slept().count(), 0);
}

TEST(BackoffTest, TimeSpentInAttemptsCountsAgainstTheDeadline) {
  RetryPolicy policy;
  policy.max_attempts = 100;
  policy.base_delay = milliseconds(10);
  policy.max_delay = milliseconds(10);
  policy.deadline = milliseconds(1000);
  ManualClock clock;
  Backoff backoff(policy, clock);
  clock.Advance(milliseconds(999));  // the first attempt took this long (delays: 2..10 ms)
  EXPECT_FALSE(backoff.Next());      // a retry could only start after the deadline
}

}  // namespace
}  // namespace respawn
