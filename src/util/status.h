// Status and Result<T>: how respawn code reports failure without exceptions.
//
// The code tells the caller what to do next (Abseil's rule):
//   kUnavailable        retry this call (timeout, reset, 5xx, SlowDown)
//   kAborted            retry the whole operation (lost a put-if-absent race)
//   kFailedPrecondition do not retry until someone fixes state (fenced out, bucket missing)
//   kDataLoss           a size or checksum did not verify
//   kInvalidArgument    the user's input is wrong
//   kNotFound           the named object does not exist
//   kAlreadyExists      put-if-absent found the key taken
//   kPermissionDenied   credentials or file permissions refuse the operation
//   kUnimplemented      the backend cannot do this (e.g. conditional PUT on Swift)
//   kDeadlineExceeded   the configured timeout elapsed
//   kCancelled          the caller asked to stop (SIGINT/SIGTERM, a cancelled task): not a failure
//   kInternal           a bug or an unexpected answer
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace respawn {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kAlreadyExists,
  kPermissionDenied,
  kFailedPrecondition,
  kAborted,
  kUnavailable,
  kDeadlineExceeded,
  kDataLoss,
  kUnimplemented,
  kInternal,
  kCancelled,
};

std::string_view StatusCodeName(StatusCode code);

/// What a caller may need to branch on beyond the code, set where the error is made (RocksDB's
/// IOStatus subcodes): checked by code, never by searching the message.
enum class StatusDetail : int {
  kNone = 0,
  /// A newer writer took over the ledger; this process must stop committing.
  kFenced,
  /// The store or its credentials are misconfigured (unknown access key, bad signature, access
  /// denied, bucket missing): the user must fix the configuration; the CLI exits 2.
  kConfiguration,
  /// A ledger object failed verification or is missing: `respawn verify` / `repair` help.
  kLedgerDamaged,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}
  Status(StatusCode code, std::string message, StatusDetail detail)
      : code_(code), message_(std::move(message)), detail_(detail) {}

  static Status OK() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  StatusDetail detail() const { return detail_; }
  bool IsFenced() const { return detail_ == StatusDetail::kFenced; }

  bool IsNotFound() const { return code_ == StatusCode::kNotFound; }
  bool IsAlreadyExists() const { return code_ == StatusCode::kAlreadyExists; }
  bool IsUnavailable() const { return code_ == StatusCode::kUnavailable; }
  bool IsCancelled() const { return code_ == StatusCode::kCancelled; }

  /// "NotFound: message" or "OK".
  std::string ToString() const;

  /// Returns a copy whose message is prefixed with `context + ": "` (code and detail kept).
  Status WithContext(std::string_view context) const;
  /// Returns a copy carrying `detail`.
  Status WithDetail(StatusDetail detail) const {
    Status s = *this;
    s.detail_ = detail;
    return s;
  }

  /// Explicitly discard a status (for best-effort cleanup paths).
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
  StatusDetail detail_ = StatusDetail::kNone;
};

inline bool operator==(const Status& a, const Status& b) {
  return a.code() == b.code() && a.message() == b.message();
}

Status InvalidArgument(std::string message);
Status NotFound(std::string message);
Status AlreadyExists(std::string message);
Status PermissionDenied(std::string message);
Status FailedPrecondition(std::string message);
Status Aborted(std::string message);
Status Unavailable(std::string message);
Status DeadlineExceeded(std::string message);
Status DataLoss(std::string message);
Status Unimplemented(std::string message);
Status Internal(std::string message);
Status Cancelled(std::string message);

namespace internal {
/// Prints the status and aborts (a Result's value read although it holds an error).
[[noreturn]] void DieOnValueOfError(const Status& status);
}  // namespace internal

/// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    if (status_.ok()) status_ = Internal("Result constructed from an OK Status without a value");
  }

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }

  /// REQUIRES: ok(). Reading the value of an error is a bug: it aborts naming the error.
  T& value() & { return CheckedValue(); }
  const T& value() const& { return const_cast<Result*>(this)->CheckedValue(); }
  T&& value() && { return std::move(CheckedValue()); }
  T& operator*() & { return CheckedValue(); }
  const T& operator*() const& { return const_cast<Result*>(this)->CheckedValue(); }
  T* operator->() { return &CheckedValue(); }
  const T* operator->() const { return &const_cast<Result*>(this)->CheckedValue(); }

  T ValueOr(T fallback) const& { return ok() ? *value_ : std::move(fallback); }

 private:
  T& CheckedValue() {
    if (!value_.has_value()) internal::DieOnValueOfError(status_);
    return *value_;
  }

  Status status_;
  std::optional<T> value_;
};

}  // namespace respawn

#define RESPAWN_CONCAT_INNER(a, b) a##b
#define RESPAWN_CONCAT(a, b) RESPAWN_CONCAT_INNER(a, b)

#define RETURN_IF_ERROR(expr)                          \
  do {                                                 \
    ::respawn::Status _respawn_st = (expr);            \
    if (!_respawn_st.ok()) return _respawn_st;         \
  } while (0)

#define RESPAWN_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  RESPAWN_ASSIGN_OR_RETURN_IMPL(RESPAWN_CONCAT(_respawn_res_, __LINE__), lhs, expr)
