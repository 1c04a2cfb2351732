// The XML documents of the S3 REST API that S3Store reads and writes (parsing with pugixml).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "storage/store.h"
#include "util/status.h"

namespace respawn {

struct S3ErrorBody {
  std::string code;     // "NoSuchKey", "SignatureDoesNotMatch", ...
  std::string message;  // the server's sentence
};

/// Parses an <Error> document; false when `xml` is none.
bool ParseS3Error(std::string_view xml, S3ErrorBody* out);

/// One page of ListObjectsV2. Keys and prefixes are the bucket's full keys, decoded when the
/// server used encoding-type=url.
struct S3ListResult {
  std::vector<ObjectInfo> objects;
  std::vector<std::string> common_prefixes;
  bool truncated = false;
  std::string next_token;
};
Result<S3ListResult> ParseListObjectsV2(std::string_view xml);

/// The UploadId of an InitiateMultipartUploadResult.
Result<std::string> ParseUploadId(std::string_view xml);

/// CompleteMultipartUpload body; etags[i] is the ETag (as returned, quotes included) of part i+1.
std::string BuildCompleteMultipartUpload(const std::vector<std::string>& etags);

/// Whether `key` survives an XML 1.0 document unchanged: no control characters (a '\r' would be
/// read back as '\n', most others are not allowed at all). Keys that do not go through
/// DeleteObject one by one.
bool XmlSafeKey(std::string_view key);

/// DeleteObjects body for `keys` (full keys, XmlSafeKey), in Quiet mode when `quiet`.
std::string BuildDeleteObjects(const std::vector<std::string>& keys, bool quiet);

struct S3DeleteError {
  std::string key;
  std::string code;
  std::string message;
};
/// The <Error> entries of a DeleteResult (Quiet mode lists only those).
Result<std::vector<S3DeleteError>> ParseDeleteResult(std::string_view xml);

/// One rule of a bucket lifecycle configuration, as respawn writes them (by key prefix).
struct LifecycleRule {
  std::string id;                         // unique in the bucket: rules are replaced by ID
  std::string prefix;                     // full key prefix the rule applies to
  int expiration_days = 0;                // > 0: delete objects this many days after creation
  int abort_incomplete_upload_days = 0;   // > 0: abort multipart uploads this many days old
};

/// A <LifecycleConfiguration> holding `rules`.
std::string BuildLifecycleConfiguration(const std::vector<LifecycleRule>& rules);

struct LifecycleMerge {
  std::string xml;   // the configuration to PUT
  int kept = 0;      // rules of `existing` left as they were (other IDs)
  int replaced = 0;  // rules of `existing` with one of our IDs, replaced by ours
};
/// `rules` merged into the bucket's `existing` configuration ("" for none): existing rules with
/// the ID of one of `rules` are replaced, all others are copied unchanged, so applying twice
/// changes nothing. InvalidArgument when `existing` is not a lifecycle configuration.
Result<LifecycleMerge> MergeLifecycleRules(std::string_view existing,
                                           const std::vector<LifecycleRule>& rules);

/// The IDs of the rules in a lifecycle configuration (for checking what the server kept).
Result<std::vector<std::string>> LifecycleRuleIds(std::string_view xml);

/// "2009-10-12T17:50:30.000Z" as Unix epoch milliseconds; 0 when unparsable.
int64_t ParseIso8601Ms(std::string_view text);

/// Escapes & < > " ' for XML text.
std::string XmlEscape(std::string_view text);

}  // namespace respawn
