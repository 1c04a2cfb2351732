#!/usr/bin/env bash
# respawn store cp vs aws s3 cp (Debian awscli) vs rclone: one large object up and down against a
# local Ceph radosgw started here.
#
# Two modes, both by default:
#   direct   the tools talk to radosgw on 127.0.0.1
#   latency  through tests/tools/s3_fault_proxy.py adding LATENCY_MS to every request (a nearby
#            region), so the number of requests and how many are in flight show
# The tools alternate inside every pair (respawn up, aws up, rclone up, respawn down, aws down,
# rclone down; PAIRS times). Ratios are taken within a pair (peer seconds / respawn seconds, > 1:
# respawn faster) and reported as median [min-max] over the pairs, like each tool's wall time and
# client CPU. Downloads are checked with cksum.
#
# Usage: bench/store_cp_bench.sh [SIZE_MIB=1024] [PAIRS=3]
# Env: BACKEND=bluestore (default; objects on disk in a sparse file) or memstore (objects in RAM),
#      MODES (direct,latency), LATENCY_MS (20), DROP_CACHES (1: drop the page cache before every
#      transfer and fail if impossible; 0: do not), RESPAWN_BIN (default build/respawn).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091  # bench/bench_lib.sh
. "$here/bench/bench_lib.sh"
size_mib="${1:-1024}"
pairs="${2:-3}"
bench_pairs "$pairs"
[[ "$size_mib" =~ ^[1-9][0-9]*$ ]] || { echo "SIZE_MIB must be a positive number" >&2; exit 2; }
backend="${BACKEND:-bluestore}"
IFS=, read -r -a modes <<<"${MODES:-direct,latency}"
latency_ms="${LATENCY_MS:-20}"
respawn="${RESPAWN_BIN:-$here/build/respawn}"
aws=/usr/bin/aws
[ -x "$respawn" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
for t in "$aws" rclone /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "missing $t: scripts/setup.sh --servers" >&2; exit 2; }
done
for m in "${modes[@]}"; do
  case "$m" in direct | latency) ;; *) echo "MODES: direct and/or latency, not '$m'" >&2; exit 2 ;; esac
done
drop_caches  # fails now, not after the server started, when the page cache cannot be dropped

work="$(mktemp -d /var/tmp/respawn-bench.XXXXXX)"
server="$work/server"
PROXY_PID=""
cleanup() {
  stop_latency_proxy
  "$here/scripts/s3-server.sh" stop "$server" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
case "$backend" in
  bluestore) "$here/scripts/s3-server.sh" start radosgw "$server" --bluestore >&2 ;;
  memstore) "$here/scripts/s3-server.sh" start radosgw "$server" --size $(((size_mib * 4 + 1024) << 20)) >&2 ;;
  *) echo "BACKEND must be bluestore or memstore" >&2; exit 2 ;;
esac
set -a
# shellcheck disable=SC1091  # written by scripts/s3-server.sh
. "$server/env"
set +a
bucket="$RESPAWN_TEST_BUCKET"
direct_endpoint="$AWS_ENDPOINT_URL"
unset AWS_CA_BUNDLE  # rclone refuses to start with it set; the endpoint is plain http anyway

src="$work/object.bin"
head -c $((size_mib << 20)) /dev/urandom >"$src"
sum=$(cksum <"$src")

declare -A wall cpu
run() {  # run MODE TOOL DIRECTION CMD...: appends wall seconds and client CPU seconds
  local key=$1,$2,$3
  shift 3
  drop_caches
  /usr/bin/time -o "$work/time" -f '%e %U %S' "$@" >/dev/null 2>"$work/err" ||
    { echo "FAILED: $key: $*" >&2; cat "$work/err" >&2; exit 1; }
  local e u s
  read -r e u s <"$work/time"
  wall[$key]+="$e "
  cpu[$key]+="$(echo "$u + $s" | bc -l) "
}
check() { [ "$(cksum <"$1")" = "$sum" ] || { echo "MISMATCH after $2 download" >&2; exit 1; }; rm -f "$1"; }

echo "== store cp bench: $size_mib MiB, radosgw ($backend), $pairs pair(s); $(describe_cache_policy)"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for mode in "${modes[@]}"; do
  endpoint="$direct_endpoint"
  if [ "$mode" = latency ]; then
    start_latency_proxy "$server" "$latency_ms" "$work/proxy"
    endpoint="$PROXY_URL"
  fi
  export AWS_ENDPOINT_URL="$endpoint" RCLONE_CONFIG=/dev/null RCLONE_CONFIG_BENCH_TYPE=s3 \
    RCLONE_CONFIG_BENCH_PROVIDER=Ceph RCLONE_CONFIG_BENCH_ENDPOINT="$endpoint" \
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
    RCLONE_CONFIG_BENCH_REGION="$AWS_REGION"
  for r in $(seq 1 "$pairs"); do
    echo "$mode: pair $r of $pairs" >&2
    run "$mode" respawn up "$respawn" store cp "$src" "s3://$bucket/bench/respawn.bin"
    run "$mode" aws up "$aws" --endpoint-url "$endpoint" s3 cp "$src" "s3://$bucket/bench/aws.bin"
    run "$mode" rclone up rclone copyto --s3-no-check-bucket "$src" "bench:$bucket/bench/rclone.bin"
    run "$mode" respawn down "$respawn" store cp "s3://$bucket/bench/respawn.bin" "$work/d"
    check "$work/d" respawn
    run "$mode" aws down "$aws" --endpoint-url "$endpoint" s3 cp "s3://$bucket/bench/aws.bin" "$work/d"
    check "$work/d" aws
    run "$mode" rclone down rclone copyto "bench:$bucket/bench/rclone.bin" "$work/d"
    check "$work/d" rclone
    "$respawn" store rm -r "s3://$bucket/bench/" >/dev/null
  done
  stop_latency_proxy
done

for mode in "${modes[@]}"; do
  echo
  if [ "$mode" = latency ]; then
    echo "latency: through the proxy, $latency_ms ms added to every request"
  else
    echo "direct: straight to radosgw on 127.0.0.1"
  fi
  echo "$size_mib MiB object, $pairs pair(s), median [min-max]; ratio = peer time / respawn time in the same pair (> 1: respawn faster)"
  printf '%-8s %-5s %-22s %-8s %-22s %-22s %s\n' tool dir seconds MiB/s "client cpu s" ratio "all wall seconds"
  for dir in up down; do
    for tool in respawn aws rclone; do
      read -r med _ _ < <(stats "${wall[$mode,$tool,$dir]}")
      printf '%-8s %-5s %-22s %-8.1f %-22s %-22s %s\n' "$tool" "$dir" \
        "$(fmt_stats "${wall[$mode,$tool,$dir]}")" "$(echo "$size_mib / $med" | bc -l)" \
        "$(fmt_stats "${cpu[$mode,$tool,$dir]}")" \
        "$(fmt_stats "$(ratios "${wall[$mode,respawn,$dir]}" "${wall[$mode,$tool,$dir]}")")" \
        "${wall[$mode,$tool,$dir]}"
    done
  done
done
