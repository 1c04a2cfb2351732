#include "storage/copy.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <sstream>

#include "storage/chaos_store.h"
#include "storage/memory_store.h"
#include "storage/metrics_store.h"
#include "storage/posix_store.h"
#include "storage/retry_store.h"
#include "util/clock.h"

namespace respawn {
namespace {

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "respawn-copy-test-XXXXXX";
    char* p = ::mkdtemp(pattern.data());
    EXPECT_NE(p, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::unique_ptr<PosixStore> OpenPosix(const std::string& root) {
  PosixStoreOptions options;
  options.fsync = false;
  auto r = PosixStore::Open(root, options);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

// Fails Put/PutFile of chosen keys, either always or for the first `transient` calls.
class FlakyStore : public StoreWrapper {
 public:
  using StoreWrapper::Put;
  using StoreWrapper::PutFile;
  explicit FlakyStore(std::shared_ptr<Store> target) : StoreWrapper(std::move(target)) {}

  Status Put(std::string_view key, std::string_view data, const PutOptions& o) override {
    RETURN_IF_ERROR(Check(key));
    if (truncate_) data = data.substr(0, data.size() / 2);
    if (Flip() && !data.empty()) {
      std::string copy(data);
      copy[0] = static_cast<char>(copy[0] ^ 1);
      return target_->Put(key, copy, o);
    }
    return target_->Put(key, data, o);
  }
  Status PutFile(std::string_view key, const std::string& path, const PutOptions& o) override {
    RETURN_IF_ERROR(Check(key));
    if (Flip()) {
      std::string data = ReadFile(path);
      if (!data.empty()) data[0] = static_cast<char>(data[0] ^ 1);
      return target_->Put(key, data, o);
    }
    return target_->PutFile(key, path, o);
  }

  void FailAlways(std::string key) { always_.insert(std::move(key)); }
  void FailFirst(int n) { transient_ = n; }
  void Truncate() { truncate_ = true; }
  /// Flips the first byte of what the next `times` puts write (default: all of them).
  void FlipFirstByte(int times = -1) { flip_ = times; }
  int calls() const { return calls_; }

 private:
  bool Flip() {
    std::lock_guard<std::mutex> lock(mu_);
    if (flip_ == 0) return false;
    if (flip_ > 0) --flip_;
    return true;
  }
  Status Check(std::string_view key) {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    if (always_.count(std::string(key)) > 0) {
      return PermissionDenied("no write access to " + std::string(key));
    }
    if (transient_ > 0) {
      --transient_;
      return Unavailable("injected 503 for " + std::string(key));
    }
    return Status::OK();
  }

  std::mutex mu_;
  std::set<std::string> always_;
  int transient_ = 0;
  int calls_ = 0;
  bool truncate_ = false;
  int flip_ = 0;  // puts left to corrupt; negative: all
};

TEST(JoinKeyTest, OneSlash) {
  EXPECT_EQ(JoinKey("", "x"), "x");
  EXPECT_EQ(JoinKey("a", "x"), "a/x");
  EXPECT_EQ(JoinKey("a/", "x/y"), "a/x/y");
  EXPECT_EQ(JoinKey("a", ""), "a");
}

TEST(CopyTest, SingleObjectInMemory) {
  MemoryStore src("src"), dst("dst");
  ASSERT_TRUE(src.Put("a/b", "hello").ok());
  auto r = CopyObject(src, "a/b", dst, "c", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->ok());
  EXPECT_EQ(r->objects_total, 1u);
  EXPECT_EQ(r->objects_copied, 1u);
  EXPECT_EQ(r->bytes_copied, 5u);
  auto got = dst.Get("c");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "hello");
}

TEST(CopyTest, MissingSourceIsNotFound) {
  MemoryStore src("src"), dst("dst");
  auto r = CopyObject(src, "nope", dst, "nope", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
}

TEST(CopyTest, OntoItselfIsInvalidArgument) {
  MemoryStore store("same");
  ASSERT_TRUE(store.Put("k", "v").ok());
  auto r = CopyObject(store, "k", store, "k", {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);

  TempDir dir;
  std::filesystem::create_directories(dir.path() + "/sub");
  auto outer = OpenPosix(dir.path());
  auto inner = OpenPosix(dir.path() + "/sub");
  ASSERT_TRUE(outer->Put("sub/f", "data").ok());
  auto r2 = CopyObject(*outer, "sub/f", *inner, "f", {});
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.status().code(), StatusCode::kInvalidArgument);
}

TEST(CopyTest, PrefixIsADirectory) {
  MemoryStore src("src"), dst("dst");
  for (const char* k : {"a/b/1", "a/b/c/2", "a/bc/3", "z", "a/b/marker/"}) {
    ASSERT_TRUE(src.Put(k, k[0] == 'a' && std::string(k).back() == '/' ? "" : k).ok());
  }
  auto r = CopyPrefix(src, "a/b", dst, "out", {});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->objects_copied, 2u);
  auto all = ListAll(dst, "");
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].key, "out/1");
  EXPECT_EQ((*all)[1].key, "out/c/2");
  EXPECT_EQ(*dst.Get("out/c/2"), "a/b/c/2");

  // Empty prefixes mean everything, and an empty source is not an error.
  MemoryStore all_dst("all");
  auto r2 = CopyPrefix(src, "", all_dst, "", {});
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(r2->objects_copied, 4u);  // the zero-byte marker is skipped
  MemoryStore empty("empty");
  auto r3 = CopyPrefix(empty, "x", dst, "y", {});
  ASSERT_TRUE(r3.ok());
  EXPECT_EQ(r3->objects_total, 0u);
  EXPECT_TRUE(r3->ok());
}

TEST(CopyTest, StreamedThroughTempFileWithReadBackAndProgress) {
  MemoryStore src("src"), dst("dst");
  std::map<std::string, std::string> data;
  for (int i = 0; i < 12; ++i) {
    std::string key = "big/" + std::to_string(i);
    data[key] = RandomBytes(100'000 + i * 1000, i);
    ASSERT_TRUE(src.Put(key, data[key]).ok());
  }
  std::mutex mu;
  CopyProgress last;
  int calls = 0;
  CopyOptions options;
  options.stream_threshold = 50'000;
  options.parallelism = 4;
  options.verify = CopyVerify::kReadBack;
  options.progress = [&](const CopyProgress& p) {
    std::lock_guard<std::mutex> lock(mu);
    EXPECT_LE(p.objects_done, p.objects_total);
    last = p;
    ++calls;
  };
  auto r = CopyPrefix(src, "big", dst, "copy", options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->ok()) << r->FirstError().ToString();
  uint64_t total = 0;
  for (auto& [key, bytes] : data) {
    total += bytes.size();
    auto got = dst.Get("copy/" + key.substr(4));
    ASSERT_TRUE(got.ok()) << key;
    EXPECT_EQ(*got, bytes) << key;
  }
  EXPECT_EQ(r->bytes_copied, total);
  EXPECT_GE(calls, 12);
  EXPECT_EQ(last.objects_done, 12u);
  EXPECT_EQ(last.objects_total, 12u);
  EXPECT_EQ(last.bytes_total, total);
  EXPECT_EQ(last.bytes_done, total);
}

TEST(CopyTest, PosixFilesAreUsedDirectlyBothWays) {
  TempDir dir;
  auto local = OpenPosix(dir.path() + "/local");
  MemoryStore remote("remote");
  const std::string big = RandomBytes(300'000, 42);
  ASSERT_TRUE(local->Put("in/big.bin", big).ok());
  CopyOptions options;
  options.stream_threshold = 1000;
  options.verify = CopyVerify::kReadBack;

  auto up = CopyObject(*local, "in/big.bin", remote, "x/big.bin", options);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  ASSERT_TRUE(up->ok()) << up->FirstError().ToString();
  EXPECT_EQ(*remote.Get("x/big.bin"), big);

  auto down = CopyObject(remote, "x/big.bin", *local, "out/deep/big.bin", options);
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  ASSERT_TRUE(down->ok()) << down->FirstError().ToString();
  EXPECT_EQ(ReadFile(dir.path() + "/local/out/deep/big.bin"), big);
  EXPECT_EQ(down->bytes_copied, big.size());
}

// Store::LocalPath: POSIX has a file per valid key, the retry and metrics wrappers forward it,
// the chaos store hides it (its faults must apply to every access), memory has none.
TEST(CopyTest, LocalFilesAreFoundThroughWrappersButNotThroughChaos) {
  TempDir dir;
  const std::string root = dir.path() + "/local";
  std::shared_ptr<Store> local = OpenPosix(root);
  EXPECT_EQ(local->LocalPath("a/b.bin"), root + "/a/b.bin");
  EXPECT_EQ(local->LocalPath("../escape"), "");
  auto metered = std::make_shared<MetricsStore>(std::make_shared<RetryStore>(local, RetryPolicy()));
  EXPECT_EQ(metered->LocalPath("a/b.bin"), root + "/a/b.bin");
  auto chaos = std::make_shared<ChaosStore>(metered, ChaosSpec());
  EXPECT_EQ(chaos->LocalPath("a/b.bin"), "");
  EXPECT_EQ(MemoryStore("local-path").LocalPath("a/b.bin"), "");

  // A streamed copy out of the wrapped POSIX store reads its file: no GET reaches the store.
  const std::string big = RandomBytes(300'000, 7);
  ASSERT_TRUE(local->Put("in/big.bin", big).ok());
  MemoryStore remote("local-path-remote");
  CopyOptions options;
  options.stream_threshold = 1000;
  auto direct = CopyObject(*metered, "in/big.bin", remote, "x/direct.bin", options);
  ASSERT_TRUE(direct.ok() && direct->ok());
  EXPECT_EQ(*remote.Get("x/direct.bin"), big);
  EXPECT_EQ(metered->Snapshot().of(StoreOp::kGet).calls, 0u);
  // Through the chaos store the copy reads the object through the stack.
  auto through = CopyObject(*chaos, "in/big.bin", remote, "x/through.bin", options);
  ASSERT_TRUE(through.ok() && through->ok());
  EXPECT_EQ(*remote.Get("x/through.bin"), big);
  EXPECT_EQ(metered->Snapshot().of(StoreOp::kGet).calls, 1u);
}

TEST(CopyTest, OddNamesBetweenDirectories) {
  TempDir dir;
  auto a = OpenPosix(dir.path() + "/a");
  auto b = OpenPosix(dir.path() + "/b");
  const std::vector<std::string> keys = {"with space.txt", "plus+sign", "per%25cent",
                                         "na\xc3\xafve/\xc3\xa9t\xc3\xa9.csv", "sub dir/x+y%z"};
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(a->Put(keys[i], RandomBytes(1000 * (i + 1), i)).ok()) << keys[i];
  }
  CopyOptions options;
  options.parallelism = 3;
  options.stream_threshold = 2500;  // some in memory, some streamed
  options.verify = CopyVerify::kSize;
  auto r = CopyPrefix(*a, "", *b, "", options);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(r->ok()) << r->FirstError().ToString();
  EXPECT_EQ(r->objects_copied, keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(ReadFile(dir.path() + "/b/" + keys[i]), RandomBytes(1000 * (i + 1), i)) << keys[i];
  }
}

TEST(CopyTest, FailuresArePerKeyAndDoNotStopOthers) {
  MemoryStore src("src");
  auto flaky = std::make_shared<FlakyStore>(std::make_shared<MemoryStore>("dst"));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(src.Put("k" + std::to_string(i), "v").ok());
  flaky->FailAlways("k3");
  flaky->FailAlways("k7");
  CopyOptions options;
  options.parallelism = 4;
  auto r = CopyPrefix(src, "", *flaky, "", options);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->objects_copied, 8u);
  ASSERT_EQ(r->failures.size(), 2u);
  EXPECT_EQ(r->failures[0].first, "k3");
  EXPECT_EQ(r->failures[1].first, "k7");
  EXPECT_EQ(r->failures[0].second.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(r->FirstError().code(), StatusCode::kPermissionDenied);
}

// A failed store call is the store's retry layer's business (store.h): the copy does not call
// again, so attempts do not multiply.
TEST(CopyTest, FailedStoreCallsAreRetriedOnlyByTheStore) {
  MemoryStore src("src");
  auto flaky = std::make_shared<FlakyStore>(std::make_shared<MemoryStore>("dst"));
  ASSERT_TRUE(src.Put("k", "value").ok());
  flaky->FailFirst(2);
  CopyOptions options;
  options.object_attempts = 3;
  auto r = CopyObject(src, "k", *flaky, "k", options);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->failures.size(), 1u);
  EXPECT_EQ(r->failures[0].second.code(), StatusCode::kUnavailable);
  EXPECT_EQ(flaky->calls(), 1);

  // Through the store's retry layer: each failure retried once there, nowhere else.
  RetryPolicy policy;
  policy.max_attempts = 3;
  auto retrying = std::make_shared<RetryStore>(flaky, policy, std::make_shared<ManualClock>());
  flaky->FailFirst(2);
  auto r2 = CopyObject(src, "k", *retrying, "k2", options);
  ASSERT_TRUE(r2.ok());
  EXPECT_TRUE(r2->ok()) << r2->FirstError().ToString();
  EXPECT_EQ(flaky->calls(), 1 + 3);
  EXPECT_EQ(*retrying->Get("k2"), "value");
}

// A copy that arrived with other bytes than were sent is made again.
TEST(CopyTest, CopiesThatDoNotVerifyAreMadeAgain) {
  MemoryStore src("src");
  ASSERT_TRUE(src.Put("k", "value").ok());
  auto flipping = std::make_shared<FlakyStore>(std::make_shared<MemoryStore>("dst"));
  flipping->FlipFirstByte(1);
  CopyOptions options;
  options.verify = CopyVerify::kReadBack;
  options.object_attempts = 2;
  auto r = CopyObject(src, "k", *flipping, "k", options);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok()) << r->FirstError().ToString();
  EXPECT_EQ(flipping->calls(), 2);
  EXPECT_EQ(*flipping->Get("k"), "value");
}

TEST(CopyTest, VerificationCatchesCorruption) {
  MemoryStore src("src");
  ASSERT_TRUE(src.Put("small", RandomBytes(1000, 1)).ok());
  ASSERT_TRUE(src.Put("large", RandomBytes(100'000, 2)).ok());

  auto truncating = std::make_shared<FlakyStore>(std::make_shared<MemoryStore>("t"));
  truncating->Truncate();
  CopyOptions options;
  options.object_attempts = 1;
  options.verify = CopyVerify::kNone;
  EXPECT_TRUE(CopyObject(src, "small", *truncating, "small", options)->ok());
  options.verify = CopyVerify::kSize;
  auto r = CopyObject(src, "small", *truncating, "small", options);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->failures.size(), 1u);
  EXPECT_EQ(r->failures[0].second.code(), StatusCode::kDataLoss);

  auto flipping = std::make_shared<FlakyStore>(std::make_shared<MemoryStore>("f"));
  flipping->FlipFirstByte();
  options.verify = CopyVerify::kSize;  // same size: not caught by size
  EXPECT_TRUE(CopyObject(src, "small", *flipping, "small", options)->ok());
  options.verify = CopyVerify::kReadBack;
  for (const char* key : {"small", "large"}) {
    options.stream_threshold = 50'000;
    auto r2 = CopyObject(src, key, *flipping, key, options);
    ASSERT_TRUE(r2.ok());
    ASSERT_EQ(r2->failures.size(), 1u) << key;
    EXPECT_EQ(r2->failures[0].second.code(), StatusCode::kDataLoss) << key;
  }
}

TEST(CopyTest, CancelStopsStartingObjects) {
  MemoryStore src("src"), dst("dst");
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(src.Put("k" + std::to_string(100 + i), "v").ok());
  std::atomic<bool> cancel{false};
  CopyOptions options;
  options.parallelism = 1;
  options.cancel = &cancel;
  options.progress = [&](const CopyProgress& p) {
    if (p.objects_done >= 5) cancel = true;
  };
  auto r = CopyPrefix(src, "", dst, "", options);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->cancelled);
  EXPECT_FALSE(r->ok());
  EXPECT_EQ(r->objects_copied, 5u);
  EXPECT_EQ(r->objects_skipped, 15u);
  EXPECT_TRUE(r->failures.empty());
  auto listed = ListAll(dst, "");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 5u);
}

}  // namespace
}  // namespace respawn
