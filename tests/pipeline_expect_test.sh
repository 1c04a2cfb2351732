#!/usr/bin/env bash
# Data tests of stages (expect, expect_sql, severity) with the real binary on real files: a
# pipeline whose expectations hold runs; a violated one fails its stage with the offending rows
# shown and commits nothing of it (no ledger entry, no data object, nothing downstream), while
# what committed before stays and is reused once the data is fixed; severity = "warn" reports
# the same and completes; a changed expectation recomputes its stage only.
#
# Usage: tests/pipeline_expect_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
SRC="${RESPAWN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
e2e_init --no-reader "${1:-}"

# write_pipeline [SEVERITY]: orders (clean, checked) -> labeled (a status per order, from
# statuses.csv, where code 3 is "lost": accepted_values fails) -> report; totals beside them.
write_pipeline() {
  local severity="${1:-error}"
  mkdir -p p
  cat >p/orders.csv <<'CSV'
order_id,customer_id,code,amount
1,10,1,5
2,11,2,7
3,10,3,9
4,12,2,11
CSV
  cat >p/statuses.csv <<'CSV'
code,status
1,new
2,paid
3,lost
CSV
  cat >p/pipeline.toml <<TOML
name = "checked"

[sources.orders]
path = "orders.csv"

[sources.statuses]
path = "statuses.csv"

[stages.clean]
sql = "SELECT order_id, customer_id, code, amount FROM orders"
expect = ["unique(order_id)", "not_null(customer_id)", "rows > 0"]
expect_sql = "SELECT * FROM clean WHERE amount < 0"

[stages.totals]
sql = "SELECT customer_id, sum(amount) AS total FROM clean GROUP BY customer_id ORDER BY 1"

[stages.labeled]
sql = "SELECT c.order_id, c.amount, s.status FROM clean c JOIN statuses s USING (code)"
expect = ["accepted_values(status, ['new', 'paid'])"]
severity = "$severity"

[stages.report]
sql = "SELECT status, count(*) AS orders FROM labeled GROUP BY status ORDER BY status"

[outputs.report_csv]
from = "report"
path = "out/report.csv"

[outputs.totals_csv]
from = "totals"
path = "out/totals.csv"
TOML
}

# committed_stages: the stages with a checkpoint in the ledger (respawn status --json).
committed_stages() {
  "$R" --json status p/pipeline.toml >status.json
  "$PY" - status.json <<'EOF'
import json, sys
status = json.load(open(sys.argv[1]))
names = [n["name"] for n in status["nodes"] if n["kind"] == "stage" and n["committed_fingerprint"]]
print(" ".join(sorted(names)))
EOF
}

test_passing_expectations_run() {
  write_pipeline
  sed -i "s/3,lost/3,paid/" p/statuses.csv
  expect_exit 0 "$R" run p/pipeline.toml
  grep -q '^stage clean: computed' out.txt
  grep -q '^stage report: computed' out.txt
  if grep -q 'warning' err.txt; then
    echo "warnings in a run whose expectations hold:"
    cat err.txt
    return 1
  fi
  grep -qx 'paid,3' p/out/report.csv
}

test_failing_expectation_commits_nothing_of_its_stage() {
  write_pipeline
  expect_exit 1 "$R" run p/pipeline.toml
  # The message names the file, line, stage and expectation, with the offending rows.
  grep -qF "respawn: p/pipeline.toml:19: stage \"labeled\": expect \"accepted_values(status, ['new', 'paid'])\" failed: 1 row violates it:" err.txt || {
    cat err.txt
    return 1
  }
  grep -Eq '^  order_id \| amount \| status$' err.txt
  grep -Eq '^  3 +\| 9 +\| lost$' err.txt
  grep -q '^stage labeled: failed' out.txt
  if grep -Eq '^stage report: (computed|started)' out.txt; then
    echo "a stage downstream of the failed one ran:"
    cat out.txt
    return 1
  fi
  [ ! -e p/out/report.csv ] || { echo "the report was written"; return 1; }
  # What committed stays; nothing of labeled (or report) is in the ledger or the store.
  local committed
  committed="$(committed_stages)"
  [[ " $committed " == *" clean "* ]] || { echo "clean is not committed: $committed"; return 1; }
  if [[ " $committed " == *" labeled "* || " $committed " == *" report "* ]]; then
    echo "a failed stage or one after it has a checkpoint: $committed"
    return 1
  fi
  # (logs/labeled.json, respawn log's record of the failure, is not data.)
  if find p/.respawn -path '*labeled*' ! -path '*/logs/*' | grep -q .; then
    echo "data of the failed stage reached the store:"
    find p/.respawn -path '*labeled*'
    return 1
  fi
  # Fixed data: the upstream stages are reused, the failed one computes and passes.
  sed -i "s/3,lost/3,paid/" p/statuses.csv
  expect_exit 0 "$R" run p/pipeline.toml
  grep -q '^stage clean: reused' out.txt
  grep -q '^stage labeled: computed' out.txt
  grep -q '^stage report: computed' out.txt
  grep -qx 'paid,3' p/out/report.csv
}

test_warn_reports_and_completes() {
  write_pipeline warn
  expect_exit 0 "$R" run p/pipeline.toml --no-gc
  grep -qF "respawn: warning: p/pipeline.toml:19: stage \"labeled\": expect \"accepted_values(status, ['new', 'paid'])\" failed: 1 row violates it:" err.txt || {
    cat err.txt
    return 1
  }
  grep -Eq '^  3 +\| 9 +\| lost$' err.txt
  grep -q '^stage labeled: computed' out.txt
  grep -qx 'lost,1' p/out/report.csv
  [[ " $(committed_stages) " == *" labeled "* ]] || { echo "labeled was not committed"; return 1; }
  # With --json: the warning is in the stage's event and in the run report of the ledger.
  rm -rf p/.respawn p/out
  expect_exit 0 "$R" --json run p/pipeline.toml
  "$PY" - out.txt <<'EOF'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
stage = [e for e in events if e.get("event") == "stage" and e.get("name") == "labeled"]
assert stage and stage[-1]["action"] == "computed", events
w = stage[-1]["warnings"]
assert len(w) == 1 and w[0]["expectation"] == "accepted_values(status, ['new', 'paid'])", w
assert w[0]["rows"] == 1 and "lost" in w[0]["message"], w
assert not [e for e in events if e.get("event") == "stage" and e.get("name") != "labeled"
            and e.get("warnings")], events
run = [e for e in events if e.get("event") == "run"]
assert run and run[0]["result"] == "done", run
EOF
  local reports
  reports="$(grep -rl '"warnings"' p/.respawn | head -n 1)"
  [ -n "$reports" ] || { echo "no ledger record holds the warning"; return 1; }
  grep -q 'lost' "$reports"
}

test_changed_expectations_recompute_their_stage_only() {
  write_pipeline
  sed -i "s/3,lost/3,paid/" p/statuses.csv
  expect_exit 0 "$R" run p/pipeline.toml --no-gc
  # A stricter test on clean: clean computes again to be checked (same data, same
  # fingerprint), what reads it is reused.
  sed -i 's/"rows > 0"\]/"rows > 0", "rows < 4"]/' p/pipeline.toml
  # status says what the run will do.
  "$R" --json status p/pipeline.toml >status.json
  "$PY" -c 'import json, sys; n = {x["name"]: x for x in json.load(open(sys.argv[1]))["nodes"]}; assert (n["clean"]["state"], n["clean"]["reason"]) == ("stale", "changed expectations"), n["clean"]; assert n["labeled"]["state"] == "committed", n["labeled"]' status.json
  expect_exit 1 "$R" run p/pipeline.toml --no-gc
  grep -q 'stage clean: started (changed expectations)' out.txt
  grep -q 'stage "clean": expect "rows < 4" failed: the stage has 4 rows' err.txt
  sed -i 's/"rows < 4"/"rows <= 4"/' p/pipeline.toml
  expect_exit 0 "$R" run p/pipeline.toml --no-gc
  grep -q '^stage clean: computed' out.txt
  grep -q '^stage labeled: reused' out.txt
  grep -q '^stage report: reused' out.txt
  # Unchanged expectations: nothing computes.
  expect_exit 0 "$R" run p/pipeline.toml --no-gc
  grep -q '^stage clean: reused' out.txt
}

test_bad_column_is_found_before_the_run() {
  write_pipeline
  sed -i 's/not_null(customer_id)/not_null(customer)/' p/pipeline.toml
  expect_exit 2 "$R" run p/pipeline.toml
  grep -qF 'p/pipeline.toml:11: stage "clean": expect "not_null(customer)": Binder Error: Referenced column "customer" not found' err.txt || {
    cat err.txt
    return 1
  }
  [ ! -e p/.respawn ] || { echo "a rejected pipeline created a store"; return 1; }
}

# The README's example runs as the README says.
test_readme_example() {
  mkdir -p r
  "$PY" - "$SRC/README.md" >r/pipeline.toml <<'EOF'
import sys
text = open(sys.argv[1]).read()
section = text[text.index("### Data tests"):]
start = section.index("```toml\n") + len("```toml\n")
print(section[start:section.index("```", start)], end="")
EOF
  (cd r && expect_exit 1 "$R" run pipeline.toml)
  grep -qF 'respawn: pipeline.toml:11: stage "clean_orders": expect "unique(order_id)" failed: 2 rows violate it:' r/err.txt
  grep -Eq '^  2 +\| 12 +\| paid +\| 3.0$' r/err.txt
  sed -i 's/^# severity/severity/' r/pipeline.toml
  (cd r && expect_exit 0 "$R" run pipeline.toml)
  grep -q '^stage orders: reused' r/out.txt
  grep -qF 'respawn: warning: pipeline.toml:11: stage "clean_orders": expect "unique(order_id)"' r/err.txt
}

run test_passing_expectations_run
run test_failing_expectation_commits_nothing_of_its_stage
run test_warn_reports_and_completes
run test_changed_expectations_recompute_their_stage_only
run test_bad_column_is_found_before_the_run
run test_readme_example
e2e_finish
