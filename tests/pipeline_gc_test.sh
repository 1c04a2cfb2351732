#!/usr/bin/env bash
# respawn-test-servers: radosgw
#
# Garbage collection end to end (issue #4), on a local store and on radosgw:
#   - after a run, the store's data/ holds exactly the objects the ledger retains (checked
#     against `respawn ls --json`, not against GC's own report), outputs equal a --no-gc run;
#   - orphans (objects no commit names) survive inside the grace period, go after it;
#   - GC killed at each of its crash points, then the pipeline re-run: every retained stage is
#     reused (its checksum verified on read) and the outputs are unchanged;
#   - `respawn gc` racing a running pipeline with orphan_grace = "0s": the run finishes with the
#     right outputs, nothing it committed is lost.
#
# Usage: tests/pipeline_gc_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

write_pipeline() {  # DIR GRACE ROWS
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<EOF
name = "gcpipe"

[gc]
keep_runs = 1
orphan_grace = "$2"

[sources.facts]
sql = "SELECT range AS id, range % 50 AS k, (range * 7919) % 1000 AS v FROM range(0, $3)"

[stages.filtered]
sql = "SELECT id, k, v FROM facts WHERE v % 3 <> 0"

[stages.by_k]
sql = "SELECT k, count(*) AS n, sum(v) AS total FROM filtered GROUP BY k ORDER BY k"

[stages.top]
sql = "SELECT k, total FROM by_k ORDER BY total DESC, k LIMIT 10"

[stages.audit]
sql = "SELECT count(*) AS n FROM filtered"
keep = true

[stages.stats]
sql = "SELECT count(*) AS n, sum(v) AS total FROM facts"

[outputs.by_k_out]
from = "by_k"
path = "out/by_k.parquet"

[outputs.top_out]
from = "top"
path = "out/top.csv"
EOF
}

# The data keys the ledger retains, from `respawn ls --json` (checkpoints) -- compared with what
# the store actually holds under data/.
retained_count() {  # PIPELINE STORE_ARGS...
  local p="$1"
  shift
  "$R" ls "$p" "$@" --json | "$PY" -c '
import json, sys
total = 0
for p in json.load(sys.stdin):
    total += sum(c["objects"] for c in p["checkpoints"])
print(total)'
}

stored_data_objects() {  # URL
  "$R" store ls -r "$1" 2>/dev/null | grep -c '\.parquet' || true
}

check_exact() {  # PIPELINE DATA_URL STORE_ARGS...
  local p="$1" url="$2"
  shift 2
  local want got
  want="$(retained_count "$p" "$@")"
  got="$(stored_data_objects "$url")"
  echo "retained by the ledger: $want, stored: $got"
  [ "$want" -gt 0 ]
  [ "$want" = "$got" ]
}

exact_after_run() {  # STORE_ARGS... (empty: local)
  write_pipeline p 1h 20000
  local data_url
  if [ $# -gt 0 ]; then data_url="${2%/}/pipelines/gcpipe/data/"; else data_url="p/.respawn/pipelines/gcpipe/data/"; fi
  # Reference: the same pipeline without GC.
  expect_exit 0 "$R" run p/pipeline.toml --no-gc "$@"
  snapshot_outputs p/pipeline.toml ref
  expect_exit 0 "$R" run p/pipeline.toml --fresh "$@"
  grep -q '^gc: deleted' out.txt
  check_exact p/pipeline.toml "$data_url" "$@"
  compare_outputs p/pipeline.toml ref
  # Work-tables are gone from the ledger; results and kept stages stay.
  "$R" status p/pipeline.toml "$@" --json >status.json
  "$PY" - <<'EOF'
import json
nodes = {n["name"]: n for n in json.load(open("status.json"))["nodes"]}
assert nodes["filtered"]["state"] == "dropped", nodes["filtered"]
assert nodes["facts"]["state"] == "dropped", nodes["facts"]
for kept in ("by_k", "top", "audit", "stats"):
    assert nodes[kept]["state"] == "committed", nodes[kept]
EOF
  # A re-run reuses the results, skips the work-tables, and leaves outputs as they were.
  expect_exit 0 "$R" run p/pipeline.toml "$@"
  grep -q '^stage by_k: reused' out.txt
  grep -q '^stage audit: reused' out.txt
  grep -q '^stage filtered: skipped' out.txt
  ! grep -q ': computed' out.txt
  compare_outputs p/pipeline.toml ref
  # Changing a result stage recomputes it from the sources (its work-table input is gone).
  sed -i 's/LIMIT 10/LIMIT 5/' p/pipeline.toml
  expect_exit 0 "$R" run p/pipeline.toml "$@"
  grep -q '^stage top: computed' out.txt
  check_exact p/pipeline.toml "$data_url" "$@"
}

test_exact_after_run_posix() { exact_after_run; }

test_exact_after_run_radosgw() {
  s3_env || return 0
  exact_after_run --store "s3://$RESPAWN_TEST_BUCKET/gc-exact-$$-$RANDOM"
}

test_orphans_respect_the_grace_period() {
  write_pipeline p 1h 5000
  expect_exit 0 "$R" run p/pipeline.toml
  local orphan=p/.respawn/pipelines/gcpipe/data/by_k/0000000000000000/feedface/deadbeef.parquet
  mkdir -p "$(dirname "$orphan")"
  echo "not committed" >"$orphan"
  expect_exit 0 "$R" gc p/pipeline.toml
  [ -f "$orphan" ] || { echo "a young orphan was deleted"; return 1; }
  grep -q '1 uncommitted younger than the grace period' out.txt
  # Two hours later (mtime moved back), it goes; --dry-run first changes nothing.
  touch -d '2 hours ago' "$orphan"
  expect_exit 0 "$R" gc --dry-run p/pipeline.toml
  grep -q "would delete .*deadbeef.parquet" out.txt
  [ -f "$orphan" ]
  expect_exit 0 "$R" gc p/pipeline.toml
  [ ! -f "$orphan" ] || { echo "an old orphan survived"; return 1; }
  check_exact p/pipeline.toml p/.respawn/pipelines/gcpipe/data/
}

test_gc_killed_at_each_point_then_rerun_reuses() {
  write_pipeline p 0s 20000
  expect_exit 0 "$R" run p/pipeline.toml --no-gc
  snapshot_outputs p/pipeline.toml ref
  local point
  for point in runner:before-gc gc:after-list gc:before-delete gc:after-delete; do
    echo "== crash at $point"
    # Make something to collect: a fresh run replaces every checkpoint.
    set +e
    RESPAWN_CRASH_AT="$point" "$R" run p/pipeline.toml --fresh >out.txt 2>err.txt
    local rc=$?
    set -e
    [ $rc -eq 137 ] || { echo "expected a crash at $point, got exit $rc"; cat err.txt; return 1; }
    expect_exit 0 "$R" run p/pipeline.toml
    ! grep -q ': computed' out.txt || { echo "a retained stage was recomputed:"; cat out.txt; return 1; }
    compare_outputs p/pipeline.toml ref
  done
  for point in gc:after-trim gc:after-list gc:before-delete; do
    echo "== respawn gc crash at $point"
    expect_exit 0 "$R" run p/pipeline.toml --fresh --no-gc
    set +e
    RESPAWN_CRASH_AT="$point" "$R" gc p/pipeline.toml >out.txt 2>err.txt
    local rc=$?
    set -e
    [ $rc -eq 137 ] || { echo "expected a crash at $point, got exit $rc"; cat err.txt; return 1; }
    expect_exit 0 "$R" run p/pipeline.toml
    ! grep -q ': computed' out.txt || { echo "a retained stage was recomputed:"; cat out.txt; return 1; }
    compare_outputs p/pipeline.toml ref
    expect_exit 0 "$R" gc p/pipeline.toml
    check_exact p/pipeline.toml p/.respawn/pipelines/gcpipe/data/
  done
}

test_gc_racing_a_running_pipeline() {
  # Grace 0: only the ledger protects what the run is about to commit. Every store put of the
  # run waits 400 ms first, so each uploaded checkpoint sits uncommitted for that long (the
  # record put is delayed) while gc runs in a loop.
  write_pipeline p 0s 300000
  expect_exit 0 "$R" run p/pipeline.toml --no-gc --store "$PWD/ref-store"
  snapshot_outputs p/pipeline.toml ref
  rm -rf p/out
  local round
  for round in 1 2; do
    RESPAWN_CHAOS="ops=put,latency_ms=400" "$R" run p/pipeline.toml --fresh >run.out 2>run.err &
    local pid=$!
    local gcs=0
    while kill -0 "$pid" 2>/dev/null; do
      "$R" gc p/pipeline.toml >>gc.out 2>>gc.err || { echo "gc failed:"; tail gc.err; }
      gcs=$((gcs + 1))
    done
    set +e
    wait "$pid"
    local rc=$?
    set -e
    echo "round $round: run exit $rc after $gcs concurrent gc runs"
    [ $rc -eq 0 ] || { cat run.out run.err; return 1; }
    [ "$gcs" -ge 2 ] || echo "note: the run finished before gc could race it much"
    compare_outputs p/pipeline.toml ref
    expect_exit 0 "$R" run p/pipeline.toml
    ! grep -q ': computed' out.txt || { echo "a retained stage was lost:"; cat out.txt; return 1; }
    check_exact p/pipeline.toml p/.respawn/pipelines/gcpipe/data/
  done
}

s3_env() {
  if [ -z "${RESPAWN_TEST_S3_ENV_RADOSGW:-}" ] || [ ! -f "$RESPAWN_TEST_S3_ENV_RADOSGW" ]; then
    echo "skipped: RESPAWN_TEST_S3_ENV_RADOSGW not set"
    return 1
  fi
  set -a
  . "$RESPAWN_TEST_S3_ENV_RADOSGW"
  set +a
}

run test_exact_after_run_posix
run test_orphans_respect_the_grace_period
run test_gc_killed_at_each_point_then_rerun_reuses
run test_gc_racing_a_running_pipeline
run test_exact_after_run_radosgw
e2e_finish
