#include "util/strings.h"

#include <gtest/gtest.h>

namespace respawn {
namespace {

TEST(StringsTest, Quoted) {
  EXPECT_EQ(Quoted("a/b"), "\"a/b\"");
  EXPECT_EQ(Quoted(""), "\"\"");
  EXPECT_EQ(Quoted("say \"hi\""), "\"say \"hi\"\"");  // nothing is escaped
}

TEST(StringsTest, StripQuotes) {
  EXPECT_EQ(StripQuotes("\"abc\""), "abc");
  EXPECT_EQ(StripQuotes("\"\""), "");
  EXPECT_EQ(StripQuotes("abc"), "abc");
  EXPECT_EQ(StripQuotes("\"abc"), "\"abc");
  EXPECT_EQ(StripQuotes("\""), "\"");
  EXPECT_EQ(StripQuotes(Quoted("x")), "x");
}

TEST(StringsTest, LowerIsAsciiOnly) {
  EXPECT_EQ(Lower("S3://Bucket/KEY_1"), "s3://bucket/key_1");
  EXPECT_EQ(Lower("AZ az @[`{"), "az az @[`{");  // the bytes around the letters stay
  EXPECT_EQ(Lower("already lower"), "already lower");
  EXPECT_EQ(Lower("\xC3\x89t\xC3\xA9"), "\xC3\x89t\xC3\xA9");  // UTF-8 bytes untouched
  EXPECT_EQ(Lower(""), "");
}

TEST(StringsTest, Trim) {
  EXPECT_EQ(Trim("  a b \t"), "a b");
  EXPECT_EQ(Trim("\r\n x\n"), "x");
  EXPECT_EQ(Trim("x"), "x");
  EXPECT_EQ(Trim(" \t "), "");
  EXPECT_EQ(Trim(""), "");
}

TEST(StringsTest, PrefixSuccessor) {
  EXPECT_EQ(PrefixSuccessor("ab"), "ac");
  EXPECT_EQ(PrefixSuccessor("a/"), "a0");
  EXPECT_EQ(PrefixSuccessor("a\xff"), "b");
  EXPECT_EQ(PrefixSuccessor("\xff\xff"), "");
  EXPECT_EQ(PrefixSuccessor(""), "");
  // Every string with the prefix sorts before the successor; the successor itself does not start
  // with the prefix.
  const std::string next = PrefixSuccessor("ab");
  EXPECT_LT(std::string("ab\xff\xff"), next);
  EXPECT_FALSE(next.starts_with("ab"));
}

}  // namespace
}  // namespace respawn
