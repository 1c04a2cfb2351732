// The Store seam: one object-store-shaped interface over local disks, shared filesystems
// (NFS/EFS), S3-compatible object stores and memory. Everything above storage/ speaks only this.
//
// Semantics every backend provides (checked by tests/store_conformance_test.cc):
// - Keys are UTF-8 strings of 1..1024 bytes, '/' separated by convention. A backend may reject
//   keys it cannot represent safely (POSIX: "..", absolute paths, NUL) with InvalidArgument.
// - Put replaces the whole object atomically: a reader sees the old or the new bytes, never a mix.
// - Put with `if_absent` creates the object only if no object has the key: AlreadyExists when one
//   does, Unimplemented when the backend cannot do it atomically (Capabilities says so up front).
// - Get/Stat of a missing key is NotFound. Delete of a missing key is OK (S3 semantics).
// - Get/GetToFile with `if_match` read the object only while its ETag (as Stat and List report
//   it) is that one, else FailedPrecondition and nothing is returned or written.
// - List returns keys in ascending byte order, at most `max_keys` a page, with a continuation
//   token. A listing may lag behind writes (capabilities().consistent_listing == false):
//   correctness must never depend on it.
//
// Retries live in exactly one layer per store, the one that knows the store:
//   S3        S3Http, per HTTP request (it alone knows whether a request reached the server, and
//             resolves an ambiguous put-if-absent by reading the object back);
//   POSIX, memory and every other backend: RetryStore, which OpenStore puts around it.
// Everything above the store (ledger, copy, sql, pipeline) takes a store call's answer as
// final and never calls again with the same arguments because the call failed: retrying a
// failed call there would multiply the attempts (6 x 6 under two deadlines). What the layers
// above do retry is an operation of their own after a meaningful outcome: a commit that lost
// its race (Aborted), a publish whose outcome is ambiguous re-read to learn whether it landed,
// an object copy whose read-back did not verify. A call's time limit (PutOptions::timeout)
// travels down to the retrying layer. Under chaos (tests), the faults are injected above the
// backend, so OpenStore adds a RetryStore above the chaos layer for S3 too; the S3 client
// below it keeps retrying what the network does.
//
// Thread-safety: every Store is safe for concurrent use by many threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace respawn {

/// What a backend guarantees. The commit protocol picks its strategy from this.
struct Capabilities {
  bool put_if_absent = false;       // atomic create-only put (If-None-Match: *, link()/O_EXCL)
  bool consistent_listing = false;  // LIST reflects completed writes/deletes at once
  bool atomic_rename = false;       // rename is atomic and cheap (POSIX only)
  bool durable_sync = false;        // writes are fsynced (file and directory) before returning
  bool ranged_reads = true;         // GetRange reads only the bytes asked for
  size_t max_delete_batch = 1000;   // keys per DeleteMany request the backend handles at once
  /// Not OK when the backend could not tell whether it can put-if-absent (an S3 probe that
  /// failed or was inconclusive); put_if_absent is then false, and the commit protocol must not
  /// pick a strategy from it (it fails closed: retry later).
  Status put_if_absent_error;
};

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  int64_t mtime_ms = 0;  // last modification, Unix epoch milliseconds (0 if unknown)
  std::string etag;      // backend-specific version tag (S3 ETag without quotes), may be empty
};

/// Reports bytes moved so far out of the total (total 0 when unknown).
/// Must not throw. If it does on S3 (called from libcurl, a C library an exception must not
/// unwind through), the transfer stops and the call fails with Internal naming the exception.
using ProgressFn = std::function<void(uint64_t done, uint64_t total)>;

struct PutOptions {
  bool if_absent = false;    // create only; AlreadyExists if the key exists
  std::string content_type;  // optional
  ProgressFn progress;       // optional, may be called from worker threads
  /// If positive: the call gives up (with its last retryable error, or DeadlineExceeded) once
  /// this long has passed since it started, even if the retry policy would allow more. The
  /// retrying layer (RetryStore, the S3 client) stops retrying then and caps each attempt's own
  /// timeouts by what is left; an attempt already in flight on POSIX or memory finishes.
  /// Zero: the store's retry policy alone decides. Wrappers pass it through unchanged.
  std::chrono::milliseconds timeout{0};
};

struct GetOptions {
  ProgressFn progress;  // optional, may be called from worker threads
  /// If not empty: read the object only if its ETag (ObjectInfo::etag, as Stat and List report
  /// it) is this one; otherwise FailedPrecondition (the message names the object and says it
  /// changed) and GetToFile leaves no file. S3 sends `If-Match` on every request of the read
  /// (a 412 becomes FailedPrecondition), so a ranged download cannot mix two versions; POSIX
  /// compares the ETag of the file it opened (inode, mtime, size: objects are replaced by
  /// rename, so the open file is the version checked); memory compares the stored ETag.
  /// Wrappers pass it through unchanged.
  std::string if_match;
};

struct ListOptions {
  std::string prefix;
  std::string delimiter;           // "" lists recursively; "/" groups into common prefixes
  std::string continuation_token;  // from the previous page's next_token
  size_t max_keys = 1000;
};

struct ListPage {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;  // only with a delimiter
  std::string next_token;                    // empty on the last page
};

struct DeleteResult {
  size_t deleted = 0;                                  // keys confirmed gone (incl. absent ones)
  std::vector<std::pair<std::string, Status>> failed;  // keys that could not be deleted
  uint64_t requests = 0;  // requests the backend made (S3: DeleteObjects + DELETE; POSIX: unlinks)
  Status FirstError() const { return failed.empty() ? Status::OK() : failed.front().second; }
};

/// Backends implement the virtual functions; callers may use the convenience overloads without
/// options. A class that overrides one of an overloaded name's virtual functions brings the
/// others back with `using Store::Put;` (etc.), as every backend and wrapper here does. Virtual
/// functions never take default arguments (a default would depend on the static type).
class Store {
 public:
  virtual ~Store() = default;

  /// The canonical URL of this store's root (no secrets), e.g. "s3://bucket/prefix".
  virtual std::string Url() const = 0;
  virtual Capabilities capabilities() const = 0;

  /// Writes `data` as the whole object `key`.
  virtual Status Put(std::string_view key, std::string_view data, const PutOptions& options) = 0;
  Status Put(std::string_view key, std::string_view data) { return Put(key, data, PutOptions()); }
  /// Writes the local file at `path` as the object `key`, streaming (large objects never sit in
  /// memory whole; S3 uses parallel multipart upload).
  virtual Status PutFile(std::string_view key, const std::string& path,
                         const PutOptions& options) = 0;
  Status PutFile(std::string_view key, const std::string& path) {
    return PutFile(key, path, PutOptions());
  }

  virtual Result<std::string> Get(std::string_view key, const GetOptions& options) = 0;
  Result<std::string> Get(std::string_view key) { return Get(key, GetOptions()); }
  /// Reads `length` bytes starting at `offset` (fewer at the end of the object; an offset past
  /// the end is InvalidArgument).
  virtual Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length) = 0;
  /// Streams the object into the local file at `path` (written under a temporary name, then
  /// renamed, so `path` never holds a partial object).
  virtual Status GetToFile(std::string_view key, const std::string& path,
                           const GetOptions& options) = 0;
  Status GetToFile(std::string_view key, const std::string& path) {
    return GetToFile(key, path, GetOptions());
  }

  virtual Result<ObjectInfo> Stat(std::string_view key) = 0;
  virtual Result<ListPage> List(const ListOptions& options) = 0;

  virtual Status Delete(std::string_view key) = 0;
  /// Deletes many keys, batched and parallel where the backend allows. Never fails as a whole
  /// for per-key errors: those are in DeleteResult::failed.
  virtual Result<DeleteResult> DeleteMany(const std::vector<std::string>& keys) = 0;

  /// Leftovers of writes that never finished under `prefix` (on POSIX, the temporary files of
  /// killed processes, which List never shows), last modified before `older_than_ms` (Unix
  /// epoch ms): deleted unless `dry_run`. Returns what was (or would be) deleted, keys naming
  /// the leftover's path relative to the root. Stores that leave none return nothing. A
  /// leftover that a live writer still owns (POSIX: it holds a lock on it) is never deleted.
  virtual Result<std::vector<ObjectInfo>> SweepAbandonedWrites(std::string_view prefix,
                                                               int64_t older_than_ms,
                                                               bool dry_run) {
    (void)prefix, (void)older_than_ms, (void)dry_run;
    return std::vector<ObjectInfo>();
  }

  /// The local file that holds (or, once written, would hold) object `key`, for stores that
  /// keep objects as local files (POSIX): callers may read it directly (sendfile, a streamed
  /// copy) or make it the object by writing it as GetToFile does (temporary file, rename).
  /// "" when there is none (S3, memory), when `key` is not a valid key, or when a wrapper must
  /// see every access (the chaos store: its faults apply to every read and write). Wrappers
  /// forward it by default. Never does I/O.
  virtual std::string LocalPath(std::string_view key) const {
    (void)key;
    return "";
  }
};

/// Forwards every call to a wrapped store; wrappers (retry, metrics, chaos) derive from it.
class StoreWrapper : public Store {
 public:
  explicit StoreWrapper(std::shared_ptr<Store> target) : target_(std::move(target)) {}

  using Store::Get;
  using Store::GetToFile;
  using Store::Put;
  using Store::PutFile;

  std::string Url() const override { return target_->Url(); }
  Capabilities capabilities() const override { return target_->capabilities(); }
  Status Put(std::string_view key, std::string_view data, const PutOptions& o) override {
    return target_->Put(key, data, o);
  }
  Status PutFile(std::string_view key, const std::string& path, const PutOptions& o) override {
    return target_->PutFile(key, path, o);
  }
  Result<std::string> Get(std::string_view key, const GetOptions& o) override {
    return target_->Get(key, o);
  }
  Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length) override {
    return target_->GetRange(key, offset, length);
  }
  Status GetToFile(std::string_view key, const std::string& path, const GetOptions& o) override {
    return target_->GetToFile(key, path, o);
  }
  Result<ObjectInfo> Stat(std::string_view key) override { return target_->Stat(key); }
  Result<ListPage> List(const ListOptions& o) override { return target_->List(o); }
  Status Delete(std::string_view key) override { return target_->Delete(key); }
  Result<DeleteResult> DeleteMany(const std::vector<std::string>& keys) override {
    return target_->DeleteMany(keys);
  }
  Result<std::vector<ObjectInfo>> SweepAbandonedWrites(std::string_view prefix,
                                                       int64_t older_than_ms,
                                                       bool dry_run) override {
    return target_->SweepAbandonedWrites(prefix, older_than_ms, dry_run);
  }
  std::string LocalPath(std::string_view key) const override { return target_->LocalPath(key); }

  const std::shared_ptr<Store>& target() const { return target_; }

 protected:
  std::shared_ptr<Store> target_;
};

/// Lists every object under `prefix` (all pages, recursive).
Result<std::vector<ObjectInfo>> ListAll(Store& store, std::string_view prefix);

/// Basic key check shared by all backends: 1..1024 bytes, no NUL. InvalidArgument otherwise.
Status ValidateKey(std::string_view key);

}  // namespace respawn
