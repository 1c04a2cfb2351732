// An in-memory Store for unit tests of logic. Never a substitute for a real backend in
// integration tests. Capabilities: put-if-absent, consistent listing.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "storage/store.h"

namespace respawn {

class MemoryStore : public Store {
 public:
  using Store::Get;
  using Store::GetToFile;
  using Store::Put;
  using Store::PutFile;

  explicit MemoryStore(std::string name = "");

  /// The process-wide store behind "memory://name" (created on first use).
  static std::shared_ptr<MemoryStore> Named(const std::string& name);

  std::string Url() const override;
  Capabilities capabilities() const override;
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
  struct Object {
    std::string data;
    int64_t mtime_ms = 0;
    std::string etag;  // xxh3 of data, hex
  };
  std::string name_;
  mutable std::mutex mu_;
  std::map<std::string, Object, std::less<>> objects_;  // GUARDED_BY(mu_)
};

}  // namespace respawn
