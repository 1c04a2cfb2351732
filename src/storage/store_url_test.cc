#include "storage/store_url.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "storage/chaos_store.h"
#include "storage/memory_store.h"
#include "storage/metrics_store.h"
#include "storage/posix_store.h"
#include "storage/retry_store.h"
#include "storage/s3_store.h"

namespace respawn {
namespace {

namespace fs = std::filesystem;

// Sets (or unsets, with nullopt) an environment variable for the scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value->c_str(), 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

std::string Cwd() {
  char buf[4096];
  EXPECT_NE(::getcwd(buf, sizeof(buf)), nullptr);
  return buf;
}

ParsedStoreUrl MustParse(const std::string& url) {
  Result<ParsedStoreUrl> parsed = ParseStoreUrl(url);
  EXPECT_TRUE(parsed.ok()) << url << ": " << parsed.status().ToString();
  return parsed.ok() ? *parsed : ParsedStoreUrl{};
}

Status ParseError(const std::string& url) {
  Result<ParsedStoreUrl> parsed = ParseStoreUrl(url);
  EXPECT_FALSE(parsed.ok()) << url;
  return parsed.status();
}

TEST(StoreUrlTest, FileUrls) {
  ParsedStoreUrl p = MustParse("file:///data/store");
  EXPECT_EQ(p.scheme, StoreScheme::kPosix);
  EXPECT_EQ(p.path, "/data/store");
  EXPECT_EQ(MustParse("file:///data/store/").path, "/data/store");
  EXPECT_EQ(MustParse("file:///data/./x/../store//").path, "/data/store");
  EXPECT_EQ(MustParse("file:///").path, "/");
  EXPECT_EQ(MustParse("file:/data/store").path, "/data/store");
  EXPECT_EQ(MustParse("file://localhost/data/store").path, "/data/store");
  EXPECT_EQ(MustParse("FILE:///x").path, "/x");

  for (const char* bad : {"file://relative/path", "file:relative", "file:", "file://"}) {
    Status s = ParseError(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find(std::string("\"") + bad + "\""), std::string::npos) << s.message();
    EXPECT_NE(s.message().find("file:///abs/path"), std::string::npos) << s.message();
  }
}

TEST(StoreUrlTest, PlainPaths) {
  ParsedStoreUrl p = MustParse("/abs//store/");
  EXPECT_EQ(p.scheme, StoreScheme::kPosix);
  EXPECT_EQ(p.path, "/abs/store");
  EXPECT_EQ(MustParse("/").path, "/");
  const std::string cwd = Cwd();
  EXPECT_EQ(MustParse("rel/store").path, cwd == "/" ? "/rel/store" : cwd + "/rel/store");
  EXPECT_EQ(MustParse("./a/../b/").path, cwd == "/" ? "/b" : cwd + "/b");
  EXPECT_EQ(MustParse(".").path, cwd);
  // A colon without "://" is part of a path.
  EXPECT_EQ(MustParse("/x/a:b").path, "/x/a:b");
  EXPECT_EQ(ParseError("").code(), StatusCode::kInvalidArgument);
}

TEST(StoreUrlTest, S3Urls) {
  ParsedStoreUrl p = MustParse("s3://my-bucket");
  EXPECT_EQ(p.scheme, StoreScheme::kS3);
  EXPECT_EQ(p.bucket, "my-bucket");
  EXPECT_EQ(p.prefix, "");
  p = MustParse("s3://my.bucket.2/a/b/");
  EXPECT_EQ(p.bucket, "my.bucket.2");
  EXPECT_EQ(p.prefix, "a/b");
  EXPECT_EQ(MustParse("s3://abc//x/y//").prefix, "x/y");
  EXPECT_EQ(MustParse("s3://abc/").prefix, "");
  EXPECT_EQ(MustParse("S3://abc/p").bucket, "abc");
  EXPECT_EQ(MustParse("s3://" + std::string(63, 'b')).bucket, std::string(63, 'b'));

  for (const std::string& bad : std::vector<std::string>{
           "s3://My_Bucket/x", "s3://ab", "s3://" + std::string(64, 'b'), "s3://bucket!/x"}) {
    Status s = ParseError(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("3 to 63 characters"), std::string::npos) << s.message();
    EXPECT_NE(s.message().find(bad), std::string::npos) << s.message();
  }
  EXPECT_EQ(ParseError("s3://").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseError("s3:///prefix").code(), StatusCode::kInvalidArgument);
}

TEST(StoreUrlTest, MemoryAndUnknownSchemes) {
  ParsedStoreUrl p = MustParse("memory://unit");
  EXPECT_EQ(p.scheme, StoreScheme::kMemory);
  EXPECT_EQ(p.path, "unit");
  for (const char* bad : {"gs://bucket/x", "http://127.0.0.1/x", "azure://c"}) {
    Status s = ParseError(bad);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    for (const char* scheme : {"file:///", "s3://", "memory://"}) {
      EXPECT_NE(s.message().find(scheme), std::string::npos) << s.message();
    }
  }
}

TEST(StoreUrlTest, OpenMemoryWithWrappers) {
  ScopedEnv no_chaos("RESPAWN_CHAOS", std::nullopt);
  Result<OpenedStore> opened = OpenStore("memory://store-url-test-wrappers");
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto backend = MemoryStore::Named("store-url-test-wrappers");
  EXPECT_EQ(opened->backend.get(), backend.get());
  ASSERT_NE(opened->metrics, nullptr);
  EXPECT_EQ(opened->store.get(), opened->metrics.get());
  // metrics -> retry -> backend
  auto* retry = dynamic_cast<RetryStore*>(opened->metrics->target().get());
  ASSERT_NE(retry, nullptr);
  EXPECT_EQ(retry->target().get(), backend.get());
  ASSERT_TRUE(opened->store->Put("k", "v").ok());
  EXPECT_EQ(*backend->Get("k"), "v");
  EXPECT_EQ(opened->store->Url(), "memory://store-url-test-wrappers");

  OpenStoreOptions bare;
  bare.retry = false;
  bare.metrics = false;
  Result<OpenedStore> plain = OpenStore("memory://store-url-test-wrappers", bare);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(plain->metrics, nullptr);
  EXPECT_EQ(plain->store.get(), backend.get());
}

TEST(StoreUrlTest, OpenWithChaos) {
  ScopedEnv no_chaos("RESPAWN_CHAOS", std::nullopt);
  OpenStoreOptions options;
  options.chaos = "latency_ms=1,seed=3";
  Result<OpenedStore> opened = OpenStore("memory://store-url-test-chaos", options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto* retry = dynamic_cast<RetryStore*>(opened->metrics->target().get());
  ASSERT_NE(retry, nullptr);
  auto* chaos = dynamic_cast<ChaosStore*>(retry->target().get());
  ASSERT_NE(chaos, nullptr);
  EXPECT_EQ(chaos->target().get(), opened->backend.get());

  // A spec that enables nothing adds no ChaosStore.
  options.chaos = "error_rate=0";
  opened = OpenStore("memory://store-url-test-chaos", options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  retry = dynamic_cast<RetryStore*>(opened->metrics->target().get());
  ASSERT_NE(retry, nullptr);
  EXPECT_EQ(retry->target().get(), opened->backend.get());
}

TEST(StoreUrlTest, ChaosFromEnvironment) {
  {
    ScopedEnv chaos("RESPAWN_CHAOS", "latency_ms=1");
    OpenStoreOptions options;
    options.metrics = false;
    options.retry = false;
    Result<OpenedStore> opened = OpenStore("memory://store-url-test-env", options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    EXPECT_NE(dynamic_cast<ChaosStore*>(opened->store.get()), nullptr);
  }
  {
    ScopedEnv chaos("RESPAWN_CHAOS", "no_such_knob=1");
    Result<OpenedStore> opened = OpenStore("memory://store-url-test-env");
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(opened.status().message().find("RESPAWN_CHAOS"), std::string::npos)
        << opened.status().message();
  }
}

// Opening an S3 store contacts no server; the endpoint below is never dialled.
TEST(StoreUrlTest, OpenS3IsNotRetriedTwice) {
  ScopedEnv no_chaos("RESPAWN_CHAOS", std::nullopt);
  ScopedEnv key("AWS_ACCESS_KEY_ID", "store-url-test-key");
  ScopedEnv secret("AWS_SECRET_ACCESS_KEY", "store-url-test-secret");
  ScopedEnv token("AWS_SESSION_TOKEN", std::nullopt);
  ScopedEnv profile("AWS_PROFILE", std::nullopt);
  ScopedEnv credentials("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials");
  ScopedEnv config("AWS_CONFIG_FILE", "/nonexistent/config");
  ScopedEnv endpoint_s3("AWS_ENDPOINT_URL_S3", std::nullopt);
  ScopedEnv endpoint("AWS_ENDPOINT_URL", "http://127.0.0.1:9");

  OpenStoreOptions options;
  options.metrics = false;
  options.retry_policy.max_attempts = 3;
  Result<OpenedStore> opened = OpenStore("s3://store-url-test/some/prefix/", options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  // S3Store retries each request itself: no RetryStore around it.
  EXPECT_EQ(opened->store.get(), opened->backend.get());
  auto* s3 = dynamic_cast<S3Store*>(opened->backend.get());
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ(s3->config().bucket, "store-url-test");
  EXPECT_EQ(s3->config().prefix, "some/prefix");
  EXPECT_EQ(s3->config().retry.max_attempts, 3);
  EXPECT_EQ(opened->store->Url(), "s3://store-url-test/some/prefix");

  // Injected faults sit above the S3 client's own retries, so they get a RetryStore.
  options.chaos = "error_rate=0.5";
  opened = OpenStore("s3://store-url-test/some/prefix", options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto* retry = dynamic_cast<RetryStore*>(opened->store.get());
  ASSERT_NE(retry, nullptr);
  auto* chaos = dynamic_cast<ChaosStore*>(retry->target().get());
  ASSERT_NE(chaos, nullptr);
  EXPECT_EQ(chaos->target().get(), opened->backend.get());
}

TEST(StoreUrlTest, OpenPosix) {
  ScopedEnv no_chaos("RESPAWN_CHAOS", std::nullopt);
  std::string tmpl = (fs::temp_directory_path() / "store_url_test.XXXXXX").string();
  ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
  std::string root = tmpl + "/store";
  Result<OpenedStore> opened = OpenStore("file://" + root);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto* posix = dynamic_cast<PosixStore*>(opened->backend.get());
  ASSERT_NE(posix, nullptr);
  EXPECT_EQ(posix->root(), root);
  EXPECT_EQ(opened->store->Url(), "file://" + root);
  ASSERT_TRUE(opened->store->Put("a/b", "v").ok());
  EXPECT_TRUE(fs::exists(root + "/a/b"));

  // A plain path names the same store.
  Result<OpenedStore> again = OpenStore(root + "/");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again->store->Get("a/b"), "v");

  // A file where the root should be.
  EXPECT_FALSE(OpenStore(root + "/a/b").ok());
  std::error_code ec;
  fs::remove_all(tmpl, ec);
}

// Near misses are errors with the right form, never a local directory named "s3:".
TEST(StoreUrlTest, MistypedUrlsAreRefusedWithTheRightForm) {
  struct Case {
    std::string text, want;
  };
  for (const Case& c : std::vector<Case>{{"s3:/bucket/x", "write s3://bucket/x"},
                                         {"s3:bucket", "write s3://bucket"},
                                         {"s3//bucket/p", "write s3://bucket/p"},
                                         {"memory:/m", "write memory://m"}}) {
    Result<ParsedStoreUrl> r = ParseStoreUrl(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(r.status().message().find(c.want), std::string::npos) << r.status().ToString();
  }
  EXPECT_EQ(StoreUrlNearMiss("s3data/x"), "");  // a directory whose name starts with s3
  EXPECT_EQ(StoreUrlNearMiss("S3://bucket"), "");
  EXPECT_TRUE(ParseStoreUrl("s3data/x").ok());
}

}  // namespace
}  // namespace respawn
