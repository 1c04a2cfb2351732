#!/usr/bin/env bash
# respawn-test-servers: radosgw
#
# Whole pipeline runs with the store behind tests/tools/s3_fault_proxy.py (a real HTTP proxy in
# front of a real radosgw) injecting faults at the HTTP level:
#   - a run under a steady rate of every fault kind (500, 503, SlowDown, resets before and after
#     the server did the work, put-if-absent commits reset after they landed, truncated bodies,
#     stalls) succeeds, with outputs identical row for row to a fault-free run's; the proxy's
#     counters prove the faults landed; a second run reuses every stage;
#   - a run whose store starts failing for good midway fails with exit 1 and a one-line error
#     naming the store; a later clean run finishes with the same outputs, and the run after it
#     reuses every stage (nothing committed was damaged).
# Outputs are compared with tests/tools/read_table.mjs (hyparquet), as the other suites do.
#
# Usage: tests/s3_faults_pipeline_test.sh path/to/respawn   (or with RESPAWN_BINARY set), with
# RESPAWN_TEST_S3_ENV_RADOSGW naming the env file of a running radosgw (ctest sets it).
set -euo pipefail
# shellcheck source=tools/e2e_lib.sh disable=SC1091
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"
PROXY_SCRIPT="$E2E_TOOLS/s3_fault_proxy.py"

if [ -z "${RESPAWN_TEST_S3_ENV_RADOSGW:-}" ] || [ ! -r "$RESPAWN_TEST_S3_ENV_RADOSGW" ]; then
  if [ "${CI:-}" = true ]; then
    echo "CI=true and RESPAWN_TEST_S3_ENV_RADOSGW does not name a readable env file" >&2
    exit 1
  fi
  echo "SKIP: RESPAWN_TEST_S3_ENV_RADOSGW is not set (run through ctest, which starts radosgw)"
  exit 0
fi
set -a
# shellcheck disable=SC1090
. "$RESPAWN_TEST_S3_ENV_RADOSGW"
set +a
UPSTREAM="$AWS_ENDPOINT_URL"
BUCKET="$RESPAWN_TEST_BUCKET"
PREFIX="s3faults-pipeline-$$-$RANDOM"

# The proxy, started here and stopped by its pid.
"$PY" "$PROXY_SCRIPT" --upstream "$UPSTREAM" --port-file "$WORK/proxy.port" \
  --log "$WORK/proxy.log" --exit-with-parent >"$WORK/proxy.out" 2>&1 &
PROXY_PID=$!
E2E_CLEANUP+=("kill $PROXY_PID")
for _ in $(seq 1 500); do
  [ -s "$WORK/proxy.port" ] && break
  kill -0 "$PROXY_PID" 2>/dev/null || { echo "the fault proxy exited:"; cat "$WORK/proxy.out"; exit 1; }
  sleep 0.02
done
[ -s "$WORK/proxy.port" ] || { echo "the fault proxy did not start"; cat "$WORK/proxy.out"; exit 1; }
PROXY="http://127.0.0.1:$(cat "$WORK/proxy.port")"

# control METHOD PATH [BODY]: a request to the proxy's control endpoint; the answer on stdout.
control() {
  curl -sS --fail-with-body -X "$1" --data-binary "${3:-}" "$PROXY/__fault__/$2"
}

set_rules() {  # JSON array of rules
  control PUT rules "{\"rules\": $1, \"seed\": 11}" >/dev/null
}

# fired_total: how many faults the proxy injected since the rules were set.
fired_total() {
  control GET stats | "$PY" -c 'import json, sys; print(sum(r["fired"] for r in json.load(sys.stdin)["rules"]))'
}

fired_by_rule() {
  control GET stats | "$PY" -c '
import json, sys
for r in json.load(sys.stdin)["rules"]:
    print("%-24s matched %5d fired %4d" % (r["name"], r["matched"], r["fired"]))'
}

write_pipeline() {  # DIR
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<'EOF'
name = "faulty"

[sources.events]
sql = "SELECT range AS id, range % 97 AS user_id, (range * 7919) % 10007 AS amount, 'e' || (range % 13) AS kind FROM range(0, 300000)"

[sources.users]
sql = "SELECT range AS user_id, 'user-' || range AS name, range % 5 AS tier FROM range(0, 97)"

[stages.valid]
sql = "SELECT * FROM events WHERE amount % 11 <> 0"

[stages.enriched]
sql = "SELECT v.id, v.amount, v.kind, u.name, u.tier FROM valid v JOIN users u USING (user_id)"

[stages.by_tier]
sql = "SELECT tier, kind, count(*) AS n, sum(amount) AS total FROM enriched GROUP BY tier, kind ORDER BY tier, kind"

[stages.top_users]
sql = "SELECT name, sum(amount) AS total FROM enriched GROUP BY name ORDER BY total DESC, name LIMIT 20"

[stages.sample]
sql = "SELECT id, amount, name FROM enriched WHERE id % 1000 = 7 ORDER BY id"

[outputs.by_tier_out]
from = "by_tier"
path = "out/by_tier.parquet"

[outputs.top_out]
from = "top_users"
path = "out/top_users.csv"

[outputs.sample_out]
from = "sample"
path = "out/sample.parquet"
EOF
}

# The reference: a fault-free run straight at radosgw (not through the proxy).
make_reference() {
  write_pipeline "$WORK/ref"
  (cd "$WORK/ref" && expect_exit 0 "$R" run pipeline.toml --store "s3://$BUCKET/$PREFIX/ref")
  snapshot_outputs "$WORK/ref/pipeline.toml" "$WORK/ref-out"
}

# Every fault kind once at a fixed point of the run (so each surely lands), then a steady rate
# of all of them on every kind of request. The first rule that fires acts.
FAULT_MIX='[
  {"name": "once_truncate",      "fault": "truncate", "method": "GET", "keep": 0.3, "nth": 2},
  {"name": "once_reset_after",   "fault": "reset", "when": "after", "nth": 5},
  {"name": "once_error500_after", "fault": "error", "status": 500, "when": "after", "nth": 9},
  {"name": "once_commit_reset",  "fault": "reset", "when": "after", "method": "PUT",
   "headers": {"if-none-match": "\\*"}, "nth": 3},
  {"name": "once_stall",         "fault": "stall", "seconds": 1.5, "nth": 13},
  {"name": "once_reset_before",  "fault": "reset", "when": "before", "nth": 17},
  {"name": "once_slowdown",      "fault": "slowdown", "nth": 21},
  {"name": "error500",           "fault": "error", "status": 500, "rate": 0.04},
  {"name": "error503",           "fault": "error", "status": 503, "rate": 0.03},
  {"name": "slowdown",           "fault": "slowdown", "rate": 0.04},
  {"name": "reset_before",       "fault": "reset", "when": "before", "rate": 0.03},
  {"name": "reset_after",        "fault": "reset", "when": "after", "rate": 0.03},
  {"name": "error500_after",     "fault": "error", "status": 500, "when": "after", "rate": 0.03},
  {"name": "commit_reset",       "fault": "reset", "when": "after", "method": "PUT",
   "headers": {"if-none-match": "\\*"}, "rate": 0.3},
  {"name": "truncate_get",       "fault": "truncate", "method": "GET", "keep": 0.3, "rate": 0.1},
  {"name": "stall",              "fault": "stall", "seconds": 1.5, "rate": 0.01}
]'

# every_once_rule_fired: each once_* rule of the mix acted.
every_once_rule_fired() {
  control GET stats | "$PY" -c '
import json, sys
missing = [r["name"] for r in json.load(sys.stdin)["rules"]
           if r["name"].startswith("once_") and r["fired"] < 1]
if missing:
    sys.exit("these faults never landed: " + ", ".join(missing))'
}

# nothing_recomputed FILE: the run in FILE computed no stage (every one was reused, or was not
# needed because everything downstream was).
nothing_recomputed() {
  if grep -E '^stage [A-Za-z0-9_]+: computed' "$1"; then
    echo "stages were recomputed although their commits should be intact"
    return 1
  fi
  grep -q ': reused' "$1" || { echo "no stage was reused"; return 1; }
}

test_run_survives_a_fault_rate() {
  make_reference
  write_pipeline p
  set_rules "$FAULT_MIX"
  # Through the proxy: the endpoint is the proxy's, signatures still match (Host is forwarded).
  AWS_ENDPOINT_URL="$PROXY" expect_exit 0 "$R" run p/pipeline.toml --store "s3://$BUCKET/$PREFIX/rate"
  cp out.txt run1.out
  fired_by_rule
  local fired
  fired="$(fired_total)"
  echo "faults injected during the run: $fired"
  [ "$fired" -ge 10 ] || { echo "too few faults landed ($fired) for the run to prove anything"; return 1; }
  every_once_rule_fired
  compare_outputs p/pipeline.toml "$WORK/ref-out"
  # Still under faults, a second run recomputes nothing: what the first committed is intact.
  set_rules "$FAULT_MIX"
  AWS_ENDPOINT_URL="$PROXY" expect_exit 0 "$R" run p/pipeline.toml --store "s3://$BUCKET/$PREFIX/rate"
  nothing_recomputed out.txt
  compare_outputs p/pipeline.toml "$WORK/ref-out"
  set_rules '[]'
}

test_store_failing_midway_then_clean_runs() {
  make_reference
  write_pipeline p
  # The first 12 data/ledger writes pass, then every PUT and POST fails for good.
  set_rules '[{"name": "broken", "fault": "error", "status": 503, "method": "PUT|POST", "after": 12}]'
  local rc=0
  AWS_ENDPOINT_URL="$PROXY" "$R" run --timeout 5 p/pipeline.toml \
    --store "s3://$BUCKET/$PREFIX/midway" >out.txt 2>err.txt || rc=$?
  cat out.txt err.txt
  [ "$rc" -eq 1 ] || { echo "want exit 1 from a run whose store broke, got $rc"; return 1; }
  [ "$(fired_total)" -ge 1 ] || { echo "the fault never fired"; return 1; }
  grep -q "s3://$BUCKET" err.txt || { echo "the error does not name the store"; return 1; }
  grep -Eq '503|unavailable|Unavailable' err.txt || { echo "the error does not say the store failed"; return 1; }
  if grep -qiE 'internal error|terminate|assert|segmentation' err.txt; then
    echo "the failure was not clean"; return 1
  fi
  local committed
  committed="$(grep -c ': computed in' out.txt || true)"
  echo "stages committed before the store broke: $committed"

  set_rules '[]'
  AWS_ENDPOINT_URL="$PROXY" expect_exit 0 "$R" run p/pipeline.toml --store "s3://$BUCKET/$PREFIX/midway"
  cat out.txt
  local reused
  reused="$(grep -c ': reused' out.txt || true)"
  [ "$reused" -ge "$committed" ] ||
    { echo "$committed stages were committed before the failure but only $reused reused"; return 1; }
  compare_outputs p/pipeline.toml "$WORK/ref-out"
  AWS_ENDPOINT_URL="$PROXY" expect_exit 0 "$R" run p/pipeline.toml --store "s3://$BUCKET/$PREFIX/midway"
  nothing_recomputed out.txt
  compare_outputs p/pipeline.toml "$WORK/ref-out"
}

cleanup_store() {
  "$R" -q store rm -r "s3://$BUCKET/$PREFIX/" >/dev/null 2>&1 || true
}
E2E_CLEANUP+=("cleanup_store")

run test_run_survives_a_fault_rate
run test_store_failing_midway_then_clean_runs
e2e_finish
