// Opens a Store from a URL, with the wrappers the configuration asks for.
//
//   file:///abs/path         PosixStore at /abs/path
//   relative/path, /abs/path PosixStore (relative to the current directory)
//   s3://bucket[/prefix]     S3Store, configured from the environment (S3ConfigFromEnvironment)
//   memory://name            the process-wide MemoryStore "name"
//
// Wrapping order (innermost first): backend -> chaos (if a spec is given) -> retry -> metrics.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "storage/store.h"
#include "util/retry.h"

namespace respawn {

class MetricsStore;

enum class StoreScheme { kPosix, kS3, kMemory };

struct ParsedStoreUrl {
  StoreScheme scheme = StoreScheme::kPosix;
  std::string path;    // POSIX: absolute path; memory: name
  std::string bucket;  // S3
  std::string prefix;  // S3, without leading or trailing '/'
};

/// Parses without touching the network or disk. InvalidArgument names the URL and the fix.
/// A mistyped URL (StoreUrlNearMiss) is refused, never taken for a local directory.
Result<ParsedStoreUrl> ParseStoreUrl(std::string_view url);

/// When `text` looks like a mistyped store URL -- "s3:/bucket/x" or "s3:bucket" (slashes
/// missing), "s3//bucket" (colon missing) -- the message naming the right form; "" otherwise.
/// (Schemes are case-insensitive: "S3://bucket" is a URL.)
std::string StoreUrlNearMiss(std::string_view text);

struct OpenStoreOptions {
  bool retry = true;
  RetryPolicy retry_policy;
  /// Chaos spec (see chaos_store.h); empty means read RESPAWN_CHAOS from the environment.
  std::string chaos;
  bool metrics = true;
  /// For commands that only read: a local store root that does not exist is NotFound instead of
  /// being created.
  bool read_only = false;
};

struct OpenedStore {
  std::shared_ptr<Store> store;            // the outermost wrapper: use this
  std::shared_ptr<MetricsStore> metrics;   // null when options.metrics is false
  std::shared_ptr<Store> backend;          // the innermost backend (for capability probes)
};

Result<OpenedStore> OpenStore(std::string_view url, const OpenStoreOptions& options = {});

}  // namespace respawn
