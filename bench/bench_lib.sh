# shellcheck shell=bash
# Shared helpers of the benchmark scripts in bench/ (sourced, not run).
#
#   bench_pairs N            checks N (pairs of alternating runs) is a number >= 1; warns under 3
#   drop_caches              sync, then drops the page cache, or exits 1 saying why it cannot
#                            (DROP_CACHES=0 turns dropping off: the scripts then say so)
#   describe_cache_policy    one line for the header of a report
#   stats "v1 v2 ..."        "median min max" of the numbers
#   ratios "a1 a2 .." "b1 b2 .."  the per-pair ratios b_i / a_i (same count of samples)
#   fmt_stats "v1 v2 ..." [FORMAT]  "median [min-max]" with FORMAT (default %.2f)
#   start_latency_proxy SERVER_DIR MS OUT_DIR  starts tests/tools/s3_fault_proxy.py in front of
#                            the server whose env file is SERVER_DIR/env, adding MS ms to every
#                            request; sets PROXY_URL and PROXY_PID (stop it with stop_latency_proxy)

# shellcheck disable=SC2034  # PROXY_URL and PROXY_PID are for the scripts that source this
BENCH_HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_DROP_FILE="${DROP_CACHES_FILE:-/proc/sys/vm/drop_caches}"  # overridable to test the check

bench_pairs() {
  if ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
    echo "$(basename "$0"): PAIRS must be a positive number, not '$1'" >&2
    exit 2
  fi
  if [ "$1" -lt 3 ]; then
    echo "$(basename "$0"): warning: $1 pair(s); use at least 3 for figures worth reporting" >&2
  fi
}

drop_caches() {
  [ "${DROP_CACHES:-1}" = 1 ] || return 0
  sync
  if ! { echo 3 >"$BENCH_DROP_FILE"; } 2>/dev/null; then
    echo "$(basename "$0"): cannot drop the page cache (writing 3 to $BENCH_DROP_FILE failed:" \
      "run as root on a host that allows it), so the timings would not be comparable." \
      "Set DROP_CACHES=0 to run with a warm cache and say so with the figures." >&2
    exit 1
  fi
}

describe_cache_policy() {
  if [ "${DROP_CACHES:-1}" = 1 ]; then
    echo "page cache dropped (sync; echo 3 > $BENCH_DROP_FILE) before every timed step"
  else
    echo "page cache NOT dropped (DROP_CACHES=0): warm-cache figures"
  fi
}

stats() {
  echo "$1" | tr ' ' '\n' | grep -v '^$' | sort -g |
    awk '{a[NR] = $1} END {
      if (NR == 0) { print "nan nan nan"; exit }
      m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
      printf "%.6f %.6f %.6f\n", m, a[1], a[NR] }'
}

ratios() {
  paste <(echo "$1" | tr ' ' '\n' | grep -v '^$') <(echo "$2" | tr ' ' '\n' | grep -v '^$') |
    awk '{ printf "%.6f ", ($1 > 0 ? $2 / $1 : 0) }'
}

fmt_stats() {
  local f="${2:-%.2f}" m lo hi
  read -r m lo hi < <(stats "$1")
  # shellcheck disable=SC2059
  printf "$f [$f-$f]" "$m" "$lo" "$hi"
}

start_latency_proxy() {
  local server_dir="$1" ms="$2" out="$3" upstream py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  upstream="$(sed -n 's/^AWS_ENDPOINT_URL=//p' "$server_dir/env")"
  mkdir -p "$out"
  rm -f "$out/proxy.port"
  "$py" "$BENCH_HERE/tests/tools/s3_fault_proxy.py" --upstream "$upstream" \
    --latency-ms "$ms" --port-file "$out/proxy.port" --exit-with-parent >"$out/proxy.out" 2>&1 &
  PROXY_PID=$!
  for _ in $(seq 1 500); do
    [ -s "$out/proxy.port" ] && break
    kill -0 "$PROXY_PID" 2>/dev/null || { cat "$out/proxy.out" >&2; exit 1; }
    sleep 0.02
  done
  [ -s "$out/proxy.port" ] || { echo "the latency proxy did not start" >&2; exit 1; }
  PROXY_URL="http://127.0.0.1:$(cat "$out/proxy.port")"
}

stop_latency_proxy() {
  if [ -n "${PROXY_PID:-}" ]; then
    kill "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
    PROXY_PID=""
  fi
}
