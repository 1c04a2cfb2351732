#!/usr/bin/env bash
# respawn-test-servers: swift radosgw postgres
#
# Commit modes end to end with the real binary (README "Commit modes"; src/ledger/ledger.h):
#   - Swift (no put-if-absent) without a coordinator: `respawn run` and `respawn gc` refuse with
#     exit 2 and a message naming both ways out, and write nothing; --single-writer runs;
#   - with the PostgreSQL coordinator (RESPAWN_COORDINATOR or `coordinator = ...` in the file):
#     runs, re-runs reuse everything, gc drops work-tables; the password is never printed;
#   - a coordinator that is unreachable, rejects the password or is not a PostgreSQL URL:
#     exit 2 naming it;
#   - the commit mode is recorded: a run in another mode on the same ledger is refused;
#   - two runs, one paused with SIGSTOP in the middle of a commit (RESPAWN_CRASH_AT=...:stop)
#     while the other runs to the end, then resumed: the resumed one stops, fenced, and a run
#     afterwards reuses every stage with outputs equal to a clean run (Swift, and radosgw made
#     to act without put-if-absent by RESPAWN_CHAOS=put_if_absent=off);
#   - `respawn doctor` reports the commit mode.
# Needs RESPAWN_TEST_S3_ENV_SWIFT, RESPAWN_TEST_S3_ENV_RADOSGW and RESPAWN_TEST_PG_ENV (ctest sets
# them); without them it skips, or fails when CI=true.
#
# Usage: tests/pipeline_coordinator_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

for var in RESPAWN_TEST_S3_ENV_SWIFT RESPAWN_TEST_S3_ENV_RADOSGW RESPAWN_TEST_PG_ENV; do
  if [ -z "${!var:-}" ]; then
    if [ "${CI:-}" = true ]; then
      echo "FAIL $var is not set (CI=true: a missing server fails)"
      exit 1
    fi
    echo "SKIP: $var is not set (run through ctest)"
    exit 0
  fi
  if [ ! -r "${!var}" ]; then
    echo "FAIL $var names ${!var}, which cannot be read"
    exit 1
  fi
done
unset AWS_PROFILE AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN RESPAWN_COORDINATOR PGPASSWORD
set -a
# shellcheck disable=SC1090
. "$RESPAWN_TEST_PG_ENV"
set +a
PG_URL="$RESPAWN_TEST_PG_URL"
PG_PASSWORD="$RESPAWN_TEST_PG_PASSWORD"
PG_SHOWN="postgresql://respawn@127.0.0.1:$RESPAWN_TEST_PG_PORT/postgres"

P="$WORK/p"
mkdir -p "$P"
write_pipeline() {  # FILE [extra top-level line]
  cat >"$1" <<EOF
name = "coordinated"
${2:-}

# gc drops work-tables as soon as a run finished (what these tests check)
[gc]
work_tables_ttl = "0"

[sources.events]
sql = "SELECT range AS id, range % 37 AS k, (range * 7919) % 1000 AS v FROM range(0, 20000)"

[stages.valid]
sql = "SELECT id, k, v FROM events WHERE v % 7 <> 3"

[stages.by_k]
sql = "SELECT k, count(*) AS n, sum(v) AS total FROM valid GROUP BY k ORDER BY k"

[stages.top]
sql = "SELECT k, total FROM by_k ORDER BY total DESC, k LIMIT 5"

[stages.audit]
sql = "SELECT count(*) AS n FROM valid"

[outputs.by_k_out]
from = "by_k"
path = "out/by_k.parquet"

[outputs.top_out]
from = "top"
path = "out/top.csv"

[outputs.audit_out]
from = "audit"
path = "out/audit.csv"
EOF
}
write_pipeline "$P/pipeline.toml"
PIPE="$P/pipeline.toml"
REF="$WORK/ref"
expect_exit 0 "$R" run "$PIPE" --store "$WORK/ref-store"
snapshot_outputs "$PIPE" "$REF"
rm -rf "$P/out"

# use_s3 SERVER: the environment of that server in this (sub)shell.
use_s3() {
  local file
  case "$1" in
    swift) file="$RESPAWN_TEST_S3_ENV_SWIFT" ;;
    radosgw) file="$RESPAWN_TEST_S3_ENV_RADOSGW" ;;
    *) echo "use_s3: unknown server $1"; return 1 ;;
  esac
  set -a
  # shellcheck disable=SC1090
  . "$file"
  set +a
  export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
}

# new_store: an S3 store URL no other case uses (in the current server's bucket).
new_store() { echo "s3://$RESPAWN_TEST_BUCKET/coord-$$-$RANDOM$RANDOM"; }

# no_secret FILE...: the coordinator password appears in none of them.
no_secret() {
  if grep -F -- "$PG_PASSWORD" "$@"; then
    echo "the coordinator password was printed"
    return 1
  fi
}

# store_is_empty URL: nothing under it.
store_is_empty() {
  "$R" store ls -r "$1" >ls.txt 2>&1 || true
  if grep -q 'pipelines/' ls.txt; then
    echo "$1 is not empty:"
    cat ls.txt
    return 1
  fi
}

test_swift_without_coordinator_is_refused() {
  use_s3 swift
  local store
  store="$(new_store)"
  rm -rf "$P/out"
  expect_exit 2 "$R" run "$PIPE" --store "$store"
  grep -q 'cannot put-if-absent' err.txt
  grep -q 'coordinator = ' err.txt
  grep -q 'RESPAWN_COORDINATOR' err.txt
  grep -q -- '--single-writer' err.txt
  [ "$(grep -c '^respawn: ' err.txt)" -eq 1 ]
  store_is_empty "$store"
  [ ! -e "$P/out" ]
  expect_exit 2 "$R" gc "$PIPE" --store "$store"
  grep -q -- '--single-writer' err.txt
  # Reading needs no commit mode.
  expect_exit 0 "$R" gc --dry-run "$PIPE" --store "$store"
  expect_exit 0 "$R" status "$PIPE" --store "$store"
}

test_swift_single_writer_runs_and_the_mode_is_recorded() {
  use_s3 swift
  local store
  store="$(new_store)"
  rm -rf "$P/out"
  expect_exit 0 "$R" run --no-gc --single-writer "$PIPE" --store "$store"
  grep -q 'single-writer mode' out.txt
  compare_outputs "$PIPE" "$REF"
  expect_exit 0 "$R" run --no-gc --single-writer "$PIPE" --store "$store"
  all_stages_reused "$PIPE" out.txt
  # gc in single-writer mode cannot join the last run's epoch: it keeps the work-tables.
  expect_exit 0 "$R" gc --single-writer "$PIPE" --store "$store"
  grep -q '^work-tables kept: single-writer mode' out.txt
  # The ledger commits in single-writer mode: a run through a coordinator refuses (exit 1, one
  # line naming both modes) and writes nothing.
  expect_exit 1 env RESPAWN_COORDINATOR="$PG_URL" "$R" run "$PIPE" --store "$store"
  grep -q '"single-writer"' err.txt
  grep -q '"coordinator"' err.txt
  no_secret out.txt err.txt
  expect_exit 0 "$R" run --no-gc --single-writer "$PIPE" --store "$store"
  all_stages_reused "$PIPE" out.txt
}

test_swift_with_coordinator() {
  use_s3 swift
  local store
  store="$(new_store)"
  rm -rf "$P/out"
  expect_exit 0 env RESPAWN_COORDINATOR="$PG_URL" "$R" run --no-gc "$PIPE" --store "$store"
  grep -qF "commits through the coordinator $PG_SHOWN" out.txt
  no_secret out.txt err.txt
  compare_outputs "$PIPE" "$REF"
  expect_exit 0 env RESPAWN_COORDINATOR="$PG_URL" "$R" run --no-gc "$PIPE" --store "$store"
  all_stages_reused "$PIPE" out.txt
  # `coordinator = ...` in the file, the password from PGPASSWORD (as libpq reads it).
  write_pipeline "$P/from-file.toml" "coordinator = \"$PG_SHOWN\""
  # (The same pipeline in another file: --adopt makes that file the owner of the name.)
  expect_exit 0 env PGPASSWORD="$PG_PASSWORD" "$R" run --no-gc --adopt "$P/from-file.toml" --store "$store"
  all_stages_reused "$P/from-file.toml" out.txt
  no_secret out.txt err.txt
  # gc commits (joins the last run's epoch to drop work-tables), through the coordinator.
  expect_exit 0 env RESPAWN_COORDINATOR="$PG_URL" "$R" run --no-gc --adopt "$PIPE" --store "$store" --fresh
  expect_exit 0 env RESPAWN_COORDINATOR="$PG_URL" "$R" gc "$PIPE" --store "$store"
  grep -q '^dropped [0-9]* work-tables from the ledger:.* stage/valid' out.txt
  # Nothing on stderr: no server notices, no warnings.
  if [ -s err.txt ]; then
    cat err.txt
    return 1
  fi
  expect_exit 0 env RESPAWN_COORDINATOR="$PG_URL" "$R" status "$PIPE" --store "$store"
  no_secret out.txt err.txt
  # Without the coordinator the ledger refuses to commit: it was written through one.
  expect_exit 1 "$R" run --single-writer "$PIPE" --store "$store"
  grep -q 'committed in mode "coordinator"' err.txt
  expect_exit 0 "$R" ls "$PIPE" --store "$store"
}

test_coordinator_configuration_errors() {
  use_s3 swift
  local store bad
  store="$(new_store)"
  bad="postgresql://respawn:wrong-$PG_PASSWORD@127.0.0.1:$RESPAWN_TEST_PG_PORT/postgres"
  expect_exit 2 env RESPAWN_COORDINATOR="$bad" "$R" run "$PIPE" --store "$store"
  grep -q 'rejected the credentials' err.txt
  grep -qF "$PG_SHOWN" err.txt
  no_secret out.txt err.txt
  expect_exit 2 env RESPAWN_COORDINATOR="postgresql://respawn@127.0.0.1:1/postgres" \
    "$R" run "$PIPE" --store "$store"
  grep -q 'cannot use the commit coordinator postgresql://respawn@127.0.0.1:1/postgres' err.txt
  grep -q 'RESPAWN_COORDINATOR' err.txt
  expect_exit 2 env RESPAWN_COORDINATOR="mysql://x@127.0.0.1/db" "$R" run "$PIPE" --store "$store"
  grep -q 'not a PostgreSQL URL' err.txt
  write_pipeline "$P/bad.toml" 'coordinator = "redis://127.0.0.1"'
  expect_exit 2 "$R" run "$P/bad.toml" --store "$store"
  grep -q 'bad.toml:2: .*not a PostgreSQL URL' err.txt
  store_is_empty "$store"
}

# paused_pair SERVER POINT [env...]: run A is stopped at POINT (SIGSTOP) while committing; run B
# runs to the end; A is resumed (SIGCONT) and must stop, fenced; a third run reuses everything.
paused_pair() {
  local server="$1" point="$2"
  shift 2
  use_s3 "$server"
  local store pid_a state i rc_a
  store="$(new_store)"
  rm -rf "$P/out"
  env RESPAWN_COORDINATOR="$PG_URL" RESPAWN_CRASH_AT="$point:stop" "$@" \
    "$R" run --no-gc "$PIPE" --store "$store" >a.log 2>&1 &
  pid_a=$!
  for ((i = 0; ; i++)); do
    state="$(awk '{print $3}' "/proc/$pid_a/stat" 2>/dev/null || echo gone)"
    [ "$state" != T ] || break
    if [ "$state" = gone ] || [ "$i" -gt 1200 ]; then
      echo "run A did not stop at $point (state $state):"
      cat a.log
      return 1
    fi
    sleep 0.05
  done
  expect_exit 0 env RESPAWN_COORDINATOR="$PG_URL" "$@" "$R" run --no-gc "$PIPE" --store "$store"
  cp out.txt b.log
  kill -CONT "$pid_a"
  set +e
  wait "$pid_a"
  rc_a=$?
  set -e
  echo "run A: exit $rc_a"
  cat a.log
  if [ "$rc_a" -ne 1 ]; then
    echo "the resumed run should stop with exit 1 (fenced), not $rc_a"
    return 1
  fi
  grep -q '^respawn: another run of pipeline "coordinated" took over' a.log
  grep -q 'fenced' a.log
  no_secret a.log b.log
  compare_outputs "$PIPE" "$REF"
  expect_exit 0 env RESPAWN_COORDINATOR="$PG_URL" "$@" "$R" run --no-gc "$PIPE" --store "$store"
  all_stages_reused "$PIPE" out.txt
  compare_outputs "$PIPE" "$REF"
  expect_exit 0 env RESPAWN_COORDINATOR="$PG_URL" "$@" "$R" status "$PIPE" --store "$store"
}

test_paused_before_insert_swift() { paused_pair swift ledger:before-publish@3; }
test_paused_after_insert_swift() { paused_pair swift ledger:after-publish@3; }
test_paused_before_insert_radosgw_forced() {
  paused_pair radosgw ledger:before-publish@3 RESPAWN_CHAOS=put_if_absent=off
}

test_radosgw_forced_without_coordinator_is_refused() {
  use_s3 radosgw
  local store
  store="$(new_store)"
  expect_exit 2 env RESPAWN_CHAOS=put_if_absent=off "$R" run "$PIPE" --store "$store"
  grep -q 'cannot put-if-absent' err.txt
  # Its own put-if-absent: a coordinator is not needed (nor used).
  expect_exit 0 env RESPAWN_COORDINATOR="$PG_URL" "$R" run "$PIPE" --store "$store"
  if grep -q 'commits through the coordinator' out.txt; then
    echo "a store with put-if-absent committed through the coordinator"
    return 1
  fi
}

test_doctor_reports_the_commit_mode() {
  use_s3 swift
  local store
  store="$(new_store)"
  expect_exit 0 "$R" doctor --throughput-mib 0 "$store"
  grep -q 'commit mode' out.txt
  grep -q 'RESPAWN_COORDINATOR' out.txt
  expect_exit 0 env RESPAWN_COORDINATOR="$PG_URL" "$R" doctor --throughput-mib 0 "$store"
  grep -qF "commit mode: coordinator $PG_SHOWN" out.txt
  no_secret out.txt err.txt
  use_s3 radosgw
  store="$(new_store)"
  expect_exit 0 "$R" doctor --throughput-mib 0 "$store"
  grep -q 'commit mode: put-if-absent' out.txt
}

run test_swift_without_coordinator_is_refused
run test_swift_single_writer_runs_and_the_mode_is_recorded
run test_swift_with_coordinator
run test_coordinator_configuration_errors
run test_paused_before_insert_swift
run test_paused_after_insert_swift
run test_paused_before_insert_radosgw_forced
run test_radosgw_forced_without_coordinator_is_refused
run test_doctor_reports_the_commit_mode
e2e_finish
