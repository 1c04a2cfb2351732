#!/usr/bin/env bash
# The crash matrix (tests/tools/crash_matrix.sh) on a local POSIX store: `respawn run` killed at
# every crash point the binary declares (but the S3 multipart ones), under the writer lease and
# at random moments, with GC on, each time resumed and compared row for row with a clean run.
#
# Usage: tests/pipeline_crash_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
# RESPAWN_E2E_ONLY=REGEX selects test functions; RESPAWN_CRASH_SEED another random schedule.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"
. "$E2E_TOOLS/crash_matrix.sh" local
crash_matrix_main
