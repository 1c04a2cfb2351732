#include "storage/memory_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <random>

#include "util/hash.h"
#include "util/strings.h"

namespace respawn {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string RandomSuffix() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^
                                   (static_cast<uint64_t>(getpid()) << 32));
  return HexU64(rng());
}

Status LocalFileError(std::string_view what, const std::string& path, int err) {
  std::string msg = std::string(what) + " local file " + path + ": " + std::strerror(err);
  if (err == ENOENT) return NotFound(msg);
  if (err == EACCES || err == EPERM) return PermissionDenied(msg);
  return Internal(msg);
}

Status WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status(StatusCode::kInternal, std::strerror(errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::OK();
}

}  // namespace

MemoryStore::MemoryStore(std::string name) : name_(std::move(name)) {}

std::shared_ptr<MemoryStore> MemoryStore::Named(const std::string& name) {
  struct Registry {
    std::mutex mu;
    std::map<std::string, std::shared_ptr<MemoryStore>> stores;  // GUARDED_BY(mu)
  };
  static Registry registry;
  std::lock_guard<std::mutex> lock(registry.mu);
  auto& slot = registry.stores[name];
  if (!slot) slot = std::make_shared<MemoryStore>(name);
  return slot;
}

std::string MemoryStore::Url() const { return "memory://" + name_; }

Capabilities MemoryStore::capabilities() const {
  Capabilities c;
  c.put_if_absent = true;
  c.consistent_listing = true;
  c.atomic_rename = false;
  c.durable_sync = false;
  c.ranged_reads = true;
  c.max_delete_batch = 1000;
  return c;
}

Status MemoryStore::Put(std::string_view key, std::string_view data, const PutOptions& o) {
  RETURN_IF_ERROR(ValidateKey(key));
  Object obj;
  obj.data.assign(data);
  obj.mtime_ms = NowMs();
  obj.etag = HexU64(Xxh3(data));
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(key);
    if (it != objects_.end()) {
      if (o.if_absent) {
        return AlreadyExists(Url() + ": object \"" + std::string(key) + "\" already exists");
      }
      it->second = std::move(obj);
    } else {
      objects_.emplace(std::string(key), std::move(obj));
    }
  }
  if (o.progress) o.progress(data.size(), data.size());
  return Status::OK();
}

Status MemoryStore::PutFile(std::string_view key, const std::string& path, const PutOptions& o) {
  RETURN_IF_ERROR(ValidateKey(key));
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return LocalFileError("cannot open", path, errno);
  std::string data;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      return LocalFileError("cannot read", path, err);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return Put(key, data, o);
}

Result<std::string> MemoryStore::Get(std::string_view key, const GetOptions& o) {
  RETURN_IF_ERROR(ValidateKey(key));
  std::string data;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) {
      return NotFound(Url() + ": object \"" + std::string(key) + "\" not found");
    }
    if (!o.if_match.empty() && it->second.etag != o.if_match) {
      return FailedPrecondition(Url() + ": object \"" + std::string(key) +
                                "\" changed since it was fingerprinted: its ETag is no longer \"" +
                                o.if_match + "\"; read it again to use the new version");
    }
    data = it->second.data;
  }
  if (o.progress) o.progress(data.size(), data.size());
  return data;
}

// An offset equal to the size returns "" (any length); past the size is InvalidArgument.
Result<std::string> MemoryStore::GetRange(std::string_view key, uint64_t offset, uint64_t length) {
  RETURN_IF_ERROR(ValidateKey(key));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) {
    return NotFound(Url() + ": object \"" + std::string(key) + "\" not found");
  }
  const std::string& data = it->second.data;
  if (offset > data.size()) {
    return InvalidArgument(Url() + ": range offset " + std::to_string(offset) +
                           " is past the end of object \"" + std::string(key) + "\" (" +
                           std::to_string(data.size()) + " bytes)");
  }
  return data.substr(static_cast<size_t>(offset), static_cast<size_t>(length));
}

Status MemoryStore::GetToFile(std::string_view key, const std::string& path, const GetOptions& o) {
  ASSIGN_OR_RETURN(std::string data, Get(key, o));
  std::string tmp = path + ".respawn-tmp-" + RandomSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return LocalFileError("cannot create", tmp, errno);
  Status s = WriteAll(fd, data);
  if (::close(fd) != 0 && s.ok()) s = Internal(std::strerror(errno));
  if (!s.ok()) {
    ::unlink(tmp.c_str());
    return Internal("cannot write local file " + tmp + ": " + s.message());
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return LocalFileError("cannot rename a temporary file onto", path, err);
  }
  return Status::OK();
}

Result<ObjectInfo> MemoryStore::Stat(std::string_view key) {
  RETURN_IF_ERROR(ValidateKey(key));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) {
    return NotFound(Url() + ": object \"" + std::string(key) + "\" not found");
  }
  ObjectInfo info;
  info.key = it->first;
  info.size = it->second.data.size();
  info.mtime_ms = it->second.mtime_ms;
  info.etag = it->second.etag;
  return info;
}

// Items (keys, and common prefixes with a delimiter) come in byte order; the continuation token
// is the last item returned, and the next page starts with the first item greater than it.
Result<ListPage> MemoryStore::List(const ListOptions& o) {
  const size_t max_keys = o.max_keys == 0 ? 1000 : o.max_keys;
  const std::string& prefix = o.prefix;
  const std::string& delim = o.delimiter;
  const std::string& token = o.continuation_token;
  ListPage page;
  size_t count = 0;
  std::string last_item;

  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.lower_bound(std::max(prefix, token));
  while (it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0) {
    const std::string& key = it->first;
    std::string common;
    if (!delim.empty()) {
      size_t pos = key.find(delim, prefix.size());
      if (pos != std::string::npos) common = key.substr(0, pos + delim.size());
    }
    const bool is_prefix = !common.empty();
    const std::string& item = is_prefix ? common : key;
    bool emit = token.empty() || item > token;
    if (emit) {
      if (count == max_keys) {
        page.next_token = last_item;
        break;
      }
      if (is_prefix) {
        page.common_prefixes.push_back(common);
      } else {
        ObjectInfo info;
        info.key = key;
        info.size = it->second.data.size();
        info.mtime_ms = it->second.mtime_ms;
        info.etag = it->second.etag;
        page.objects.push_back(std::move(info));
      }
      last_item = item;
      ++count;
    }
    if (is_prefix) {
      std::string next = PrefixSuccessor(common);
      it = next.empty() ? objects_.end() : objects_.lower_bound(next);
    } else {
      ++it;
    }
  }
  return page;
}

Status MemoryStore::Delete(std::string_view key) {
  RETURN_IF_ERROR(ValidateKey(key));
  std::lock_guard<std::mutex> lock(mu_);
  auto it = objects_.find(key);
  if (it != objects_.end()) objects_.erase(it);
  return Status::OK();
}

Result<DeleteResult> MemoryStore::DeleteMany(const std::vector<std::string>& keys) {
  DeleteResult result;
  result.requests = keys.size();
  for (const auto& key : keys) {
    Status s = Delete(key);
    if (s.ok()) {
      ++result.deleted;
    } else {
      result.failed.emplace_back(key, std::move(s));
    }
  }
  return result;
}

}  // namespace respawn
