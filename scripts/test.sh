#!/usr/bin/env bash
# The whole test suite, from a clean clone on Debian 12 as root: installs what it needs (Debian
# packages, DuckDB from the npm registry, the S3-compatible test servers), builds, and runs ctest.
# Tests that need a server start it on 127.0.0.1 themselves and stop it by pid (ctest fixtures).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
start=$(date +%s)
scripts/setup.sh --servers
scripts/build.sh
build="${RESPAWN_BUILD_DIR:-$here/build}"
echo "test: built in $(( $(date +%s) - start )) s; running ctest" >&2
ctest --test-dir "$build" --output-on-failure -j2 --timeout 1200 "$@"
