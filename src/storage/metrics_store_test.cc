#include "storage/metrics_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "storage/chaos_store.h"
#include "storage/memory_store.h"

namespace respawn {
namespace {

class MetricsStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/metrics_store_test-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    dir_ = ::mkdtemp(buf.data());
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::shared_ptr<MemoryStore> memory_ = std::make_shared<MemoryStore>();
  std::string dir_;
};

TEST_F(MetricsStoreTest, CountsEachOperation) {
  MetricsStore store(memory_);
  ASSERT_TRUE(store.Put("a", "12345").ok());
  ASSERT_TRUE(store.Put("b", "0123456789").ok());
  std::string local = dir_ + "/c";
  std::ofstream(local, std::ios::binary) << "abcdefg";
  ASSERT_TRUE(store.PutFile("c", local).ok());
  PutOptions if_absent;
  if_absent.if_absent = true;
  EXPECT_TRUE(store.Put("a", "xxxxxxxxxxxxxxxxxxxx", if_absent).IsAlreadyExists());

  ASSERT_TRUE(store.Get("a").ok());
  ASSERT_EQ(*store.GetRange("b", 2, 3), "234");
  ASSERT_TRUE(store.GetToFile("c", dir_ + "/c.out").ok());
  EXPECT_TRUE(store.Get("missing").status().IsNotFound());

  ASSERT_TRUE(store.Stat("a").ok());
  EXPECT_TRUE(store.Stat("missing").status().IsNotFound());
  ListOptions list;
  ASSERT_EQ(store.List(list)->objects.size(), 3u);
  ASSERT_TRUE(store.Delete("a").ok());
  Result<DeleteResult> deleted = store.DeleteMany({"b", "c", "never-was"});
  ASSERT_TRUE(deleted.ok());

  StoreMetrics m = store.Snapshot();
  const OpMetrics& put = m.of(StoreOp::kPut);
  EXPECT_EQ(put.calls, 4u);
  EXPECT_EQ(put.errors, 1u);
  EXPECT_EQ(put.bytes, 5u + 10u + 7u);  // the failed put moved nothing
  EXPECT_EQ(put.keys, 4u);
  const OpMetrics& get = m.of(StoreOp::kGet);
  EXPECT_EQ(get.calls, 4u);
  EXPECT_EQ(get.errors, 1u);
  EXPECT_EQ(get.bytes, 5u + 3u + 7u);
  EXPECT_EQ(m.of(StoreOp::kStat).calls, 2u);
  EXPECT_EQ(m.of(StoreOp::kStat).errors, 1u);
  EXPECT_EQ(m.of(StoreOp::kList).calls, 1u);
  EXPECT_EQ(m.of(StoreOp::kList).keys, 3u);
  EXPECT_EQ(m.of(StoreOp::kDelete).calls, 1u);
  EXPECT_EQ(m.of(StoreOp::kDeleteMany).calls, 1u);
  EXPECT_EQ(m.of(StoreOp::kDeleteMany).keys, 3u);
  EXPECT_EQ(m.of(StoreOp::kDeleteMany).errors, 0u);
  EXPECT_EQ(m.TotalCalls(), 4u + 4u + 2u + 1u + 1u + 1u);
  for (const OpMetrics& op : m.ops) EXPECT_GE(op.total_us, op.max_us);
}

TEST_F(MetricsStoreTest, MeasuresLatency) {
  ChaosSpec spec;
  spec.latency_ms = 20;
  MetricsStore store(std::make_shared<ChaosStore>(memory_, spec));
  ASSERT_TRUE(store.Put("a", "x").ok());
  ASSERT_TRUE(store.Put("b", "y").ok());
  StoreMetrics m = store.Snapshot();
  EXPECT_GE(m.of(StoreOp::kPut).max_us, 20000u);
  EXPECT_GE(m.of(StoreOp::kPut).total_us, 40000u);
  EXPECT_LT(m.of(StoreOp::kPut).max_us, 5000000u);
}

TEST_F(MetricsStoreTest, ResetZeroesEverything) {
  MetricsStore store(memory_);
  ASSERT_TRUE(store.Put("a", "x").ok());
  EXPECT_TRUE(store.Get("zz").status().IsNotFound());
  EXPECT_EQ(store.Snapshot().TotalCalls(), 2u);
  store.Reset();
  StoreMetrics m = store.Snapshot();
  EXPECT_EQ(m.TotalCalls(), 0u);
  for (const OpMetrics& op : m.ops) {
    EXPECT_EQ(op.errors + op.bytes + op.keys + op.total_us + op.max_us, 0u);
  }
}

TEST_F(MetricsStoreTest, CountsConcurrentCallsExactly) {
  MetricsStore store(memory_);
  ASSERT_TRUE(store.Put("k", "value").ok());
  store.Reset();
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) EXPECT_TRUE(store.Get("k").ok());
    });
  }
  for (auto& t : threads) t.join();
  StoreMetrics m = store.Snapshot();
  EXPECT_EQ(m.of(StoreOp::kGet).calls, 8000u);
  EXPECT_EQ(m.of(StoreOp::kGet).bytes, 8000u * 5u);
}

TEST_F(MetricsStoreTest, ToStringIsAnAlignedTable) {
  MetricsStore store(memory_);
  ASSERT_TRUE(store.Put("a", std::string(1234, 'x')).ok());
  std::string table = store.Snapshot().ToString();
  std::istringstream in(table);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 1u + static_cast<size_t>(StoreOp::kCount));
  for (const auto& line : lines) EXPECT_EQ(line.size(), lines[0].size()) << table;
  EXPECT_NE(lines[0].find("calls"), std::string::npos);
  EXPECT_NE(lines[0].find("mean ms"), std::string::npos);
  EXPECT_EQ(lines[1].rfind("put", 0), 0u);
  EXPECT_NE(lines[1].find("1234"), std::string::npos);
  EXPECT_EQ(lines.back().rfind("delete_many", 0), 0u);
}

}  // namespace
}  // namespace respawn
