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

/// "2009-10-12T17:50:30.000Z" as Unix epoch milliseconds; 0 when unparsable.
int64_t ParseIso8601Ms(std::string_view text);

/// Escapes & < > " ' for XML text.
std::string XmlEscape(std::string_view text);

}  // namespace respawn
