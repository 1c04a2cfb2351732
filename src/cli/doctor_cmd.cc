// `respawn doctor URL`: checks that a store works the way respawn needs it to, and says what
// to fix when it does not. Every probe object it writes is named "respawn-doctor-<id>-*" at the
// store root and deleted before it exits.
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "cli/common.h"
#include "cli/location.h"
#include "ledger/coordinator.h"
#include "storage/mounts.h"
#include "storage/s3_store.h"
#include "storage/store.h"
#include "util/hash.h"
#include "util/strings.h"
#include "util/thread_pool.h"

namespace respawn::cli {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

std::string Fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
  return buf;
}

std::string RandomBytes(size_t n, std::mt19937_64& rng) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = rng();
    for (size_t j = 0; j < 8 && i + j < n; ++j) s[i + j] = static_cast<char>(v >> (8 * j));
  }
  return s;
}

struct DoctorOptions {
  std::string url;
  std::string coordinator;  // "" = RESPAWN_COORDINATOR
  int throughput_mib = 64;
  int listing_keys = 20;
  int latency_gets = 20;
};

enum class CheckState { kOk, kWarn, kFail, kSkipped };

// Prints each check as it completes (or collects them for --json).
class Checklist {
 public:
  Checklist(bool json, bool tty) : json_(json), tty_(tty) {}

  void Add(const std::string& name, CheckState state, const std::string& detail,
           json data = json::object()) {
    const std::string clean = Redact(detail);
    if (state == CheckState::kFail) ++failed_;
    if (state == CheckState::kWarn) ++warnings_;
    ++count_;
    data["name"] = name;
    data["status"] = state == CheckState::kOk     ? "ok"
                     : state == CheckState::kWarn ? "warn"
                     : state == CheckState::kFail ? "fail"
                                                  : "skipped";
    data["detail"] = clean;
    checks_.push_back(std::move(data));
    if (json_) return;
    const char* mark;
    if (tty_) {
      mark = state == CheckState::kOk     ? "\u2713"
             : state == CheckState::kWarn ? "!"
             : state == CheckState::kFail ? "\u2717"
                                          : "-";
    } else {
      mark = state == CheckState::kOk     ? "ok  "
             : state == CheckState::kWarn ? "warn"
             : state == CheckState::kFail ? "FAIL"
                                          : "skip";
    }
    std::printf("%s %s: %s\n", mark, name.c_str(), clean.c_str());
    std::fflush(stdout);
  }

  bool failed() const { return failed_ > 0; }

  void Finish(const std::string& url) {
    if (json_) {
      json out{{"url", url}, {"ok", failed_ == 0}, {"checks", checks_}};
      std::string text = out.dump(2, ' ', false, json::error_handler_t::replace);
      std::printf("%s\n", text.c_str());
    } else if (failed_ == 0) {
      std::printf(
          "all %d checks passed%s\n", count_,
          warnings_ > 0 ? (" (" + std::to_string(warnings_) + " with warnings)").c_str() : "");
    } else {
      std::printf("%d of %d checks failed\n", failed_, count_);
    }
    std::fflush(stdout);
  }

 private:
  const bool json_;
  const bool tty_;
  json checks_ = json::array();
  int count_ = 0;
  int failed_ = 0;
  int warnings_ = 0;
};

// Filesystem names by statfs f_type (linux/magic.h and the filesystems' own headers).
std::string FilesystemName(int64_t type) {
  switch (static_cast<uint32_t>(type)) {
    case 0xEF53:
      return "ext4";  // also ext2/ext3
    case 0x58465342:
      return "xfs";
    case 0x9123683E:
      return "btrfs";
    case 0x2FC12FC1:
      return "zfs";
    case 0xF2F52010:
      return "f2fs";
    case 0x6969:
      return "nfs";
    case 0x01021994:
      return "tmpfs";
    case 0x794C7630:
      return "overlay";
    case 0xFF534D42:
      return "cifs";
    case 0xFE534D42:
      return "smb2";
    case 0x65735546:
      return "fuse";
    case 0x00C36400:
      return "ceph";
    case 0x0BD00BD0:
      return "lustre";
    case 0x47504653:
      return "gpfs";
    case 0x5346544E:
      return "ntfs";
    case 0x4D44:
      return "vfat";
    case 0x3153464A:
      return "jfs";
    case 0x52654973:
      return "reiserfs";
    case 0x858458F6:
      return "ramfs";
    case 0x01021997:
      return "9p";
    case 0x786F4256:
      return "virtiofs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof(buf), "unknown (f_type 0x%llx)",
                    static_cast<unsigned long long>(static_cast<uint32_t>(type)));
      return buf;
    }
  }
}

std::string Octal(unsigned mode) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04o", mode & 07777);
  return buf;
}

class Doctor {
 public:
  Doctor(const DoctorOptions& o, const GlobalOptions& g)
      : o_(o), g_(g), list_(g.json, IsTerminal(STDOUT_FILENO)), rng_(std::random_device{}()) {
    base_ = "respawn-doctor-" + HexU64(rng_()).substr(0, 8);
  }

  int Run();

 private:
  // Each returns false when the remaining checks cannot run.
  bool CheckLocalDirectory(const std::string& path);
  void CheckFilesystem(const std::string& path);
  void CheckNfsMount(const std::string& path);
  bool CheckS3(S3Store& s3);
  bool CheckWriteReadDelete();
  /// Returns whether the store can put-if-absent (nullopt when the check could not tell).
  std::optional<bool> CheckPutIfAbsent(S3Store* s3);
  void CheckCommitMode(std::optional<bool> put_if_absent);
  void CheckListing();
  void CheckLatency();
  void CheckThroughput();
  void Cleanup();
  bool Interrupted() const { return InterruptScope::interrupted(); }

  std::string Key(const std::string& suffix) {
    std::string key = base_ + "-" + suffix;
    created_.push_back(key);
    return key;
  }

  const DoctorOptions& o_;
  const GlobalOptions& g_;
  Checklist list_;
  std::mt19937_64 rng_;
  std::string base_;
  std::shared_ptr<Store> store_;
  std::vector<std::string> created_;  // probe keys to delete at the end
};

int Doctor::Run() {
  InterruptScope interrupt_scope;
  if (!g_.json) {
    std::printf("respawn doctor %s\n", o_.url.c_str());
    std::fflush(stdout);
  }
  Result<ParsedStoreUrl> parsed = ParseStoreUrl(o_.url);
  if (!parsed.ok()) {
    list_.Add("URL", CheckState::kFail, parsed.status().message());
    list_.Finish(o_.url);
    return Fail(parsed.status(), Phase::kConfig);
  }
  std::string what;
  switch (parsed->scheme) {
    case StoreScheme::kS3:
      what = "S3 bucket " + Quoted(parsed->bucket) +
             (parsed->prefix.empty() ? "" : ", prefix " + Quoted(parsed->prefix));
      break;
    case StoreScheme::kPosix:
      what = "directory " + parsed->path;
      break;
    case StoreScheme::kMemory:
      what = "memory store " + Quoted(parsed->path) + " (lives only as long as this process)";
      break;
  }
  list_.Add("URL", CheckState::kOk, what);

  if (parsed->scheme == StoreScheme::kPosix && !CheckLocalDirectory(parsed->path)) {
    list_.Finish(o_.url);
    return kExitFailed;
  }
  Result<OpenedStore> opened = OpenStoreForCli(o_.url, g_);
  if (!opened.ok()) {
    list_.Add("store opens", CheckState::kFail, opened.status().message());
    list_.Finish(o_.url);
    return Fail(opened.status(), Phase::kConfig);
  }
  store_ = opened->store;
  auto* s3 = dynamic_cast<S3Store*>(opened->backend.get());
  if (s3 != nullptr && !CheckS3(*s3)) {
    list_.Finish(o_.url);
    return kExitFailed;
  }
  if (parsed->scheme == StoreScheme::kPosix) CheckFilesystem(parsed->path);

  if (!Interrupted() && CheckWriteReadDelete()) {
    std::optional<bool> put_if_absent;
    if (!Interrupted()) put_if_absent = CheckPutIfAbsent(s3);
    if (!Interrupted()) CheckCommitMode(put_if_absent);
    if (!Interrupted()) CheckListing();
    if (!Interrupted()) CheckLatency();
    if (!Interrupted()) CheckThroughput();
  }
  Cleanup();
  list_.Finish(o_.url);
  if (Interrupted()) return kExitInterrupted;
  return list_.failed() ? kExitFailed : kExitOk;
}

bool Doctor::CheckLocalDirectory(const std::string& path) {
  switch (KindOf(path)) {
    case LocalKind::kDirectory:
      return true;
    case LocalKind::kMissing:
      list_.Add("directory exists", CheckState::kFail,
                path + " does not exist: create it (mkdir -p " + path +
                    ") or mount the shared filesystem there");
      return false;
    default:
      list_.Add("directory exists", CheckState::kFail,
                path + " exists but is not a directory: point the store at a directory");
      return false;
  }
}

// NFS client options that matter to the commit protocol (storage/mounts.h).
void Doctor::CheckNfsMount(const std::string& path) {
  std::ifstream in("/proc/self/mountinfo");
  std::stringstream text;
  text << in.rdbuf();
  std::error_code ec;
  std::string real = std::filesystem::canonical(path, ec).string();
  MountInfo mount = FindMount(text.str(), ec ? path : real);
  std::vector<std::string> warnings = NfsMountWarnings(mount);
  json detail{
      {"mount_point", mount.mount_point}, {"source", mount.source}, {"options", mount.options}};
  if (warnings.empty()) {
    list_.Add("nfs mount", CheckState::kOk,
              mount.mount_point + " from " + mount.source +
                  ": lookupcache and sync options suit respawn (check the server exports it with "
                  "`sync`, which a client cannot see)",
              detail);
    return;
  }
  for (const std::string& w : warnings) {
    list_.Add("nfs mount", CheckState::kWarn, mount.mount_point + " " + w, detail);
  }
}

void Doctor::CheckFilesystem(const std::string& path) {
  struct statfs fs;
  if (::statfs(path.c_str(), &fs) == 0) {
    std::string name = FilesystemName(static_cast<int64_t>(fs.f_type));
    std::string note;
    CheckState state = CheckState::kOk;
    if (name == "nfs" || name == "cifs" || name == "smb2" || name == "ceph" || name == "lustre" ||
        name == "gpfs" || name == "9p" || name == "virtiofs") {
      note =
          " (shared filesystem: attribute caches may delay listings; respawn commits with "
          "link(), which is atomic on NFS too)";
    } else if (name == "tmpfs" || name == "ramfs") {
      state = CheckState::kWarn;
      note =
          " (in memory: checkpoints are lost on reboot; use a disk or shared filesystem for "
          "anything that must survive the machine)";
    } else if (name == "overlay") {
      state = CheckState::kWarn;
      note =
          " (a container's writable layer: checkpoints vanish with the container; mount a "
          "volume)";
    }
    list_.Add("filesystem", state, name + note, json{{"type", name}});
    if (name == "nfs") CheckNfsMount(path);
  } else {
    list_.Add("filesystem", CheckState::kWarn,
              std::string("statfs failed: ") + std::strerror(errno));
  }

  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    const unsigned euid = ::geteuid(), egid = ::getegid();
    std::string detail = "owner uid " + std::to_string(st.st_uid) + " gid " +
                         std::to_string(st.st_gid) + " mode " + Octal(st.st_mode) +
                         "; this process runs as uid " + std::to_string(euid) + " gid " +
                         std::to_string(egid);
    json data{{"uid", st.st_uid},
              {"gid", st.st_gid},
              {"mode", Octal(st.st_mode)},
              {"euid", euid},
              {"egid", egid}};
    if (st.st_uid != euid || st.st_gid != egid) {
      list_.Add("ownership", st.st_uid != euid ? CheckState::kWarn : CheckState::kOk,
                detail + (st.st_uid != euid
                              ? ": a mismatched uid on a shared mount is the classic permission "
                                "denied when checkpointing: chown the directory or run as uid " +
                                    std::to_string(st.st_uid)
                              : " (group differs; fine while the owner can write)"),
                data);
    } else {
      list_.Add("ownership", CheckState::kOk, detail, data);
    }
  }

  struct statvfs vfs;
  if (::statvfs(path.c_str(), &vfs) == 0) {
    uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    uint64_t total = static_cast<uint64_t>(vfs.f_blocks) * vfs.f_frsize;
    bool low = avail < (1ull << 30);
    list_.Add("free space", low ? CheckState::kWarn : CheckState::kOk,
              FormatBytes(avail) + " free of " + FormatBytes(total) +
                  (low ? " (below 1 GiB: checkpoints will fail with ENOSPC soon)" : ""),
              json{{"free_bytes", avail}, {"total_bytes", total}});
  }
}

bool Doctor::CheckS3(S3Store& s3) {
  const S3Config& c = s3.config();
  std::string endpoint =
      c.endpoint.empty() ? "AWS (s3." + c.region + ".amazonaws.com)" : c.endpoint;
  list_.Add(
      "credentials", CheckState::kOk,
      "from " +
          (c.credentials.source.empty() ? std::string("unknown source") : c.credentials.source) +
          ", access key id " + c.credentials.access_key_id +
          (c.credentials.session_token.empty() ? "" : " (with a session token)") + "; endpoint " +
          endpoint + ", region " + c.region,
      json{{"source", c.credentials.source},
           {"access_key_id", c.credentials.access_key_id},
           {"endpoint", endpoint},
           {"region", c.region}});
  auto start = Clock::now();
  Status access = s3.CheckAccess();
  if (!access.ok()) {
    list_.Add("store reachable", CheckState::kFail, access.message());
    return false;
  }
  list_.Add("store reachable", CheckState::kOk,
            "bucket " + Quoted(c.bucket) + " answers with these credentials (" +
                Fixed(MsSince(start), 1) + " ms)");
  return true;
}

bool Doctor::CheckWriteReadDelete() {
  const std::string key = Key("probe");
  const std::string data = RandomBytes(4096, rng_);
  const std::string name = "write/read/delete";
  if (Status s = store_->Put(key, data); !s.ok()) {
    list_.Add(name, CheckState::kFail, "cannot write " + Quoted(key) + ": " + s.message());
    return false;
  }
  Result<std::string> back = store_->Get(key);
  if (!back.ok()) {
    list_.Add(name, CheckState::kFail,
              "wrote " + Quoted(key) + " but cannot read it back: " + back.status().message());
    return false;
  }
  if (*back != data) {
    list_.Add(name, CheckState::kFail,
              "read back " + std::to_string(back->size()) + " bytes of " + Quoted(key) +
                  " that differ from the " + std::to_string(data.size()) +
                  " written: the store corrupts data");
    return false;
  }
  if (Status s = store_->Delete(key); !s.ok()) {
    list_.Add(name, CheckState::kFail, "cannot delete " + Quoted(key) + ": " + s.message());
    return false;
  }
  Result<ObjectInfo> gone = store_->Stat(key);
  if (gone.ok()) {
    list_.Add(name, CheckState::kFail, Quoted(key) + " is still there after a successful delete");
    return false;
  }
  if (!gone.status().IsNotFound()) {
    list_.Add(name, CheckState::kFail, "stat after delete failed: " + gone.status().message());
    return false;
  }
  list_.Add(name, CheckState::kOk, "4 KiB probe object written, read back identical, deleted");
  return true;
}

std::optional<bool> Doctor::CheckPutIfAbsent(S3Store* s3) {
  const std::string name = "put-if-absent";
  const std::string fallback =
      "not supported: commits need a commit coordinator (or --single-writer); see the commit "
      "mode below";
  if (s3 != nullptr) {
    Result<bool> supported = s3->ProbePutIfAbsent();
    if (!supported.ok()) {
      list_.Add(name, CheckState::kFail, "probe failed: " + supported.status().message());
      return std::nullopt;
    }
    if (*supported) {
      list_.Add(name, CheckState::kOk,
                "supported (If-None-Match: *): a commit is one conditional PUT",
                json{{"supported", true}});
    } else {
      list_.Add(name, CheckState::kWarn, fallback, json{{"supported", false}});
    }
    return *supported;
  }
  const std::string key = Key("put-if-absent");
  PutOptions create;
  create.if_absent = true;
  Status first = store_->Put(key, "first", create);
  if (first.code() == StatusCode::kUnimplemented) {
    list_.Add(name, CheckState::kWarn, fallback, json{{"supported", false}});
    return false;
  }
  if (!first.ok()) {
    list_.Add(name, CheckState::kFail, "create-only write failed: " + first.message());
    return std::nullopt;
  }
  Status second = store_->Put(key, "second", create);
  if (second.ok()) {
    list_.Add(name, CheckState::kFail,
              "a second create-only write of the same key succeeded: this store does not "
              "honour exclusive create, so commits would not be atomic; use another filesystem",
              json{{"supported", false}});
    return std::nullopt;
  }
  if (!second.IsAlreadyExists()) {
    list_.Add(
        name, CheckState::kFail,
        "second create-only write failed with " + second.ToString() + " instead of AlreadyExists");
    return std::nullopt;
  }
  Result<std::string> kept = store_->Get(key);
  if (!kept.ok() || *kept != "first") {
    list_.Add(name, CheckState::kFail,
              "the losing create-only write changed the object: commits would not be atomic");
    return std::nullopt;
  }
  list_.Add(name, CheckState::kOk,
            "supported: the first create-only write succeeded, the second got AlreadyExists; "
            "a commit is one atomic create",
            json{{"supported", true}});
  return true;
}

// How `respawn run` would commit here (ledger.h, "Commit modes"); with a coordinator, checks
// that it refuses a second insert of one record.
void Doctor::CheckCommitMode(std::optional<bool> put_if_absent) {
  const std::string name = "commit mode";
  std::string url = o_.coordinator;
  if (url.empty()) {
    const char* env = std::getenv("RESPAWN_COORDINATOR");
    if (env != nullptr) url = env;
  }
  if (!url.empty()) RegisterCoordinatorSecrets(url);
  if (!put_if_absent.has_value()) {
    list_.Add(name, CheckState::kFail,
              "unknown: the store could not tell whether it can put-if-absent, so respawn "
              "refuses to commit until it can (retry)");
    return;
  }
  if (*put_if_absent) {
    list_.Add(name, CheckState::kOk,
              "put-if-absent: each commit is one atomic create in the store" +
                  std::string(url.empty() ? "" : " (the configured coordinator is not needed)"),
              json{{"mode", "put-if-absent"}});
    return;
  }
  if (url.empty()) {
    list_.Add(name, CheckState::kWarn,
              "none: this store cannot put-if-absent and no commit coordinator is configured, so "
              "`respawn run` refuses to commit here. Set `coordinator = \"postgresql://...\"` "
              "in the pipeline file or RESPAWN_COORDINATOR (or doctor --coordinator URL to "
              "check one); or, if only one process ever writes, run with --single-writer (a "
              "lease: not safe against a paused process)",
              json{{"mode", "none"}});
    return;
  }
  Result<std::shared_ptr<ledger::CommitCoordinator>> coordinator = ledger::OpenCoordinator(url);
  if (!coordinator.ok()) {
    list_.Add(name, CheckState::kFail, coordinator.status().message(),
              json{{"mode", "coordinator"}});
    return;
  }
  const std::string shown = (*coordinator)->Url();
  const std::string ns = "respawn-doctor/" + base_;
  Status first = (*coordinator)->CreateIfAbsent(ns, 1, "first");
  Status second = first.ok() ? (*coordinator)->CreateIfAbsent(ns, 1, "second") : first;
  Result<uint64_t> cleaned = (*coordinator)->DeleteBelow(ns, 2);
  if (!first.ok() || !second.IsAlreadyExists()) {
    list_.Add(name, CheckState::kFail,
              "coordinator " + shown + " does not refuse a second insert of one record (" +
                  (first.ok() ? second.ToString() : first.ToString()) + ")",
              json{{"mode", "coordinator"}, {"coordinator", shown}});
    return;
  }
  list_.Add(
      name, CheckState::kOk,
      "coordinator " + shown +
          ": each commit is one INSERT guarded by a primary key (checked: a second insert "
          "of one record was refused)" +
          (cleaned.ok() ? "" : "; the probe row was not deleted: " + cleaned.status().message()),
      json{{"mode", "coordinator"}, {"coordinator", shown}});
}

void Doctor::CheckListing() {
  const std::string name = "listing consistency";
  const int n = o_.listing_keys;
  const std::string prefix = base_ + "-list-";
  std::vector<std::string> keys;
  for (int i = 0; i < n; ++i) {
    char suffix[16];
    std::snprintf(suffix, sizeof(suffix), "list-%03d", i);
    keys.push_back(Key(suffix));
  }
  std::vector<Status> put(keys.size());
  ParallelFor(keys.size(), 8, [&](size_t i) { put[i] = store_->Put(keys[i], "x"); });
  for (const auto& s : put) {
    if (!s.ok()) {
      list_.Add(name, CheckState::kFail, "cannot write listing probes: " + s.message());
      return;
    }
  }
  Result<std::vector<ObjectInfo>> after_write = ListAll(*store_, prefix);
  if (!after_write.ok()) {
    list_.Add(name, CheckState::kFail, "LIST failed: " + after_write.status().message());
    return;
  }
  const size_t visible = after_write->size();
  Result<DeleteResult> deleted = store_->DeleteMany(keys);
  if (!deleted.ok() || !deleted->failed.empty()) {
    list_.Add(name, CheckState::kFail,
              "cannot delete listing probes: " +
                  (deleted.ok() ? deleted->FirstError().message() : deleted.status().message()));
    return;
  }
  Result<std::vector<ObjectInfo>> after_delete = ListAll(*store_, prefix);
  if (!after_delete.ok()) {
    list_.Add(name, CheckState::kFail, "LIST failed: " + after_delete.status().message());
    return;
  }
  const size_t lingering = after_delete->size();
  json data{{"keys", n},
            {"visible_after_write", visible},
            {"listed_after_delete", lingering},
            {"declared_consistent", store_->capabilities().consistent_listing}};
  std::string detail = std::to_string(visible) + " of " + std::to_string(n) +
                       " new keys listed at once; " + std::to_string(lingering) +
                       " still listed right after deleting them";
  if (visible == static_cast<size_t>(n) && lingering == 0) {
    list_.Add(name, CheckState::kOk, detail, data);
  } else {
    list_.Add(name, CheckState::kWarn,
              detail +
                  ": listings lag behind writes here; respawn never relies on them "
                  "(commits read known keys), but `store ls` and gc see changes late",
              data);
  }
}

void Doctor::CheckLatency() {
  const std::string name = "latency";
  const std::string key = Key("latency");
  if (Status s = store_->Put(key, RandomBytes(1024, rng_)); !s.ok()) {
    list_.Add(name, CheckState::kFail, "cannot write the probe: " + s.message());
    return;
  }
  std::vector<double> ms;
  for (int i = 0; i < o_.latency_gets && !Interrupted(); ++i) {
    auto start = Clock::now();
    Result<std::string> got = store_->Get(key);
    if (!got.ok()) {
      list_.Add(name, CheckState::kFail, "GET failed: " + got.status().message());
      return;
    }
    ms.push_back(MsSince(start));
  }
  (void)store_->Delete(key);
  if (ms.empty()) return;
  std::sort(ms.begin(), ms.end());
  auto pct = [&](double p) {
    size_t idx = static_cast<size_t>(std::ceil(p * static_cast<double>(ms.size()))) - 1;
    return ms[std::min(idx, ms.size() - 1)];
  };
  double p50 = pct(0.50), p95 = pct(0.95);
  list_.Add(name, CheckState::kOk,
            "GET of 1 KiB: p50 " + Fixed(p50, 2) + " ms, p95 " + Fixed(p95, 2) + " ms (" +
                std::to_string(ms.size()) + " requests)",
            json{{"get_p50_ms", p50}, {"get_p95_ms", p95}, {"requests", ms.size()}});
}

void Doctor::CheckThroughput() {
  const std::string name = "throughput";
  if (o_.throughput_mib <= 0) {
    list_.Add(name, CheckState::kSkipped, "skipped (--throughput-mib 0)");
    return;
  }
  const uint64_t size = static_cast<uint64_t>(o_.throughput_mib) << 20;
  const char* tmp_env = std::getenv("TMPDIR");
  const std::string tmp = tmp_env != nullptr && tmp_env[0] != '\0' ? tmp_env : "/tmp";
  std::string up = tmp + "/respawn-doctor-up-XXXXXX", down = tmp + "/respawn-doctor-down-XXXXXX";
  int fd_up = ::mkstemp(up.data());
  int fd_down = ::mkstemp(down.data());
  if (fd_up >= 0) ::close(fd_up);
  if (fd_down >= 0) ::close(fd_down);
  struct Unlink {
    std::string a, b;
    ~Unlink() {
      ::unlink(a.c_str());
      ::unlink(b.c_str());
    }
  } unlink_at_exit{fd_up >= 0 ? up : "", fd_down >= 0 ? down : ""};
  if (fd_up < 0 || fd_down < 0) {
    list_.Add(name, CheckState::kWarn,
              "skipped: cannot create temporary files in " + tmp + " (set TMPDIR)");
    return;
  }
  {
    std::ofstream out(up, std::ios::binary | std::ios::trunc);
    const std::string block = RandomBytes(1 << 20, rng_);
    for (uint64_t written = 0; written < size; written += block.size()) {
      std::string b = block;
      std::memcpy(b.data(), &written, sizeof(written));  // no two blocks alike
      out.write(b.data(), static_cast<std::streamsize>(b.size()));
    }
    if (!out.flush()) {
      list_.Add(name, CheckState::kWarn, "skipped: cannot write a temporary file in " + tmp);
      return;
    }
  }
  const std::string key = Key("throughput");
  auto start = Clock::now();
  if (Status s = store_->PutFile(key, up); !s.ok()) {
    list_.Add(name, CheckState::kFail, "PUT of " + FormatBytes(size) + " failed: " + s.message());
    return;
  }
  double put_s = MsSince(start) / 1000;
  if (Interrupted()) return;
  start = Clock::now();
  if (Status s = store_->GetToFile(key, down); !s.ok()) {
    list_.Add(name, CheckState::kFail, "GET of " + FormatBytes(size) + " failed: " + s.message());
    return;
  }
  double get_s = MsSince(start) / 1000;
  (void)store_->Delete(key);
  Result<uint64_t> want = Xxh3File(up), got = Xxh3File(down);
  if (!want.ok() || !got.ok() || *want != *got) {
    list_.Add(name, CheckState::kFail,
              "the " + FormatBytes(size) + " object read back differs from what was written");
    return;
  }
  list_.Add(name, CheckState::kOk,
            "PUT " + FormatMiBps(size, put_s) + " MiB/s, GET " + FormatMiBps(size, get_s) +
                " MiB/s (" + FormatBytes(size) + " object)",
            json{{"bytes", size},
                 {"put_mib_per_s", static_cast<double>(size) / 1048576.0 / put_s},
                 {"get_mib_per_s", static_cast<double>(size) / 1048576.0 / get_s}});
}

void Doctor::Cleanup() {
  if (created_.empty() || store_ == nullptr) return;
  Result<DeleteResult> r = store_->DeleteMany(created_);
  if (!r.ok() || !r->failed.empty()) {
    std::string why = r.ok() ? r->FirstError().message() : r.status().message();
    list_.Add("cleanup", CheckState::kWarn,
              "could not delete every probe object (" + base_ + "-*): " + why +
                  "; delete them with respawn store rm");
  }
}

}  // namespace

void AddDoctorCommand(CLI::App& app, const GlobalOptions& globals, CommandFn* run) {
  auto o = std::make_shared<DoctorOptions>();
  CLI::App* doctor = app.add_subcommand(
      "doctor",
      "Check that a store works for respawn (access, put-if-absent, commit mode, listing, speed)");
  doctor->add_option("url", o->url, "Store URL or directory")->required();
  doctor->add_option("--coordinator", o->coordinator,
                     "Commit coordinator to check (default: $RESPAWN_COORDINATOR)");
  doctor
      ->add_option("--throughput-mib", o->throughput_mib,
                   "Size of the throughput probe object in MiB (0 skips it)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  doctor->footer(
      "Exit status: 0 when every check passes (warnings allowed), 1 when one fails, 2 for a bad "
      "URL or missing credentials.");
  doctor->callback([o, &globals, run] {
    *run = [o, &globals] {
      Doctor doctor(*o, globals);
      return doctor.Run();
    };
  });
}

}  // namespace respawn::cli
