#include "storage/aws_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <random>

namespace respawn {
namespace {

namespace fs = std::filesystem;

class AwsConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    home_ = fs::temp_directory_path() / ("respawn-aws-config-" + std::to_string(rd()));
    fs::create_directories(home_ / ".aws");
    env_["HOME"] = home_.string();
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(home_, ec);
  }

  void Write(const std::string& relative, const std::string& text) {
    std::ofstream out(home_ / relative, std::ios::binary | std::ios::trunc);
    out << text;
  }

  Result<S3Config> Load(const std::string& bucket = "bkt", const std::string& prefix = "") {
    return S3ConfigFromEnvironmentWith(bucket, prefix,
                                       [this](const std::string& n) -> std::optional<std::string> {
                                         auto it = env_.find(n);
                                         if (it == env_.end()) return std::nullopt;
                                         return it->second;
                                       });
  }

  fs::path home_;
  std::map<std::string, std::string> env_;
};

TEST_F(AwsConfigTest, ParsesIniWithNestedBlocks) {
  AwsIni ini = ParseAwsIni(
      "# comment\n"
      "[default]\r\n"
      "Region = eu-west-1 \n"
      "s3 =\n"
      "  endpoint_url = http://127.0.0.1:9000\n"
      "  addressing_style = path\n"
      "output=json\n"
      "; another comment\n"
      "[profile   dev]\n"
      "aws_access_key_id=AKIADEV\n"
      "  \n"
      "[services local]\n"
      "s3 =\n"
      "\tendpoint_url = http://127.0.0.1:7480\n");
  ASSERT_EQ(ini.count("default"), 1u);
  EXPECT_EQ(ini["default"].values["region"], "eu-west-1");
  EXPECT_EQ(ini["default"].values["output"], "json");
  EXPECT_EQ(ini["default"].nested["s3"]["endpoint_url"], "http://127.0.0.1:9000");
  EXPECT_EQ(ini["default"].nested["s3"]["addressing_style"], "path");
  ASSERT_EQ(ini.count("profile dev"), 1u);
  EXPECT_EQ(ini["profile dev"].values["aws_access_key_id"], "AKIADEV");
  EXPECT_EQ(ini["services local"].nested["s3"]["endpoint_url"], "http://127.0.0.1:7480");
}

TEST_F(AwsConfigTest, EnvironmentCredentialsWin) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  env_["AWS_SECRET_ACCESS_KEY"] = "envsecret";
  env_["AWS_SESSION_TOKEN"] = "token";
  Write(".aws/credentials", "[default]\naws_access_key_id=AKIAFILE\naws_secret_access_key=f\n");
  auto c = Load("bkt", "/some/prefix/");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->credentials.access_key_id, "AKIAENV");
  EXPECT_EQ(c->credentials.secret_access_key, "envsecret");
  EXPECT_EQ(c->credentials.session_token, "token");
  EXPECT_EQ(c->credentials.source, "environment variables");
  EXPECT_EQ(c->bucket, "bkt");
  EXPECT_EQ(c->prefix, "some/prefix");
  EXPECT_EQ(c->region, "us-east-1");
  EXPECT_EQ(c->endpoint, "");
  EXPECT_FALSE(c->path_style) << "AWS itself uses virtual-hosted addressing";
}

TEST_F(AwsConfigTest, MultipartSizesFromEnvironment) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIAENV";
  env_["AWS_SECRET_ACCESS_KEY"] = "secret";
  Result<S3Config> defaults = Load();
  ASSERT_TRUE(defaults.ok()) << defaults.status().ToString();
  EXPECT_EQ(defaults->multipart_threshold, S3Config().multipart_threshold);
  EXPECT_EQ(defaults->part_size, S3Config().part_size);

  env_["RESPAWN_S3_MULTIPART_THRESHOLD"] = "6MB";
  env_["RESPAWN_S3_MULTIPART_CHUNKSIZE"] = "5242880";
  Result<S3Config> c = Load();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->multipart_threshold, 6u << 20);
  EXPECT_EQ(c->part_size, 5u << 20);
  env_["RESPAWN_S3_MULTIPART_THRESHOLD"] = "8 MiB";
  EXPECT_EQ(Load()->multipart_threshold, 8u << 20);

  for (const char* bad : {"lots", "5XB", "-1", "0", "1.5MB"}) {
    env_["RESPAWN_S3_MULTIPART_CHUNKSIZE"] = bad;
    Result<S3Config> r = Load();
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("RESPAWN_S3_MULTIPART_CHUNKSIZE"), std::string::npos)
        << r.status().message();
  }
}

TEST_F(AwsConfigTest, DefaultProfileFromFiles) {
  Write(".aws/credentials",
        "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = filesecret\n"
        "aws_session_token = tok\n[other]\naws_access_key_id=X\naws_secret_access_key=Y\n");
  Write(".aws/config", "[default]\nregion = eu-central-1\nendpoint_url = http://127.0.0.1:7480/\n");
  auto c = Load();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->credentials.access_key_id, "AKIAFILE");
  EXPECT_EQ(c->credentials.secret_access_key, "filesecret");
  EXPECT_EQ(c->credentials.session_token, "tok");
  EXPECT_NE(c->credentials.source.find("profile 'default'"), std::string::npos);
  EXPECT_EQ(c->region, "eu-central-1");
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:7480");
  EXPECT_TRUE(c->path_style);
}

TEST_F(AwsConfigTest, NamedProfileAndNestedS3Endpoint) {
  env_["AWS_PROFILE"] = "dev";
  Write(".aws/credentials", "[dev]\naws_access_key_id=AKIADEV\naws_secret_access_key=devsecret\n");
  Write(".aws/config",
        "[profile dev]\nregion = ap-south-1\nendpoint_url = http://global:1\n"
        "s3 =\n  endpoint_url = http://127.0.0.1:9000\n");
  auto c = Load();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->credentials.access_key_id, "AKIADEV");
  EXPECT_EQ(c->region, "ap-south-1");
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:9000") << "the s3 block beats the global endpoint_url";
}

TEST_F(AwsConfigTest, ServicesSectionEndpoint) {
  Write(".aws/config",
        "[default]\naws_access_key_id=AKIACONF\naws_secret_access_key=s\nservices = local\n"
        "[services local]\ns3 =\n  endpoint_url = http://127.0.0.1:7480\n");
  auto c = Load();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->credentials.access_key_id, "AKIACONF") << "keys in the config file count too";
  EXPECT_EQ(c->endpoint, "http://127.0.0.1:7480");
}

TEST_F(AwsConfigTest, EnvironmentOverridesFilesForEndpointAndRegion) {
  Write(".aws/credentials", "[default]\naws_access_key_id=A\naws_secret_access_key=B\n");
  Write(".aws/config", "[default]\nregion = eu-west-1\nendpoint_url = http://file:1\n");
  env_["AWS_ENDPOINT_URL"] = "http://global:2";
  env_["AWS_DEFAULT_REGION"] = "us-west-1";
  auto c = Load();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->endpoint, "http://global:2");
  EXPECT_EQ(c->region, "us-west-1");
  env_["AWS_ENDPOINT_URL_S3"] = "http://s3only:3";
  env_["AWS_REGION"] = "us-west-2";
  c = Load();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->endpoint, "http://s3only:3");
  EXPECT_EQ(c->region, "us-west-2");
  env_["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true";
  c = Load();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->endpoint, "");
  EXPECT_FALSE(c->path_style);
}

TEST_F(AwsConfigTest, FileOverridesByEnvironmentPaths) {
  fs::path creds = home_ / "elsewhere-credentials";
  fs::path conf = home_ / "elsewhere-config";
  {
    std::ofstream(creds) << "[default]\naws_access_key_id=AKIAELSE\naws_secret_access_key=e\n";
    std::ofstream(conf) << "[default]\nregion=sa-east-1\n";
  }
  Write(".aws/credentials", "[default]\naws_access_key_id=AKIAHOME\naws_secret_access_key=h\n");
  env_["AWS_SHARED_CREDENTIALS_FILE"] = creds.string();
  env_["AWS_CONFIG_FILE"] = conf.string();
  auto c = Load();
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->credentials.access_key_id, "AKIAELSE");
  EXPECT_EQ(c->region, "sa-east-1");
}

TEST_F(AwsConfigTest, MissingCredentialsSayWhatToSet) {
  auto c = Load("my-bucket");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(c.status().message(),
            "no AWS credentials for s3://my-bucket: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE with ~/.aws/credentials");
}

TEST_F(AwsConfigTest, HalfSetEnvironmentIsAnError) {
  env_["AWS_ACCESS_KEY_ID"] = "AKIAONLY";
  auto c = Load();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(c.status().message().find("AWS_SECRET_ACCESS_KEY"), std::string::npos);
}

TEST_F(AwsConfigTest, UnknownProfileIsNamed) {
  env_["AWS_PROFILE"] = "nope";
  Write(".aws/credentials", "[default]\naws_access_key_id=A\naws_secret_access_key=B\n");
  auto c = Load();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(c.status().message().find("'nope'"), std::string::npos) << c.status().message();
}

TEST_F(AwsConfigTest, UnsupportedCredentialSourcesAreExplained) {
  env_["AWS_PROFILE"] = "sso";
  Write(".aws/config", "[profile sso]\nsso_session = corp\nregion = us-east-1\n");
  auto c = Load();
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.status().message().find("sso_session"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("export-credentials"), std::string::npos);
}

TEST_F(AwsConfigTest, SecretNeverInMessages) {
  env_["AWS_PROFILE"] = "half";
  Write(".aws/credentials", "[half]\naws_secret_access_key=TOPSECRETVALUE\n");
  auto c = Load();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().message().find("TOPSECRETVALUE"), std::string::npos);
}

}  // namespace
}  // namespace respawn
