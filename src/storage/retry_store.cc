#include "storage/retry_store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <utility>

#include "util/hash.h"
#include "util/strings.h"

namespace respawn {
namespace {

// Read-back of an ambiguous put-if-absent compares the stored object in chunks of this size, so
// a large object never sits in memory whole.
constexpr uint64_t kCompareChunk = 8ull << 20;

const Status& StatusOf(const Status& s) { return s; }
template <typename T>
const Status& StatusOf(const Result<T>& r) {
  return r.status();
}

// The status a caller sees when retries ran out: same code, message extended with the count.
Status GaveUp(const Status& last, int attempts) {
  return Status(last.code(), last.message() + " (gave up after " + std::to_string(attempts) +
                                 (attempts == 1 ? " attempt" : " attempts") +
                                 "; the store kept failing with a retryable error)");
}

// Runs `call` until it succeeds, fails with a status that is not retryable, or the policy's
// attempts or deadline run out.
template <typename Call>
auto RetryCall(const RetryPolicy& policy, Clock& clock, Call&& call) -> decltype(call()) {
  Backoff backoff(policy, clock);
  for (;;) {
    auto result = call();
    if (result.ok() || !RetryPolicy::IsRetryable(StatusOf(result))) return result;
    if (!backoff.Next()) return GaveUp(StatusOf(result), backoff.attempts());
  }
}

// The policy for one put: its deadline capped by the call's own time limit.
RetryPolicy ForCall(RetryPolicy policy, const PutOptions& o) {
  if (o.timeout.count() > 0) policy.deadline = std::min(policy.deadline, o.timeout);
  return policy;
}

}  // namespace

RetryStore::RetryStore(std::shared_ptr<Store> target, RetryPolicy policy,
                       std::shared_ptr<Clock> clock)
    : StoreWrapper(std::move(target)), policy_(policy), clock_(std::move(clock)) {}

Result<bool> RetryStore::StoredObjectMatches(std::string_view key, uint64_t size,
                                             const std::function<bool(std::string_view)>& chunk,
                                             const std::function<bool()>& finish) {
  Result<ObjectInfo> info = Stat(key);
  if (!info.ok()) return info.status();
  if (info->size != size) return false;
  for (uint64_t offset = 0; offset < size;) {
    uint64_t want = std::min(kCompareChunk, size - offset);
    Result<std::string> part = GetRange(key, offset, want);
    if (!part.ok()) return part.status();
    if (part->empty() || part->size() > want) return false;  // the object changed under us
    if (!chunk(*part)) return false;
    offset += part->size();
  }
  return finish();
}

Status RetryStore::ResolveAmbiguousPut(std::string_view key, const Status& already_exists,
                                       const std::function<Result<bool>()>& matches) {
  Result<bool> ours = matches();
  if (ours.ok()) return *ours ? Status::OK() : already_exists;
  // The object that made the put fail vanished before it could be compared: some other writer
  // owned the key (ours would not be deleted behind our back), so the key was taken.
  if (ours.status().IsNotFound()) return already_exists;
  return Status(ours.status().code(),
                "put-if-absent of " + Quoted(key) + " in " + Url() +
                    ": an earlier attempt failed ambiguously and the key now exists, but reading "
                    "it back to tell whether it is our write failed: " +
                    ours.status().message());
}

Status RetryStore::Put(std::string_view key, std::string_view data, const PutOptions& o) {
  Backoff backoff(ForCall(policy_, o), *clock_);
  bool ambiguous = false;  // an earlier attempt failed in a way that may have written the object
  for (;;) {
    Status s = target_->Put(key, data, o);
    if (o.if_absent && ambiguous && s.IsAlreadyExists()) {
      return ResolveAmbiguousPut(key, s, [&]() -> Result<bool> {
        uint64_t offset = 0;
        return StoredObjectMatches(
            key, data.size(),
            [&](std::string_view part) {
              bool same = data.substr(offset, part.size()) == part;
              offset += part.size();
              return same;
            },
            [&] { return offset == data.size(); });
      });
    }
    if (s.ok() || !RetryPolicy::IsRetryable(s)) return s;
    ambiguous = true;
    if (!backoff.Next()) return GaveUp(s, backoff.attempts());
  }
}

Status RetryStore::PutFile(std::string_view key, const std::string& path, const PutOptions& o) {
  Backoff backoff(ForCall(policy_, o), *clock_);
  bool ambiguous = false;  // an earlier attempt failed in a way that may have written the object
  for (;;) {
    Status s = target_->PutFile(key, path, o);
    if (o.if_absent && ambiguous && s.IsAlreadyExists()) {
      return ResolveAmbiguousPut(key, s, [&]() -> Result<bool> {
        struct stat st;
        if (::stat(path.c_str(), &st) != 0) {
          return Internal("cannot stat local file " + path + ": " + std::strerror(errno));
        }
        Result<uint64_t> local_hash = Xxh3File(path);
        if (!local_hash.ok()) return local_hash.status();
        Xxh3Stream stored_hash;
        return StoredObjectMatches(
            key, static_cast<uint64_t>(st.st_size),
            [&](std::string_view part) {
              stored_hash.Update(part);
              return true;
            },
            [&] { return stored_hash.Digest() == *local_hash; });
      });
    }
    if (s.ok() || !RetryPolicy::IsRetryable(s)) return s;
    ambiguous = true;
    if (!backoff.Next()) return GaveUp(s, backoff.attempts());
  }
}

Result<std::string> RetryStore::Get(std::string_view key, const GetOptions& o) {
  return RetryCall(policy_, *clock_, [&] { return target_->Get(key, o); });
}

Result<std::string> RetryStore::GetRange(std::string_view key, uint64_t offset, uint64_t length) {
  return RetryCall(policy_, *clock_, [&] { return target_->GetRange(key, offset, length); });
}

Status RetryStore::GetToFile(std::string_view key, const std::string& path, const GetOptions& o) {
  return RetryCall(policy_, *clock_, [&] { return target_->GetToFile(key, path, o); });
}

Result<ObjectInfo> RetryStore::Stat(std::string_view key) {
  return RetryCall(policy_, *clock_, [&] { return target_->Stat(key); });
}

Result<ListPage> RetryStore::List(const ListOptions& o) {
  return RetryCall(policy_, *clock_, [&] { return target_->List(o); });
}

Status RetryStore::Delete(std::string_view key) {
  return RetryCall(policy_, *clock_, [&] { return target_->Delete(key); });
}

Result<DeleteResult> RetryStore::DeleteMany(const std::vector<std::string>& keys) {
  Backoff backoff(policy_, *clock_);
  DeleteResult total;
  std::vector<std::string> pending = keys;
  bool first_round = true;
  for (;;) {
    Result<DeleteResult> round = target_->DeleteMany(pending);
    if (!round.ok()) {
      const Status& s = round.status();
      bool again = RetryPolicy::IsRetryable(s) && backoff.Next();
      if (again) continue;
      Status final_status = RetryPolicy::IsRetryable(s) ? GaveUp(s, backoff.attempts()) : s;
      // Before any key was settled the call fails as a whole, as the target's would; later the
      // keys still pending are reported one by one, with the keys already settled.
      if (first_round) return final_status;
      for (auto& key : pending) total.failed.emplace_back(std::move(key), final_status);
      return total;
    }
    first_round = false;
    total.deleted += round->deleted;
    total.requests += round->requests;
    std::vector<std::string> retry_keys;
    std::vector<Status> retry_status;
    for (auto& [key, status] : round->failed) {
      if (RetryPolicy::IsRetryable(status)) {
        retry_keys.push_back(std::move(key));
        retry_status.push_back(std::move(status));
      } else {
        total.failed.emplace_back(std::move(key), std::move(status));
      }
    }
    if (retry_keys.empty()) return total;
    if (!backoff.Next()) {
      for (size_t i = 0; i < retry_keys.size(); ++i) {
        total.failed.emplace_back(std::move(retry_keys[i]),
                                  GaveUp(retry_status[i], backoff.attempts()));
      }
      return total;
    }
    pending = std::move(retry_keys);
  }
}

}  // namespace respawn
