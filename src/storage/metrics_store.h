// Counts requests, bytes and latency per operation. Cost reports and `respawn doctor` read it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "storage/store.h"

namespace respawn {

enum class StoreOp : int { kPut = 0, kGet, kStat, kList, kDelete, kDeleteMany, kCount };
std::string_view StoreOpName(StoreOp op);

struct OpMetrics {
  uint64_t calls = 0;
  uint64_t errors = 0;
  uint64_t bytes = 0;     // payload bytes moved (put: written, get: read)
  uint64_t keys = 0;      // keys touched (DeleteMany counts each key)
  uint64_t total_us = 0;  // summed latency
  uint64_t max_us = 0;
};

struct StoreMetrics {
  std::array<OpMetrics, static_cast<size_t>(StoreOp::kCount)> ops{};
  const OpMetrics& of(StoreOp op) const { return ops[static_cast<size_t>(op)]; }
  uint64_t TotalCalls() const;
  /// Multi-line human-readable table.
  std::string ToString() const;
};

class MetricsStore : public StoreWrapper {
 public:
  using StoreWrapper::Get;
  using StoreWrapper::GetToFile;
  using StoreWrapper::Put;
  using StoreWrapper::PutFile;

  explicit MetricsStore(std::shared_ptr<Store> target);

  StoreMetrics Snapshot() const;
  void Reset();

  Status Put(std::string_view key, std::string_view data, const PutOptions& o) override;
  Status PutFile(std::string_view key, const std::string& path, const PutOptions& o) override;
  Result<std::string> Get(std::string_view key, const GetOptions& o) override;
  Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length) override;
  Status GetToFile(std::string_view key, const std::string& path, const GetOptions& o) override;
  Result<ObjectInfo> Stat(std::string_view key) override;
  Result<ListPage> List(const ListOptions& o) override;
  Status Delete(std::string_view key) override;
  Result<DeleteResult> DeleteMany(const std::vector<std::string>& keys) override;

 private:
  struct Counters {
    std::atomic<uint64_t> calls{0}, errors{0}, bytes{0}, keys{0}, total_us{0}, max_us{0};
  };
  void Record(StoreOp op, bool ok, uint64_t bytes, uint64_t keys, uint64_t us);
  std::array<Counters, static_cast<size_t>(StoreOp::kCount)> counters_;
};

}  // namespace respawn
