// Test-only helpers for the ledger's unit tests: temp dirs, store factories and store wrappers
// that count requests, hide listings, lack put-if-absent or lose the answer of a put.
#pragma once

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include <gtest/gtest.h>

#include "ledger/ledger.h"
#include "storage/memory_store.h"
#include "storage/posix_store.h"
#include "util/hash.h"

namespace respawn::ledger::testing {

/// A fresh directory under $TMPDIR, removed on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "respawn-ledger-XXXXXX").string();
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
  using StoreWrapper::StoreWrapper;
  Status Put(std::string_view key, std::string_view data, const PutOptions& o = {}) override {
    ++puts;
    return target_->Put(key, data, o);
  }
  Result<std::string> Get(std::string_view key, const GetOptions& o = {}) override {
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
  using StoreWrapper::StoreWrapper;
  Capabilities capabilities() const override {
    Capabilities c = target_->capabilities();
    c.put_if_absent = false;
    return c;
  }
  Status Put(std::string_view key, std::string_view data, const PutOptions& o = {}) override {
    if (o.if_absent) {
      ADD_FAILURE() << "conditional put of " << key << " on a store without put-if-absent";
      return Unimplemented("no put-if-absent");
    }
    return target_->Put(key, data, o);
  }
};

/// The first `n` puts of keys containing `needle` land but report Unavailable (a lost answer).
class LostAnswerStore : public StoreWrapper {
 public:
  LostAnswerStore(std::shared_ptr<Store> target, std::string needle, int n)
      : StoreWrapper(std::move(target)), needle_(std::move(needle)), left_(n) {}
  Status Put(std::string_view key, std::string_view data, const PutOptions& o = {}) override {
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

/// Short retry policy so failure tests run fast.
inline RetryPolicy FastRetry() {
  RetryPolicy r;
  r.max_attempts = 4;
  r.base_delay = std::chrono::milliseconds(1);
  r.max_delay = std::chrono::milliseconds(5);
  return r;
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
using Projection = std::map<std::string, std::tuple<std::string, std::vector<DataObject>, std::string>>;
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
