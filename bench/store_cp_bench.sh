#!/usr/bin/env bash
# respawn store cp vs aws s3 cp (Debian awscli) vs rclone: one large object up and down against a
# local Ceph radosgw started here (bluestore on a sparse file), all in the same run.
# Usage: bench/store_cp_bench.sh [SIZE_MIB=1024] [REPEATS=3]
# Prints a table of MiB/s per tool and direction and respawn's ratio to each peer (median runs).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
size_mib="${1:-1024}"
repeats="${2:-3}"
respawn="${RESPAWN_BIN:-$here/build/respawn}"
aws=/usr/bin/aws
[ -x "$respawn" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
for t in "$aws" rclone; do command -v "$t" >/dev/null || { echo "missing $t: scripts/setup.sh --servers" >&2; exit 2; }; done

work="$(mktemp -d /var/tmp/respawn-bench.XXXXXX)"
server="$work/server"
cleanup() { "$here/scripts/s3-server.sh" stop "$server" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
"$here/scripts/s3-server.sh" start radosgw "$server" --bluestore >&2
set -a; . "$server/env"; set +a
bucket="$RESPAWN_TEST_BUCKET"
export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Ceph \
  RCLONE_CONFIG_BENCH_ENDPOINT="$AWS_ENDPOINT_URL" RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
  RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" RCLONE_CONFIG_BENCH_REGION="$AWS_REGION"

src="$work/object.bin"
head -c $((size_mib << 20)) /dev/urandom > "$src"
sum=$(cksum < "$src")

now() { date +%s.%N; }
declare -A samples
run() {  # run NAME DIRECTION CMD...
  local name=$1 dir=$2; shift 2
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || { echo "FAILED: $name $dir: $*" >&2; exit 1; }; t1=$(now)
  samples[$name,$dir]+="$(echo "$t1 - $t0" | bc -l) "
}
check() { [ "$(cksum < "$1")" = "$sum" ] || { echo "MISMATCH after $2" >&2; exit 1; }; rm -f "$1"; }

for r in $(seq 1 "$repeats"); do
  run respawn up "$respawn" store cp "$src" "s3://$bucket/bench/respawn.bin"
  run aws up "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp "$src" "s3://$bucket/bench/aws.bin"
  run rclone up rclone copyto --s3-no-check-bucket "$src" "bench:$bucket/bench/rclone.bin"
  run respawn down "$respawn" store cp "s3://$bucket/bench/respawn.bin" "$work/d.respawn"; check "$work/d.respawn" "respawn down"
  run aws down "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3 cp "s3://$bucket/bench/aws.bin" "$work/d.aws"; check "$work/d.aws" "aws down"
  run rclone down rclone copyto "bench:$bucket/bench/rclone.bin" "$work/d.rclone"; check "$work/d.rclone" "rclone down"
  "$respawn" store rm -r "s3://$bucket/bench/" >/dev/null
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-8s %-5s %10s %10s\n' tool dir seconds MiB/s
declare -A med
for dir in up down; do
  for tool in respawn aws rclone; do
    m=$(echo "${samples[$tool,$dir]}" | median); med[$tool,$dir]=$m
    printf '%-8s %-5s %10.2f %10.1f\n' "$tool" "$dir" "$m" "$(echo "$size_mib / $m" | bc -l)"
  done
done
echo
for dir in up down; do
  for peer in aws rclone; do
    printf 'respawn vs %-6s %-4s: %.2fx (time of %s / time of respawn; >1 means respawn is faster)\n' \
      "$peer" "$dir" "$(echo "${med[$peer,$dir]} / ${med[respawn,$dir]}" | bc -l)" "$peer"
  done
done
