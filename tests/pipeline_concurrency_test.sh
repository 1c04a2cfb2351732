#!/usr/bin/env bash
# respawn-test-servers: swift postgres
# Two `respawn run` of the same pipeline on the same store at once: both finish, or one finishes
# and the other stops with a clear one-line error (fenced by the newer run), never a crash, an
# abort or a corrupt store. Afterwards a third run reuses every stage and the outputs equal those
# of a run that had the store to itself.
#
# The same on Swift (no put-if-absent), committing through the PostgreSQL commit coordinator,
# with RESPAWN_TEST_S3_ENV_SWIFT and RESPAWN_TEST_PG_ENV (set by ctest; without them those cases
# are skipped, or fail with CI=true).
#
# Usage: tests/pipeline_concurrency_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"
export E2E_SORTED_OUTPUTS="wide_out"

P="$WORK/p"
mkdir -p "$P"
cat >"$P/pipeline.toml" <<'EOF'
name = "concurrent"

[sources.events]
sql = "SELECT range AS id, range % 113 AS user_id, (range * 31) % 977 AS amount FROM range(0, 150000)"

[sources.users]
sql = "SELECT range AS user_id, 'u' || CAST(range AS VARCHAR) AS uname, range % 7 AS segment FROM range(0, 113)"

[stages.valid]
sql = "SELECT id, user_id, amount FROM events WHERE amount % 5 <> 1"

[stages.wide]
sql = """
SELECT v.id, v.amount, u.uname, u.segment
FROM valid v
JOIN users u USING (user_id)
"""

[stages.per_user]
sql = "SELECT uname, count(*) AS n, sum(amount) AS total FROM wide GROUP BY uname ORDER BY uname"

[stages.per_segment]
sql = "SELECT segment, count(*) AS n, sum(amount) AS total FROM wide GROUP BY segment ORDER BY segment"

[stages.summary]
sql = """
SELECT s.segment, s.n, s.total, (SELECT count(*) FROM per_user) AS users
FROM per_segment s
ORDER BY s.segment
"""

[outputs.wide_out]
from = "wide"
path = "out/wide.parquet"

[outputs.per_user_out]
from = "per_user"
path = "out/per_user.csv"

[outputs.summary_out]
from = "summary"
path = "out/summary.parquet"
EOF
PIPE="$P/pipeline.toml"
REF="$WORK/ref"

rm -rf "$P/out" "$P/.respawn"
if ! "$R" run --no-gc "$PIPE" --store "$WORK/ref-store" >"$WORK/clean.log" 2>&1; then
  echo "FAIL the clean reference run:"
  cat "$WORK/clean.log"
  exit 1
fi
snapshot_outputs "$PIPE" "$REF"
rm -rf "$P/out"

# check_pair RC1 LOG1 RC2 LOG2: both 0, or one 0 and the other a clean failure (exit 1..125, one
# "respawn: " error line that says what happened), never a crash or a hang.
check_pair() {
  local rc1="$1" log1="$2" rc2="$3" log2="$4"
  echo "exits: $rc1 $rc2"
  local rc log
  for pair in "$rc1:$log1" "$rc2:$log2"; do
    rc="${pair%%:*}"
    log="${pair#*:}"
    if [ "$rc" -ge 126 ]; then
      echo "a run crashed or was killed (exit $rc):"
      cat "$log"
      return 1
    fi
    if grep -Eiq 'terminate called|assert|segmentation|core dumped|internal error|abort' "$log"; then
      echo "a run reported an internal failure (exit $rc):"
      cat "$log"
      return 1
    fi
  done
  if [ "$rc1" -ne 0 ] && [ "$rc2" -ne 0 ]; then
    echo "both runs failed:"
    echo "--- run 1"; cat "$log1"; echo "--- run 2"; cat "$log2"
    return 1
  fi
  for pair in "$rc1:$log1" "$rc2:$log2"; do
    rc="${pair%%:*}"
    log="${pair#*:}"
    [ "$rc" -ne 0 ] || continue
    local n
    n="$(grep -c '^respawn: ' "$log" || true)"
    if [ "$n" -ne 1 ]; then
      echo "the losing run (exit $rc) printed $n 'respawn: ' error lines, want 1:"
      cat "$log"
      return 1
    fi
    if ! grep -Eiq 'fenced|newer|another|concurrent|took over' <<<"$(grep '^respawn: ' "$log")"; then
      echo "the losing run's error does not say another run took over:"
      cat "$log"
      return 1
    fi
    echo "loser: $(grep '^respawn: ' "$log")"
  done
}

# pair_case STORE DELAY [run args...]: two runs at once (the second DELAY seconds later), then a
# third alone.
pair_case() {
  local store="$1" delay="$2"
  shift 2
  local log1="$PWD/run1.log" log2="$PWD/run2.log"
  set +e
  "$R" run --no-gc "$PIPE" --store "$store" "$@" >"$log1" 2>&1 &
  local pid1=$!
  sleep "$delay"
  "$R" run --no-gc "$PIPE" --store "$store" "$@" >"$log2" 2>&1 &
  local pid2=$!
  wait "$pid1"
  local rc1=$?
  wait "$pid2"
  local rc2=$?
  set -e
  check_pair "$rc1" "$log1" "$rc2" "$log2"
  # The outputs left by the pair are whole and right.
  compare_outputs "$PIPE" "$REF"
  # A third run alone: everything reused, outputs unchanged.
  expect_exit 0 "$R" run --no-gc "$PIPE" --store "$store"
  all_stages_reused "$PIPE" out.txt
  compare_outputs "$PIPE" "$REF"
  # And the ledger reads back.
  expect_exit 0 "$R" status "$PIPE" --store "$store"
}

test_simultaneous_fresh_store() {
  rm -rf "$P/out"
  pair_case "$PWD/store" 0
}

test_staggered_fresh_store() {
  rm -rf "$P/out"
  pair_case "$PWD/store" 0.3
}

test_simultaneous_fresh_flag_on_committed_store() {
  rm -rf "$P/out"
  expect_exit 0 "$R" run --no-gc "$PIPE" --store "$PWD/store"
  pair_case "$PWD/store" 0 --fresh
}

test_three_runs_with_chaos() {
  rm -rf "$P/out"
  local store="$PWD/store" i
  set +e
  local pids=()
  for i in 1 2 3; do
    RESPAWN_CHAOS="error_rate=0.05,seed=$i" "$R" run --no-gc "$PIPE" --store "$store" >"run$i.log" 2>&1 &
    pids+=($!)
    sleep 0.1
  done
  local rcs=()
  for i in 0 1 2; do
    wait "${pids[$i]}"
    rcs+=($?)
  done
  set -e
  echo "exits: ${rcs[*]}"
  local ok=0
  for i in 0 1 2; do
    if [ "${rcs[$i]}" -ge 126 ]; then
      echo "run $((i + 1)) crashed (exit ${rcs[$i]}):"
      cat "run$((i + 1)).log"
      return 1
    fi
    [ "${rcs[$i]}" -ne 0 ] || ok=1
  done
  if [ "$ok" -ne 1 ]; then
    # Under injected faults all three may lose; one more run alone must then finish.
    expect_exit 0 "$R" run --no-gc "$PIPE" --store "$store"
  fi
  expect_exit 0 "$R" run --no-gc "$PIPE" --store "$store"
  all_stages_reused "$PIPE" out.txt
  compare_outputs "$PIPE" "$REF"
}

# --- Swift with the commit coordinator (each case runs in its own subshell) ------------------
have_swift_coordinator() {
  [ -n "${RESPAWN_TEST_S3_ENV_SWIFT:-}" ] && [ -r "$RESPAWN_TEST_S3_ENV_SWIFT" ] &&
    [ -n "${RESPAWN_TEST_PG_ENV:-}" ] && [ -r "$RESPAWN_TEST_PG_ENV" ]
}

# use_swift_coordinator: exports Swift's environment and RESPAWN_COORDINATOR; prints a store URL
# no other case uses.
use_swift_coordinator() {
  unset AWS_PROFILE AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN
  set -a
  # shellcheck disable=SC1090
  . "$RESPAWN_TEST_S3_ENV_SWIFT"
  set +a
  export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
  RESPAWN_COORDINATOR="$(sed -n 's/^RESPAWN_TEST_PG_URL=//p' "$RESPAWN_TEST_PG_ENV")"
  export RESPAWN_COORDINATOR
  SWIFT_STORE="s3://$RESPAWN_TEST_BUCKET/concurrency-$$-$RANDOM$RANDOM"
}

test_simultaneous_swift_coordinator() {
  use_swift_coordinator
  rm -rf "$P/out"
  pair_case "$SWIFT_STORE" 0
}

test_staggered_swift_coordinator_fresh_flag() {
  use_swift_coordinator
  rm -rf "$P/out"
  expect_exit 0 "$R" run --no-gc "$PIPE" --store "$SWIFT_STORE"
  grep -q '^commits through the coordinator' out.txt
  pair_case "$SWIFT_STORE" 0.3 --fresh
}

test_swift_coordinator_servers_missing() {
  echo "CI=true: RESPAWN_TEST_S3_ENV_SWIFT and RESPAWN_TEST_PG_ENV must name readable env files"
  return 1
}

run test_simultaneous_fresh_store
run test_staggered_fresh_store
run test_simultaneous_fresh_flag_on_committed_store
run test_three_runs_with_chaos
if have_swift_coordinator; then
  run test_simultaneous_swift_coordinator
  run test_staggered_swift_coordinator_fresh_flag
elif [ "${CI:-}" = true ]; then
  run test_swift_coordinator_servers_missing
else
  echo "SKIP Swift cases: RESPAWN_TEST_S3_ENV_SWIFT or RESPAWN_TEST_PG_ENV is not set (ctest sets them)"
fi
e2e_finish
