#!/usr/bin/env bash
# Bulk delete: `respawn store rm -r` and `respawn gc` (DeleteObjects, 1,000 keys a request,
# several in flight) vs `aws s3 rm --recursive`, `s3cmd del -r` and `rclone delete`, on a local
# radosgw (and Swift s3api), each deleting the same number of small objects.
#
# Two modes, both by default:
#   direct   the tools talk to the server on 127.0.0.1: the server's per-key CPU sets the pace
#   latency  the tools talk to it through tests/tools/s3_fault_proxy.py adding LATENCY_MS to
#            every request (a nearby region), so requests x round-trip time shows as it does on
#            a real endpoint
# The tools run in rounds (respawn, respawn_gc, aws, s3cmd, rclone, then again ...): PAIRS
# rounds. Each round, every tool deletes its own freshly uploaded copy of the objects (uploads
# go straight to the server and are not timed). Ratios are taken within a round (peer seconds /
# respawn store rm seconds, > 1: respawn faster) and reported as median [min-max] over the
# rounds, like each tool's seconds and CPU.
#
# Usage: bench/delete_bench.sh [COUNTS] [SERVERS]
#   COUNTS   comma-separated object counts (default 10000,100000)
#   SERVERS  comma-separated: radosgw,swift (default radosgw,swift; Swift runs only the
#            smallest count)
# Env: PAIRS (rounds, default 3), MODES (direct,latency), LATENCY_MS (20),
#      TOOLS (space-separated subset of "respawn_gc aws s3cmd rclone"; respawn store rm always
#      runs, it is the reference), DROP_CACHES (1: drop the page cache before every timed delete
#      and fail if impossible; 0: do not), RESPAWN_BIN (default build/respawn).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091  # bench/bench_lib.sh
. "$here/bench/bench_lib.sh"
IFS=, read -r -a counts <<<"${1:-10000,100000}"
IFS=, read -r -a servers <<<"${2:-radosgw,swift}"
IFS=, read -r -a modes <<<"${MODES:-direct,latency}"
pairs="${PAIRS:-3}"
bench_pairs "$pairs"
latency_ms="${LATENCY_MS:-20}"
respawn="${RESPAWN_BIN:-$here/build/respawn}"
aws=/usr/bin/aws
[ -x "$respawn" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
for t in "$aws" rclone s3cmd; do
  command -v "$t" >/dev/null || { echo "missing $t: scripts/setup.sh --servers" >&2; exit 2; }
done
for m in "${modes[@]}"; do
  case "$m" in direct | latency) ;; *) echo "MODES: direct and/or latency, not '$m'" >&2; exit 2 ;; esac
done
drop_caches  # fails now, not after the first upload, when the page cache cannot be dropped

PY="${PYTHON:-/usr/bin/python3}"
work="$(mktemp -d /var/tmp/respawn-delete-bench.XXXXXX)"
started=()
PROXY_PID=""
cleanup() {
  stop_latency_proxy
  for s in "${started[@]}"; do "$here/scripts/s3-server.sh" stop "$s" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT
echo "== delete bench: $(describe_cache_policy); $pairs round(s); load average $(cut -d' ' -f1-3 /proc/loadavg)"

# A local directory of N tiny files, uploaded once per tool and round with respawn.
make_files() {  # N
  local dir="$work/files-$1"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    "$PY" - "$dir" "$1" <<'EOF'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = os.path.join(d, "p%03d" % (i % 100))
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, "obj%07d" % i), "w") as f:
        f.write("x" * 64)
EOF
  fi
  echo "$dir"
}

upload() {  # DIR URL (straight to the server)
  AWS_ENDPOINT_URL="$direct_endpoint" "$respawn" store cp -r -j 64 --verify none "$1" "$2" >/dev/null
}

count_objects() {  # URL
  AWS_ENDPOINT_URL="$direct_endpoint" "$respawn" store ls -r "$1" 2>/dev/null | grep -c obj || true
}

# Runs CMD... after dropping the page cache; prints "wall client_cpu server_cpu proxy_cpu":
# the client's CPU (user+sys of the command and its children), the server's (every daemon in
# $server_pids) and the proxy's over the same interval, to see which side sets the pace.
timed() {  # CMD...
  drop_caches
  "$PY" - "$work/out" "$work/err" "$server_pids" "${PROXY_PID:-0}" "$@" <<'EOF' || { echo "FAILED: $*" >&2; tail -5 "$work/err" >&2; exit 1; }
import os, resource, subprocess, sys, time
out, err, pids_file, proxy_pid, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
tick = os.sysconf("SC_CLK_TCK")
def cpu_of(pid):
    try:
        fields = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / tick  # utime, stime
def server_cpu():
    return sum(cpu_of(line.split()[0]) for line in open(pids_file) if line.strip())
s0, p0, t0 = server_cpu(), cpu_of(proxy_pid), time.monotonic()
with open(out, "w") as o, open(err, "w") as e:
    rc = subprocess.call(cmd, stdout=o, stderr=e)
wall, s1, p1 = time.monotonic() - t0, server_cpu(), cpu_of(proxy_pid)
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.3f %.2f %.2f %.2f" % (wall, ru.ru_utime + ru.ru_stime, s1 - s0, p1 - p0))
sys.exit(rc)
EOF
}

gc_pipeline() {  # DIR: a pipeline whose namespace we fill with orphans (grace 0s)
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<'EOF'
name = "delbench"
[gc]
orphan_grace = "0s"
[sources.one]
sql = "SELECT 1 AS x"
EOF
}

for server in "${servers[@]}"; do
  dir="$work/server-$server"
  "$here/scripts/s3-server.sh" start "$server" "$dir" >&2
  started+=("$dir")
  server_pids="$dir/pids"
  (
    trap stop_latency_proxy EXIT
    set -a
    # shellcheck disable=SC1091  # written by scripts/s3-server.sh
    . "$dir/env"
    set +a
    bucket="$RESPAWN_TEST_BUCKET"
    direct_endpoint="$AWS_ENDPOINT_URL"
    unset AWS_CA_BUNDLE
    for mode in "${modes[@]}"; do
      endpoint="$direct_endpoint"
      if [ "$mode" = latency ]; then
        start_latency_proxy "$dir" "$latency_ms" "$work/proxy-$server"
        endpoint="$PROXY_URL"
      fi
      export AWS_ENDPOINT_URL="$endpoint" RCLONE_CONFIG=/dev/null RCLONE_CONFIG_BENCH_TYPE=s3 \
        RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ENDPOINT="$endpoint" \
        RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
        RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
        RCLONE_CONFIG_BENCH_REGION="$AWS_REGION"
      hostport="${endpoint#http://}"
      cat >"$work/s3cfg" <<EOF
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $hostport
host_bucket = $hostport
use_https = False
signature_v2 = False
bucket_location = $AWS_REGION
EOF
      for n in "${counts[@]}"; do
        if [ "$server" = swift ] && [ "$n" != "${counts[0]}" ]; then continue; fi
        files="$(make_files "$n")"
        declare -A secs=() cli_cpu=() srv_cpu=() proxy_cpu=()
        tools="respawn ${TOOLS:-respawn_gc aws s3cmd rclone}"
        tools="${tools/respawn respawn /respawn }"
        for round in $(seq 1 "$pairs"); do
          for tool in $tools; do
            prefix="bench-$mode-$tool-$n-$round"
            url="s3://$bucket/$prefix/"
            if [ "$tool" = respawn_gc ]; then
              gc_pipeline "$work/gcp"
              url="s3://$bucket/$prefix/pipelines/delbench/data/orphans/"
            fi
            echo "$server $mode round $round: uploading $n objects for $tool" >&2
            upload "$files" "$url"
            have="$(count_objects "$url")"
            [ "$have" -eq "$n" ] || { echo "upload for $tool made $have objects, not $n" >&2; exit 1; }
            case "$tool" in
              respawn) m=$(timed "$respawn" store rm -r "$url") ;;
              respawn_gc) m=$(timed "$respawn" gc "$work/gcp/pipeline.toml" \
                                    --store "s3://$bucket/$prefix") ;;
              aws) m=$(timed "$aws" --endpoint-url "$endpoint" s3 rm --recursive \
                             --only-show-errors "$url") ;;
              s3cmd) m=$(timed s3cmd -c "$work/s3cfg" del -r -q "$url") ;;
              rclone) m=$(timed rclone delete --s3-no-check-bucket "bench:$bucket/$prefix/") ;;
              *) echo "unknown tool $tool (TOOLS: respawn_gc aws s3cmd rclone)" >&2; exit 2 ;;
            esac
            read -r s c v p <<<"$m"
            secs[$tool]+="$s "; cli_cpu[$tool]+="$c "; srv_cpu[$tool]+="$v "; proxy_cpu[$tool]+="$p "
            echo "  $tool: $s s" >&2
            left="$(count_objects "$url")"
            [ "$left" -eq 0 ] || { echo "$tool left $left of $n objects" >&2; exit 1; }
          done
        done
        echo
        if [ "$mode" = latency ]; then
          echo "$server, $mode ($latency_ms ms added to every request by the proxy): delete $n objects (64 B each), $pairs round(s)"
        else
          echo "$server, $mode: delete $n objects (64 B each), $pairs round(s)"
        fi
        echo "median [min-max]; ratio = peer seconds / respawn store rm seconds in the same round (> 1: respawn faster)"
        printf '%-11s %-22s %-10s %-19s %-19s' tool seconds objects/s "client cpu s" "server cpu s"
        if [ "$mode" = latency ]; then printf ' %-17s' "proxy cpu s"; fi
        printf ' %s\n' ratio
        for tool in $tools; do
          read -r med _ _ < <(stats "${secs[$tool]}")
          printf '%-11s %-22s %-10.0f %-19s %-19s' "$tool" "$(fmt_stats "${secs[$tool]}")" \
            "$(awk "BEGIN { print $n / $med }")" "$(fmt_stats "${cli_cpu[$tool]}")" \
            "$(fmt_stats "${srv_cpu[$tool]}")"
          if [ "$mode" = latency ]; then printf ' %-17s' "$(fmt_stats "${proxy_cpu[$tool]}")"; fi
          printf ' %s\n' "$(fmt_stats "$(ratios "${secs[respawn]}" "${secs[$tool]}")")"
        done
      done
      stop_latency_proxy
    done
  )
done
