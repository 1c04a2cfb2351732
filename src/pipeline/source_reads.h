// What a run reads from files, pinned when the run fingerprints them, so that a checkpoint
// describes exactly the data it was computed from.
//
// A file source is listed once, when the run fingerprints it, and then read from exactly that
// list: local files through a view over the listed paths (the glob is never expanded again),
// objects of a store downloaded with If-Match on the ETag that was fingerprinted (never listed
// again; a replaced object fails the download). A file that a stage's SQL reads by name
// (read_parquet('plans.parquet'), FROM 'data.csv') is listed and fingerprinted the same way;
// DuckDB reads it by the path (or glob) as written, made absolute (dag.h RunnableSql).
//
// After a stage (or an output) has read local files, and before anything it computed is
// committed, Verify* proves they are the files that were fingerprinted: each listed file has the
// same device, inode, size, mtime and ctime (ctime changes on every write and cannot be set
// back), and the same contents where they were hashed; a glob read inside SQL is listed again and
// must match the same files. Otherwise FailedPrecondition naming the file: the stage must fail
// rather than commit a checkpoint under a fingerprint that does not describe its data. A change
// made and undone while the stage read (same ctime granularity, same contents) is the one case
// this cannot see.
//
// Thread-safe.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/dag.h"
#include "pipeline/fingerprint.h"
#include "pipeline/spec.h"
#include "util/status.h"

namespace respawn {

/// "s3://b/p/x/*.csv" -> {"s3://b/p/x", "*.csv"}: the part up to the last '/' before the first
/// glob character names the store, the rest is the key (pattern) in it.
std::pair<std::string, std::string> SplitUrlPattern(const std::string& url);

/// The SELECT that reads a file source with its DuckDB reader (read_csv, read_parquet,
/// read_json) and reader options from `files` (absolute local paths; one, or several as a list).
std::string SourceSelectSql(const SourceSpec& source, const std::vector<std::string>& files);

class SourceReads {
 public:
  /// Lists `source` (a file source: local files or objects of a store URL), keeps the listing
  /// and returns its fingerprint. Errors: NotFound (nothing matches), store errors.
  Result<FingerprintComponents> FingerprintSource(const SourceSpec& source);

  /// Lists the file (or glob) a node's SQL reads by name, keeps the listing and returns
  /// FileListFingerprint of it. NotFound when nothing matches (unless `file.may_be_empty`).
  Result<Fingerprint> FingerprintFileRead(const DagFileRead& file);

  /// The SELECT reading exactly the files listed for `source` by FingerprintSource. Objects of a
  /// store are downloaded first into `download_dir` (created), pinned by If-Match to the ETags
  /// listed (FailedPrecondition naming the object when one changed) or, without ETags, checked
  /// against the size and contents listed. FailedPrecondition if `source` was not listed.
  Result<std::string> SourceSelect(const SourceSpec& source, const std::string& download_dir);

  /// OK when the local files listed for `source` are unchanged (see above); store sources are
  /// pinned at download and always OK. `reader` names who read them in the message.
  Status VerifySource(const SourceSpec& source, const std::string& reader);

  /// OK when the file (or glob) read by name still lists as it did, unchanged.
  Status VerifyFileRead(const DagFileRead& file, const std::string& reader);

 private:
  struct Listed {
    SourceListing listing;
    std::string store_url;  // "" for local files
  };

  std::mutex mu_;
  std::map<std::string, Listed> sources_;            // by source name; GUARDED_BY(mu_)
  std::map<std::string, SourceListing> file_reads_;  // by resolved path; GUARDED_BY(mu_)
};

}  // namespace respawn
