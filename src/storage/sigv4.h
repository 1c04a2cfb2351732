// AWS Signature Version 4 for S3 requests signed in the Authorization header.
//
// The caller builds the request (method, encoded path, query parameters, headers including host,
// x-amz-date and x-amz-content-sha256) and asks SigV4Signer for the Authorization value. Nothing
// here touches the network, so every step is checked against the published AWS examples in
// sigv4_test.cc.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace respawn {

/// SHA-256 of the empty string, the payload hash of requests without a body.
inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// x-amz-content-sha256 value that leaves the body out of the signature.
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

/// AWS URI encoding: the unreserved bytes A-Z a-z 0-9 - . _ ~ stay, every other byte becomes
/// %XX with uppercase hex digits. '/' stays too when `keep_slash` (object key paths).
std::string UriEncode(std::string_view s, bool keep_slash);

/// Reverses %XX escapes (invalid escapes stay as they are). With `plus_is_space`, '+' decodes to
/// a space: S3 listings with encoding-type=url are form-encoded on AWS, and servers that use %20
/// encode a literal '+' as %2B, so the rule is right for both.
std::string UriDecode(std::string_view s, bool plus_is_space);

using QueryParams = std::vector<std::pair<std::string, std::string>>;

/// The canonical query string: names and values UriEncode'd (with '/' encoded), sorted by name
/// then value, joined as "a=1&b=&c=x%20y". It is also the query string sent on the wire.
std::string CanonicalQueryString(const QueryParams& params);

/// "YYYYMMDDTHHMMSSZ" (the x-amz-date format) of a UTC time.
std::string AmzDate(std::chrono::system_clock::time_point t);

/// The signing key: HMAC chain over "AWS4" + secret, date (YYYYMMDD), region, service,
/// "aws4_request". Raw 32 bytes.
std::string SigV4SigningKey(std::string_view secret, std::string_view date,
                            std::string_view region, std::string_view service);

struct SigV4Request {
  std::string method;           // "GET", "PUT", ...
  std::string canonical_uri;    // the path exactly as sent, already encoded: "/bucket/a%20b"
  std::string canonical_query;  // CanonicalQueryString of the parameters ("" when none)
  /// Every header to sign, in any order and case; must include host, x-amz-date and
  /// x-amz-content-sha256. Values are trimmed and inner runs of spaces collapsed for signing.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string payload_hash;  // hex SHA-256 of the body, or kUnsignedPayload
};

/// Every intermediate value, for tests and debugging (none of them holds the secret).
struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signed_headers;  // "host;range;x-amz-content-sha256;x-amz-date"
  std::string signature;       // 64 hex digits
  std::string authorization;   // the Authorization header value
};

/// Signs requests for one access key, region and service. Thread-safe; caches the signing key
/// of the current day.
class SigV4Signer {
 public:
  SigV4Signer(std::string access_key_id, std::string secret_access_key, std::string region,
              std::string service = "s3");

  /// Signs `request` at `amz_date` ("YYYYMMDDTHHMMSSZ"), which must equal the request's
  /// x-amz-date header.
  SigV4Signature Sign(const SigV4Request& request, std::string_view amz_date) const;

  const std::string& access_key_id() const { return access_key_id_; }
  const std::string& region() const { return region_; }

 private:
  std::string SigningKeyFor(std::string_view date) const;

  std::string access_key_id_;
  std::string secret_access_key_;
  std::string region_;
  std::string service_;

  mutable std::mutex mu_;
  mutable std::string cached_date_;  // GUARDED_BY(mu_)
  mutable std::string cached_key_;   // GUARDED_BY(mu_)
};

}  // namespace respawn
