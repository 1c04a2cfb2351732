#include "pipeline/source_reads.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <vector>

namespace respawn {
namespace {

namespace fs = std::filesystem;

class SourceReadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("respawn-source-reads-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "in");
    Write("in/a.csv", "k\n1\n");
    Write("in/b.csv", "k\n2\n");
    source_.name = "orders";
    source_.location.resolved = (dir_ / "in/*.csv").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::trunc) << text;
  }

  fs::path dir_;
  SourceSpec source_;
};

TEST_F(SourceReadsTest, ReadsExactlyTheListedFiles) {
  SourceReads reads;
  ASSERT_TRUE(reads.FingerprintSource(source_).ok());
  Write("in/c.csv", "k\n3\n");  // after the listing: not read
  Result<std::string> select = reads.SourceSelect(source_, (dir_ / "dl").string());
  ASSERT_TRUE(select.ok()) << select.status().ToString();
  EXPECT_EQ(*select, "SELECT * FROM read_csv(['" + (dir_ / "in/a.csv").string() + "', '" +
                         (dir_ / "in/b.csv").string() + "'])");
  // A source not listed is not read.
  SourceSpec other = source_;
  other.name = "other";
  EXPECT_EQ(reads.SourceSelect(other, "").status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(SourceReadsTest, VerifySourceSeesEveryKindOfChange) {
  struct Case {
    const char* what;
    std::function<void()> change;
    const char* says;
  };
  const std::vector<Case> cases = {
      {"same size, new contents", [&] { Write("in/a.csv", "k\n9\n"); }, "in/a.csv"},
      {"grown", [&] { Write("in/b.csv", "k\n22\n"); }, "size changed from 4 to 5 bytes"},
      {"replaced",
       [&] {
         Write("in/new", "k\n1\n");
         fs::rename(dir_ / "in/new", dir_ / "in/a.csv");
       },
       "replaced by another file"},
      {"removed", [&] { fs::remove(dir_ / "in/b.csv"); }, "no longer exists"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    Write("in/a.csv", "k\n1\n");
    Write("in/b.csv", "k\n2\n");
    SourceReads reads;
    ASSERT_TRUE(reads.FingerprintSource(source_).ok());
    EXPECT_TRUE(reads.VerifySource(source_, "stage \"x\"").ok());
    c.change();
    Status s = reads.VerifySource(source_, "stage \"x\"");
    EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("stage \"x\" (source \"orders\")"), std::string::npos)
        << s.message();
  }
}

TEST_F(SourceReadsTest, VerifyFileReadListsTheGlobAgain) {
  DagFileRead file;
  file.written = "in/*.csv";
  file.resolved = (dir_ / "in/*.csv").string();
  SourceReads reads;
  ASSERT_TRUE(reads.FingerprintFileRead(file).ok());
  EXPECT_TRUE(reads.VerifyFileRead(file, "stage \"x\"").ok());
  Write("in/c.csv", "k\n3\n");
  Status s = reads.VerifyFileRead(file, "stage \"x\"");
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("in/c.csv"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("it appeared, matching in/*.csv"), std::string::npos) << s.message();

  // glob() of nothing is an empty listing, not an error; a reader of nothing is.
  DagFileRead none;
  none.written = "none/*";
  none.resolved = (dir_ / "none/*").string();
  EXPECT_EQ(reads.FingerprintFileRead(none).status().code(), StatusCode::kNotFound);
  none.may_be_empty = true;
  EXPECT_TRUE(reads.FingerprintFileRead(none).ok());
  EXPECT_TRUE(reads.VerifyFileRead(none, "stage \"x\"").ok());
}

}  // namespace
}  // namespace respawn
