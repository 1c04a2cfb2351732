// An object or prefix named on the command line: a local path, or a store URL split into the
// store's root and a key inside it.
//
//   /x/y/z, rel/path, file:///x/y/z   local (the caller decides which directory becomes the
//                                     store root: the parent of a file, or a directory itself)
//   s3://bucket/a/b                   store "s3://bucket", key "a/b"
//   memory://name/a/b                 store "memory://name", key "a/b"
//
// Keys are taken literally (no percent-decoding): s3://b/a%20b names the key "a%20b", as
// `aws s3` does.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace respawn::cli {

struct Location {
  std::string arg;  // as given
  bool local = false;
  std::string path;             // local: absolute and normalized, no trailing '/' (except "/")
  std::string store_url;        // store: the root URL
  std::string key;              // store: key or prefix inside the root; may be "" or end with '/'
  bool trailing_slash = false;  // `arg` ends with '/' (names a directory or prefix)

  /// The last non-empty '/'-separated segment of the path or key ("" for a root).
  std::string BaseName() const;
};

/// Parses without touching the disk or network. InvalidArgument names the argument and the fix.
Result<Location> ParseLocation(std::string_view arg);

enum class LocalKind { kMissing, kFile, kDirectory, kOther };
LocalKind KindOf(const std::string& path);

/// "/x/y" for "/x/y/z"; "/" for "/z".
std::string ParentPath(const std::string& path);
/// "z" for "/x/y/z".
std::string FileName(const std::string& path);
/// `key` under `store_url`, for messages: "s3://bucket/key".
std::string JoinUrl(const std::string& store_url, std::string_view key);

}  // namespace respawn::cli
