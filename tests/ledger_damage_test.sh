#!/usr/bin/env bash
# A damaged ledger is not a dead end. On a local store, after a pipeline has run several times
# (so the ledger holds claims, commits, run reports, a snapshot and a head hint):
#   - a bit flipped in the last commit record makes `respawn run` refuse with exit 1, naming
#     `respawn verify` and `respawn repair`; `verify` lists the record (exit 1) and what it held;
#     `repair` without --yes changes nothing; `repair --yes` then `run` gives outputs identical
#     to a clean run, and `verify` is clean again;
#   - the same for each single ledger object damaged (one bit flipped) or deleted: records at
#     the start, middle and end of the chain, the snapshot, head.json: `repair --yes` + `run`
#     always end with the reference outputs, and a second `repair` finds nothing to do;
#   - a damaged checkpoint (data object) is reported by `verify` and recomputed by `run`;
#   - temporary files a killed writer left in the store go with `respawn gc` once older than
#     orphan_grace (and not before).
#
# Usage: tests/ledger_damage_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

write_pipeline() { # DIR GRACE
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<EOF
name = "dmg"

[gc]
orphan_grace = "${2:-1h}"

[sources.gen]
sql = "SELECT range AS id, range % 13 AS g FROM range(0, 20000)"

[stages.base]
sql = "SELECT id, g, id % 7 AS x FROM gen"

[stages.by_g]
sql = "SELECT g, sum(x) AS s, count(*) AS n FROM base GROUP BY g ORDER BY g"

[stages.top]
sql = "SELECT g, s FROM by_g ORDER BY s DESC, g LIMIT 5"

[outputs.by_g_out]
from = "by_g"
path = "out/by_g.parquet"

[outputs.top_out]
from = "top"
path = "out/top.csv"
EOF
}

LEDGER=p/.respawn/pipelines/dmg/ledger

# flip_bit FILE: flips one bit in the middle of FILE.
flip_bit() {
  "$PY" - "$1" <<'EOF'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0x04
open(p, "wb").write(bytes(b))
EOF
}

# A store after enough runs to hold a snapshot (every 64 records), and the reference outputs.
prepare() {
  write_pipeline p
  expect_exit 0 "$R" run p/pipeline.toml
  snapshot_outputs p/pipeline.toml ref

  for _ in $(seq 1 10); do
    expect_exit 0 "$R" run p/pipeline.toml --fresh
  done
  ls "$LEDGER"/snap/*.json >/dev/null
  ls "$LEDGER"/head.json >/dev/null
}

# repair_then_run: `repair --yes`, then `run`, must give the reference outputs; a second repair
# finds nothing; verify is clean.
repair_then_run() {
  expect_exit 0 "$R" repair p/pipeline.toml --yes
  expect_exit 0 "$R" run p/pipeline.toml
  compare_outputs p/pipeline.toml ref
  expect_exit 0 "$R" repair p/pipeline.toml
  grep -q 'nothing to repair' out.txt
  expect_exit 0 "$R" verify p/pipeline.toml
  grep -q '^verify: OK' out.txt
}

test_bit_flip_in_the_last_record() {
  prepare
  local last
  last="$(find "$LEDGER/rec" -name '*.json' | sort | tail -n 1)"
  flip_bit "$last"
  expect_exit 1 "$R" run p/pipeline.toml
  grep -q 'failed verification' err.txt
  grep -q 'respawn repair p/pipeline.toml' err.txt
  expect_exit 1 "$R" status p/pipeline.toml
  grep -q 'respawn verify p/pipeline.toml' err.txt
  expect_exit 1 "$R" verify p/pipeline.toml
  grep -q "damaged record .*$(basename "$last")" out.txt
  grep -q 'it held: run/' out.txt # the last record is the previous run's report
  local before
  before="$(store_digest p/.respawn)"
  expect_exit 0 "$R" repair p/pipeline.toml
  grep -q 'nothing was changed' out.txt
  [ "$before" = "$(store_digest p/.respawn)" ] || {
    echo "repair without --yes changed the store"
    return 1
  }
  repair_then_run
}

# Each single ledger object damaged or deleted, each in a fresh copy of the prepared store.
test_any_single_damaged_or_missing_ledger_object() {
  prepare
  cp -a p pristine
  local -a records targets
  mapfile -t records < <(find "$LEDGER/rec" -name '*.json' | sort)
  local n=${#records[@]}
  targets=("${records[0]}" "${records[1]}" "${records[$((n / 2))]}" "${records[$((n - 2))]}"
    "${records[$((n - 1))]}" "$LEDGER/head.json")
  mapfile -t -O "${#targets[@]}" targets < <(find "$LEDGER/snap" -name '*.json' | sort)
  local target how rel
  for target in "${targets[@]}"; do
    rel="${target#p/}"
    for how in flip delete; do
      echo "--- $how $rel"
      rm -rf p
      cp -a pristine p
      if [ "$how" = flip ]; then flip_bit "p/$rel"; else rm "p/$rel"; fi
      repair_then_run || {
        echo "after $how of $rel"
        return 1
      }
    done
  done
}

test_damaged_checkpoint_is_reported_and_recomputed() {
  write_pipeline p
  expect_exit 0 "$R" run p/pipeline.toml
  snapshot_outputs p/pipeline.toml ref
  local obj
  obj="$(find p/.respawn/pipelines/dmg/data/by_g -type f -name '*.parquet' | head -n 1)"
  flip_bit "$obj"
  expect_exit 1 "$R" verify p/pipeline.toml
  grep -q 'stage/by_g' out.txt
  grep -q '1 damaged or missing' out.txt
  rm -f p/out/by_g.parquet # make the output need the checkpoint
  expect_exit 0 "$R" run p/pipeline.toml
  grep -q '^stage by_g: computed.*checkpoint corrupt' out.txt
  compare_outputs p/pipeline.toml ref
  expect_exit 0 "$R" verify p/pipeline.toml
}

test_gc_sweeps_temporary_files_of_killed_writers() {
  # (orphan_grace, but never less than a minute: a live writer locks its file just after making it)
  write_pipeline p 30s
  expect_exit 0 "$R" run p/pipeline.toml
  # What a writer killed between creating its temporary file and publishing it leaves behind.
  local dir=p/.respawn/pipelines/dmg/data/by_g
  echo partial >"$dir/.respawn-tmp-deadbeef00000001"
  echo partial >"$LEDGER/rec/.respawn-tmp-deadbeef00000002"
  expect_exit 0 "$R" gc p/pipeline.toml
  [ -f "$dir/.respawn-tmp-deadbeef00000001" ] || {
    echo "a temporary file younger than orphan_grace was deleted"
    return 1
  }
  touch -d '1 hour ago' "$dir/.respawn-tmp-deadbeef00000001" "$LEDGER/rec/.respawn-tmp-deadbeef00000002"
  expect_exit 0 "$R" gc --dry-run p/pipeline.toml
  grep -q '2 abandoned temporary files' out.txt
  [ -f "$dir/.respawn-tmp-deadbeef00000001" ]
  expect_exit 0 "$R" gc p/pipeline.toml
  grep -q '2 abandoned temporary files' out.txt
  if [ -e "$dir/.respawn-tmp-deadbeef00000001" ] || [ -e "$LEDGER/rec/.respawn-tmp-deadbeef00000002" ]; then
    echo "gc left old temporary files"
    return 1
  fi
  expect_exit 0 "$R" run p/pipeline.toml
}

run test_bit_flip_in_the_last_record
run test_any_single_damaged_or_missing_ledger_object
run test_damaged_checkpoint_is_reported_and_recomputed
run test_gc_sweeps_temporary_files_of_killed_writers
e2e_finish
