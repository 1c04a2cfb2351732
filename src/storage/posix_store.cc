#include "storage/posix_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <system_error>
#include <vector>

#include "util/hash.h"
#include "util/strings.h"
#include "util/thread_pool.h"

namespace respawn {
namespace {

constexpr std::string_view kTmpPrefix = ".respawn-tmp-";
constexpr size_t kChunkBytes = 1 << 20;  // streaming buffer of PutFile / GetToFile
constexpr int kMaxDirRetries = 100;      // directories vanishing under concurrent deletes
constexpr size_t kDeleteParallelism = 8;

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

std::string RandomSuffix() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   (static_cast<uint64_t>(getpid()) << 32));
  return HexU64(rng());
}

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Checks the segments of a '/'-separated relative path: no empty, ".", ".." or temp-file
// segments. Returns a description of the problem, or "" when fine.
std::string SegmentProblem(std::string_view path) {
  if (!path.empty() && path.front() == '/') {
    return "is absolute (starts with '/'); keys are relative to the store root";
  }
  size_t start = 0;
  for (;;) {
    size_t end = path.find('/', start);
    std::string_view seg =
        path.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (seg.empty()) {
      return "has an empty path segment (\"//\" or a trailing '/'), which a filesystem cannot "
             "represent";
    }
    if (seg == "." || seg == "..") {
      return "has a \".\" or \"..\" segment, which could name a path outside the store root";
    }
    if (seg.starts_with(kTmpPrefix)) {
      return "has a segment starting with \".respawn-tmp-\", which is reserved for temporary "
             "files";
    }
    if (end == std::string_view::npos) return "";
    start = end + 1;
  }
}

Status ValidatePosixKey(std::string_view key) {
  RETURN_IF_ERROR(ValidateKey(key));
  std::string problem = SegmentProblem(key);
  if (!problem.empty()) {
    return InvalidArgument("object key " + Quoted(key) + " " + problem +
                           "; use '/'-separated relative names like \"dir/file\"");
  }
  return Status::OK();
}

Status KeyIsDirectory(std::string_view key, const std::string& path) {
  return FailedPrecondition(
      "object key " + Quoted(key) + " names a directory (" + path +
      ") because other keys start with \"" + std::string(key) +
      "/\"; a filesystem store cannot hold both \"a\" and \"a/b\" (S3 can): choose another key");
}

// Writes all of `data`, retrying partial writes and EINTR. Returns 0 or an errno.
int WriteAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return 0;
}

// Reads up to `length` bytes at `offset` into `out` (appending); stops early at end of file.
// Returns 0 or an errno.
int PreadAll(int fd, uint64_t offset, uint64_t length, std::string* out) {
  size_t base = out->size();
  out->resize(base + static_cast<size_t>(length));
  uint64_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out->data() + base + done, static_cast<size_t>(length - done),
                        static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      out->resize(base + static_cast<size_t>(done));
      return err;
    }
    if (n == 0) break;
    done += static_cast<uint64_t>(n);
  }
  out->resize(base + static_cast<size_t>(done));
  return 0;
}

int64_t MtimeMs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
}

// Changes whenever the file is replaced (new inode) or rewritten (mtime, size).
std::string EtagOf(const struct stat& st) {
  int64_t mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return HexU64(static_cast<uint64_t>(st.st_ino)) + "-" + HexU64(static_cast<uint64_t>(mtime_ns)) +
         "-" + HexU64(static_cast<uint64_t>(st.st_size));
}

ObjectInfo InfoOf(std::string key, const struct stat& st) {
  ObjectInfo info;
  info.key = std::move(key);
  info.size = static_cast<uint64_t>(st.st_size);
  info.mtime_ms = MtimeMs(st);
  info.etag = EtagOf(st);
  return info;
}

// Closes a file descriptor when it goes out of scope.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  ~FdCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  /// Closes now and returns 0 or the errno of close().
  int Close() {
    int fd = fd_;
    fd_ = -1;
    return ::close(fd) == 0 ? 0 : errno;
  }

 private:
  int fd_;
};

// Unlinks a temporary file when it goes out of scope, unless released.
class TempFileRemover {
 public:
  explicit TempFileRemover(std::string path) : path_(std::move(path)) {}
  ~TempFileRemover() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFileRemover(const TempFileRemover&) = delete;
  TempFileRemover& operator=(const TempFileRemover&) = delete;
  void Release() { path_.clear(); }

 private:
  std::string path_;
};

// Lists a directory tree in key byte order with pruning by prefix, continuation token and
// delimiter. Visiting a directory's entries sorted by (name + "/" for directories, name for
// files) yields keys in byte order because names contain no '/'.
class Lister {
 public:
  Lister(const ListOptions& options, size_t max_keys)
      : prefix_(options.prefix),
        delim_(options.delimiter),
        token_(options.continuation_token),
        max_keys_(max_keys) {}

  /// Walks `fs_dir`, whose keys start with `key_dir` ("" or ending in '/'). Returns 0, or the
  /// errno of a directory that could not be read (named by error_path()).
  int Walk(const std::string& fs_dir, const std::string& key_dir);

  ListPage TakePage() { return std::move(page_); }
  const std::string& error_path() const { return error_path_; }

 private:
  struct Entry {
    std::string sort_name;  // name, plus "/" for directories
    std::string name;
    bool is_dir = false;
  };

  // Whether the subtree whose keys all start with `kp` (ends in '/') can hold an item to return.
  bool WantSubtree(const std::string& kp) const;
  // The item (common prefix or the key itself) that `key` lists as.
  std::string ItemOf(const std::string& key, bool* is_prefix) const;
  // Offers the file `name` in directory `dir_fd` (key `key`). Sets done_ when the page is full.
  void Offer(int dir_fd, const std::string& name, const std::string& key);

  const std::string& prefix_;
  const std::string& delim_;
  const std::string& token_;
  const size_t max_keys_;
  ListPage page_;
  size_t count_ = 0;
  std::string last_item_;
  bool last_is_prefix_ = false;
  bool done_ = false;
  std::string error_path_;
};

bool Lister::WantSubtree(const std::string& kp) const {
  if (!kp.starts_with(prefix_) && !prefix_.starts_with(kp)) return false;
  if (!token_.empty()) {
    std::string next = PrefixSuccessor(kp);
    if (!next.empty() && next <= token_) return false;
  }
  if (!delim_.empty() && kp.size() > prefix_.size()) {
    size_t pos = kp.find(delim_, prefix_.size());
    if (pos != std::string::npos) {
      // Every key below shares this common prefix.
      std::string common = kp.substr(0, pos + delim_.size());
      if (!token_.empty() && common <= token_) return false;
      if (last_is_prefix_ && common == last_item_) return false;
    }
  }
  return true;
}

std::string Lister::ItemOf(const std::string& key, bool* is_prefix) const {
  *is_prefix = false;
  if (!delim_.empty()) {
    size_t pos = key.find(delim_, prefix_.size());
    if (pos != std::string::npos) {
      *is_prefix = true;
      return key.substr(0, pos + delim_.size());
    }
  }
  return key;
}

void Lister::Offer(int dir_fd, const std::string& name, const std::string& key) {
  bool is_prefix = false;
  std::string item = ItemOf(key, &is_prefix);
  if (!token_.empty() && item <= token_) return;
  if (is_prefix && last_is_prefix_ && item == last_item_) return;
  struct stat st;
  // Fails when the file was deleted while listing, or is a dangling symlink: not an object.
  if (::fstatat(dir_fd, name.c_str(), &st, 0) != 0) return;
  if (!S_ISREG(st.st_mode)) return;
  if (count_ == max_keys_) {
    page_.next_token = last_item_;
    done_ = true;
    return;
  }
  if (is_prefix) {
    page_.common_prefixes.push_back(item);
  } else {
    page_.objects.push_back(InfoOf(key, st));
  }
  last_item_ = std::move(item);
  last_is_prefix_ = is_prefix;
  ++count_;
}

int Lister::Walk(const std::string& fs_dir, const std::string& key_dir) {
  int fd = ::open(fs_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) return 0;  // nothing under this prefix
    error_path_ = fs_dir;
    return err;
  }
  DIR* dir = ::fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    ::close(fd);
    error_path_ = fs_dir;
    return err;
  }
  std::vector<Entry> entries;
  for (;;) {
    errno = 0;
    struct dirent* e = ::readdir(dir);
    if (e == nullptr) {
      if (errno != 0) {
        int err = errno;
        ::closedir(dir);
        error_path_ = fs_dir;
        return err;
      }
      break;
    }
    std::string name = e->d_name;
    if (name == "." || name == ".." || name.starts_with(kTmpPrefix)) continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      if (::fstatat(fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
      is_dir = S_ISDIR(st.st_mode);
    }
    // Symbolic links are followed to files but never descended into (no cycles).
    Entry entry;
    entry.is_dir = is_dir;
    entry.sort_name = is_dir ? name + "/" : name;
    entry.name = std::move(name);
    entries.push_back(std::move(entry));
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.sort_name < b.sort_name; });

  int err = 0;
  for (const Entry& entry : entries) {
    if (done_) break;
    if (entry.is_dir) {
      std::string kp = key_dir + entry.sort_name;
      if (!WantSubtree(kp)) continue;
      err = Walk(fs_dir + "/" + entry.name, kp);
      if (err != 0) break;
    } else {
      std::string key = key_dir + entry.name;
      if (!key.starts_with(prefix_)) continue;
      Offer(fd, entry.name, key);
    }
  }
  ::closedir(dir);
  return err;
}

}  // namespace

PosixStore::PosixStore(std::string root, PosixStoreOptions options)
    : root_(std::move(root)), options_(options) {}

Result<std::unique_ptr<PosixStore>> PosixStore::Open(const std::string& root,
                                                     const PosixStoreOptions& options) {
  if (root.empty() || root.front() != '/') {
    return InvalidArgument("store root \"" + root +
                           "\" is not an absolute path; give a path starting with '/' (or a "
                           "store URL like file:///abs/path)");
  }
  std::string normal = std::filesystem::path(root).lexically_normal().string();
  while (normal.size() > 1 && normal.back() == '/') normal.pop_back();

  struct stat st;
  if (options.create_root && ::stat(normal.c_str(), &st) != 0 && errno == ENOENT) {
    std::error_code ec;
    std::filesystem::create_directories(normal, ec);
    if (ec && ec.value() != EEXIST) {
      if (ec.value() == ENOTDIR || ec.value() == ENOENT) {
        return FailedPrecondition("cannot create store root directory " + normal +
                                  ": a component of the path is a file, not a directory");
      }
      return ErrnoStatus(ec.value(), "create store root directory", normal);
    }
  }
  if (::stat(normal.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOTDIR) {
      return FailedPrecondition("store root " + normal +
                                ": a component of the path is a file, not a directory");
    }
    if (err == ENOENT) {
      return NotFound("store root directory " + normal +
                      " does not exist; create it (mkdir -p) or check the path");
    }
    return ErrnoStatus(err, "open store root directory", normal);
  }
  if (!S_ISDIR(st.st_mode)) {
    return FailedPrecondition("store root " + normal +
                              " is not a directory; give the path of a directory");
  }
  return std::unique_ptr<PosixStore>(new PosixStore(std::move(normal), options));
}

std::string PosixStore::Url() const { return "file://" + root_; }

Capabilities PosixStore::capabilities() const {
  Capabilities c;
  c.put_if_absent = true;
  c.consistent_listing = true;
  c.atomic_rename = true;
  c.durable_sync = options_.fsync;
  c.ranged_reads = true;
  c.max_delete_batch = 1000;
  return c;
}

std::string PosixStore::PathOf(std::string_view key) const {
  if (root_ == "/") return "/" + std::string(key);
  std::string path;
  path.reserve(root_.size() + 1 + key.size());
  path.append(root_).append("/").append(key);
  return path;
}

Status PosixStore::ErrnoStatus(int err, std::string_view action, const std::string& path) {
  std::string base = std::string(action) + " " + path + ": " + ErrnoText(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return NotFound(base);
    case EACCES:
    case EPERM: {
      // Name who we are and who owns the path (or its nearest existing parent).
      std::string owner_path = path;
      struct stat st;
      bool found = false;
      for (;;) {
        if (::stat(owner_path.c_str(), &st) == 0) {
          found = true;
          break;
        }
        if (owner_path == "/" || owner_path == ".") break;
        owner_path = DirName(owner_path);
      }
      std::string msg = base + " (this process runs as uid " + std::to_string(::geteuid()) +
                        " gid " + std::to_string(::getegid());
      if (found) {
        char mode[8];
        std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
        msg += "; " + owner_path + " is owned by uid " + std::to_string(st.st_uid) + " gid " +
               std::to_string(st.st_gid) + ", mode " + mode;
      }
      msg +=
          "); check the ownership and permissions of the store directory and its mount (chown "
          "or chmod it, or run as its owner; on NFS check root_squash/all_squash, on EFS the "
          "access point's uid/gid)";
      return PermissionDenied(msg);
    }
    case EROFS:
      return FailedPrecondition(base +
                                "; the filesystem is mounted read-only: remount it read-write or "
                                "choose another store root");
    case ENOSPC:
    case EDQUOT:
      return Internal(std::string(action) + " " + path +
                      ": no space left on device (or disk quota exceeded); free space on the "
                      "filesystem of the store or choose another store root");
    case EIO:
    case ESTALE:
    case EINTR:
    case EAGAIN:
    case ETIMEDOUT:
    case ENOLCK:
    case EBUSY:
    case ECONNRESET:
    case ECONNABORTED:
    case ECONNREFUSED:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTDOWN:
    case EHOSTUNREACH:
      return Unavailable(base + " (transient I/O error; retrying may succeed)");
    case EMFILE:
    case ENFILE:
      return Unavailable(base + "; raise the open file limit (ulimit -n)");
    case ENAMETOOLONG:
      return InvalidArgument(base +
                             "; a key segment is limited to 255 bytes on most filesystems: use "
                             "shorter names");
    case EEXIST:
      return AlreadyExists(base);
    case EISDIR:
      return FailedPrecondition(base);
    default:
      return Internal(base);
  }
}

Status PosixStore::SyncDir(const std::string& dir) const {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open directory to fsync", dir);
  FdCloser closer(fd);
  if (::fsync(fd) != 0) {
    int err = errno;
    // Some filesystems cannot fsync a directory; their metadata is synchronous or unsyncable.
    if (err == EINVAL || err == EROFS) return Status::OK();
    return ErrnoStatus(err, "fsync directory", dir);
  }
  return Status::OK();
}

bool PosixStore::DirKnownDurable(const std::string& dir) const {
  std::lock_guard<std::mutex> lock(durable_mu_);
  return durable_dirs_.count(dir) > 0;
}

void PosixStore::MarkDirDurable(const std::string& dir) const {
  std::lock_guard<std::mutex> lock(durable_mu_);
  durable_dirs_.insert(dir);
}

Status PosixStore::MakeParents(std::string_view key) const {
  size_t last = key.rfind('/');
  if (last == std::string_view::npos) return Status::OK();
  struct stat st;
  std::string leaf_dir = PathOf(key.substr(0, last));
  if (!options_.fsync || DirKnownDurable(leaf_dir)) {
    if (::stat(leaf_dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return Status::OK();
  }

  for (int attempt = 0;; ++attempt) {
    bool vanished = false;
    std::string parent = root_;
    size_t pos = 0;
    for (;;) {
      size_t next = key.find('/', pos);
      if (next == std::string_view::npos || next > last) break;
      std::string_view dir_key = key.substr(0, next);
      std::string dir = PathOf(dir_key);
      const bool created = ::mkdir(dir.c_str(), 0755) == 0;
      const int err = created ? 0 : errno;
      if (err == EEXIST) {
        if (::stat(dir.c_str(), &st) != 0) {
          if (errno != ENOENT) return ErrnoStatus(errno, "stat", dir);
          vanished = true;  // removed just now by a concurrent Delete
          break;
        }
        if (!S_ISDIR(st.st_mode)) {
          return FailedPrecondition(
              "cannot store object key " + Quoted(key) + " because " + Quoted(dir_key) +
              " is an object (the file " + dir +
              "); a filesystem store cannot hold both \"a\" and \"a/b\" (S3 can): choose "
              "another key");
        }
      } else if (err == ENOENT || err == ENOTDIR) {
        // A parent was removed by a concurrent Delete, or turned into a file (the next
        // attempt's EEXIST check names it).
        vanished = true;
        break;
      } else if (err != 0) {
        return ErrnoStatus(err, "create directory", dir);
      }
      // New, or existing but maybe not durable yet (its creator may have died before its fsync):
      // make the entry durable before anything is written below it.
      if (options_.fsync && (created || !DirKnownDurable(dir))) {
        Status synced = SyncDir(parent);
        if (synced.IsNotFound()) {
          vanished = true;  // the directory and its parent were removed already
          break;
        }
        RETURN_IF_ERROR(synced);
        MarkDirDurable(dir);
      }
      parent = std::move(dir);
      pos = next + 1;
    }
    if (!vanished) return Status::OK();
    if (attempt >= kMaxDirRetries) {
      return Unavailable("directories above object key " + Quoted(key) + " under " + root_ +
                         " keep disappearing while being created (concurrent deletes); retry");
    }
  }
}

Status PosixStore::WriteObject(
    std::string_view key, const PutOptions& options,
    const std::function<Status(int fd, const std::string& tmp_path)>& fill) {
  const std::string target = PathOf(key);
  const std::string dir = DirName(target);
  std::string tmp;
  int fd = -1;
  for (int attempt = 0;; ++attempt) {
    RETURN_IF_ERROR(MakeParents(key));
    tmp = dir + "/" + std::string(kTmpPrefix) + RandomSuffix();
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) break;
    int err = errno;
    // ENOENT/ENOTDIR: the directory was removed by a concurrent Delete after MakeParents.
    bool retry = err == ENOENT || err == ENOTDIR || err == EEXIST;
    if (!retry || attempt >= kMaxDirRetries) {
      return ErrnoStatus(err, "create temporary file", tmp)
          .WithContext("put " + Quoted(key) + " in " + Url());
    }
  }
  // The temporary file keeps its directory non-empty, so no Delete removes it from now on.
  TempFileRemover remover(tmp);
  FdCloser closer(fd);
  // A shared lock, held until the object is published, tells SweepAbandonedWrites that a live
  // writer owns the file (flock works across processes, and on NFS through the lock manager).
  // Best effort: without it, the sweep's age threshold alone protects the file.
  const int lock_fd = ::open(tmp.c_str(), O_RDONLY | O_CLOEXEC);
  FdCloser lock_closer(lock_fd);
  if (lock_fd >= 0) ::flock(lock_fd, LOCK_SH | LOCK_NB);
  RETURN_IF_ERROR(fill(fd, tmp));
  if (options_.fsync && ::fsync(fd) != 0) return ErrnoStatus(errno, "fsync", tmp);
  if (int err = closer.Close(); err != 0) return ErrnoStatus(err, "close", tmp);

  if (!options.if_absent) {
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
      int err = errno;
      if (err == EISDIR || err == ENOTEMPTY || err == EEXIST) return KeyIsDirectory(key, target);
      return ErrnoStatus(err, "rename a temporary file onto", target);
    }
    remover.Release();
  } else {
    if (::link(tmp.c_str(), target.c_str()) != 0) {
      int err = errno;
      if (err != EEXIST) {
        if (err == EPERM || err == EOPNOTSUPP) {
          return Unimplemented("link " + tmp + " to " + target + ": " + ErrnoText(err) +
                               "; put-if-absent needs hard links, which this filesystem does "
                               "not support");
        }
        return ErrnoStatus(err, "link a temporary file to", target);
      }
      struct stat tmp_st, target_st;
      if (::lstat(target.c_str(), &target_st) == 0) {
        if (S_ISDIR(target_st.st_mode)) return KeyIsDirectory(key, target);
        // NFS may answer EEXIST to a retransmitted link() that did succeed: then the target is
        // our temporary file.
        bool ours = ::stat(tmp.c_str(), &tmp_st) == 0 && tmp_st.st_ino == target_st.st_ino &&
                    tmp_st.st_dev == target_st.st_dev;
        if (!ours) {
          return AlreadyExists(Url() + ": object " + Quoted(key) + " already exists");
        }
      } else {
        return AlreadyExists(Url() + ": object " + Quoted(key) + " already exists");
      }
    }
    // The object keeps its other link.
    ::unlink(tmp.c_str());
    remover.Release();
  }
  if (options_.fsync) {
    Status synced = SyncDir(dir);
    // NotFound: a concurrent Delete removed the new object and its directory already.
    if (!synced.ok() && !synced.IsNotFound()) return synced;
  }
  return Status::OK();
}

Status PosixStore::Put(std::string_view key, std::string_view data, const PutOptions& o) {
  RETURN_IF_ERROR(ValidatePosixKey(key));
  RETURN_IF_ERROR(WriteObject(key, o, [&](int fd, const std::string& tmp) -> Status {
    if (int err = WriteAll(fd, data.data(), data.size()); err != 0) {
      return ErrnoStatus(err, "write", tmp);
    }
    return Status::OK();
  }));
  if (o.progress) o.progress(data.size(), data.size());
  return Status::OK();
}

Status PosixStore::PutFile(std::string_view key, const std::string& path, const PutOptions& o) {
  RETURN_IF_ERROR(ValidatePosixKey(key));
  int src = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return ErrnoStatus(errno, "open local file", path);
  FdCloser src_closer(src);
  struct stat st;
  if (::fstat(src, &st) != 0) return ErrnoStatus(errno, "stat local file", path);
  if (S_ISDIR(st.st_mode)) {
    return InvalidArgument("local file " + path + " is a directory; give the path of a file");
  }
  const uint64_t total = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  return WriteObject(key, o, [&](int fd, const std::string& tmp) -> Status {
    uint64_t done = 0;
    // copy_file_range copies inside the kernel (and shares extents on filesystems that can);
    // the read/write loop below takes over where it is not supported (e.g. across filesystems
    // on older kernels).
    for (;;) {
      ssize_t n = ::copy_file_range(src, nullptr, fd, nullptr, kChunkBytes, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (done == 0 && (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
                          errno == EOPNOTSUPP || errno == EBADF)) {
          break;
        }
        return ErrnoStatus(errno, "copy local file " + path + " to", tmp);
      }
      if (n == 0) {
        if (o.progress && done == 0) o.progress(0, total);
        return Status::OK();
      }
      done += static_cast<uint64_t>(n);
      if (o.progress) o.progress(done, total);
    }
    std::vector<char> buf(kChunkBytes);
    for (;;) {
      ssize_t n = ::read(src, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "read local file", path);
      }
      if (n == 0) break;
      if (int err = WriteAll(fd, buf.data(), static_cast<size_t>(n)); err != 0) {
        return ErrnoStatus(err, "write", tmp);
      }
      done += static_cast<uint64_t>(n);
      if (o.progress) o.progress(done, total);
    }
    if (o.progress && done == 0) o.progress(0, total);
    return Status::OK();
  });
}

namespace {

// Opens the object file of `key` for reading; NotFound when missing or a directory.
Result<int> OpenObject(std::string_view key, const std::string& path, const std::string& url,
                       struct stat* st,
                       Status (*errno_status)(int, std::string_view, const std::string&)) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return NotFound(url + ": object " + Quoted(key) + " not found");
    }
    return errno_status(err, "open", path);
  }
  if (::fstat(fd, st) != 0) {
    int err = errno;
    ::close(fd);
    return errno_status(err, "stat", path);
  }
  if (!S_ISREG(st->st_mode)) {
    ::close(fd);
    return NotFound(url + ": object " + Quoted(key) + " not found (" + path +
                    " is a directory, not an object)");
  }
  return fd;
}

// GetOptions::if_match against the file opened (`st` from its fstat).
Status CheckIfMatch(const std::string& url, std::string_view key, const struct stat& st,
                    const std::string& if_match) {
  if (if_match.empty() || EtagOf(st) == if_match) return Status::OK();
  return FailedPrecondition(url + ": object " + Quoted(key) +
                            " changed since it was fingerprinted: its ETag is no longer \"" +
                            if_match + "\" (now \"" + EtagOf(st) +
                            "\"); read it again to use the new version");
}

}  // namespace

Result<std::string> PosixStore::Get(std::string_view key, const GetOptions& o) {
  RETURN_IF_ERROR(ValidatePosixKey(key));
  const std::string path = PathOf(key);
  struct stat st;
  ASSIGN_OR_RETURN(int fd, OpenObject(key, path, Url(), &st, &PosixStore::ErrnoStatus));
  FdCloser closer(fd);
  RETURN_IF_ERROR(CheckIfMatch(Url(), key, st, o.if_match));
  std::string data;
  // Objects are replaced by rename, never modified in place: the open file is immutable.
  if (int err = PreadAll(fd, 0, static_cast<uint64_t>(st.st_size), &data); err != 0) {
    return ErrnoStatus(err, "read", path);
  }
  if (o.progress) o.progress(data.size(), data.size());
  return data;
}

std::string PosixStore::LocalPath(std::string_view key) const {
  if (!ValidatePosixKey(key).ok()) return "";
  return PathOf(key);
}

Result<uint64_t> SendLocalFile(const std::string& path, int out_fd) {
  struct stat st;
  ASSIGN_OR_RETURN(int fd, OpenObject(path, path, "local file", &st, &PosixStore::ErrnoStatus));
  FdCloser closer(fd);
  const auto size = static_cast<uint64_t>(st.st_size);
  auto write_failed = [](int err) {
    return Unavailable(std::string("cannot write the object out: ") + std::strerror(err));
  };
  uint64_t done = 0;
  bool use_sendfile = true;
  while (done < size && use_sendfile) {
    ssize_t n = ::sendfile(out_fd, fd, nullptr,
                           static_cast<size_t>(std::min<uint64_t>(size - done, 1ull << 30)));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EINVAL || errno == ENOSYS) {
        use_sendfile = false;  // this kind of output (or file system) cannot: plain reads
        break;
      }
      return write_failed(errno);
    }
    if (n == 0) break;  // the file shrank: objects are immutable, so report what was sent
    done += static_cast<uint64_t>(n);
  }
  if (!use_sendfile) {
    std::unique_ptr<char[]> buffer(new char[kChunkBytes]);  // not zero-filled
    for (;;) {
      ssize_t n = ::pread(fd, buffer.get(), kChunkBytes, static_cast<off_t>(done));
      if (n < 0) {
        if (errno == EINTR) continue;
        return PosixStore::ErrnoStatus(errno, "read", path);
      }
      if (n == 0) break;
      for (ssize_t off = 0; off < n;) {
        ssize_t w = ::write(out_fd, buffer.get() + off, static_cast<size_t>(n - off));
        if (w < 0) {
          if (errno == EINTR) continue;
          return write_failed(errno);
        }
        off += w;
      }
      done += static_cast<uint64_t>(n);
    }
  }
  return done;
}

// An offset equal to the size returns "" (any length); past the size is InvalidArgument.
Result<std::string> PosixStore::GetRange(std::string_view key, uint64_t offset, uint64_t length) {
  RETURN_IF_ERROR(ValidatePosixKey(key));
  const std::string path = PathOf(key);
  struct stat st;
  ASSIGN_OR_RETURN(int fd, OpenObject(key, path, Url(), &st, &PosixStore::ErrnoStatus));
  FdCloser closer(fd);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (offset > size) {
    return InvalidArgument(Url() + ": range offset " + std::to_string(offset) +
                           " is past the end of object " + Quoted(key) + " (" +
                           std::to_string(size) + " bytes)");
  }
  std::string data;
  if (int err = PreadAll(fd, offset, std::min(length, size - offset), &data); err != 0) {
    return ErrnoStatus(err, "read", path);
  }
  return data;
}

Status PosixStore::GetToFile(std::string_view key, const std::string& path, const GetOptions& o) {
  RETURN_IF_ERROR(ValidatePosixKey(key));
  const std::string src_path = PathOf(key);
  struct stat st;
  ASSIGN_OR_RETURN(int src, OpenObject(key, src_path, Url(), &st, &PosixStore::ErrnoStatus));
  FdCloser src_closer(src);
  RETURN_IF_ERROR(CheckIfMatch(Url(), key, st, o.if_match));
  const auto total = static_cast<uint64_t>(st.st_size);

  const std::string tmp = path + std::string(kTmpPrefix) + RandomSuffix();
  int dst = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (dst < 0) {
    int err = errno;
    if (err == ENOENT) {
      return FailedPrecondition("cannot write local file " + path + ": its directory " +
                                DirName(path) + " does not exist; create it first");
    }
    return ErrnoStatus(err, "create local file", tmp);
  }
  TempFileRemover remover(tmp);
  FdCloser dst_closer(dst);
  std::string buf;
  uint64_t done = 0;
  while (done < total) {
    buf.clear();
    if (int err = PreadAll(src, done, std::min<uint64_t>(kChunkBytes, total - done), &buf);
        err != 0) {
      return ErrnoStatus(err, "read", src_path);
    }
    if (buf.empty()) break;  // cannot happen: the object file is immutable
    if (int err = WriteAll(dst, buf.data(), buf.size()); err != 0) {
      return ErrnoStatus(err, "write local file", tmp);
    }
    done += buf.size();
    if (o.progress) o.progress(done, total);
  }
  if (o.progress && total == 0) o.progress(0, 0);
  if (options_.fsync && ::fsync(dst) != 0) return ErrnoStatus(errno, "fsync local file", tmp);
  if (int err = dst_closer.Close(); err != 0) return ErrnoStatus(err, "close local file", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(errno, "rename a temporary file onto local file", path);
  }
  remover.Release();
  return Status::OK();
}

Result<ObjectInfo> PosixStore::Stat(std::string_view key) {
  RETURN_IF_ERROR(ValidatePosixKey(key));
  const std::string path = PathOf(key);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return NotFound(Url() + ": object " + Quoted(key) + " not found");
    }
    return ErrnoStatus(err, "stat", path);
  }
  if (!S_ISREG(st.st_mode)) {
    return NotFound(Url() + ": object " + Quoted(key) + " not found (" + path +
                    " is a directory, not an object)");
  }
  return InfoOf(std::string(key), st);
}

Result<ListPage> PosixStore::List(const ListOptions& o) {
  const size_t max_keys = o.max_keys == 0 ? 1000 : o.max_keys;
  // Walk only the directory the prefix names: "a/b/c" starts at root/a/b.
  size_t slash = o.prefix.rfind('/');
  std::string key_dir = slash == std::string::npos ? "" : o.prefix.substr(0, slash + 1);
  if (!key_dir.empty()) {
    std::string_view dir_part(key_dir.data(), key_dir.size() - 1);
    // No valid key can start with such a prefix.
    if (!SegmentProblem(dir_part).empty()) return ListPage{};
  }
  std::string fs_dir = key_dir.empty() ? root_ : PathOf(key_dir.substr(0, key_dir.size() - 1));
  Lister lister(o, max_keys);
  if (int err = lister.Walk(fs_dir, key_dir); err != 0) {
    return ErrnoStatus(err, "list directory", lister.error_path())
        .WithContext("list " + Url() + " prefix " + Quoted(o.prefix));
  }
  return lister.TakePage();
}

Result<std::vector<ObjectInfo>> PosixStore::SweepAbandonedWrites(std::string_view prefix,
                                                                 int64_t older_than_ms,
                                                                 bool dry_run) {
  // Only whole directories: "a/b/" or "a/b/c" both start at root/a/b.
  size_t slash = prefix.rfind('/');
  std::string key_dir = slash == std::string_view::npos ? "" : std::string(prefix.substr(0, slash));
  if (!key_dir.empty() && !SegmentProblem(key_dir).empty()) return std::vector<ObjectInfo>();
  const std::string top = key_dir.empty() ? root_ : PathOf(key_dir);
  std::vector<ObjectInfo> out;
  std::error_code ec;
  namespace fs = std::filesystem;
  fs::recursive_directory_iterator it(top, fs::directory_options::none, ec);
  if (ec) {
    if (ec.value() == ENOENT || ec.value() == ENOTDIR) return out;
    return ErrnoStatus(ec.value(), "list directory", top);
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) break;  // a directory removed under us: the next GC looks again
    const std::string name = it->path().filename().string();
    if (!name.starts_with(kTmpPrefix)) continue;
    struct stat st;
    if (::lstat(it->path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    ObjectInfo info = InfoOf(it->path().string().substr(root_.size() + 1), st);
    if (info.mtime_ms >= older_than_ms) continue;
    // A writer that is alive holds a shared lock on its temporary file until it publishes it.
    const int fd = ::open(it->path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) continue;
    FdCloser closer(fd);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) continue;
    if (!dry_run && ::unlink(it->path().c_str()) != 0 && errno != ENOENT) continue;
    out.push_back(std::move(info));
  }
  if (!dry_run) {
    for (const ObjectInfo& o : out) RemoveEmptyParents(o.key);
  }
  return out;
}

void PosixStore::RemoveEmptyParents(std::string_view key) const {
  size_t slash = key.rfind('/');
  while (slash != std::string_view::npos && slash > 0) {
    std::string dir = PathOf(key.substr(0, slash));
    // Fails (ENOTEMPTY, EEXIST, ENOENT, ...) as soon as a directory is in use: stop there.
    if (::rmdir(dir.c_str()) != 0) return;
    slash = key.rfind('/', slash - 1);
  }
}

Status PosixStore::Delete(std::string_view key) {
  RETURN_IF_ERROR(ValidatePosixKey(key));
  const std::string path = PathOf(key);
  if (::unlink(path.c_str()) != 0) {
    int err = errno;
    // Missing, or a directory (no object has this key): S3 semantics say OK.
    if (err == ENOENT || err == ENOTDIR || err == EISDIR) return Status::OK();
    return ErrnoStatus(err, "delete", path).WithContext("delete " + Quoted(key));
  }
  if (options_.fsync) {
    Status s = SyncDir(DirName(path));
    if (!s.ok() && !s.IsNotFound()) return s;
  }
  RemoveEmptyParents(key);
  return Status::OK();
}

Result<DeleteResult> PosixStore::DeleteMany(const std::vector<std::string>& keys) {
  std::vector<Status> statuses(keys.size());
  ParallelFor(keys.size(), kDeleteParallelism, [&](size_t i) { statuses[i] = Delete(keys[i]); });
  DeleteResult result;
  result.requests = keys.size();
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].ok()) {
      ++result.deleted;
    } else {
      result.failed.emplace_back(keys[i], std::move(statuses[i]));
    }
  }
  return result;
}

}  // namespace respawn
