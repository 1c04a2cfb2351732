#include "pipeline/outputs.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>  // renameat2
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <vector>

#include "ledger/data.h"
#include "pipeline/schema.h"
#include "storage/store_url.h"
#include "util/crash_point.h"
#include "util/hash.h"

namespace respawn {
namespace {

Status FsyncPath(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return FailedPrecondition("cannot open " + path + " to sync it");
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return FailedPrecondition("fsync of " + path + " failed");
  return Status::OK();
}

// Removes a file, or a folder with what it holds (a partitioned output's).
void RemoveQuietly(const std::string& path) {
  std::error_code ignored;
  std::filesystem::remove_all(path, ignored);
}

// A partitioned output's folder as one digest: its files' relative paths, sizes and XXH3s, in
// path order; `size` is their total. NotFound when the folder does not exist.
Result<FileDigest> DigestTree(const std::string& dir) {
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return NotFound(dir + " is not a folder");
  std::vector<std::string> files;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_regular_file(ec)) {
      files.push_back(std::filesystem::relative(it->path(), dir, ec).string());
    }
  }
  if (ec) return FailedPrecondition("cannot list " + dir + ": " + ec.message());
  std::sort(files.begin(), files.end());
  FileDigest total;
  std::string listing;
  for (const std::string& f : files) {
    ASSIGN_OR_RETURN(FileDigest d, DigestFile(dir + "/" + f));
    total.size += d.size;
    listing += f + '\0' + std::to_string(d.size) + '\0' + HexU64(d.xxh3) + '\n';
  }
  total.xxh3 = Xxh3(listing);
  return total;
}

Result<FileDigest> DigestOutput(const OutputSpec& out, const std::string& path) {
  return out.partition_by.empty() ? DigestFile(path) : DigestTree(path);
}

// Makes every file of the folder `dir` and the folders themselves durable.
Status FsyncTree(const std::string& dir) {
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    RETURN_IF_ERROR(FsyncPath(it->path().string(), it->is_directory(ec)));
  }
  if (ec) return FailedPrecondition("cannot list " + dir + ": " + ec.message());
  return FsyncPath(dir, true);
}

// Puts the folder `tmp` in place of `path` in one step: renameat2(RENAME_EXCHANGE) swaps the two
// atomically (readers see the old folder or the new one, never a mix), then the old one, now at
// `tmp`, is removed. A plain rename when nothing is at `path` yet.
Status ReplaceFolder(const std::string& tmp, const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::symlink_status(path, ec))) {
    std::filesystem::rename(tmp, path, ec);
    return ec ? FailedPrecondition("cannot move " + tmp + " to " + path + ": " + ec.message())
              : Status::OK();
  }
  if (::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, path.c_str(), RENAME_EXCHANGE) != 0) {
    return FailedPrecondition("cannot swap " + tmp + " with " + path + ": " +
                              std::generic_category().message(errno));
  }
  RemoveQuietly(tmp);
  return Status::OK();
}

// What the output entry's fingerprint records (OutputSpec::ContentId).
std::string ContentId(const OutputSpec& out, const NodeReport& node) {
  return out.ContentId(node.fingerprint);
}

// Whether the object at the URL `path` is the one `meta` records.
bool UrlOutputIsCurrent(const std::string& path, const OutputMeta& meta, OutputReport* r) {
  auto [url, key] = SplitUrlPattern(path);
  Result<OpenedStore> opened = OpenStore(url);
  if (!opened.ok()) return false;
  Result<ObjectInfo> info = opened->store->Stat(key);
  if (!info.ok() || info->size != meta.size) return false;
  // The same version as written (S3 gives every overwrite a new ETag unless the bytes are the
  // same), else the content itself must match: a rewrite of equal size is not current.
  if (meta.etag.empty() || info->etag != meta.etag) {
    ledger::DataObject object{key, meta.size, meta.xxh3};
    if (!ledger::VerifyData(*opened->store, object, /*checksum=*/true).ok()) return false;
  }
  r->bytes = info->size;
  return true;
}

// The temporary file a local output is written to, beside `path` (its directory created), after
// removing the leftovers of killed runs whose pid is gone.
Result<std::string> LocalTempPath(const PipelineSpec& spec, const OutputSpec& out,
                                  const std::string& path) {
  std::filesystem::path p(path);
  std::error_code ec;
  std::filesystem::create_directories(p.parent_path(), ec);
  if (ec) {
    return FailedPrecondition(spec.Where(out.location.line) + ": output \"" + out.name +
                              "\": cannot create directory " + p.parent_path().string() + ": " +
                              ec.message());
  }
  // ".<name>.respawn-tmp-<pid>-<random>": a killed run's leftover is removed by the next
  // run that writes this output, once its pid is gone.
  std::string tmp_prefix = "." + p.filename().string() + ".respawn-tmp-";
  for (const auto& entry : std::filesystem::directory_iterator(p.parent_path(), ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(tmp_prefix, 0) != 0) continue;
    pid_t owner = static_cast<pid_t>(std::atol(name.c_str() + tmp_prefix.size()));
    if (owner > 0 && owner != ::getpid() && ::kill(owner, 0) != 0 && errno == ESRCH) {
      std::filesystem::remove_all(entry.path(), ec);  // a file, or a partitioned output's folder
    }
  }
  return p.parent_path().string() + "/" + tmp_prefix + std::to_string(::getpid()) + "-" +
         ledger::NewRandomId().substr(0, 8);
}

// COPYs the table `table` to `tmp` in the output's format; removes `tmp` on failure.
Status CopyToFile(const PipelineSpec& spec, const OutputSpec& out, std::string_view table,
                  Connection& conn, const std::string& tmp) {
  const std::string& options = out.copy_options;  // from the pipeline file (spec.h)
  // A Parquet output keeps the stage's types where Parquet has them (sql/parquet_types.h).
  Result<std::string> select = "SELECT * FROM " + QuoteIdentifier(table);
  if (out.format == DataFormat::kParquet) select = ParquetOutputQuery(conn, *select);
  Status copied =
      select.ok()
          ? conn.Execute("COPY (" + *select + ") TO " + QuoteLiteral(tmp) + " (" + options + ")")
          : select.status();
  if (!copied.ok()) {
    RemoveQuietly(tmp);
    return copied.WithContext(spec.Where(out.line) + ": output \"" + out.name + "\"");
  }
  return Status::OK();
}

// Puts or renames `tmp` into place; `*etag` gets the version a URL output was written as.
Status Publish(const OutputSpec& out, const OutputTarget& target, const std::string& tmp,
               const FileDigest& digest, std::string* etag) {
  const std::string& path = target.path;
  if (target.is_url) {
    auto [url, key] = SplitUrlPattern(path);
    Result<OpenedStore> opened = OpenStore(url);
    Status put = opened.ok() ? opened->store->PutFile(key, tmp) : opened.status();
    RemoveQuietly(tmp);
    if (!put.ok()) return put.WithContext("output \"" + out.name + "\" to " + path);
    // The version written: while the object keeps it, its content is ours (IsOutputCurrent).
    Result<ObjectInfo> info = opened->store->Stat(key);
    if (info.ok() && info->size == digest.size) *etag = info->etag;
    return Status::OK();
  }
  if (!out.partition_by.empty()) {
    Status replaced = FsyncTree(tmp);
    if (replaced.ok()) replaced = ReplaceFolder(tmp, path);
    if (!replaced.ok()) {
      RemoveQuietly(tmp);
      return replaced.WithContext("output \"" + out.name + "\"");
    }
    FsyncPath(std::filesystem::path(path).parent_path().string(), true).IgnoreError();
    return Status::OK();
  }
  RETURN_IF_ERROR(FsyncPath(tmp, false));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    RemoveQuietly(tmp);
    return FailedPrecondition("output \"" + out.name + "\": cannot move the new file to " + path +
                              ": " + ec.message());
  }
  FsyncPath(std::filesystem::path(path).parent_path().string(), true).IgnoreError();
  return Status::OK();
}

}  // namespace

bool IsOutputCurrent(const OutputEnv& env, size_t index, const NodeReport& node, OutputReport* r) {
  const OutputSpec& out = env.spec->outputs[index];
  r->name = out.name;
  r->path = out.location.resolved;
  const std::string entry = OutputEntryName(out.name);
  std::optional<ledger::Entry> previous = env.ledger->Find(entry);
  if (env.fresh || !previous || previous->fingerprint != ContentId(out, node)) return false;
  Result<OutputMeta> meta = DecodeOutputMeta(previous->meta, entry);
  if (!meta.ok() || meta->path != r->path) return false;
  if (out.location.is_url) return UrlOutputIsCurrent(r->path, *meta, r);
  Result<FileDigest> digest = DigestOutput(out, r->path);
  if (!digest.ok() || digest->size != meta->size || digest->xxh3 != meta->xxh3) return false;
  r->bytes = digest->size;
  return true;
}

Result<WrittenOutputFile> WriteOutputFile(const PipelineSpec& spec, const OutputSpec& out,
                                          std::string_view table, Connection& conn,
                                          const OutputTarget& target,
                                          const std::function<Status()>& before_publish) {
  std::string tmp =
      target.temp_dir + "/output-" + out.name + "." + std::string(DataFormatName(out.format));
  if (!target.is_url) {
    ASSIGN_OR_RETURN(tmp, LocalTempPath(spec, out, target.path));
  }
  RETURN_IF_ERROR(CopyToFile(spec, out, table, conn, tmp));
  WrittenOutputFile written;
  Result<FileDigest> digest = DigestOutput(out, tmp);
  Status ready = digest.status();
  if (ready.ok() && before_publish) ready = before_publish();
  if (!ready.ok()) {
    RemoveQuietly(tmp);
    return ready;
  }
  written.digest = *digest;
  RETURN_IF_ERROR(Publish(out, target, tmp, written.digest, &written.etag));
  return written;
}

Status WriteOutput(const OutputEnv& env, size_t index, const NodeReport& node, Connection& conn,
                   OutputReport* r) {
  const OutputSpec& out = env.spec->outputs[index];
  if (IsOutputCurrent(env, index, node, r) && node.action != NodeAction::kComputed) {
    return Status::OK();
  }
  RETURN_IF_ERROR(env.tables->Ensure(conn, env.dag->output_nodes()[index]));
  CrashPoint<"runner:before-output">();
  const auto start = std::chrono::steady_clock::now();
  const OutputTarget target{r->path, out.location.is_url, env.temp_dir};
  const std::string where = env.spec->Where(out.line) + ": output \"" + out.name + "\"";
  auto before_publish = [&]() -> Status {
    if (node.action == NodeAction::kSource) {
      const int v = env.dag->output_nodes()[index];
      Status same = env.reads->VerifySource(env.spec->sources[env.dag->node(v).spec_index], where);
      if (!same.ok()) return same.WithContext(where);
    }
    // Outputs are outside the ledger: check this run still holds its epoch right before one is
    // published, so a zombie does not overwrite the output of the run that took over.
    return env.ledger->CheckNotFenced().WithContext("output \"" + out.name + "\" not written");
  };
  ASSIGN_OR_RETURN(WrittenOutputFile written,
                   WriteOutputFile(*env.spec, out, node.name, conn, target, before_publish));
  r->written = true;
  r->bytes = written.digest.size;
  r->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CrashPoint<"runner:after-output">();

  ledger::Changes changes;
  ledger::Entry entry;
  entry.fingerprint = ContentId(out, node);
  entry.meta = EncodeOutputMeta({r->path, written.digest.size, written.digest.xxh3, written.etag});
  changes.upserts[OutputEntryName(out.name)] = entry;
  return env.ledger->Commit(changes).status().WithContext("committing output " + out.name);
}

}  // namespace respawn
