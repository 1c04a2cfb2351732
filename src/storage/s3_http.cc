#include "storage/s3_http.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "util/log.h"
#include "util/retry.h"

namespace respawn {
namespace {

constexpr size_t kMaxErrorBody = 64 * 1024;
constexpr long kLargeDownloadBuffer = 1 << 20;  // curl's receive buffer for large GETs
constexpr long kLargeUploadBuffer = 1 << 20;    // curl's send buffer for large PUTs
constexpr uint64_t kWritebackChunk = 8ull << 20;
constexpr size_t kMaxIdleHandles = 64;

std::once_flag g_curl_init;

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (s.size() > 300) s = s.substr(0, 300) + "...";
  return s;
}

std::string Seconds(int64_t ms) {
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

bool RetryableCode(const std::string& code) {
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" ||
         code == "ServiceUnavailable" || code == "ConditionalRequestConflict" ||
         code == "OperationAborted" || code == "BadDigest" || code == "XAmzContentSHA256Mismatch";
}

bool RetryableHttp(long status, const std::string& code) {
  if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429) {
    return true;
  }
  return RetryableCode(code);
}

bool RetryableCurl(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_WEIRD_SERVER_REPLY:
      return true;
    default:
      return false;
  }
}

}  // namespace

// ----------------------------------------------------------------------------------------------
// Bodies and sinks.

bool StringBody::Seek(uint64_t offset) {
  if (offset > data_.size()) return false;
  pos_ = offset;
  return true;
}

int64_t StringBody::Read(char* buf, size_t n) {
  size_t k = std::min(n, data_.size() - pos_);
  std::memcpy(buf, data_.data() + pos_, k);
  pos_ += k;
  return static_cast<int64_t>(k);
}

bool FileRangeBody::Seek(uint64_t offset) {
  if (offset > length_) return false;
  pos_ = offset;
  return true;
}

int64_t FileRangeBody::Read(char* buf, size_t n) {
  size_t want = static_cast<size_t>(std::min<uint64_t>(n, length_ - pos_));
  size_t got = 0;
  while (got < want) {
    ssize_t r = ::pread(fd_, buf + got, want - got, static_cast<off_t>(offset_ + pos_ + got));
    if (r < 0) {
      if (errno == EINTR) continue;
      error_ = Internal("reading " + path_ + " at byte " + std::to_string(offset_ + pos_ + got) +
                        ": " + std::strerror(errno));
      return -1;
    }
    if (r == 0) {
      error_ = DataLoss(path_ + " shrank while it was being uploaded (expected " +
                        std::to_string(offset_ + length_) +
                        " bytes): do not change files that "
                        "are being written to the store");
      return -1;
    }
    got += static_cast<size_t>(r);
  }
  pos_ += got;
  return static_cast<int64_t>(got);
}

void StringSink::SizeHint(uint64_t bytes) {
  if (bytes <= (1ull << 32)) data_.reserve(static_cast<size_t>(bytes));
}

bool FileSink::Write(const char* data, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(fd_, data + done, n - done, static_cast<off_t>(offset_ + written_ + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      std::string msg = "writing " + path_ + ": " + std::strerror(e);
      error_ =
          (e == ENOSPC || e == EDQUOT) ? Unavailable(msg + " (free some space)") : Internal(msg);
      return false;
    }
    done += static_cast<size_t>(w);
  }
  written_ += n;
  if (writeback_ && written_ - flushed_ >= kWritebackChunk) {
    ::sync_file_range(fd_, static_cast<off_t>(offset_ + flushed_),
                      static_cast<off_t>(written_ - flushed_), SYNC_FILE_RANGE_WRITE);
    flushed_ = written_;
  }
  return true;
}

Status HashSink::Reset() {
  hash_ = std::make_unique<Xxh3Stream>();
  size_ = 0;
  return Status::OK();
}

bool HashSink::Write(const char* data, size_t n) {
  hash_->Update(std::string_view(data, n));
  size_ += n;
  return true;
}

std::string S3Response::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

std::string S3Response::Code(bool bucket_request) const {
  if (!error.code.empty()) return error.code;
  switch (status) {
    case 301:
      return "PermanentRedirect";
    case 400:
      return "BadRequest";
    case 403:
      return "AccessDenied";
    case 404:
      return bucket_request ? "NoSuchBucket" : "NoSuchKey";
    case 405:
      return "MethodNotAllowed";
    case 409:
      return "Conflict";
    case 412:
      return "PreconditionFailed";
    case 416:
      return "InvalidRange";
    case 501:
      return "NotImplemented";
    default:
      return "HTTP " + std::to_string(status);
  }
}

// ----------------------------------------------------------------------------------------------
// One attempt.

struct S3Http::Attempt {
  CURLcode curl = CURLE_OK;
  long os_errno = 0;
  long request_size = 0;  // bytes of request headers sent; 0: nothing reached the server
  char error_buffer[CURL_ERROR_SIZE] = {0};
  S3Response response;
  Status local;  // a body or sink failure
  int64_t timeout_ms = 0;
  int64_t connect_timeout_ms = 0;
  int sends = 0;  // times libcurl sent the request in this attempt (see Transfer::sends)
};

namespace {

// What the curl callbacks of one attempt share.
struct Transfer {
  CURL* curl = nullptr;
  S3Request* request = nullptr;
  S3Response* response = nullptr;
  bool status_known = false;
  bool success = false;
  uint64_t progress_bytes = 0;  // added to request->progress by this attempt
  // How often libcurl sent the request. It sends it again on its own, inside one
  // curl_easy_perform, when a reused connection dies before any byte of the answer arrives: the
  // first send may have reached the server (it may have stored the object and lost only the
  // answer), so more than one send makes the attempt ambiguous.
  int sends = 0;
  // What a callback caught. libcurl is C: an exception (from a sink, a body or the caller's
  // progress function) must not unwind through it, so the callback stops the transfer instead
  // and the attempt fails with this.
  std::string callback_error;
};

// Runs a callback's body; an exception becomes `t->callback_error` and the value that makes
// libcurl stop the transfer.
template <typename R, typename Fn>
R Guarded(Transfer* t, R stop, Fn&& fn) noexcept {
  try {
    return fn();
  } catch (const std::exception& e) {
    t->callback_error = e.what();
  } catch (...) {
    t->callback_error = "an exception that is not a std::exception";
  }
  return stop;
}

void AddProgress(Transfer* t, size_t n) {
  S3Progress* p = t->request->progress;
  if (p == nullptr) return;
  t->progress_bytes += n;
  uint64_t done = p->done.fetch_add(n) + n;
  if (p->fn != nullptr && *p->fn) (*p->fn)(done, p->total);
}

size_t OnWrite(char* data, size_t size, size_t nmemb, void* user) noexcept {
  auto* t = static_cast<Transfer*>(user);
  return Guarded(t, size_t{0}, [&]() -> size_t {
    size_t n = size * nmemb;
    if (!t->status_known) {
      long status = 0;
      curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
      t->status_known = true;
      t->success = status >= 200 && status < 300;
      if (t->success && t->request->sink != nullptr) {
        std::string length = t->response->Header("content-length");
        if (!length.empty()) t->request->sink->SizeHint(std::strtoull(length.c_str(), nullptr, 10));
      }
    }
    if (!t->success) {
      if (t->response->body.size() < kMaxErrorBody) t->response->body.append(data, n);
      return n;
    }
    if (t->request->sink != nullptr) {
      if (!t->request->sink->Write(data, n)) return 0;  // CURLE_WRITE_ERROR
    } else {
      t->response->body.append(data, n);
    }
    AddProgress(t, n);
    return n;
  });
}

size_t OnHeader(char* data, size_t size, size_t nmemb, void* user) noexcept {
  auto* t = static_cast<Transfer*>(user);
  return Guarded(t, size_t{0}, [&]() -> size_t {
    size_t n = size * nmemb;
    std::string_view line(data, n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.rfind("HTTP/", 0) == 0) {
      t->response->headers.clear();  // a new response (after 100 Continue)
      return n;
    }
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return n;
    std::string name(line.substr(0, colon));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
    t->response->headers.emplace_back(std::move(name), std::string(value));
    return n;
  });
}

size_t OnRead(char* buf, size_t size, size_t nitems, void* user) noexcept {
  auto* t = static_cast<Transfer*>(user);
  return Guarded(t, static_cast<size_t>(CURL_READFUNC_ABORT), [&]() -> size_t {
    int64_t got = t->request->body->Read(buf, size * nitems);
    if (got < 0) return CURL_READFUNC_ABORT;
    AddProgress(t, static_cast<size_t>(got));
    return static_cast<size_t>(got);
  });
}

int OnSeek(void* user, curl_off_t offset, int origin) noexcept {
  auto* t = static_cast<Transfer*>(user);
  return Guarded(t, static_cast<int>(CURL_SEEKFUNC_FAIL), [&]() -> int {
    if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
    if (offset == 0 && t->request->progress != nullptr) {
      // libcurl rewinds to send the body again: what it sent so far does not count.
      t->request->progress->done.fetch_sub(t->progress_bytes);
      t->progress_bytes = 0;
    }
    return t->request->body->Seek(static_cast<uint64_t>(offset)) ? CURL_SEEKFUNC_OK
                                                                 : CURL_SEEKFUNC_FAIL;
  });
}

int OnPrereq(void* user, char* /*primary_ip*/, char* /*local_ip*/, int /*primary_port*/,
             int /*local_port*/) noexcept {
  ++static_cast<Transfer*>(user)->sends;
  return CURL_PREREQFUNC_OK;
}

}  // namespace

// ----------------------------------------------------------------------------------------------

S3Http::S3Http(const S3Config& config)
    : config_(config),
      signer_(config.credentials.access_key_id, config.credentials.secret_access_key, config.region,
              "s3") {}

S3Http::~S3Http() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

Result<std::unique_ptr<S3Http>> S3Http::Create(const S3Config& config) {
  std::call_once(g_curl_init, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  std::unique_ptr<S3Http> http(new S3Http(config));
  if (config.endpoint.empty()) {
    http->scheme_ = "https";
    http->authority_ = "s3." + config.region + ".amazonaws.com";
    http->endpoint_display_ = "https://" + http->authority_;
    // Bucket names with dots break TLS name checks under virtual hosting.
    http->virtual_hosted_ = !config.path_style && config.bucket.find('.') == std::string::npos;
  } else {
    std::string_view url = config.endpoint;
    size_t sep = url.find("://");
    if (sep == std::string_view::npos) {
      return InvalidArgument("S3 endpoint '" + config.endpoint +
                             "' has no scheme: write it as http://host:port or https://host "
                             "(AWS_ENDPOINT_URL)");
    }
    http->scheme_ = std::string(url.substr(0, sep));
    for (char& c : http->scheme_)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (http->scheme_ != "http" && http->scheme_ != "https") {
      return InvalidArgument("S3 endpoint '" + config.endpoint + "' uses scheme '" + http->scheme_ +
                             "': only http and https work (AWS_ENDPOINT_URL)");
    }
    std::string_view rest = url.substr(sep + 3);
    size_t slash = rest.find('/');
    http->authority_ = std::string(rest.substr(0, slash));
    if (slash != std::string_view::npos) {
      std::string path(rest.substr(slash));
      while (!path.empty() && path.back() == '/') path.pop_back();
      http->base_path_ = path;
    }
    if (http->authority_.empty() || http->authority_.find('@') != std::string::npos) {
      return InvalidArgument("S3 endpoint '" + config.endpoint +
                             "' has no host (or holds user info): write it as "
                             "http://host:port (AWS_ENDPOINT_URL)");
    }
    http->endpoint_display_ = http->scheme_ + "://" + http->authority_ + http->base_path_;
    http->virtual_hosted_ = !config.path_style;
  }
  return http;
}

void* S3Http::AcquireHandle() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void S3Http::ReleaseHandle(void* handle) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdleHandles) {
      idle_.push_back(handle);
      return;
    }
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

std::string S3Http::ObjectUrl(std::string_view key) const {
  std::string url = "s3://" + config_.bucket;
  if (!key.empty()) {
    url.push_back('/');
    url.append(key);
  }
  return url;
}

S3Http::Attempt S3Http::Perform(S3Request& request, int64_t budget_ms, bool hard_budget) {
  Attempt a;
  CURL* curl = static_cast<CURL*>(AcquireHandle());
  if (curl == nullptr) {
    a.local = Internal("curl_easy_init failed (out of memory?)");
    return a;
  }
  curl_easy_reset(curl);

  // Where the request goes.
  std::string host = authority_;
  std::string path = base_path_;
  if (virtual_hosted_) {
    host = config_.bucket + "." + authority_;
    path += "/" + UriEncode(request.key, true);
  } else {
    path += "/" + UriEncode(config_.bucket, false);
    if (!request.key.empty()) path += "/" + UriEncode(request.key, true);
  }
  std::string query = CanonicalQueryString(request.query);
  std::string url = scheme_ + "://" + host + path;
  if (!query.empty()) url += "?" + query;

  // Signed headers.
  std::string payload_hash = request.payload_hash;
  if (payload_hash.empty()) {
    payload_hash =
        request.body == nullptr ? std::string(kEmptyPayloadSha256) : std::string(kUnsignedPayload);
  }
  const std::string amz_date = AmzDate(std::chrono::system_clock::now());
  SigV4Request to_sign;
  to_sign.method = request.method;
  to_sign.canonical_uri = path;
  to_sign.canonical_query = query;
  to_sign.payload_hash = payload_hash;
  to_sign.headers = request.headers;
  to_sign.headers.emplace_back("host", host);
  to_sign.headers.emplace_back("x-amz-date", amz_date);
  to_sign.headers.emplace_back("x-amz-content-sha256", payload_hash);
  if (!config_.credentials.session_token.empty()) {
    to_sign.headers.emplace_back("x-amz-security-token", config_.credentials.session_token);
  }
  SigV4Signature sig = signer_.Sign(to_sign, amz_date);

  curl_slist* header_list = nullptr;
  for (const auto& [name, value] : to_sign.headers) {
    header_list = curl_slist_append(header_list, (name + ": " + value).c_str());
  }
  header_list = curl_slist_append(header_list, ("Authorization: " + sig.authorization).c_str());
  header_list = curl_slist_append(header_list, "Expect:");  // no 100-continue round trip

  Transfer t;
  t.curl = curl;
  t.request = &request;
  t.response = &a.response;

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PATH_AS_IS, 1L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, a.error_buffer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, OnWrite);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_PREREQFUNCTION, OnPrereq);
  curl_easy_setopt(curl, CURLOPT_PREREQDATA, &t);

  a.connect_timeout_ms =
      std::max<int64_t>(1, std::min<int64_t>(config_.connect_timeout.count(), budget_ms));
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(a.connect_timeout_ms));
  if (request.large) {
    // Large transfers may take long; a stall of request_timeout (< 1 KiB/s) fails them.
    long stall_s = static_cast<long>(std::max<int64_t>(1, config_.request_timeout.count() / 1000));
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, stall_s);
    a.timeout_ms = stall_s * 1000;
    if (hard_budget) {
      a.timeout_ms = std::min<int64_t>(a.timeout_ms, budget_ms);
      curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(budget_ms));
    }
  } else {
    a.timeout_ms =
        std::max<int64_t>(1, std::min<int64_t>(config_.request_timeout.count(), budget_ms));
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(a.timeout_ms));
  }

  if (request.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    if (request.large) curl_easy_setopt(curl, CURLOPT_BUFFERSIZE, kLargeDownloadBuffer);
  } else if (request.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (request.method == "PUT" || request.method == "POST") {
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(request.body ? request.body->size() : 0));
    if (request.body != nullptr) {
      curl_easy_setopt(curl, CURLOPT_READFUNCTION, OnRead);
      curl_easy_setopt(curl, CURLOPT_READDATA, &t);
      curl_easy_setopt(curl, CURLOPT_SEEKFUNCTION, OnSeek);
      curl_easy_setopt(curl, CURLOPT_SEEKDATA, &t);
      if (request.large) curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, kLargeUploadBuffer);
    }
    if (request.method == "POST") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "POST");
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  }

  a.curl = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &a.response.status);
  curl_easy_getinfo(curl, CURLINFO_OS_ERRNO, &a.os_errno);
  curl_easy_getinfo(curl, CURLINFO_REQUEST_SIZE, &a.request_size);
  curl_slist_free_all(header_list);
  a.sends = t.sends;
  if (!t.callback_error.empty()) {
    a.local = Internal("S3 " + request.method + " " + ObjectUrl(request.key) +
                       ": stopped because a callback threw: " + t.callback_error);
  }

  if (!a.local.ok()) {
    // set above
  } else if (a.curl == CURLE_ABORTED_BY_CALLBACK && request.body != nullptr &&
             !request.body->error().ok()) {
    a.local = request.body->error();
  } else if (a.curl == CURLE_WRITE_ERROR && request.sink != nullptr &&
             !request.sink->error().ok()) {
    a.local = request.sink->error();
  }
  if (a.curl == CURLE_OK) {
    const bool success = a.response.status >= 200 && a.response.status < 300;
    if (!success || request.error_in_ok) ParseS3Error(a.response.body, &a.response.error);
  }
  // An attempt that does not stand gives its progress back.
  if ((a.curl != CURLE_OK || !a.response.ok()) && request.progress != nullptr) {
    request.progress->done.fetch_sub(t.progress_bytes);
  }
  // A connection that failed is not worth keeping.
  if (a.curl == CURLE_OK) {
    ReleaseHandle(curl);
  } else {
    curl_easy_cleanup(curl);
  }
  return a;
}

Result<S3Response> S3Http::Send(S3Request& request) {
  const auto start = std::chrono::steady_clock::now();
  RetryPolicy policy = config_.retry;
  const bool call_limit = request.deadline != std::chrono::steady_clock::time_point::max();
  if (call_limit) {
    policy.deadline =
        std::min(policy.deadline,
                 std::chrono::duration_cast<std::chrono::milliseconds>(request.deadline - start));
  }
  Backoff backoff(policy);
  bool ambiguous = false;
  for (int attempt = 1;; ++attempt) {
    if (request.body != nullptr && !request.body->Seek(0)) {
      return Internal("cannot rewind the request body of " + ObjectUrl(request.key));
    }
    if (request.sink != nullptr) RETURN_IF_ERROR(request.sink->Reset());
    const int64_t elapsed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now() - start)
                                   .count();
    // Without a call limit the last attempt still gets a second; with one, it ends in time.
    const int64_t budget_ms =
        std::max<int64_t>(call_limit ? 1 : 1000, policy.deadline.count() - elapsed_ms);
    RESPAWN_LOG(kDebug, "s3 request: " << request.method << " " << ObjectUrl(request.key));
    Attempt a = Perform(request, budget_ms, call_limit);
    if (!a.local.ok()) return a.local;
    if (a.sends > 1) {
      // libcurl resent the request after the connection died: the first may have landed.
      ambiguous = true;
      RESPAWN_LOG(kDebug, request.method << " " << ObjectUrl(request.key) << " attempt " << attempt
                                         << ": libcurl sent it " << a.sends
                                         << " times (a reused connection died)");
    }

    bool retry = false;
    if (a.curl != CURLE_OK) {
      retry = RetryableCurl(a.curl);
    } else {
      retry = RetryableHttp(a.response.status, a.response.error.code);
    }
    if (!retry) {
      if (a.curl != CURLE_OK) return TransportStatus(request, a, attempt);
      a.response.attempts = attempt;
      a.response.ambiguous = ambiguous;
      return std::move(a.response);
    }
    // Did the request reach the server? Only then may a write have landed.
    const bool never_sent = a.curl == CURLE_COULDNT_CONNECT ||
                            a.curl == CURLE_COULDNT_RESOLVE_HOST || a.request_size == 0 ||
                            a.response.error.code == "SlowDown";
    if (!never_sent) ambiguous = true;
    RESPAWN_LOG(kDebug, request.method
                            << " " << ObjectUrl(request.key) << " attempt " << attempt
                            << " failed ("
                            << (a.curl != CURLE_OK ? std::string(curl_easy_strerror(a.curl))
                                                   : "HTTP " + std::to_string(a.response.status) +
                                                         " " + a.response.error.code)
                            << "); retrying");
    if (!backoff.Next()) {
      if (a.curl != CURLE_OK) return TransportStatus(request, a, attempt);
      a.response.attempts = attempt;
      a.response.ambiguous = ambiguous;
      return std::move(a.response);
    }
  }
}

Status S3Http::TransportStatus(const S3Request& request, const Attempt& a, int attempts) const {
  const std::string what = ObjectUrl(request.key);
  const std::string tries =
      attempts == 1 ? std::string("1 attempt") : std::to_string(attempts) + " attempts";
  std::string detail = OneLine(a.error_buffer[0] != '\0' ? std::string(a.error_buffer)
                                                         : std::string(curl_easy_strerror(a.curl)));
  switch (a.curl) {
    case CURLE_COULDNT_CONNECT: {
      std::string reason = a.os_errno == ECONNREFUSED ? "connection refused"
                           : a.os_errno != 0          ? std::string(std::strerror(a.os_errno))
                                                      : detail;
      return Unavailable("cannot reach " + endpoint_display_ + " (" + reason + ") for " + what +
                         " after " + tries +
                         ": check AWS_ENDPOINT_URL and that the server is "
                         "running");
    }
    case CURLE_COULDNT_RESOLVE_HOST:
      return Unavailable("cannot resolve the host of " + endpoint_display_ + " for " + what +
                         " after " + tries + ": check AWS_ENDPOINT_URL and DNS");
    case CURLE_OPERATION_TIMEDOUT:
      if (a.request_size == 0) {
        return Unavailable("cannot reach " + endpoint_display_ + " (connect timed out after " +
                           Seconds(a.connect_timeout_ms) + ", the connect timeout) for " + what +
                           " after " + tries +
                           ": check AWS_ENDPOINT_URL and that the server is running");
      }
      if (request.large) {
        return DeadlineExceeded(what + ": " + request.method + " stalled (under 1 KiB/s for " +
                                Seconds(a.timeout_ms) + ", the request timeout) at " +
                                endpoint_display_ + " after " + tries +
                                ": check the server and the network");
      }
      return DeadlineExceeded(what + ": " + request.method + " got no answer within " +
                              Seconds(a.timeout_ms) + " (the request timeout) from " +
                              endpoint_display_ + " after " + tries +
                              ": check the server, or raise the timeout");
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SEND_FAIL_REWIND:
    case CURLE_WEIRD_SERVER_REPLY:
      return Unavailable(what + ": connection to " + endpoint_display_ + " failed during " +
                         request.method + " (" + detail + ") after " + tries);
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
      return Unavailable("TLS with " + endpoint_display_ + " failed for " + what + " (" + detail +
                         ") after " + tries + ": check the endpoint URL and its certificate");
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return InvalidArgument("S3 endpoint " + endpoint_display_ + " is unusable for " + what +
                             " (" + detail + "): fix AWS_ENDPOINT_URL");
    default:
      return Unavailable(what + ": " + request.method + " to " + endpoint_display_ + " failed (" +
                         detail + ") after " + tries);
  }
}

namespace {

// Errors the user fixes in the configuration (credentials, bucket, region), not by retrying.
Status Misconfigured(const Status& status) {
  return status.WithDetail(StatusDetail::kConfiguration);
}

}  // namespace

Status S3Http::ErrorStatus(const S3Request& request, const S3Response& response) const {
  const std::string what = ObjectUrl(request.key);
  const std::string code = response.Code(request.key.empty());
  const std::string message = OneLine(response.error.message);
  const std::string& key_id = config_.credentials.access_key_id;
  const std::string& source = config_.credentials.source;
  const std::string from = source.empty() ? "" : " (from " + source + ")";
  const std::string server_says = message.empty() ? "" : " (server: " + message + ")";
  const std::string tries =
      response.attempts > 1 ? " after " + std::to_string(response.attempts) + " attempts" : "";

  if (code == "SignatureDoesNotMatch") {
    return Misconfigured(
        PermissionDenied(what +
                         ": SignatureDoesNotMatch: the server rejected the request "
                         "signature; check the secret access key (AWS_SECRET_ACCESS_KEY or "
                         "the profile) for access key id " +
                         key_id + from));
  }
  if (code == "InvalidAccessKeyId" || code == "InvalidClientTokenId") {
    return Misconfigured(PermissionDenied(what + ": " + code +
                                          ": the server does not know access key id " + key_id +
                                          from + "; check AWS_ACCESS_KEY_ID (or the profile)"));
  }
  if (code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired") {
    return Misconfigured(PermissionDenied(what + ": " + code +
                                          ": the session token of access key id " + key_id + from +
                                          " is expired or invalid; get fresh credentials "
                                          "(AWS_SESSION_TOKEN)"));
  }
  if (code == "RequestTimeTooSkewed") {
    return Misconfigured(
        PermissionDenied(what + ": RequestTimeTooSkewed: this machine's clock differs from "
                                "the server's by more than 15 minutes; fix the clock (NTP)"));
  }
  if (code == "AccessDenied" || code == "AllAccessDisabled" || code == "AccountProblem") {
    return Misconfigured(PermissionDenied(what + ": " + code + ": access key id " + key_id + from +
                                          " may not " + request.method + " here" + server_says +
                                          "; check the user's permissions and the bucket policy"));
  }
  if (code == "NoSuchBucket") {
    return Misconfigured(FailedPrecondition("bucket '" + config_.bucket + "' does not exist at " +
                                            endpoint_display_ + ": create it (aws s3 mb s3://" +
                                            config_.bucket + ") or fix the URL"));
  }
  if (code == "NoSuchKey") return NotFound(what + ": no such object");
  if (code == "NoSuchUpload") {
    return NotFound(what +
                    ": NoSuchUpload: the multipart upload is gone (aborted or completed "
                    "by someone else)");
  }
  if (code == "PermanentRedirect" || code == "AuthorizationHeaderMalformed" ||
      code == "IllegalLocationConstraintException" || code == "TemporaryRedirect") {
    std::string where = response.Header("x-amz-bucket-region");
    return Misconfigured(
        FailedPrecondition(what + ": " + code + ": the bucket is not in region '" + config_.region +
                           "'" + (where.empty() ? "" : " but in '" + where + "'") + server_says +
                           "; set AWS_REGION to the bucket's region"));
  }
  if (code == "InvalidRange") return InvalidArgument(what + ": InvalidRange" + server_says);
  if (code == "PreconditionFailed") return AlreadyExists(what + ": the object already exists");
  if (code == "ConditionalRequestConflict" || code == "OperationAborted") {
    return Aborted(what + ": " + code +
                   ": a concurrent conditional write to the same key won or "
                   "is in flight" +
                   tries + "; re-read and retry the operation");
  }
  if (code == "NotImplemented") {
    return Unimplemented(what + ": the server at " + endpoint_display_ +
                         " does not implement this " + request.method + " request" + server_says);
  }
  if (code == "BadDigest" || code == "XAmzContentSHA256Mismatch") {
    return DataLoss(what + ": " + code +
                    ": the bytes the server received differ from the bytes "
                    "sent" +
                    tries +
                    "; check for a corrupting proxy or a file changed while "
                    "uploading");
  }
  if (code == "EntityTooLarge" || code == "EntityTooSmall" || code == "InvalidArgument" ||
      code == "KeyTooLongError" || code == "InvalidPart" || code == "InvalidPartOrder" ||
      code == "InvalidBucketName" || code == "MalformedXML" || code == "InvalidDigest" ||
      code == "InvalidRequest" || code == "MetadataTooLarge") {
    return InvalidArgument(what + ": " + code + server_says);
  }
  if (code == "QuotaExceeded" || code == "TooManyBuckets") {
    return FailedPrecondition(what + ": " + code + server_says + "; free space or raise the quota");
  }
  if (RetryableHttp(response.status, response.error.code)) {
    return Unavailable(what + ": " + request.method + " failed with HTTP " +
                       std::to_string(response.status) +
                       (response.error.code.empty() ? "" : " " + response.error.code) + tries +
                       " at " + endpoint_display_ + server_says);
  }
  return Internal(what + ": unexpected answer to " + request.method + ": HTTP " +
                  std::to_string(response.status) + " " + code + server_says);
}

}  // namespace respawn
