#include "ledger/lease.h"

#include <algorithm>
#include <thread>

#include "ledger/data.h"
#include "util/crash_point.h"
#include "util/log.h"

namespace respawn::ledger {
namespace {

using std::chrono::milliseconds;

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

int64_t WallClockMs() {
  return std::chrono::duration_cast<milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

LeaseHolder::LeaseHolder(Store& store, std::string key, std::string holder, std::string run_id,
                         LeaseOptions options, RetryPolicy retry)
    : store_(store),
      key_(std::move(key)),
      holder_(std::move(holder)),
      run_id_(std::move(run_id)),
      options_(options),
      retry_(retry) {}

Result<std::optional<Lease>> LeaseHolder::Read() {
  std::string bytes;
  bool found = true;
  RETURN_IF_ERROR(WithRetry(retry_, [&]() -> Status {
    auto r = store_.Get(key_);
    if (r.status().IsNotFound()) {
      found = false;
      return Status::OK();
    }
    if (!r.ok()) return r.status();
    bytes = std::move(r).value();
    return Status::OK();
  }));
  if (!found) return std::optional<Lease>();
  auto lease = DecodeLease(key_, bytes);
  if (!lease.ok()) {
    RESPAWN_LOG(kWarn, "ignoring unreadable lease " << key_ << ": " << lease.status().ToString());
    return std::optional<Lease>();
  }
  return std::optional<Lease>(std::move(lease).value());
}

Status LeaseHolder::Write(const Lease& lease, std::chrono::microseconds* latency) {
  ASSIGN_OR_RETURN(std::string bytes, EncodeLease(lease));
  auto start = std::chrono::steady_clock::now();
  RETURN_IF_ERROR(WithRetry(retry_, [&] { return store_.Put(key_, bytes); }));
  if (latency != nullptr) {
    *latency = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - start);
  }
  return Status::OK();
}

Status LeaseHolder::HeldBy(const Lease& other) const {
  int64_t left = other.expires_at_ms - WallClockMs();
  return FailedPrecondition(
      "ledger lease " + Quoted(key_) + " is held by writer " + Quoted(other.holder) + " (run " +
      Quoted(other.run_id) + ", epoch " + std::to_string(other.epoch) + ") for another " +
      std::to_string(std::max<int64_t>(0, left)) +
      " ms; another process is committing to this ledger. Stop it, or wait: a dead holder's "
      "lease expires by itself (this store cannot put-if-absent, so respawn uses a lease)");
}

Status LeaseHolder::TryAcquireOnce(uint64_t epoch, bool* won, Lease* other) {
  *won = false;
  ASSIGN_OR_RETURN(std::optional<Lease> current, Read());
  int64_t now = WallClockMs();
  if (current && current->holder != holder_ &&
      current->expires_at_ms + options_.max_clock_skew.count() > now) {
    *other = *current;
    return Status::OK();
  }
  Lease mine;
  mine.holder = holder_;
  mine.nonce = NewRandomId();
  mine.run_id = run_id_;
  mine.epoch = epoch;
  mine.acquired_at_ms = now;
  mine.expires_at_ms = now + options_.ttl.count();
  mine.ttl_ms = options_.ttl.count();
  std::chrono::microseconds latency{0};
  RETURN_IF_ERROR(Write(mine, &latency));
  milliseconds settle = options_.settle;
  if (settle.count() <= 0) {
    settle = std::max(milliseconds(100),
                      std::chrono::duration_cast<milliseconds>(2 * latency) + milliseconds(1));
  }
  last_settle_ = settle;
  std::this_thread::sleep_for(settle);
  ASSIGN_OR_RETURN(std::optional<Lease> back, Read());
  if (!back || back->nonce != mine.nonce) {
    if (back) *other = *back;
    return Status::OK();  // another writer wrote after us: it holds the lease
  }
  nonce_ = mine.nonce;
  acquired_at_ms_ = mine.acquired_at_ms;
  expires_at_ms_ = mine.expires_at_ms;
  epoch_ = epoch;
  held_ = true;
  *won = true;
  return Status::OK();
}

Status LeaseHolder::Acquire(uint64_t epoch) {
  auto deadline = std::chrono::steady_clock::now() + options_.wait;
  for (;;) {
    bool won = false;
    Lease other;
    RETURN_IF_ERROR(TryAcquireOnce(epoch, &won, &other));
    if (won) {
      CrashPoint<"ledger:lease-acquired">();
      return Status::OK();
    }
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      if (other.holder.empty()) {
        return FailedPrecondition("ledger lease " + Quoted(key_) +
                                  " was taken by another writer while we acquired it");
      }
      return HeldBy(other);
    }
    // Poll: until the holder's lease could have expired, at most a second at a time.
    int64_t until_expiry = other.expires_at_ms + options_.max_clock_skew.count() - WallClockMs();
    auto nap = milliseconds(std::clamp<int64_t>(until_expiry, 10, 1000));
    nap = std::min(nap, std::chrono::duration_cast<milliseconds>(deadline - now) + milliseconds(1));
    std::this_thread::sleep_for(nap);
  }
}

Status LeaseHolder::Ensure() {
  if (!held_) return FailedPrecondition("ledger lease " + Quoted(key_) + " is not held");
  ASSIGN_OR_RETURN(std::optional<Lease> current, Read());
  if (current && current->nonce != nonce_) {
    held_ = false;
    return FailedPrecondition("fenced: ledger lease " + Quoted(key_) + " was taken over by writer " +
                              Quoted(current->holder) + " (run " + Quoted(current->run_id) +
                              ", epoch " + std::to_string(current->epoch) +
                              "); this process must stop");
  }
  int64_t now = WallClockMs();
  if (!current || now + options_.max_clock_skew.count() >= expires_at_ms_) {
    // Ours is gone or (nearly) expired: another writer may be acquiring right now, so go through
    // the full acquisition with its settle wait.
    held_ = false;
    bool won = false;
    Lease other;
    RETURN_IF_ERROR(TryAcquireOnce(epoch_, &won, &other));
    if (!won) {
      return FailedPrecondition("fenced: ledger lease " + Quoted(key_) +
                                " expired and was taken over by writer " + Quoted(other.holder) +
                                " (run " + Quoted(other.run_id) + ", epoch " +
                                std::to_string(other.epoch) + "); this process must stop");
    }
    return Status::OK();
  }
  if (expires_at_ms_ - now >= options_.ttl.count() / 2) return Status::OK();
  Lease renewed;
  renewed.holder = holder_;
  renewed.nonce = nonce_;
  renewed.run_id = run_id_;
  renewed.epoch = epoch_;
  renewed.acquired_at_ms = acquired_at_ms_;
  renewed.expires_at_ms = now + options_.ttl.count();
  renewed.ttl_ms = options_.ttl.count();
  CrashPoint<"ledger:before-lease-renew">();
  RETURN_IF_ERROR(Write(renewed, nullptr));
  expires_at_ms_ = renewed.expires_at_ms;
  CrashPoint<"ledger:after-lease-renew">();
  return Status::OK();
}

Status LeaseHolder::Release() {
  if (!held_) return Status::OK();
  held_ = false;
  ASSIGN_OR_RETURN(std::optional<Lease> current, Read());
  if (!current || current->nonce != nonce_) return Status::OK();
  // Deleting a lease that expired could delete a successor's: only release a live one.
  if (WallClockMs() + options_.max_clock_skew.count() >= expires_at_ms_) return Status::OK();
  return WithRetry(retry_, [&] { return store_.Delete(key_); });
}

}  // namespace respawn::ledger
