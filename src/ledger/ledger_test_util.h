// Test-only helpers for the ledger's unit tests: temp dirs, store factories and store wrappers
// that count requests, hide listings, lack put-if-absent or lose the answer of a put.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "ledger/coordinator.h"
#include "ledger/ledger.h"
#include "storage/memory_store.h"
#include "storage/posix_store.h"
#include "storage/retry_store.h"
#include "util/clock.h"
#include "util/hash.h"

namespace respawn::ledger::testing {

/// A fresh directory under $TMPDIR, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "respawn-ledger-XXXXXX").string();
    char* made = mkdtemp(pattern.data());
    if (made != nullptr) path_ = made;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::shared_ptr<Store> OpenPosix(const std::string& root) {
  PosixStoreOptions options;
  options.fsync = false;  // tests of logic; crash tests kill processes, not machines
  auto store = PosixStore::Open(root, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return std::shared_ptr<Store>(std::move(store).value());
}

/// Counts requests per operation.
class CountingStore : public StoreWrapper {
 public:
  using StoreWrapper::Get;
  using StoreWrapper::Put;
  using StoreWrapper::StoreWrapper;
  Status Put(std::string_view key, std::string_view data, const PutOptions& o) override {
    ++puts;
    return target_->Put(key, data, o);
  }
  Result<std::string> Get(std::string_view key, const GetOptions& o) override {
    ++gets;
    return target_->Get(key, o);
  }
  Result<ObjectInfo> Stat(std::string_view key) override {
    ++stats;
    return target_->Stat(key);
  }
  Result<ListPage> List(const ListOptions& o) override {
    ++lists;
    return target_->List(o);
  }
  void Reset() { puts = gets = stats = lists = 0; }
  uint64_t Reads() const { return gets + stats + lists; }

  std::atomic<uint64_t> puts{0}, gets{0}, stats{0}, lists{0};
};

/// A store whose listing is useless: it fails (mode kFail) or returns nothing (kEmpty).
class NoListStore : public StoreWrapper {
 public:
  enum class Mode { kFail, kEmpty };
  NoListStore(std::shared_ptr<Store> target, Mode mode)
      : StoreWrapper(std::move(target)), mode_(mode) {}
  Capabilities capabilities() const override {
    Capabilities c = target_->capabilities();
    c.consistent_listing = false;
    return c;
  }
  Result<ListPage> List(const ListOptions&) override {
    ++lists;
    if (mode_ == Mode::kFail) return Unavailable("listing disabled by the test");
    return ListPage{};
  }
  std::atomic<uint64_t> lists{0};

 private:
  Mode mode_;
};

/// A store without put-if-absent (like Swift). A conditional Put is a test failure.
class NoConditionalPutStore : public StoreWrapper {
 public:
  using StoreWrapper::Put;
  using StoreWrapper::StoreWrapper;
  Capabilities capabilities() const override {
    Capabilities c = target_->capabilities();
    c.put_if_absent = false;
    return c;
  }
  Status Put(std::string_view key, std::string_view data, const PutOptions& o) override {
    if (o.if_absent) {
      ADD_FAILURE() << "conditional put of " << key << " on a store without put-if-absent";
      return Unimplemented("no put-if-absent");
    }
    return target_->Put(key, data, o);
  }
};

/// Puts of keys containing `needle` wait while the gate is closed (Close/Open); AwaitEntered
/// waits for puts held there.
class GatedStore : public StoreWrapper {
 public:
  GatedStore(std::shared_ptr<Store> target, std::string needle)
      : StoreWrapper(std::move(target)), needle_(std::move(needle)) {}
  Status Put(std::string_view key, std::string_view data, const PutOptions& o = {}) override {
    Wait(key);
    return target_->Put(key, data, o);
  }
  Status PutFile(std::string_view key, const std::string& path, const PutOptions& o = {}) override {
    Wait(key);
    return target_->PutFile(key, path, o);
  }
  void Close() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = false;
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  /// Blocks until `n` puts were held at the closed gate (since it was created).
  void AwaitEntered(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_ >= n; });
  }

 private:
  void Wait(std::string_view key) {
    if (key.find(needle_) == std::string_view::npos) return;
    std::unique_lock<std::mutex> lock(mu_);
    if (open_) return;
    ++entered_;
    cv_.notify_all();
    cv_.wait(lock, [&] { return open_; });
  }

  std::string needle_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = true;  // GUARDED_BY(mu_)
  int entered_ = 0;   // GUARDED_BY(mu_)
};

/// The first `n` puts of keys containing `needle` land but report Unavailable (a lost answer).
class LostAnswerStore : public StoreWrapper {
 public:
  using StoreWrapper::Put;
  LostAnswerStore(std::shared_ptr<Store> target, std::string needle, int n)
      : StoreWrapper(std::move(target)), needle_(std::move(needle)), left_(n) {}
  Status Put(std::string_view key, std::string_view data, const PutOptions& o) override {
    Status st = target_->Put(key, data, o);
    if (st.ok() && key.find(needle_) != std::string_view::npos && left_-- > 0) {
      return Unavailable("test: the answer to the put of " + std::string(key) + " was lost");
    }
    return st;
  }

 private:
  std::string needle_;
  std::atomic<int> left_;
};

/// A commit coordinator kept in a Store with put-if-absent (test double for the PostgreSQL one,
/// which tests/coordinator_test.cc covers): record `seq` of namespace `ns` is the object
/// "<xxh3 of ns>/<20-digit seq>". Over a PosixStore it coordinates processes (crash tests fork).
class StoreCoordinator : public CommitCoordinator {
 public:
  explicit StoreCoordinator(std::shared_ptr<Store> store) : store_(std::move(store)) {}
  std::string Url() const override { return "test-coordinator:" + store_->Url(); }
  Status CreateIfAbsent(const std::string& ns, uint64_t sequence, std::string_view bytes) override {
    ++inserts;
    PutOptions create;
    create.if_absent = true;
    return store_->Put(Key(ns, sequence), bytes, create);
  }
  Result<std::map<uint64_t, std::string>> Read(const std::string& ns, uint64_t first,
                                               uint64_t last) override {
    std::map<uint64_t, std::string> out;
    for (uint64_t s = first; s <= last && s >= first; ++s) {
      auto r = store_->Get(Key(ns, s));
      if (r.status().IsNotFound()) continue;
      if (!r.ok()) return r.status();
      out.emplace(s, std::move(r).value());
    }
    return out;
  }
  Result<uint64_t> Latest(const std::string& ns) override {
    ASSIGN_OR_RETURN(auto objects, ListAll(*store_, Prefix(ns)));
    uint64_t latest = 0;
    for (const auto& o : objects) {
      latest = std::max<uint64_t>(latest, std::stoull(o.key.substr(Prefix(ns).size())));
    }
    return latest;
  }
  Result<uint64_t> DeleteBelow(const std::string& ns, uint64_t below) override {
    ASSIGN_OR_RETURN(auto objects, ListAll(*store_, Prefix(ns)));
    uint64_t n = 0;
    for (const auto& o : objects) {
      if (std::stoull(o.key.substr(Prefix(ns).size())) < below) {
        RETURN_IF_ERROR(store_->Delete(o.key));
        ++n;
      }
    }
    return n;
  }
  // Test access to the rows.
  std::string Key(const std::string& ns, uint64_t sequence) const {
    return Prefix(ns) + SequenceName(sequence);
  }
  Store& store() { return *store_; }
  std::atomic<uint64_t> inserts{0};

 private:
  static std::string Prefix(const std::string& ns) { return "coord/" + HexU64(Xxh3(ns)) + "/"; }
  std::shared_ptr<Store> store_;
};

/// The first `n` inserts land but report Unavailable (the connection broke after the insert).
class LostAnswerCoordinator : public CommitCoordinator {
 public:
  LostAnswerCoordinator(std::shared_ptr<CommitCoordinator> target, int n)
      : target_(std::move(target)), left_(n) {}
  std::string Url() const override { return target_->Url(); }
  Status CreateIfAbsent(const std::string& ns, uint64_t sequence, std::string_view bytes) override {
    Status st = target_->CreateIfAbsent(ns, sequence, bytes);
    if (st.ok() && left_-- > 0) {
      return Unavailable("test: the connection broke after the insert of record " +
                         std::to_string(sequence));
    }
    return st;
  }
  Result<std::map<uint64_t, std::string>> Read(const std::string& ns, uint64_t first,
                                               uint64_t last) override {
    return target_->Read(ns, first, last);
  }
  Result<uint64_t> Latest(const std::string& ns) override { return target_->Latest(ns); }
  Result<uint64_t> DeleteBelow(const std::string& ns, uint64_t below) override {
    return target_->DeleteBelow(ns, below);
  }
  int left() const { return left_.load(); }

 private:
  std::shared_ptr<CommitCoordinator> target_;
  std::atomic<int> left_;
};

/// Short retry policy so failure tests run fast.
inline RetryPolicy FastRetry() {
  RetryPolicy r;
  r.max_attempts = 4;
  r.base_delay = std::chrono::milliseconds(1);
  r.max_delay = std::chrono::milliseconds(5);
  return r;
}

/// `store` behind its retry layer, as OpenStore puts it (storage/store.h: the ledger makes each
/// store call once). Backoff sleeps on a ManualClock, so the test does not wait.
inline std::shared_ptr<Store> Retrying(std::shared_ptr<Store> store,
                                       RetryPolicy policy = FastRetry()) {
  return std::make_shared<RetryStore>(std::move(store), policy, std::make_shared<ManualClock>());
}

inline LedgerOptions Options(LedgerMode mode = LedgerMode::kWrite, uint64_t compaction = 64) {
  LedgerOptions o;
  o.mode = mode;
  o.compaction_interval = compaction;
  o.retry = FastRetry();
  o.lease.ttl = std::chrono::milliseconds(2000);
  o.lease.settle = std::chrono::milliseconds(20);
  o.lease.max_clock_skew = std::chrono::milliseconds(50);
  return o;
}

inline Entry MakeEntry(std::string fingerprint, std::vector<DataObject> objects = {},
                       nlohmann::json meta = nlohmann::json::object()) {
  Entry e;
  e.fingerprint = std::move(fingerprint);
  e.objects = std::move(objects);
  e.meta = std::move(meta);
  return e;
}

inline Changes Upsert(const std::string& name, Entry e) {
  Changes c;
  c.upserts.emplace(name, std::move(e));
  return c;
}

/// name -> (fingerprint, objects, meta): what a user sees, without the commit stamps.
using Projection =
    std::map<std::string, std::tuple<std::string, std::vector<DataObject>, std::string>>;
inline Projection Project(const LedgerState& s) {
  Projection p;
  for (const auto& [name, e] : s.entries) p[name] = {e.fingerprint, e.objects, e.meta.dump()};
  return p;
}
inline Projection Apply(Projection p, const Changes& c) {
  for (const auto& n : c.removals) p.erase(n);
  for (const auto& [n, e] : c.upserts) p[n] = {e.fingerprint, e.objects, e.meta.dump()};
  return p;
}

inline DataObject ObjectFor(const std::string& key, std::string_view bytes) {
  return DataObject{key, bytes.size(), Xxh3(bytes)};
}

}  // namespace respawn::ledger::testing
