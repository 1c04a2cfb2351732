#include "util/glob.h"

#include <gtest/gtest.h>

namespace respawn {
namespace {

TEST(GlobTest, Matches) {
  EXPECT_TRUE(GlobMatch("*.csv", "a.csv"));
  EXPECT_FALSE(GlobMatch("*.csv", "d/a.csv"));
  EXPECT_TRUE(GlobMatch("*/*.csv", "d/a.csv"));
  EXPECT_TRUE(GlobMatch("**/*.csv", "a.csv"));
  EXPECT_TRUE(GlobMatch("**/*.csv", "d/e/a.csv"));
  EXPECT_TRUE(GlobMatch("d/**", "d/e/a.csv"));
  EXPECT_TRUE(GlobMatch("part-?.parquet", "part-1.parquet"));
  EXPECT_FALSE(GlobMatch("part-?.parquet", "part-10.parquet"));
  EXPECT_TRUE(GlobMatch("part-[0-9].csv", "part-7.csv"));
  EXPECT_FALSE(GlobMatch("part-[!0-9].csv", "part-7.csv"));
  EXPECT_TRUE(GlobMatch("a[.csv", "a[.csv"));  // unclosed class is literal
  EXPECT_TRUE(GlobMatch("a\\*.csv", "a*.csv"));
  EXPECT_FALSE(GlobMatch("a\\*.csv", "ab.csv"));
  EXPECT_FALSE(GlobMatch("*.csv", "a.csv.gz"));
}

TEST(GlobTest, HasGlob) {
  EXPECT_TRUE(HasGlob("/in/*.csv"));
  EXPECT_TRUE(HasGlob("part-?.csv"));
  EXPECT_TRUE(HasGlob("part-[0-9].csv"));
  EXPECT_FALSE(HasGlob("/in/a.csv"));
  EXPECT_FALSE(HasGlob(""));
}

TEST(GlobTest, SplitsAtTheLastSlashBeforeTheFirstGlobCharacter) {
  GlobParts p = SplitGlob("s3://b/in/2024-*/x.csv");
  EXPECT_EQ(p.dir, "s3://b/in/");
  EXPECT_EQ(p.pattern, "2024-*/x.csv");

  p = SplitGlob("/data/**/*.parquet");
  EXPECT_EQ(p.dir, "/data/");
  EXPECT_EQ(p.pattern, "**/*.parquet");

  p = SplitGlob("*.csv");  // no directory
  EXPECT_EQ(p.dir, "");
  EXPECT_EQ(p.pattern, "*.csv");

  p = SplitGlob("/a.csv");  // a root-level glob keeps its '/'
  EXPECT_EQ(p.dir, "/");
  EXPECT_EQ(p.pattern, "a.csv");

  p = SplitGlob("in/x/a.csv");  // no glob character: cut at the last '/'
  EXPECT_EQ(p.dir, "in/x/");
  EXPECT_EQ(p.pattern, "a.csv");
}

TEST(GlobTest, LiteralPrefix) {
  EXPECT_EQ(GlobLiteralPrefix("in/2024-*/x.csv"), "in/2024-");
  EXPECT_EQ(GlobLiteralPrefix("in/part-?.csv"), "in/part-");
  EXPECT_EQ(GlobLiteralPrefix("in/[ab].csv"), "in/");
  EXPECT_EQ(GlobLiteralPrefix("*.csv"), "");
  EXPECT_EQ(GlobLiteralPrefix("in/a.csv"), "in/a.csv");
}

}  // namespace
}  // namespace respawn
