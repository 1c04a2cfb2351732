#!/usr/bin/env bash
# respawn-test-servers: radosgw swift postgres
#
# Crash tests of `respawn run`: a small multi-stage pipeline (generated sources, a join, a stage
# without checkpoint, Parquet and CSV outputs) is run cleanly once for reference outputs. Then
#   (a) for every named crash point (RESPAWN_CRASH_AT=name[@N]) the run must die with exit 137,
#       and re-running must finish (bounded) with outputs equal to the reference, row for row;
#   (b) runs are SIGKILLed at seeded random moments (several times in a row) and resumed;
# on a local (POSIX) store and on radosgw (s3://$RESPAWN_TEST_BUCKET/<unique prefix>), with and
# without injected store faults (RESPAWN_CHAOS="error_rate=0.1,seed=N").
#
# Usage: tests/pipeline_crash_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
# The radosgw cases need RESPAWN_TEST_S3_ENV_RADOSGW (set by ctest); without it they are skipped.
# The Swift cases (no put-if-absent: commits go through the PostgreSQL commit coordinator) need
# RESPAWN_TEST_S3_ENV_SWIFT and RESPAWN_TEST_PG_ENV; without them they are skipped (CI=true: fail).
# RESPAWN_CRASH_SEED picks another random schedule for (b) (default 20240601).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"
SEED="${RESPAWN_CRASH_SEED:-20240601}"

# Every crash point of the contract, with how often a clean run reaches it at least (the @N
# variants tried beyond @1): ledger points once per commit (a commit per checkpointed stage, so
# >= 6), runner stage points once per stage, output points once per output (4). The snapshot
# points are reached only once a ledger holds many records: test_crash_at_snapshot.
CRASH_SPECS=(
  ledger:before-data@1 ledger:after-data@3
  ledger:before-publish@1 ledger:before-publish@4
  ledger:after-publish@1 ledger:after-publish@3
  ledger:before-head@2
  ledger:after-head@1 ledger:after-head@5
  ledger:before-claim@1
  ledger:after-claim@1
  runner:before-stage@1 runner:before-stage@4
  runner:after-export@1 runner:after-export@3
  runner:after-commit@1 runner:after-commit@5
  runner:before-output@1 runner:before-output@3
  runner:after-output@1 runner:after-output@4
)
# Sampled on radosgw (each S3 case costs more): one or two per phase of a commit and of a run.
S3_CRASH_SPECS=(
  runner:after-export@2 ledger:before-publish@3 ledger:after-publish@1 ledger:after-head@2
  ledger:after-claim@1 runner:after-commit@3 runner:before-output@2 runner:after-output@1
)
# Outputs whose row order the pipeline does not define (compared sorted).
export E2E_SORTED_OUTPUTS="joined_out"

P="$WORK/p"
mkdir -p "$P"
cat >"$P/pipeline.toml" <<'EOF'
name = "crashy"

[sources.facts]
sql = "SELECT range AS id, range % 97 AS k, (range * 7919) % 1000 AS v FROM range(0, 60000)"

[sources.dims]
sql = "SELECT range AS k, 'label_' || lpad(CAST(range AS VARCHAR), 3, '0') AS label, range % 5 AS grp FROM range(0, 97)"

[stages.filtered]
sql = "SELECT id, k, v FROM facts WHERE v % 3 <> 0"

[stages.joined]
sql = """
SELECT f.id, f.v, d.label, d.grp
FROM filtered f
JOIN dims d USING (k)
"""

[stages.by_grp]
sql = "SELECT grp, count(*) AS n, sum(v) AS total FROM joined GROUP BY grp"

[stages.doubled]
sql = "SELECT grp, n * 2 AS n2, total FROM by_grp"
checkpoint = false

[stages.by_label]
sql = """
SELECT label, grp, count(*) AS n, sum(v) AS total, min(id) AS first_id
FROM joined
GROUP BY label, grp
ORDER BY label
"""

[stages.top]
sql = "SELECT id, v, label FROM joined ORDER BY v DESC, id LIMIT 200"

[stages.final]
sql = """
SELECT b.grp, b.n, b.total, d.n2
FROM by_grp b
JOIN doubled d USING (grp)
ORDER BY grp
"""

[outputs.joined_out]
from = "joined"
path = "out/joined.parquet"

[outputs.by_label_out]
from = "by_label"
path = "out/by_label.csv"

[outputs.top_out]
from = "top"
path = "out/top.parquet"

[outputs.final_out]
from = "final"
path = "out/final.csv"
EOF
PIPE="$P/pipeline.toml"
REF="$WORK/ref"

# --- radosgw ---------------------------------------------------------------------------------
S3_OK=0
if [ -n "${RESPAWN_TEST_S3_ENV_RADOSGW:-}" ] && [ -r "$RESPAWN_TEST_S3_ENV_RADOSGW" ]; then
  unset AWS_PROFILE AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN
  set -a
  # shellcheck disable=SC1090
  . "$RESPAWN_TEST_S3_ENV_RADOSGW"
  set +a
  export AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
  export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
  S3_TOP="s3://$RESPAWN_TEST_BUCKET/pipeline-crash-$$-$RANDOM"
  S3_OK=1
  if [ -x /usr/bin/aws ]; then
    E2E_CLEANUP+=("/usr/bin/aws --endpoint-url '$AWS_ENDPOINT_URL' s3 rm --recursive --quiet '$S3_TOP/'")
  fi
fi
S3_SEQ=0
# new_s3_store: a store URL no earlier case used.
new_s3_store() {
  S3_SEQ=$((S3_SEQ + 1))
  echo "$S3_TOP/case-$BASHPID-$S3_SEQ-$RANDOM"
}

# --- helpers ---------------------------------------------------------------------------------

# fresh KIND: removes outputs and (local) the store; sets STORE to an empty store of KIND.
fresh() {
  rm -rf "$P/out" "$P/store"
  if [ "$1" = s3 ]; then
    STORE="$(new_s3_store)"
  else
    STORE="$P/store"
  fi
}

# run_rc LOG [env...]: one `respawn run` of the pipeline into $STORE (env assignments first);
# prints the exit code. stdout and stderr are appended to LOG.
run_rc() {
  local log="$1"
  shift
  set +e
  env "$@" "$R" run --no-gc "$PIPE" --store "$STORE" >>"$log" 2>&1
  local rc=$?
  set -e
  echo "$rc"
}

# with_chaos [env...]: whether the env assignments inject store faults.
with_chaos() {
  [[ " $* " == *" RESPAWN_CHAOS="* ]]
}

# resume_to_done LOG [env...]: re-runs until exit 0. Without injected faults the first re-run
# must finish; with them, up to 4 tries, each failure a plain error (exit 1), never a crash.
resume_to_done() {
  local log="$1"
  shift
  local i rc
  for i in 1 2 3 4; do
    echo "--- resume $i ($*)" >>"$log"
    rc="$(run_rc "$log" "$@")"
    if [ "$rc" -eq 0 ]; then
      return 0
    fi
    if [ "$rc" -ge 128 ] || ! with_chaos "$@"; then
      echo "resume $i ended with exit $rc, want 0:"
      tail -n 30 "$log"
      return 1
    fi
  done
  echo "did not finish after 4 resumes (last exit $rc):"
  tail -n 40 "$log"
  return 1
}

# check_done LOG: the outputs equal the reference; nothing temporary is left beside them.
check_done() {
  local log="$1"
  if ! compare_outputs "$PIPE" "$REF"; then
    echo "--- log"
    tail -n 60 "$log"
    return 1
  fi
  local strays
  strays="$(find "$P/out" -type f ! -name '*.parquet' ! -name '*.csv')"
  [ -z "$strays" ] || { echo "temporary files left beside the outputs: $strays"; return 1; }
}

# crash_case KIND SPEC [env...]: crash at SPEC on a fresh store, resume, compare.
crash_case() {
  local kind="$1" spec="$2"
  shift 2
  fresh "$kind"
  local log="$WORK/crash-$kind-${spec//[:@]/_}.log"
  : >"$log"
  echo "=== $kind $spec $*"
  local rc
  rc="$(run_rc "$log" RESPAWN_CRASH_AT="$spec" "$@")"
  if [ "$rc" -ne 137 ]; then
    echo "RESPAWN_CRASH_AT=$spec: exit $rc, want 137 (the point was not reached, or the run failed)"
    grep -v '^stage ' "$log" | tail -n 5
    return 1
  fi
  resume_to_done "$log" "$@" || return 1
  # After a crash once stages were committed, the resume reuses them.
  case "$spec" in
    runner:after-commit@*|runner:before-output@*|runner:after-output@*)
      if ! grep -Eq '^stage [A-Za-z0-9_]+: reused' "$log"; then
        echo "crash at $spec (after stages committed): the resume reused no stage:"
        grep -E '^stage ' "$log"
        return 1
      fi
      ;;
  esac
  check_done "$log" || return 1
}

# kill_rounds KIND ROUNDS [env...]: ROUNDS times: a fresh store, 1-3 runs each SIGKILLed at a
# random moment within the clean run time, then a run to completion; outputs equal the reference.
kill_rounds() {
  local kind="$1" rounds="$2"
  shift 2
  local round kills k rc pid delay_ms budget_ms
  budget_ms=$((CLEAN_MS * 12 / 10 + 100))
  [ "$kind" = s3 ] && budget_ms=$((CLEAN_S3_MS * 12 / 10 + 100))
  for round in $(seq 1 "$rounds"); do
    fresh "$kind"
    local log="$WORK/kill-$kind-$round.log"
    : >"$log"
    kills=$((RANDOM % 3 + 1))
    local killed=0
    for k in $(seq 1 "$kills"); do
      delay_ms=$((RANDOM * 32768 + RANDOM))
      delay_ms=$((delay_ms % budget_ms))
      echo "--- round $round kill $k after ${delay_ms} ms" >>"$log"
      set +e
      env "$@" "$R" run --no-gc "$PIPE" --store "$STORE" >>"$log" 2>&1 &
      pid=$!
      sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
      kill -KILL "$pid" 2>/dev/null
      wait "$pid"
      rc=$?
      set -e
      if [ "$rc" -eq 137 ]; then
        killed=$((killed + 1))
      elif [ "$rc" -ne 0 ] && ! { [ "$rc" -eq 1 ] && with_chaos "$@"; }; then
        echo "round $round: run $k ended with exit $rc before it was killed:"
        tail -n 30 "$log"
        return 1
      fi
    done
    echo "round $round: $killed of $kills runs killed"
    resume_to_done "$log" "$@"
    check_done "$log"
  done
}

# --- the reference ---------------------------------------------------------------------------
# A clean run on a local store gives the reference outputs and the clean run time.
STORE="$P/store"
rm -rf "$P/out" "$P/store"
start_ns=$(date +%s%N)
if ! "$R" run --no-gc "$PIPE" --store "$STORE" >"$WORK/clean.log" 2>&1; then
  echo "FAIL the clean reference run:"
  cat "$WORK/clean.log"
  exit 1
fi
CLEAN_MS=$((($(date +%s%N) - start_ns) / 1000000))
snapshot_outputs "$PIPE" "$REF"
echo "clean run: ${CLEAN_MS} ms; reference rows: $(wc -l "$REF"/*.csv | tail -n 1 | awk '{print $1}')"
CLEAN_S3_MS=$CLEAN_MS

test_reference_is_right() {
  # The reference itself, checked independently of respawn (row counts and totals).
  "$PY" - "$REF" <<'EOF'
import csv, sys
ref = sys.argv[1]
facts = [(i, i % 97, (i * 7919) % 1000) for i in range(60000)]
kept = [(i, k, v) for i, k, v in facts if v % 3 != 0]
rows = list(csv.DictReader(open(f"{ref}/joined_out.csv")))
assert len(rows) == len(kept), (len(rows), len(kept))
assert sum(int(r["v"]) for r in rows) == sum(v for _, _, v in kept)
final = list(csv.DictReader(open(f"{ref}/final_out.csv")))
assert [int(r["grp"]) for r in final] == [0, 1, 2, 3, 4], final
for r in final:
    g = int(r["grp"])
    mine = [v for i, k, v in kept if k % 5 == g]
    assert int(r["n"]) == len(mine) and int(r["n2"]) == 2 * len(mine), r
    assert float(r["total"]) == sum(mine), r
top = list(csv.DictReader(open(f"{ref}/top_out.csv")))
want = sorted(kept, key=lambda t: (-t[2], t[0]))[:200]
assert [int(r["id"]) for r in top] == [t[0] for t in want], "top differs"
by_label = list(csv.DictReader(open(f"{ref}/by_label_out.csv")))
assert len(by_label) == 97 and by_label[0]["label"] == "label_000", by_label[:2]
EOF
}

test_rerun_reuses_everything() {
  local out="$WORK/rerun.log"
  "$R" run --no-gc "$PIPE" --store "$P/store" >"$out" 2>&1
  all_stages_reused "$PIPE" "$out"
  compare_outputs "$PIPE" "$REF"
}

# crash_cases KIND SPEC...: crash_case for each SPEC, all of them even when one fails.
crash_cases() {
  local kind="$1" spec bad=()
  shift
  for spec in "$@"; do
    crash_case "$kind" "$spec" || bad+=("$spec")
  done
  if [ "${#bad[@]}" -ne 0 ]; then
    echo "FAILED crash points ($kind): ${bad[*]}"
    return 1
  fi
}

test_crash_points_local() {
  crash_cases local "${CRASH_SPECS[@]}"
}

# The ledger writes a snapshot every so many records (64). A store is filled with --fresh runs to
# just below that once; each snapshot point is then armed on a copy of it, re-running with
# --fresh until it fires (bounded), then resumed and compared.
SNAPSHOT_BASE=""
prepare_snapshot_base() {
  [ -z "$SNAPSHOT_BASE" ] || return 0
  SNAPSHOT_BASE="$WORK/snapshot-base"
  rm -rf "$SNAPSHOT_BASE"
  local i
  for i in 1 2 3 4; do
    "$R" run --no-gc "$PIPE" --store "$SNAPSHOT_BASE" --fresh >"$WORK/snapshot-base.log" 2>&1 ||
      { echo "--fresh run $i failed"; cat "$WORK/snapshot-base.log"; return 1; }
  done
  if [ -n "$(ls -A "$SNAPSHOT_BASE/pipelines/crashy/ledger/snap" 2>/dev/null)" ]; then
    echo "a snapshot was written already; the base is too full"
    return 1
  fi
  return 0
}

snapshot_case() {
  local spec="$1" i rc fired=0
  fresh local
  cp -r "$SNAPSHOT_BASE" "$STORE"
  local log="$WORK/crash-snapshot-${spec//[:@]/_}.log"
  : >"$log"
  for i in $(seq 1 6); do
    set +e
    RESPAWN_CRASH_AT="$spec" "$R" run --no-gc "$PIPE" --store "$STORE" --fresh >>"$log" 2>&1
    rc=$?
    set -e
    if [ "$rc" -eq 137 ]; then
      fired=1
      break
    fi
    [ "$rc" -eq 0 ] || { echo "--fresh run $i: exit $rc"; tail -n 30 "$log"; return 1; }
  done
  [ "$fired" = 1 ] || { echo "$spec never fired in 6 more --fresh runs"; return 1; }
  echo "$spec fired in --fresh run $i on top of the base"
  resume_to_done "$log"
  check_done "$log"
  # One more run on top of the snapshot: everything reused.
  local again="$WORK/after-snapshot-${spec//[:@]/_}.log"
  "$R" run --no-gc "$PIPE" --store "$STORE" >"$again" 2>&1
  all_stages_reused "$PIPE" "$again"
}

test_crash_at_snapshot() {
  prepare_snapshot_base
  snapshot_case ledger:before-snapshot
  snapshot_case ledger:after-snapshot
}

test_crash_points_local_chaos() {
  local spec n=0
  # With RESPAWN_CHAOS the store is wrapped by the chaos store, whose own crash points
  # (store:<op>:before|after) also fire: store:put:after is a write that landed unacknowledged.
  for spec in store:put:before@3 store:put:after@5 ledger:after-publish@2 runner:after-commit@3 \
      runner:after-output@2; do
    n=$((n + 1))
    crash_case local "$spec" RESPAWN_CHAOS="error_rate=0.1,seed=$((SEED + n))"
  done
}

test_sigkill_local() {
  RANDOM=$SEED
  kill_rounds local 7
}

test_sigkill_local_chaos() {
  RANDOM=$((SEED + 1))
  kill_rounds local 4 RESPAWN_CHAOS="error_rate=0.1,seed=$SEED"
}

# wait_signal_handler PID TERM|INT: returns once PID catches the signal (its SigCgt mask in
# /proc has the bit), or has exited, or after 10 s.
wait_signal_handler() {
  local pid="$1" bit i mask
  if [ "$2" = TERM ]; then bit=$((1 << 14)); else bit=$((1 << 1)); fi
  for i in $(seq 1 2000); do
    mask="$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" || return 0
    [ -n "$mask" ] || return 0
    if (( 16#$mask & bit )); then return 0; fi
    sleep 0.005
  done
}

# SIGTERM/SIGINT (a spot notice, Kubernetes, Slurm): exit 75 with what finished committed (or 0
# when the run finished first), never a crash; the re-run completes with the reference outputs.
test_sigterm_local() {
  RANDOM=$((SEED + 4))
  local round rc pid delay_ms sig interrupted=0
  for round in 1 2 3 4; do
    fresh local
    local log="$WORK/term-$round.log"
    : >"$log"
    # Mostly inside the run (which takes CLEAN_MS including startup), sometimes at its end.
    delay_ms=$(((RANDOM * 32768 + RANDOM) % (CLEAN_MS * 3 / 4 + 1)))
    sig=TERM
    [ $((round % 2)) -eq 0 ] && sig=INT
    set +e
    "$R" run --no-gc "$PIPE" --store "$STORE" >>"$log" 2>&1 &
    pid=$!
    # The random delay counts from when respawn handles the signal: before that (the dynamic
    # loader and DuckDB's static initializers, ~30 ms) any process dies of it with 143.
    wait_signal_handler "$pid" "$sig"
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -"$sig" "$pid" 2>/dev/null
    wait "$pid"
    rc=$?
    set -e
    echo "round $round: SIG$sig after ${delay_ms} ms: exit $rc"
    case "$rc" in
      75)
        interrupted=$((interrupted + 1))
        grep -q 'interrupted' "$log" || { echo "exit 75 without saying it was interrupted:"; cat "$log"; return 1; }
        ;;
      0) ;;
      *) echo "SIG$sig: exit $rc, want 75 (or 0 when it had finished):"; tail -n 20 "$log"; return 1 ;;
    esac
    resume_to_done "$log"
    check_done "$log"
  done
  [ "$interrupted" -gt 0 ] || { echo "no round was interrupted (all finished first)"; return 1; }
}

s3_clean_time() {
  fresh s3
  local t0 rc
  t0=$(date +%s%N)
  rc="$(run_rc "$WORK/s3-clean.log")"
  [ "$rc" -eq 0 ] || { echo "clean run on $STORE: exit $rc"; cat "$WORK/s3-clean.log"; return 1; }
  CLEAN_S3_MS=$((($(date +%s%N) - t0) / 1000000))
  echo "clean run on radosgw: ${CLEAN_S3_MS} ms"
  check_done "$WORK/s3-clean.log"
  # Nothing was written to a local .respawn when the store is S3.
  [ ! -e "$P/.respawn" ] || { echo "a local $P/.respawn appeared with --store s3://"; return 1; }
}

test_crash_points_radosgw() {
  local spec
  s3_clean_time
  crash_cases s3 "${S3_CRASH_SPECS[@]}"
}

test_crash_points_radosgw_chaos() {
  local spec n=0
  for spec in ledger:before-publish@2 store:put:after@4 runner:after-commit@2; do
    n=$((n + 1))
    crash_case s3 "$spec" RESPAWN_CHAOS="error_rate=0.1,seed=$((SEED + 10 + n))"
  done
}

test_sigkill_radosgw() {
  s3_clean_time
  RANDOM=$((SEED + 2))
  kill_rounds s3 4
}

test_sigkill_radosgw_chaos() {
  s3_clean_time
  RANDOM=$((SEED + 3))
  kill_rounds s3 3 RESPAWN_CHAOS="error_rate=0.1,seed=$((SEED + 3))"
}

# --- Swift with the commit coordinator ------------------------------------------------------
# Swift cannot put-if-absent: every commit is an insert into PostgreSQL (RESPAWN_COORDINATOR).
# Each case runs in its own subshell, so exporting Swift's environment there leaves the radosgw
# one above alone.
have_swift_coordinator() {
  [ -n "${RESPAWN_TEST_S3_ENV_SWIFT:-}" ] && [ -r "$RESPAWN_TEST_S3_ENV_SWIFT" ] &&
    [ -n "${RESPAWN_TEST_PG_ENV:-}" ] && [ -r "$RESPAWN_TEST_PG_ENV" ]
}

# use_swift_coordinator: Swift's environment and the coordinator; S3_TOP and CLEAN_S3_MS for it.
use_swift_coordinator() {
  unset AWS_PROFILE AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN
  set -a
  # shellcheck disable=SC1090
  . "$RESPAWN_TEST_S3_ENV_SWIFT"
  set +a
  export AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
  export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
  RESPAWN_COORDINATOR="$(sed -n 's/^RESPAWN_TEST_PG_URL=//p' "$RESPAWN_TEST_PG_ENV")"
  export RESPAWN_COORDINATOR
  S3_TOP="s3://$RESPAWN_TEST_BUCKET/pipeline-crash-swift-$$-$RANDOM"
  fresh s3
  local t0 rc
  t0=$(date +%s%N)
  rc="$(run_rc "$WORK/swift-clean.log")"
  [ "$rc" -eq 0 ] || { echo "clean run on $STORE: exit $rc"; cat "$WORK/swift-clean.log"; return 1; }
  CLEAN_S3_MS=$((($(date +%s%N) - t0) / 1000000))
  echo "clean run on Swift with the coordinator: ${CLEAN_S3_MS} ms"
  grep -q '^commits through the coordinator' "$WORK/swift-clean.log"
  check_done "$WORK/swift-clean.log"
}

test_crash_points_swift_coordinator() {
  use_swift_coordinator
  crash_cases s3 "${S3_CRASH_SPECS[@]}"
}

test_sigkill_swift_coordinator() {
  use_swift_coordinator
  RANDOM=$((SEED + 5))
  kill_rounds s3 3
}

test_swift_coordinator_servers_missing() {
  echo "CI=true: RESPAWN_TEST_S3_ENV_SWIFT and RESPAWN_TEST_PG_ENV must name readable env files"
  return 1
}

run test_reference_is_right
run test_rerun_reuses_everything
run test_crash_points_local
run test_crash_at_snapshot
run test_crash_points_local_chaos
run test_sigkill_local
run test_sigkill_local_chaos
run test_sigterm_local
if [ "$S3_OK" = 1 ]; then
  run test_crash_points_radosgw
  run test_crash_points_radosgw_chaos
  run test_sigkill_radosgw
  run test_sigkill_radosgw_chaos
else
  echo "SKIP radosgw cases: RESPAWN_TEST_S3_ENV_RADOSGW is not set (ctest sets it)"
fi
if have_swift_coordinator; then
  run test_crash_points_swift_coordinator
  run test_sigkill_swift_coordinator
elif [ "${CI:-}" = true ]; then
  run test_swift_coordinator_servers_missing
else
  echo "SKIP Swift cases: RESPAWN_TEST_S3_ENV_SWIFT or RESPAWN_TEST_PG_ENV is not set (ctest sets them)"
fi
e2e_finish
