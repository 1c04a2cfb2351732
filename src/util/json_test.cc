#include "util/json.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace respawn {
namespace {

using nlohmann::json;

TEST(JsonFieldTest, ReadsFieldsOfTheirType) {
  const json j =
      json::parse(R"({"s":"x","b":true,"u":7,"i":-3,"d":1.5,"big":18446744073709551615})");
  EXPECT_EQ(JsonValueOr(j, "s", std::string("d")), "x");
  EXPECT_EQ(JsonValueOr(j, "b", false), true);
  EXPECT_EQ(JsonValueOr(j, "u", uint64_t{0}), 7u);
  EXPECT_EQ(JsonValueOr(j, "u", 0), 7);
  EXPECT_EQ(JsonValueOr(j, "i", int64_t{0}), -3);
  EXPECT_EQ(JsonValueOr(j, "d", 0.0), 1.5);
  EXPECT_EQ(JsonValueOr(j, "u", 0.0), 7.0);
  EXPECT_EQ(JsonValueOr(j, "big", uint64_t{0}), UINT64_MAX);
}

// Where json::value() throws, these return the fallback.
TEST(JsonFieldTest, MismatchesGiveTheFallbackInsteadOfThrowing) {
  const json j = json::parse(R"({"s":"x","u":7,"i":-3,"d":1.5,"big":18446744073709551615})");
  EXPECT_THROW((void)j.value("s", uint64_t{0}), json::type_error);
  EXPECT_EQ(JsonValueOr(j, "s", uint64_t{9}), 9u);
  EXPECT_EQ(JsonValueOr(j, "u", std::string("d")), "d");
  EXPECT_EQ(JsonValueOr(j, "i", uint64_t{9}), 9u);  // negative into unsigned
  EXPECT_EQ(JsonValueOr(j, "big", 0), 0);           // out of int's range
  EXPECT_EQ(JsonValueOr(j, "d", uint64_t{9}), 9u);  // not an integer
  EXPECT_EQ(JsonValueOr(j, "missing", 4), 4);
  EXPECT_FALSE(JsonField<std::string>(j, "missing").has_value());
  const json array = json::parse("[1,2]");
  EXPECT_THROW((void)array.value("s", 0), json::type_error);
  EXPECT_EQ(JsonValueOr(array, "s", 5), 5);
  EXPECT_EQ(JsonValueOr(json(), "s", 5), 5);
}

}  // namespace
}  // namespace respawn
