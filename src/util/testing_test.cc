#include "util/testing.h"

#include <gtest/gtest-spi.h>

#include <memory>
#include <string>

namespace respawn {
namespace {

Status Ok() { return Status::OK(); }
Status Gone() { return NotFound("key \"a\" is gone"); }
Result<int> Seven() { return 7; }
Result<int> NoInt() { return Unavailable("store did not answer"); }
Result<std::unique_ptr<std::string>> Owned() { return std::make_unique<std::string>("x"); }

TEST(TestingMacrosTest, OkPasses) {
  ASSERT_OK(Ok());
  EXPECT_OK(Ok());
  ASSERT_OK(Seven());
  EXPECT_OK(Seven()) << "context may be streamed";
  ASSERT_OK_AND_ASSIGN(int seven, Seven());
  EXPECT_EQ(seven, 7);
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<std::string> owned, Owned());
  EXPECT_EQ(*owned, "x");
  int assigned = 0;
  ASSERT_OK_AND_ASSIGN(assigned, Seven());
  EXPECT_EQ(assigned, 7);
}

TEST(TestingMacrosTest, ErrorFailsNamingTheExpressionAndTheStatus) {
  EXPECT_FATAL_FAILURE(ASSERT_OK(Gone()), "Gone() is not OK: NotFound: key \"a\" is gone");
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(NoInt()), "NoInt() is not OK: Unavailable: store did not");
  EXPECT_NONFATAL_FAILURE(EXPECT_OK(Gone()) << "while reading a", "while reading a");
  EXPECT_FATAL_FAILURE(
      {
        ASSERT_OK_AND_ASSIGN(int v, NoInt());
        (void)v;
      },
      "NoInt() is not OK: Unavailable: store did not answer");
}

TEST(TestingMacrosTest, AssignStopsTheTestBeforeTheValueIsRead) {
  // The fatal failure returns before the value is read (reading an error's value aborts).
  EXPECT_FATAL_FAILURE(
      {
        ASSERT_OK_AND_ASSIGN(std::unique_ptr<std::string> v,
                             Result<std::unique_ptr<std::string>>(Internal("no value")));
        (void)v;
      },
      "Internal: no value");
}

}  // namespace
}  // namespace respawn
