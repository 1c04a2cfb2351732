#!/usr/bin/env bash
# respawn store cp vs aws s3 cp (Debian awscli) vs rclone: one large object up and down against a
# local Ceph radosgw started here, all in the same run, tools interleaved in every repetition.
# Usage: bench/store_cp_bench.sh [SIZE_MIB=1024] [REPEATS=3]
#   BACKEND=bluestore (default; objects on disk in a sparse file) or memstore (objects in RAM)
#   RESPAWN_BIN=path/to/respawn (default build/respawn)
# Page cache is dropped before every transfer. Downloads are checked with cksum. Prints medians of
# wall time, client CPU (user+sys) and respawn's ratio to each peer.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size_mib="${1:-1024}"
repeats="${2:-3}"
backend="${BACKEND:-bluestore}"
respawn="${RESPAWN_BIN:-$here/build/respawn}"
aws=/usr/bin/aws
[ -x "$respawn" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
for t in "$aws" rclone /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t: scripts/setup.sh --servers" >&2; exit 2; }
done

work="$(mktemp -d /var/tmp/respawn-bench.XXXXXX)"
server="$work/server"
cleanup() { "$here/scripts/s3-server.sh" stop "$server" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
case "$backend" in
  bluestore) "$here/scripts/s3-server.sh" start radosgw "$server" --bluestore >&2 ;;
  memstore) "$here/scripts/s3-server.sh" start radosgw "$server" --size $(((size_mib * 4 + 1024) << 20)) >&2 ;;
  *) echo "BACKEND must be bluestore or memstore" >&2; exit 2 ;;
esac
set -a; . "$server/env"; set +a
bucket="$RESPAWN_TEST_BUCKET"
export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Ceph \
  RCLONE_CONFIG_BENCH_ENDPOINT="$AWS_ENDPOINT_URL" RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
  RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" RCLONE_CONFIG_BENCH_REGION="$AWS_REGION"
unset AWS_CA_BUNDLE  # rclone refuses to start with it set; the endpoint is plain http anyway

src="$work/object.bin"
head -c $((size_mib << 20)) /dev/urandom > "$src"
sum=$(cksum < "$src")

declare -A wall cpu
run() {  # run TOOL DIRECTION CMD...: appends wall seconds and client CPU seconds to the samples
  local key=$1,$2; shift 2
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  /usr/bin/time -o "$work/time" -f '%e %U %S' "$@" >/dev/null 2>"$work/err" ||
    { echo "FAILED: $key: $*" >&2; cat "$work/err" >&2; exit 1; }
  local e u s; read -r e u s < "$work/time"
  wall[$key]+="$e "; cpu[$key]+="$(echo "$u + $s" | bc -l) "
}
check() { [ "$(cksum < "$1")" = "$sum" ] || { echo "MISMATCH after $2 download" >&2; exit 1; }; rm -f "$1"; }

for r in $(seq 1 "$repeats"); do
  echo "repetition $r of $repeats" >&2
  run respawn up "$respawn" store cp "$src" "s3://$bucket/bench/respawn.bin"
  run aws up "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp "$src" "s3://$bucket/bench/aws.bin"
  run rclone up rclone copyto --s3-no-check-bucket "$src" "bench:$bucket/bench/rclone.bin"
  run respawn down "$respawn" store cp "s3://$bucket/bench/respawn.bin" "$work/d"; check "$work/d" respawn
  run aws down "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp "s3://$bucket/bench/aws.bin" "$work/d"; check "$work/d" aws
  run rclone down rclone copyto "bench:$bucket/bench/rclone.bin" "$work/d"; check "$work/d" rclone
  "$respawn" store rm -r "s3://$bucket/bench/" >/dev/null
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "radosgw ($backend), $size_mib MiB object, median of $repeats; ratio = peer time / respawn time (>1: respawn faster)"
printf '%-8s %-5s %9s %8s %9s %8s  %s\n' tool dir seconds MiB/s cpu_s ratio all_wall_seconds
declare -A med
for dir in up down; do
  for tool in respawn aws rclone; do
    med[$tool,$dir]=$(echo "${wall[$tool,$dir]}" | median)
    printf '%-8s %-5s %9.2f %8.1f %9.2f %8.2f  %s\n' "$tool" "$dir" "${med[$tool,$dir]}" \
      "$(echo "$size_mib / ${med[$tool,$dir]}" | bc -l)" "$(echo "${cpu[$tool,$dir]}" | median)" \
      "$(echo "${med[$tool,$dir]} / ${med[respawn,$dir]}" | bc -l)" "${wall[$tool,$dir]}"
  done
done
