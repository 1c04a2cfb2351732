#!/usr/bin/env bash
# Bad pipelines get one clear error naming the file, the line and the stage, the documented exit
# code (2: the pipeline file or the command line is wrong; 1: the run failed, e.g. SQL that fails
# at run time), and never damage what an earlier run committed.
#
# Usage: tests/pipeline_errors_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

# good_pipeline DIR: a small valid pipeline with a CSV source, in DIR.
good_pipeline() {
  mkdir -p "$1/data"
  cat >"$1/data/orders.csv" <<'EOF'
id,customer,amount
1,ann,10
2,bob,20
3,ann,5
4,cid,abc
EOF
  cat >"$1/pipeline.toml" <<'EOF'
name = "errs"

[sources.orders]
path = "data/orders.csv"
options = { all_varchar = true }

[stages.clean]
sql = "SELECT CAST(id AS INTEGER) AS id, customer, amount FROM orders"

[stages.per_customer]
sql = """
SELECT customer, count(*) AS n
FROM clean
GROUP BY customer
ORDER BY customer
"""

[stages.report]
sql = "SELECT * FROM per_customer ORDER BY customer"

[outputs.report_out]
from = "report"
path = "out/report.csv"
EOF
}

# one_error LINE_RE [WORDS...]: stderr holds exactly one "respawn: " line, which matches
# "pipeline.toml:LINE_RE" and contains each of WORDS; no stack traces or internal errors.
one_error() {
  local line_re="$1"
  shift
  local n
  n="$(grep -c '^respawn: ' err.txt || true)"
  if [ "$n" -ne 1 ]; then
    echo "want one 'respawn: ' line on stderr, got $n:"
    cat err.txt
    return 1
  fi
  local msg
  msg="$(grep '^respawn: ' err.txt)"
  echo "message: $msg"
  if ! grep -Eq "pipeline\\.toml:$line_re\\b" <<<"$msg"; then
    echo "the message does not name pipeline.toml:$line_re"
    return 1
  fi
  local w
  for w in "$@"; do
    grep -Fq -- "$w" <<<"$msg" || { echo "the message does not contain '$w'"; return 1; }
  done
  if grep -Eiq 'terminate called|assertion|segmentation|internal' err.txt; then
    echo "an internal failure on stderr"
    return 1
  fi
}

# committed_then DIR: runs DIR's good pipeline, keeps its store digest in DIR/digest.before and
# its output in DIR/ref.
committed_then() {
  good_pipeline "$1"
  expect_exit 0 "$R" run --no-gc "$1/pipeline.toml"
  store_digest "$1/.respawn" >"$1/digest.before"
  snapshot_outputs "$1/pipeline.toml" "$1/ref"
  cmp -s "$1/ref/report_out.csv" <(printf 'customer,n\nann,2\nbob,1\ncid,1\n') ||
    { echo "unexpected reference output:"; cat "$1/ref/report_out.csv"; return 1; }
}

# store_unchanged DIR: no file the earlier run committed changed or vanished (exact: no new
# files either when EXACT=1).
store_unchanged() {
  store_digest "$1/.respawn" >"$1/digest.after"
  if [ "${EXACT:-0}" = 1 ]; then
    diff "$1/digest.before" "$1/digest.after" || { echo "the store changed"; return 1; }
  else
    local missing
    missing="$(comm -23 <(sort "$1/digest.before") <(sort "$1/digest.after"))"
    [ -z "$missing" ] || { echo "committed files changed or vanished:"; echo "$missing"; return 1; }
  fi
  compare_outputs "$1/pipeline.toml" "$1/ref"
}

# recovers DIR: the original pipeline runs again, reusing every stage, with the same output.
recovers() {
  good_pipeline "$1"
  expect_exit 0 "$R" run --no-gc "$1/pipeline.toml"
  all_stages_reused "$1/pipeline.toml" out.txt
  compare_outputs "$1/pipeline.toml" "$1/ref"
}

test_toml_syntax_error_exit_2() {
  local d="$PWD/p"
  committed_then "$d"
  # Line 8: a string that is not closed.
  sed -i '8s/.*/sql = "SELECT CAST(id AS INTEGER) AS id FROM orders/' "$d/pipeline.toml"
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml"
  one_error '8' 'TOML'
  EXACT=1 store_unchanged "$d"
  recovers "$d"
}

test_unknown_table_did_you_mean_exit_2() {
  local d="$PWD/p"
  committed_then "$d"
  # Line 13 of the multi-line SQL of per_customer reads "clen".
  sed -i '13s/FROM clean/FROM clen/' "$d/pipeline.toml"
  grep -q 'FROM clen' "$d/pipeline.toml"
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml"
  one_error '13' 'per_customer' '"clen"' 'did you mean "clean"'
  EXACT=1 store_unchanged "$d"
  # status reports the same problem the same way.
  expect_exit 2 "$R" status "$d/pipeline.toml"
  one_error '13' 'per_customer' '"clen"'
  recovers "$d"
}

test_sql_syntax_error_exit_2() {
  local d="$PWD/p"
  committed_then "$d"
  sed -i '19s/.*/sql = "SELECT * FROM per_customer ORDER BY BY customer"/' "$d/pipeline.toml"
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml"
  one_error '19' 'report'
  EXACT=1 store_unchanged "$d"
  recovers "$d"
}

test_unknown_column_exit_2_before_any_work() {
  local d="$PWD/p"
  good_pipeline "$d"
  # Only DuckDB's binder finds this one (the parser is happy): per_customer's line 12 sums a
  # column clean does not have. It is found before anything runs, on a first run.
  sed -i '12s/count(\*) AS n/count(*) AS n, sum(amount_usd) AS usd/' "$d/pipeline.toml"
  grep -q 'amount_usd' "$d/pipeline.toml"
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml"
  one_error '12' 'per_customer' 'amount_usd'
  if grep -q ': computed' out.txt; then echo "stages ran before the error was reported:"; cat out.txt; return 1; fi
  [ ! -e "$d/.respawn" ] || { echo "the store was created although nothing could run"; return 1; }
  # A wrong function in a source's SQL is found the same way.
  good_pipeline "$d"
  cat >>"$d/pipeline.toml" <<'EOF'

[sources.extra]
sql = "SELECT no_such_function(1) AS x"
EOF
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml"
  one_error '[0-9]+' 'extra' 'no_such_function'
  # Fixed, the pipeline runs.
  good_pipeline "$d"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
}

test_runtime_sql_error_exit_1() {
  local d="$PWD/p"
  committed_then "$d"
  # A conversion error only DuckDB's execution finds: amount "abc" is not a number.
  sed -i '12s/count(\*) AS n/count(*) AS n, sum(CAST(amount AS INTEGER)) AS total/' "$d/pipeline.toml"
  grep -q 'CAST(amount AS INTEGER)' "$d/pipeline.toml"
  expect_exit 1 "$R" run --no-gc "$d/pipeline.toml"
  one_error '1[0-9]' 'per_customer'
  grep -Eiq 'conversion|convert|cast' <<<"$(grep '^respawn: ' err.txt)" ||
    { echo "the message does not carry DuckDB's reason"; return 1; }
  # clean was reused before the failure; nothing committed was damaged, the output kept.
  store_unchanged "$d"
  recovers "$d"
}

test_runtime_error_downstream_keeps_upstream_commits() {
  local d="$PWD/p"
  good_pipeline "$d"
  # First run ever fails in the last stage: the stages before it are committed and reused later.
  sed -i '19s/.*/sql = "SELECT customer, CAST(customer AS INTEGER) AS c FROM per_customer"/' "$d/pipeline.toml"
  expect_exit 1 "$R" run --no-gc "$d/pipeline.toml"
  one_error '19' 'report'
  grep -Eq '^stage clean: computed' out.txt || { echo "clean did not run before the failure"; cat out.txt; return 1; }
  [ ! -e "$d/out/report.csv" ] || { echo "an output was written although its stage failed"; return 1; }
  good_pipeline "$d"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  grep -Eq '^stage clean: reused' out.txt || { echo "clean was not reused after the failed run"; return 1; }
  grep -Eq '^stage per_customer: reused' out.txt || { echo "per_customer was not reused after the failed run"; return 1; }
  grep -Eq '^stage report: computed' out.txt
  [ "$(table_csv "$d/out/report.csv")" = "$(printf 'customer,n\nann,2\nbob,1\ncid,1')" ]
  # The failure is in the run history.
  expect_exit 0 "$R" ls "$d/pipeline.toml" --json
  "$PY" - <<'EOF'
import json
d = json.load(open("out.txt"))
runs = [r for p in d for r in p["runs"]]
results = [r["result"] for r in runs]
assert results[-2:] == ["failed", "done"], results
EOF
}

# two_branches DIR BAD: a pipeline with two independent branches from one CSV; with BAD=1 the
# first branch's first stage fails at run time (a cast only execution finds).
two_branches() {
  mkdir -p "$1/data"
  printf 'id,customer,amount\n1,ann,10\n2,bob,20\n3,ann,x5\n' >"$1/data/orders.csv"
  local cast="amount"
  if [ "$2" = 1 ]; then cast="CAST(amount AS INTEGER)"; fi
  cat >"$1/pipeline.toml" <<EOF
name = "branches"

[sources.orders]
path = "data/orders.csv"
options = { all_varchar = true }

[stages.amounts]
sql = "SELECT customer, $cast AS amount FROM orders"

[stages.amount_report]
sql = "SELECT customer, count(*) AS n FROM amounts GROUP BY customer ORDER BY customer"

[stages.customers]
sql = "SELECT DISTINCT customer FROM orders"

[stages.customer_report]
sql = "SELECT customer, length(customer) AS len FROM customers ORDER BY customer"

[outputs.amount_out]
from = "amount_report"
path = "out/amounts.csv"

[outputs.customer_out]
from = "customer_report"
path = "out/customers.csv"
EOF
}

# --keep-going: a failing stage does not stop the branch that does not depend on it; its
# dependents are reported as not run, its output is not written, the run still fails (exit 1),
# and the next run reuses what the independent branch committed.
test_keep_going_finishes_independent_branches() {
  two_branches ref 0
  expect_exit 0 "$R" run --no-gc ref/pipeline.toml
  snapshot_outputs ref/pipeline.toml ref/snap
  two_branches p 1
  # One worker: without --keep-going the failure (declared first) stops the run before the
  # other branch starts.
  expect_exit 1 "$R" run --no-gc --threads 1 p/pipeline.toml
  grep -q '^stage customer_report: not run' out.txt ||
    { echo "without --keep-going the other branch should not run"; cat out.txt; return 1; }
  expect_exit 1 "$R" run --no-gc --threads 1 --keep-going p/pipeline.toml
  cat out.txt
  grep -q '^stage amounts: failed' out.txt
  grep -q '^stage amount_report: not run: upstream "amounts" failed' out.txt
  grep -q '^output amount_out: not written ("amount_report" did not run)' out.txt
  grep -q '^stage customer_report: computed' out.txt
  grep -q '^output customer_out: written' out.txt
  grep -Eq '^run [0-9a-f]+ failed .*1 failed, 1 not run because of it' out.txt
  [ ! -e p/out/amounts.csv ] || { echo "the failed branch's output was written"; return 1; }
  diff ref/snap/customer_out.csv <(table_csv p/out/customers.csv)
  # --json carries the same.
  expect_exit 1 "$R" run --no-gc --threads 1 --keep-going --json p/pipeline.toml
  "$PY" - <<'EOF'
import json
ev = [json.loads(l) for l in open("out.txt") if l.startswith("{")]
st = {e["name"]: e for e in ev if e["event"] == "stage"}
assert st["amounts"]["action"] == "failed", st
assert st["amount_report"]["action"] == "blocked", st
assert st["customer_report"]["action"] == "reused", st
outs = {e["name"]: e for e in ev if e["event"] == "output"}
assert outs["amount_out"]["not_written"], outs
run = [e for e in ev if e["event"] == "run"][0]
assert run["result"] == "failed" and run["failed"] == 1 and run["blocked"] == 1, run
EOF
  # Fixed, the next run computes only the failed branch and matches the clean run row for row.
  two_branches p 0
  expect_exit 0 "$R" run --no-gc p/pipeline.toml
  grep -q '^stage customer_report: reused' out.txt
  grep -q '^stage customers: reused' out.txt
  grep -q '^stage amounts: computed' out.txt
  compare_outputs p/pipeline.toml ref/snap
}

test_unknown_column_is_an_error() {
  local d="$PWD/p"
  committed_then "$d"
  sed -i '12s/count(\*) AS n/count(*) AS n, max(amout) AS m/' "$d/pipeline.toml"
  # Bound before anything runs or the ledger is opened: exit 2 and the store untouched.
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml"
  one_error '12' 'per_customer' 'amout'
  EXACT=1 store_unchanged "$d"
  recovers "$d"
}

test_missing_input_file() {
  local d="$PWD/p"
  committed_then "$d"
  sed -i 's#data/orders.csv#data/orderz.csv#' "$d/pipeline.toml"
  expect_exit nonzero "$R" run --no-gc "$d/pipeline.toml"
  grep -q 'orderz.csv' <<<"$(grep '^respawn: ' err.txt)" || { echo "the error does not name the missing file:"; cat err.txt; return 1; }
  [ "$(grep -c '^respawn: ' err.txt)" -eq 1 ] || { echo "want one error line"; cat err.txt; return 1; }
  store_unchanged "$d"
  recovers "$d"
}

test_usage_errors_exit_2() {
  local d="$PWD/p"
  good_pipeline "$d"
  expect_exit 2 "$R" run --no-gc "$PWD/no-such-pipeline.toml"
  grep -q 'no-such-pipeline.toml' err.txt
  expect_exit 2 "$R" run
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml" --threads abc
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml" --no-such-flag
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml" --store 'ftp://host/x'
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml" --store 's3://Bad_Bucket/x'
  [ ! -e "$d/.respawn" ] || { echo "a store was created by a run that never started"; return 1; }
  [ ! -e "$d/out" ] || { echo "outputs were written by a run that never started"; return 1; }
}

test_each_error_names_its_own_line() {
  # Two problems: the first (by line) is reported first; exit 2, nothing created.
  local d="$PWD/p"
  good_pipeline "$d"
  cat >"$d/pipeline.toml" <<'EOF'
name = "errs"

[sources.orders]
path = "data/orders.csv"

[stages.a]
sql = "SELECT * FROM orderss"

[stages.b]
sql = "SELECT * FROM aa"
EOF
  expect_exit 2 "$R" run --no-gc "$d/pipeline.toml"
  local first
  first="$(grep -m1 'pipeline\.toml:' err.txt)"
  echo "first: $first"
  grep -Eq 'pipeline\.toml:7\b.*"a".*"orderss".*did you mean "orders"' <<<"$first"
  grep -q 'pipeline\.toml:10\b' err.txt || { echo "the second problem (line 10) is not reported"; cat err.txt; return 1; }
  [ -z "$(find "$d" -path "$d/.respawn/*" -type f)" ] || { echo "files were written to the store"; return 1; }
}

# SIGINT during a run: the message says what happens, the running query is interrupted (exit 75
# without waiting for it), the stage that finished stays committed and is reused next time.
test_interrupt_keeps_what_committed() {
  mkdir -p p
  cat >p/pipeline.toml <<'TOML'
name = "interrupted"

[stages.quick]
sql = "SELECT range AS id FROM range(0, 1000)"

[stages.slow]
sql = "SELECT count(*) AS n FROM range(0, ${n}) a, range(0, ${n}) b WHERE hash(a.range + b.range) % 7 = 1"
params = { n = 10000000 }
depends_on = ["quick"]
TOML
  set +e
  "$R" run --no-gc p/pipeline.toml >out.txt 2>err.txt &
  local pid=$!
  set -e
  # quick's checkpoint commits in the background while slow already runs: wait for both.
  for _ in $(seq 1 600); do
    if grep -q '^stage slow: started' out.txt && grep -q '^stage quick: computed' out.txt; then
      break
    fi
    sleep 0.1
  done
  grep -q '^stage quick: computed' out.txt || { echo "quick did not commit first"; cat out.txt err.txt; kill -9 "$pid"; return 1; }
  kill -INT "$pid"
  local rc=0
  wait "$pid" || rc=$?
  [ "$rc" -eq 75 ] || { echo "exit $rc, want 75"; cat out.txt err.txt; return 1; }
  grep -q '^respawn: interrupted: starting no more stages, interrupting running queries, keeping what is committed' err.txt ||
    { echo "the interrupt message does not say what happens:"; cat err.txt; return 1; }
  expect_exit 0 "$R" run --no-gc p/pipeline.toml --param n=100
  grep -q '^stage quick: reused' out.txt || { echo "quick was not reused after the interrupt"; return 1; }
  grep -q '^stage slow: computed' out.txt
}

run test_interrupt_keeps_what_committed
run test_toml_syntax_error_exit_2
run test_unknown_table_did_you_mean_exit_2
run test_sql_syntax_error_exit_2
run test_runtime_sql_error_exit_1
run test_runtime_error_downstream_keeps_upstream_commits
run test_keep_going_finishes_independent_branches
run test_unknown_column_is_an_error
run test_unknown_column_exit_2_before_any_work
run test_missing_input_file
run test_usage_errors_exit_2
run test_each_error_names_its_own_line
e2e_finish
