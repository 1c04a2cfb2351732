#!/usr/bin/env bash
# The demo pipeline (examples/demo/pipeline.toml) under respawn vs the same SQL on plain DuckDB
# without checkpoints (bench/demo_plain.sql), all in one go on this machine:
#   (a) plain DuckDB: bench/plain_duckdb on demo_plain.sql
#   (b) respawn run --fresh, checkpoints on a local store
#   (c) respawn run --fresh, checkpoints on S3 (a throwaway Ceph radosgw on 127.0.0.1)
#   (d) respawn run --fresh killed with SIGKILL at 90% of (b)'s time, then `respawn run` resumes
# and prints the ratios respawn/plain (local), respawn/plain (radosgw) and resume/clean (medians).
# Every respawn run starts on an empty store; every run's outputs are checked against (b)'s.
#
# Usage: bench/pipeline_bench.sh [REPEATS=3]
# Env: THREADS (DuckDB threads, default nproc), KILL_AT (fraction of the clean time, 0.9),
#      SKIP_S3=1 (skip (c)), RESPAWN_BUILD_DIR (default build/), KEEP_WORK=1 (keep the work dir).
# Needs a build (scripts/build.sh) and, for (c), the Ceph packages (scripts/setup.sh --servers).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repeats="${1:-3}"
threads="${THREADS:-$(nproc)}"
kill_at="${KILL_AT:-0.9}"
build="${RESPAWN_BUILD_DIR:-$here/build}"
respawn="$build/respawn"
[ -x "$respawn" ] || { echo "pipeline_bench: no $respawn: build first (scripts/build.sh)" >&2; exit 2; }
[[ "$repeats" =~ ^[1-9][0-9]*$ ]] || { echo "pipeline_bench: REPEATS must be a positive number" >&2; exit 2; }

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
elapsed() { calc "$(now) - $1"; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
fmt() { printf '%.1f' "$1"; }
declare -A samples

# A copy of the pipeline per run, so outputs (and the default store) stay out of examples/.
pipeline_copy() {
  mkdir -p "$1"
  cp "$here/examples/demo/pipeline.toml" "$1/pipeline.toml"
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

# Runs respawn (args after the dir), records the wall time under $1, checks exit 0.
run_respawn() {
  local name=$1 dir=$2; shift 2
  local t0 rc=0
  t0=$(now)
  "$respawn" run --threads "$threads" "$@" "$dir/pipeline.toml" >"$dir/run.log" 2>&1 || rc=$?
  local t; t=$(elapsed "$t0")
  if [ "$rc" != 0 ]; then
    echo "pipeline_bench: $name: respawn run exited $rc; its output:" >&2
    cat "$dir/run.log" >&2
    exit 1
  fi
  samples[$name]+="$t "
  echo "  $name: $(fmt "$t") s ($(grep '^run .* in ' "$dir/run.log" | tail -n 1))"
}

echo "== pipeline bench: examples/demo/pipeline.toml, $threads DuckDB threads, $repeats repeat(s), $(nproc) cores"
echo "   load average before: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "== (a) plain DuckDB, no checkpoints (bench/demo_plain.sql)"
for r in $(seq 1 "$repeats"); do
  d="$work/plain-$r"; mkdir -p "$d/out"
  t0=$(now)
  (cd "$d" && "$plain" --threads "$threads" "$here/bench/demo_plain.sql") >"$d/run.log" 2>&1 ||
    { cat "$d/run.log" >&2; exit 1; }
  t=$(elapsed "$t0")
  samples[plain]+="$t "
  echo "  plain: $(fmt "$t") s"
done

echo "== (b) respawn run --fresh, local store"
for r in $(seq 1 "$repeats"); do
  d="$work/local-$r"; pipeline_copy "$d"
  run_respawn local "$d" --fresh --store "$d/store"
  if [ "$r" = 1 ]; then
    ref="$d/out"
    check_outputs "$work/plain-1/out" "$ref" "plain DuckDB"
  else
    check_outputs "$d/out" "$ref" "local run $r"
    rm -rf "$d/store"  # keep the disk use of the bench small
  fi
done
rm -rf "$work/local-1/store"

if [ "${SKIP_S3:-0}" != 1 ]; then
  echo "== (c) respawn run --fresh, S3 store on a local radosgw"
  s3_started=1
  "$here/scripts/s3-server.sh" start radosgw "$s3dir" >"$work/s3-start.log" 2>&1 ||
    { cat "$work/s3-start.log" >&2; exit 1; }
  set -a; . "$s3dir/env"; set +a
  for r in $(seq 1 "$repeats"); do
    d="$work/s3-$r"; pipeline_copy "$d"
    run_respawn radosgw "$d" --fresh --store "s3://$RESPAWN_TEST_BUCKET/pipeline-bench/run-$r"
    check_outputs "$d/out" "$ref" "radosgw run $r"
    # Free the server's memory (objects live in RAM) before the next run.
    "$respawn" -q store rm -r "s3://$RESPAWN_TEST_BUCKET/pipeline-bench/run-$r/" >/dev/null
  done
  "$here/scripts/s3-server.sh" stop "$s3dir" >/dev/null 2>&1 || true
  s3_started=0
fi

clean=$(echo "${samples[local]}" | median)
kill_after=$(calc "$clean * $kill_at")
echo "== (d) kill -9 at $(fmt "$kill_after") s ($kill_at of the clean $(fmt "$clean") s), then resume"
for r in $(seq 1 "$repeats"); do
  d="$work/resume-$r"; pipeline_copy "$d"
  "$respawn" run --threads "$threads" --fresh --store "$d/store" "$d/pipeline.toml" >"$d/killed.log" 2>&1 &
  pid=$!
  bg_pid=$pid
  sleep "$kill_after"
  if ! kill -9 "$pid" 2>/dev/null; then
    echo "pipeline_bench: the run ended before the kill at $(fmt "$kill_after") s (machine faster now?):" >&2
    cat "$d/killed.log" >&2
    exit 1
  fi
  wait "$pid" 2>/dev/null || true
  bg_pid=""
  committed=$(grep -c ': computed in' "$d/killed.log" || true)
  run_respawn resume "$d" --store "$d/store"
  echo "    killed run had committed $committed of 10 nodes; resume: $(grep -c ': reused' "$d/run.log") reused, $(grep -c ': computed in' "$d/run.log") computed"
  check_outputs "$d/out" "$ref" "resumed run $r"
  rm -rf "$d/store"
done

echo "== medians of $repeats (seconds; load average now: $(cut -d' ' -f1-3 /proc/loadavg))"
plain_s=$(echo "${samples[plain]}" | median)
resume_s=$(echo "${samples[resume]}" | median)
printf '%-28s %8.1f\n' "plain DuckDB" "$plain_s"
printf '%-28s %8.1f\n' "respawn, local store" "$clean"
if [ -n "${samples[radosgw]:-}" ]; then
  s3_s=$(echo "${samples[radosgw]}" | median)
  printf '%-28s %8.1f\n' "respawn, radosgw store" "$s3_s"
fi
printf '%-28s %8.1f\n' "resume after kill at $kill_at" "$resume_s"
printf 'respawn/plain (local):   %.2fx\n' "$(calc "$clean / $plain_s")"
if [ -n "${s3_s:-}" ]; then
  printf 'respawn/plain (radosgw): %.2fx\n' "$(calc "$s3_s / $plain_s")"
fi
printf 'resume/clean:            %.2fx\n' "$(calc "$resume_s / $clean")"
echo "all outputs matched the clean run's row for row"
