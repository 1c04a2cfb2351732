#!/usr/bin/env bash
# respawn-test-servers: swift postgres
#
# The crash matrix (tests/tools/crash_matrix.sh) on Swift, which cannot put-if-absent: every
# commit goes through the PostgreSQL commit coordinator (RESPAWN_COORDINATOR). A sample of each
# phase of a run (the crash points of the commit path, the run's GC, outputs) and SIGKILLs at
# random moments, each time resumed and compared row for row with a clean run. The full matrix,
# and its check that every declared crash point fires, runs on POSIX and radosgw; Swift's PUTs
# are slow (~10 ms each on this machine), so here it is sampled.
#
# Usage: tests/pipeline_crash_swift_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
# Needs RESPAWN_TEST_S3_ENV_SWIFT and RESPAWN_TEST_PG_ENV (ctest sets them); with CI=true a
# missing one fails.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"
. "$E2E_TOOLS/crash_matrix.sh" swift

if [ -z "${RESPAWN_TEST_PG_ENV:-}" ]; then
  [ "${CI:-}" != true ] || { echo "FAIL RESPAWN_TEST_PG_ENV is not set (CI=true)"; exit 1; }
  echo "SKIP: RESPAWN_TEST_PG_ENV is not set (run through ctest)"
  exit 0
fi
e2e_load_env_file "$RESPAWN_TEST_PG_ENV" || exit 1
export RESPAWN_COORDINATOR="$RESPAWN_TEST_PG_URL"
export PGPASSWORD="${RESPAWN_TEST_PG_PASSWORD:-}"

# shellcheck disable=SC2034 # read by crash_matrix.sh's test_crash_points
CRASH_SPECS=(
  ledger:before-data@1 ledger:before-publish@4 ledger:after-publish@3 ledger:after-head@5
  ledger:after-claim@1 runner:after-export@3 runner:after-commit@5 runner:before-output@3
  runner:after-output@4 runner:before-gc@1 gc:before-delete@1
)

test_sigkill_swift() {
  crash_store_setup
  clean_time
  RANDOM=$SEED
  kill_rounds "$CRASH_KIND" 3
}

crash_reference
run test_reference_is_right
run test_crash_points
run test_sigkill_swift
e2e_finish
