#!/usr/bin/env bash
# `respawn ls --runs` and `respawn restore`: the runs whose results [gc] keep_runs keeps, and an
# earlier run's outputs written again from its retained checkpoints. A restored output equals
# the output that run wrote, row for row (read by an independent Parquet reader, and the CSV
# output's own options kept); restore changes nothing in the store, and the next run sees the
# restored file is not the one it wrote and writes it again without recomputing a stage. `--to`
# writes elsewhere and leaves the output's file alone. Errors a user meets: an unknown run or
# output (exit 2, listing the restorable runs / a did-you-mean), a run whose results GC dropped
# after keep_runs newer runs, a data object deleted or corrupted in the store, a store that does
# not exist yet (exit 1, each with the fix).
#
# Usage: tests/pipeline_restore_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

write_pipeline() {
  mkdir -p p/data
  printf 'id,region,amount\n1,north,10\n2,south,20\n3,north,30\n4,east,40\n5,south,50\n' \
    >p/data/orders.csv
  cat >p/pipeline.toml <<'TOML'
name = "restored"

[gc]
keep_runs = 3

[sources.orders]
path = "data/orders.csv"
options = { header = true }

[stages.clean]
sql = "SELECT id, region, amount * ${factor} AS amount FROM orders ORDER BY id"
params = { factor = 1 }

[stages.by_region]
sql = '''
SELECT region, count(*) AS n, sum(amount) AS total,
       CAST(sum(amount) / 3 AS DECIMAL(18, 3)) AS third,
       TIMESTAMP '2024-01-01 00:00:00' + to_hours(count(*)) AS ts
FROM clean GROUP BY region ORDER BY region
'''

[outputs.regions]
from = "by_region"
path = "out/regions.parquet"

[outputs.rows]
from = "clean"
path = "out/clean.csv"
options = { delimiter = ";" }
TOML
}

# json_field EXPR: evaluates EXPR over the JSON in out.txt (bound to `j`) and prints it.
json_field() {
  "$PY" -c 'import json, sys; j = json.load(open("out.txt")); print(eval(sys.argv[1]))' "$1"
}

# two_runs: runs the pipeline, snapshots its outputs in first/, changes a source row, runs again
# (snapshot in second/); FIRST and SECOND are the run ids.
two_runs() {
  write_pipeline
  expect_exit 0 "$R" run p/pipeline.toml
  snapshot_outputs p/pipeline.toml first
  echo "6,north,60" >>p/data/orders.csv
  expect_exit 0 "$R" run p/pipeline.toml
  snapshot_outputs p/pipeline.toml second
  refute cmp -s first/regions.csv second/regions.csv
  expect_exit 0 "$R" --json ls p/pipeline.toml --runs
  FIRST="$(json_field 'j["runs"][1]["run_id"]')"
  SECOND="$(json_field 'j["runs"][0]["run_id"]')"
}

test_ls_runs_lists_what_restore_can_write() {
  two_runs
  [ "$(json_field 'len(j["runs"])')" = 2 ] || { cat out.txt; return 1; }
  [ "$(json_field 'j["keep_runs"]')" = 3 ]
  [ "$(json_field '[r["restorable"] for r in j["runs"]]')" = "[True, True]" ]
  [ "$(json_field 'sorted((o["output"], o["stage"], o["rows"]) for o in j["runs"][1]["outputs"])')" \
    = "[('regions', 'by_region', 3), ('rows', 'clean', 5)]" ] || { cat out.txt; return 1; }
  [ "$(json_field 'sorted(o["rows"] for o in j["runs"][0]["outputs"])')" = "[3, 6]" ]
  expect_exit 0 "$R" ls p/pipeline.toml --runs
  grep -Eq "^  ${SECOND:0:8}  .*  done  restorable$" out.txt
  grep -Eq "^  ${FIRST:0:8}  .*  done  restorable$" out.txt
  grep -Eq '^ +regions +from stage by_region +3 rows' out.txt
  grep -Eq '^ +rows +from stage clean +5 rows' out.txt
  # Without a pipeline file there is no keep_runs to judge by.
  expect_exit 2 "$R" ls p/.respawn --runs
  grep -q 'needs the pipeline file' err.txt
}

test_restore_brings_back_an_earlier_run() {
  two_runs
  local before
  before="$(store_digest p/.respawn)"
  expect_exit 0 "$R" restore p/pipeline.toml --run "${FIRST:0:8}"
  grep -q "^restored output regions as after run ${FIRST:0:8} .*: 3 rows from stage by_region" \
    out.txt
  grep -q "/p/out/clean.csv (the output's own path: its file was replaced)" out.txt
  compare_outputs p/pipeline.toml first
  head -n 1 p/out/clean.csv | grep -qx 'id;region;amount'
  [ "$before" = "$(store_digest p/.respawn)" ] || { echo "restore changed the store"; return 1; }
  # The ledger still records the newer files: the next run writes them again, recomputing nothing.
  expect_exit 0 "$R" run p/pipeline.toml
  grep -q '^output regions: written to ' out.txt
  grep -q '^output rows: written to ' out.txt
  nothing_recomputed p/pipeline.toml out.txt
  compare_outputs p/pipeline.toml second
  # --output picks one; the full id works as well as a prefix.
  expect_exit 0 "$R" --json restore p/pipeline.toml --run "$FIRST" --output regions
  [ "$(json_field '[o["output"] for o in j["outputs"]]')" = "['regions']" ]
  table_csv p/out/regions.parquet >got.csv
  diff first/regions.csv got.csv
  table_csv p/out/clean.csv >got.csv
  diff second/rows.csv got.csv
}

test_restore_to_elsewhere() {
  two_runs
  expect_exit 2 "$R" restore p/pipeline.toml --run "${FIRST:0:8}" --to elsewhere/r.parquet
  grep -q -- '--to writes one output; .*--output NAME' err.txt
  expect_exit 0 "$R" restore p/pipeline.toml --run "${FIRST:0:8}" --output regions \
    --to elsewhere/r.parquet
  grep -q " to /.*/elsewhere/r.parquet$" out.txt
  table_csv elsewhere/r.parquet >got.csv
  diff first/regions.csv got.csv
  compare_outputs p/pipeline.toml second
}

test_restore_errors() {
  write_pipeline
  expect_exit 1 "$R" restore p/pipeline.toml --run abc
  grep -q 'does not exist yet' err.txt
  [ ! -e p/.respawn ] || { echo "restore created the store"; return 1; }
  local ids=()
  for factor in 1 2 3 4; do
    expect_exit 0 "$R" run p/pipeline.toml --param "factor=$factor"
  done
  expect_exit 0 "$R" --json ls p/pipeline.toml --runs
  cp out.txt runs.json
  mapfile -t ids < <(json_field '"\n".join(r["run_id"] for r in j["runs"])')
  [ "${#ids[@]}" = 4 ]
  [ "$(json_field '[r["restorable"] for r in j["runs"]]')" = "[True, True, True, False]" ]
  expect_exit 0 "$R" ls p/pipeline.toml --runs
  grep -q "^  ${ids[3]:0:8}  .*  done  not restorable: GC dropped its results (\[gc\] keep_runs = 3" \
    out.txt
  # An unknown run and an unknown output: exit 2, naming what exists.
  expect_exit 2 "$R" restore p/pipeline.toml --run zzzz
  grep -q 'no finished run has the id "zzzz"; restorable runs, newest first: ' err.txt
  grep -q "${ids[1]:0:8}" err.txt
  expect_exit 2 "$R" restore p/pipeline.toml --run "${ids[0]}" --output regionz
  grep -q 'no output is named "regionz" (did you mean "regions"?)' err.txt
  # keep_runs = 3: the oldest run's results are gone (its objects deleted by GC).
  expect_exit 1 "$R" restore p/pipeline.toml --run "${ids[3]:0:8}"
  grep -q "run ${ids[3]:0:8} cannot be restored: GC dropped its results" err.txt
  local key
  cp runs.json out.txt
  key="$(json_field 'j["runs"][3]["outputs"][0]["objects"][0]')"
  [ ! -e "p/.respawn/$key" ] || { echo "$key is still in the store"; return 1; }
  # A data object deleted behind respawn's back, and one corrupted: exit 1 with the fix, and the
  # output's file is left as it was.
  snapshot_outputs p/pipeline.toml latest
  cp runs.json out.txt
  key="$(json_field '[o for o in j["runs"][2]["outputs"] if o["output"] == "regions"][0]["objects"][0]')"
  rm "p/.respawn/$key"
  expect_exit 1 "$R" restore p/pipeline.toml --run "${ids[2]:0:8}" --output regions
  grep -q 'output "regions" of run .*: its data object is gone from the store' err.txt
  grep -q 'respawn verify p/pipeline.toml' err.txt
  cp runs.json out.txt
  key="$(json_field '[o for o in j["runs"][1]["outputs"] if o["output"] == "regions"][0]["objects"][0]')"
  chmod u+w "p/.respawn/$key"
  "$PY" -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(40); b = f.read(1); f.seek(40); f.write(bytes([b[0] ^ 0xFF]))' \
    "p/.respawn/$key"
  expect_exit 1 "$R" restore p/pipeline.toml --run "${ids[1]:0:8}" --output regions
  grep -q 'its data object does not verify' err.txt
  compare_outputs p/pipeline.toml latest
}

run test_ls_runs_lists_what_restore_can_write
run test_restore_brings_back_an_earlier_run
run test_restore_to_elsewhere
run test_restore_errors
e2e_finish
