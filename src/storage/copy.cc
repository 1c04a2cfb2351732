#include "storage/copy.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "util/hash.h"
#include "util/log.h"
#include "util/thread_pool.h"

namespace respawn {
namespace {

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Where(const Store& store, std::string_view key) {
  std::string url = store.Url();
  if (!url.empty() && url.back() != '/') url += '/';
  url += key;
  return url;
}

Status LocalError(std::string_view what, const std::string& path, int err) {
  std::string msg = std::string(what) + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) return NotFound(msg);
  if (err == EACCES || err == EPERM) return PermissionDenied(msg);
  if (err == ENOSPC || err == EDQUOT) return Unavailable(msg + " (free some space)");
  return Internal(msg);
}

// A temporary local file, removed when this goes out of scope.
class TempFile {
 public:
  TempFile() = default;
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  Status Create(const std::string& dir) {
    std::string pattern = dir;
    if (pattern.empty() || pattern.back() != '/') pattern += '/';
    pattern += "respawn-copy-XXXXXX";
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    int fd = ::mkstemp(buf.data());
    if (fd < 0) {
      return LocalError("cannot create a temporary file in", dir, errno)
          .WithContext("copy (set TMPDIR to a directory with space)");
    }
    ::close(fd);
    path_ = buf.data();
    return Status::OK();
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

std::string TempDir(const CopyOptions& options) {
  if (!options.temp_dir.empty()) return options.temp_dir;
  const char* env = std::getenv("TMPDIR");
  if (env != nullptr && env[0] != '\0') return env;
  return "/tmp";
}

Result<uint64_t> LocalFileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return LocalError("cannot stat", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

Status FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) return LocalError("cannot open", path, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return LocalError("cannot fsync", path, err);
  return Status::OK();
}

// State shared by the workers of one CopyObjects call.
class CopyJob {
 public:
  CopyJob(Store& src, Store& dst, const CopyOptions& options, uint64_t objects_total,
          uint64_t bytes_total)
      : src_(src),
        dst_(dst),
        options_(options),
        objects_total_(objects_total),
        bytes_total_(bytes_total) {}

  Store& src() { return src_; }
  Store& dst() { return dst_; }
  const CopyOptions& options() const { return options_; }

  bool Cancelled() const {
    return options_.cancel != nullptr && options_.cancel->load(std::memory_order_relaxed);
  }

  void AddBytes(uint64_t delta) { bytes_done_.fetch_add(delta, std::memory_order_relaxed); }
  void ObjectFinished(bool ok) {
    objects_done_.fetch_add(1, std::memory_order_relaxed);
    if (!ok) objects_failed_.fetch_add(1, std::memory_order_relaxed);
    Notify(/*force=*/true);
  }

  // Calls the progress callback; unless `force`, at most every 50 ms.
  void Notify(bool force) {
    if (!options_.progress) return;
    int64_t now = SteadyNs();
    if (!force) {
      int64_t last = last_notify_ns_.load(std::memory_order_relaxed);
      if (now - last < 50'000'000) return;
      if (!last_notify_ns_.compare_exchange_strong(last, now)) return;
    } else {
      last_notify_ns_.store(now, std::memory_order_relaxed);
    }
    std::lock_guard<std::mutex> lock(progress_mu_);
    CopyProgress p;
    p.objects_done = objects_done_.load();
    p.objects_total = objects_total_;
    p.objects_failed = objects_failed_.load();
    p.bytes_done = bytes_done_.load();
    p.bytes_total = bytes_total_;
    options_.progress(p);
  }

 private:
  Store& src_;
  Store& dst_;
  const CopyOptions& options_;
  const uint64_t objects_total_;
  const uint64_t bytes_total_;
  std::atomic<uint64_t> objects_done_{0};
  std::atomic<uint64_t> objects_failed_{0};
  std::atomic<uint64_t> bytes_done_{0};  // wraps around on subtraction by design
  std::atomic<int64_t> last_notify_ns_{0};
  std::mutex progress_mu_;  // serializes calls of options_.progress
};

// One object's contribution to CopyJob's byte count while it moves. A streamed object moves in
// up to two legs (download into a file, upload from it); each leg's progress counts half when
// there are two.
class ObjectMeter {
 public:
  explicit ObjectMeter(CopyJob& job) : job_(job) {}

  ProgressFn Leg(int leg, int legs) {
    return [this, leg, legs](uint64_t done, uint64_t /*total*/) {
      std::atomic<uint64_t>& slot = leg == 0 ? leg0_ : leg1_;
      uint64_t prev = slot.load(std::memory_order_relaxed);
      while (done > prev && !slot.compare_exchange_weak(prev, done)) {
      }
      uint64_t value =
          legs == 1 ? leg0_.load() + leg1_.load() : leg0_.load() / 2 + leg1_.load() / 2;
      Raise(value);
      job_.Notify(/*force=*/false);
    };
  }

  // Sets the contribution to exactly `bytes` (the object is done).
  void Finish(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    job_.AddBytes(bytes - reported_);
    reported_ = bytes;
  }
  // Withdraws the contribution (the attempt failed).
  void Reset() {
    Finish(0);
    leg0_ = 0;
    leg1_ = 0;
  }

 private:
  void Raise(uint64_t value) {
    std::lock_guard<std::mutex> lock(mu_);
    if (value <= reported_) return;
    job_.AddBytes(value - reported_);
    reported_ = value;
  }

  CopyJob& job_;
  std::atomic<uint64_t> leg0_{0}, leg1_{0};
  std::mutex mu_;
  uint64_t reported_ = 0;  // GUARDED_BY(mu_)
};

Status VerifySize(Store& dst, std::string_view key, uint64_t written) {
  ASSIGN_OR_RETURN(ObjectInfo info, dst.Stat(key));
  if (info.size != written) {
    return DataLoss(Where(dst, key) + ": wrote " + std::to_string(written) +
                    " bytes but the store reports " + std::to_string(info.size) +
                    " after the copy");
  }
  return Status::OK();
}

Status VerifyBytes(Store& dst, std::string_view key, std::string_view written) {
  ASSIGN_OR_RETURN(std::string back, dst.Get(key));
  if (back != written) {
    return DataLoss(Where(dst, key) + ": the object read back (" + std::to_string(back.size()) +
                    " bytes) differs from the " + std::to_string(written.size()) +
                    " bytes written");
  }
  return Status::OK();
}

Status VerifyFile(Store& dst, std::string_view key, const std::string& written_path,
                  uint64_t written_size, const std::string& temp_dir) {
  ASSIGN_OR_RETURN(uint64_t want, Xxh3File(written_path));
  TempFile back;
  RETURN_IF_ERROR(back.Create(temp_dir));
  RETURN_IF_ERROR(dst.GetToFile(key, back.path()));
  ASSIGN_OR_RETURN(uint64_t back_size, LocalFileSize(back.path()));
  ASSIGN_OR_RETURN(uint64_t got, Xxh3File(back.path()));
  if (back_size != written_size || got != want) {
    return DataLoss(Where(dst, key) + ": the object read back (" + std::to_string(back_size) +
                    " bytes, xxh3 " + HexU64(got) + ") differs from the " +
                    std::to_string(written_size) + " bytes written (xxh3 " + HexU64(want) + ")");
  }
  return Status::OK();
}

Result<uint64_t> CopyInMemory(CopyJob& job, const CopyItem& item) {
  ASSIGN_OR_RETURN(std::string data, job.src().Get(item.src_key));
  RETURN_IF_ERROR(job.dst().Put(item.dst_key, data));
  switch (job.options().verify) {
    case CopyVerify::kNone:
      break;
    case CopyVerify::kSize:
      RETURN_IF_ERROR(VerifySize(job.dst(), item.dst_key, data.size()));
      break;
    case CopyVerify::kReadBack:
      RETURN_IF_ERROR(VerifyBytes(job.dst(), item.dst_key, data));
      break;
  }
  return static_cast<uint64_t>(data.size());
}

Result<uint64_t> CopyStreamed(CopyJob& job, const CopyItem& item, ObjectMeter& meter) {
  const std::string temp_dir = TempDir(job.options());
  const std::string src_path = job.src().LocalPath(item.src_key);
  const std::string dst_path = job.dst().LocalPath(item.dst_key);
  TempFile temp;
  std::string written;  // the local file whose bytes are now the destination object's
  if (!src_path.empty()) {
    PutOptions put;
    put.progress = meter.Leg(0, 1);
    RETURN_IF_ERROR(job.dst().PutFile(item.dst_key, src_path, put));
    written = src_path;
  } else if (!dst_path.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(dst_path).parent_path(), ec);
    if (ec) return LocalError("cannot create the directory of", dst_path, ec.value());
    GetOptions get;
    get.progress = meter.Leg(0, 1);
    RETURN_IF_ERROR(job.src().GetToFile(item.src_key, dst_path, get));
    if (job.dst().capabilities().durable_sync) {
      RETURN_IF_ERROR(FsyncPath(dst_path, /*directory=*/false));
      RETURN_IF_ERROR(
          FsyncPath(std::filesystem::path(dst_path).parent_path().string(), /*directory=*/true));
    }
    written = dst_path;
  } else {
    RETURN_IF_ERROR(temp.Create(temp_dir));
    GetOptions get;
    get.progress = meter.Leg(0, 2);
    RETURN_IF_ERROR(job.src().GetToFile(item.src_key, temp.path(), get));
    PutOptions put;
    put.progress = meter.Leg(1, 2);
    RETURN_IF_ERROR(job.dst().PutFile(item.dst_key, temp.path(), put));
    written = temp.path();
  }
  ASSIGN_OR_RETURN(uint64_t size, LocalFileSize(written));
  switch (job.options().verify) {
    case CopyVerify::kNone:
      break;
    case CopyVerify::kSize:
      RETURN_IF_ERROR(VerifySize(job.dst(), item.dst_key, size));
      break;
    case CopyVerify::kReadBack:
      RETURN_IF_ERROR(VerifyFile(job.dst(), item.dst_key, written, size, temp_dir));
      break;
  }
  return size;
}

bool IsSameObject(Store& src, Store& dst, const CopyItem& item) {
  if (item.src_key != item.dst_key) {
    std::string a = src.LocalPath(item.src_key), b = dst.LocalPath(item.dst_key);
    if (a.empty() || b.empty()) return false;
    return std::filesystem::path(a).lexically_normal() ==
           std::filesystem::path(b).lexically_normal();
  }
  return &src == &dst || src.Url() == dst.Url();
}

// A copy whose bytes did not verify is made again; a store call that failed is not: the store's
// own retry layer (store.h) has retried it already.
bool WorthAnotherAttempt(const Status& s) { return s.code() == StatusCode::kDataLoss; }

}  // namespace

std::string JoinKey(std::string_view prefix, std::string_view relative) {
  std::string out(prefix);
  if (!out.empty() && !relative.empty() && out.back() != '/') out += '/';
  out += relative;
  return out;
}

CopyResult CopyObjects(Store& src, Store& dst, const std::vector<CopyItem>& items,
                       const CopyOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  uint64_t bytes_total = 0;
  for (const auto& item : items) bytes_total += item.size;
  CopyJob job(src, dst, options, items.size(), bytes_total);

  enum class Outcome : uint8_t { kSkipped, kCopied, kFailed };
  std::vector<Outcome> outcome(items.size(), Outcome::kSkipped);
  std::vector<Status> status(items.size());
  std::vector<uint64_t> bytes(items.size(), 0);
  const int attempts = std::max(1, options.object_attempts);

  ParallelFor(items.size(), static_cast<size_t>(std::max(1, options.parallelism)), [&](size_t i) {
    if (job.Cancelled()) return;
    const CopyItem& item = items[i];
    ObjectMeter meter(job);
    Status st;
    if (IsSameObject(src, dst, item)) {
      st = InvalidArgument(Where(src, item.src_key) + " and " + Where(dst, item.dst_key) +
                           " are the same object");
    } else {
      for (int attempt = 1;; ++attempt) {
        Result<uint64_t> r = item.size < options.stream_threshold ? CopyInMemory(job, item)
                                                                  : CopyStreamed(job, item, meter);
        if (r.ok()) {
          bytes[i] = *r;
          meter.Finish(*r);
          st = Status::OK();
          break;
        }
        st = r.status();
        meter.Reset();
        if (attempt >= attempts || !WorthAnotherAttempt(st) || job.Cancelled()) break;
        RESPAWN_LOG(kInfo, "copy of " << Where(src, item.src_key) << " failed (attempt " << attempt
                                      << " of " << attempts << "), again: " << st.ToString());
      }
    }
    outcome[i] = st.ok() ? Outcome::kCopied : Outcome::kFailed;
    if (!st.ok()) status[i] = st;
    RESPAWN_LOG(kDebug, "copy " << Where(src, item.src_key) << " -> " << Where(dst, item.dst_key)
                                << ": "
                                << (st.ok() ? std::to_string(bytes[i]) + " bytes" : st.ToString()));
    job.ObjectFinished(st.ok());
  });

  CopyResult result;
  result.objects_total = items.size();
  for (size_t i = 0; i < items.size(); ++i) {
    switch (outcome[i]) {
      case Outcome::kSkipped:
        ++result.objects_skipped;
        break;
      case Outcome::kCopied:
        ++result.objects_copied;
        result.bytes_copied += bytes[i];
        break;
      case Outcome::kFailed:
        result.failures.emplace_back(items[i].src_key, std::move(status[i]));
        break;
    }
  }
  result.cancelled = job.Cancelled() && result.objects_skipped > 0;
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

Result<CopyResult> CopyObject(Store& src, std::string_view src_key, Store& dst,
                              std::string_view dst_key, const CopyOptions& options) {
  RETURN_IF_ERROR(ValidateKey(src_key));
  RETURN_IF_ERROR(ValidateKey(dst_key));
  CopyItem item;
  item.src_key = std::string(src_key);
  item.dst_key = std::string(dst_key);
  if (IsSameObject(src, dst, item)) {
    return InvalidArgument(Where(src, src_key) + " and " + Where(dst, dst_key) +
                           " are the same object");
  }
  ASSIGN_OR_RETURN(ObjectInfo info, src.Stat(src_key));
  item.size = info.size;
  return CopyObjects(src, dst, {item}, options);
}

Result<CopyResult> CopyPrefix(Store& src, std::string_view src_prefix, Store& dst,
                              std::string_view dst_prefix, const CopyOptions& options) {
  std::string list_prefix(src_prefix);
  if (!list_prefix.empty() && list_prefix.back() != '/') list_prefix += '/';
  ASSIGN_OR_RETURN(std::vector<ObjectInfo> objects, ListAll(src, list_prefix));
  std::vector<CopyItem> items;
  items.reserve(objects.size());
  for (auto& o : objects) {
    if (o.key.size() < list_prefix.size() ||
        o.key.compare(0, list_prefix.size(), list_prefix) != 0) {
      continue;  // a backend that returned more than asked for
    }
    std::string relative = o.key.substr(list_prefix.size());
    // Zero-byte "dir/" markers (made by S3 consoles) are not objects to copy.
    if (relative.empty() || (relative.back() == '/' && o.size == 0)) continue;
    CopyItem item;
    item.dst_key = JoinKey(dst_prefix, relative);
    item.src_key = std::move(o.key);
    item.size = o.size;
    items.push_back(std::move(item));
  }
  return CopyObjects(src, dst, items, options);
}

}  // namespace respawn
