#!/usr/bin/env bash
# The demo pipeline (examples/demo/pipeline.toml) under respawn vs the same SQL on plain DuckDB
# without checkpoints (bench/demo_plain.sql), run in alternating pairs on this machine:
#   (a) plain DuckDB: bench/plain_duckdb on demo_plain.sql
#   (b) respawn run --fresh, checkpoints on a local store
#   (c) respawn run --fresh, checkpoints on S3 (a throwaway Ceph radosgw on 127.0.0.1)
#   (d) respawn run --fresh killed with SIGKILL at KILL_AT of (b)'s median time, then
#       `respawn run` resumes; paired with a clean local run taken right before it
#   (e) with BASELINE=path/to/an/older/respawn: that binary's run --fresh on a local store, in
#       the same pair as (b) (A B E A B E ...): a refactor's "no slowdown" is (b) / (e)
# Pair i runs a_i b_i c_i one after the other (A B C A B C ...), so slow drifts of the machine
# hit every tool alike; each ratio is taken within its pair (b_i / a_i, c_i / a_i, resume_i /
# clean_i) and reported as median [min-max] over the pairs, like each tool's wall and CPU time.
# Every respawn run starts on an empty store; every run's outputs are checked against the first
# local run's, and that one against plain DuckDB's.
#
# Usage: bench/pipeline_bench.sh [PAIRS=3]
# Env: THREADS (DuckDB threads, default nproc), KILL_AT (fraction of the clean time, 0.9),
#      ROWS (orders generated, default 20000000 as in the demo; smaller for a quick check),
#      SKIP_S3=1 (skip (c)), SKIP_RESUME=1 (skip (d)), BASELINE (see (e)),
#      DROP_CACHES (1, the default: drop the page cache before every timed run and fail if that
#      is impossible; 0: do not), RESPAWN_BUILD_DIR (default build/), KEEP_WORK=1 (keep the
#      work dir).
# Needs a build (scripts/build.sh), root for dropping the page cache, and for (c) the Ceph
# packages (scripts/setup.sh --servers).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck disable=SC1091  # bench/bench_lib.sh
. "$here/bench/bench_lib.sh"
pairs="${1:-3}"
bench_pairs "$pairs"
threads="${THREADS:-$(nproc)}"
kill_at="${KILL_AT:-0.9}"
rows="${ROWS:-20000000}"
[[ "$rows" =~ ^[1-9][0-9]*$ ]] || { echo "pipeline_bench: ROWS must be a positive number" >&2; exit 2; }
build="${RESPAWN_BUILD_DIR:-$here/build}"
respawn="$build/respawn"
[ -x "$respawn" ] || { echo "pipeline_bench: no $respawn: build first (scripts/build.sh)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "pipeline_bench: /usr/bin/time is missing (apt-get install time)" >&2; exit 2; }
drop_caches  # fails now, not after the first pair, when the page cache cannot be dropped
baseline="${BASELINE:-}"
if [ -n "$baseline" ] && [ ! -x "$baseline" ]; then
  echo "pipeline_bench: BASELINE=$baseline is not an executable respawn" >&2
  exit 2
fi

# plain_duckdb comes with the build (bench/CMakeLists.txt); build it alone if this build lacks it.
plain="$build/bench/plain_duckdb"
if [ ! -x "$plain" ]; then
  plain="$build/bench-standalone/plain_duckdb"
  if [ ! -x "$plain" ]; then
    echo "pipeline_bench: building plain_duckdb into $build/bench-standalone" >&2
    cmake -S "$here/bench" -B "$build/bench-standalone" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build/bench-standalone" -j"$(nproc)" >/dev/null
  fi
fi

work="$(mktemp -d /var/tmp/respawn-pipeline-bench.XXXXXX)"
# DuckDB's temp files (and what a killed run leaves of them) stay inside the work dir.
mkdir -p "$work/tmp"
export TMPDIR="$work/tmp"
s3dir="$work/s3"
s3_started=0
bg_pid=""
cleanup() {
  if [ -n "$bg_pid" ]; then kill -9 "$bg_pid" 2>/dev/null || true; fi
  if [ "$s3_started" = 1 ]; then "$here/scripts/s3-server.sh" stop "$s3dir" >/dev/null 2>&1 || true; fi
  if [ "${KEEP_WORK:-0}" = 1 ]; then echo "work dir kept: $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
calc() { awk "BEGIN { printf \"%.6f\", $* }"; }
fmt() { printf '%.1f' "$1"; }
declare -A wall cpu

# The SQL of both sides at ROWS orders.
sed "s/rows = 20000000/rows = $rows/" "$here/examples/demo/pipeline.toml" >"$work/pipeline.toml"
sed "s/range(20000000)/range($rows)/" "$here/bench/demo_plain.sql" >"$work/demo_plain.sql"
if ! grep -q "rows = $rows" "$work/pipeline.toml" || ! grep -q "range($rows)" "$work/demo_plain.sql"; then
  echo "pipeline_bench: cannot set ROWS in the demo SQL (did its text change?)" >&2
  exit 1
fi

# A copy of the pipeline per run, so outputs (and the default store) stay out of examples/.
pipeline_copy() {
  mkdir -p "$1"
  cp "$work/pipeline.toml" "$1/pipeline.toml"
}

outputs=(daily_revenue.parquet top_customers.csv region_category.csv cohorts.parquet)
# Same rows in the same order as the reference outputs (Parquet compared by content, with each
# row's position; CSV byte for byte).
check_outputs() {
  local dir=$1 ref=$2 what=$3 f sql=""
  for f in "${outputs[@]}"; do
    [ -f "$dir/$f" ] || { echo "pipeline_bench: $what: missing output $dir/$f" >&2; exit 1; }
    case "$f" in
      *.csv) cmp -s "$dir/$f" "$ref/$f" || { echo "pipeline_bench: $what: $f differs from the clean run's" >&2; exit 1; } ;;
      *.parquet)
        sql+="SELECT CASE WHEN (SELECT count(*) FROM (
                (SELECT * FROM read_parquet('$dir/$f', file_row_number = true)
                 EXCEPT ALL SELECT * FROM read_parquet('$ref/$f', file_row_number = true))
                UNION ALL
                (SELECT * FROM read_parquet('$ref/$f', file_row_number = true)
                 EXCEPT ALL SELECT * FROM read_parquet('$dir/$f', file_row_number = true)))) > 0
              THEN error('$what: $f differs from the clean run''s') END;" ;;
      *) echo "pipeline_bench: $what: cannot compare $f (neither CSV nor Parquet)" >&2; exit 1 ;;
    esac
  done
  echo "$sql" > "$work/check.sql"
  "$plain" --quiet "$work/check.sql" >/dev/null || { echo "pipeline_bench: $what: outputs differ" >&2; exit 1; }
}

# timed NAME LOG CMD...: runs CMD after dropping the page cache, records wall and CPU
# (user+sys) seconds under NAME; exits with CMD's output when it fails.
timed() {
  local name=$1 log=$2; shift 2
  drop_caches
  if ! /usr/bin/time -o "$work/time" -f '%e %U %S' "$@" >"$log" 2>&1; then
    echo "pipeline_bench: $name failed: $*; its output:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  local e u s
  read -r e u s <"$work/time"
  wall[$name]+="$e "
  cpu[$name]+="$(calc "$u + $s") "
  printf '  %-8s %6.1f s wall %6.1f s cpu\n' "$name" "$e" "$(calc "$u + $s")"
}

echo "== pipeline bench: demo pipeline at $rows orders, $threads DuckDB threads, $pairs pair(s), $(nproc) cores"
echo "   $(describe_cache_policy)"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ "${SKIP_S3:-0}" != 1 ]; then
  s3_started=1
  "$here/scripts/s3-server.sh" start radosgw "$s3dir" >"$work/s3-start.log" 2>&1 ||
    { cat "$work/s3-start.log" >&2; exit 1; }
  set -a
  # shellcheck disable=SC1091  # written by scripts/s3-server.sh
  . "$s3dir/env"
  set +a
fi

ref=""
for r in $(seq 1 "$pairs"); do
  echo "== pair $r of $pairs"
  # (a) plain DuckDB
  d="$work/plain-$r"; mkdir -p "$d/out"
  pushd "$d" >/dev/null
  timed plain "$d/run.log" "$plain" --threads "$threads" "$work/demo_plain.sql"
  popd >/dev/null
  # (b) respawn, local store
  d="$work/local-$r"; pipeline_copy "$d"
  timed local "$d/run.log" "$respawn" run --threads "$threads" --fresh --store "$d/store" "$d/pipeline.toml"
  if [ -z "$ref" ]; then
    ref="$d/out"
    check_outputs "$work/plain-1/out" "$ref" "plain DuckDB"
  else
    check_outputs "$d/out" "$ref" "local run $r"
    check_outputs "$work/plain-$r/out" "$ref" "plain DuckDB $r"
  fi
  rm -rf "$d/store"  # keep the disk use of the bench small
  # (e) the baseline respawn, local store
  if [ -n "$baseline" ]; then
    d="$work/baseline-$r"; pipeline_copy "$d"
    timed baseline "$d/run.log" "$baseline" run --threads "$threads" --fresh --store "$d/store" "$d/pipeline.toml"
    check_outputs "$d/out" "$ref" "baseline run $r"
    rm -rf "$d/store"
  fi
  # (c) respawn, radosgw store
  if [ "$s3_started" = 1 ]; then
    d="$work/s3-$r"; pipeline_copy "$d"
    timed radosgw "$d/run.log" "$respawn" run --threads "$threads" --fresh \
      --store "s3://$RESPAWN_TEST_BUCKET/pipeline-bench/run-$r" "$d/pipeline.toml"
    check_outputs "$d/out" "$ref" "radosgw run $r"
    # Free the server's memory (objects live in RAM) before the next run.
    "$respawn" -q store rm -r "s3://$RESPAWN_TEST_BUCKET/pipeline-bench/run-$r/" >/dev/null
  fi
done
if [ "$s3_started" = 1 ]; then
  "$here/scripts/s3-server.sh" stop "$s3dir" >/dev/null 2>&1 || true
  s3_started=0
fi

if [ "${SKIP_RESUME:-0}" != 1 ]; then
  read -r clean_median _ _ < <(stats "${wall[local]}")
  kill_after=$(calc "$clean_median * $kill_at")
  echo "== (d) pairs of a clean local run and a run killed with SIGKILL at $(fmt "$kill_after") s ($kill_at of the median clean $(fmt "$clean_median") s), then resumed"
  for r in $(seq 1 "$pairs"); do
    d="$work/clean-$r"; pipeline_copy "$d"
    timed clean "$d/run.log" "$respawn" run --threads "$threads" --fresh --store "$d/store" "$d/pipeline.toml"
    rm -rf "$d/store"
    d="$work/resume-$r"; pipeline_copy "$d"
    drop_caches
    "$respawn" run --threads "$threads" --fresh --store "$d/store" "$d/pipeline.toml" >"$d/killed.log" 2>&1 &
    bg_pid=$!
    sleep "$kill_after"
    if ! kill -9 "$bg_pid" 2>/dev/null; then
      echo "pipeline_bench: the run ended before the kill at $(fmt "$kill_after") s (machine faster now?):" >&2
      cat "$d/killed.log" >&2
      exit 1
    fi
    wait "$bg_pid" 2>/dev/null || true
    bg_pid=""
    committed=$(grep -c ': computed in' "$d/killed.log" || true)
    timed resume "$d/run.log" "$respawn" run --threads "$threads" --store "$d/store" "$d/pipeline.toml"
    echo "    killed run had committed $committed nodes; resume: $(grep -c ': reused' "$d/run.log" || true) reused, $(grep -c ': computed in' "$d/run.log" || true) computed"
    check_outputs "$d/out" "$ref" "resumed run $r"
    rm -rf "$d/store"
  done
fi

echo "== summary over $pairs pair(s): median [min-max] (load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
printf '%-28s %-24s %-24s\n' run "wall seconds" "cpu seconds (user+sys)"
row() {  # LABEL NAME
  [ -n "${wall[$2]:-}" ] || return 0
  printf '%-28s %-24s %-24s\n' "$1" "$(fmt_stats "${wall[$2]}" %.1f)" "$(fmt_stats "${cpu[$2]}" %.1f)"
}
row "plain DuckDB" plain
row "respawn, local store" local
row "respawn, radosgw store" radosgw
row "baseline respawn, local" baseline
row "clean local (pairs of d)" clean
row "resume after kill at $kill_at" resume
echo "ratios, one per pair, then median [min-max]:"
ratio_row() {  # LABEL A B
  if [ -z "${wall[$2]:-}" ] || [ -z "${wall[$3]:-}" ]; then return 0; fi
  local w c
  w="$(ratios "${wall[$2]}" "${wall[$3]}")"
  c="$(ratios "${cpu[$2]}" "${cpu[$3]}")"
  # shellcheck disable=SC2086  # one number per word
  printf '%-28s wall %sx  (pairs: %s)\n' "$1" "$(fmt_stats "$w")" "$(printf '%.2f ' $w)"
  # shellcheck disable=SC2086
  printf '%-28s cpu  %sx  (pairs: %s)\n' "" "$(fmt_stats "$c")" "$(printf '%.2f ' $c)"
}
ratio_row "respawn local / plain" plain local
ratio_row "respawn radosgw / plain" plain radosgw
ratio_row "respawn local / baseline" baseline local
ratio_row "resume / clean" clean resume
echo "(radosgw: cpu counts the respawn process only, not the server's)"
echo "all outputs matched the clean run's row for row"
