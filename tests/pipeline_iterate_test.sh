#!/usr/bin/env bash
# Iterating on a leaf (issue 11): editing only the last stage recomputes only it, and every
# recompute says exactly why.
#   - [gc] work_tables_ttl = "4h": after a finished run, editing the leaf recomputes only the
#     leaf, with the reason `changed SQL`; `respawn status` says so beforehand; `respawn gc`
#     keeps the work-tables (dry run and real run report the same); with the TTL set to "0"
#     `respawn gc` drops them (its dry run's counts equal what it then deletes), status then
#     names the dropped ancestors and a run recomputes them with `dropped by GC after run <id>
#     (needed by <stage>)`;
#   - work_tables_ttl = "0": the run itself drops them; editing the leaf recomputes its
#     ancestors with that reason, never `no checkpoint`;
#   - every run's outputs equal a clean run's of the same pipeline, row for row.
#
# Usage: tests/pipeline_iterate_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

# write_pipeline DIR TTL LIMIT: events (generated) -> users -> user_running -> top_users (the
# output's stage); users and user_running are work-tables, and so is events.
write_pipeline() {
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<EOF
name = "iterate"

[gc]
work_tables_ttl = "$2"

[sources.events]
sql = "SELECT range AS id, range % 37 AS user_id, (range * 7919) % 1000 AS amount FROM range(0, 5000)"

[stages.users]
sql = "SELECT user_id, count(*) AS n, sum(amount) AS spent FROM events GROUP BY user_id"

[stages.user_running]
sql = "SELECT user_id, n, spent, sum(spent) OVER (ORDER BY spent DESC, user_id) AS running FROM users"

[stages.top_users]
sql = "SELECT user_id, spent, running FROM user_running ORDER BY spent DESC, user_id LIMIT $3"

[outputs.top]
from = "top_users"
path = "out/top.csv"
EOF
}

# set_ttl DIR TTL / set_limit DIR LIMIT: edit the pipeline in place.
set_ttl() { sed -i "s/^work_tables_ttl = .*/work_tables_ttl = \"$2\"/" "$1/pipeline.toml"; }
set_limit() { sed -i "s/LIMIT [0-9]*\"/LIMIT $2\"/" "$1/pipeline.toml"; }

# check_against_clean DIR: DIR's outputs equal a clean run's of the same pipeline file.
check_against_clean() {
  rm -rf clean
  mkdir clean
  cp "$1/pipeline.toml" clean/
  expect_exit 0 "$R" run clean/pipeline.toml
  snapshot_outputs clean/pipeline.toml clean-ref
  compare_outputs "$1/pipeline.toml" clean-ref
  rm -rf clean-ref
}

# computed_stages FILE: the names of the stages a run's output says it computed, sorted.
computed_stages() {
  sed -n -E 's/^stage ([A-Za-z0-9_]+): computed.*/\1/p' "$1" | sort | tr '\n' ' '
}

# run_id FILE: the (short) id of the run whose output FILE is.
run_id() {
  sed -n -E 's/^run ([0-9a-f]{8}) .*/\1/p' "$1"
}

# gc_counts FILE: GC's summary line without its request counts (a dry run lists, then stops).
gc_counts() {
  sed -n -E 's/^(dry run: would have )?(deleted .*); requests:.*/\2/p' "$1"
}

test_editing_the_leaf_reuses_its_inputs_within_the_ttl() {
  write_pipeline p 4h 10
  expect_exit 0 "$R" run p/pipeline.toml
  [ "$(computed_stages out.txt)" = "events top_users user_running users " ]
  set_limit p 5
  # status says what a run would compute now, and why.
  expect_exit 0 "$R" status p/pipeline.toml
  grep -q '^a run now computes 1 stage:$' out.txt
  grep -q '^  top_users: changed SQL$' out.txt
  expect_exit 0 "$R" run p/pipeline.toml
  [ "$(computed_stages out.txt)" = "top_users " ] || { cat out.txt; return 1; }
  grep -q '^stage top_users: computed .* (changed SQL)$' out.txt
  grep -q '^stage user_running: reused' out.txt
  refute grep -Eq 'no checkpoint|first computation' out.txt
  local run1
  run1="$(run_id out.txt)"
  [ -n "$run1" ]
  check_against_clean p

  # respawn gc honours the TTL: it keeps the latest run's work-tables, dry run or not.
  expect_exit 0 "$R" gc p/pipeline.toml --dry-run
  grep -q "^kept 3 work-tables of run $run1 until .* stage/events stage/user_running stage/users$" out.txt
  refute grep -q 'drop' out.txt
  expect_exit 0 "$R" gc p/pipeline.toml
  grep -q "^kept 3 work-tables of run $run1 until" out.txt
  refute grep -q 'drop' out.txt
  expect_exit 0 "$R" status p/pipeline.toml
  grep -q '^a run now computes nothing' out.txt

  # With the TTL at 0, gc drops them; its dry run said exactly what it then did.
  set_ttl p 0
  expect_exit 0 "$R" gc p/pipeline.toml --dry-run
  grep -q '^would drop 3 work-tables from the ledger: stage/events stage/user_running stage/users$' out.txt
  gc_counts out.txt >dry.txt
  [ -s dry.txt ]
  expect_exit 0 "$R" gc p/pipeline.toml
  grep -q '^dropped 3 work-tables from the ledger: stage/events stage/user_running stage/users$' out.txt
  gc_counts out.txt >real.txt
  diff dry.txt real.txt

  # Now status names the dropped ancestors a changed leaf needs, and the run says the same.
  set_limit p 7
  expect_exit 0 "$R" status p/pipeline.toml
  grep -q '^a run now computes 4 stages:$' out.txt
  grep -q "^  user_running: dropped by GC after run $run1 (needed by top_users)$" out.txt
  grep -q "^  users: dropped by GC after run $run1 (needed by user_running)$" out.txt
  grep -q "^  events: dropped by GC after run $run1 (needed by users)$" out.txt
  grep -q '^  top_users: changed SQL$' out.txt
  expect_exit 0 "$R" run p/pipeline.toml
  grep -q "^stage user_running: computed .* (dropped by GC after run $run1 (needed by top_users))$" out.txt
  grep -q '^stage top_users: computed .* (changed SQL)$' out.txt
  check_against_clean p
}

test_with_ttl_zero_ancestors_recompute_saying_gc_dropped_them() {
  write_pipeline p 0 10
  expect_exit 0 "$R" run p/pipeline.toml
  local run1
  run1="$(run_id out.txt)"
  [ -n "$run1" ]
  expect_exit 0 "$R" status p/pipeline.toml --json
  "$PY" - <<'EOF'
import json
nodes = {n["name"]: n for n in json.load(open("out.txt"))["nodes"]}
for name in ("events", "users", "user_running"):
    assert nodes[name]["state"] == "dropped", nodes[name]
assert nodes["top_users"]["state"] == "committed", nodes["top_users"]
assert all(n["next_action"] != "compute" for n in nodes.values()), nodes
EOF
  set_limit p 5
  expect_exit 0 "$R" run p/pipeline.toml
  [ "$(computed_stages out.txt)" = "events top_users user_running users " ] || { cat out.txt; return 1; }
  grep -q "^stage user_running: computed .* (dropped by GC after run $run1 (needed by top_users))$" out.txt
  grep -q "^stage users: computed .* (dropped by GC after run $run1 (needed by user_running))$" out.txt
  grep -q '^stage top_users: computed .* (changed SQL)$' out.txt
  refute grep -Eq 'no checkpoint|first computation' out.txt
  check_against_clean p
}

run test_editing_the_leaf_reuses_its_inputs_within_the_ttl
run test_with_ttl_zero_ancestors_recompute_saying_gc_dropped_them
e2e_finish
