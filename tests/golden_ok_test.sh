#!/usr/bin/env bash
# End-to-end golden cases: every tests/golden/ok/<case>/ (see tests/golden/README.md) is run with
# `respawn run` in a scratch copy, and each [outputs.X] file, read back by an independent reader
# (hyparquet, tests/tools/read_table.mjs), must equal expected/X.csv row for row. A second run must
# reuse every checkpointed stage and leave the outputs equal; `--json` must print one JSON event
# per line.
#
# Usage: tests/golden_ok_test.sh path/to/respawn [CASE...]   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
SRC="${RESPAWN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
e2e_init "${1:-}"
shift || true
CASES_DIR="$SRC/tests/golden/ok"

# golden_case CASE: the whole check of one case directory.
golden_case() {
  local case_name="$1"
  cp -r "$CASES_DIR/$case_name" case
  rm -rf case/out case/.respawn
  local p=case/pipeline.toml

  # Outputs and expected files must match one to one.
  local outs expected
  outs="$(output_paths "$p" | cut -f1 | sort)"
  expected="$(find case/expected -maxdepth 1 -name '*.csv' -printf '%f\n' | sed 's/\.csv$//' | sort)"
  if [ "$outs" != "$expected" ]; then
    echo "outputs of pipeline.toml: [$outs]; expected files: [$expected]"
    return 1
  fi

  # First run: every checkpointed stage is computed (nothing to reuse), outputs are right.
  expect_exit 0 "$R" run --no-gc "$p"
  cat out.txt
  local s
  for s in $(stage_names "$p"); do
    if [[ " $(uncheckpointed_stages "$p" | tr '\n' ' ') " == *" $s "* ]]; then
      continue
    fi
    grep -Eq "^stage $s: computed .*\(" out.txt ||
      { echo "no 'stage $s: computed ... (reason)' line on the first run"; return 1; }
  done
  local name path bad=0
  while IFS=$'\t' read -r name path; do
    [ -f "$path" ] || { echo "output $name: $path was not written"; bad=1; continue; }
    case "$path" in
      *.parquet)
        if [ "$(head -c 4 "$path")" != PAR1 ] || [ "$(tail -c 4 "$path")" != PAR1 ]; then
          echo "output $name: $path is not a Parquet file"
          bad=1
        fi
        ;;
      *.csv)
        [ "$(head -c 4 "$path")" != PAR1 ] || { echo "output $name: $path is Parquet, not CSV"; bad=1; }
        ;;
      *) ;;  # other formats: only read back below
    esac
    table_csv "case/expected/$name.csv" >"want.$name.csv"
    if ! table_csv "$path" >"got.$name.csv"; then
      echo "output $name: the independent reader cannot read $path"
      bad=1
      continue
    fi
    if ! cmp -s "want.$name.csv" "got.$name.csv"; then
      echo "output $name ($path) differs from expected/$name.csv (< expected, > got):"
      diff "want.$name.csv" "got.$name.csv" || true
      bad=1
    fi
  done < <(output_paths "$p")
  [ "$bad" -eq 0 ] || return 1
  # No temporary files beside the outputs (they are written atomically).
  local strays
  strays="$(find "$(dirname "$(output_paths "$p" | head -n 1 | cut -f2)")" -type f |
    grep -v -E '\.(parquet|csv)$' || true)"
  [ -z "$strays" ] || { echo "files left beside the outputs: $strays"; return 1; }
  # The store is where the contract says.
  local pname
  pname="$(sed -n -E 's/^name *= *"([^"]+)".*/\1/p' "$p" | head -n 1)"
  if [ ! -d "case/.respawn/pipelines/$pname/ledger" ] || [ ! -d "case/.respawn/pipelines/$pname/data" ]; then
    echo "no case/.respawn/pipelines/$pname/{ledger,data}:"
    find case/.respawn | head -n 30
    return 1
  fi

  # ls and status see the run and every checkpoint.
  expect_exit 0 "$R" ls --store case/.respawn --json
  "$PY" - "$p" "$pname" <<'EOF'
import json, sys, tomllib
spec = tomllib.load(open(sys.argv[1], "rb"))
want = {k for k, v in spec.get("stages", {}).items() if v.get("checkpoint", True)}
listing = json.load(open("out.txt"))
mine = [x for x in listing if x["pipeline"] == sys.argv[2]]
assert len(mine) == 1, listing
assert [r["result"] for r in mine[0]["runs"]] == ["done"], mine[0]["runs"]
have = {c["stage"] for c in mine[0]["checkpoints"]}
assert want <= have, (want, have)
EOF
  expect_exit 0 "$R" status "$p" --json
  "$PY" - "$p" <<'EOF'
import json, sys, tomllib
spec = tomllib.load(open(sys.argv[1], "rb"))
want = {k for k, v in spec.get("stages", {}).items() if v.get("checkpoint", True)}
nodes = {n["name"]: n for n in json.load(open("out.txt"))["nodes"]}
for s in want:
    assert nodes[s]["state"] == "committed", nodes[s]
EOF

  # Second run: everything reused, outputs unchanged.
  snapshot_outputs "$p" ref
  expect_exit 0 "$R" run --no-gc "$p"
  cat out.txt
  all_stages_reused "$p" out.txt
  compare_outputs "$p" ref

  # JSON events: one object per line, a stage event for every checkpointed stage.
  expect_exit 0 "$R" run --no-gc "$p" --json
  "$PY" - "$p" <<'EOF'
import json, sys, tomllib
spec = tomllib.load(open(sys.argv[1], "rb"))
want = {k for k, v in spec.get("stages", {}).items() if v.get("checkpoint", True)}
seen = {}
for n, line in enumerate(open("out.txt"), 1):
    if not line.strip():
        continue
    try:
        ev = json.loads(line)
    except ValueError as e:
        sys.exit(f"--json line {n} is not JSON ({e}): {line!r}")
    if not isinstance(ev, dict) or "event" not in ev:
        sys.exit(f"--json line {n} has no \"event\": {line!r}")
    if ev["event"] == "stage":
        seen[ev["name"]] = ev
missing = want - set(seen)
if missing:
    sys.exit(f"no stage event for {sorted(missing)}; got {sorted(seen)}")
for name in want:
    if seen[name].get("action") != "reused":
        sys.exit(f"stage {name}: action {seen[name].get('action')!r} on a re-run, want 'reused'")
EOF
  compare_outputs "$p" ref
}

cases=("$@")
if [ "${#cases[@]}" -eq 0 ]; then
  for d in "$CASES_DIR"/*/; do cases+=("$(basename "$d")"); done
fi
[ "${#cases[@]}" -gt 0 ] || { echo "no cases in $CASES_DIR" >&2; exit 1; }
for c in "${cases[@]}"; do
  [[ "$c" =~ ^[A-Za-z0-9_]+$ ]] || { echo "bad case name $c" >&2; exit 2; }
  eval "golden_ok_$c() { golden_case $c; }"
  run "golden_ok_$c"
done
e2e_finish
