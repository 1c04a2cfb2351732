#include "util/retry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>

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
  Backoff backoff(policy);
  auto start = std::chrono::steady_clock::now();
  while (backoff.Next()) {
  }
  auto elapsed = std::chrono::steady_clock::now() - start;
  // Next() never sleeps past the deadline.
  EXPECT_LE(elapsed, milliseconds(200) + milliseconds(100));
  EXPECT_GT(backoff.attempts(), 5);  // delays are 5..20 ms
  EXPECT_LT(backoff.attempts(), 1000);
}

TEST(BackoffTest, DeadlineShorterThanFirstDelayMeansNoRetry) {
  RetryPolicy policy;
  policy.base_delay = milliseconds(400);
  policy.max_delay = milliseconds(400);
  policy.deadline = milliseconds(50);
  Backoff backoff(policy);
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(backoff.Next());
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(50));
}

}  // namespace
}  // namespace respawn
