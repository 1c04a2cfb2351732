#include "util/clock.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace respawn {
namespace {

using std::chrono::milliseconds;

TEST(ManualClockTest, MovesOnlyWhenTold) {
  ManualClock clock(1'000'000);
  const auto t0 = clock.SteadyNow();
  EXPECT_EQ(clock.SteadyNow(), t0);
  EXPECT_EQ(clock.WallNowMs(), 1'000'000);
  clock.Advance(milliseconds(1500));
  EXPECT_EQ(clock.SteadyNow() - t0, milliseconds(1500));
  EXPECT_EQ(clock.WallNowMs(), 1'001'500);
  // Sub-millisecond steps add up on the wall clock too.
  for (int i = 0; i < 4; ++i) clock.Advance(std::chrono::microseconds(250));
  EXPECT_EQ(clock.WallNowMs(), 1'001'501);
  // A wall-clock jump leaves steady time alone.
  clock.SetWallMs(5);
  EXPECT_EQ(clock.WallNowMs(), 5);
  EXPECT_EQ(clock.SteadyNow() - t0, milliseconds(1501));
}

TEST(ManualClockTest, SleepAdvancesAtOnce) {
  ManualClock clock;
  const auto t0 = clock.SteadyNow();
  clock.SleepFor(std::chrono::hours(1));
  EXPECT_EQ(clock.SteadyNow() - t0, std::chrono::hours(1));
  EXPECT_EQ(clock.slept(), std::chrono::hours(1));
  clock.SleepFor(milliseconds(-5));  // nothing
  EXPECT_EQ(clock.slept(), std::chrono::hours(1));
}

TEST(ManualClockTest, SleepHookActsWhileTheCallerSleeps) {
  ManualClock clock;
  const auto t0 = clock.SteadyNow();
  std::vector<int64_t> seen;  // ms since t0 at each step of the hook
  clock.SetSleepHook([&](std::chrono::nanoseconds d) {
    for (auto left = d; left.count() > 0; left -= milliseconds(100)) {
      clock.Advance(std::min<std::chrono::nanoseconds>(left, milliseconds(100)));
      seen.push_back(std::chrono::duration_cast<milliseconds>(clock.SteadyNow() - t0).count());
      clock.SleepFor(milliseconds(1));  // from inside the hook: just advances
    }
  });
  clock.SleepFor(milliseconds(300));
  EXPECT_EQ(seen, (std::vector<int64_t>{100, 201, 302}));
  clock.SetSleepHook(nullptr);
  clock.SleepFor(milliseconds(10));
  EXPECT_EQ(clock.SteadyNow() - t0, milliseconds(313));
}

TEST(SystemClockTest, IsTheRealClock) {
  Clock& clock = *Clock::System();
  auto wall = [] {
    return std::chrono::duration_cast<milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const auto steady_before = std::chrono::steady_clock::now();
  const int64_t wall_before = wall();
  const auto steady = clock.SteadyNow();
  const int64_t wall_now = clock.WallNowMs();
  EXPECT_GE(steady, steady_before);
  EXPECT_LE(steady, std::chrono::steady_clock::now());
  EXPECT_GE(wall_now, wall_before);
  EXPECT_LE(wall_now, wall());
}

}  // namespace
}  // namespace respawn
