#include "util/hash.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "util/testing.h"

namespace respawn {
namespace {

class FileHashTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("respawn_hash_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& data) {
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << data;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(FileHashTest, DigestIsTheSizeAndHashOfTheWholeFile) {
  // Larger than the read buffer (1 MiB), so the file is hashed in several reads.
  std::string data;
  for (int i = 0; data.size() < (3u << 20) + 17; ++i) data += std::to_string(i) + ",";
  const std::string path = Write("big", data);
  ASSERT_OK_AND_ASSIGN(FileDigest digest, DigestFile(path));
  EXPECT_EQ(digest.size, data.size());
  EXPECT_EQ(digest.xxh3, Xxh3(data));
  ASSERT_OK_AND_ASSIGN(uint64_t hash, Xxh3File(path));
  EXPECT_EQ(hash, Xxh3(data));
}

TEST_F(FileHashTest, EmptyFile) {
  ASSERT_OK_AND_ASSIGN(FileDigest digest, DigestFile(Write("empty", "")));
  EXPECT_EQ(digest.size, 0u);
  EXPECT_EQ(digest.xxh3, Xxh3(""));
}

TEST_F(FileHashTest, MissingFileIsNotFoundAndADirectoryCannotBeRead) {
  const std::string missing = (dir_ / "missing").string();
  EXPECT_TRUE(DigestFile(missing).status().IsNotFound());
  EXPECT_TRUE(Xxh3File(missing).status().IsNotFound());
  Status dir = DigestFile(dir_.string()).status();
  EXPECT_EQ(dir.code(), StatusCode::kFailedPrecondition) << dir.ToString();
  EXPECT_NE(dir.message().find(dir_.string()), std::string::npos) << dir.ToString();
}

}  // namespace
}  // namespace respawn
