// The HTTP side of S3Store: SigV4-signed requests on a pool of reused libcurl easy handles, with
// per-request retries (util/retry.h Backoff) and the mapping of S3 errors to Status.
//
// Internal to src/storage (S3Store is the public face).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/s3_store.h"
#include "storage/s3_xml.h"
#include "storage/sigv4.h"
#include "util/hash.h"
#include "util/status.h"

namespace respawn {

/// A request body that can be sent again from its first byte: every retry rewinds it.
/// Not thread-safe; one per request in flight.
class S3Body {
 public:
  virtual ~S3Body() = default;
  virtual uint64_t size() const = 0;
  /// Moves to byte `offset` (0 = the start; curl also seeks when it resends on a new connection).
  virtual bool Seek(uint64_t offset) = 0;
  /// Copies up to `n` next bytes into `buf`: the count (0 at the end), or -1 with error() set.
  virtual int64_t Read(char* buf, size_t n) = 0;
  const Status& error() const { return error_; }

 protected:
  Status error_;
};

/// A body held in memory (not owned: `data` must outlive the request).
class StringBody final : public S3Body {
 public:
  explicit StringBody(std::string_view data) : data_(data) {}
  uint64_t size() const override { return data_.size(); }
  bool Seek(uint64_t offset) override;
  int64_t Read(char* buf, size_t n) override;

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

/// `length` bytes of an open file from `offset`, read with pread (so many bodies can share one
/// descriptor across threads). The descriptor is not owned.
class FileRangeBody final : public S3Body {
 public:
  FileRangeBody(int fd, std::string path, uint64_t offset, uint64_t length)
      : fd_(fd), path_(std::move(path)), offset_(offset), length_(length) {}
  uint64_t size() const override { return length_; }
  bool Seek(uint64_t offset) override;
  int64_t Read(char* buf, size_t n) override;

 private:
  int fd_;
  std::string path_;
  uint64_t offset_;
  uint64_t length_;
  uint64_t pos_ = 0;
};

/// Receives the body of a successful (2xx) response; Reset() starts over for a retry.
class S3Sink {
 public:
  virtual ~S3Sink() = default;
  virtual Status Reset() = 0;
  /// The Content-Length of the response, when the server sent one, before the first Write.
  virtual void SizeHint(uint64_t /*bytes*/) {}
  /// False aborts the transfer, with error() set.
  virtual bool Write(const char* data, size_t n) = 0;
  const Status& error() const { return error_; }

 protected:
  Status error_;
};

class StringSink final : public S3Sink {
 public:
  Status Reset() override {
    data_.clear();
    return Status::OK();
  }
  void SizeHint(uint64_t bytes) override;
  bool Write(const char* data, size_t n) override {
    data_.append(data, n);
    return true;
  }
  std::string& data() { return data_; }

 private:
  std::string data_;
};

/// Writes with pwrite at `offset` onwards into an open file (not owned). With `writeback`, asks
/// the kernel to start writing each 8 MiB to disk at once (sync_file_range), so a final fsync
/// has little left to wait for.
class FileSink final : public S3Sink {
 public:
  FileSink(int fd, std::string path, uint64_t offset, bool writeback)
      : fd_(fd), path_(std::move(path)), offset_(offset), writeback_(writeback) {}
  Status Reset() override {
    written_ = 0;
    flushed_ = 0;
    return Status::OK();
  }
  bool Write(const char* data, size_t n) override;
  uint64_t written() const { return written_; }

 private:
  int fd_;
  std::string path_;
  uint64_t offset_;
  bool writeback_;
  uint64_t written_ = 0;
  uint64_t flushed_ = 0;
};

/// Hashes the body (XXH3-64) instead of keeping it.
class HashSink final : public S3Sink {
 public:
  Status Reset() override;
  bool Write(const char* data, size_t n) override;
  uint64_t size() const { return size_; }
  uint64_t digest() const { return hash_ ? hash_->Digest() : 0; }

 private:
  std::unique_ptr<Xxh3Stream> hash_ = std::make_unique<Xxh3Stream>();
  uint64_t size_ = 0;
};

/// Shared progress of one store operation (parts and ranges add to it from many threads).
struct S3Progress {
  const ProgressFn* fn = nullptr;  // nullptr: nobody listens
  uint64_t total = 0;
  std::atomic<uint64_t> done{0};
};

struct S3Request {
  std::string method = "GET";
  std::string key;  // the full object key in the bucket; empty addresses the bucket itself
  QueryParams query;
  std::vector<std::pair<std::string, std::string>> headers;  // lowercase names, signed
  S3Body* body = nullptr;  // PUT/POST without a body send Content-Length: 0
  /// x-amz-content-sha256. Empty: the SHA-256 of the empty payload without a body, else
  /// UNSIGNED-PAYLOAD.
  std::string payload_hash;
  S3Sink* sink = nullptr;  // nullptr: a successful body lands in S3Response::body
  /// Moves many bytes: no whole-request timeout, but a stall of request_timeout fails it.
  bool large = false;
  /// A 200 may carry an <Error> document (CompleteMultipartUpload).
  bool error_in_ok = false;
  S3Progress* progress = nullptr;
  /// The store call's time limit (PutOptions::timeout): no attempt starts after it, and each
  /// attempt's timeouts (also a large transfer's) end by it. max(): only config.retry decides.
  std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
};

struct S3Response {
  long status = 0;
  std::string body;  // the body of an error, or of a success without a sink
  std::vector<std::pair<std::string, std::string>> headers;  // lowercase names
  S3ErrorBody error;                                         // parsed from an error body
  int attempts = 0;
  /// An earlier attempt failed after the request may have reached the server (a timeout or a
  /// reset mid-request, a 500), or libcurl itself sent the request again after a reused
  /// connection died: a write may have landed even though this answer says otherwise.
  bool ambiguous = false;

  bool ok() const { return status >= 200 && status < 300 && error.code.empty(); }
  /// The value of the header `name` (lowercase), "" when absent.
  std::string Header(std::string_view name) const;
  /// The S3 error code, or one derived from the status when the body had none (HEAD).
  std::string Code(bool bucket_request) const;
};

/// Thread-safe.
class S3Http {
 public:
  static Result<std::unique_ptr<S3Http>> Create(const S3Config& config);
  ~S3Http();
  S3Http(const S3Http&) = delete;
  S3Http& operator=(const S3Http&) = delete;

  /// Sends `request`, retrying transport failures, 5xx answers and the retryable S3 codes
  /// (SlowDown, RequestTimeout, InternalError, ...) within config.retry. Returns the final
  /// response whatever its HTTP status (turn failures into a Status with ErrorStatus), or a
  /// Status when no answer came (unreachable, timed out) or the body or sink failed locally.
  Result<S3Response> Send(S3Request& request);

  /// The Status of a failed response: codes as status.h defines them, one line, naming the
  /// object and the fix, never a secret.
  Status ErrorStatus(const S3Request& request, const S3Response& response) const;

  /// "s3://bucket/key" ("s3://bucket" for an empty key).
  std::string ObjectUrl(std::string_view key) const;
  /// The endpoint for messages: the configured URL, or https://s3.REGION.amazonaws.com.
  const std::string& endpoint_display() const { return endpoint_display_; }
  const S3Config& config() const { return config_; }

 private:
  struct Attempt;
  explicit S3Http(const S3Config& config);

  void* AcquireHandle();  // CURL*
  void ReleaseHandle(void* handle);
  /// One try; `budget_ms` caps its timeouts (what is left of the retry deadline), also a large
  /// transfer's when `hard_budget` (the call has a time limit of its own).
  Attempt Perform(S3Request& request, int64_t budget_ms, bool hard_budget);
  Status TransportStatus(const S3Request& request, const Attempt& attempt, int attempts) const;

  S3Config config_;
  SigV4Signer signer_;
  std::string scheme_;     // "http" or "https"
  std::string authority_;  // host[:port] of the endpoint
  std::string base_path_;  // path of the endpoint URL without a trailing '/'
  bool virtual_hosted_ = false;
  std::string endpoint_display_;

  std::mutex mu_;
  std::vector<void*> idle_;  // GUARDED_BY(mu_): CURL* handles with live connections
};

}  // namespace respawn
