// The S3 XML documents respawn builds and reads: lifecycle configurations (merging ours into a
// bucket's existing rules) and DeleteObjects results.
#include "storage/s3_xml.h"

#include <gtest/gtest.h>

#include <pugixml.hpp>

namespace respawn {
namespace {

LifecycleRule AbortRule(std::string id, std::string prefix, int days) {
  LifecycleRule r;
  r.id = std::move(id);
  r.prefix = std::move(prefix);
  r.abort_incomplete_upload_days = days;
  return r;
}

// Another tool's rule, as a bucket's GET ?lifecycle returns it (namespaced, with a transition).
constexpr char kForeign[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
    "<LifecycleConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Rule><ID>logs-to-glacier</ID><Filter><Prefix>logs/</Prefix></Filter>"
    "<Status>Enabled</Status><Transition><Days>30</Days><StorageClass>GLACIER</StorageClass>"
    "</Transition></Rule></LifecycleConfiguration>";

TEST(LifecycleXml, BuildsOneRulePerEntry) {
  LifecycleRule expire;
  expire.id = "tmp";
  expire.prefix = "a&b/tmp/";
  expire.expiration_days = 2;
  std::string xml = BuildLifecycleConfiguration({AbortRule("up", "p/", 7), expire});
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(xml.c_str()));
  pugi::xml_node root = doc.child("LifecycleConfiguration");
  ASSERT_TRUE(root);
  EXPECT_STREQ(root.attribute("xmlns").value(), "http://s3.amazonaws.com/doc/2006-03-01/");
  pugi::xml_node first = root.child("Rule");
  EXPECT_STREQ(first.child_value("ID"), "up");
  EXPECT_STREQ(first.child("Filter").child_value("Prefix"), "p/");
  EXPECT_STREQ(first.child_value("Status"), "Enabled");
  EXPECT_STREQ(first.child("AbortIncompleteMultipartUpload").child_value("DaysAfterInitiation"),
               "7");
  EXPECT_FALSE(first.child("Expiration"));
  pugi::xml_node second = first.next_sibling("Rule");
  EXPECT_STREQ(second.child("Filter").child_value("Prefix"), "a&b/tmp/");  // escaped and back
  EXPECT_STREQ(second.child("Expiration").child_value("Days"), "2");
  EXPECT_FALSE(second.child("AbortIncompleteMultipartUpload"));
  EXPECT_FALSE(second.next_sibling("Rule"));
}

TEST(LifecycleXml, MergeIntoNothingIsOurRules) {
  Result<LifecycleMerge> m = MergeLifecycleRules("", {AbortRule("up", "p/", 7)});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->kept, 0);
  EXPECT_EQ(m->replaced, 0);
  EXPECT_EQ(m->xml, BuildLifecycleConfiguration({AbortRule("up", "p/", 7)}));
}

TEST(LifecycleXml, MergeKeepsOtherRulesVerbatim) {
  Result<LifecycleMerge> m = MergeLifecycleRules(kForeign, {AbortRule("up", "p/", 7)});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ(m->kept, 1);
  EXPECT_EQ(m->replaced, 0);
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(m->xml.c_str()));
  pugi::xml_node foreign = doc.child("LifecycleConfiguration").child("Rule");
  EXPECT_STREQ(foreign.child_value("ID"), "logs-to-glacier");
  EXPECT_STREQ(foreign.child("Transition").child_value("StorageClass"), "GLACIER");
  EXPECT_STREQ(foreign.next_sibling("Rule").child_value("ID"), "up");
  Result<std::vector<std::string>> ids = LifecycleRuleIds(m->xml);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"logs-to-glacier", "up"}));
}

TEST(LifecycleXml, ApplyingTwiceReplacesOurRuleInsteadOfAddingOne) {
  Result<LifecycleMerge> once = MergeLifecycleRules(kForeign, {AbortRule("up", "p/", 7)});
  ASSERT_TRUE(once.ok());
  Result<LifecycleMerge> twice = MergeLifecycleRules(once->xml, {AbortRule("up", "p/", 3)});
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->kept, 1);
  EXPECT_EQ(twice->replaced, 1);
  Result<std::vector<std::string>> ids = LifecycleRuleIds(twice->xml);
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"logs-to-glacier", "up"}));
  EXPECT_NE(twice->xml.find("<DaysAfterInitiation>3<"), std::string::npos) << twice->xml;
  EXPECT_EQ(twice->xml.find("<DaysAfterInitiation>7<"), std::string::npos) << twice->xml;
  // The same rule again: the same document.
  Result<LifecycleMerge> again = MergeLifecycleRules(twice->xml, {AbortRule("up", "p/", 3)});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->xml, twice->xml);
}

TEST(LifecycleXml, FollowsTheLegacyPrefixFormOfExistingRules) {
  // Rules with <Prefix> directly under <Rule> (the 2006 schema): ours take the same form.
  Result<LifecycleMerge> m = MergeLifecycleRules(
      "<LifecycleConfiguration><Rule><ID>old</ID><Prefix>tmp/</Prefix><Status>Enabled</Status>"
      "<Expiration><Days>1</Days></Expiration></Rule></LifecycleConfiguration>",
      {AbortRule("up", "p/", 7)});
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  pugi::xml_document doc;
  ASSERT_TRUE(doc.load_string(m->xml.c_str()));
  pugi::xml_node ours = doc.child("LifecycleConfiguration").child("Rule").next_sibling("Rule");
  EXPECT_STREQ(ours.child_value("ID"), "up");
  EXPECT_STREQ(ours.child_value("Prefix"), "p/");
  EXPECT_FALSE(ours.child("Filter"));
}

TEST(LifecycleXml, RejectsWhatIsNotALifecycleConfiguration) {
  EXPECT_FALSE(MergeLifecycleRules("<Error><Code>X</Code></Error>", {}).ok());
  EXPECT_FALSE(MergeLifecycleRules("not xml <", {}).ok());
  EXPECT_FALSE(LifecycleRuleIds("").ok());
}

TEST(DeleteObjectsXml, ParsesErrorsOfAQuietResult) {
  Result<std::vector<S3DeleteError>> errors = ParseDeleteResult(
      "<DeleteResult><Error><Key>a b</Key><Code>AccessDenied</Code><Message>no</Message>"
      "</Error></DeleteResult>");
  ASSERT_TRUE(errors.ok());
  ASSERT_EQ(errors->size(), 1u);
  EXPECT_EQ((*errors)[0].key, "a b");
  EXPECT_EQ((*errors)[0].code, "AccessDenied");
  std::string body = BuildDeleteObjects({"x&y", "z"}, true);
  EXPECT_NE(body.find("<Key>x&amp;y</Key>"), std::string::npos) << body;
  EXPECT_NE(body.find("<Quiet>true</Quiet>"), std::string::npos) << body;
}

}  // namespace
}  // namespace respawn
