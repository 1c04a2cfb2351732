#!/usr/bin/env bash
# respawn-test-servers: radosgw swift postgres
#
# Garbage collection end to end (issue #4), on a local store and on radosgw:
#   - after a run, the store's data/ holds exactly the objects the ledger retains (checked
#     against `respawn ls --json`, not against GC's own report), outputs equal a --no-gc run;
#   - orphans (objects no commit names) survive inside the grace period, go after it;
#   - GC killed at each of its crash points, then the pipeline re-run: every retained stage is
#     reused (its checksum verified on read) and the outputs are unchanged;
#   - `respawn gc` in a loop racing a running pipeline with orphan_grace = "0s", on POSIX and
#     radosgw: every gc succeeds, the race must happen (a gc between the run's first and last
#     commit, and a gc that kept the run's uploaded-but-uncommitted objects), the run finishes
#     with the right outputs, nothing it committed is lost;
#   - `respawn status` breaks store usage down by run and by stage, matching the files on disk;
#   - `respawn gc --lifecycle --apply` on radosgw sets its rules and keeps another tool's rule,
#     read back with awscli (twice: no duplicates); on a local store it is a usage error, on
#     Swift (no lifecycle API) an error that changes nothing.
#
# On Swift (no put-if-absent; commits through the PostgreSQL coordinator, RESPAWN_TEST_PG_ENV):
# the exact retained set after a run, `respawn gc` (which commits: it joins the last run's epoch
# through the coordinator) killed after its trim, and gc racing a running pipeline.
#
# Usage: tests/pipeline_gc_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
# The radosgw and Swift cases need RESPAWN_TEST_S3_ENV_RADOSGW / _SWIFT (ctest sets them);
# without them they skip, and fail with CI=true.
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
work_tables_ttl = "0"  # work-tables go as soon as a run finished (what these tests check)

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
  refute grep -q ': computed' out.txt
  compare_outputs p/pipeline.toml ref
  # Changing a result stage recomputes it from the sources (its work-table input is gone).
  sed -i 's/LIMIT 10/LIMIT 5/' p/pipeline.toml
  expect_exit 0 "$R" run p/pipeline.toml "$@"
  grep -q '^stage top: computed' out.txt
  check_exact p/pipeline.toml "$data_url" "$@"
}

test_exact_after_run_posix() { exact_after_run; }

test_exact_after_run_radosgw() {
  e2e_require_server radosgw
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
    if grep -q ': computed' out.txt; then echo "a retained stage was recomputed:"; cat out.txt; return 1; fi
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
    if grep -q ': computed' out.txt; then echo "a retained stage was recomputed:"; cat out.txt; return 1; fi
    compare_outputs p/pipeline.toml ref
    expect_exit 0 "$R" gc p/pipeline.toml
    check_exact p/pipeline.toml p/.respawn/pipelines/gcpipe/data/
  done
}

# stamp FILE: copies stdin to FILE, each line prefixed with the time it arrived (microseconds
# since the epoch).
stamp() {
  local line
  while IFS= read -r line; do printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"; done >"$1"
}

# gc_race STORE_ARGS... (empty: the local store): `respawn gc` in a loop while a pipeline runs
# with orphan_grace = "0s", so only the ledger protects what the run uploaded and has not
# committed yet. Every store put of the run waits 400 ms first, so each checkpoint sits
# uploaded-but-uncommitted for that long. Every gc must succeed; the race must have happened (a
# gc that started after the run's first commit and ended before its last, and a gc that kept
# objects "of a run in progress"); the run finishes with the right outputs and nothing it
# committed is lost.
gc_race() {
  write_pipeline p 0s 300000
  local data_url
  if [ $# -gt 0 ]; then data_url="${2%/}/pipelines/gcpipe/data/"; else data_url="p/.respawn/pipelines/gcpipe/data/"; fi
  expect_exit 0 "$R" run p/pipeline.toml --no-gc --store "$PWD/ref-store"
  snapshot_outputs p/pipeline.toml ref
  rm -rf p/out
  local round in_window_rounds=0 saw_in_flight=0
  for round in 1 2 3 4; do
    # After two rounds, go on only until some gc has seen the run's uncommitted objects.
    if [ "$round" -gt 2 ] && [ "$saw_in_flight" -gt 0 ]; then break; fi
    : >gc-times
    rm -f run.rc
    # The run's lines, time-stamped as they come (its exit code in run.rc, its pid in run.pid).
    {
      RESPAWN_CHAOS="ops=put,latency_ms=400" "$R" run p/pipeline.toml --fresh "$@" 2>run.err &
      echo $! >run.pid
      if wait $!; then echo 0; else echo $?; fi >run.rc
    } | stamp run.out &
    local pid=$!
    local gcs=0 t0 t1
    while kill -0 "$pid" 2>/dev/null; do
      gcs=$((gcs + 1))
      t0="${EPOCHREALTIME/./}"
      if ! "$R" gc p/pipeline.toml "$@" >"gc-$round-$gcs.out" 2>"gc-$round-$gcs.err"; then
        echo "round $round: respawn gc $gcs failed while the run was going:"
        cat "gc-$round-$gcs.out" "gc-$round-$gcs.err"
        kill "$(cat run.pid)" 2>/dev/null || true
        return 1
      fi
      t1="${EPOCHREALTIME/./}"
      echo "$t0 $t1 $gcs" >>gc-times
    done
    wait "$pid"
    local rc
    rc="$(cat run.rc)"
    echo "round $round: run exit $rc after $gcs concurrent gc runs"
    [ "$rc" -eq 0 ] || { cat run.out run.err; return 1; }
    # The race: a gc inside the run's commit window (after its first commit, before its last).
    local first last
    first="$(grep -m 1 -E '^[0-9]+ stage [A-Za-z0-9_]+: computed' run.out | cut -d' ' -f1)"
    last="$(grep -E '^[0-9]+ stage [A-Za-z0-9_]+: computed' run.out | tail -n 1 | cut -d' ' -f1)"
    [ -n "$first" ] || { echo "the run printed no 'stage ...: computed' line:"; cat run.out; return 1; }
    local inside
    inside="$(awk -v a="$first" -v b="$last" '$1 > a && $2 < b' gc-times | wc -l)"
    echo "round $round: $inside gc runs between the run's first and last commit"
    [ "$inside" -gt 0 ] || { echo "no gc ran inside the run's commit window:"; cat run.out gc-times; return 1; }
    in_window_rounds=$((in_window_rounds + 1))
    if grep -l 'of a run in progress' gc-"$round"-*.out >/dev/null 2>&1; then
      saw_in_flight=$((saw_in_flight + 1))
      echo "round $round: a gc kept the running pipeline's uncommitted objects:"
      grep -h 'of a run in progress' gc-"$round"-*.out | sed -n '1,2p' # (head would SIGPIPE grep)
    fi
    compare_outputs p/pipeline.toml ref
    expect_exit 0 "$R" run p/pipeline.toml "$@"
    if grep -q ': computed' out.txt; then echo "a retained stage was lost:"; cat out.txt; return 1; fi
    check_exact p/pipeline.toml "$data_url" "$@"
  done
  [ "$saw_in_flight" -gt 0 ] ||
    { echo "no gc saw the run's uploaded-but-uncommitted objects in $in_window_rounds rounds"; return 1; }
}

test_gc_racing_a_running_pipeline() { gc_race; }

test_gc_racing_a_running_pipeline_radosgw() {
  e2e_require_server radosgw
  gc_race --store "s3://$RESPAWN_TEST_BUCKET/gc-race-$$-$RANDOM"
}

test_status_usage_by_run_and_stage() {
  write_pipeline p 1h 5000
  expect_exit 0 "$R" run p/pipeline.toml
  local first
  first="$("$R" ls p/pipeline.toml --json | "$PY" -c 'import json,sys; print(json.load(sys.stdin)[0]["runs"][-1]["run_id"])')"
  # A second run that replaces every checkpoint, without GC: the first run's objects are garbage.
  expect_exit 0 "$R" run p/pipeline.toml --fresh --no-gc
  expect_exit 0 "$R" status p/pipeline.toml --json
  cp out.txt before.json
  find p/.respawn/pipelines/gcpipe -type f -name '*.parquet' | sort >stored.txt
  "$PY" - "$first" <<'EOF'
import json, os, sys
first = sys.argv[1]
u = json.load(open("before.json"))["usage"]
stored = open("stored.txt").read().split()
sizes = {p: os.path.getsize(p) for p in stored}
# Both breakdowns cover exactly the data objects on disk.
for part in ("by_run", "by_stage"):
    assert sum(c["objects"] for c in u[part].values()) == len(stored), (part, u[part], len(stored))
    assert sum(c["bytes"] for c in u[part].values()) == sum(sizes.values()), part
# Two runs wrote data; the first one's is no longer retained (keep_runs = 1, all replaced).
assert len(u["by_run"]) == 2, u["by_run"]
assert u["by_run"][first]["objects"] > 0 and u["by_run"][first]["retained_objects"] == 0, u["by_run"]
by_stage_disk = {}
for p in stored:
    stage = p.split("/data/")[1].split("/")[0]
    by_stage_disk[stage] = by_stage_disk.get(stage, 0) + 1
assert {s: c["objects"] for s, c in u["by_stage"].items()} == by_stage_disk, (u["by_stage"], by_stage_disk)
assert u["live_objects"] < sum(c["objects"] for c in u["by_run"].values())
EOF
  expect_exit 0 "$R" status p/pipeline.toml
  grep -q '^data by run:' out.txt
  grep -q "$first" out.txt
  # After GC, everything left is retained and the first run is gone.
  expect_exit 0 "$R" gc p/pipeline.toml
  expect_exit 0 "$R" status p/pipeline.toml --json
  "$PY" - "$first" <<'EOF'
import json, sys
u = json.load(open("out.txt"))["usage"]
assert sys.argv[1] not in u["by_run"], u["by_run"]
for part in ("by_run", "by_stage"):
    for name, c in u[part].items():
        assert c["objects"] == c["retained_objects"] and c["bytes"] == c["retained_bytes"], (part, name, c)
EOF
}

test_lifecycle_apply_radosgw() {
  write_pipeline p 1h 100
  expect_exit 2 "$R" gc p/pipeline.toml --lifecycle --apply
  grep -q 'is for S3 stores' err.txt
  expect_exit 2 "$R" gc p/pipeline.toml --apply
  # Printing the rules asks the store nothing, so it needs no credentials.
  expect_exit 0 env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_PROFILE \
    AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null \
    "$R" gc p/pipeline.toml --store s3://some-bucket/team --lifecycle
  grep -q '<Prefix>team/pipelines/gcpipe/</Prefix>' out.txt
  e2e_require_server radosgw
  local aws=/usr/bin/aws bucket="lifecycle-$$-$RANDOM"
  "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3api create-bucket --bucket "$bucket" >/dev/null
  # Another tool's rule, which --apply must keep.
  cat >foreign.json <<'EOF'
{"Rules": [{"ID": "logs-expire", "Filter": {"Prefix": "logs/"}, "Status": "Enabled",
            "Expiration": {"Days": 30}}]}
EOF
  "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3api put-bucket-lifecycle-configuration \
    --bucket "$bucket" --lifecycle-configuration file://foreign.json
  local store="s3://$bucket/team/a"
  # Printing changes nothing on the bucket.
  expect_exit 0 "$R" gc p/pipeline.toml --store "$store" --lifecycle --lifecycle-days 3
  grep -q '<Prefix>team/a/pipelines/gcpipe/</Prefix>' out.txt
  local round
  for round in 1 2; do
    expect_exit 0 "$R" gc p/pipeline.toml --store "$store" --lifecycle --apply --lifecycle-days 3
    grep -q '1 other rule kept' out.txt
    "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3api get-bucket-lifecycle-configuration \
      --bucket "$bucket" >got.json
    "$PY" - <<'EOF'
import json
rules = {r["ID"]: r for r in json.load(open("got.json"))["Rules"]}
assert sorted(rules) == ["logs-expire", "respawn-abort-uploads:team/a/pipelines/gcpipe/",
                         "respawn-expire-probes:team/a/.respawn-probe-"], sorted(rules)
assert rules["logs-expire"]["Expiration"]["Days"] == 30, rules["logs-expire"]
up = rules["respawn-abort-uploads:team/a/pipelines/gcpipe/"]
assert up["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 3, up
assert up["Filter"]["Prefix"] == "team/a/pipelines/gcpipe/", up
probes = rules["respawn-expire-probes:team/a/.respawn-probe-"]
assert probes["Expiration"]["Days"] == 3, probes
EOF
  done
  grep -q '^lifecycle: updated' out.txt
  "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3api delete-bucket-lifecycle --bucket "$bucket"
  "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3api delete-bucket --bucket "$bucket"
  # A bucket that does not exist: a clear error naming it, exit 1.
  expect_exit 1 "$R" gc p/pipeline.toml --store "s3://$bucket/x" --lifecycle --apply
  grep -q "s3://$bucket" err.txt
}

test_lifecycle_apply_swift() {
  # Swift's s3api has no lifecycle API (it answers GET ?lifecycle with a bucket listing): a clear
  # error, exit 1, and the bucket left alone.
  e2e_require_server swift
  write_pipeline p 1h 100
  expect_exit 1 "$R" gc p/pipeline.toml --store "s3://$RESPAWN_TEST_BUCKET/lc-$$" --lifecycle --apply
  grep -q 'does not implement S3 bucket lifecycle configuration' err.txt
  grep -q 'nothing was changed' err.txt
}

# --- Swift with the commit coordinator (each case runs in its own subshell) ------------------
have_swift_coordinator() {
  [ -n "${RESPAWN_TEST_S3_ENV_SWIFT:-}" ] && [ -r "$RESPAWN_TEST_S3_ENV_SWIFT" ] &&
    [ -n "${RESPAWN_TEST_PG_ENV:-}" ] && [ -r "$RESPAWN_TEST_PG_ENV" ]
}

# use_swift_coordinator: exports Swift's environment and RESPAWN_COORDINATOR; SWIFT_STORE is a
# store URL no other case uses.
use_swift_coordinator() {
  unset AWS_PROFILE AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN
  set -a
  # shellcheck disable=SC1090
  . "$RESPAWN_TEST_S3_ENV_SWIFT"
  set +a
  export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
  RESPAWN_COORDINATOR="$(sed -n 's/^RESPAWN_TEST_PG_URL=//p' "$RESPAWN_TEST_PG_ENV")"
  export RESPAWN_COORDINATOR
  SWIFT_STORE="s3://$RESPAWN_TEST_BUCKET/gc-swift-$$-$RANDOM$RANDOM"
}

test_exact_after_run_swift_coordinator() {
  use_swift_coordinator
  exact_after_run --store "$SWIFT_STORE"
}

test_gc_killed_after_its_trim_swift_coordinator() {
  use_swift_coordinator
  write_pipeline p 0s 20000
  expect_exit 0 "$R" run p/pipeline.toml --no-gc --store "$SWIFT_STORE"
  snapshot_outputs p/pipeline.toml ref
  set +e
  RESPAWN_CRASH_AT=gc:after-trim "$R" gc p/pipeline.toml --store "$SWIFT_STORE" >out.txt 2>err.txt
  local rc=$?
  set -e
  [ $rc -eq 137 ] || { echo "expected a crash at gc:after-trim, got exit $rc"; cat out.txt err.txt; return 1; }
  expect_exit 0 "$R" run p/pipeline.toml --store "$SWIFT_STORE"
  ! grep -q ': computed' out.txt || { echo "a retained stage was recomputed:"; cat out.txt; return 1; }
  compare_outputs p/pipeline.toml ref
  expect_exit 0 "$R" gc p/pipeline.toml --store "$SWIFT_STORE"
  check_exact p/pipeline.toml "$SWIFT_STORE/pipelines/gcpipe/data/" --store "$SWIFT_STORE"
}

test_gc_racing_a_running_pipeline_swift_coordinator() {
  use_swift_coordinator
  # As test_gc_racing_a_running_pipeline: grace 0, every put of the run delayed.
  write_pipeline p 0s 100000
  expect_exit 0 "$R" run p/pipeline.toml --no-gc --store "$PWD/ref-store"
  snapshot_outputs p/pipeline.toml ref
  rm -rf p/out
  RESPAWN_CHAOS="ops=put,latency_ms=300" "$R" run p/pipeline.toml --fresh --store "$SWIFT_STORE" \
    >run.out 2>run.err &
  local pid=$! gcs=0 rc
  while kill -0 "$pid" 2>/dev/null; do
    "$R" gc p/pipeline.toml --store "$SWIFT_STORE" >>gc.out 2>>gc.err ||
      { echo "gc failed:"; tail gc.err; return 1; }
    gcs=$((gcs + 1))
  done
  set +e
  wait "$pid"
  rc=$?
  set -e
  echo "run exit $rc after $gcs concurrent gc runs"
  [ $rc -eq 0 ] || { cat run.out run.err; return 1; }
  compare_outputs p/pipeline.toml ref
  expect_exit 0 "$R" run p/pipeline.toml --store "$SWIFT_STORE"
  ! grep -q ': computed' out.txt || { echo "a retained stage was lost:"; cat out.txt; return 1; }
  check_exact p/pipeline.toml "$SWIFT_STORE/pipelines/gcpipe/data/" --store "$SWIFT_STORE"
}

test_swift_coordinator_servers_missing() {
  echo "CI=true: RESPAWN_TEST_S3_ENV_SWIFT and RESPAWN_TEST_PG_ENV must name readable env files"
  return 1
}

run test_exact_after_run_posix
run test_orphans_respect_the_grace_period
run test_status_usage_by_run_and_stage
run test_gc_killed_at_each_point_then_rerun_reuses
run test_gc_racing_a_running_pipeline
run test_gc_racing_a_running_pipeline_radosgw
run test_exact_after_run_radosgw
run test_lifecycle_apply_radosgw
run test_lifecycle_apply_swift
if have_swift_coordinator; then
  run test_exact_after_run_swift_coordinator
  run test_gc_killed_after_its_trim_swift_coordinator
  run test_gc_racing_a_running_pipeline_swift_coordinator
elif [ "${CI:-}" = true ]; then
  run test_swift_coordinator_servers_missing
else
  echo "SKIP Swift cases: RESPAWN_TEST_S3_ENV_SWIFT or RESPAWN_TEST_PG_ENV is not set (ctest sets them)"
fi
e2e_finish
