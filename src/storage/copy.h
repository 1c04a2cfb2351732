// Copies objects between two Stores (or within one): a single object, or every object under a
// prefix, several objects in flight at once. Local files take part as a PosixStore.
//
// How an object moves:
// - below `stream_threshold` bytes: Get into memory, then Put;
// - at or above it, streamed through a file so it never sits in memory whole: when either side
//   has a local file for the object (Store::LocalPath: POSIX, through wrappers that forward
//   it; the chaos store does not) that file is used directly (dst.PutFile(src file) or
//   src.GetToFile(dst file)); otherwise src.GetToFile into a temporary file under `temp_dir`,
//   then dst.PutFile from it (S3 uses multipart on both legs).
//
// Failures are per object: a failed object never stops the others, and is reported in
// CopyResult::failures with its Status. An object whose copy failed verification (DataLoss: the
// bytes that arrived differ) is copied again, up to `object_attempts` times in all. A failed
// store call is not: the stores retry their own calls (store.h), and calling again here would
// multiply their attempts.
//
// Thread-safety: the stores must be safe for concurrent use (every Store is). The progress
// callback is never called concurrently with itself.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "storage/store.h"

namespace respawn {

enum class CopyVerify {
  kNone,      // trust the store's success
  kSize,      // Stat the destination; its size must equal the bytes written
  kReadBack,  // read the destination back and compare every byte (through an xxh3 for files)
};

struct CopyProgress {
  uint64_t objects_done = 0;  // finished, copied or failed
  uint64_t objects_total = 0;
  uint64_t objects_failed = 0;
  uint64_t bytes_done = 0;   // bytes of the objects' contents moved so far (approximate while
                             // objects are in flight: each leg of a streamed copy counts half)
  uint64_t bytes_total = 0;  // sum of the sizes the source listed
};

struct CopyOptions {
  int parallelism = 8;                     // objects in flight
  uint64_t stream_threshold = 8ull << 20;  // objects at least this large go through a file
  CopyVerify verify = CopyVerify::kNone;
  int object_attempts = 3;  // whole-object attempts when a copy does not verify (>= 1)
  std::string temp_dir;     // for streamed copies; "" = $TMPDIR, else /tmp
  /// Called after each object and, throttled (~20 times a second), while bytes move.
  std::function<void(const CopyProgress&)> progress;
  /// When it turns true no further object (or attempt) starts; objects in flight finish.
  /// Those never started are counted in CopyResult::objects_skipped. May be null.
  const std::atomic<bool>* cancel = nullptr;
};

/// One object to copy.
struct CopyItem {
  std::string src_key;
  std::string dst_key;
  uint64_t size = 0;  // as the source reported it (listing or Stat); decides how it is moved
};

struct CopyResult {
  uint64_t objects_total = 0;
  uint64_t objects_copied = 0;
  uint64_t objects_skipped = 0;  // not started because of cancellation
  uint64_t bytes_copied = 0;     // contents of the copied objects
  double seconds = 0;
  bool cancelled = false;
  std::vector<std::pair<std::string, Status>> failures;  // source key -> why it failed

  /// Every object copied and nothing was cancelled.
  bool ok() const { return failures.empty() && !cancelled; }
  Status FirstError() const { return failures.empty() ? Status::OK() : failures.front().second; }
};

/// Copies `src_key` of `src` to `dst_key` of `dst`. Errors about the source itself (NotFound from
/// Stat, an invalid key) are returned; a failure of the copy is in CopyResult::failures.
/// Copying an object onto itself is InvalidArgument.
Result<CopyResult> CopyObject(Store& src, std::string_view src_key, Store& dst,
                              std::string_view dst_key, const CopyOptions& options = {});

/// Copies every object under `src_prefix` to the same relative key under `dst_prefix`. A
/// non-empty prefix names a directory: "a/b" (or "a/b/") copies "a/b/x/y" to dst_prefix + "/x/y"
/// and leaves "a/bc" alone; an empty prefix means everything. Listing errors are returned;
/// an empty source is not an error (objects_total is 0).
Result<CopyResult> CopyPrefix(Store& src, std::string_view src_prefix, Store& dst,
                              std::string_view dst_prefix, const CopyOptions& options = {});

/// Copies the given items (the engine behind the two above).
CopyResult CopyObjects(Store& src, Store& dst, const std::vector<CopyItem>& items,
                       const CopyOptions& options = {});

/// Joins a prefix and a relative key with exactly one '/' ("" + "x" = "x", "a/" + "x" = "a/x").
std::string JoinKey(std::string_view prefix, std::string_view relative);

}  // namespace respawn
