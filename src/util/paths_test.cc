#include "util/paths.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace respawn {
namespace {

TEST(ExpandShellPathTest, HomeAndVariables) {
  ::setenv("HOME", "/home/ada", 1);
  ::setenv("RESPAWN_PATHS_TEST_DIR", "/data/x", 1);
  EXPECT_EQ(*ExpandShellPath("~"), "/home/ada");
  EXPECT_EQ(*ExpandShellPath("~/in/*.csv"), "/home/ada/in/*.csv");
  EXPECT_EQ(*ExpandShellPath("$RESPAWN_PATHS_TEST_DIR/a.csv"), "/data/x/a.csv");
  EXPECT_EQ(*ExpandShellPath("${RESPAWN_PATHS_TEST_DIR}_old/a"), "/data/x_old/a");
  EXPECT_EQ(*ExpandShellPath("plain/relative"), "plain/relative");
  EXPECT_EQ(*ExpandShellPath("cost$$.csv"), "cost$.csv");
  EXPECT_EQ(*ExpandShellPath("a/~b"), "a/~b");  // only a leading ~ is special
  EXPECT_EQ(*ExpandShellPath("~root/x"), "/root/x");
}

TEST(ExpandShellPathTest, UnsetOrMalformedIsAnErrorNamingIt) {
  ::unsetenv("RESPAWN_PATHS_TEST_UNSET");
  Result<std::string> r = ExpandShellPath("$RESPAWN_PATHS_TEST_UNSET/out");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("$RESPAWN_PATHS_TEST_UNSET"), std::string::npos);
  EXPECT_FALSE(ExpandShellPath("${OPEN").ok());
  EXPECT_FALSE(ExpandShellPath("a$").ok());
  EXPECT_FALSE(ExpandShellPath("~no_such_user_respawn/x").ok());
}

}  // namespace
}  // namespace respawn
