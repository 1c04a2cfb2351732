#!/usr/bin/env bash
# `respawn run --select/--exclude`: after editing a leaf, `--select leaf` recomputes the leaf
# alone (the rest is reused, an edited stage that is not selected is left stale, its output
# untouched) and the outputs equal a clean full run's row for row; a partial run does no GC;
# --fresh with --select recomputes only the selection; a selected stage that needs a stage GC
# dropped is refused before anything runs, naming both and the fix; unknown names get a
# did-you-mean before the store is opened.
#
# Usage: tests/pipeline_select_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

# write_pipeline DIR KEEP: gen -> base -> {by_g, other}, each leaf with an output; base is
# `keep = true` (survives GC) when KEEP is true.
write_pipeline() {
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<TOML
name = "selected"

[gc]
work_tables_ttl = "0"  # work-tables go at the end of a whole run (the refusal case needs that)

[sources.gen]
sql = "SELECT range AS id, range % 7 AS g FROM range(0, 5000)"

[stages.base]
keep = $2
sql = "SELECT id, g FROM gen WHERE id % 3 <> 0"

[stages.by_g]
sql = "SELECT g, count(*) AS n FROM base GROUP BY g ORDER BY g"

[stages.other]
sql = "SELECT g, sum(id) AS total FROM base GROUP BY g ORDER BY g"

[outputs.by_g_out]
from = "by_g"
path = "out/by_g.csv"

[outputs.other_out]
from = "other"
path = "out/other.csv"
TOML
}

# edit DIR STAGE: changes what STAGE computes.
edit() {
  case "$2" in
    by_g) sed -i 's/count(\*) AS n FROM base/count(*) * 10 AS n FROM base/' "$1/pipeline.toml" ;;
    other) sed -i 's/sum(id) AS total/max(id) AS total/' "$1/pipeline.toml" ;;
    *) echo "edit: no edit for stage $2"; return 1 ;;
  esac
}

# computed FILE: the stages a `--json run` computed, sorted, space-separated.
computed() {
  "$PY" - "$1" <<'EOF'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(" ".join(sorted(e["name"] for e in events if e["event"] == "stage" and e["action"] == "computed")))
EOF
}

# event_of FILE stage|output NAME: "action: reason" of a stage's last event, or "written=W
# selected=S" of an output's, from a `--json run`.
event_of() {
  "$PY" - "$@" <<'EOF'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
e = [e for e in events if e["event"] == sys.argv[2] and e["name"] == sys.argv[3]][-1]
print(f"{e['action']}: {e['reason']}" if sys.argv[2] == "stage" else f"written={e['written']} selected={e['selected']}")
EOF
}

# run_field FILE KEY: KEY of the final {"event":"run"} object ("" when absent).
run_field() {
  "$PY" - "$1" "$2" <<'EOF'
import json, sys
events = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
run = [e for e in events if e["event"] == "run"][-1]
v = run.get(sys.argv[2], "")
print(json.dumps(v) if isinstance(v, (dict, list, bool)) else v)
EOF
}

test_select_leaf_recomputes_only_the_leaf() {
  write_pipeline p true
  expect_exit 0 "$R" run p/pipeline.toml
  local other_before
  other_before="$(md5sum <p/out/other.csv)"
  edit p by_g
  edit p other  # edited too, but not selected: stays stale, its output untouched
  expect_exit 0 "$R" --json run p/pipeline.toml --select by_g
  [ "$(computed out.txt)" = "by_g" ] || { echo "computed: $(computed out.txt)"; cat out.txt; return 1; }
  [ "$(run_field out.txt result)" = partial ] || { echo "result: $(run_field out.txt result)"; return 1; }
  [ -z "$(run_field out.txt gc)" ] || { echo "a partial run collected garbage"; cat out.txt; return 1; }
  [ "$(event_of out.txt stage other)" = "skipped: not selected" ] ||
    { echo "other: $(event_of out.txt stage other)"; return 1; }
  [ "$(event_of out.txt output other_out)" = "written=False selected=False" ] ||
    { echo "other_out: $(event_of out.txt output other_out)"; return 1; }
  [ "$(md5sum <p/out/other.csv)" = "$other_before" ] || { echo "other_out was rewritten"; return 1; }
  # by_g_out equals a clean full run of the same edit (other_out aside, which --select left old).
  write_pipeline clean true
  edit clean by_g
  expect_exit 0 "$R" run clean/pipeline.toml
  snapshot_outputs clean/pipeline.toml ref
  snapshot_outputs p/pipeline.toml got
  diff ref/by_g_out.csv got/by_g_out.csv
  # --fresh with --select recomputes the selection alone.
  expect_exit 0 "$R" --json run p/pipeline.toml --select by_g --fresh
  [ "$(computed out.txt)" = "by_g" ] || { echo "--fresh --select computed: $(computed out.txt)"; return 1; }
  # A whole run then computes only the stale stage left out; every output equals the clean run's.
  edit clean other
  expect_exit 0 "$R" run clean/pipeline.toml
  snapshot_outputs clean/pipeline.toml ref2
  expect_exit 0 "$R" --json run p/pipeline.toml
  [ "$(computed out.txt)" = "other" ] || { echo "the full run computed: $(computed out.txt)"; return 1; }
  [ "$(run_field out.txt result)" = "done" ] || { echo "result: $(run_field out.txt result)"; return 1; }
  [ -n "$(run_field out.txt gc)" ] || { echo "the whole run did no GC"; cat out.txt; return 1; }
  compare_outputs p/pipeline.toml ref2
}

test_exclude_and_plain_output() {
  write_pipeline p true
  expect_exit 0 "$R" run p/pipeline.toml
  edit p by_g
  edit p other
  expect_exit 0 "$R" run p/pipeline.toml --exclude by_g,by_g_out
  [ "$(stage_actions out.txt | grep computed)" = "other computed" ] || { cat out.txt; return 1; }
  grep -q '^stage by_g: skipped (not selected)$' out.txt || { cat out.txt; return 1; }
  grep -q '^output by_g_out: not selected, left as it is (' out.txt || { cat out.txt; return 1; }
  grep -q '^run [0-9a-f]* done (partial: --select, no gc) in ' out.txt || { cat out.txt; return 1; }
}

test_refused_when_a_selected_stage_needs_a_dropped_one() {
  write_pipeline p false
  # Nothing committed yet: refused, and nothing is written to the store (the local store's
  # folder is created when the store is opened).
  expect_exit 2 "$R" run p/pipeline.toml --select by_g
  grep -qF 'stage "by_g" reads "base", which is not selected' err.txt || { cat err.txt; return 1; }
  if [ -n "$(find p/.respawn -type f)" ]; then
    echo "a refused run wrote to the store:"; find p/.respawn -type f; return 1
  fi
  expect_exit 0 "$R" run p/pipeline.toml  # GC drops base (a work-table)
  edit p by_g
  local before
  before="$(store_digest p/.respawn)"
  expect_exit 2 "$R" run p/pipeline.toml --select by_g
  one_error_line
  grep -qxE 'respawn: stage "by_g" reads "base", which is not selected and has no current checkpoint \(dropped by GC after run [0-9a-f]{8} \(needed by by_g\)\); select it too \(--select \+by_g\) or run without --select' err.txt ||
    { cat err.txt; return 1; }
  if grep -q 'computed' out.txt; then echo "something was computed:"; cat out.txt; return 1; fi
  # Refused before the ledger is claimed: the store is as it was (a running run is not fenced).
  [ "$before" = "$(store_digest p/.respawn)" ] || { echo "the refused run changed the store"; return 1; }
  expect_exit 0 "$R" --json run p/pipeline.toml --select +by_g
  [ "$(computed out.txt)" = "base by_g gen" ] || { echo "computed: $(computed out.txt)"; return 1; }
}

test_unknown_names() {
  write_pipeline p true
  expect_exit 2 "$R" run p/pipeline.toml --select by_gg+
  one_error_line
  grep -qxF 'respawn: --select by_gg+: no source, stage or output is named "by_gg" (did you mean "by_g"?)' err.txt ||
    { cat err.txt; return 1; }
  expect_exit 2 "$R" run p/pipeline.toml --exclude 'base,tag:x'
  grep -qF '"tag:x" is not a selector; the forms are name, name+, +name and +name+' err.txt ||
    { cat err.txt; return 1; }
  [ ! -e p/.respawn ] || { echo "a refused selection created the store"; return 1; }
}

run test_select_leaf_recomputes_only_the_leaf
run test_exclude_and_plain_output
run test_refused_when_a_selected_stage_needs_a_dropped_one
run test_unknown_names
e2e_finish
