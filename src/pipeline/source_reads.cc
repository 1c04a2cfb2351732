#include "pipeline/source_reads.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <system_error>

#include "sql/engine.h"
#include "storage/store_url.h"
#include "util/glob.h"
#include "util/hash.h"

namespace respawn {
namespace {

std::string ReaderFunction(DataFormat format) {
  switch (format) {
    case DataFormat::kCsv:
      return "read_csv";
    case DataFormat::kParquet:
      return "read_parquet";
    case DataFormat::kJson:
      return "read_json";
  }
  return "read_csv";
}

// Why the local file `path` is not the one `was` describes; "" when it is.
std::string LocalFileChange(const std::string& path, const SourceFile& was) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? "it no longer exists"
                           : std::string("cannot stat it: ") + std::strerror(errno);
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  const int64_t mtime_ns =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  const int64_t ctime_ns =
      static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  if (static_cast<uint64_t>(st.st_dev) != was.device ||
      static_cast<uint64_t>(st.st_ino) != was.inode) {
    return "it was replaced by another file";
  }
  if (size != was.size) {
    return "its size changed from " + std::to_string(was.size) + " to " + std::to_string(size) +
           " bytes";
  }
  if (mtime_ns != was.mtime_ns || ctime_ns != was.ctime_ns) return "it was written to";
  if (was.has_content_hash) {
    Result<uint64_t> now = Xxh3File(path);
    if (!now.ok()) return "cannot read it again: " + now.status().message();
    if (*now != was.content_hash) return "its contents changed";
  }
  return "";
}

Status Changed(const std::string& reader, const std::string& file, const std::string& why) {
  return FailedPrecondition(reader + ": file " + file + " changed while this run read it (" + why +
                            "), so what was read is not what was fingerprinted; nothing computed "
                            "from it was committed; run again to read the current files");
}

}  // namespace

std::pair<std::string, std::string> SplitUrlPattern(const std::string& url) {
  GlobParts parts = SplitGlob(url);
  if (parts.dir.empty()) return {url, ""};
  parts.dir.remove_suffix(1);  // the '/' between the store URL and the key
  return {std::string(parts.dir), std::string(parts.pattern)};
}

std::string SourceSelectSql(const SourceSpec& source, const std::vector<std::string>& files) {
  std::string list;
  if (files.size() == 1) {
    list = QuoteLiteral(files[0]);
  } else {
    list = "[";
    for (size_t i = 0; i < files.size(); ++i) list += (i ? ", " : "") + QuoteLiteral(files[i]);
    list += "]";
  }
  std::string sql = "SELECT * FROM " + ReaderFunction(source.format) + "(" + list;
  for (const NamedValue& option : source.options) {
    sql += ", " + option.name + " = " + option.value.SqlLiteral();
  }
  return sql + ")";
}

Result<FingerprintComponents> SourceReads::FingerprintSource(const SourceSpec& source) {
  Listed listed;
  if (source.location.is_url) {
    auto [url, pattern] = SplitUrlPattern(source.location.resolved);
    ASSIGN_OR_RETURN(OpenedStore opened, OpenStore(url));
    ASSIGN_OR_RETURN(listed.listing, ListStoreSource(*opened.store, pattern));
    listed.store_url = url;
  } else {
    ASSIGN_OR_RETURN(listed.listing, ListLocalSource(source.location.resolved));
  }
  FingerprintComponents c =
      FileSourceFingerprint(listed.listing.files, source.format, source.options, EngineVersion());
  std::lock_guard<std::mutex> lock(mu_);
  sources_[source.name] = std::move(listed);
  return c;
}

Result<Fingerprint> SourceReads::FingerprintFileRead(const DagFileRead& file) {
  Result<SourceListing> listing = ListLocalSource(file.resolved);
  if (!listing.ok() && listing.status().IsNotFound() && file.may_be_empty) {
    listing = SourceListing{};
  }
  if (!listing.ok()) return listing.status();
  Fingerprint fp = FileListFingerprint(listing->files);
  std::lock_guard<std::mutex> lock(mu_);
  file_reads_[file.resolved] = std::move(*listing);
  return fp;
}

Result<std::string> SourceReads::SourceSelect(const SourceSpec& source,
                                              const std::string& download_dir) {
  Listed listed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sources_.find(source.name);
    if (it == sources_.end()) {
      return FailedPrecondition("source \"" + source.name + "\" is read before it was listed");
    }
    listed = it->second;
  }
  const SourceListing& l = listed.listing;
  std::vector<std::string> files;
  if (listed.store_url.empty()) {
    for (const SourceFile& f : l.files) files.push_back(l.base + f.path);
    return SourceSelectSql(source, files);
  }
  ASSIGN_OR_RETURN(OpenedStore opened, OpenStore(listed.store_url));
  std::error_code ec;
  std::filesystem::create_directories(download_dir, ec);
  if (ec) return Unavailable("cannot create " + download_dir + ": " + ec.message());
  for (size_t i = 0; i < l.files.size(); ++i) {
    const SourceFile& f = l.files[i];
    const std::string key = l.base + f.path;
    const std::string object = listed.store_url + "/" + key;
    const std::string ext = std::filesystem::path(f.path).extension().string();
    const std::string local = download_dir + "/" + std::to_string(i) + ext;
    GetOptions get;
    get.if_match = f.etag;  // the version fingerprinted, never a newer one
    RETURN_IF_ERROR(opened.store->GetToFile(key, local, get)
                        .WithContext("source \"" + source.name + "\": downloading " + object));
    if (f.etag.empty()) {
      // A store without ETags: the listing's size (and contents, when hashed) must match.
      ASSIGN_OR_RETURN(SourceListing downloaded, ListLocalSource(local));
      if (downloaded.files.empty()) return Internal("downloaded " + object + " is not at " + local);
      const SourceFile& got = downloaded.files.front();
      if (got.size != f.size ||
          (f.has_content_hash && (!got.has_content_hash || got.content_hash != f.content_hash))) {
        return FailedPrecondition("source \"" + source.name + "\": " + object +
                                  " changed since it was fingerprinted (its size or contents "
                                  "differ); run again to read the new version");
      }
    }
    files.push_back(local);
  }
  return SourceSelectSql(source, files);
}

Status SourceReads::VerifySource(const SourceSpec& source, const std::string& reader) {
  Listed listed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sources_.find(source.name);
    if (it == sources_.end() || !it->second.store_url.empty()) return Status::OK();
    listed = it->second;
  }
  for (const SourceFile& f : listed.listing.files) {
    const std::string path = listed.listing.base + f.path;
    std::string why = LocalFileChange(path, f);
    if (!why.empty()) return Changed(reader + " (source \"" + source.name + "\")", path, why);
  }
  return Status::OK();
}

Status SourceReads::VerifyFileRead(const DagFileRead& file, const std::string& reader) {
  SourceListing was;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = file_reads_.find(file.resolved);
    if (it == file_reads_.end()) {
      return FailedPrecondition(reader + " reads file " + file.written +
                                ", which was not fingerprinted");
    }
    was = it->second;
  }
  const std::string who = reader + " (reading " + file.written + ")";
  // A glob is expanded by DuckDB when the stage runs: the files it matches now must be the ones
  // listed.
  Result<SourceListing> now = ListLocalSource(file.resolved, /*content_hash_limit=*/0);
  if (!now.ok() && now.status().IsNotFound()) now = SourceListing{was.base, {}};
  if (!now.ok()) return now.status().WithContext(who);
  std::set<std::string> before;
  for (const SourceFile& f : was.files) before.insert(f.path);
  for (const SourceFile& f : now->files) {
    if (!before.count(f.path)) {
      return Changed(who, was.base + f.path, "it appeared, matching " + file.written);
    }
  }
  for (const SourceFile& f : was.files) {
    const std::string path = was.base + f.path;
    std::string why = LocalFileChange(path, f);
    if (!why.empty()) return Changed(who, path, why);
  }
  return Status::OK();
}

}  // namespace respawn
