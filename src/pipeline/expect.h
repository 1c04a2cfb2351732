// Data tests of a stage (dbt's tests, checked before anything commits):
//
//   [stages.orders_clean]
//   sql = "SELECT ..."
//   expect = ["unique(order_id)", "not_null(customer_id)", "rows > 0",
//             "accepted_values(status, ['new', 'paid'])"]
//   expect_sql = "SELECT * FROM orders_clean WHERE amount < 0"   # or a list of queries
//   severity = "warn"                                            # default "error"
//
// Each expectation is a query over the stage's result returning the rows that violate it; none
// returned means it holds. They run on the task's connection right after the stage computes and
// before its checkpoint is handed to the checkpointer: a violated expectation of severity
// "error" fails the stage, and nothing of it (nor of anything downstream) is committed; "warn"
// reports the same and the run goes on.
//
// Expectations are not part of the fingerprint (they do not change the data, so downstream
// stages never recompute for them). A checkpoint records the id of the expectations it was
// checked against (ExpectationsId); when a stage's expectations change, its checkpoint is not
// reused: the stage computes again, even when nothing reads it in this run (the plan makes it a
// target), and is checked on the way; same data, same fingerprint, so what reads it stays
// reused. Re-checking the reused data instead would need a checkpoint downloaded that nothing
// else may need, and a failure there would leave a committed checkpoint that does not pass;
// recomputing keeps one rule with one code path: a committed checkpoint has passed its stage's
// current expectations (or broken only "warn" ones). Warnings are reported when the stage
// computes, not again when it is reused.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/dag.h"
#include "pipeline/spec.h"
#include "sql/engine.h"
#include "util/status.h"

namespace respawn {

/// Parses one `expect` entry: "unique(a, b)", "not_null(a)", "rows > 0",
/// "accepted_values(status, ['new', 'paid'])". Columns are identifiers or "double quoted";
/// values are 'strings', numbers, true or false. InvalidArgument whose message continues
/// `<file>:<line>: stage "x": expect "...": ` (an unknown kind gets a did-you-mean).
Result<Expectation> ParseExpectation(std::string_view text);

/// The expectation in one canonical form ("unique(order_id)", "rows > 0", the SQL).
std::string CanonicalExpectation(const Expectation& e);

/// What a checkpoint records of the expectations it was checked against: "" when the stage has
/// none, else a hash of their canonical forms and the severity.
std::string ExpectationsId(const StageSpec& stage);

/// A SELECT returning the rows of table `table` that violate `e`.
std::string ViolationsSql(const Expectation& e, std::string_view table);

/// A violated expectation.
struct ExpectationViolation {
  std::string expectation;  // as written ("unique(order_id)"), or "expect_sql"
  int line = 0;             // of the expectation in the pipeline file
  uint64_t rows = 0;        // rows violating it
  /// "<file>:<line>: stage "x": expect "..." failed: N rows violate it:" and the first 10 of
  /// them as a small table, one indented line each.
  std::string message;
};

/// Checks every expectation of stage node `v` against its result as defined on `conn`.
/// Returns the violated ones (empty: all hold); errors are the expectations' SQL errors,
/// naming file, line and stage.
Result<std::vector<ExpectationViolation>> CheckExpectations(const PipelineSpec& spec,
                                                            const Dag& dag, int v,
                                                            Connection& conn);

/// For the pipeline check: binds every expectation of stage node `v` against its view in the
/// scratch database on `conn` (unknown columns, bad SQL), and refuses an expect_sql reading a
/// table other than the stage and its inputs. InvalidArgument naming file, line and stage.
Status CheckExpectationSql(const PipelineSpec& spec, const Dag& dag, int v, Connection& conn);

}  // namespace respawn
