#!/usr/bin/env bash
# Bulk delete: `respawn store rm -r` and `respawn gc` (DeleteObjects, 1,000 keys a request,
# several in flight) vs `aws s3 rm --recursive`, `s3cmd del -r` and `rclone delete`, in one run,
# on a local radosgw (and Swift s3api), each deleting the same number of small objects.
#
# Usage: bench/delete_bench.sh [COUNTS] [SERVERS]
#   COUNTS   comma-separated object counts (default 10000,100000)
#   SERVERS  comma-separated: radosgw,swift (default radosgw,swift; Swift runs only the
#            smallest count, as the issue asks)
# Env: TOOLS (space-separated subset of "respawn respawn_gc aws s3cmd rclone"; respawn is
# always run, it is the reference).
# Prints one table per server and count: seconds, objects/s, client and server CPU seconds, and
# ratio = peer / respawn.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
IFS=, read -r -a counts <<<"${1:-10000,100000}"
IFS=, read -r -a servers <<<"${2:-radosgw,swift}"
respawn="${RESPAWN_BIN:-$here/build/respawn}"
aws=/usr/bin/aws
[ -x "$respawn" ] || { echo "build first: scripts/build.sh" >&2; exit 2; }
for t in "$aws" rclone s3cmd; do
  command -v "$t" >/dev/null || { echo "missing $t: scripts/setup.sh --servers" >&2; exit 2; }
done

PY="${PYTHON:-python3}"
work="$(mktemp -d /var/tmp/respawn-delete-bench.XXXXXX)"
started=()
cleanup() {
  for s in "${started[@]}"; do "$here/scripts/s3-server.sh" stop "$s" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A local directory of N tiny files, uploaded once per tool with respawn (fast, parallel).
make_files() {  # N
  local dir="$work/files-$1"
  if [ ! -d "$dir" ]; then
    mkdir -p "$dir"
    python3 - "$dir" "$1" <<'EOF'
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

upload() {  # DIR URL
  "$respawn" store cp -r -j 64 --verify none "$1" "$2" >/dev/null
}

count_objects() {  # URL
  "$respawn" store ls -r "$1" 2>/dev/null | grep -c obj || true
}

# Runs CMD...; prints "wall_seconds client_cpu_seconds server_cpu_seconds": the client's CPU
# (user+sys of the command and its children) and the server's (user+sys of every daemon in
# $server_pids over the same interval), to see which side sets the pace.
timed() {  # CMD...
  "$PY" - "$work/out" "$work/err" "$server_pids" "$@" <<'EOF' || { echo "FAILED: $*" >&2; tail -5 "$work/err" >&2; exit 1; }
import os, resource, subprocess, sys, time
out, err, pids_file, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
tick = os.sysconf("SC_CLK_TCK")
def server_cpu():
    total = 0.0
    for line in open(pids_file):
        pid = line.split()[0]
        try:
            fields = open("/proc/%s/stat" % pid).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total
s0, t0 = server_cpu(), time.monotonic()
with open(out, "w") as o, open(err, "w") as e:
    rc = subprocess.call(cmd, stdout=o, stderr=e)
wall, s1 = time.monotonic() - t0, server_cpu()
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("%.3f %.2f %.2f" % (wall, ru.ru_utime + ru.ru_stime, s1 - s0))
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
    set -a; . "$dir/env"; set +a
    bucket="$RESPAWN_TEST_BUCKET"
    export RCLONE_CONFIG=/dev/null RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other \
      RCLONE_CONFIG_BENCH_ENDPOINT="$AWS_ENDPOINT_URL" \
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID="$AWS_ACCESS_KEY_ID" \
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY="$AWS_SECRET_ACCESS_KEY" \
      RCLONE_CONFIG_BENCH_REGION="$AWS_REGION"
    unset AWS_CA_BUNDLE
    hostport="${AWS_ENDPOINT_URL#http://}"
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
      declare -A secs=() cli_cpu=() srv_cpu=()
      tools="respawn ${TOOLS:-respawn_gc aws s3cmd rclone}"
      tools="${tools/respawn respawn /respawn }"
      for tool in $tools; do
        prefix="bench-$tool-$n"
        url="s3://$bucket/$prefix/"
        if [ "$tool" = respawn_gc ]; then
          gc_pipeline "$work/gcp"
          url="s3://$bucket/$prefix/pipelines/delbench/data/orphans/"
        fi
        echo "$server: uploading $n objects for $tool" >&2
        upload "$files" "$url"
        have="$(count_objects "$url")"
        [ "$have" -eq "$n" ] || { echo "upload for $tool made $have objects, not $n" >&2; exit 1; }
        case "$tool" in
          respawn) m=$(timed "$respawn" store rm -r "$url") ;;
          respawn_gc) m=$(timed "$respawn" gc "$work/gcp/pipeline.toml" \
                                --store "s3://$bucket/$prefix") ;;
          aws) m=$(timed "$aws" --endpoint-url "$AWS_ENDPOINT_URL" s3 rm --recursive \
                         --only-show-errors "$url") ;;
          s3cmd) m=$(timed s3cmd -c "$work/s3cfg" del -r -q "$url") ;;
          rclone) m=$(timed rclone delete --s3-no-check-bucket "bench:$bucket/$prefix/") ;;
          *) echo "delete_bench: unknown tool $tool" >&2; exit 2 ;;
        esac
        read -r "secs[$tool]" "cli_cpu[$tool]" "srv_cpu[$tool]" <<<"$m"
        left="$(count_objects "$url")"
        [ "$left" -eq 0 ] || { echo "$tool left $left of $n objects" >&2; exit 1; }
      done
      echo
      echo "$server: delete $n objects (64 B each); ratio = peer seconds / respawn store rm seconds"
      echo "(client cpu: user+sys of the tool; server cpu: user+sys of the server's daemons)"
      printf '%-12s %9s %10s %11s %11s %8s\n' tool seconds objects/s "client cpu" "server cpu" ratio
      for tool in $tools; do
        printf '%-12s %9.2f %10.0f %11.2f %11.2f %8.2f\n' "$tool" "${secs[$tool]}" \
          "$(echo "$n / ${secs[$tool]}" | bc -l)" "${cli_cpu[$tool]}" "${srv_cpu[$tool]}" \
          "$(echo "${secs[$tool]} / ${secs[respawn]}" | bc -l)"
      done
    done
  )
done
