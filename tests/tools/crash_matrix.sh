# shellcheck shell=bash
# The crash matrix of `respawn run` (and `respawn gc`) on one kind of store, with garbage
# collection on as by default. Sourced by the suites that pick the store:
# tests/pipeline_crash_test.sh (a local POSIX directory) and tests/pipeline_crash_radosgw_test.sh
# (radosgw); a suite for another server names its server the same way (and exports whatever its
# runs need).
#
# A multi-stage pipeline (generated sources, a join, a stage without checkpoint, Parquet and CSV
# outputs) is run cleanly once on a local store for reference outputs. Then, on the suite's store:
#   - for each crash point (RESPAWN_CRASH_AT=name[@N]) the run dies with exit 137, and re-running
#     finishes (bounded) with outputs equal to the reference, row for row: the runner's and the
#     ledger's commit path, GC at the end of a run and in `respawn gc`, ledger snapshots and the
#     GC floor (after a long history), every store operation (through the chaos store, with and
#     without injected faults), and the writer lease (put-if-absent hidden, as on Swift);
#   - on S3, the middle of multipart uploads: at the multipart crash points, and SIGKILLed by
#     tests/tools/s3_multipart_kill.py as soon as the server lists the upload (checked to be
#     still incomplete after the kill);
#   - runs SIGKILLed at seeded random moments (several times in a row) and resumed; every round
#     must land a kill (a run that finished first is retried earlier), some of them after a
#     commit;
#   - SIGTERM/SIGINT: exit 75 (or 0 when the run had finished), then a resume.
# Finally every crash point the binary declares (`respawn debug crash-points`) must have fired in
# one of the cases, except those the store cannot reach (CRASH_UNREACHABLE): a point added to
# src/ without a case here fails the suite.
#
# Use: after e2e_lib.sh and e2e_init, `. crash_matrix.sh local` (a local store) or
# `. crash_matrix.sh SERVER` (a server of tests/suites.cmake), then crash_matrix_main. Between
# the two a suite may adjust the spec arrays and CRASH_UNREACHABLE below, and export what its
# runs need (e.g. a coordinator URL).
# RESPAWN_CRASH_SEED picks another random schedule (default 20240601).

SEED="${RESPAWN_CRASH_SEED:-20240601}"
case "${1:-}" in
  local) CRASH_SERVER="" ;;
  radosgw | swift) CRASH_SERVER="$1" ;;
  *) echo "crash_matrix.sh: say local or a server (radosgw, swift), not '${1:-}'" >&2; exit 2 ;;
esac
if [ -n "$CRASH_SERVER" ]; then CRASH_KIND=s3; else CRASH_KIND=local; fi

# Crash points reached by every run, with how often a clean run on a fresh store reaches them at
# least (the @N variants tried beyond @1): ledger points once per commit (a commit per
# checkpointed stage and source, so >= 8), runner stage points once per stage, output points
# once per output (4), and GC once at the end of the run.
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
  runner:before-gc@1
  gc:after-list@1 gc:before-delete@1 gc:after-delete@1
)
# `respawn gc` after a run without GC: it drops the work-tables from the ledger, then collects.
GC_COMMAND_SPECS=(gc:after-trim@1 gc:after-list@1 gc:before-delete@1 gc:after-delete@1)
# The chaos store's points around every store operation (it adds 1 ms to each), then some points
# again with injected faults.
STORE_SPECS=(
  store:put:before@3 store:put:after@5 store:get:before@2 store:get:after@4
  store:stat:before@1 store:stat:after@1 store:list:before@1 store:list:after@2
  store:delete:before@1 store:delete:after@1
)
CHAOS_SPECS=(store:put:before@3 store:put:after@5 ledger:after-publish@2 runner:after-commit@3
  runner:after-output@2)
# With put-if-absent hidden the ledger commits under its writer lease (Swift's mode); each case
# waits out the dead holder's lease (30 s). A run that takes over 15 s (half the lease) renews it.
LEASE_SPECS=(ledger:lease-acquired@1 ledger:after-publish@2)
LEASE_RENEW_SPECS=(ledger:before-lease-renew@1 ledger:after-lease-renew@1)
# S3 only: the multipart upload of the big pipeline's checkpoint (3 parts of 5 MB).
MULTIPART_SPECS=(s3:multipart-after-part@1 s3:multipart-after-part@2
  s3:multipart-before-complete@1)
# Declared points this kind of store cannot reach.
if [ "$CRASH_KIND" = local ]; then
  CRASH_UNREACHABLE=(s3:multipart-after-part s3:multipart-before-complete)
else
  CRASH_UNREACHABLE=()
fi
# Outputs whose row order the pipeline does not define (compared sorted).
export E2E_SORTED_OUTPUTS="joined_out"
# Every fired crash point, one name a line (appended to by every case, read by the last test).
FIRED="$WORK/fired-points.txt"
: >"$FIRED"

P="$WORK/p"
mkdir -p "$P"
cat >"$P/pipeline.toml" <<'END_PIPELINE'
name = "crashy"

# GC drops work-tables as soon as a run finished: its crash points then delete something
[gc]
work_tables_ttl = "0"

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
END_PIPELINE
PIPE="$P/pipeline.toml"
REF="$WORK/ref"

# A pipeline with one big checkpoint: 1.6 million 64-bit hashes do not compress (~14 MB, a
# 3-part multipart upload with 5 MB parts).
BIG_P="$WORK/big"
mkdir -p "$BIG_P"
cat >"$BIG_P/pipeline.toml" <<'END_PIPELINE'
name = "bigpipe"

[sources.big]
sql = "SELECT range AS id, hash(range) AS h FROM range(0, 1600000)"

[stages.stats]
sql = "SELECT count(*) AS n, sum(h % 1000) AS s, min(h) AS lo, max(h) AS hi FROM big"

[outputs.stats_out]
from = "stats"
path = "out/stats.csv"
END_PIPELINE
BIG_PIPE="$BIG_P/pipeline.toml"
BIG_REF="$WORK/big-ref"

# --- stores ----------------------------------------------------------------------------------

# crash_store_setup: points this test function at the suite's store. For a server: its env file
# (skips without it, fails in CI), 5 MB multipart parts, and S3_TOP, a fresh prefix removed when
# the test function ends.
crash_store_setup() {
  [ "$CRASH_KIND" = s3 ] || return 0
  e2e_require_server "$CRASH_SERVER"
  export RESPAWN_S3_MULTIPART_THRESHOLD=5MB RESPAWN_S3_MULTIPART_CHUNKSIZE=5MB
  S3_TOP="s3://$RESPAWN_TEST_BUCKET/pipeline-crash-$$-$BASHPID-$RANDOM"
  S3_SEQ=0
  # shellcheck disable=SC2064 # S3_TOP is fixed now: expand it now.
  trap "'$R' -q store rm -r '$S3_TOP' >/dev/null 2>&1 || true" EXIT
}

# new_s3_store: a store URL no earlier case used.
new_s3_store() {
  S3_SEQ=$((S3_SEQ + 1))
  echo "$S3_TOP/case-$BASHPID-$S3_SEQ-$RANDOM"
}

# fresh KIND: removes outputs and (local) the store; sets STORE to an empty store of KIND
# (local or s3).
fresh() {
  rm -rf "$P/out" "$P/store"
  if [ "$1" = s3 ]; then
    STORE="$(new_s3_store)"
  else
    STORE="$P/store"
  fi
}

# own_pipeline DIR: this subshell works on its own copy of the pipeline in DIR (for cases that
# run in parallel: outputs live beside the pipeline file).
own_pipeline() {
  P="$1"
  mkdir -p "$P"
  cp "$PIPE" "$P/pipeline.toml"
  PIPE="$P/pipeline.toml"
}

# copy_store FROM TO: a copy of a whole store (local directory or S3 prefix).
copy_store() {
  if [[ "$1" == s3://* ]]; then
    "$R" -q store cp -r "$1" "$2" >/dev/null
  else
    cp -r "$1" "$2"
  fi
}

# --- helpers ---------------------------------------------------------------------------------

# run_rc LOG [env...] [-- run args...]: one `respawn run` of the pipeline into $STORE (env
# assignments first, extra arguments of `run` after --); prints the exit code. stdout and
# stderr are appended to LOG.
run_rc() {
  local log="$1" envs=() args=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do envs+=("$1"); shift; done
  if [ $# -gt 0 ]; then shift; args=("$@"); fi
  # Without put-if-absent and without a coordinator, a run must opt in to the writer lease.
  if lease_mode "${envs[@]}" && [ -z "${RESPAWN_COORDINATOR:-}" ]; then args+=(--single-writer); fi
  local rc=0
  env "${envs[@]}" "$R" run "$PIPE" --store "$STORE" "${args[@]}" >>"$log" 2>&1 || rc=$?
  echo "$rc"
}

# with_chaos [env...]: whether the env assignments inject store faults.
with_chaos() {
  [[ " $* " == *" RESPAWN_CHAOS="*error_rate* ]]
}

# lease_mode [env...]: whether the env assignments hide put-if-absent (commits under the lease).
lease_mode() {
  [[ " $* " == *" RESPAWN_CHAOS="*put_if_absent=off* ]]
}

# resume_to_done LOG [env...]: re-runs until exit 0. Without injected faults the first re-run
# must finish; with them, up to 4 tries, each failure a plain error (exit 1), never a crash. In
# lease mode a re-run fails (exit 1, naming the lease) until the killed writer's lease expired:
# retried every 2 s for up to 90 s.
resume_to_done() {
  local log="$1"
  shift
  local i rc tries=4
  if lease_mode "$@"; then tries=45; fi
  for ((i = 1; i <= tries; i++)); do
    echo "--- resume $i ($*)" >>"$log"
    rc="$(run_rc "$log" "$@")"
    if [ "$rc" -eq 0 ]; then
      return 0
    fi
    if lease_mode "$@" && [ "$rc" -eq 1 ] && grep -q 'lease' <<<"$(tail -n 3 "$log")"; then
      sleep 2
      continue
    fi
    if [ "$rc" -ge 128 ] || ! with_chaos "$@"; then
      echo "resume $i ended with exit $rc, want 0:"
      tail -n 30 "$log"
      return 1
    fi
  done
  echo "did not finish after $tries resumes (last exit $rc):"
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

# fired SPEC LOG: the run logged in LOG died at SPEC's point; records it in $FIRED.
fired() {
  local name="${1%@*}"
  if ! grep -qF "crash point $name reached" "$2"; then
    echo "exit 137 but the log does not say crash point $name fired:"
    tail -n 5 "$2"
    return 1
  fi
  echo "$name" >>"$FIRED"
}

# expect_crash LOG SPEC RC: RC is 137 and the log says SPEC fired.
expect_crash() {
  local log="$1" spec="$2" rc="$3"
  if [ "$rc" -ne 137 ]; then
    echo "RESPAWN_CRASH_AT=$spec: exit $rc, want 137 (the point was not reached, or the run failed)"
    grep -v '^stage ' "$log" | tail -n 5
    return 1
  fi
  fired "$spec" "$log"
}

# crash_case KIND SPEC [env...]: crash at SPEC on a fresh store, resume, compare. The crashing
# run gets RESPAWN_CHAOS=$CRASH_RUN_CHAOS instead when that is set (e.g. slow puts only there).
crash_case() {
  local kind="$1" spec="$2"
  shift 2
  fresh "$kind" || return 1
  local log="$WORK/crash-$kind-${spec//[:@]/_}-$BASHPID.log"
  : >"$log"
  echo "=== $kind $spec $* ${CRASH_RUN_CHAOS:+(crashing run: RESPAWN_CHAOS=$CRASH_RUN_CHAOS)}"
  local rc crash_env=("$@")
  [ -z "${CRASH_RUN_CHAOS:-}" ] || crash_env+=(RESPAWN_CHAOS="$CRASH_RUN_CHAOS")
  rc="$(run_rc "$log" RESPAWN_CRASH_AT="$spec" "${crash_env[@]}")"
  expect_crash "$log" "$spec" "$rc" || return 1
  resume_to_done "$log" "$@" || return 1
  # After a crash once stages were committed, the resume reuses them.
  case "$spec" in
    runner:after-commit@* | runner:before-output@* | runner:after-output@* | runner:before-gc@* | gc:*)
      if ! grep -Eq '^stage [A-Za-z0-9_]+: reused' "$log"; then
        echo "crash at $spec (after stages committed): the resume reused no stage:"
        grep -E '^stage ' "$log"
        return 1
      fi
      ;;
    *) ;;
  esac
  check_done "$log" || return 1
}

# crash_cases KIND SPEC... [-- env...]: crash_case for each SPEC, all of them even when one
# fails.
crash_cases() {
  local kind="$1" specs=() envs=() spec bad=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do specs+=("$1"); shift; done
  if [ $# -gt 0 ]; then shift; envs=("$@"); fi
  for spec in "${specs[@]}"; do
    crash_case "$kind" "$spec" "${envs[@]}" || bad+=("$spec")
  done
  if [ "${#bad[@]}" -ne 0 ]; then
    echo "FAILED crash points ($kind ${envs[*]}): ${bad[*]}"
    return 1
  fi
}

# parallel_crash_cases KIND SPEC... [-- env...]: crash_case for each SPEC at once, each on its
# own copy of the pipeline (for cases that mostly wait, like lease expiry).
parallel_crash_cases() {
  local kind="$1" specs=() envs=() spec pids=() n=0 bad=()
  shift
  while [ $# -gt 0 ] && [ "$1" != -- ]; do specs+=("$1"); shift; done
  if [ $# -gt 0 ]; then shift; envs=("$@"); fi
  local tag="$WORK/parallel-$BASHPID"  # unique also when several of these run at once
  for spec in "${specs[@]}"; do
    n=$((n + 1))
    (
      own_pipeline "$tag-$n" || exit 1
      crash_case "$kind" "$spec" "${envs[@]}"
    ) >"$tag-$n.log" 2>&1 &
    pids+=($!)
  done
  n=0
  for spec in "${specs[@]}"; do
    n=$((n + 1))
    if wait "${pids[$((n - 1))]}"; then
      echo "ok: $spec"
    else
      bad+=("$spec")
      echo "FAILED: $spec"
      sed 's/^/  | /' "$tag-$n.log" | tail -n 40
    fi
  done
  [ "${#bad[@]}" -eq 0 ] || { echo "FAILED crash points ($kind ${envs[*]}): ${bad[*]}"; return 1; }
}

# gc_command_case KIND SPEC: a run without GC, then `respawn gc` crashed at SPEC; the next run
# reuses every stage and writes the reference outputs, and a `respawn gc` afterwards succeeds.
gc_command_case() {
  local kind="$1" spec="$2"
  fresh "$kind" || return 1
  local log="$WORK/gc-crash-$kind-${spec//[:@]/_}.log"
  : >"$log"
  echo "=== $kind respawn gc at $spec"
  local rc
  rc="$(run_rc "$log" -- --no-gc)"
  [ "$rc" -eq 0 ] || { echo "the run without GC failed (exit $rc)"; tail -n 20 "$log"; return 1; }
  rc=0
  RESPAWN_CRASH_AT="$spec" "$R" gc "$PIPE" --store "$STORE" >>"$log" 2>&1 || rc=$?
  expect_crash "$log" "$spec" "$rc" || return 1
  : >"$log.rerun"
  rc="$(run_rc "$log.rerun")"
  [ "$rc" -eq 0 ] || { echo "the run after the crashed gc failed (exit $rc)"; tail -n 20 "$log.rerun"; return 1; }
  nothing_recomputed "$PIPE" "$log.rerun" || return 1
  check_done "$log.rerun" || return 1
  "$R" gc "$PIPE" --store "$STORE" >>"$log" 2>&1 || { echo "respawn gc after the crash failed"; tail -n 20 "$log"; return 1; }
}

gc_command_cases() {
  local kind="$1" spec bad=()
  for spec in "${GC_COMMAND_SPECS[@]}"; do
    gc_command_case "$kind" "$spec" || bad+=("$spec")
  done
  [ "${#bad[@]}" -eq 0 ] || { echo "FAILED respawn gc crash points ($kind): ${bad[*]}"; return 1; }
}

# history_case KIND BASE SPEC: the ledger writes a snapshot every 64 records and GC raises its
# floor once two snapshots exist, so these points are reached only after a long history. On a
# copy of BASE (a store whose next --fresh run crosses the record count that reaches SPEC),
# --fresh runs armed with SPEC go on until it fires (bounded), then the pipeline is resumed and
# compared, and one more run reuses everything.
history_case() {
  local kind="$1" base="$2" spec="$3" i rc fired_at=0
  fresh "$kind" || return 1
  copy_store "$base" "$STORE" || { echo "cannot copy $base to $STORE"; return 1; }
  local log="$WORK/crash-history-$kind-${spec//[:@]/_}.log"
  : >"$log"
  for i in 1 2 3 4; do
    rc="$(run_rc "$log" RESPAWN_CRASH_AT="$spec" -- --fresh)"
    if [ "$rc" -eq 137 ]; then
      fired_at=$i
      break
    fi
    [ "$rc" -eq 0 ] || { echo "--fresh run $i: exit $rc"; tail -n 30 "$log"; return 1; }
  done
  [ "$fired_at" -gt 0 ] || { echo "$spec never fired in 4 more --fresh runs"; return 1; }
  fired "$spec" "$log" || return 1
  echo "$spec fired in --fresh run $fired_at on top of the base"
  resume_to_done "$log" || return 1
  check_done "$log" || return 1
  local again="$log.again"
  : >"$again"
  rc="$(run_rc "$again")"
  [ "$rc" -eq 0 ] || { echo "the run after the resume failed (exit $rc)"; tail -n 20 "$again"; return 1; }
  nothing_recomputed "$PIPE" "$again"
}

# ledger_records STORE: how many commit records the pipeline's ledger holds.
ledger_records() {
  "$R" store ls "$1/pipelines/crashy/ledger/rec/" | grep -c '\.json$'
}

# grow_history STORE TARGET LOG: --fresh runs on STORE until the next one would reach record
# TARGET (judged by the records the last run added).
grow_history() {
  local store="$1" target="$2" log="$3" n before per_run=0 rc i
  n="$(ledger_records "$store" 2>/dev/null)" || n=0  # a fresh store has none
  for i in $(seq 1 20); do
    if [ "$per_run" -gt 0 ] && [ $((n + per_run)) -ge "$target" ]; then return 0; fi
    before="$n"
    rc="$(STORE="$store" run_rc "$log" -- --fresh)"
    [ "$rc" -eq 0 ] || { echo "--fresh run on $store failed (exit $rc)" >&2; tail -n 20 "$log" >&2; return 1; }
    n="$(ledger_records "$store")"
    per_run=$((n - before))
    if [ "$n" -ge "$target" ]; then
      echo "$store: record $target passed already ($n records, $per_run a run)" >&2
      return 1
    fi
  done
  echo "$store: still $n records after 20 runs" >&2
  return 1
}

# history_bases KIND: two stores of KIND whose next --fresh run crosses record 64 (the first
# snapshot) and record 128 (the second snapshot, after which GC writes its floor); printed one
# a line.
history_bases() {
  local kind="$1" first second
  fresh "$kind"
  first="$STORE"
  [ "$kind" = s3 ] || { first="$WORK/history-64"; rm -rf "$first"; }
  local log="$WORK/history-bases-$kind.log"
  : >"$log"
  grow_history "$first" 64 "$log" || return 1
  fresh "$kind"
  second="$STORE"
  [ "$kind" = s3 ] || { second="$WORK/history-128"; rm -rf "$second"; }
  copy_store "$first" "$second" || return 1
  grow_history "$second" 128 "$log" || return 1
  echo "$first"
  echo "$second"
}

history_cases() {
  local kind="$1" bases spec bad=()
  bases="$(history_bases "$kind")"
  local first second
  first="$(sed -n 1p <<<"$bases")"
  second="$(sed -n 2p <<<"$bases")"
  echo "bases: $first ($(ledger_records "$first") records), $second ($(ledger_records "$second") records)"
  for spec in ledger:before-snapshot@1 ledger:after-snapshot@1; do
    history_case "$kind" "$first" "$spec" || bad+=("$spec")
  done
  for spec in ledger:before-floor@1 ledger:after-floor@1; do
    history_case "$kind" "$second" "$spec" || bad+=("$spec")
  done
  [ "${#bad[@]}" -eq 0 ] || { echo "FAILED history crash points ($kind): ${bad[*]}"; return 1; }
}

# kill_rounds KIND ROUNDS [env...]: ROUNDS times: a fresh store, 1-3 runs each SIGKILLed at a
# random moment within the clean run time (CLEAN_MS, see clean_time), then a run to completion; outputs equal the
# reference. A run that finished before its kill ends the round's kills; a round without a
# landed kill starts over on a fresh store with half the delay budget. Every round must land a
# kill, and some kill of the call must land after a commit (the run had printed a stage).
kill_rounds() {
  local kind="$1" rounds="$2"
  shift 2
  local round k kills rc pid delay_ms budget_ms start_budget_ms attempt landed total=0 mid=0
  start_budget_ms=$((CLEAN_MS * 12 / 10 + 100))
  for round in $(seq 1 "$rounds"); do
    local log="$WORK/kill-$kind-$round.log"
    : >"$log"
    kills=$((RANDOM % 3 + 1))
    budget_ms=$start_budget_ms
    landed=0
    for attempt in 1 2 3 4 5; do
      fresh "$kind"
      for k in $(seq 1 "$kills"); do
        delay_ms=$(((RANDOM * 32768 + RANDOM) % budget_ms))
        echo "--- round $round attempt $attempt kill $k after ${delay_ms} ms" >>"$log"
        local before
        before="$(wc -l <"$log")"
        env "$@" "$R" run "$PIPE" --store "$STORE" >>"$log" 2>&1 &
        pid=$!
        sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
        kill -KILL "$pid" 2>/dev/null || true
        rc=0
        wait "$pid" 2>/dev/null || rc=$?  # no "Killed" job notice
        if [ "$rc" -eq 137 ]; then
          landed=$((landed + 1))
          if grep -Eq '^stage [A-Za-z0-9_]+: computed' < <(tail -n +"$((before + 1))" "$log"); then
            mid=$((mid + 1))
          fi
        elif [ "$rc" -eq 0 ]; then
          echo "--- run finished before its kill" >>"$log"
          break
        elif ! { [ "$rc" -eq 1 ] && with_chaos "$@"; }; then
          echo "round $round: run $k ended with exit $rc before it was killed:"
          tail -n 30 "$log"
          return 1
        fi
      done
      [ "$landed" -eq 0 ] || break
      budget_ms=$((budget_ms / 2 + 1))
    done
    echo "round $round: $landed of $kills kills landed (attempt $attempt)"
    [ "$landed" -gt 0 ] || { echo "round $round: no kill landed in 5 attempts"; return 1; }
    total=$((total + landed))
    resume_to_done "$log" "$@"
    check_done "$log"
  done
  echo "$total kills landed in $rounds rounds, $mid of them after a commit"
  [ "$mid" -gt 0 ] || { echo "no kill landed after a commit: the kills missed the runs' work"; return 1; }
}

# sigterm_rounds KIND: SIGTERM/SIGINT (a spot notice, Kubernetes, Slurm): exit 75 with what
# finished committed (or 0 when the run finished first), never a crash; the re-run completes
# with the reference outputs. At least one round must be interrupted.
sigterm_rounds() {
  local kind="$1" clean_ms="$CLEAN_MS"
  local round rc pid delay_ms sig interrupted=0
  for round in 1 2 3 4; do
    fresh "$kind"
    local log="$WORK/term-$kind-$round.log"
    : >"$log"
    # Mostly inside the run (which takes clean_ms including startup), sometimes at its end.
    delay_ms=$(((RANDOM * 32768 + RANDOM) % (clean_ms * 3 / 4 + 1)))
    sig=TERM
    [ $((round % 2)) -ne 0 ] || sig=INT
    "$R" run "$PIPE" --store "$STORE" >>"$log" 2>&1 &
    pid=$!
    # The random delay counts from when respawn handles the signal: before that (the dynamic
    # loader and DuckDB's static initializers, ~30 ms) any process dies of it with 143.
    wait_signal_handler "$pid" "$sig"
    sleep "$(printf '%d.%03d' $((delay_ms / 1000)) $((delay_ms % 1000)))"
    kill -"$sig" "$pid" 2>/dev/null || true
    rc=0
    wait "$pid" || rc=$?
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

# wait_signal_handler PID TERM|INT: returns once PID catches the signal (its SigCgt mask in
# /proc has the bit), or has exited, or after 10 s.
wait_signal_handler() {
  local pid="$1" bit i mask
  if [ "$2" = TERM ]; then bit=$((1 << 14)); else bit=$((1 << 1)); fi
  for i in $(seq 1 2000); do
    mask="$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" || return 0
    [ -n "$mask" ] || return 0
    if ((16#$mask & bit)); then return 0; fi
    sleep 0.005
  done
}

# clean_time: a clean run on a fresh store of the suite's kind; sets CLEAN_MS (the delay
# budget of the kill and signal rounds).
clean_time() {
  fresh "$CRASH_KIND"
  local t0 rc log="$WORK/clean-$CRASH_KIND-$BASHPID.log"
  : >"$log"
  t0=$(date +%s%N)
  rc="$(run_rc "$log")"
  [ "$rc" -eq 0 ] || { echo "clean run on $STORE: exit $rc"; cat "$log"; return 1; }
  CLEAN_MS=$((($(date +%s%N) - t0) / 1000000))
  echo "clean run on $CRASH_KIND: ${CLEAN_MS} ms"
  check_done "$log"
  if [ "$CRASH_KIND" = s3 ] && [ -e "$P/.respawn" ]; then
    echo "a local $P/.respawn appeared with --store s3://"
    return 1
  fi
}

# --- the reference ---------------------------------------------------------------------------

# crash_reference: clean runs on local stores give the reference outputs of both pipelines.
crash_reference() {
  if ! "$R" run "$PIPE" --store "$WORK/ref-store" >"$WORK/clean.log" 2>&1; then
    echo "FAIL the clean reference run:"
    cat "$WORK/clean.log"
    exit 1
  fi
  snapshot_outputs "$PIPE" "$REF"
  rm -rf "$P/out"
  if ! "$R" run "$BIG_PIPE" --store "$WORK/big-ref-store" >"$WORK/big-clean.log" 2>&1; then
    echo "FAIL the clean reference run of the big pipeline:"
    cat "$WORK/big-clean.log"
    exit 1
  fi
  snapshot_outputs "$BIG_PIPE" "$BIG_REF"
  rm -rf "$BIG_P/out" "$WORK/big-ref-store"
}

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
  [ "$(sed -n 2p "$BIG_REF/stats_out.csv" | cut -d, -f1)" = 1600000 ] ||
    { echo "the big pipeline's reference:"; cat "$BIG_REF/stats_out.csv"; return 1; }
}

test_rerun_reuses_everything() {
  crash_store_setup
  fresh "$CRASH_KIND"
  local log="$WORK/rerun-$BASHPID.log"
  : >"$log"
  [ "$(run_rc "$log")" -eq 0 ] || { cat "$log"; return 1; }
  : >"$log"
  [ "$(run_rc "$log")" -eq 0 ] || { cat "$log"; return 1; }
  nothing_recomputed "$PIPE" "$log"
  compare_outputs "$PIPE" "$REF"
}

test_crash_points() {
  crash_store_setup
  crash_cases "$CRASH_KIND" "${CRASH_SPECS[@]}"
}

test_gc_command_crash_points() {
  crash_store_setup
  gc_command_cases "$CRASH_KIND"
}

test_crash_at_snapshot_and_floor() {
  crash_store_setup
  history_cases "$CRASH_KIND"
}

# Every store operation's crash points (the chaos store wraps the store, adding 1 ms), then
# some points again with injected faults (error_rate=0.1): a crash among retries.
test_store_and_chaos_crash_points() {
  crash_store_setup
  local store_rc=0
  crash_cases "$CRASH_KIND" "${STORE_SPECS[@]}" -- RESPAWN_CHAOS="latency_ms=1" || store_rc=1
  local spec n=0 failed=()
  for spec in "${CHAOS_SPECS[@]}"; do
    n=$((n + 1))
    crash_case "$CRASH_KIND" "$spec" RESPAWN_CHAOS="error_rate=0.1,seed=$((SEED + n))" ||
      failed+=("$spec")
  done
  [ "${#failed[@]}" -eq 0 ] || { echo "FAILED with chaos ($CRASH_KIND): ${failed[*]}"; return 1; }
  return "$store_rc"
}

# The writer lease: the crashed run's own lease blocks the resume until it expires (30 s), so
# the cases run in parallel. The lease renewal points need a run over 15 s (half the lease)
# long: there every put of the crashing run waits 1.5 s first.
test_crash_points_lease() {
  crash_store_setup
  local rc=0
  parallel_crash_cases "$CRASH_KIND" "${LEASE_SPECS[@]}" -- \
    RESPAWN_CHAOS="put_if_absent=off" >lease-quick.log 2>&1 &
  local quick=$!
  CRASH_RUN_CHAOS="put_if_absent=off,ops=put,latency_ms=1500" parallel_crash_cases \
    "$CRASH_KIND" "${LEASE_RENEW_SPECS[@]}" -- RESPAWN_CHAOS="put_if_absent=off" \
    >lease-renew.log 2>&1 || rc=1
  wait "$quick" || rc=1
  cat lease-quick.log lease-renew.log
  return "$rc"
}

# S3: the big pipeline's checkpoint goes up in 3 parts. Crashed at the multipart points, then
# SIGKILLed as soon as the server lists the upload (tests/tools/s3_multipart_kill.py), three
# times: each kill must land in the middle of the upload (a try whose upload finished first is
# run again, up to 5 times), and every resume gives the reference.
test_crash_in_multipart_upload() {
  crash_store_setup
  PIPE="$BIG_PIPE"
  P="$BIG_P"
  REF="$BIG_REF"
  E2E_SORTED_OUTPUTS=""
  fresh s3
  local log="$WORK/big-clean-s3.log"
  : >"$log"
  [ "$(run_rc "$log" -- --no-gc)" -eq 0 ] || { cat "$log"; return 1; }
  local big
  big="$("$R" store ls -r "$STORE/pipelines/bigpipe/data/big/")"
  "$R" --json store stat "s3://$RESPAWN_TEST_BUCKET/$big" >big.json  # ls -r prints bucket keys
  "$PY" -c 'import json,sys; d=json.load(open("big.json")); assert d["etag"].endswith("-3"), d' ||
    { echo "the big checkpoint was not a 3-part multipart upload:"; cat big.json; return 1; }
  crash_cases s3 "${MULTIPART_SPECS[@]}"
  local round rc try
  for round in 1 2 3; do
    # The kill races the upload (3 parts of 5 MB to a server on this machine): when the upload
    # wins (exit 4, it completed before the kill), that try proves nothing, so it is run again
    # from scratch, up to 5 tries; any other outcome ends the round.
    for try in 1 2 3 4 5; do
      fresh s3
      log="$WORK/multipart-kill-$round-$try.log"
      : >"$log"
      rc=0
      /usr/bin/python3 "$E2E_TOOLS/s3_multipart_kill.py" "$STORE/" 60 -- \
        "$R" run "$PIPE" --store "$STORE" >>"$log" 2>&1 || rc=$?
      grep 's3_multipart_kill:' "$log"
      [ "$rc" -eq 4 ] || break
    done
    if [ "$rc" -ne 0 ]; then
      echo "round $round: the kill did not land in the middle of the upload in $try tries (exit $rc)"
      tail -n 20 "$log"
      return 1
    fi
    resume_to_done "$log"
    check_done "$log"
  done
}

test_sigkill() {
  crash_store_setup
  clean_time
  RANDOM=$SEED
  local rounds=7
  [ "$CRASH_KIND" = local ] || rounds=5
  kill_rounds "$CRASH_KIND" "$rounds"
}

test_sigkill_chaos() {
  crash_store_setup
  clean_time
  RANDOM=$((SEED + 1))
  kill_rounds "$CRASH_KIND" 3 RESPAWN_CHAOS="error_rate=0.1,seed=$SEED"
}

test_sigterm() {
  crash_store_setup
  clean_time
  RANDOM=$((SEED + 4))
  sigterm_rounds "$CRASH_KIND"
}

# Every crash point compiled into the binary, except CRASH_UNREACHABLE, fired in some case
# above (so it needs the whole suite).
test_every_declared_crash_point_fired() {
  crash_store_setup
  "$R" debug crash-points >declared.txt
  [ -s declared.txt ] || { echo "respawn debug crash-points printed nothing"; return 1; }
  printf '%s\n' "${CRASH_UNREACHABLE[@]}" | sed '/^$/d' | sort >unreachable.txt
  comm -23 declared.txt unreachable.txt >wanted.txt
  sort -u "$FIRED" >fired.txt
  echo "declared: $(wc -l <declared.txt) crash points, $(wc -l <unreachable.txt) unreachable" \
    "on $CRASH_KIND; fired: $(wc -l <fired.txt)"
  local never unknown
  never="$(comm -23 wanted.txt fired.txt)"
  if [ -n "$never" ]; then
    echo "crash points the binary declares that no case reached (add a case to" \
      "tests/tools/crash_matrix.sh):"
    sed 's/^/  /' <<<"$never"
    return 1
  fi
  unknown="$(comm -13 declared.txt fired.txt)"
  if [ -n "$unknown" ]; then
    echo "fired but not declared (use CrashPoint<\"name\">()): $unknown"
    return 1
  fi
}

# crash_matrix_main: the whole matrix on the suite's store.
crash_matrix_main() {
  crash_reference
  run test_reference_is_right
  run test_rerun_reuses_everything
  run test_crash_points
  run test_gc_command_crash_points
  run test_crash_at_snapshot_and_floor
  run test_store_and_chaos_crash_points
  run test_crash_points_lease
  if [ "$CRASH_KIND" = s3 ]; then run test_crash_in_multipart_upload; fi
  run test_sigkill
  run test_sigkill_chaos
  run test_sigterm
  run test_every_declared_crash_point_fired
  e2e_finish
}
