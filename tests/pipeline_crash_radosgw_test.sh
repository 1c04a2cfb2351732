#!/usr/bin/env bash
# respawn-test-servers: radosgw
#
# The crash matrix (tests/tools/crash_matrix.sh) on radosgw (s3://$RESPAWN_TEST_BUCKET/<unique
# prefix>, 5 MB multipart parts): `respawn run` killed at every crash point the binary declares,
# in the middle of multipart uploads, under the writer lease and at random moments, with GC on,
# each time resumed and compared row for row with a clean run.
#
# Usage: tests/pipeline_crash_radosgw_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
# Needs RESPAWN_TEST_S3_ENV_RADOSGW (ctest sets it); without it every case skips and the suite
# fails (it ran nothing), with CI=true each case fails.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"
. "$E2E_TOOLS/crash_matrix.sh" radosgw
crash_matrix_main
