// S3Store: the Store operations on top of S3Http (signed, retried requests).
//
// Choices worth knowing:
// - PutFile streams files from disk. Files of at least multipart_threshold bytes go up as a
//   parallel multipart upload (parts read with pread, UNSIGNED-PAYLOAD: hashing every part before
//   sending it measured slower, see kSignParts); any failure aborts the upload so no parts stay
//   behind. Put-if-absent always uses one PUT with If-None-Match: * whatever the size (radosgw
//   does not honour If-None-Match on CompleteMultipartUpload), so it is limited to 5 GiB.
// - Put-if-absent and retries: an attempt that timed out or was reset may have landed. When a
//   retry of such a request then gets 412, the object is read back: our own bytes mean our write
//   won (OK), anything else is someone else's object (AlreadyExists).
// - GetToFile asks for the first download_chunk bytes with a ranged GET (one request for small
//   objects), then fetches the rest in parallel ranges written with pwrite into a temporary file
//   beside the target, checks every range came from the same object version (ETag), fsyncs and
//   renames it into place.
// - Listing is consistent on AWS (since 2020) and radosgw. Swift's s3api lists from container
//   databases that are updated asynchronously on busy clusters, so a listing may lag there; the
//   commit protocol never relies on listings, and the chaos wrapper simulates lag in tests.
#include "storage/s3_store.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <unordered_map>

#include "storage/s3_http.h"
#include "storage/s3_xml.h"
#include "util/crash_point.h"
#include "util/hash.h"
#include "util/log.h"
#include "util/strings.h"
#include "util/thread_pool.h"

namespace respawn {
namespace {

// The end of a put's time limit (PutOptions::timeout), for every request of the call.
std::chrono::steady_clock::time_point CallDeadline(const PutOptions& o) {
  if (o.timeout.count() <= 0) return std::chrono::steady_clock::time_point::max();
  return std::chrono::steady_clock::now() + o.timeout;
}

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kMaxSinglePut = 5ull << 30;  // S3's limit for one PUT
constexpr uint64_t kMinPartSize = 5 * kMiB;     // S3's minimum for all parts but the last
constexpr uint64_t kMaxParts = 10000;
// PutFile reads files up to this size whole, so their payload is signed and retries are cheap.
constexpr uint64_t kInMemoryFileBytes = 8 * kMiB;
// Sign each multipart part with its SHA-256 (reading it into memory first) instead of sending
// UNSIGNED-PAYLOAD. Off: on radosgw it measured slower (see the report in the helper notes).
constexpr bool kSignParts = false;
constexpr size_t kDeleteBatch = 1000;

enum ProbeState : int { kUnknown = -1, kAbsent = 0, kPresent = 1 };

Status LocalError(int err, const std::string& what) {
  std::string msg = what + ": " + std::strerror(err);
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      return NotFound(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDenied(msg);
    case ENOSPC:
    case EDQUOT:
      return Unavailable(msg + " (free some space)");
    case EISDIR:
      return InvalidArgument(msg);
    default:
      return Internal(msg);
  }
}

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_;
};

// Reads `length` bytes of `fd` at `offset` into `out`.
Status ReadRange(int fd, const std::string& path, uint64_t offset, uint64_t length,
                 std::string* out) {
  out->resize(length);
  uint64_t done = 0;
  while (done < length) {
    ssize_t r = ::pread(fd, out->data() + done, length - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return LocalError(errno, "reading " + path);
    }
    if (r == 0) return DataLoss(path + " shrank while it was being read");
    done += static_cast<uint64_t>(r);
  }
  return Status::OK();
}

Result<uint64_t> Xxh3OfFd(int fd, const std::string& path, uint64_t size) {
  Xxh3Stream h;
  std::string buf(std::min<uint64_t>(size, 4 * kMiB), '\0');
  uint64_t done = 0;
  while (done < size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
    ssize_t r = ::pread(fd, buf.data(), want, static_cast<off_t>(done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return LocalError(errno, "reading " + path);
    }
    if (r == 0) return DataLoss(path + " shrank while it was being read");
    h.Update(std::string_view(buf.data(), static_cast<size_t>(r)));
    done += static_cast<uint64_t>(r);
  }
  return h.Digest();
}

std::string RandomHex() {
  std::random_device rd;
  uint64_t v = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return HexU64(v);
}

// "bytes 0-99/1000" -> 1000; -1 when absent or "*".
int64_t TotalFromContentRange(const std::string& header) {
  size_t slash = header.rfind('/');
  if (slash == std::string::npos || slash + 1 >= header.size() || header[slash + 1] == '*') {
    return -1;
  }
  return static_cast<int64_t>(std::strtoull(header.c_str() + slash + 1, nullptr, 10));
}

}  // namespace

class S3Store::Impl {
 public:
  Impl(S3Config config, std::unique_ptr<S3Http> http)
      : config_(std::move(config)), http_(std::move(http)) {}

  const S3Config& config() const { return config_; }

  std::string Url() const {
    return "s3://" + config_.bucket + (config_.prefix.empty() ? "" : "/" + config_.prefix);
  }

  std::string FullKey(std::string_view key) const {
    if (config_.prefix.empty()) return std::string(key);
    std::string full = config_.prefix;
    full.push_back('/');
    full.append(key);
    return full;
  }

  // The user's key of a full key, or nullopt-like "" when it lies outside the prefix.
  bool UserKey(const std::string& full, std::string* key) const {
    if (config_.prefix.empty()) {
      *key = full;
      return true;
    }
    if (full.size() <= config_.prefix.size() ||
        full.compare(0, config_.prefix.size(), config_.prefix) != 0 ||
        full[config_.prefix.size()] != '/') {
      return false;
    }
    *key = full.substr(config_.prefix.size() + 1);
    return true;
  }

  Capabilities capabilities() {
    Capabilities caps;
    int state = put_if_absent_.load();
    if (state == kUnknown) {
      Result<bool> probed = ProbePutIfAbsent();
      if (!probed.ok()) {
        // Fail closed: a commit strategy picked from a guess could be unsafe. The next call
        // probes again.
        caps.put_if_absent_error = Status(
            probed.status().code(),
            "cannot tell whether " + Url() + " at " + http_->endpoint_display() +
                " supports put-if-absent (conditional PUT): the probe failed (" +
                probed.status().message() +
                "); nothing can be committed until it succeeds. Retry when the store answers");
        state = kAbsent;
      } else {
        state = *probed ? kPresent : kAbsent;
      }
    }
    caps.put_if_absent = state == kPresent;
    caps.consistent_listing = true;
    caps.atomic_rename = false;
    caps.durable_sync = true;
    caps.ranged_reads = true;
    caps.max_delete_batch = kDeleteBatch;
    return caps;
  }

  // ---------------------------------------------------------------------------------------------
  // Writes.

  Status NoPutIfAbsent(const std::string& full) const {
    return Unimplemented(http_->ObjectUrl(full) + ": the server at " + http_->endpoint_display() +
                         " does not support put-if-absent (conditional PUT with If-None-Match: *)"
                         "; use a store that does (AWS S3, radosgw) or the lease fallback");
  }

  // One PUT of `data`; the raw response (the caller maps it).
  Result<S3Response> PutBytes(S3Request& req, const std::string& full, std::string_view data,
                              const PutOptions& o, S3Progress* progress) {
    const bool if_absent = o.if_absent;
    const std::string& content_type = o.content_type;
    StringBody body(data);
    req.deadline = CallDeadline(o);
    req.method = "PUT";
    req.key = full;
    req.body = &body;
    req.payload_hash = Sha256Hex(data);
    req.large = data.size() > kInMemoryFileBytes;
    req.progress = progress;
    if (!content_type.empty()) req.headers.emplace_back("content-type", content_type);
    if (if_absent) req.headers.emplace_back("if-none-match", "*");
    Result<S3Response> resp = http_->Send(req);
    req.body = nullptr;
    return resp;
  }

  // Maps the answer to a PUT. `same_as_sent` reads the object back after an ambiguous 412.
  Status FinishPut(const S3Request& req, const S3Response& resp, bool if_absent,
                   const std::function<Result<bool>()>& same_as_sent) {
    if (resp.ok()) {
      bucket_exists_ = true;
      return Status::OK();
    }
    if (if_absent && resp.status == 412) {
      bucket_exists_ = true;
      if (resp.ambiguous) {
        // An earlier attempt may have written the object this 412 is about.
        Result<bool> same = same_as_sent();
        if (same.ok() && *same) {
          RESPAWN_LOG(kInfo, http_->ObjectUrl(req.key)
                                 << ": put-if-absent retry found our own write; success");
          return Status::OK();
        }
        if (!same.ok() && !same.status().IsNotFound()) return same.status();
      }
      return AlreadyExists(http_->ObjectUrl(req.key) + ": the object already exists");
    }
    if (if_absent && (resp.status == 501 || resp.error.code == "NotImplemented")) {
      put_if_absent_ = kAbsent;
      return NoPutIfAbsent(req.key);
    }
    return http_->ErrorStatus(req, resp);
  }

  Status Put(std::string_view key, std::string_view data, const PutOptions& o) {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string full = FullKey(key);
    if (o.if_absent && put_if_absent_.load() == kAbsent) return NoPutIfAbsent(full);
    S3Progress progress;
    progress.fn = &o.progress;
    progress.total = data.size();
    S3Request req;
    ASSIGN_OR_RETURN(S3Response resp, PutBytes(req, full, data, o, &progress));
    return FinishPut(req, resp, o.if_absent, [&]() -> Result<bool> {
      ASSIGN_OR_RETURN(std::string stored, GetFull(full, nullptr));
      return stored == data;
    });
  }

  Status PutFile(std::string_view key, const std::string& path, const PutOptions& o) {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string full = FullKey(key);
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) return LocalError(errno, "cannot open local file " + path);
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return LocalError(errno, "cannot stat " + path);
    if (!S_ISREG(st.st_mode)) {
      return InvalidArgument(path + " is not a regular file; PutFile uploads files");
    }
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    S3Progress progress;
    progress.fn = &o.progress;
    progress.total = size;

    if (o.if_absent) {
      if (put_if_absent_.load() == kAbsent) return NoPutIfAbsent(full);
      if (size > kMaxSinglePut) {
        return InvalidArgument(path + " is " + std::to_string(size) +
                               " bytes; put-if-absent on S3 is one PUT, limited to 5 GiB");
      }
    } else if (size >= config_.multipart_threshold && size > kMinPartSize) {
      return PutFileMultipart(full, fd.get(), path, size, o.content_type, CallDeadline(o),
                              &progress);
    }

    if (size <= kInMemoryFileBytes) {
      std::string data;
      RETURN_IF_ERROR(ReadRange(fd.get(), path, 0, size, &data));
      S3Request req;
      ASSIGN_OR_RETURN(S3Response resp, PutBytes(req, full, data, o, &progress));
      return FinishPut(req, resp, o.if_absent, [&]() -> Result<bool> {
        ASSIGN_OR_RETURN(std::string stored, GetFull(full, nullptr));
        return stored == data;
      });
    }

    if (size > kMaxSinglePut) {
      return InvalidArgument(path + " is " + std::to_string(size) +
                             " bytes, over S3's 5 GiB limit for one PUT; lower "
                             "multipart_threshold");
    }
    FileRangeBody body(fd.get(), path, 0, size);
    S3Request req;
    req.method = "PUT";
    req.key = full;
    req.body = &body;
    req.payload_hash = std::string(kUnsignedPayload);
    req.large = true;
    req.progress = &progress;
    req.deadline = CallDeadline(o);
    if (!o.content_type.empty()) req.headers.emplace_back("content-type", o.content_type);
    if (o.if_absent) req.headers.emplace_back("if-none-match", "*");
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    return FinishPut(req, resp, o.if_absent, [&]() -> Result<bool> {
      HashSink sink;
      S3Request get;
      get.key = full;
      get.sink = &sink;
      get.large = true;
      ASSIGN_OR_RETURN(S3Response r, http_->Send(get));
      if (!r.ok()) return http_->ErrorStatus(get, r);
      if (sink.size() != size) return false;
      ASSIGN_OR_RETURN(uint64_t local, Xxh3OfFd(fd.get(), path, size));
      return local == sink.digest();
    });
  }

  void AbortUpload(const std::string& full, const std::string& upload_id) {
    S3Request req;
    req.method = "DELETE";
    req.key = full;
    req.query = {{"uploadId", upload_id}};
    Result<S3Response> resp = http_->Send(req);
    Status s = !resp.ok()                          ? resp.status()
               : resp->ok() || resp->status == 404 ? Status::OK()
                                                   : http_->ErrorStatus(req, *resp);
    if (!s.ok()) {
      RESPAWN_LOG(kWarn, "could not abort multipart upload " << upload_id << " of "
                                                             << http_->ObjectUrl(full) << ": "
                                                             << s.ToString()
                                                             << "; its parts use space until "
                                                                "a lifecycle rule removes them");
    }
  }

  Status PutFileMultipart(const std::string& full, int fd, const std::string& path, uint64_t size,
                          const std::string& content_type,
                          std::chrono::steady_clock::time_point deadline, S3Progress* progress) {
    uint64_t part_size = std::max(config_.part_size, kMinPartSize);
    if ((size + part_size - 1) / part_size > kMaxParts) {
      part_size = (size + kMaxParts - 1) / kMaxParts;
      part_size = (part_size + kMiB - 1) / kMiB * kMiB;
    }
    const size_t parts = static_cast<size_t>((size + part_size - 1) / part_size);

    S3Request create;
    create.method = "POST";
    create.key = full;
    create.query = {{"uploads", ""}};
    create.deadline = deadline;
    if (!content_type.empty()) create.headers.emplace_back("content-type", content_type);
    ASSIGN_OR_RETURN(S3Response created, http_->Send(create));
    if (!created.ok()) return http_->ErrorStatus(create, created);
    bucket_exists_ = true;
    ASSIGN_OR_RETURN(std::string upload_id, ParseUploadId(created.body));

    std::vector<std::string> etags(parts);
    std::mutex mu;
    Status first_error;  // GUARDED_BY(mu)
    std::atomic<bool> failed{false};
    ParallelFor(parts, static_cast<size_t>(std::max(1, config_.parallelism)), [&](size_t i) {
      if (failed.load()) return;
      const uint64_t offset = i * part_size;
      const uint64_t length = std::min(part_size, size - offset);
      Status s = UploadPart(full, upload_id, i + 1, fd, path, offset, length, deadline, progress,
                            &etags[i]);
      if (s.ok()) CrashPoint<"s3:multipart-after-part">();  // other parts still in flight
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = s;
        failed = true;
      }
    });
    if (failed.load()) {
      AbortUpload(full, upload_id);
      return first_error;
    }

    CrashPoint<"s3:multipart-before-complete">();  // every part uploaded, none visible
    const std::string xml = BuildCompleteMultipartUpload(etags);
    StringBody body(xml);
    S3Request complete;
    complete.method = "POST";
    complete.key = full;
    complete.query = {{"uploadId", upload_id}};
    complete.body = &body;
    complete.payload_hash = Sha256Hex(xml);
    complete.headers.emplace_back("content-type", "application/xml");
    complete.error_in_ok = true;
    complete.deadline = deadline;
    Result<S3Response> done = http_->Send(complete);
    if (!done.ok()) {
      AbortUpload(full, upload_id);
      return done.status();
    }
    if (!done->ok()) {
      if (done->ambiguous && done->status == 404) {
        // An earlier attempt may have completed the upload before the connection dropped.
        Result<ObjectInfo> info = StatFull(full);
        if (info.ok() && info->size == size) return Status::OK();
      }
      AbortUpload(full, upload_id);
      return http_->ErrorStatus(complete, *done);
    }
    return Status::OK();
  }

  Status UploadPart(const std::string& full, const std::string& upload_id, size_t number, int fd,
                    const std::string& path, uint64_t offset, uint64_t length,
                    std::chrono::steady_clock::time_point deadline, S3Progress* progress,
                    std::string* etag) {
    std::string buffer;
    std::unique_ptr<S3Body> body;
    S3Request req;
    if (kSignParts) {
      RETURN_IF_ERROR(ReadRange(fd, path, offset, length, &buffer));
      req.payload_hash = Sha256Hex(buffer);
      body = std::make_unique<StringBody>(buffer);
    } else {
      req.payload_hash = std::string(kUnsignedPayload);
      body = std::make_unique<FileRangeBody>(fd, path, offset, length);
    }
    req.method = "PUT";
    req.key = full;
    req.query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}};
    req.deadline = deadline;
    req.body = body.get();
    req.large = true;
    req.progress = progress;
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    if (!resp.ok()) {
      return http_->ErrorStatus(req, resp).WithContext("part " + std::to_string(number));
    }
    *etag = resp.Header("etag");
    if (etag->empty()) {
      return Internal(http_->ObjectUrl(full) + ": the answer to UploadPart " +
                      std::to_string(number) + " has no ETag");
    }
    return Status::OK();
  }

  // ---------------------------------------------------------------------------------------------
  // Reads.

  // `if_match` (an ETag without quotes, may be empty) pins the read to that version.
  Result<std::string> GetFull(const std::string& full, S3Progress* progress,
                              const std::string& if_match = {}) {
    StringSink sink;
    S3Request req;
    req.key = full;
    req.sink = &sink;
    req.large = true;
    req.progress = progress;
    AddIfMatch(&req, if_match);
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    if (!resp.ok()) return ReadError(req, resp, if_match);
    bucket_exists_ = true;
    RETURN_IF_ERROR(CheckServedVersion(full, resp, if_match));
    return std::move(sink.data());
  }

  // A server that ignores If-Match still says which version it sent.
  Status CheckServedVersion(const std::string& full, const S3Response& resp,
                            const std::string& if_match) const {
    if (if_match.empty()) return Status::OK();
    const std::string served = StripQuotes(resp.Header("etag"));
    return served.empty() || served == if_match ? Status::OK() : Changed(full, if_match);
  }

  static void AddIfMatch(S3Request* req, const std::string& etag) {
    if (!etag.empty()) req->headers.emplace_back("if-match", "\"" + etag + "\"");
  }

  // The error of a failed read; with If-Match, 412 means the object is another version now.
  Status ReadError(const S3Request& req, const S3Response& resp, const std::string& if_match) {
    if (!if_match.empty() && resp.status == 412) return Changed(req.key, if_match);
    return http_->ErrorStatus(req, resp);
  }

  Status Changed(const std::string& full, const std::string& if_match) const {
    return FailedPrecondition(http_->ObjectUrl(full) +
                              " changed since it was fingerprinted: its ETag is no longer \"" +
                              if_match +
                              "\" (If-Match failed); read it again to use the new "
                              "version");
  }

  Result<std::string> Get(std::string_view key, const GetOptions& o) {
    RETURN_IF_ERROR(ValidateKey(key));
    S3Progress progress;
    progress.fn = &o.progress;
    return GetFull(FullKey(key), &progress, o.if_match);
  }

  Result<std::string> GetRange(std::string_view key, uint64_t offset, uint64_t length) {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string full = FullKey(key);
    auto past_end = [&](uint64_t size) {
      return InvalidArgument(http_->ObjectUrl(full) + ": offset " + std::to_string(offset) +
                             " is past the end of the object (" + std::to_string(size) + " bytes)");
    };
    if (length == 0) {
      ASSIGN_OR_RETURN(ObjectInfo info, StatFull(full));
      if (offset > info.size) return past_end(info.size);
      return std::string();
    }
    StringSink sink;
    S3Request req;
    req.key = full;
    req.sink = &sink;
    req.large = length > kInMemoryFileBytes;
    std::string range = "bytes=" + std::to_string(offset) + "-";
    if (length - 1 <= UINT64_MAX - offset) range += std::to_string(offset + length - 1);
    req.headers.emplace_back("range", range);
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    if (resp.status == 416) {
      ASSIGN_OR_RETURN(ObjectInfo info, StatFull(full));
      if (offset == info.size) return std::string();
      return past_end(info.size);
    }
    if (!resp.ok()) return http_->ErrorStatus(req, resp);
    bucket_exists_ = true;
    if (resp.status == 200) {  // the server ignored the range
      std::string& all = sink.data();
      if (offset > all.size()) return past_end(all.size());
      return all.substr(offset, length);
    }
    return std::move(sink.data());
  }

  Status GetToFile(std::string_view key, const std::string& path, const GetOptions& o) {
    RETURN_IF_ERROR(ValidateKey(key));
    const std::string full = FullKey(key);
    const std::string url = http_->ObjectUrl(full);

    size_t slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    if (base.empty()) return InvalidArgument("GetToFile target '" + path + "' names a directory");
    std::string tmp = (dir == "/" ? "" : dir) + "/." + base + ".respawn-" + RandomHex();
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd.get() < 0) return LocalError(errno, "cannot create a temporary file in " + dir);
    bool keep = false;
    struct Unlinker {
      const std::string& path;
      bool& keep;
      ~Unlinker() {
        if (!keep) ::unlink(path.c_str());
      }
    } unlinker{tmp, keep};

    S3Progress progress;
    progress.fn = &o.progress;
    const uint64_t chunk = std::max<uint64_t>(config_.download_chunk, kMiB);

    // The first range tells the size (and is all of a small object).
    FileSink first_sink(fd.get(), tmp, 0, true);
    S3Request first;
    first.key = full;
    first.sink = &first_sink;
    first.large = true;
    first.progress = &progress;
    first.headers.emplace_back("range", "bytes=0-" + std::to_string(chunk - 1));
    AddIfMatch(&first, o.if_match);
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(first));
    uint64_t total = 0;
    if (resp.status == 416) {
      total = 0;  // an empty object has no byte 0
      // A 416 is decided before If-Match by some servers: check the version of the empty object.
      if (!o.if_match.empty()) {
        ASSIGN_OR_RETURN(ObjectInfo info, StatFull(full));
        if (info.etag != o.if_match) return Changed(full, o.if_match);
      }
    } else if (!resp.ok()) {
      return ReadError(first, resp, o.if_match);
    } else if (resp.status == 206) {
      int64_t t = TotalFromContentRange(resp.Header("content-range"));
      if (t < 0) {
        ASSIGN_OR_RETURN(ObjectInfo info, StatFull(full));
        t = static_cast<int64_t>(info.size);
      }
      total = static_cast<uint64_t>(t);
      if (first_sink.written() != std::min(total, chunk)) {
        return Unavailable(url + ": the first range returned " +
                           std::to_string(first_sink.written()) + " bytes, expected " +
                           std::to_string(std::min(total, chunk)));
      }
    } else {
      total = first_sink.written();  // the server ignored the range and sent everything
    }
    bucket_exists_ = true;
    const std::string etag = resp.Header("etag");
    if (resp.status != 416) RETURN_IF_ERROR(CheckServedVersion(full, resp, o.if_match));

    if (total > first_sink.written()) {
      progress.total = total;
      const uint64_t start = first_sink.written();
      const size_t ranges = static_cast<size_t>((total - start + chunk - 1) / chunk);
      std::mutex mu;
      Status first_error;  // GUARDED_BY(mu)
      std::atomic<bool> failed{false};
      ParallelFor(ranges, static_cast<size_t>(std::max(1, config_.parallelism)), [&](size_t i) {
        if (failed.load()) return;
        const uint64_t offset = start + i * chunk;
        const uint64_t length = std::min(chunk, total - offset);
        Status s = DownloadRange(full, fd.get(), tmp, offset, length, etag, o.if_match, &progress);
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.ok()) first_error = s;
          failed = true;
        }
      });
      if (failed.load()) return first_error;
    }

    if (::fsync(fd.get()) != 0) return LocalError(errno, "fsync " + tmp);
    if (::close(fd.Release()) != 0) return LocalError(errno, "close " + tmp);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      return LocalError(errno, "cannot rename " + tmp + " to " + path);
    }
    keep = true;
    Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir_fd.get() >= 0) ::fsync(dir_fd.get());
    return Status::OK();
  }

  // `etag`: of the first range (compared with each range's); `if_match`: the caller's pin.
  Status DownloadRange(const std::string& full, int fd, const std::string& tmp, uint64_t offset,
                       uint64_t length, const std::string& etag, const std::string& if_match,
                       S3Progress* progress) {
    FileSink sink(fd, tmp, offset, true);
    S3Request req;
    req.key = full;
    req.sink = &sink;
    req.large = true;
    req.progress = progress;
    req.headers.emplace_back(
        "range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + length - 1));
    AddIfMatch(&req, if_match);
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    if (!resp.ok()) return ReadError(req, resp, if_match);
    const std::string url = http_->ObjectUrl(full);
    std::string got_etag = resp.Header("etag");
    if (!etag.empty() && !got_etag.empty() && got_etag != etag) {
      return Unavailable(url + " changed while it was being downloaded (ETag " + etag + ", then " +
                         got_etag + "); download it again");
    }
    if (resp.status != 206 || sink.written() != length) {
      return Unavailable(url + ": range " + std::to_string(offset) + "+" + std::to_string(length) +
                         " came back as HTTP " + std::to_string(resp.status) + " with " +
                         std::to_string(sink.written()) + " bytes");
    }
    return Status::OK();
  }

  // A GET of one byte, to learn the S3 error code a HEAD cannot carry.
  Status ExplainHeadFailure(const S3Request& head, const S3Response& head_resp) {
    StringSink sink;
    S3Request get;
    get.key = head.key;
    get.sink = &sink;
    get.headers.emplace_back("range", "bytes=0-0");
    Result<S3Response> resp = http_->Send(get);
    if (resp.ok() && !resp->ok() && resp->status != 416 && !resp->error.code.empty()) {
      return http_->ErrorStatus(get, *resp);
    }
    return http_->ErrorStatus(head, head_resp);
  }

  Result<ObjectInfo> StatFull(const std::string& full) {
    S3Request req;
    req.method = "HEAD";
    req.key = full;
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    if (!resp.ok()) {
      if (resp.status == 404 && bucket_exists_.load()) {
        return NotFound(http_->ObjectUrl(full) + ": no such object");
      }
      if (resp.status == 404) {
        RETURN_IF_ERROR(CheckBucket());
        return NotFound(http_->ObjectUrl(full) + ": no such object");
      }
      return ExplainHeadFailure(req, resp);
    }
    bucket_exists_ = true;
    ObjectInfo info;
    if (!UserKey(full, &info.key)) info.key = full;
    info.size = std::strtoull(resp.Header("content-length").c_str(), nullptr, 10);
    std::string modified = resp.Header("last-modified");
    if (!modified.empty()) {
      time_t t = curl_getdate(modified.c_str(), nullptr);
      if (t > 0) info.mtime_ms = static_cast<int64_t>(t) * 1000;
    }
    info.etag = StripQuotes(resp.Header("etag"));
    return info;
  }

  Result<ObjectInfo> Stat(std::string_view key) {
    RETURN_IF_ERROR(ValidateKey(key));
    return StatFull(FullKey(key));
  }

  Result<ListPage> List(const ListOptions& o) {
    S3Request req;
    req.key = "";
    std::string prefix = config_.prefix.empty() ? o.prefix : config_.prefix + "/" + o.prefix;
    size_t max_keys = o.max_keys == 0 ? 1000 : std::min<size_t>(o.max_keys, 1000);
    req.query = {
        {"list-type", "2"}, {"encoding-type", "url"}, {"max-keys", std::to_string(max_keys)}};
    if (!prefix.empty()) req.query.emplace_back("prefix", prefix);
    if (!o.delimiter.empty()) req.query.emplace_back("delimiter", o.delimiter);
    if (!o.continuation_token.empty()) {
      req.query.emplace_back("continuation-token", o.continuation_token);
    }
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    if (!resp.ok()) return http_->ErrorStatus(req, resp);
    bucket_exists_ = true;
    ASSIGN_OR_RETURN(S3ListResult listed, ParseListObjectsV2(resp.body));
    ListPage page;
    page.objects.reserve(listed.objects.size());
    for (ObjectInfo& info : listed.objects) {
      std::string key;
      if (!UserKey(info.key, &key)) continue;
      info.key = std::move(key);
      page.objects.push_back(std::move(info));
    }
    for (const std::string& p : listed.common_prefixes) {
      std::string key;
      if (UserKey(p, &key)) page.common_prefixes.push_back(std::move(key));
    }
    if (listed.truncated) {
      if (listed.next_token.empty()) {
        return Internal(Url() +
                        ": the server said the listing is truncated but gave no "
                        "NextContinuationToken (does it support ListObjectsV2?)");
      }
      page.next_token = std::move(listed.next_token);
    }
    return page;
  }

  // ---------------------------------------------------------------------------------------------
  // Deletes.

  Status DeleteFull(const std::string& full) {
    S3Request req;
    req.method = "DELETE";
    req.key = full;
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    if (resp.ok()) {
      bucket_exists_ = true;
      return Status::OK();
    }
    if (resp.status == 404 && resp.Code(false) != "NoSuchBucket") return Status::OK();
    return http_->ErrorStatus(req, resp);
  }

  Status Delete(std::string_view key) {
    RETURN_IF_ERROR(ValidateKey(key));
    return DeleteFull(FullKey(key));
  }

  struct BatchOutcome {
    size_t deleted = 0;
    std::vector<std::pair<std::string, Status>> failed;
    bool unsupported = false;  // the server lacks DeleteObjects: delete these one by one
    uint64_t requests = 0;     // DeleteObjects requests sent
  };

  // One DeleteObjects request for `keys` (user keys).
  BatchOutcome DeleteBatch(const std::vector<std::string>& keys) {
    BatchOutcome out;
    out.requests = 1;
    std::vector<std::string> full_keys;
    std::unordered_map<std::string, std::string> user_of;
    full_keys.reserve(keys.size());
    for (const std::string& k : keys) {
      full_keys.push_back(FullKey(k));
      user_of[full_keys.back()] = k;
    }
    const std::string xml = BuildDeleteObjects(full_keys, true);
    StringBody body(xml);
    S3Request req = BucketXmlRequest("POST", "delete", xml, &body);
    Result<S3Response> resp = http_->Send(req);
    Status whole;
    if (!resp.ok()) {
      whole = resp.status();
    } else if (!resp->ok()) {
      if (resp->status == 501 || resp->error.code == "NotImplemented") {
        out.unsupported = true;
        return out;
      }
      whole = http_->ErrorStatus(req, *resp);
    }
    if (!whole.ok()) {
      for (const std::string& k : keys) out.failed.emplace_back(k, whole);
      return out;
    }
    bucket_exists_ = true;
    Result<std::vector<S3DeleteError>> errors = ParseDeleteResult(resp->body);
    if (!errors.ok()) {
      for (const std::string& k : keys) out.failed.emplace_back(k, errors.status());
      return out;
    }
    size_t failed = 0;
    for (const S3DeleteError& e : *errors) {
      if (e.code == "NoSuchKey") continue;  // gone is what we wanted
      ++failed;
      auto it = user_of.find(e.key);
      std::string key = it != user_of.end() ? it->second : e.key;
      S3Request one;
      one.method = "DELETE";
      one.key = e.key;
      S3Response r;
      r.error.code = e.code;
      r.error.message = e.message;
      out.failed.emplace_back(std::move(key), http_->ErrorStatus(one, r));
    }
    out.deleted = keys.size() - std::min(failed, keys.size());
    return out;
  }

  // Watches the requests of one DeleteMany: once none has succeeded for two retry deadlines
  // (each request already retried within one), the store is down rather than slow, and the
  // keys not yet sent fail with the last error instead of costing a deadline per batch.
  class DeleteWatch {
   public:
    explicit DeleteWatch(std::chrono::milliseconds deadline)
        : window_(2 * deadline), last_success_(std::chrono::steady_clock::now()) {}
    void Succeeded() {
      std::lock_guard<std::mutex> lock(mu_);
      last_success_ = std::chrono::steady_clock::now();
    }
    void Failed(const Status& s) {
      if (!RetryPolicy::IsRetryable(s)) return;  // an answer: the store is up
      std::lock_guard<std::mutex> lock(mu_);
      last_error_ = s;
    }
    // The error to fail unsent keys with, or OK while requests are still worth sending.
    Status GiveUp() {
      std::lock_guard<std::mutex> lock(mu_);
      if (last_error_.ok() || std::chrono::steady_clock::now() - last_success_ < window_) {
        return Status::OK();
      }
      return Status(last_error_.code(), last_error_.message() +
                                            " (not sent: no delete request succeeded for " +
                                            std::to_string(window_.count() / 1000) + " s)");
    }

   private:
    const std::chrono::milliseconds window_;
    std::mutex mu_;
    std::chrono::steady_clock::time_point last_success_;  // GUARDED_BY(mu_)
    Status last_error_;                                   // GUARDED_BY(mu_)
  };

  static BatchOutcome AllFailed(const std::vector<std::string>& keys, const Status& s) {
    BatchOutcome out;
    for (const std::string& k : keys) out.failed.emplace_back(k, s);
    return out;
  }

  // DeleteBatch, halving a batch whose whole request timed out: some servers (Swift's s3api)
  // delete the keys of a request one by one, slowly enough for 1,000 keys to exceed the request
  // timeout. Deleting is idempotent, so resending is safe. Other failures (5xx, resets) are not
  // about the size of the request and are not split. When the first half times out as well,
  // smaller requests do not help (the server times out whatever the size): the second half is
  // not sent.
  BatchOutcome DeleteBatchAdaptive(const std::vector<std::string>& keys, DeleteWatch& watch) {
    if (Status give_up = watch.GiveUp(); !give_up.ok()) return AllFailed(keys, give_up);
    BatchOutcome outcome = DeleteBatch(keys);
    if (outcome.failed.size() != keys.size() || outcome.unsupported) {
      watch.Succeeded();
    } else if (!keys.empty()) {
      watch.Failed(outcome.failed.front().second);
    }
    if (outcome.unsupported || keys.size() < 2 || outcome.failed.size() != keys.size()) {
      return outcome;
    }
    for (const auto& [key, status] : outcome.failed) {
      if (status.code() != StatusCode::kDeadlineExceeded) return outcome;
    }
    RESPAWN_LOG(kInfo, Url() << ": DeleteObjects of " << keys.size()
                             << " keys timed out; retrying in halves");
    const auto middle = keys.begin() + static_cast<std::ptrdiff_t>(keys.size() / 2);
    const std::vector<std::string> first(keys.begin(), middle);
    const std::vector<std::string> second(middle, keys.end());
    BatchOutcome merged = DeleteBatchAdaptive(first, watch);
    if (merged.unsupported) return merged;
    merged.requests += outcome.requests;  // the request that timed out
    const bool first_timed_out =
        merged.failed.size() == first.size() &&
        std::all_of(merged.failed.begin(), merged.failed.end(),
                    [](const auto& f) { return f.second.code() == StatusCode::kDeadlineExceeded; });
    BatchOutcome part = first_timed_out ? AllFailed(second, merged.failed.front().second)
                                        : DeleteBatchAdaptive(second, watch);
    if (part.unsupported) return part;
    merged.deleted += part.deleted;
    merged.requests += part.requests;
    for (auto& f : part.failed) merged.failed.push_back(std::move(f));
    return merged;
  }

  Result<DeleteResult> DeleteMany(const std::vector<std::string>& keys) {
    DeleteResult result;
    std::vector<std::string> batchable;
    std::vector<std::string> singles;
    for (const std::string& k : keys) {
      Status valid = ValidateKey(k);
      if (!valid.ok()) {
        result.failed.emplace_back(k, valid);
      } else if (XmlSafeKey(FullKey(k)) && !multi_delete_unsupported_.load()) {
        batchable.push_back(k);
      } else {
        singles.push_back(k);
      }
    }
    const size_t parallelism = static_cast<size_t>(std::max(1, config_.parallelism));
    std::mutex mu;
    DeleteWatch watch(config_.retry.deadline);
    // Servers delete the keys of one request one after another, so spread the keys over at
    // least 4 rounds of `parallelism` requests (never more than 1,000 keys a request): slow
    // servers then stay within the request timeout, and fast ones see no difference.
    size_t batch_size = (batchable.size() + 4 * parallelism - 1) / (4 * parallelism);
    batch_size = std::clamp<size_t>(batch_size, 1, kDeleteBatch);
    const size_t batches = (batchable.size() + batch_size - 1) / batch_size;
    ParallelFor(batches, parallelism, [&](size_t b) {
      std::vector<std::string> batch(
          batchable.begin() + static_cast<std::ptrdiff_t>(b * batch_size),
          batchable.begin() +
              static_cast<std::ptrdiff_t>(std::min(batchable.size(), (b + 1) * batch_size)));
      BatchOutcome outcome = DeleteBatchAdaptive(batch, watch);
      std::lock_guard<std::mutex> lock(mu);
      result.requests += outcome.requests;
      if (outcome.unsupported) {
        if (!multi_delete_unsupported_.exchange(true)) {
          RESPAWN_LOG(kInfo, Url() << ": the server does not implement DeleteObjects; deleting "
                                      "keys one by one");
        }
        singles.insert(singles.end(), batch.begin(), batch.end());
        return;
      }
      result.deleted += outcome.deleted;
      for (auto& f : outcome.failed) result.failed.push_back(std::move(f));
    });
    result.requests += singles.size();
    ParallelFor(singles.size(), parallelism, [&](size_t i) {
      Status s = watch.GiveUp();
      if (s.ok()) {
        s = DeleteFull(FullKey(singles[i]));
        if (s.ok()) {
          watch.Succeeded();
        } else {
          watch.Failed(s);
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      if (s.ok()) {
        ++result.deleted;
      } else {
        result.failed.emplace_back(singles[i], s);
      }
    });
    return result;
  }

  // ---------------------------------------------------------------------------------------------
  // Bucket lifecycle configuration (bucket-wide: the prefix does not apply).

  // A request on a bucket subresource (?delete, ?lifecycle) carrying the XML document `xml`
  // (in `body`, which must outlive the request); S3 requires Content-MD5 on these.
  static S3Request BucketXmlRequest(std::string method, std::string subresource,
                                    const std::string& xml, StringBody* body) {
    S3Request req;
    req.method = std::move(method);
    req.key = "";
    req.query = {{std::move(subresource), ""}};
    req.body = body;
    req.payload_hash = Sha256Hex(xml);
    req.headers = {{"content-md5", Base64Encode(Md5(xml))}, {"content-type", "application/xml"}};
    return req;
  }

  Status NoLifecycleApi(const std::string& detail) const {
    return Unimplemented(http_->endpoint_display() +
                         " does not implement S3 bucket lifecycle configuration" + detail);
  }

  Result<std::string> GetBucketLifecycle() {
    S3Request req;
    req.key = "";
    req.query = {{"lifecycle", ""}};
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    if (resp.ok()) {
      // Servers without the API may ignore the subresource: Swift's s3api lists the bucket.
      if (!LifecycleRuleIds(resp.body).ok()) {
        return NoLifecycleApi(" (GET ?lifecycle did not return one)");
      }
      return resp.body;
    }
    if (resp.error.code == "NoSuchLifecycleConfiguration") return std::string();
    if (resp.status == 501 || resp.error.code == "NotImplemented") return NoLifecycleApi("");
    return http_->ErrorStatus(req, resp);
  }

  Status PutBucketLifecycle(const std::string& xml) {
    StringBody body(xml);
    S3Request req = BucketXmlRequest("PUT", "lifecycle", xml, &body);
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    if (resp.ok()) return Status::OK();
    if (resp.status == 501 || resp.error.code == "NotImplemented") return NoLifecycleApi("");
    return http_->ErrorStatus(req, resp);
  }

  // ---------------------------------------------------------------------------------------------
  // Probes.

  Status CheckBucket() {
    S3Request req;
    req.key = "";
    req.query = {{"list-type", "2"}, {"max-keys", "1"}};
    if (!config_.prefix.empty()) req.query.emplace_back("prefix", config_.prefix + "/");
    ASSIGN_OR_RETURN(S3Response resp, http_->Send(req));
    if (!resp.ok()) return http_->ErrorStatus(req, resp);
    bucket_exists_ = true;
    return Status::OK();
  }

  Result<bool> ProbePutIfAbsent() {
    std::lock_guard<std::mutex> lock(probe_mu_);
    int state = put_if_absent_.load();
    if (state != kUnknown) return state == kPresent;
    const std::string full = FullKey(".respawn-probe-put-if-absent-" + RandomHex());
    const std::string data = "respawn put-if-absent probe";

    PutOptions if_absent;
    if_absent.if_absent = true;
    S3Request first;
    ASSIGN_OR_RETURN(S3Response r1, PutBytes(first, full, data, if_absent, nullptr));
    if (r1.status == 501 || r1.error.code == "NotImplemented") {
      put_if_absent_ = kAbsent;
      return false;
    }
    // A 412 after an attempt that may have landed is our own probe: its key is random, nobody
    // else writes it (and the 412 itself shows the server honours If-None-Match).
    const bool landed_before = r1.status == 412 && r1.ambiguous;
    if (!r1.ok() && !landed_before) return http_->ErrorStatus(first, r1);
    bucket_exists_ = true;

    S3Request second;
    Result<S3Response> r2 = PutBytes(second, full, data, if_absent, nullptr);
    Status cleanup = DeleteFull(full);
    if (!cleanup.ok()) {
      RESPAWN_LOG(kWarn, "could not delete the put-if-absent probe " << http_->ObjectUrl(full)
                                                                     << ": " << cleanup.ToString());
    }
    if (!r2.ok()) return r2.status();
    bool supported;
    if (r2->status == 412) {
      supported = true;
    } else if (r2->ok() || r2->status == 501 || r2->error.code == "NotImplemented") {
      supported = false;  // a second create succeeded: the server ignores If-None-Match
    } else {
      return http_->ErrorStatus(second, *r2);
    }
    put_if_absent_ = supported ? kPresent : kAbsent;
    RESPAWN_LOG(kInfo, Url() << ": put-if-absent " << (supported ? "supported" : "not supported")
                             << " by " << http_->endpoint_display());
    return supported;
  }

 private:
  const S3Config config_;
  std::unique_ptr<S3Http> http_;

  std::mutex probe_mu_;
  std::atomic<int> put_if_absent_{kUnknown};
  std::atomic<bool> bucket_exists_{false};  // seen a 2xx or NoSuchKey from the bucket
  std::atomic<bool> multi_delete_unsupported_{false};
};

// ------------------------------------------------------------------------------------------------

Result<std::unique_ptr<S3Store>> S3Store::Open(S3Config config) {
  if (config.bucket.empty()) {
    return InvalidArgument("S3 bucket name is empty: use s3://bucket[/prefix]");
  }
  if (config.credentials.access_key_id.empty() || config.credentials.secret_access_key.empty()) {
    return FailedPrecondition("no AWS credentials for s3://" + config.bucket +
                              ": set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
                              "with ~/.aws/credentials");
  }
  while (!config.prefix.empty() && config.prefix.front() == '/') config.prefix.erase(0, 1);
  while (!config.prefix.empty() && config.prefix.back() == '/') config.prefix.pop_back();
  if (config.region.empty()) config.region = "us-east-1";
  config.parallelism = std::max(1, config.parallelism);
  config.part_size = std::max(config.part_size, kMinPartSize);
  ASSIGN_OR_RETURN(std::unique_ptr<S3Http> http, S3Http::Create(config));
  return std::unique_ptr<S3Store>(
      new S3Store(std::make_unique<Impl>(std::move(config), std::move(http))));
}

S3Store::S3Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
S3Store::~S3Store() = default;

const S3Config& S3Store::config() const { return impl_->config(); }
std::string S3Store::Url() const { return impl_->Url(); }
Capabilities S3Store::capabilities() const { return impl_->capabilities(); }
Status S3Store::Put(std::string_view key, std::string_view data, const PutOptions& o) {
  return impl_->Put(key, data, o);
}
Status S3Store::PutFile(std::string_view key, const std::string& path, const PutOptions& o) {
  return impl_->PutFile(key, path, o);
}
Result<std::string> S3Store::Get(std::string_view key, const GetOptions& o) {
  return impl_->Get(key, o);
}
Result<std::string> S3Store::GetRange(std::string_view key, uint64_t offset, uint64_t length) {
  return impl_->GetRange(key, offset, length);
}
Status S3Store::GetToFile(std::string_view key, const std::string& path, const GetOptions& o) {
  return impl_->GetToFile(key, path, o);
}
Result<ObjectInfo> S3Store::Stat(std::string_view key) { return impl_->Stat(key); }
Result<ListPage> S3Store::List(const ListOptions& o) { return impl_->List(o); }
Status S3Store::Delete(std::string_view key) { return impl_->Delete(key); }
Result<DeleteResult> S3Store::DeleteMany(const std::vector<std::string>& keys) {
  return impl_->DeleteMany(keys);
}
Result<bool> S3Store::ProbePutIfAbsent() { return impl_->ProbePutIfAbsent(); }
Status S3Store::CheckAccess() { return impl_->CheckBucket(); }
Result<std::string> S3Store::GetBucketLifecycle() { return impl_->GetBucketLifecycle(); }
Status S3Store::PutBucketLifecycle(const std::string& xml) {
  return impl_->PutBucketLifecycle(xml);
}

}  // namespace respawn
