#!/usr/bin/env bash
# `respawn log PIPELINE STAGE`: a stage's last computation as the run did it: which run, why, the
# SQL with its params substituted, the rows the run reported, DuckDB's profile of that query
# (its operators), and, after a failure, the error; `--json` carries the same. Unknown stages
# get a did-you-mean.
#
# Usage: tests/pipeline_log_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

write_pipeline() {
  mkdir -p p
  cat >p/pipeline.toml <<'TOML'
name = "logged"

[sources.gen]
sql = "SELECT range AS id, range % 7 AS g, CAST(range AS VARCHAR) AS label FROM range(0, ${rows})"
params = { rows = 5000 }

[stages.by_g]
sql = """
SELECT g, count(*) AS n, sum(id) AS total
FROM gen
GROUP BY g
ORDER BY g
"""
TOML
}

test_log_shows_the_last_computation() {
  write_pipeline
  expect_exit 0 "$R" run --no-gc p/pipeline.toml
  local run_id rows
  run_id="$(sed -nE 's/^run ([0-9a-f]+) done.*/\1/p' out.txt)"
  rows="$(sed -nE 's/^stage by_g: computed in .*, ([0-9,]+) rows?, .*/\1/p' out.txt)"
  if [ -z "$run_id" ] || [ "$rows" != 7 ]; then echo "unexpected run output:"; cat out.txt; return 1; fi
  expect_exit 0 "$R" log p/pipeline.toml by_g
  cat out.txt
  grep -q "^stage by_g: computed by run $run_id at .* (its first computation)" out.txt
  grep -Eq '^  [0-9.]+ s, 7 rows, .* checkpointed, fingerprint [0-9a-f]{8}$' out.txt
  grep -q '^  GROUP BY g' out.txt
  grep -Eq '^ +[A-Z_]*HASH_GROUP_BY +[0-9.]+ s +7 rows' out.txt ||
    { echo "the profile does not show the aggregation with its 7 groups"; return 1; }
  grep -Eq '^ +[A-Z_]*COPY_TO_FILE ' out.txt
  # The generated source's SQL as run has its param substituted.
  expect_exit 0 "$R" log p/pipeline.toml gen
  grep -q '^  SELECT range AS id, .* FROM range(0, 5000)$' out.txt
  grep -Eq '^  [0-9.]+ s, 5,000 rows' out.txt
  expect_exit 0 "$R" --json log p/pipeline.toml by_g
  "$PY" - "$run_id" <<'EOF'
import json, sys
d = json.load(open("out.txt"))
assert d["run_id"].startswith(sys.argv[1]), d["run_id"]
assert d["result"] == "computed" and d["rows"] == 7, d
assert "GROUP BY g" in d["sql"], d["sql"]
ops = []
def walk(op):
    ops.append(op.get("operator_name", "").strip())
    for c in op.get("children", []):
        walk(c)
for c in d["profile"]["children"]:
    walk(c)
assert any(o.endswith("HASH_GROUP_BY") for o in ops), ops
EOF
}

test_log_after_a_failure() {
  write_pipeline
  expect_exit 0 "$R" run --no-gc p/pipeline.toml
  # A cast only execution finds: the run fails in by_g and its log says so.
  sed -i 's/sum(id) AS total/sum(CAST(label || '"'"'x'"'"' AS INTEGER)) AS total/' p/pipeline.toml
  grep -q "CAST(label || 'x' AS INTEGER)" p/pipeline.toml
  expect_exit 1 "$R" run --no-gc p/pipeline.toml
  expect_exit 0 "$R" log p/pipeline.toml by_g
  cat out.txt
  grep -q '^stage by_g: failed by run .* (changed SQL)' out.txt
  grep -q 'Conversion Error' out.txt
  grep -q "CAST(label || 'x' AS INTEGER)" out.txt
}

test_log_errors() {
  write_pipeline
  expect_exit 1 "$R" log p/pipeline.toml by_g
  grep -q 'does not exist yet: run the pipeline first' err.txt
  expect_exit 0 "$R" run --no-gc p/pipeline.toml
  expect_exit 2 "$R" log p/pipeline.toml by_gg
  grep -q 'no stage or generated source is named "by_gg" (did you mean "by_g"?)' err.txt
}

run test_log_shows_the_last_computation
run test_log_after_a_failure
run test_log_errors
e2e_finish
