#include "util/status.h"

#include <gtest/gtest.h>

#include "util/testing.h"

namespace respawn {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument(std::to_string(x) + " is odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  return Half(h);
}

TEST(StatusTest, CodesAndMessages) {
  EXPECT_OK(Status::OK());
  Status s = NotFound("key a/b");
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.IsNotFound());
  EXPECT_EQ(s.ToString(), "NotFound: key a/b");
  EXPECT_EQ(s.WithContext("get").message(), "get: key a/b");
}

TEST(StatusTest, ResultPropagates) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "3 is odd");
}

}  // namespace
}  // namespace respawn

namespace respawn {
namespace {

TEST(ResultDeathTest, ReadingTheValueOfAnErrorAborts) {
  Result<int> r = NotFound("no such thing");
  EXPECT_DEATH((void)r.value(), "value of a failed Result was read .*NotFound: no such thing");
  EXPECT_DEATH((void)*r, "NotFound");
}

TEST(StatusTest, CancelledIsItsOwnCode) {
  Status s = Cancelled("interrupted by SIGTERM");
  EXPECT_TRUE(s.IsCancelled());
  EXPECT_EQ(s.ToString(), "Cancelled: interrupted by SIGTERM");
  EXPECT_TRUE(s.WithContext("stage x").IsCancelled());
}

}  // namespace
}  // namespace respawn
