// A Store over any S3-compatible object store (AWS S3, Ceph radosgw, Swift s3api, ...), written
// on libcurl + OpenSSL because Debian packages no AWS SDK for C++.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "storage/store.h"
#include "util/retry.h"

namespace respawn {

struct S3Credentials {
  std::string access_key_id;
  std::string secret_access_key;  // never logged, never in an error message
  std::string session_token;      // optional (STS)
  std::string source;             // where they came from, for messages: "environment", "profile x"
};

struct S3Config {
  std::string bucket;
  std::string prefix;  // key prefix inside the bucket ("" or ends without '/'; joined with '/')
  std::string
      endpoint;  // "" = AWS (https://s3.REGION.amazonaws.com); else e.g. http://127.0.0.1:7480
  std::string region = "us-east-1";
  bool path_style = true;  // path-style for custom endpoints; virtual-hosted for AWS
  S3Credentials credentials;

  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds request_timeout{120000};  // whole request, per attempt (small ops)
  RetryPolicy retry;

  uint64_t multipart_threshold = 64ull << 20;  // PutFile uses multipart at or above this size
  uint64_t part_size = 16ull << 20;            // bytes per part (grown to stay <= 10,000 parts)
  int parallelism = 8;                         // parts / ranges / delete batches in flight
  uint64_t download_chunk = 16ull << 20;       // bytes per ranged GET of GetToFile
};

/// Fills endpoint, region and credentials the AWS way: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
/// AWS_SESSION_TOKEN; AWS_PROFILE (default "default") in ~/.aws/credentials and ~/.aws/config
/// (AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE override the paths); AWS_ENDPOINT_URL_S3 then
/// AWS_ENDPOINT_URL (or endpoint_url in the profile); AWS_REGION then AWS_DEFAULT_REGION (or
/// region in the profile). path_style is true when an endpoint is set, false for AWS.
/// RESPAWN_S3_MULTIPART_THRESHOLD and RESPAWN_S3_MULTIPART_CHUNKSIZE (bytes, or e.g. "8MB")
/// set multipart_threshold and part_size (parts are at least 5 MiB, S3's minimum); an
/// unparsable value is InvalidArgument naming the variable.
/// FailedPrecondition (with the fix) when no credentials are found.
Result<S3Config> S3ConfigFromEnvironment(const std::string& bucket, const std::string& prefix);

class S3Store : public Store {
 public:
  using Store::Get;
  using Store::GetToFile;
  using Store::Put;
  using Store::PutFile;

  static Result<std::unique_ptr<S3Store>> Open(S3Config config);
  ~S3Store() override;

  const S3Config& config() const;

  std::string Url() const override;  // "s3://bucket/prefix"
  /// put_if_absent is probed once (lazily, on first use or by ProbePutIfAbsent): servers that
  /// answer 501 to If-None-Match (Swift) report it as absent.
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

  /// Finds out whether the server honours If-None-Match: * (writes and deletes one probe key
  /// under the prefix). Cached; capabilities() reflects the answer afterwards.
  Result<bool> ProbePutIfAbsent();
  /// Checks the bucket exists and the credentials work (HEAD bucket / a 1-key list).
  Status CheckAccess();

  /// The bucket's lifecycle configuration (XML), "" when it has none. Unimplemented when the
  /// server has no lifecycle API (Swift s3api answers 501).
  Result<std::string> GetBucketLifecycle();
  /// Replaces the bucket's whole lifecycle configuration with `xml` (PUT ?lifecycle; S3 has no
  /// conditional form, so merge with GetBucketLifecycle first: MergeLifecycleRules).
  Status PutBucketLifecycle(const std::string& xml);

 private:
  class Impl;
  explicit S3Store(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace respawn
