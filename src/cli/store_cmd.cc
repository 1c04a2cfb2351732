// `respawn store ls|cp|cat|rm|stat`: objects in any store, and local files, by URL.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/common.h"
#include "cli/location.h"
#include "storage/copy.h"
#include "storage/posix_store.h"
#include "storage/store.h"
#include "util/strings.h"

namespace respawn::cli {
namespace {

using nlohmann::json;

constexpr uint64_t kCatChunk = 8ull << 20;
constexpr size_t kMaxPrintedFailures = 20;

// A store opened for a command, and the key or prefix inside it the command works on.
struct Target {
  OpenedStore opened;
  std::string key;
  std::string display;  // for messages: the local path or the URL
  bool local = false;

  Store& store() { return *opened.store; }
  std::string Name(std::string_view k) const {
    if (!local) return JoinUrl(opened.store->Url(), k);
    std::string root = display;
    return k.empty() ? root : (root == "/" ? "/" : root + "/") + std::string(k);
  }
};

// Opens a local directory as a store rooted at it.
Result<Target> OpenLocalDir(const std::string& dir, const std::string& key,
                            const GlobalOptions& g) {
  Target t;
  ASSIGN_OR_RETURN(t.opened, OpenStoreForCli(dir, g));
  t.key = key;
  t.display = dir;
  t.local = true;
  return t;
}

Result<Target> OpenStoreTarget(const Location& loc, const GlobalOptions& g) {
  Target t;
  ASSIGN_OR_RETURN(t.opened, OpenStoreForCli(loc.store_url, g));
  t.key = loc.key;
  t.display = loc.arg;
  return t;
}

// For commands that read one existing object (cat, stat, rm): a local file opens its parent
// directory as the store; a store URL must name a key, not a prefix.
Result<Target> OpenObject(const Location& loc, const GlobalOptions& g, std::string_view verb) {
  if (loc.local) {
    switch (KindOf(loc.path)) {
      case LocalKind::kMissing:
        return NotFound("no such file: " + loc.path);
      case LocalKind::kDirectory:
        return InvalidArgument(loc.path + " is a directory; " + std::string(verb) +
                               " takes a file" + (verb == "rm" ? " (use -r for a directory)" : ""));
      case LocalKind::kOther:
        return InvalidArgument(loc.path + " is not a regular file");
      case LocalKind::kFile:
        break;
    }
    ASSIGN_OR_RETURN(Target t, OpenLocalDir(ParentPath(loc.path), FileName(loc.path), g));
    t.display = ParentPath(loc.path);
    return t;
  }
  if (loc.key.empty() || loc.key.back() == '/') {
    return InvalidArgument(Quoted(loc.arg) + " names a prefix, not an object; " +
                           std::string(verb) + " takes an object URL like s3://bucket/key" +
                           (verb == "rm" ? " (use -r for everything under a prefix)" : ""));
  }
  return OpenStoreTarget(loc, g);
}

// Adds " (it is a prefix: use -r)" to a NotFound when objects exist under key + "/".
Status HintPrefix(Status s, Store& store, const std::string& key) {
  if (!s.IsNotFound() || key.empty()) return s;
  ListOptions lo;
  lo.prefix = key.back() == '/' ? key : key + "/";
  lo.max_keys = 1;
  Result<ListPage> page = store.List(lo);
  if (page.ok() && (!page->objects.empty() || !page->common_prefixes.empty())) {
    return Status(s.code(), s.message() + " (it is a prefix: use -r)");
  }
  return s;
}

json ObjectJson(const Target& t, const ObjectInfo& o) {
  return json{{"key", o.key},
              {"url", t.Name(o.key)},
              {"size", o.size},
              {"mtime_ms", o.mtime_ms},
              {"mtime", FormatIsoTime(o.mtime_ms)},
              {"etag", o.etag}};
}

void PrintJson(const json& j) {
  std::string text = j.dump(2, ' ', false, json::error_handler_t::replace);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------------------- ls

struct LsOptions {
  std::string url;
  bool recursive = false;
  bool long_format = false;
};

void PrintLsEntry(const ObjectInfo& o, const std::string& name, bool long_format) {
  if (long_format) {
    std::printf("%s %12llu  %-34s  %s\n", FormatLocalTime(o.mtime_ms).c_str(),
                static_cast<unsigned long long>(o.size), o.etag.empty() ? "-" : o.etag.c_str(),
                name.c_str());
  } else {
    std::printf("%s\n", name.c_str());
  }
}

int RunLs(const LsOptions& o, const GlobalOptions& g) {
  Result<Location> loc = ParseLocation(o.url);
  if (!loc.ok()) return Fail(loc.status(), Phase::kConfig);
  Result<Target> target = Internal("unset");
  bool single_file = false;
  if (loc->local) {
    switch (KindOf(loc->path)) {
      case LocalKind::kMissing:
        return Fail(NotFound("no such file or directory: " + loc->path), Phase::kOperation);
      case LocalKind::kDirectory:
        target = OpenLocalDir(loc->path, "", g);
        break;
      default:
        single_file = true;
        target = OpenLocalDir(ParentPath(loc->path), FileName(loc->path), g);
        if (target.ok()) target->display = ParentPath(loc->path);
        break;
    }
  } else {
    target = OpenStoreTarget(*loc, g);
  }
  if (!target.ok()) return Fail(target.status(), Phase::kConfig);
  Target& t = *target;

  json objects = json::array(), prefixes = json::array();
  if (single_file) {
    Result<ObjectInfo> info = t.store().Stat(t.key);
    if (!info.ok()) return Fail(info.status(), Phase::kOperation);
    if (g.json) {
      objects.push_back(ObjectJson(t, *info));
    } else {
      PrintLsEntry(*info, info->key, o.long_format);
    }
  } else {
    ListOptions lo;
    lo.prefix = t.key;
    lo.delimiter = o.recursive ? "" : "/";
    // Without -r, names are shown relative to the "directory" the prefix is in (like aws s3 ls).
    const size_t base =
        o.recursive ? 0 : (t.key.rfind('/') == std::string::npos ? 0 : t.key.rfind('/') + 1);
    for (;;) {
      Result<ListPage> page = t.store().List(lo);
      if (!page.ok()) return Fail(page.status(), Phase::kOperation);
      // Objects and prefixes interleaved in key order, as a directory listing reads.
      size_t i = 0, j = 0;
      while (i < page->objects.size() || j < page->common_prefixes.size()) {
        bool take_prefix =
            i == page->objects.size() ||
            (j < page->common_prefixes.size() && page->common_prefixes[j] < page->objects[i].key);
        if (take_prefix) {
          const std::string& p = page->common_prefixes[j++];
          if (g.json) {
            prefixes.push_back(p);
          } else if (o.long_format) {
            std::printf("%19s %12s  %-34s  %s\n", "", "PRE", "", p.substr(base).c_str());
          } else {
            std::printf("%s\n", p.substr(base).c_str());
          }
        } else {
          const ObjectInfo& obj = page->objects[i++];
          if (g.json) {
            objects.push_back(ObjectJson(t, obj));
          } else {
            PrintLsEntry(obj, obj.key.substr(std::min(base, obj.key.size())), o.long_format);
          }
        }
      }
      if (page->next_token.empty()) break;
      lo.continuation_token = page->next_token;
    }
  }
  if (g.json) {
    PrintJson(json{{"url", loc->local ? loc->path : loc->arg},
                   {"objects", std::move(objects)},
                   {"prefixes", std::move(prefixes)}});
  }
  std::fflush(stdout);
  return kExitOk;
}

// -------------------------------------------------------------------------------------- stat

struct StatOptions {
  std::string url;
};

int RunStat(const StatOptions& o, const GlobalOptions& g) {
  Result<Location> loc = ParseLocation(o.url);
  if (!loc.ok()) return Fail(loc.status(), Phase::kConfig);
  Result<Target> target = OpenObject(*loc, g, "stat");
  if (!target.ok()) {
    return Fail(target.status(), target.status().IsNotFound() ? Phase::kOperation : Phase::kConfig);
  }
  Result<ObjectInfo> info = target->store().Stat(target->key);
  if (!info.ok()) {
    return Fail(HintPrefix(info.status(), target->store(), target->key), Phase::kOperation);
  }
  if (g.json) {
    PrintJson(ObjectJson(*target, *info));
    return kExitOk;
  }
  std::printf("url    %s\n", target->Name(info->key).c_str());
  std::printf("size   %llu (%s)\n", static_cast<unsigned long long>(info->size),
              FormatBytes(info->size).c_str());
  std::printf("mtime  %s (%lld ms)\n", FormatLocalTime(info->mtime_ms).c_str(),
              static_cast<long long>(info->mtime_ms));
  std::printf("etag   %s\n", info->etag.empty() ? "-" : info->etag.c_str());
  std::fflush(stdout);
  return kExitOk;
}

// --------------------------------------------------------------------------------------- cat

struct CatOptions {
  std::string url;
};

Status WriteStdout(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Unavailable(std::string("cannot write to standard output: ") + std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

int RunCat(const CatOptions& o, const GlobalOptions& g) {
  Result<Location> loc = ParseLocation(o.url);
  if (!loc.ok()) return Fail(loc.status(), Phase::kConfig);
  Result<Target> target = OpenObject(*loc, g, "cat");
  if (!target.ok()) {
    return Fail(target.status(), target.status().IsNotFound() ? Phase::kOperation : Phase::kConfig);
  }
  Store& store = target->store();
  Result<ObjectInfo> info = store.Stat(target->key);
  if (!info.ok()) return Fail(HintPrefix(info.status(), store, target->key), Phase::kOperation);
  std::fflush(stdout);
  // A local object goes out in the kernel (sendfile); the chaos store has no local path, so
  // injected faults still apply.
  if (std::string path = store.LocalPath(target->key); !path.empty()) {
    Result<uint64_t> sent = SendLocalFile(path, STDOUT_FILENO);
    return sent.ok() ? kExitOk : Fail(sent.status(), Phase::kOperation);
  }
  if (info->size < kCatChunk || !store.capabilities().ranged_reads) {
    Result<std::string> data = store.Get(target->key);
    if (!data.ok()) return Fail(data.status(), Phase::kOperation);
    Status st = WriteStdout(*data);
    return st.ok() ? kExitOk : Fail(st, Phase::kOperation);
  }
  // Large objects stream in ranged chunks so they never sit in memory whole; the next chunk is
  // read while the current one is written (at most two chunks in memory).
  auto fetch = [&store, &key = target->key](uint64_t offset) {
    return store.GetRange(key, offset, kCatChunk);
  };
  std::future<Result<std::string>> next = std::async(std::launch::async, fetch, 0);
  for (uint64_t offset = 0; offset < info->size; offset += kCatChunk) {
    Result<std::string> chunk = next.get();
    if (!chunk.ok()) return Fail(chunk.status(), Phase::kOperation);
    if (chunk->empty()) break;
    if (offset + kCatChunk < info->size) {
      next = std::async(std::launch::async, fetch, offset + kCatChunk);
    }
    Status st = WriteStdout(*chunk);
    if (!st.ok()) return Fail(st, Phase::kOperation);  // ~future waits for the read in flight
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------- rm

struct RmOptions {
  std::vector<std::string> urls;
  bool recursive = false;
};

// Removes the directories left empty under `root`, deepest first, then `root` itself.
void RemoveEmptyDirectories(const std::string& root) {
  std::error_code ec;
  std::vector<std::filesystem::path> dirs;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec)) dirs.push_back(it->path());
  }
  std::sort(dirs.begin(), dirs.end(),
            [](const auto& a, const auto& b) { return a.native().size() > b.native().size(); });
  for (const auto& d : dirs) ::rmdir(d.c_str());
  ::rmdir(root.c_str());
}

// Deletes `keys` in batches; returns deleted count and prints failures.
struct DeleteOutcome {
  uint64_t deleted = 0;
  std::vector<std::pair<std::string, Status>> failed;
};

// Slices of 32,000 keys: with 8 requests in flight the S3 store sends full 1,000-key
// DeleteObjects requests, and progress shows between slices (on a terminal, or with -v).
Status DeleteKeys(Target& t, const std::vector<std::string>& keys, const GlobalOptions& g,
                  DeleteOutcome* out) {
  constexpr size_t kSlice = 32000;
  const bool tty = IsTerminal(STDERR_FILENO);
  const bool show = keys.size() > kSlice && !g.quiet && !g.json && (tty || g.verbose);
  const auto start = std::chrono::steady_clock::now();
  for (size_t begin = 0; begin < keys.size(); begin += kSlice) {
    if (InterruptScope::interrupted()) break;
    const size_t end = std::min(keys.size(), begin + kSlice);
    std::vector<std::string> slice(keys.begin() + static_cast<ptrdiff_t>(begin),
                                   keys.begin() + static_cast<ptrdiff_t>(end));
    ASSIGN_OR_RETURN(DeleteResult r, t.store().DeleteMany(slice));
    out->deleted += r.deleted;
    for (auto& f : r.failed) out->failed.push_back(std::move(f));
    if (show) {
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::fprintf(stderr,
                   tty ? "\r\033[Kdeleted %s/%s objects, %.0f/s"
                       : "respawn: deleted %s/%s objects, %.0f/s\n",
                   Thousands(end).c_str(), Thousands(keys.size()).c_str(),
                   secs > 0 ? static_cast<double>(end) / secs : 0.0);
      std::fflush(stderr);
    }
  }
  if (show && tty) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
  }
  return Status::OK();
}

int RunRm(const RmOptions& o, const GlobalOptions& g) {
  InterruptScope interrupt_scope;
  DeleteOutcome outcome;
  int exit_code = kExitOk;
  auto fail = [&](const Status& s, Phase phase) {
    int code = Fail(s, phase);
    // Usage errors win over operation failures, which win over success.
    if (code == kExitUsage || exit_code == kExitOk) exit_code = code;
  };
  for (const std::string& url : o.urls) {
    if (InterruptScope::interrupted()) break;
    Result<Location> loc = ParseLocation(url);
    if (!loc.ok()) {
      fail(loc.status(), Phase::kConfig);
      continue;
    }
    if (!o.recursive) {
      Result<Target> target = OpenObject(*loc, g, "rm");
      if (!target.ok()) {
        fail(target.status(), target.status().IsNotFound() ? Phase::kOperation : Phase::kConfig);
        continue;
      }
      // Deleting a missing key succeeds in every store: look first, so a typo is reported.
      Result<ObjectInfo> info = target->store().Stat(target->key);
      if (!info.ok()) {
        fail(HintPrefix(info.status(), target->store(), target->key), Phase::kOperation);
        continue;
      }
      Status st = target->store().Delete(target->key);
      if (!st.ok()) {
        fail(st, Phase::kOperation);
        continue;
      }
      ++outcome.deleted;
      continue;
    }
    // Recursive: everything under the prefix (or directory), and the object of that exact name.
    Result<Target> target = Internal("unset");
    std::vector<std::string> keys;
    std::string local_dir;
    if (loc->local) {
      LocalKind kind = KindOf(loc->path);
      if (kind == LocalKind::kMissing) {
        fail(NotFound("no such file or directory: " + loc->path), Phase::kOperation);
        continue;
      }
      if (kind == LocalKind::kDirectory) {
        if (loc->path == "/") {
          fail(InvalidArgument("refusing to remove everything under /"), Phase::kConfig);
          continue;
        }
        target = OpenLocalDir(loc->path, "", g);
        local_dir = loc->path;
      } else {
        target = OpenLocalDir(ParentPath(loc->path), FileName(loc->path), g);
        if (target.ok()) target->display = ParentPath(loc->path);
        keys.push_back(FileName(loc->path));
      }
      if (!target.ok()) {
        fail(target.status(), Phase::kConfig);
        continue;
      }
    } else {
      target = OpenStoreTarget(*loc, g);
      if (!target.ok()) {
        fail(target.status(), Phase::kConfig);
        continue;
      }
      const std::string& key = target->key;
      std::string prefix = key.empty() || key.back() == '/' ? key : key + "/";
      Result<std::vector<ObjectInfo>> all = ListAll(target->store(), prefix);
      if (!all.ok()) {
        fail(all.status(), Phase::kOperation);
        continue;
      }
      if (!key.empty() && key.back() != '/') {
        Result<ObjectInfo> exact = target->store().Stat(key);
        if (exact.ok()) {
          keys.push_back(key);
        } else if (!exact.status().IsNotFound()) {
          fail(exact.status(), Phase::kOperation);
          continue;
        }
      }
      for (auto& obj : *all) keys.push_back(std::move(obj.key));
    }
    if (!local_dir.empty()) {
      Result<std::vector<ObjectInfo>> all = ListAll(target->store(), "");
      if (!all.ok()) {
        fail(all.status(), Phase::kOperation);
        continue;
      }
      for (auto& obj : *all) keys.push_back(std::move(obj.key));
    }
    size_t failed_before = outcome.failed.size();
    Status st = DeleteKeys(*target, keys, g, &outcome);
    if (!st.ok()) {
      fail(st, Phase::kOperation);
      continue;
    }
    if (!local_dir.empty() && outcome.failed.size() == failed_before) {
      RemoveEmptyDirectories(local_dir);
    }
  }
  size_t printed = 0;
  for (const auto& [key, status] : outcome.failed) {
    if (++printed <= kMaxPrintedFailures)
      PrintError("cannot delete " + key + ": " + status.message());
  }
  if (outcome.failed.size() > kMaxPrintedFailures) {
    PrintError("... and " + std::to_string(outcome.failed.size() - kMaxPrintedFailures) +
               " more keys could not be deleted");
  }
  if (!outcome.failed.empty() && exit_code == kExitOk) {
    exit_code = ExitCodeFor(outcome.failed.front().second, Phase::kOperation);
  }
  if (InterruptScope::interrupted()) exit_code = kExitInterrupted;
  if (g.json) {
    json failed = json::array();
    for (const auto& [key, status] : outcome.failed) {
      failed.push_back(json{{"key", key}, {"error", Redact(status.message())}});
    }
    PrintJson(json{{"deleted", outcome.deleted},
                   {"failed", std::move(failed)},
                   {"interrupted", exit_code == kExitInterrupted}});
  } else if (!g.quiet) {
    std::printf("deleted %llu object%s\n", static_cast<unsigned long long>(outcome.deleted),
                outcome.deleted == 1 ? "" : "s");
    std::fflush(stdout);
  }
  return exit_code;
}

// ---------------------------------------------------------------------------------------- cp

struct CpOptions {
  std::string src;
  std::string dst;
  bool recursive = false;
  int jobs = 8;
  std::string verify = "size";
};

// Draws copy progress on stderr: redrawn in place on a terminal, a line a second with -v
// otherwise. Called serialized by the copy engine.
class ProgressLine {
 public:
  ProgressLine(bool tty, bool enabled)
      : tty_(tty), enabled_(enabled), start_(std::chrono::steady_clock::now()) {}

  void Update(const CopyProgress& p) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    auto interval = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(1000);
    bool last = p.objects_done == p.objects_total;
    if (now - last_ < interval && !last) return;
    last_ = now;
    double secs = std::chrono::duration<double>(now - start_).count();
    char line[256];
    std::snprintf(
        line, sizeof(line), "%llu/%llu objects, %s / %s, %s MiB/s%s",
        static_cast<unsigned long long>(p.objects_done),
        static_cast<unsigned long long>(p.objects_total), FormatBytes(p.bytes_done).c_str(),
        FormatBytes(p.bytes_total).c_str(), FormatMiBps(p.bytes_done, secs).c_str(),
        p.objects_failed > 0 ? (", " + std::to_string(p.objects_failed) + " failed").c_str() : "");
    if (tty_) {
      std::fprintf(stderr, "\r\033[K%s", line);
      drawn_ = true;
    } else {
      std::fprintf(stderr, "respawn: %s\n", line);
    }
    std::fflush(stderr);
  }

  void Clear() {
    if (tty_ && drawn_) {
      std::fprintf(stderr, "\r\033[K");
      std::fflush(stderr);
      drawn_ = false;
    }
  }

 private:
  const bool tty_;
  const bool enabled_;
  const std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_{};
  bool drawn_ = false;
};

// Where a copy reads from: a store and a key (single) or prefix (recursive).
struct CopySource {
  Target target;
  bool recursive = false;  // copy everything under target.key
  std::string base_name;   // kept when copying into a directory
  bool local_dir = false;
};

Result<CopySource> ResolveSource(const Location& loc, bool recursive, const GlobalOptions& g) {
  CopySource src;
  src.base_name = loc.BaseName();
  if (loc.local) {
    switch (KindOf(loc.path)) {
      case LocalKind::kMissing:
        return NotFound("no such file or directory: " + loc.path);
      case LocalKind::kOther:
        return InvalidArgument(loc.path + " is not a regular file or directory");
      case LocalKind::kDirectory: {
        if (!recursive) {
          return InvalidArgument(loc.path +
                                 " is a directory; use -r to copy it and "
                                 "everything in it");
        }
        ASSIGN_OR_RETURN(src.target, OpenLocalDir(loc.path, "", g));
        src.recursive = true;
        src.local_dir = true;
        return src;
      }
      case LocalKind::kFile: {
        ASSIGN_OR_RETURN(src.target, OpenLocalDir(ParentPath(loc.path), FileName(loc.path), g));
        src.target.display = ParentPath(loc.path);
        return src;
      }
    }
  }
  if (!recursive && (loc.key.empty() || loc.key.back() == '/')) {
    return InvalidArgument(Quoted(loc.arg) +
                           " names a prefix, not an object; use -r to copy "
                           "everything under it");
  }
  ASSIGN_OR_RETURN(src.target, OpenStoreTarget(loc, g));
  src.recursive = recursive;
  return src;
}

// The destination store and key (single) or prefix (recursive). A destination ending in '/' or
// a store URL without a key is a directory: the source's base name is kept inside it, as cp
// does; so is an existing local directory when copying one object. A recursive copy into an
// existing directory without the '/' fills that directory (unlike cp -r, which would nest the
// source inside it), so that re-running an interrupted copy resumes into the same place.
Result<Target> ResolveDestination(const Location& loc, const CopySource& src, bool recursive,
                                  const GlobalOptions& g) {
  const std::string& base = src.base_name;
  if (loc.local) {
    LocalKind kind = KindOf(loc.path);
    bool dir_mode = loc.trailing_slash || (!recursive && kind == LocalKind::kDirectory);
    if (recursive) {
      std::string root =
          dir_mode && !base.empty() ? (loc.path == "/" ? "/" : loc.path + "/") + base : loc.path;
      return OpenLocalDir(root, "", g);
    }
    if (dir_mode) return OpenLocalDir(loc.path, base, g);
    ASSIGN_OR_RETURN(Target t, OpenLocalDir(ParentPath(loc.path), FileName(loc.path), g));
    t.display = ParentPath(loc.path);
    return t;
  }
  ASSIGN_OR_RETURN(Target t, OpenStoreTarget(loc, g));
  bool dir_mode = loc.key.empty() || loc.key.back() == '/';
  if (dir_mode) t.key = JoinKey(loc.key, base);
  if (!recursive && t.key.empty()) {
    return InvalidArgument("cannot tell which key to write in " + Quoted(loc.arg) +
                           "; name one, like s3://bucket/key");
  }
  return t;
}

int PrintCopyOutcome(const CopyResult& r, const Target& src, const Target& dst,
                     const GlobalOptions& g) {
  size_t printed = 0;
  for (const auto& [key, status] : r.failures) {
    if (++printed > kMaxPrintedFailures) break;
    PrintError("cannot copy " + src.Name(key) + ": " + status.message());
  }
  if (r.failures.size() > kMaxPrintedFailures) {
    PrintError("... and " + std::to_string(r.failures.size() - kMaxPrintedFailures) +
               " more objects failed");
  }
  int exit_code = kExitOk;
  if (!r.failures.empty()) exit_code = ExitCodeFor(r.failures.front().second, Phase::kOperation);
  if (r.cancelled) exit_code = kExitInterrupted;
  if (g.json) {
    json failures = json::array();
    for (const auto& [key, status] : r.failures) {
      failures.push_back(json{{"key", key},
                              {"code", std::string(StatusCodeName(status.code()))},
                              {"error", Redact(status.message())}});
    }
    PrintJson(json{
        {"source", src.display},
        {"destination", dst.display},
        {"objects_total", r.objects_total},
        {"objects_copied", r.objects_copied},
        {"objects_failed", r.failures.size()},
        {"objects_skipped", r.objects_skipped},
        {"bytes", r.bytes_copied},
        {"seconds", r.seconds},
        {"mib_per_s",
         r.seconds > 0 ? static_cast<double>(r.bytes_copied) / (1024.0 * 1024.0) / r.seconds : 0.0},
        {"interrupted", r.cancelled},
        {"failures", std::move(failures)}});
  } else if (!g.quiet) {
    std::printf("copied %llu object%s, %s in %.2f s (%s MiB/s)",
                static_cast<unsigned long long>(r.objects_copied), r.objects_copied == 1 ? "" : "s",
                FormatBytes(r.bytes_copied).c_str(), r.seconds,
                FormatMiBps(r.bytes_copied, r.seconds).c_str());
    if (!r.failures.empty()) std::printf(", %zu failed", r.failures.size());
    if (r.cancelled) {
      std::printf(", %llu not started (interrupted: re-run to copy the rest)",
                  static_cast<unsigned long long>(r.objects_skipped));
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  if (r.cancelled && g.quiet && !g.json) {
    PrintError("interrupted: " + std::to_string(r.objects_copied) + " of " +
               std::to_string(r.objects_total) + " objects copied; re-run to copy the rest");
  }
  return exit_code;
}

int RunCp(const CpOptions& o, const GlobalOptions& g) {
  Result<Location> src_loc = ParseLocation(o.src);
  if (!src_loc.ok()) return Fail(src_loc.status(), Phase::kConfig);
  Result<Location> dst_loc = ParseLocation(o.dst);
  if (!dst_loc.ok()) return Fail(dst_loc.status(), Phase::kConfig);

  Result<CopySource> src = ResolveSource(*src_loc, o.recursive, g);
  if (!src.ok()) {
    return Fail(src.status(), src.status().IsNotFound() ? Phase::kOperation : Phase::kConfig);
  }
  Result<Target> dst = ResolveDestination(*dst_loc, *src, src->recursive, g);
  if (!dst.ok()) return Fail(dst.status(), Phase::kConfig);

  const bool tty = IsTerminal(STDERR_FILENO);
  ProgressLine progress(tty, !g.quiet && !g.json && (tty || g.verbose));
  InterruptScope interrupt_scope;
  CopyOptions options;
  options.parallelism = o.jobs;
  options.verify = o.verify == "none"   ? CopyVerify::kNone
                   : o.verify == "read" ? CopyVerify::kReadBack
                                        : CopyVerify::kSize;
  options.cancel = InterruptScope::flag();
  options.progress = [&progress](const CopyProgress& p) { progress.Update(p); };

  Store& src_store = src->target.store();
  Store& dst_store = dst->store();
  Result<CopyResult> result = Internal("unset");
  if (src->recursive) {
    result = CopyPrefix(src_store, src->target.key, dst_store, dst->key, options);
    if (result.ok() && result->objects_total == 0 && !src->local_dir) {
      const std::string& key = src->target.key;
      if (!key.empty() && key.back() != '/') {
        // Not a prefix of anything: maybe one object (cp -r file dst works like cp).
        CopySource single = std::move(*src);
        single.recursive = false;
        progress.Clear();
        Result<Target> single_dst = ResolveDestination(*dst_loc, single, false, g);
        if (!single_dst.ok()) return Fail(single_dst.status(), Phase::kConfig);
        result = CopyObject(src_store, key, single_dst->store(), single_dst->key, options);
        if (!result.ok()) return Fail(result.status(), Phase::kOperation);
        progress.Clear();
        return PrintCopyOutcome(*result, single.target, *single_dst, g);
      }
      progress.Clear();
      return Fail(NotFound("no objects under " + src->target.Name(key)), Phase::kOperation);
    }
  } else {
    result = CopyObject(src_store, src->target.key, dst_store, dst->key, options);
    if (!result.ok()) {
      progress.Clear();
      return Fail(HintPrefix(result.status(), src_store, src->target.key), Phase::kOperation);
    }
  }
  progress.Clear();
  if (!result.ok()) return Fail(result.status(), Phase::kOperation);
  return PrintCopyOutcome(*result, src->target, *dst, g);
}

}  // namespace

void AddStoreCommands(CLI::App& app, const GlobalOptions& globals, CommandFn* run) {
  CLI::App* store = app.add_subcommand("store", "Work with objects in a store or local files");
  store->require_subcommand(1);
  store->footer(
      "URLs: /local/path, file:///abs/path, s3://bucket/key, memory://name/key.\n"
      "S3 credentials and endpoint come from the AWS environment (AWS_ACCESS_KEY_ID, "
      "AWS_ENDPOINT_URL, ...).");

  {
    auto o = std::make_shared<LsOptions>();
    CLI::App* ls = store->add_subcommand("ls", "List objects (grouped by '/' unless -r)");
    ls->add_option("url", o->url, "Store URL, prefix or local directory")->required();
    ls->add_flag("-r,--recursive", o->recursive, "List every object under the prefix");
    ls->add_flag("-l,--long", o->long_format, "Show modification time, size and etag");
    ls->callback([o, &globals, run] { *run = [o, &globals] { return RunLs(*o, globals); }; });
  }
  {
    auto o = std::make_shared<CpOptions>();
    CLI::App* cp = store->add_subcommand("cp", "Copy objects or files between stores");
    cp->add_option("src", o->src, "Source: local path or store URL")->required();
    cp->add_option("dst", o->dst,
                   "Destination. Ending in '/' keeps the source's name inside it (so does an "
                   "existing directory for a single file); without it, -r fills the destination "
                   "itself, so re-running an interrupted copy resumes")
        ->required();
    cp->add_flag("-r,--recursive", o->recursive, "Copy a directory or prefix recursively");
    cp->add_option("-j,--jobs", o->jobs, "Objects in flight")
        ->capture_default_str()
        ->check(CLI::Range(1, 256));
    cp->add_option("--verify", o->verify,
                   "After each object: none, size (Stat the copy) or read (read it back)")
        ->capture_default_str()
        ->check(CLI::IsMember({"none", "size", "read"}));
    cp->callback([o, &globals, run] { *run = [o, &globals] { return RunCp(*o, globals); }; });
  }
  {
    auto o = std::make_shared<CatOptions>();
    CLI::App* cat = store->add_subcommand("cat", "Write an object to standard output");
    cat->add_option("url", o->url, "Object URL or local file")->required();
    cat->callback([o, &globals, run] { *run = [o, &globals] { return RunCat(*o, globals); }; });
  }
  {
    auto o = std::make_shared<RmOptions>();
    CLI::App* rm = store->add_subcommand("rm", "Delete objects");
    rm->add_option("url", o->urls, "Object URLs or local files")->required();
    rm->add_flag("-r,--recursive", o->recursive,
                 "Delete everything under each prefix or directory (batched)");
    rm->callback([o, &globals, run] { *run = [o, &globals] { return RunRm(*o, globals); }; });
  }
  {
    auto o = std::make_shared<StatOptions>();
    CLI::App* stat = store->add_subcommand("stat", "Show an object's size, mtime and etag");
    stat->add_option("url", o->url, "Object URL or local file")->required();
    stat->callback([o, &globals, run] { *run = [o, &globals] { return RunStat(*o, globals); }; });
  }
}

}  // namespace respawn::cli
