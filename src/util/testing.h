// Test assertions for Status and Result<T>, for unit tests and suites (include from *_test.cc
// only: this header pulls in gtest).
//
//   ASSERT_OK(expr);                      // expr is a Status or a Result<T>; fatal when not OK
//   EXPECT_OK(expr);                      // the same, non-fatal
//   ASSERT_OK_AND_ASSIGN(T v, expr);      // expr is a Result<T>; fatal when not OK, else v = value
//
// A failure prints the expression and the Status (code and message). Extra context may be
// streamed after ASSERT_OK / EXPECT_OK like after any gtest assertion: `ASSERT_OK(s) << key;`.
#pragma once

#include <gtest/gtest.h>

#include <utility>

#include "util/status.h"

namespace respawn::test {

inline const Status& StatusOf(const Status& status) { return status; }
template <typename T>
const Status& StatusOf(const Result<T>& result) {
  return result.status();
}

/// gtest predicate-formatter: success when `value` (a Status or Result) is OK; otherwise a failure
/// naming `expr` and the Status.
template <typename R>
::testing::AssertionResult IsOkFormat(const char* expr, const R& value) {
  const Status& status = StatusOf(value);
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << expr << " is not OK: " << status.ToString();
}

}  // namespace respawn::test

#define ASSERT_OK(expr) ASSERT_PRED_FORMAT1(::respawn::test::IsOkFormat, expr)
#define EXPECT_OK(expr) EXPECT_PRED_FORMAT1(::respawn::test::IsOkFormat, expr)

#define RESPAWN_ASSERT_OK_AND_ASSIGN_IMPL(tmp, lhs, expr)                                      \
  auto tmp = (expr);                                                                           \
  if (::testing::AssertionResult _respawn_assert_ok = ::respawn::test::IsOkFormat(#expr, tmp); \
      !_respawn_assert_ok)                                                                     \
    FAIL() << _respawn_assert_ok.message();                                                    \
  lhs = std::move(tmp).value()

/// Declares or assigns `lhs` from the value of the Result `expr`; a fatal failure (the test
/// returns) when `expr` is not OK. Expands to several statements: not for an unbraced if/for body.
#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  RESPAWN_ASSERT_OK_AND_ASSIGN_IMPL(RESPAWN_CONCAT(_respawn_assert_res_, __LINE__), lhs, expr)
