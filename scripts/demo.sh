#!/usr/bin/env bash
# The respawn demo, on a local store (no server needed): installs what it needs, builds, then
# runs the demo pipeline (examples/demo/pipeline.toml, ~30-60 s of DuckDB work on 2 cores),
# kills it with SIGKILL part-way, re-runs it, and shows that the re-run resumed from the stages
# the killed run had committed, with the same outputs.
# Env: RESPAWN_BUILD_DIR (default build/), DEMO_KILL_AFTER (kill once this many nodes have been
# computed, default 5: sources + clean_orders + enriched_orders), DEMO_SKIP_SETUP=1 (no setup
# and build: use the existing build).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
if [ "${DEMO_SKIP_SETUP:-0}" != 1 ]; then
  scripts/setup.sh
  scripts/build.sh >/dev/null
fi
respawn="${RESPAWN_BUILD_DIR:-$here/build}/respawn"
pipeline="examples/demo/pipeline.toml"
demo_dir="$here/examples/demo"
kill_after="${DEMO_KILL_AFTER:-5}"

bold() { if [ -t 1 ]; then printf '\033[1m%s\033[0m\n' "$*"; else printf '%s\n' "$*"; fi; }
fail() { echo "demo: FAILED: $*" >&2; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$(now)" -v b="$1" 'BEGIN { printf "%.1f", a - b }'; }

# DuckDB's temp files live here; a killed run cannot clean up after itself, so we do.
work="$(mktemp -d)"
export TMPDIR="$work"
run_pid=""
cleanup() {
  if [ -n "$run_pid" ]; then kill -9 "$run_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[ -x "$respawn" ] || fail "no $respawn: run scripts/build.sh"

bold "== 1. The pipeline: $pipeline"
echo "   10 nodes over generated data (20M orders, 1M customers, 50k products): clean, join,"
echo "   aggregate, 4 outputs under examples/demo/out/. Each stage's result is checkpointed as"
echo "   Parquet in the store, committed atomically, before anything downstream uses it."
sed -n '3,7p' "$pipeline"

bold "== 2. Run it on a fresh local store, and kill -9 it part-way"
rm -rf "$demo_dir/.respawn" "$demo_dir/out"
log="$work/killed.log"
t0=$(now)
"$respawn" run "$pipeline" >"$log" 2>&1 &
run_pid=$!
# Show the run live while waiting for the kill point.
tail -s 0.2 -n +1 -f --pid="$run_pid" "$log" | sed 's/^/   | /' &
tail_pid=$!
while kill -0 "$run_pid" 2>/dev/null; do
  computed=$(grep -c ': computed in' "$log" || true)
  if [ "$computed" -ge "$kill_after" ]; then
    sleep 2  # let the next stages get going, so the kill lands in the middle of them
    break
  fi
  sleep 0.2
done
if kill -9 "$run_pid" 2>/dev/null; then
  wait "$run_pid" 2>/dev/null || true
  run_pid=""
  wait "$tail_pid" 2>/dev/null || true
  killed_after=$(secs "$t0")
  committed=$(grep -c ': computed in' "$log" || true)
  lost=$(grep ': started' "$log" | sed 's/^stage \([^:]*\):.*/\1/' | while read -r s; do
    grep -q "^stage $s: computed in" "$log" || echo "$s"; done | paste -sd, - | sed 's/,/, /g')
  echo "   >>> SIGKILL after ${killed_after} s: $committed nodes were committed; lost mid-run: ${lost:-none}"
else
  wait "$run_pid" && rc=0 || rc=$?
  run_pid=""
  wait "$tail_pid" 2>/dev/null || true
  [ "$rc" = 0 ] || fail "the first run exited $rc before the kill (see above)"
  echo "   (the run finished before the kill point; the re-run below reuses everything)"
fi

bold "== 3. Run the same command again: it resumes"
log2="$work/resume.log"
t1=$(now)
"$respawn" run "$pipeline" 2>&1 | tee "$log2" | sed 's/^/   | /'
rc=${PIPESTATUS[0]}
[ "$rc" = 0 ] || fail "the re-run exited $rc (see above)"
resume_s=$(secs "$t1")
reused=$(grep ': reused' "$log2" | sed 's/^stage \([^:]*\):.*/\1/' | paste -sd, - | sed 's/,/, /g')
recomputed=$(grep ': computed in' "$log2" | sed 's/^stage \([^:]*\):.*/\1/' | paste -sd, - | sed 's/,/, /g')
saved=$(grep '^run .* done in' "$log2" | grep -o '(~[0-9.,]* s of stage work' | tail -n 1 | sed 's/(~//; s/ of stage work//')
echo "   >>> reused:     ${reused:-none}"
echo "   >>> recomputed: ${recomputed:-none}"
echo "   >>> the re-run took ${resume_s} s and skipped ~${saved:-0 s} of stage work already committed"
for f in daily_revenue.parquet top_customers.csv region_category.csv cohorts.parquet; do
  [ -s "$demo_dir/out/$f" ] || fail "output examples/demo/out/$f is missing"
done

bold "== 4. respawn status $pipeline"
"$respawn" status "$pipeline" | sed 's/^/   /'

bold "== 5. An output: examples/demo/out/top_customers.csv (first rows)"
if command -v column >/dev/null; then table() { column -s, -t; }; else table() { cat; }; fi
head -n 6 "$demo_dir/out/top_customers.csv" | table | sed 's/^/   /'

bold "== Done. Try: change per_region = 100 to 10 in $pipeline, then run"
echo "   \`${respawn#"$here"/} run $pipeline\`: only top_customers is recomputed, from the checkpoints"
echo "   above it (work-tables stay for [gc] work_tables_ttl, 6 h); the rest is reused."
