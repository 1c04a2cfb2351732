#!/usr/bin/env bash
# The demo on the embedded default (a local store under .respawn/demo, no server needed):
# installs what it needs, builds, then shows a store round trip and `respawn doctor`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
scripts/setup.sh
scripts/build.sh >/dev/null
respawn="${RESPAWN_BUILD_DIR:-$here/build}/respawn"
store="$here/.respawn/demo"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== 1. a 64 MiB file and a directory of small files"
head -c $((64 << 20)) /dev/urandom > "$work/big.bin"
mkdir -p "$work/tables/day=2026-11-01" "$work/tables/day=2026-11-02"
for i in $(seq 1 50); do echo "row $i" > "$work/tables/day=2026-11-0$((i % 2 + 1))/part $i.csv"; done

echo "== 2. copy them into the local store $store (durable: fsync + atomic publish)"
"$respawn" store cp "$work/big.bin" "file://$store/big.bin"
"$respawn" store cp -r "$work/tables" "file://$store/tables/"
"$respawn" store ls "file://$store/"
"$respawn" store ls -r "file://$store/tables/" | head -5

echo "== 3. read back and compare"
"$respawn" store cp "file://$store/big.bin" "$work/big.back"
cmp "$work/big.bin" "$work/big.back" && echo "big.bin: byte-identical after the round trip"
"$respawn" store stat "file://$store/big.bin"

echo "== 4. chaos: the same copy with 20% injected transient errors still completes"
"$respawn" --chaos "error_rate=0.2,seed=1" store cp -r "$work/tables" "file://$store/chaos/"
"$respawn" store ls -r "file://$store/chaos/" | wc -l | xargs echo "objects copied under chaos:"

echo "== 5. respawn doctor: what this store guarantees"
"$respawn" doctor "file://$store"
