// tests/test_env.h: when a suite may skip an S3 server (never in CI) and when a bad env file is an
// error.
#include "test_env.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "util/testing.h"

namespace respawn::test {
namespace {

namespace fs = std::filesystem;

// Sets (or unsets) one environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

class TestEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / UniqueName("respawn-test-env");
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST_F(TestEnvTest, UnsetVariableSkipsOutsideCiOnly) {
  ScopedEnv var("RESPAWN_TEST_S3_ENV_RADOSGW", std::nullopt);
  {
    ScopedEnv ci("CI", std::nullopt);
    EXPECT_FALSE(InCi());
    Result<S3TestServer> r = UseS3TestServer("radosgw");
    EXPECT_EQ(r.status().code(), StatusCode::kNotFound) << r.status().ToString();
  }
  for (const char* value : {"true", "1", "TRUE"}) {
    ScopedEnv ci("CI", value);
    EXPECT_TRUE(InCi()) << value;
    Result<S3TestServer> r = UseS3TestServer("radosgw");
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
    EXPECT_NE(r.status().message().find("CI"), std::string::npos) << r.status().message();
  }
  ScopedEnv ci("CI", "false");
  EXPECT_FALSE(InCi());
}

TEST_F(TestEnvTest, MissingOrUnreadableFileIsAnErrorNotASkip) {
  ScopedEnv ci("CI", std::nullopt);
  for (const fs::path& path : {dir_ / "absent.env", dir_}) {  // a directory cannot be read
    ScopedEnv var("RESPAWN_TEST_S3_ENV_RADOSGW", path.string());
    Result<S3TestServer> r = UseS3TestServer("radosgw");
    ASSERT_FALSE(r.ok()) << path;
    EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition) << r.status().ToString();
    EXPECT_NE(r.status().message().find(path.string()), std::string::npos) << r.status().message();
  }
}

TEST_F(TestEnvTest, ReadsAGoodFile) {
  ScopedEnv ci("CI", std::nullopt);
  fs::path path = dir_ / "env";
  std::ofstream(path) << "# comment\nAWS_ENDPOINT_URL=http://127.0.0.1:1\n\n"
                      << "RESPAWN_TEST_BUCKET=b\nRESPAWN_TEST_SERVER=radosgw\n";
  ScopedEnv var("RESPAWN_TEST_S3_ENV_RADOSGW", path.string());
  ScopedEnv endpoint("AWS_ENDPOINT_URL", std::nullopt);
  ScopedEnv bucket("RESPAWN_TEST_BUCKET", std::nullopt);
  ScopedEnv name("RESPAWN_TEST_SERVER", std::nullopt);
  ASSERT_OK_AND_ASSIGN(S3TestServer r, UseS3TestServer("radosgw"));
  EXPECT_EQ(r.bucket, "b");
  EXPECT_EQ(r.endpoint, "http://127.0.0.1:1");
  EXPECT_EQ(r.name, "radosgw");
}

TEST_F(TestEnvTest, MalformedLineNamesFileAndLine) {
  fs::path path = dir_ / "env";
  std::ofstream(path) << "A=1\nnot a pair\n";
  Result<std::vector<std::pair<std::string, std::string>>> r = ReadEnvFile(path.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(path.string() + ":2"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace respawn::test
