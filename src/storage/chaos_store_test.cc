#include "storage/chaos_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "storage/memory_store.h"
#include "util/crash_point.h"

namespace respawn {

class ChaosStorePeer {
 public:
  static size_t Bookkeeping(ChaosStore& store) {
    std::lock_guard<std::mutex> lock(store.mu_);
    return store.recent_writes_.size() + store.recent_deletes_.size() + store.write_order_.size() +
           store.delete_order_.size();
  }
};

namespace {

ChaosSpec Spec(std::string_view text) {
  Result<ChaosSpec> spec = ParseChaosSpec(text);
  EXPECT_TRUE(spec.ok()) << text << ": " << spec.status().ToString();
  return spec.ok() ? *spec : ChaosSpec{};
}

std::vector<std::string> Keys(const std::vector<ObjectInfo>& objects) {
  std::vector<std::string> keys;
  for (const auto& o : objects) keys.push_back(o.key);
  return keys;
}

std::vector<std::string> ListKeys(Store& store, const std::string& prefix = "") {
  Result<std::vector<ObjectInfo>> all = ListAll(store, prefix);
  EXPECT_TRUE(all.ok()) << all.status().ToString();
  return all.ok() ? Keys(*all) : std::vector<std::string>{};
}

// Crash points fired while the recording handler is installed.
std::mutex fired_mu;
std::vector<std::string> fired;  // GUARDED_BY(fired_mu)

void RecordCrash(std::string_view name) {
  std::lock_guard<std::mutex> lock(fired_mu);
  fired.emplace_back(name);
}

std::vector<std::string> Fired() {
  std::lock_guard<std::mutex> lock(fired_mu);
  return fired;
}

class ChaosStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DisarmAllCrashPoints();
    SetCrashHandler(&RecordCrash);
    std::lock_guard<std::mutex> lock(fired_mu);
    fired.clear();
  }
  void TearDown() override {
    DisarmAllCrashPoints();
    SetCrashHandler(nullptr);
  }

  std::shared_ptr<MemoryStore> memory_ = std::make_shared<MemoryStore>();
  std::shared_ptr<ManualClock> clock_ = std::make_shared<ManualClock>();  // listing lag's time
};

TEST_F(ChaosStoreTest, ErrorRateIsRoughlyHonoured) {
  ASSERT_TRUE(memory_->Put("k", "v").ok());
  ChaosStore store(memory_, Spec("error_rate=0.25,seed=42"));
  constexpr int kCalls = 4000;
  int failures = 0;
  for (int i = 0; i < kCalls; ++i) {
    Result<ObjectInfo> r = store.Stat("k");
    if (!r.ok()) {
      ++failures;
      EXPECT_TRUE(r.status().IsUnavailable()) << r.status().ToString();
    }
  }
  EXPECT_GT(failures, kCalls * 0.22);
  EXPECT_LT(failures, kCalls * 0.28);
  EXPECT_EQ(store.injected_errors(), static_cast<uint64_t>(failures));
}

TEST_F(ChaosStoreTest, SameSeedSameFailures) {
  ASSERT_TRUE(memory_->Put("k", "v").ok());
  auto pattern = [&](uint64_t seed) {
    ChaosSpec spec = Spec("error_rate=0.3,errors=unavailable+timeout+reset+slowdown");
    spec.seed = seed;
    ChaosStore store(memory_, spec);
    std::vector<std::string> outcomes;
    for (int i = 0; i < 200; ++i) outcomes.push_back(store.Get("k").status().ToString());
    return outcomes;
  };
  EXPECT_EQ(pattern(7), pattern(7));
  EXPECT_NE(pattern(7), pattern(8));
}

TEST_F(ChaosStoreTest, ErrorKindsMapToStatuses) {
  struct Case {
    const char* kind;
    StatusCode code;
    const char* message;
  };
  for (const Case& c : {
           Case{"unavailable", StatusCode::kUnavailable,
                "chaos: injected 503 ServiceUnavailable on put dir/key"},
           Case{"timeout", StatusCode::kDeadlineExceeded, "chaos: injected timeout on put dir/key"},
           Case{"reset", StatusCode::kUnavailable,
                "chaos: injected connection reset on put dir/key"},
           Case{"slowdown", StatusCode::kUnavailable,
                "chaos: injected 503 SlowDown on put dir/key"},
       }) {
    ChaosStore store(memory_, Spec(std::string("error_rate=1,seed=1,errors=") + c.kind));
    Status s = store.Put("dir/key", "data");
    EXPECT_EQ(s.code(), c.code) << c.kind;
    EXPECT_EQ(s.message(), c.message);
  }
  // Injected before the call reached the store: nothing was written.
  EXPECT_TRUE(memory_->Stat("dir/key").status().IsNotFound());

  ChaosStore mixed(memory_, Spec("error_rate=1,seed=3,errors=unavailable+timeout+reset+slowdown"));
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) seen.insert(mixed.Get("k").status().message().substr(0, 30));
  EXPECT_EQ(seen.size(), 4u);
}

TEST_F(ChaosStoreTest, OpsSelectWhichCallsFail) {
  ASSERT_TRUE(memory_->Put("k", "v").ok());
  ChaosStore store(memory_, Spec("error_rate=1,ops=put+list,seed=1"));
  EXPECT_TRUE(store.Put("x", "y").IsUnavailable());
  EXPECT_TRUE(store.List(ListOptions{}).status().IsUnavailable());
  EXPECT_TRUE(store.Get("k").ok());
  EXPECT_TRUE(store.GetRange("k", 0, 1).ok());
  EXPECT_TRUE(store.Stat("k").ok());
  EXPECT_TRUE(store.Delete("k").ok());
  EXPECT_TRUE(store.DeleteMany({"a", "b"})->failed.empty());
  EXPECT_EQ(store.injected_errors(), 2u);
}

TEST_F(ChaosStoreTest, AfterRateFailsWritesThatLanded) {
  ChaosStore store(memory_, Spec("after_rate=1,seed=1"));
  Status s = store.Put("k", "landed");
  EXPECT_TRUE(s.IsUnavailable()) << s.ToString();
  EXPECT_EQ(*memory_->Get("k"), "landed");
  EXPECT_EQ(store.injected_errors(), 1u);
  // A put that fails on its own is reported as it is.
  PutOptions if_absent;
  if_absent.if_absent = true;
  EXPECT_TRUE(store.Put("k", "other", if_absent).IsAlreadyExists());
  EXPECT_TRUE(store.Get("k").ok());
}

TEST_F(ChaosStoreTest, DeleteManyFailsSomeKeys) {
  std::vector<std::string> keys;
  for (int i = 0; i < 200; ++i) {
    keys.push_back("k" + std::to_string(i));
    ASSERT_TRUE(memory_->Put(keys.back(), "x").ok());
  }
  ChaosStore store(memory_, Spec("error_rate=0.5,ops=delete,seed=9"));
  Result<DeleteResult> r = store.DeleteMany(keys);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->deleted + r->failed.size(), keys.size());
  EXPECT_GT(r->failed.size(), 60u);
  EXPECT_LT(r->failed.size(), 140u);
  EXPECT_EQ(store.injected_errors(), r->failed.size());
  for (const auto& [key, status] : r->failed) {
    EXPECT_TRUE(status.IsUnavailable());
    EXPECT_TRUE(memory_->Stat(key).ok()) << key << " was deleted although reported failed";
  }
  EXPECT_EQ(ListKeys(*memory_).size(), r->failed.size());
}

TEST_F(ChaosStoreTest, AddsLatency) {
  ChaosStore store(memory_, Spec("latency_ms=30"), clock_);
  EXPECT_TRUE(store.Stat("none").status().IsNotFound());
  EXPECT_EQ(clock_->slept(), std::chrono::milliseconds(30));
}

TEST_F(ChaosStoreTest, CapabilitiesReportLaggingListings) {
  EXPECT_TRUE(ChaosStore(memory_, Spec("error_rate=0.5")).capabilities().consistent_listing);
  Capabilities lagging = ChaosStore(memory_, Spec("list_lag_ms=100")).capabilities();
  EXPECT_FALSE(lagging.consistent_listing);
  EXPECT_TRUE(lagging.put_if_absent);
}

TEST_F(ChaosStoreTest, PutIfAbsentOffHidesTheCapability) {
  ChaosStore store(memory_, Spec("put_if_absent=off"));
  EXPECT_TRUE(memory_->capabilities().put_if_absent);
  EXPECT_FALSE(store.capabilities().put_if_absent);
  PutOptions create;
  create.if_absent = true;
  Status s = store.Put("k", "v", create);
  EXPECT_EQ(s.code(), StatusCode::kUnimplemented) << s.ToString();
  EXPECT_TRUE(memory_->Stat("k").status().IsNotFound());
  EXPECT_TRUE(store.Put("k", "v").ok());  // plain puts work
  EXPECT_TRUE(ChaosStore(memory_, Spec("put_if_absent=on")).capabilities().put_if_absent);
}

TEST(CrashPointDeclarationTest, EveryOperationsPointsAreDeclared) {
  std::vector<std::string> declared = DeclaredCrashPoints();
  for (const char* op : {"put", "get", "stat", "list", "delete"}) {
    for (const char* when : {"before", "after"}) {
      std::string name = std::string("store:") + op + ":" + when;
      EXPECT_NE(std::find(declared.begin(), declared.end(), name), declared.end()) << name;
    }
  }
}

constexpr int kLagMs = 800;

TEST_F(ChaosStoreTest, ListLagHidesFreshWrites) {
  ASSERT_TRUE(memory_->Put("old", "o").ok());
  ChaosStore store(memory_, Spec("list_lag_ms=" + std::to_string(kLagMs)), clock_);
  ASSERT_TRUE(store.Put("new1", "a").ok());
  ASSERT_TRUE(store.Put("new2", "b").ok());
  EXPECT_EQ(ListKeys(store), std::vector<std::string>{"old"});
  // Reads of a hidden key work: only listings lag.
  EXPECT_EQ(*store.Get("new1"), "a");
  clock_->Advance(std::chrono::milliseconds(kLagMs + 1));
  EXPECT_EQ(ListKeys(store), (std::vector<std::string>{"new1", "new2", "old"}));
  EXPECT_EQ(ChaosStorePeer::Bookkeeping(store), 0u);  // expired entries are dropped
}

TEST_F(ChaosStoreTest, ListLagKeepsShowingFreshDeletes) {
  ASSERT_TRUE(memory_->Put("a", "aaa").ok());
  ASSERT_TRUE(memory_->Put("b", "bb").ok());
  ASSERT_TRUE(memory_->Put("c", "c").ok());
  ChaosStore store(memory_, Spec("list_lag_ms=" + std::to_string(kLagMs)), clock_);
  ASSERT_TRUE(store.Delete("a").ok());
  ASSERT_TRUE(store.DeleteMany({"c"}).ok());
  EXPECT_TRUE(store.Stat("a").status().IsNotFound());
  Result<std::vector<ObjectInfo>> listed = ListAll(store, "");
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(Keys(*listed), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ((*listed)[0].size, 3u);  // the deleted object's last known info
  EXPECT_EQ(ListKeys(store, "a"), std::vector<std::string>{"a"});
  EXPECT_TRUE(ListKeys(store, "x").empty());
  clock_->Advance(std::chrono::milliseconds(kLagMs + 1));
  EXPECT_EQ(ListKeys(store), std::vector<std::string>{"b"});
}

TEST_F(ChaosStoreTest, ListLagKeepsPagesOrderedAndComplete) {
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(memory_->Put("k" + std::to_string(i), "x").ok());
  ChaosStore store(memory_, Spec("list_lag_ms=" + std::to_string(kLagMs)), clock_);
  ASSERT_TRUE(store.Delete("k3").ok());
  ASSERT_TRUE(store.Delete("k7").ok());
  ASSERT_TRUE(store.Delete("k9").ok());
  ASSERT_TRUE(store.Put("k5", "rewritten").ok());
  for (size_t page_size : {1u, 2u, 3u, 100u}) {
    ListOptions options;
    options.max_keys = page_size;
    std::vector<std::string> keys;
    for (int pages = 0; pages < 100; ++pages) {
      Result<ListPage> page = store.List(options);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      for (const auto& o : page->objects) keys.push_back(o.key);
      if (page->next_token.empty()) break;
      options.continuation_token = page->next_token;
    }
    EXPECT_EQ(keys,
              (std::vector<std::string>{"k0", "k1", "k2", "k3", "k4", "k6", "k7", "k8", "k9"}))
        << "page size " << page_size;
  }
}

TEST_F(ChaosStoreTest, ListLagWithDelimiterKeepsDeletedGroups) {
  ASSERT_TRUE(memory_->Put("a/1", "x").ok());
  ASSERT_TRUE(memory_->Put("b/1", "x").ok());
  ASSERT_TRUE(memory_->Put("c", "x").ok());
  ChaosStore store(memory_, Spec("list_lag_ms=" + std::to_string(kLagMs)), clock_);
  ASSERT_TRUE(store.Delete("b/1").ok());
  ListOptions options;
  options.delimiter = "/";
  Result<ListPage> page = store.List(options);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->common_prefixes, (std::vector<std::string>{"a/", "b/"}));
  EXPECT_EQ(Keys(page->objects), std::vector<std::string>{"c"});
}

TEST_F(ChaosStoreTest, CrashPointsSurroundEveryOperation) {
  ChaosStore store(memory_, Spec("error_rate=0"));
  ArmCrashPoint("store:put:after");
  ASSERT_TRUE(store.Put("k", "v").ok());
  EXPECT_EQ(Fired(), std::vector<std::string>{"store:put:after"});
  EXPECT_TRUE(memory_->Stat("k").ok());  // "after" means the write landed

  ArmCrashPoint("store:get:before@2");
  ASSERT_TRUE(store.Get("k").ok());
  EXPECT_EQ(Fired().size(), 1u);
  ASSERT_TRUE(store.GetRange("k", 0, 1).ok());
  EXPECT_EQ(Fired().back(), "store:get:before");

  ASSERT_TRUE(store.Stat("k").ok());
  ASSERT_TRUE(store.List(ListOptions{}).ok());
  ASSERT_TRUE(store.Delete("k").ok());
  std::vector<std::string> reached = ReachedCrashPoints();
  for (const char* op : {"put", "get", "stat", "list", "delete"}) {
    for (const char* when : {"before", "after"}) {
      std::string name = std::string("store:") + op + ":" + when;
      EXPECT_NE(std::find(reached.begin(), reached.end(), name), reached.end()) << name;
    }
  }
}

TEST(ChaosStoreDeathTest, ArmedCrashPointKillsTheProcess) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto memory = std::make_shared<MemoryStore>();
  ChaosStore store(memory, ChaosSpec{});
  EXPECT_EXIT(
      {
        SetCrashHandler(nullptr);
        ArmCrashPoint("store:put:before");
        (void)store.Put("k", "v").ok();
      },
      ::testing::ExitedWithCode(137), "crash point store:put:before reached");
  EXPECT_TRUE(memory->Stat("k").status().IsNotFound());
}

TEST(ParseChaosSpecTest, ParsesEveryKey) {
  Result<ChaosSpec> spec = ParseChaosSpec(
      "error_rate=0.1, after_rate=0.05,ops=put+get,errors=unavailable+timeout,latency_ms=5,"
      "list_lag_ms=2000,seed=7,put_if_absent=off");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_DOUBLE_EQ(spec->error_rate, 0.1);
  EXPECT_DOUBLE_EQ(spec->after_rate, 0.05);
  EXPECT_EQ(spec->ops, (std::set<std::string>{"get", "put"}));
  EXPECT_EQ(spec->errors, (std::set<std::string>{"timeout", "unavailable"}));
  EXPECT_EQ(spec->latency_ms, 5);
  EXPECT_EQ(spec->list_lag_ms, 2000);
  EXPECT_EQ(spec->seed, 7u);
  EXPECT_TRUE(spec->hide_put_if_absent);
  EXPECT_TRUE(spec->enabled());
  EXPECT_TRUE(ParseChaosSpec("put_if_absent=off")->enabled());
  EXPECT_FALSE(ParseChaosSpec("put_if_absent=on")->enabled());

  Result<ChaosSpec> empty = ParseChaosSpec("");
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->enabled());
  EXPECT_FALSE(ParseChaosSpec("seed=3")->enabled());
}

TEST(ParseChaosSpecTest, RejectsBadInputNamingIt) {
  struct Case {
    const char* spec;
    std::vector<const char*> mentions;
  };
  for (const Case& c : std::vector<Case>{
           {"bogus=1", {"\"bogus\"", "error_rate", "list_lag_ms", "seed"}},
           {"error_rate=2", {"error_rate", "\"2\"", "between 0 and 1"}},
           {"error_rate=-0.1", {"error_rate", "between 0 and 1"}},
           {"error_rate=abc", {"\"abc\""}},
           {"after_rate=0.5x", {"after_rate", "\"0.5x\""}},
           {"ops=put+frob", {"\"frob\"", "put, get, stat, list, delete"}},
           {"ops=", {"ops", "empty"}},
           {"errors=explode", {"\"explode\"", "unavailable, timeout, reset, slowdown"}},
           {"latency_ms=-1", {"latency_ms", "\"-1\""}},
           {"list_lag_ms=1.5", {"list_lag_ms", "\"1.5\""}},
           {"seed=x", {"seed", "\"x\""}},
           {"put_if_absent=no", {"put_if_absent", "\"no\"", "on", "off"}},
           {"error_rate", {"\"error_rate\"", "key=value"}},
           {"seed=1,seed=2", {"\"seed\"", "twice"}},
           {"after_rate=0.5,ops=get", {"after_rate", "put"}},
       }) {
    Result<ChaosSpec> spec = ParseChaosSpec(c.spec);
    ASSERT_FALSE(spec.ok()) << c.spec;
    EXPECT_EQ(spec.status().code(), StatusCode::kInvalidArgument) << c.spec;
    for (const char* m : c.mentions) {
      EXPECT_NE(spec.status().message().find(m), std::string::npos)
          << c.spec << " -> " << spec.status().message() << " (expected it to mention " << m << ")";
    }
  }
}

}  // namespace
}  // namespace respawn
