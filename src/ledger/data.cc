#include "ledger/data.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <random>

#include "util/crash_point.h"
#include "util/hash.h"
#include "util/strings.h"
#include "util/thread_pool.h"

namespace respawn::ledger {
namespace {

constexpr uint64_t kVerifyChunk = 8 << 20;

Status Mismatch(const DataObject& o, std::string_view what, const std::string& expected,
                const std::string& actual) {
  return DataLoss("data object " + Quoted(o.key) + " failed verification: " + std::string(what) +
                  " is " + actual + " but the commit record says " + expected +
                  "; the object was truncated or changed after it was committed");
}

Status CheckBytes(const DataObject& o, std::string_view data) {
  if (data.size() != o.size) {
    return Mismatch(o, "size", std::to_string(o.size) + " bytes",
                    std::to_string(data.size()) + " bytes");
  }
  uint64_t sum = Xxh3(data);
  if (sum != o.xxh3) return Mismatch(o, "xxh3", HexU64(o.xxh3), HexU64(sum));
  return Status::OK();
}

Status PutNew(Store& store, const DataObject& object,
              const std::function<Status(const PutOptions&)>& put) {
  PutOptions options;
  options.if_absent = store.capabilities().put_if_absent;
  Status st = put(options);
  if (st.code() == StatusCode::kUnimplemented && options.if_absent) {
    options.if_absent = false;  // this path cannot do it (e.g. multipart); the name is unique
    st = put(options);
  }
  if (st.IsAlreadyExists()) {
    // The store's retry layer resolves its own ambiguous attempts; this covers an answer lost
    // above it. Names are unique per attempt, so an object with our exact bytes is ours.
    if (VerifyData(store, object, /*checksum=*/true).ok()) return Status::OK();
    return Internal("data object " + Quoted(object.key) +
                    " already exists; data keys must be unique per attempt "
                    "(use Ledger::NewAttemptPrefix)");
  }
  return st;
}

}  // namespace

std::string NewRandomId() {
  static std::mutex mu;
  static std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), static_cast<unsigned>(getpid())};
    return std::mt19937_64(seq);
  }();
  static pid_t owner = getpid();
  std::lock_guard<std::mutex> lock(mu);
  if (getpid() != owner) {
    // A forked child must not repeat its parent's ids.
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), rd(), rd(), static_cast<unsigned>(getpid())};
    rng.seed(seq);
    owner = getpid();
  }
  uint64_t a = rng();
  uint64_t b = rng();
  return HexU64(a) + HexU64(b);
}

Result<DataObject> PutData(Store& store, std::string_view key, std::string_view data) {
  DataObject o;
  o.key = std::string(key);
  o.size = data.size();
  o.xxh3 = Xxh3(data);
  CrashPoint<"ledger:before-data">();
  RETURN_IF_ERROR(
      PutNew(store, o, [&](const PutOptions& options) { return store.Put(key, data, options); }));
  CrashPoint<"ledger:after-data">();
  return o;
}

Result<DataObject> PutDataFile(Store& store, std::string_view key, const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    int err = errno;
    std::string msg = "cannot read local file " + path + " to store as " + Quoted(key) + ": " +
                      std::strerror(err);
    return err == ENOENT ? NotFound(msg) : Internal(msg);
  }
  DataObject o;
  o.key = std::string(key);
  o.size = static_cast<uint64_t>(st.st_size);
  ASSIGN_OR_RETURN(o.xxh3, Xxh3File(path));
  CrashPoint<"ledger:before-data">();
  RETURN_IF_ERROR(PutNew(
      store, o, [&](const PutOptions& options) { return store.PutFile(key, path, options); }));
  CrashPoint<"ledger:after-data">();
  return o;
}

Result<DataObject> PutDataFile(Store& store, const DataObject& object, const std::string& path) {
  CrashPoint<"ledger:before-data">();
  // A plain put: the key is fresh, and on S3 only a plain put of a big file goes up multipart
  // (put-if-absent there is one PUT). Retries are the store's (store.h).
  RETURN_IF_ERROR(store.PutFile(object.key, path, PutOptions{}));
  CrashPoint<"ledger:after-data">();
  return object;
}

Result<std::string> GetData(Store& store, const DataObject& object) {
  ASSIGN_OR_RETURN(std::string data, store.Get(object.key));
  RETURN_IF_ERROR(CheckBytes(object, data));
  return data;
}

Status GetDataToFile(Store& store, const DataObject& object, const std::string& path) {
  RETURN_IF_ERROR(store.GetToFile(object.key, path));
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    return Internal("downloaded " + Quoted(object.key) + " to " + path +
                    " but cannot stat it: " + std::strerror(errno));
  }
  Status bad;
  if (static_cast<uint64_t>(st.st_size) != object.size) {
    bad = Mismatch(object, "size", std::to_string(object.size) + " bytes",
                   std::to_string(st.st_size) + " bytes");
  } else {
    auto sum = Xxh3File(path);
    if (!sum.ok()) {
      bad = sum.status();
    } else if (*sum != object.xxh3) {
      bad = Mismatch(object, "xxh3", HexU64(object.xxh3), HexU64(*sum));
    }
  }
  if (!bad.ok()) std::remove(path.c_str());
  return bad;
}

Status VerifyData(Store& store, const DataObject& object, bool checksum) {
  ASSIGN_OR_RETURN(ObjectInfo info, store.Stat(object.key));
  if (info.size != object.size) {
    return Mismatch(object, "size", std::to_string(object.size) + " bytes",
                    std::to_string(info.size) + " bytes");
  }
  if (!checksum) return Status::OK();
  Xxh3Stream hash;
  for (uint64_t offset = 0; offset < object.size;) {
    uint64_t length = std::min(kVerifyChunk, object.size - offset);
    ASSIGN_OR_RETURN(std::string chunk, store.GetRange(object.key, offset, length));
    if (chunk.empty()) break;  // shrank since Stat; the size check below reports it
    hash.Update(chunk);
    offset += chunk.size();
    if (offset < object.size && chunk.size() < length) {
      return Mismatch(object, "size", std::to_string(object.size) + " bytes",
                      std::to_string(offset) + " bytes");
    }
  }
  uint64_t sum = hash.Digest();
  if (sum != object.xxh3) return Mismatch(object, "xxh3", HexU64(object.xxh3), HexU64(sum));
  return Status::OK();
}

Status VerifyData(Store& store, const Entry& entry, bool checksum) {
  std::vector<Status> results(entry.objects.size());
  ParallelFor(entry.objects.size(), 8,
              [&](size_t i) { results[i] = VerifyData(store, entry.objects[i], checksum); });
  for (auto& s : results) {
    if (!s.ok()) return s;
  }
  return Status::OK();
}

}  // namespace respawn::ledger
