// A Store over a directory of a local disk or a shared filesystem (NFS, EFS).
//
// Durability: Put writes a temporary file in the target directory, fsyncs it, publishes it
// (rename for plain puts; link() for put-if-absent, which is atomic on NFS too, where O_EXCL
// was historically not), then fsyncs the directory. Keys map to paths under the root and can
// never escape it: "..", "." segments, empty segments, absolute keys and NUL bytes are
// InvalidArgument. Temporary files are named ".respawn-tmp-*" and never listed.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>

#include "storage/store.h"

namespace respawn {

struct PosixStoreOptions {
  bool create_root = true;  // mkdir -p the root if missing
  bool fsync = true;        // fsync files and directories (tests of logic may turn it off)
};

class PosixStore : public Store {
 public:
  using Store::Get;
  using Store::GetToFile;
  using Store::Put;
  using Store::PutFile;

  /// `root` must be an absolute path (store_url.cc resolves relative ones).
  static Result<std::unique_ptr<PosixStore>> Open(const std::string& root,
                                                  const PosixStoreOptions& options = {});

  const std::string& root() const { return root_; }

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
  /// The ".respawn-tmp-*" files of writes a killed process never finished.
  Result<std::vector<ObjectInfo>> SweepAbandonedWrites(std::string_view prefix,
                                                       int64_t older_than_ms,
                                                       bool dry_run) override;

  /// root + "/" + key for a valid key (the file may not exist yet); "" for a key this store
  /// rejects.
  std::string LocalPath(std::string_view key) const override;

 private:
  friend class PosixStorePeer;  // unit tests
  friend Result<uint64_t> SendLocalFile(const std::string& path, int out_fd);

  PosixStore(std::string root, PosixStoreOptions options);

  /// root_ + "/" + key (key already validated).
  std::string PathOf(std::string_view key) const;
  /// Creates the directories above `key`. With fsync, the parent of each directory on the way
  /// is fsynced once per process, also when the directory already existed: its creator may have
  /// died before its own fsync, leaving an entry that a power loss would drop. Retries when a
  /// concurrent Delete removes a directory on the way; FailedPrecondition when a path segment is
  /// an object (a regular file).
  Status MakeParents(std::string_view key) const;
  /// The durable write protocol: temp file in the target directory, `fill` writes it, fsync,
  /// publish (rename, or link() for if_absent), fsync the directory.
  Status WriteObject(std::string_view key, const PutOptions& options,
                     const std::function<Status(int fd, const std::string& tmp_path)>& fill);
  Status SyncDir(const std::string& dir) const;
  /// Removes the now-empty directories above `key`, up to (not including) the root. Best effort.
  void RemoveEmptyParents(std::string_view key) const;
  /// Maps errno of `action` ("open", "rename", ...) on `path` to a Status whose message names the
  /// path (and, for permission errors, the process and owner uid/gid).
  static Status ErrnoStatus(int err, std::string_view action, const std::string& path);

  /// Whether `dir`'s entry is known durable (its parent fsynced by this process); marks it.
  bool DirKnownDurable(const std::string& dir) const;
  void MarkDirDurable(const std::string& dir) const;

  std::string root_;  // absolute, no trailing '/' (except "/" itself)
  PosixStoreOptions options_;
  mutable std::mutex durable_mu_;
  mutable std::unordered_set<std::string> durable_dirs_;  // GUARDED_BY(durable_mu_)
};

/// Writes the whole local file at `path` (an object's, from Store::LocalPath) to `out_fd` (a
/// file, pipe or socket) in the kernel where it can (sendfile), else through one reused buffer:
/// `store cat` without a buffer per chunk. Returns the bytes written; NotFound when the file is
/// missing, Unavailable when `out_fd` fails (EPIPE: the reader went away).
Result<uint64_t> SendLocalFile(const std::string& path, int out_fd);

}  // namespace respawn
