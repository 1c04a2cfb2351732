#include "ledger/lease.h"

#include <algorithm>

#include "ledger/data.h"
#include "util/crash_point.h"
#include "util/log.h"
#include "util/strings.h"

namespace respawn::ledger {
namespace {

using std::chrono::milliseconds;

milliseconds ToMs(LeaseHolder::Duration d) { return std::chrono::duration_cast<milliseconds>(d); }

// The lease is lost: this process must stop committing (the ledger's fenced error).
Status Fenced(std::string message) {
  return Status(StatusCode::kFailedPrecondition, std::move(message), StatusDetail::kFenced);
}

}  // namespace

int64_t WallClockMs() { return Clock::System()->WallNowMs(); }

LeaseHolder::LeaseHolder(Store& store, std::string key, std::string holder, std::string run_id,
                         LeaseOptions options, std::shared_ptr<Clock> clock)
    : store_(store),
      key_(std::move(key)),
      holder_(std::move(holder)),
      run_id_(std::move(run_id)),
      options_(options),
      clock_(clock != nullptr ? std::move(clock) : Clock::System()) {}

milliseconds LeaseHolder::Wait() const {
  return options_.wait.value_or(options_.ttl + options_.max_clock_skew + milliseconds(1000));
}

Result<std::optional<Lease>> LeaseHolder::Read(std::string* raw) {
  Result<std::string> got = store_.Get(key_);
  if (!got.ok() && !got.status().IsNotFound()) return got.status();
  const bool found = got.ok();
  std::string bytes = found ? std::move(got).value() : std::string();
  if (raw != nullptr) *raw = bytes;
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
  auto start = clock_->SteadyNow();
  RETURN_IF_ERROR(store_.Put(key_, bytes));
  if (latency != nullptr) {
    *latency = std::chrono::duration_cast<std::chrono::microseconds>(clock_->SteadyNow() - start);
  }
  return Status::OK();
}

std::chrono::milliseconds LeaseHolder::TimeLeft() const {
  if (!held_) return milliseconds(0);
  return ToMs(valid_until_ - clock_->SteadyNow());
}

Status LeaseHolder::HeldBy(const Lease& other, Duration left) const {
  return FailedPrecondition(
      "ledger lease " + Quoted(key_) + " is held by writer " + Quoted(other.holder) + " (run " +
      Quoted(other.run_id) + ", epoch " + std::to_string(other.epoch) + ") for up to another " +
      std::to_string(std::max<int64_t>(0, ToMs(left).count())) +
      " ms as this process sees it; another process is committing to this ledger. Stop it, or "
      "wait: a dead holder's lease expires by itself");
}

Status LeaseHolder::TakenOver(const Lease& current, std::string_view how) {
  held_ = false;
  return Fenced("fenced: ledger lease " + Quoted(key_) + " " + std::string(how) + " writer " +
                Quoted(current.holder) + " (run " + Quoted(current.run_id) + ", epoch " +
                std::to_string(current.epoch) + "); this process must stop");
}

Status LeaseHolder::TryAcquireOnce(uint64_t epoch, bool* won, Lease* other, Duration* other_left) {
  *won = false;
  std::string bytes;
  ASSIGN_OR_RETURN(std::optional<Lease> current, Read(&bytes));
  auto now = clock_->SteadyNow();
  if (current && current->holder != holder_) {
    // Time the holder's lease from when we first saw this exact version: a renewal or another
    // holder rewrites the object, which starts the observation over.
    if (bytes != observed_bytes_) {
      observed_bytes_ = bytes;
      observed_at_ = now;
    }
    milliseconds ttl = current->ttl_ms > 0 ? milliseconds(current->ttl_ms) : options_.ttl;
    auto expiry = observed_at_ + ttl + options_.max_clock_skew;
    if (now < expiry) {
      *other = *current;
      *other_left = expiry - now;
      return Status::OK();
    }
    RESPAWN_LOG(kInfo, "lease " << key_ << " of writer " << current->holder
                                << " unchanged for its TTL as seen here; taking it over");
  }
  Lease mine;
  mine.holder = holder_;
  mine.nonce = NewRandomId();
  mine.run_id = run_id_;
  mine.epoch = epoch;
  mine.acquired_at_ms = clock_->WallNowMs();
  mine.expires_at_ms = mine.acquired_at_ms + options_.ttl.count();
  mine.ttl_ms = options_.ttl.count();
  std::chrono::microseconds latency{0};
  auto written_from = clock_->SteadyNow();  // ours counts from before the write
  RETURN_IF_ERROR(Write(mine, &latency));
  milliseconds settle = options_.settle;
  if (settle.count() <= 0) {
    settle = std::max(milliseconds(100),
                      std::chrono::duration_cast<milliseconds>(2 * latency) + milliseconds(1));
  }
  last_settle_ = settle;
  clock_->SleepFor(settle);
  ASSIGN_OR_RETURN(std::optional<Lease> back, Read(&bytes));
  if (!back || back->nonce != mine.nonce) {
    if (back) {
      *other = *back;
      observed_bytes_ = bytes;
      observed_at_ = clock_->SteadyNow();
      *other_left = options_.ttl + options_.max_clock_skew;
    }
    return Status::OK();  // another writer wrote after us: it holds the lease
  }
  nonce_ = mine.nonce;
  acquired_at_ms_ = mine.acquired_at_ms;
  valid_until_ = written_from + options_.ttl - options_.max_clock_skew;
  epoch_ = epoch;
  held_ = true;
  *won = true;
  return Status::OK();
}

Status LeaseHolder::Acquire(uint64_t epoch) {
  auto deadline = clock_->SteadyNow() + Wait();
  for (;;) {
    bool won = false;
    Lease other;
    Duration other_left{};
    RETURN_IF_ERROR(TryAcquireOnce(epoch, &won, &other, &other_left));
    if (won) {
      CrashPoint<"ledger:lease-acquired">();
      return Status::OK();
    }
    auto now = clock_->SteadyNow();
    if (now >= deadline) {
      if (other.holder.empty()) {
        return FailedPrecondition("ledger lease " + Quoted(key_) +
                                  " was taken by another writer while we acquired it");
      }
      return HeldBy(other, other_left);
    }
    // Poll until the holder's lease could have expired, at most a second at a time.
    auto nap = std::clamp(ToMs(other_left), milliseconds(10), milliseconds(1000));
    nap = std::min(nap, ToMs(deadline - now) + milliseconds(1));
    clock_->SleepFor(nap);
  }
}

Status LeaseHolder::Ensure() {
  if (!held_) return FailedPrecondition("ledger lease " + Quoted(key_) + " is not held");
  ASSIGN_OR_RETURN(std::optional<Lease> current, Read());
  if (current && current->nonce != nonce_) return TakenOver(*current, "was taken over by");
  auto now = clock_->SteadyNow();
  if (!current || now >= valid_until_) {
    // Ours is gone or may have expired: another writer may be acquiring right now, so go
    // through the full acquisition with its settle wait.
    held_ = false;
    bool won = false;
    Lease other;
    Duration other_left{};
    RETURN_IF_ERROR(TryAcquireOnce(epoch_, &won, &other, &other_left));
    if (!won) return TakenOver(other, "expired and was taken over by");
    return Status::OK();
  }
  if (valid_until_ - now >= (options_.ttl - options_.max_clock_skew) / 2) return Status::OK();
  Lease renewed;
  renewed.holder = holder_;
  renewed.nonce = nonce_;
  renewed.run_id = run_id_;
  renewed.epoch = epoch_;
  renewed.acquired_at_ms = acquired_at_ms_;
  renewed.expires_at_ms = clock_->WallNowMs() + options_.ttl.count();
  renewed.ttl_ms = options_.ttl.count();
  CrashPoint<"ledger:before-lease-renew">();
  auto written_from = clock_->SteadyNow();
  RETURN_IF_ERROR(Write(renewed, nullptr));
  valid_until_ = written_from + options_.ttl - options_.max_clock_skew;
  CrashPoint<"ledger:after-lease-renew">();
  return Status::OK();
}

Status LeaseHolder::Recheck() {
  if (!held_) return FailedPrecondition("ledger lease " + Quoted(key_) + " is not held");
  ASSIGN_OR_RETURN(std::optional<Lease> current, Read());
  if (current && current->nonce != nonce_) return TakenOver(*current, "was taken over by");
  if (!current) {
    held_ = false;
    return Fenced("ledger lease " + Quoted(key_) +
                  " disappeared while this process was committing; this process must stop");
  }
  if (clock_->SteadyNow() >= valid_until_) {
    held_ = false;
    return Fenced(
        "ledger lease " + Quoted(key_) +
        " ran out while this process was writing a record (the write took longer than the "
        "time left on the lease); whether that commit landed is unknown, and another writer may "
        "have taken over. This process stops; run again to recover");
  }
  return Status::OK();
}

Status LeaseHolder::Release() {
  if (!held_) return Status::OK();
  held_ = false;
  ASSIGN_OR_RETURN(std::optional<Lease> current, Read());
  if (!current || current->nonce != nonce_) return Status::OK();
  // Deleting a lease that may have expired could delete a successor's: only release a live one.
  if (clock_->SteadyNow() >= valid_until_) return Status::OK();
  return store_.Delete(key_);
}

}  // namespace respawn::ledger
