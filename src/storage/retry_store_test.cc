#include "storage/retry_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "storage/chaos_store.h"
#include "storage/memory_store.h"

namespace respawn {
namespace {

// Fast retries so tests do not sleep for long.
RetryPolicy FastPolicy(int max_attempts) {
  RetryPolicy p;
  p.max_attempts = max_attempts;
  p.base_delay = std::chrono::milliseconds(1);
  p.max_delay = std::chrono::milliseconds(4);
  p.deadline = std::chrono::seconds(60);
  return p;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

// A directory removed (with its files) at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "/retry_store_test-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    path_ = ::mkdtemp(buf.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name, std::string_view contents) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << contents;
    return p;
  }

 private:
  std::string path_;
};

// Forwards to a target, counting calls; hooks let a test script failures.
class ScriptedStore : public StoreWrapper {
 public:
  using StoreWrapper::Get;
  using StoreWrapper::Put;
  using StoreWrapper::PutFile;
  using StoreWrapper::StoreWrapper;

  // Called before each Put/PutFile with the 1-based put number; a status short-circuits it.
  std::function<std::optional<Status>(int n, std::string_view key)> on_put;
  // Replaces DeleteMany when set; `n` is the 1-based call number.
  std::function<Result<DeleteResult>(int n, const std::vector<std::string>& keys)> on_delete_many;

  std::atomic<int> puts{0}, gets{0}, ranges{0}, stats{0}, delete_many_calls{0};

  Status Put(std::string_view key, std::string_view data, const PutOptions& o) override {
    int n = ++puts;
    if (on_put) {
      if (auto s = on_put(n, key)) return *s;
    }
    return target_->Put(key, data, o);
  }
  Status PutFile(std::string_view key, const std::string& path, const PutOptions& o) override {
    int n = ++puts;
    if (on_put) {
      if (auto s = on_put(n, key)) return *s;
    }
    return target_->PutFile(key, path, o);
  }
  Result<std::string> Get(std::string_view key, const GetOptions& o) override {
    ++gets;
    return target_->Get(key, o);
  }
  Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length) override {
    ++ranges;
    return target_->GetRange(key, offset, length);
  }
  Result<ObjectInfo> Stat(std::string_view key) override {
    ++stats;
    return target_->Stat(key);
  }
  Result<DeleteResult> DeleteMany(const std::vector<std::string>& keys) override {
    int n = ++delete_many_calls;
    if (on_delete_many) return on_delete_many(n, keys);
    return target_->DeleteMany(keys);
  }
};

ChaosSpec Spec(std::string_view text) {
  Result<ChaosSpec> spec = ParseChaosSpec(text);
  EXPECT_TRUE(spec.ok()) << spec.status().ToString();
  return spec.ok() ? *spec : ChaosSpec{};
}

TEST(RetryStoreTest, SucceedsThroughInjectedErrors) {
  auto memory = std::make_shared<MemoryStore>();
  auto chaos = std::make_shared<ChaosStore>(
      memory, Spec("error_rate=0.3,errors=unavailable+timeout+reset+slowdown,seed=11"));
  RetryStore store(chaos, FastPolicy(20));

  constexpr int kObjects = 200;
  for (int i = 0; i < kObjects; ++i) {
    std::string key = "obj/" + std::to_string(i);
    ASSERT_TRUE(store.Put(key, RandomBytes(i, i)).ok()) << key;
  }
  for (int i = 0; i < kObjects; ++i) {
    std::string key = "obj/" + std::to_string(i);
    Result<std::string> got = store.Get(key);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(*got, RandomBytes(i, i));
    Result<ObjectInfo> info = store.Stat(key);
    ASSERT_TRUE(info.ok()) << info.status().ToString();
    EXPECT_EQ(info->size, static_cast<uint64_t>(i));
  }
  Result<std::vector<ObjectInfo>> all = ListAll(store, "obj/");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), static_cast<size_t>(kObjects));

  ASSERT_TRUE(store.Delete("obj/0").ok());
  std::vector<std::string> keys;
  for (int i = 1; i < kObjects; ++i) keys.push_back("obj/" + std::to_string(i));
  Result<DeleteResult> deleted = store.DeleteMany(keys);
  ASSERT_TRUE(deleted.ok()) << deleted.status().ToString();
  EXPECT_TRUE(deleted->failed.empty()) << deleted->FirstError().ToString();
  EXPECT_EQ(deleted->deleted, keys.size());
  Result<std::vector<ObjectInfo>> none = ListAll(*memory, "");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());

  EXPECT_GT(chaos->injected_errors(), 100u);  // ~30% of ~1000 calls
}

TEST(RetryStoreTest, GivesUpAfterMaxAttemptsAndSaysSo) {
  auto memory = std::make_shared<MemoryStore>();
  ASSERT_TRUE(memory->Put("k", "v").ok());
  auto chaos = std::make_shared<ChaosStore>(memory, Spec("error_rate=1,seed=3"));
  RetryStore store(chaos, FastPolicy(3));

  Result<std::string> got = store.Get("k");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(got.status().message().find("gave up after 3 attempts"), std::string::npos)
      << got.status().message();
  EXPECT_NE(got.status().message().find("chaos: injected"), std::string::npos);
  EXPECT_EQ(chaos->injected_errors(), 3u);

  Status put = store.Put("other", "x");
  EXPECT_EQ(put.code(), StatusCode::kUnavailable);
  EXPECT_NE(put.message().find("3 attempts"), std::string::npos) << put.message();
  EXPECT_EQ(chaos->injected_errors(), 6u);
}

TEST(RetryStoreTest, DoesNotRetryNonRetryableErrors) {
  auto scripted = std::make_shared<ScriptedStore>(std::make_shared<MemoryStore>());
  RetryStore store(scripted, FastPolicy(5));
  Result<std::string> got = store.Get("missing");
  EXPECT_TRUE(got.status().IsNotFound());
  EXPECT_EQ(scripted->gets.load(), 1);
  EXPECT_EQ(got.status().message().find("attempts"), std::string::npos);

  scripted->on_put = [](int, std::string_view) -> std::optional<Status> {
    return PermissionDenied("no");
  };
  EXPECT_EQ(store.Put("k", "v").code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(scripted->puts.load(), 1);
}

TEST(RetryStoreTest, RespectsDeadline) {
  auto memory = std::make_shared<MemoryStore>();
  auto chaos = std::make_shared<ChaosStore>(memory, Spec("error_rate=1,seed=5"));
  RetryPolicy policy;
  policy.max_attempts = 10000;
  policy.base_delay = std::chrono::milliseconds(10);
  policy.max_delay = std::chrono::milliseconds(10);
  policy.deadline = std::chrono::milliseconds(100);
  RetryStore store(chaos, policy);
  auto start = std::chrono::steady_clock::now();
  Result<ObjectInfo> info = store.Stat("k");
  auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(info.status().code(), StatusCode::kUnavailable);
  EXPECT_LT(elapsed, std::chrono::milliseconds(1000));
  EXPECT_LT(chaos->injected_errors(), 100u);
  EXPECT_GT(chaos->injected_errors(), 1u);
}

TEST(RetryStoreTest, AmbiguousPutIfAbsentOfOurOwnWriteIsOk) {
  auto memory = std::make_shared<MemoryStore>();
  // Every successful put is reported as failed: the first attempt lands, the retry then finds
  // the key taken, and the read-back shows it is ours.
  auto chaos = std::make_shared<ChaosStore>(memory, Spec("after_rate=1,seed=1"));
  auto scripted = std::make_shared<ScriptedStore>(chaos);
  RetryStore store(scripted, FastPolicy(5));

  PutOptions if_absent;
  if_absent.if_absent = true;
  std::string data = RandomBytes(1000, 1);
  EXPECT_TRUE(store.Put("commit/1", data, if_absent).ok());
  EXPECT_EQ(scripted->puts.load(), 2);
  EXPECT_EQ(*memory->Get("commit/1"), data);

  TempDir dir;
  std::string file_data = RandomBytes(5000, 2);
  std::string path = dir.File("f", file_data);
  EXPECT_TRUE(store.PutFile("commit/2", path, if_absent).ok());
  EXPECT_EQ(*memory->Get("commit/2"), file_data);

  // Empty objects too.
  EXPECT_TRUE(store.Put("commit/3", "", if_absent).ok());
  EXPECT_TRUE(store.PutFile("commit/4", dir.File("empty", ""), if_absent).ok());
}

TEST(RetryStoreTest, AmbiguousPutIfAbsentComparesLargeObjectsInChunks) {
  auto memory = std::make_shared<MemoryStore>();
  auto chaos = std::make_shared<ChaosStore>(memory, Spec("after_rate=1,seed=1"));
  auto scripted = std::make_shared<ScriptedStore>(chaos);
  RetryStore store(scripted, FastPolicy(5));
  PutOptions if_absent;
  if_absent.if_absent = true;
  std::string data = RandomBytes(20u << 20, 9);  // three 8 MiB chunks
  EXPECT_TRUE(store.Put("big", data, if_absent).ok());
  EXPECT_EQ(scripted->ranges.load(), 3);
  EXPECT_EQ(scripted->gets.load(), 0);

  TempDir dir;
  EXPECT_TRUE(store.PutFile("bigfile", dir.File("big", data), if_absent).ok());
}

TEST(RetryStoreTest, AmbiguousPutIfAbsentOfAnotherWritersObjectIsAlreadyExists) {
  auto memory = std::make_shared<MemoryStore>();
  auto scripted = std::make_shared<ScriptedStore>(memory);
  RetryStore store(scripted, FastPolicy(5));
  // The first attempt times out; meanwhile another writer commits different bytes.
  std::string theirs;
  scripted->on_put = [&](int n, std::string_view key) -> std::optional<Status> {
    if (n != 1) return std::nullopt;
    EXPECT_TRUE(memory->Put(key, theirs).ok());
    return DeadlineExceeded("timeout");
  };
  PutOptions if_absent;
  if_absent.if_absent = true;

  theirs = "their bytes";
  Status s = store.Put("commit/1", "our bytes!!", if_absent);  // same size, other bytes
  EXPECT_TRUE(s.IsAlreadyExists()) << s.ToString();
  EXPECT_EQ(*memory->Get("commit/1"), "their bytes");

  scripted->puts = 0;
  theirs = "short";
  s = store.Put("commit/2", "our longer bytes", if_absent);
  EXPECT_TRUE(s.IsAlreadyExists()) << s.ToString();

  TempDir dir;
  scripted->puts = 0;
  theirs = RandomBytes(4096, 1);
  s = store.PutFile("commit/3", dir.File("ours", RandomBytes(4096, 2)), if_absent);
  EXPECT_TRUE(s.IsAlreadyExists()) << s.ToString();
  EXPECT_EQ(*memory->Get("commit/3"), theirs);
}

TEST(RetryStoreTest, PlainAlreadyExistsIsNotReadBack) {
  auto memory = std::make_shared<MemoryStore>();
  ASSERT_TRUE(memory->Put("k", "v").ok());
  auto scripted = std::make_shared<ScriptedStore>(memory);
  RetryStore store(scripted, FastPolicy(5));
  PutOptions if_absent;
  if_absent.if_absent = true;
  EXPECT_TRUE(store.Put("k", "v", if_absent).IsAlreadyExists());
  EXPECT_EQ(scripted->puts.load(), 1);
  EXPECT_EQ(scripted->stats.load() + scripted->gets.load() + scripted->ranges.load(), 0);
}

TEST(RetryStoreTest, DeleteManyRetriesOnlyRetryableKeys) {
  auto memory = std::make_shared<MemoryStore>();
  std::vector<std::string> keys = {"a", "b", "c", "d"};
  for (const auto& k : keys) ASSERT_TRUE(memory->Put(k, "x").ok());
  auto scripted = std::make_shared<ScriptedStore>(memory);
  std::vector<std::vector<std::string>> asked;
  scripted->on_delete_many = [&](int n,
                                 const std::vector<std::string>& ks) -> Result<DeleteResult> {
    asked.push_back(ks);
    if (n == 1) {
      DeleteResult r;
      r.deleted = 2;
      memory->Delete("a").IgnoreError();
      memory->Delete("d").IgnoreError();
      r.failed.emplace_back("b", Unavailable("503 on b"));
      r.failed.emplace_back("c", PermissionDenied("denied on c"));
      return r;
    }
    if (n == 2) return Unavailable("whole request failed");
    return memory->DeleteMany(ks);
  };
  RetryStore store(scripted, FastPolicy(5));
  Result<DeleteResult> r = store.DeleteMany(keys);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->deleted, 3u);
  ASSERT_EQ(r->failed.size(), 1u);
  EXPECT_EQ(r->failed[0].first, "c");
  EXPECT_EQ(r->failed[0].second.code(), StatusCode::kPermissionDenied);
  ASSERT_EQ(asked.size(), 3u);
  EXPECT_EQ(asked[1], std::vector<std::string>{"b"});
  EXPECT_EQ(asked[2], std::vector<std::string>{"b"});
  EXPECT_TRUE(memory->Stat("b").status().IsNotFound());
}

TEST(RetryStoreTest, DeleteManyReportsKeysThatKeptFailing) {
  auto memory = std::make_shared<MemoryStore>();
  auto scripted = std::make_shared<ScriptedStore>(memory);
  scripted->on_delete_many = [&](int, const std::vector<std::string>& ks) -> Result<DeleteResult> {
    DeleteResult r;
    for (const auto& k : ks) {
      if (k == "stuck") {
        r.failed.emplace_back(k, Unavailable("503 on stuck"));
      } else {
        ++r.deleted;
      }
    }
    return r;
  };
  RetryStore store(scripted, FastPolicy(4));
  Result<DeleteResult> r = store.DeleteMany({"x", "stuck", "y"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted, 2u);
  ASSERT_EQ(r->failed.size(), 1u);
  EXPECT_EQ(r->failed[0].first, "stuck");
  EXPECT_TRUE(r->failed[0].second.IsUnavailable());
  EXPECT_NE(r->failed[0].second.message().find("4 attempts"), std::string::npos);
  EXPECT_EQ(scripted->delete_many_calls.load(), 4);
}

TEST(RetryStoreTest, DeleteManyThroughPerKeyChaos) {
  auto memory = std::make_shared<MemoryStore>();
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) {
    keys.push_back("k" + std::to_string(i));
    ASSERT_TRUE(memory->Put(keys.back(), "x").ok());
  }
  auto chaos = std::make_shared<ChaosStore>(memory, Spec("error_rate=0.4,ops=delete,seed=2"));
  RetryStore store(chaos, FastPolicy(30));
  Result<DeleteResult> r = store.DeleteMany(keys);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted, keys.size());
  EXPECT_TRUE(r->failed.empty());
  EXPECT_GT(chaos->injected_errors(), 50u);
  EXPECT_TRUE(ListAll(*memory, "")->empty());
}

}  // namespace
}  // namespace respawn
