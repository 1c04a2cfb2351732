#!/usr/bin/env bash
# Damaged checkpoints and changed stages. After a good run on a local store, one checkpoint
# Parquet object is truncated, one has a byte flipped and one is deleted: the next run recomputes
# exactly those stages (with a reason naming the corrupt or missing checkpoint), never uses them,
# and writes outputs equal to the reference. A changed stage SQL recomputes that stage and what
# reads it, nothing else, and `respawn status` says why before the run.
#
# Usage: tests/pipeline_corruption_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

# base -> evens -> evens_sum -\
#     \-> highs  ---------> combined
write_pipeline() {  # DIR FACTOR: the pipeline in DIR, evens_sum multiplying by FACTOR
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<EOF
name = "damaged"

[sources.gen]
sql = "SELECT range AS id, range % 10 AS g FROM range(0, 20000)"

[stages.base]
sql = "SELECT id, g, id % 7 AS x FROM gen"

[stages.evens]
sql = "SELECT id, g, x + 1 AS x FROM base WHERE id % 2 = 0"

[stages.evens_sum]
sql = "SELECT g, sum(x) * $2 AS y FROM evens GROUP BY g"

[stages.highs]
sql = "SELECT g, count(*) AS n FROM base WHERE x > 3 GROUP BY g"

[stages.combined]
sql = """
SELECT r.g, r.n, l.y
FROM highs r
JOIN evens_sum l USING (g)
ORDER BY r.g
"""

[outputs.evens_out]
from = "evens"
path = "out/evens.parquet"

[outputs.highs_out]
from = "highs"
path = "out/highs.csv"

[outputs.combined_out]
from = "combined"
path = "out/combined.parquet"
EOF
}
export E2E_SORTED_OUTPUTS="evens_out highs_out"

# expected_combined FACTOR: the combined output computed in Python.
expected_combined() {
  "$PY" - "$1" <<'EOF'
import sys
f = int(sys.argv[1])
base = [(i, i % 10, i % 7) for i in range(20000)]
left = [(i, g, x + 1) for i, g, x in base if i % 2 == 0]
print("g,n,y")
for g in range(10):
    n = sum(1 for i, gg, x in base if gg == g and x > 3)
    ys = [x for i, gg, x in left if gg == g]
    if n and ys:  # an inner join: groups on both sides only
        print(f"{g},{n},{sum(ys) * f}")
EOF
}

# checkpoint_object STORE STAGE: the largest data object of STAGE's checkpoint.
checkpoint_object() {
  local dir="$1/pipelines/damaged/data/$2"
  [ -d "$dir" ] || { echo "no checkpoint data under $dir" >&2; find "$1" -type f >&2; return 1; }
  find "$dir" -type f -printf '%s %p\n' | sort -rn | head -n 1 | cut -d' ' -f2-
}

# action_of LOG STAGE: "computed" or "reused" (empty when the stage has no line).
action_of() {
  sed -n -E "s/^stage $2: (computed|reused).*/\\1/p" "$1" | head -n 1
}

good_run() {  # DIR: pipeline with factor 2, run once, reference outputs in DIR/ref
  write_pipeline "$1" 2
  expect_exit 0 "$R" run --no-gc "$1/pipeline.toml"
  snapshot_outputs "$1/pipeline.toml" "$1/ref"
  diff <(expected_combined 2) "$1/ref/combined_out.csv"
}

test_damaged_checkpoints_are_recomputed() {
  local d="$PWD/p" store="$PWD/p/.respawn"
  good_run "$d"
  local evens highs combined
  evens="$(checkpoint_object "$store" evens)"
  highs="$(checkpoint_object "$store" highs)"
  combined="$(checkpoint_object "$store" combined)"
  echo "truncating $evens; flipping a byte of $highs; deleting $combined"
  chmod u+w "$evens" "$highs" "$(dirname "$combined")" 2>/dev/null || true
  truncate -s $(($(stat -c %s "$evens") / 2)) "$evens"
  local size off byte
  size="$(stat -c %s "$highs")"
  off=$((size / 2))
  byte="$(od -An -tu1 -j "$off" -N1 "$highs" | tr -d ' ')"
  printf '%b' "\\0$(printf '%03o' $(((byte + 1) % 256)))" |
    dd of="$highs" bs=1 seek="$off" count=1 conv=notrunc status=none
  rm -f "$combined"
  # The outputs must be rewritten, so every damaged checkpoint is needed.
  rm -rf "$d/out"

  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  local bad=0
  if ! grep -Eq '^stage evens: computed.*\(.*checkpoint (corrupt|missing)' out.txt; then
    echo "evens (truncated checkpoint) was not recomputed with a 'checkpoint corrupt' reason"
    bad=1
  fi
  if ! grep -Eq '^stage highs: computed.*\(.*checkpoint corrupt' out.txt; then
    echo "highs (flipped byte) was not recomputed with a 'checkpoint corrupt' reason"
    bad=1
  fi
  # The full reason (naming the object) is said once: on the "started" line, not again when the
  # stage is computed nor as a warning on stderr.
  local said
  said="$(cat out.txt err.txt | grep -c 'data/highs/' || true)"
  if [ "$said" -ne 1 ]; then
    echo "highs' corrupt checkpoint was reported $said times, want once:"
    cat out.txt err.txt
    bad=1
  fi
  grep -q '^stage highs: started (checkpoint corrupt: object .*data/highs/' out.txt ||
    { echo "the started line does not give the full reason"; bad=1; }
  if ! grep -Eq '^stage combined: computed.*\(.*checkpoint missing' out.txt; then
    echo "combined (deleted object) was not recomputed with a 'checkpoint missing' reason"
    bad=1
  fi
  # Only what must be: base and evens_sum are intact and keep their checkpoints.
  local s
  for s in base evens_sum; do
    if [ "$(action_of out.txt "$s")" != reused ]; then
      echo "$s was recomputed although intact"
      bad=1
    fi
  done
  [ "$bad" -eq 0 ]
  compare_outputs "$d/pipeline.toml" "$d/ref"

  # The run after that reuses everything (the damage is repaired by the new checkpoints).
  rm -rf "$d/out"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  all_stages_reused "$d/pipeline.toml" out.txt
  compare_outputs "$d/pipeline.toml" "$d/ref"
}

test_json_names_damage() {
  local d="$PWD/p" store="$PWD/p/.respawn"
  good_run "$d"
  local obj
  obj="$(checkpoint_object "$store" highs)"
  truncate -s 10 "$obj"
  rm -rf "$d/out"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml" --json
  "$PY" - <<'EOF'
import json
events = [json.loads(l) for l in open("out.txt") if l.strip()]
stage = {e["name"]: e for e in events if e.get("event") == "stage"}
r = stage.get("highs")
assert r and r.get("action") == "computed", r
assert "corrupt" in r.get("reason", ""), r
assert stage["base"]["action"] == "reused", stage["base"]
EOF
  compare_outputs "$d/pipeline.toml" "$d/ref"
}

test_damaged_source_checkpoint_chain() {
  # The first stage's checkpoint damaged while every consumer must be recomputed anyway (--fresh
  # is not used: the consumers changed). The damaged one is recomputed, not read.
  local d="$PWD/p" store="$PWD/p/.respawn"
  good_run "$d"
  local obj
  obj="$(checkpoint_object "$store" base)"
  truncate -s 0 "$obj"
  sed -i 's/x + 1 AS x/x + 1 AS x, 0 AS unused/' "$d/pipeline.toml"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  grep -Eq '^stage base: computed.*checkpoint corrupt' out.txt ||
    { echo "base (emptied checkpoint) was not recomputed as corrupt"; return 1; }
  [ "$(action_of out.txt highs)" = reused ] || { echo "highs was recomputed; its input base has the same fingerprint"; return 1; }
  # evens has an extra column now; the others are as before.
  diff "$d/ref/highs_out.csv" <(table_csv --sort "$d/out/highs.csv")
  diff "$d/ref/combined_out.csv" <(table_csv "$d/out/combined.parquet")
}

test_changed_sql_recomputes_descendants_only() {
  local d="$PWD/p"
  good_run "$d"
  sed -i 's/sum(x) \* 2 AS y/sum(x) * 3 AS y/' "$d/pipeline.toml"
  grep -q 'sum(x) \* 3' "$d/pipeline.toml"

  # status says what a run would do, and why, before the run.
  expect_exit 0 "$R" status "$d/pipeline.toml"
  cat out.txt
  grep -Eiq 'changed sql|sql changed' <<<"$(grep -E '^evens_sum\b' out.txt)" ||
    { echo "status does not say evens_sum's SQL changed"; return 1; }
  grep -Eiq 'changed input evens_sum' <<<"$(grep -E '^combined\b' out.txt)" ||
    { echo "status does not say combined's input changed"; return 1; }
  local s line
  for s in base evens highs; do
    line="$(grep -E "^$s\\b" out.txt)" || { echo "status has no line for $s"; return 1; }
    if grep -Eiq 'changed|stale' <<<"$line"; then
      echo "status calls $s changed although it is not: $line"
      return 1
    fi
  done
  expect_exit 0 "$R" status "$d/pipeline.toml" --json
  "$PY" -c 'import json; json.load(open("out.txt"))' ||
    { echo "status --json is not one JSON document"; return 1; }
  grep -q 'evens_sum' out.txt

  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  grep -Eq '^stage evens_sum: computed .*\(changed SQL\)' out.txt ||
    { echo "evens_sum: want 'computed ... (changed SQL)'"; return 1; }
  grep -Eq '^stage combined: computed .*\(changed input evens_sum\)' out.txt ||
    { echo "combined: want 'computed ... (changed input evens_sum)'"; return 1; }
  for s in base evens highs; do
    [ "$(action_of out.txt $s)" = reused ] || { echo "$s was recomputed; nothing it reads changed"; return 1; }
  done
  diff <(expected_combined 3) <(table_csv "$d/out/combined.parquet")
  diff "$d/ref/evens_out.csv" <(table_csv --sort "$d/out/evens.parquet")

  # Status afterwards: everything committed, the last run's reasons shown.
  expect_exit 0 "$R" status "$d/pipeline.toml"
  cat out.txt
  if grep -Eiq 'stale|missing' out.txt; then
    echo "status still reports stale or missing stages after the run"
    return 1
  fi
  # Back to the original SQL: the outputs are the reference again.
  sed -i 's/sum(x) \* 3 AS y/sum(x) * 2 AS y/' "$d/pipeline.toml"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  for s in base evens highs; do
    [ "$(action_of out.txt $s)" = reused ] || { echo "$s was recomputed after reverting evens_sum"; return 1; }
  done
  compare_outputs "$d/pipeline.toml" "$d/ref"
}

test_changed_param_and_fresh() {
  local d="$PWD/p"
  good_run "$d"
  # --fresh recomputes everything, says so, and gives the same outputs.
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml" --fresh
  cat out.txt
  local s
  for s in base evens evens_sum highs combined; do
    grep -Eq "^stage $s: computed .*\\(--fresh\\)" out.txt || { echo "$s: want 'computed ... (--fresh)'"; return 1; }
  done
  compare_outputs "$d/pipeline.toml" "$d/ref"
  # A changed source recomputes everything that reads it.
  sed -i 's/range(0, 20000)/range(0, 20001)/' "$d/pipeline.toml"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  for s in base evens evens_sum highs combined; do
    [ "$(action_of out.txt $s)" = computed ] || { echo "$s was reused after its source changed"; return 1; }
  done
  grep -Eq '^stage base: computed .*\(changed input gen\)' out.txt ||
    { echo "base: want 'computed ... (changed input gen)'"; return 1; }
}

test_tampered_outputs_are_rewritten() {
  # Outputs changed or removed behind respawn's back are written again from the checkpoints.
  local d="$PWD/p"
  good_run "$d"
  printf 'garbage\n' >"$d/out/highs.csv"
  head -c 100 /dev/urandom >"$d/out/combined.parquet"
  rm "$d/out/evens.parquet"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  all_stages_reused "$d/pipeline.toml" out.txt
  compare_outputs "$d/pipeline.toml" "$d/ref"
}

run test_damaged_checkpoints_are_recomputed
run test_tampered_outputs_are_rewritten
run test_json_names_damage
run test_damaged_source_checkpoint_chain
run test_changed_sql_recomputes_descendants_only
run test_changed_param_and_fresh
e2e_finish
