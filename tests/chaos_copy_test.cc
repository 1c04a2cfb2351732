// respawn-test-servers: radosgw
//
// Copies 1,000 small objects into a destination store that fails 10% of its calls (every error
// kind), through OpenStore's wrappers (chaos -> retry -> metrics), with 8 objects in flight, then
// reads every object back through a store opened without chaos and compares it byte for byte.
// Destinations: a local directory, and radosgw when ctest provides its env file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "storage/chaos_store.h"
#include "storage/copy.h"
#include "storage/metrics_store.h"
#include "storage/posix_store.h"
#include "storage/store_url.h"
#include "test_env.h"
#include "util/testing.h"
#include "util/thread_pool.h"

namespace respawn {
namespace {

constexpr int kObjects = 1000;
constexpr size_t kMaxSize = 64 * 1024;
constexpr int kThreads = 8;
constexpr std::string_view kChaos = "error_rate=0.1,errors=unavailable+timeout+reset+slowdown";

// The ChaosStore somewhere below `store` in its wrapper chain; null if there is none.
ChaosStore* FindChaos(Store* store) {
  while (store != nullptr) {
    if (auto* chaos = dynamic_cast<ChaosStore*>(store)) return chaos;
    auto* wrapper = dynamic_cast<StoreWrapper*>(store);
    if (wrapper == nullptr) return nullptr;
    store = wrapper->target().get();
  }
  return nullptr;
}

std::string ObjectKey(int i) {
  return "part-" + std::to_string(i % 16) + "/object-" + std::to_string(i);
}

class ChaosCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("RESPAWN_CHAOS");  // the "without chaos" store must really be without
    std::string pattern = ::testing::TempDir() + "/chaos_copy_test-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    ASSERT_NE(::mkdtemp(buf.data()), nullptr);
    dir_ = buf.data();
  }

  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // Fills the source with kObjects random objects (seeded: the same every run).
  void MakeSource() {
    PosixStoreOptions fast;
    fast.fsync = false;
    ASSERT_OK_AND_ASSIGN(std::unique_ptr<PosixStore> src, PosixStore::Open(dir_ + "/src", fast));
    src_ = std::move(src);
    std::mt19937_64 rng(20240607);
    std::uniform_int_distribution<size_t> size(0, kMaxSize);
    for (int i = 0; i < kObjects; ++i) {
      std::string data(size(rng), '\0');
      for (char& c : data) c = static_cast<char>(rng());
      ASSERT_OK(src_->Put(ObjectKey(i), data));
      expected_.push_back(std::move(data));
    }
  }

  // Copies everything from the source to `dst_url` with chaos, then verifies through a store
  // opened without it.
  void CopyAndVerify(const std::string& dst_url) {
    ASSERT_NO_FATAL_FAILURE(MakeSource());
    OpenStoreOptions chaotic;
    chaotic.chaos = std::string(kChaos);
    chaotic.retry = true;
    chaotic.retry_policy.base_delay = std::chrono::milliseconds(5);
    chaotic.retry_policy.max_delay = std::chrono::milliseconds(100);
    chaotic.retry_policy.max_attempts = 8;
    ASSERT_OK_AND_ASSIGN(OpenedStore dst, OpenStore(dst_url, chaotic));
    ChaosStore* chaos = FindChaos(dst.store.get());
    ASSERT_NE(chaos, nullptr) << "OpenStore did not install the chaos wrapper for " << dst_url;

    CopyOptions copy;
    copy.parallelism = kThreads;
    copy.object_attempts = 1;  // single calls are retried by RetryStore; nothing above it
    ASSERT_OK_AND_ASSIGN(CopyResult copied, CopyPrefix(*src_, "", *dst.store, "", copy));
    ASSERT_TRUE(copied.ok()) << copied.failures.size() << " objects failed, first "
                             << copied.failures.front().first << ": "
                             << copied.FirstError().ToString();
    EXPECT_EQ(copied.objects_copied, static_cast<uint64_t>(kObjects));

    // The copy went through injected failures, and the retries hid every one of them.
    EXPECT_GT(chaos->injected_errors(), 0u);
    RecordProperty("injected_errors", static_cast<int>(chaos->injected_errors()));
    if (dst.metrics) {
      StoreMetrics m = dst.metrics->Snapshot();
      EXPECT_EQ(m.of(StoreOp::kPut).calls, static_cast<uint64_t>(kObjects));
      EXPECT_EQ(m.of(StoreOp::kPut).errors, 0u);
    }

    OpenStoreOptions clean;
    clean.chaos = "error_rate=0";  // explicit: no chaos, whatever the environment says
    ASSERT_OK_AND_ASSIGN(OpenedStore check, OpenStore(dst_url, clean));
    ASSERT_EQ(FindChaos(check.store.get()), nullptr);
    ASSERT_OK_AND_ASSIGN(std::vector<ObjectInfo> listed, ListAll(*check.store, ""));
    EXPECT_EQ(listed.size(), static_cast<size_t>(kObjects));

    std::atomic<int> mismatches{0};
    ParallelFor(kObjects, kThreads, [&](size_t i) {
      Result<std::string> got = check.store->Get(ObjectKey(static_cast<int>(i)));
      if (!got.ok()) {
        ADD_FAILURE() << ObjectKey(static_cast<int>(i)) << ": " << got.status().ToString();
        ++mismatches;
      } else if (*got != expected_[i]) {
        ADD_FAILURE() << ObjectKey(static_cast<int>(i)) << ": " << got->size()
                      << " bytes differ from the " << expected_[i].size() << " written";
        ++mismatches;
      }
    });
    EXPECT_EQ(mismatches.load(), 0);

    std::vector<std::string> keys;
    for (int i = 0; i < kObjects; ++i) keys.push_back(ObjectKey(i));
    Result<DeleteResult> cleanup = check.store->DeleteMany(keys);
    EXPECT_TRUE(cleanup.ok() && cleanup->failed.empty());
  }

  std::string dir_;
  std::unique_ptr<PosixStore> src_;
  std::vector<std::string> expected_;
};

TEST_F(ChaosCopyTest, ToPosix) { CopyAndVerify("file://" + dir_ + "/dst"); }

TEST_F(ChaosCopyTest, ToRadosgw) {
  Result<test::S3TestServer> server = test::UseS3TestServer("radosgw");
  if (server.status().IsNotFound()) GTEST_SKIP() << server.status().message();
  ASSERT_OK(server);
  CopyAndVerify("s3://" + server->bucket + "/" + test::UniqueName("chaos-copy"));
}

}  // namespace
}  // namespace respawn
