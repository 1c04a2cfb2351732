#include "storage/metrics_store.h"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>

namespace respawn {
namespace {

// Microseconds since `start`.
uint64_t MicrosSince(std::chrono::steady_clock::time_point start) {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count());
}

// Size of the local file at `path`, 0 when it cannot be read (metrics never fail a call).
uint64_t LocalFileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

std::string_view StoreOpName(StoreOp op) {
  switch (op) {
    case StoreOp::kPut:
      return "put";
    case StoreOp::kGet:
      return "get";
    case StoreOp::kStat:
      return "stat";
    case StoreOp::kList:
      return "list";
    case StoreOp::kDelete:
      return "delete";
    case StoreOp::kDeleteMany:
      return "delete_many";
    case StoreOp::kCount:
      break;
  }
  return "unknown";
}

uint64_t StoreMetrics::TotalCalls() const {
  uint64_t total = 0;
  for (const OpMetrics& m : ops) total += m.calls;
  return total;
}

std::string StoreMetrics::ToString() const {
  std::string out;
  char line[160];
  std::snprintf(line, sizeof(line), "%-12s %10s %8s %14s %10s %10s\n", "op", "calls", "errors",
                "bytes", "mean ms", "max ms");
  out += line;
  for (size_t i = 0; i < ops.size(); ++i) {
    const OpMetrics& m = ops[i];
    double mean_ms = m.calls == 0
                         ? 0.0
                         : static_cast<double>(m.total_us) / 1000.0 / static_cast<double>(m.calls);
    double max_ms = static_cast<double>(m.max_us) / 1000.0;
    std::string name(StoreOpName(static_cast<StoreOp>(i)));
    std::snprintf(line, sizeof(line), "%-12s %10llu %8llu %14llu %10.3f %10.3f\n", name.c_str(),
                  static_cast<unsigned long long>(m.calls),
                  static_cast<unsigned long long>(m.errors),
                  static_cast<unsigned long long>(m.bytes), mean_ms, max_ms);
    out += line;
  }
  return out;
}

MetricsStore::MetricsStore(std::shared_ptr<Store> target) : StoreWrapper(std::move(target)) {}

StoreMetrics MetricsStore::Snapshot() const {
  StoreMetrics snapshot;
  for (size_t i = 0; i < counters_.size(); ++i) {
    const Counters& c = counters_[i];
    OpMetrics& m = snapshot.ops[i];
    m.calls = c.calls.load(std::memory_order_relaxed);
    m.errors = c.errors.load(std::memory_order_relaxed);
    m.bytes = c.bytes.load(std::memory_order_relaxed);
    m.keys = c.keys.load(std::memory_order_relaxed);
    m.total_us = c.total_us.load(std::memory_order_relaxed);
    m.max_us = c.max_us.load(std::memory_order_relaxed);
  }
  return snapshot;
}

void MetricsStore::Reset() {
  for (Counters& c : counters_) {
    c.calls.store(0, std::memory_order_relaxed);
    c.errors.store(0, std::memory_order_relaxed);
    c.bytes.store(0, std::memory_order_relaxed);
    c.keys.store(0, std::memory_order_relaxed);
    c.total_us.store(0, std::memory_order_relaxed);
    c.max_us.store(0, std::memory_order_relaxed);
  }
}

void MetricsStore::Record(StoreOp op, bool ok, uint64_t bytes, uint64_t keys, uint64_t us) {
  Counters& c = counters_[static_cast<size_t>(op)];
  c.calls.fetch_add(1, std::memory_order_relaxed);
  if (!ok) c.errors.fetch_add(1, std::memory_order_relaxed);
  c.bytes.fetch_add(bytes, std::memory_order_relaxed);
  c.keys.fetch_add(keys, std::memory_order_relaxed);
  c.total_us.fetch_add(us, std::memory_order_relaxed);
  uint64_t seen = c.max_us.load(std::memory_order_relaxed);
  while (us > seen && !c.max_us.compare_exchange_weak(seen, us, std::memory_order_relaxed)) {
  }
}

// Bytes are counted for successful calls only: a failed call moved nothing the caller can use.

Status MetricsStore::Put(std::string_view key, std::string_view data, const PutOptions& o) {
  auto start = std::chrono::steady_clock::now();
  Status s = target_->Put(key, data, o);
  Record(StoreOp::kPut, s.ok(), s.ok() ? data.size() : 0, 1, MicrosSince(start));
  return s;
}

Status MetricsStore::PutFile(std::string_view key, const std::string& path, const PutOptions& o) {
  auto start = std::chrono::steady_clock::now();
  Status s = target_->PutFile(key, path, o);
  uint64_t us = MicrosSince(start);
  Record(StoreOp::kPut, s.ok(), s.ok() ? LocalFileSize(path) : 0, 1, us);
  return s;
}

Result<std::string> MetricsStore::Get(std::string_view key, const GetOptions& o) {
  auto start = std::chrono::steady_clock::now();
  Result<std::string> r = target_->Get(key, o);
  Record(StoreOp::kGet, r.ok(), r.ok() ? r->size() : 0, 1, MicrosSince(start));
  return r;
}

Result<std::string> MetricsStore::GetRange(std::string_view key, uint64_t offset, uint64_t length) {
  auto start = std::chrono::steady_clock::now();
  Result<std::string> r = target_->GetRange(key, offset, length);
  Record(StoreOp::kGet, r.ok(), r.ok() ? r->size() : 0, 1, MicrosSince(start));
  return r;
}

Status MetricsStore::GetToFile(std::string_view key, const std::string& path, const GetOptions& o) {
  auto start = std::chrono::steady_clock::now();
  Status s = target_->GetToFile(key, path, o);
  uint64_t us = MicrosSince(start);
  Record(StoreOp::kGet, s.ok(), s.ok() ? LocalFileSize(path) : 0, 1, us);
  return s;
}

Result<ObjectInfo> MetricsStore::Stat(std::string_view key) {
  auto start = std::chrono::steady_clock::now();
  Result<ObjectInfo> r = target_->Stat(key);
  Record(StoreOp::kStat, r.ok(), 0, 1, MicrosSince(start));
  return r;
}

Result<ListPage> MetricsStore::List(const ListOptions& o) {
  auto start = std::chrono::steady_clock::now();
  Result<ListPage> r = target_->List(o);
  uint64_t keys = r.ok() ? r->objects.size() + r->common_prefixes.size() : 0;
  Record(StoreOp::kList, r.ok(), 0, keys, MicrosSince(start));
  return r;
}

Status MetricsStore::Delete(std::string_view key) {
  auto start = std::chrono::steady_clock::now();
  Status s = target_->Delete(key);
  Record(StoreOp::kDelete, s.ok(), 0, 1, MicrosSince(start));
  return s;
}

Result<DeleteResult> MetricsStore::DeleteMany(const std::vector<std::string>& keys) {
  auto start = std::chrono::steady_clock::now();
  Result<DeleteResult> r = target_->DeleteMany(keys);
  // A call with per-key failures counts as an error: the caller did not get everything deleted.
  bool ok = r.ok() && r->failed.empty();
  Record(StoreOp::kDeleteMany, ok, 0, keys.size(), MicrosSince(start));
  return r;
}

}  // namespace respawn
