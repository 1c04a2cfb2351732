#!/usr/bin/env bash
# The POSIX store's durable write and read vs dd, same file, same disk, same run.
# Usage: bench/posix_vs_dd.sh [SIZE_MIB=1024] [REPEATS=3]   (RESPAWN_BIN=path/to/respawn)
#   write: respawn store cp FILE file://DIR/KEY   vs  dd bs=16M conv=fsync
#   copy-out: respawn store cp file://DIR/KEY FILE (durable)  vs  dd bs=16M conv=fsync
#   cat: respawn store cat file://DIR/KEY >/dev/null  vs  dd bs=16M of=/dev/null
# Page cache is dropped before every step (the script fails when it cannot; DROP_CACHES=0 skips
# dropping); ratio = dd time / respawn time (>1: respawn faster).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091  # bench/bench_lib.sh
. "$here/bench/bench_lib.sh"
size_mib="${1:-1024}"
repeats="${2:-3}"
respawn="${RESPAWN_BIN:-$here/build/respawn}"
[ -x "$respawn" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
drop_caches
work="$(mktemp -d /var/tmp/respawn-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
src="$work/object.bin"
head -c $((size_mib << 20)) /dev/urandom > "$src"
declare -A wall
run() {  # run NAME CMD...: appends the wall seconds to the samples
  local name=$1; shift
  drop_caches
  /usr/bin/time -o "$work/time" -f '%e' "$@" >/dev/null 2>"$work/err" ||
    { echo "FAILED: $name: $*" >&2; cat "$work/err" >&2; exit 1; }
  wall[$name]+="$(cat "$work/time") "
}
for r in $(seq 1 "$repeats"); do
  echo "repetition $r of $repeats" >&2
  run respawn-write "$respawn" store cp "$src" "file://$work/store/obj.bin"
  run dd-write dd if="$src" of="$work/dd.bin" bs=16M conv=fsync
  run respawn-copy-out "$respawn" store cp "file://$work/store/obj.bin" "$work/back.bin"
  run dd-copy-out dd if="$work/dd.bin" of="$work/dd.back" bs=16M conv=fsync
  run respawn-cat "$respawn" store cat "file://$work/store/obj.bin"
  run dd-cat dd if="$work/dd.bin" bs=16M
  cmp -s "$src" "$work/back.bin" || { echo "MISMATCH" >&2; exit 1; }
  rm -rf "$work/store" "$work/dd.bin" "$work/back.bin" "$work/dd.back"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "$size_mib MiB, median of $repeats; ratio = dd time / respawn time (>1: respawn faster)"
printf '%-9s %10s %8s %10s %8s %7s\n' step respawn_s MiB/s dd_s MiB/s ratio
for step in write copy-out cat; do
  a=$(echo "${wall[respawn-$step]}" | median); b=$(echo "${wall[dd-$step]}" | median)
  printf '%-9s %10.2f %8.1f %10.2f %8.1f %7.2f\n' "$step" "$a" "$(echo "$size_mib / $a" | bc -l)" \
    "$b" "$(echo "$size_mib / $b" | bc -l)" "$(echo "$b / $a" | bc -l)"
done
