// Retries calls that failed with a retryable status (Unavailable, DeadlineExceeded) with
// exponential backoff and jitter: the one retry layer of every store but S3 (store.h). A
// PutOptions::timeout caps the policy's deadline for that call.
//
// Put-if-absent needs care: if an attempt failed ambiguously (timeout, reset) the write may have
// landed, and the retry then sees AlreadyExists for our own object. RetryStore resolves that by
// reading the object back: identical bytes mean our write landed (OK); different bytes mean
// someone else's commit (AlreadyExists). Objects under put-if-absent are unique per writer, so
// equal bytes cannot be another writer's.
#pragma once

#include <functional>
#include <memory>

#include "storage/store.h"
#include "util/clock.h"
#include "util/retry.h"

namespace respawn {

class RetryStore : public StoreWrapper {
 public:
  using StoreWrapper::Get;
  using StoreWrapper::GetToFile;
  using StoreWrapper::Put;
  using StoreWrapper::PutFile;

  /// Backoff sleeps and deadlines are timed on `clock` (tests pass a ManualClock).
  RetryStore(std::shared_ptr<Store> target, RetryPolicy policy,
             std::shared_ptr<Clock> clock = Clock::System());

  Status Put(std::string_view key, std::string_view data, const PutOptions& o) override;
  Status PutFile(std::string_view key, const std::string& path, const PutOptions& o) override;
  Result<std::string> Get(std::string_view key, const GetOptions& o) override;
  Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length) override;
  Status GetToFile(std::string_view key, const std::string& path, const GetOptions& o) override;
  Result<ObjectInfo> Stat(std::string_view key) override;
  Result<ListPage> List(const ListOptions& o) override;
  Status Delete(std::string_view key) override;
  /// Retries only the keys that failed with a retryable status.
  Result<DeleteResult> DeleteMany(const std::vector<std::string>& keys) override;

 private:
  /// Reads `key` back (with retries) and feeds it, in chunks, to `chunk`; true when its size is
  /// `size`, every `chunk` call returned true and `finish` returns true.
  Result<bool> StoredObjectMatches(std::string_view key, uint64_t size,
                                   const std::function<bool(std::string_view)>& chunk,
                                   const std::function<bool()>& finish);
  /// After an ambiguous put-if-absent attempt the key exists: OK when `matches` says it holds
  /// our bytes, `already_exists` when it holds someone else's.
  Status ResolveAmbiguousPut(std::string_view key, const Status& already_exists,
                             const std::function<Result<bool>()>& matches);

  RetryPolicy policy_;
  std::shared_ptr<Clock> clock_;
};

}  // namespace respawn
