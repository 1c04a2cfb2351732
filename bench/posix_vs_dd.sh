#!/usr/bin/env bash
# The POSIX store's durable write/read vs dd with fsync, same file, same disk, same run.
# Usage: bench/posix_vs_dd.sh [SIZE_MIB=1024] [REPEATS=3]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size_mib="${1:-1024}"
repeats="${2:-3}"
respawn="${RESPAWN_BIN:-$here/build/respawn}"
[ -x "$respawn" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
work="$(mktemp -d /var/tmp/respawn-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
src="$work/object.bin"
head -c $((size_mib << 20)) /dev/urandom > "$src"
now() { date +%s.%N; }
declare -A samples
run() {
  local name=$1; shift
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || { echo "FAILED: $name" >&2; exit 1; }; t1=$(now)
  samples[$name]+="$(echo "$t1 - $t0" | bc -l) "
}
for r in $(seq 1 "$repeats"); do
  run "respawn-write" "$respawn" store cp "$src" "file://$work/store/obj.bin"
  run "dd-write" dd if="$src" of="$work/dd.bin" bs=16M conv=fsync
  run "respawn-read" "$respawn" store cp "file://$work/store/obj.bin" "$work/back.bin"
  run "dd-read" dd if="$work/dd.bin" of="$work/dd.back" bs=16M conv=fsync
  cmp -s "$src" "$work/back.bin" || { echo "MISMATCH" >&2; exit 1; }
  rm -rf "$work/store" "$work/dd.bin" "$work/back.bin" "$work/dd.back"
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A med
printf '%-14s %10s %10s\n' what seconds MiB/s
for k in respawn-write dd-write respawn-read dd-read; do
  med[$k]=$(echo "${samples[$k]}" | median)
  printf '%-14s %10.2f %10.1f\n' "$k" "${med[$k]}" "$(echo "$size_mib / ${med[$k]}" | bc -l)"
done
printf 'write: respawn vs dd conv=fsync: %.2fx (dd time / respawn time)\n' "$(echo "${med[dd-write]} / ${med[respawn-write]}" | bc -l)"
printf 'read:  respawn vs dd conv=fsync: %.2fx\n' "$(echo "${med[dd-read]} / ${med[respawn-read]}" | bc -l)"
