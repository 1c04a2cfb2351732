#!/usr/bin/env bash
# respawn-test-servers: radosgw
#
# A checkpoint describes exactly what it read, end to end:
#   - a source changed between the run's fingerprint and its read (the run is stopped at the
#     pause point runner:before-read, the file is changed, the run continues): a rewritten file
#     fails the stage that read it, naming the file, and commits nothing from it; a file added
#     to a glob is not read; on radosgw a replaced object fails its download (If-Match) and an
#     added object is not read. In every case the next run, after the sources are put back,
#     gives outputs equal to a --fresh run over the current files, row for row;
#   - files read inside stage SQL (read_parquet('plans.parquet'), FROM 'data.csv') are
#     fingerprinted: an edit recomputes the stage and what reads it ("changed file data.csv"),
#     and status says so first; relative paths are the pipeline file's folder's, whatever the
#     current directory; a path that is not a literal is refused with exit 2;
#   - one pipeline name, one owner: a copy of a pipeline file in another folder, same name, same
#     store, is refused (run and gc, exit 2) and deletes nothing; --adopt moves ownership.
#
# Usage: tests/pipeline_sources_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
# The radosgw cases need RESPAWN_TEST_S3_ENV_RADOSGW (ctest's fixture sets it); without it they
# are skipped, unless CI=true, where that is a failure.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

# start_paused OUT ERR cmd...: runs cmd in the background, stopped by respawn at the pause point
# runner:before-read (before the first stage reads anything, after every fingerprint); returns
# once it is stopped there. PAUSED_PID is its pid.
start_paused() {
  local out="$1" err="$2"
  shift 2
  RESPAWN_PAUSE_AT=runner:before-read "$@" >"$out" 2>"$err" &
  PAUSED_PID=$!
  local state i
  # Bounded so that a run that never pauses fails the test instead of hanging it.
  for i in $(seq 1 3000); do
    state="$(awk '{print $3}' "/proc/$PAUSED_PID/stat" 2>/dev/null || echo gone)"
    if [ "$state" = T ]; then
      grep -q 'paused at runner:before-read' "$err" || { echo "stopped, but not at the pause point"; cat "$err"; return 1; }
      return 0
    fi
    if [ "$state" = gone ] || [ "$state" = Z ]; then
      echo "the run ended before its pause point (loop $i):"
      cat "$out" "$err"
      return 1
    fi
    sleep 0.1
  done
  echo "the run did not reach its pause point"
  return 1
}

# finish_paused: lets the paused run continue and waits for it; PAUSED_RC is its exit code.
finish_paused() {
  kill -CONT "$PAUSED_PID"
  set +e
  wait "$PAUSED_PID"
  PAUSED_RC=$?
  set -e
}

# fresh_equals PIPELINE: the outputs as they are now equal those of a --fresh run, row for row.
fresh_equals() {
  local ref="$PWD/ref.$RANDOM"
  snapshot_outputs "$1" "$ref"
  expect_exit 0 "$R" run --no-gc --fresh "$1"
  compare_outputs "$1" "$ref"
}

# orders FILE N SEED: a CSV of N orders.
orders() {
  "$PY" - "$1" "$2" "$3" <<'EOF'
import sys
path, n, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    f.write("id,customer,amount\n")
    for i in range(n):
        f.write(f"{i + seed * 1000},c{(i * 7 + seed) % 5},{(i * 13 + seed) % 100}\n")
EOF
}

write_source_pipeline() {  # DIR PATH: a pipeline reading the file source PATH
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<EOF
name = "sources"

[sources.orders]
path = "$2"
options = { header = true }

[stages.by_customer]
sql = "SELECT customer, count(*) AS n, sum(amount) AS total FROM orders GROUP BY customer ORDER BY customer"

[outputs.report]
from = "by_customer"
path = "out/report.csv"
EOF
}

test_local_source_rewritten_during_run() {
  local d="$PWD/p"
  mkdir -p "$d/data"
  orders "$d/data/orders.csv" 200 1
  cp "$d/data/orders.csv" original.csv
  write_source_pipeline "$d" data/orders.csv

  start_paused out1.txt err1.txt "$R" run --no-gc "$d/pipeline.toml"
  orders "$d/data/orders.csv" 300 2  # rewritten in place between fingerprint and read
  finish_paused
  cat out1.txt err1.txt
  [ "$PAUSED_RC" -eq 1 ] || { echo "want exit 1 for a source changed during the run, got $PAUSED_RC"; return 1; }
  grep -q "file $d/data/orders.csv changed while this run read it" err1.txt ||
    { echo "the error does not name the changed file"; return 1; }
  grep -q 'stage "by_customer"' err1.txt || { echo "the error does not name the stage"; return 1; }
  expect_exit 0 "$R" status "$d/pipeline.toml"
  grep -Eq '^by_customer +missing' out.txt || { echo "a checkpoint was committed:"; cat out.txt; return 1; }

  # The producer puts the original back: the same fingerprint as the interrupted run's.
  cp original.csv "$d/data/orders.csv"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  fresh_equals "$d/pipeline.toml"
  diff <(table_csv "$d/out/report.csv") <(
    "$PY" - original.csv <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
print("customer,n,total")
for c in sorted({r["customer"] for r in rows}):
    mine = [int(r["amount"]) for r in rows if r["customer"] == c]
    print(f"{c},{len(mine)},{sum(mine)}")
EOF
  )
}

test_local_glob_gains_a_file_during_run() {
  local d="$PWD/p"
  mkdir -p "$d/data"
  orders "$d/data/a.csv" 100 1
  orders "$d/data/b.csv" 100 2
  write_source_pipeline "$d" 'data/*.csv'

  start_paused out1.txt err1.txt "$R" run --no-gc "$d/pipeline.toml"
  orders "$d/data/c.csv" 500 3  # matches the glob, after the listing
  finish_paused
  cat out1.txt err1.txt
  [ "$PAUSED_RC" -eq 0 ] || { echo "the run failed ($PAUSED_RC)"; return 1; }
  # Only the two files listed were read.
  [ "$(table_csv "$d/out/report.csv" | awk -F, 'NR > 1 { n += $2 } END { print n }')" = 200 ] ||
    { echo "the run read a file that was not fingerprinted:"; table_csv "$d/out/report.csv"; return 1; }

  rm "$d/data/c.csv"
  rm -rf "$d/out"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  grep -Eq '^stage by_customer: reused' out.txt || { echo "by_customer was not reused"; return 1; }
  fresh_equals "$d/pipeline.toml"
}

write_sql_files_pipeline() {  # DIR
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<'EOF'
name = "sqlfiles"

[stages.joined]
sql = """
SELECT d.customer, d.amount * p.factor AS weighted
FROM 'data.csv' d
JOIN read_parquet('plans.parquet') p USING (customer)
"""

[stages.summary]
sql = "SELECT customer, sum(weighted) AS total FROM joined GROUP BY customer ORDER BY customer"

[stages.other]
sql = "SELECT 42 AS answer"

[outputs.summary_out]
from = "summary"
path = "out/summary.csv"

[outputs.other_out]
from = "other"
path = "out/other.csv"
EOF
}

# sql_files_data DIR SEED: data.csv and plans.parquet in DIR.
sql_files_data() {
  orders "$1/data.csv" 50 "$2"
  printf 'customer,factor\nc0,1\nc1,2\nc2,3\nc3,4\nc4,5\n' >"$1/plans.csv"
  # plans.parquet through DuckDB itself: a one-stage pipeline writing it as an output.
  mkdir -p "$1/mk"
  cat >"$1/mk/pipeline.toml" <<EOF
name = "mkplans"
[sources.plans]
path = "$1/plans.csv"
options = { header = true }
[outputs.parquet]
from = "plans"
path = "$1/plans.parquet"
EOF
  "$R" run --no-gc "$1/mk/pipeline.toml" >/dev/null
}

test_sql_files_edited_between_runs() {
  local d="$PWD/p"
  mkdir -p "$d"
  sql_files_data "$d" 1
  write_sql_files_pipeline "$d"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt

  orders "$d/data.csv" 60 2
  expect_exit 0 "$R" status "$d/pipeline.toml"
  cat out.txt
  grep -E '^joined ' out.txt | grep -q 'changed file data.csv' ||
    { echo "status does not say joined's file data.csv changed"; return 1; }
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  grep -Eq '^stage joined: computed .*\(changed file data\.csv\)' out.txt ||
    { echo "joined: want 'computed ... (changed file data.csv)'"; return 1; }
  grep -Eq '^stage summary: computed .*\(changed input joined\)' out.txt ||
    { echo "summary (reads joined) was not recomputed"; return 1; }
  grep -Eq '^stage other: reused' out.txt || { echo "other (reads no file) was recomputed"; return 1; }
  fresh_equals "$d/pipeline.toml"

  # The Parquet file too, and nothing when nothing changed.
  cp "$d/plans.parquet" plans.keep
  printf 'customer,factor\nc0,10\nc1,2\nc2,3\nc3,4\nc4,5\n' >"$d/plans.csv"
  "$R" run --no-gc "$d/mk/pipeline.toml" >/dev/null
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  grep -Eq '^stage joined: computed .*\(changed file plans\.parquet\)' out.txt ||
    { echo "joined: want 'computed ... (changed file plans.parquet)'"; return 1; }
  fresh_equals "$d/pipeline.toml"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  all_stages_reused "$d/pipeline.toml" out.txt
}

test_sql_files_relative_to_the_pipeline_file() {
  local d="$PWD/p"
  mkdir -p "$d"
  sql_files_data "$d" 1
  write_sql_files_pipeline "$d"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  snapshot_outputs "$d/pipeline.toml" "$PWD/ref"
  # Elsewhere, with decoys of the same names in the current directory.
  mkdir -p elsewhere
  sql_files_data "$PWD/elsewhere" 7
  rm -rf "$d/out"
  (cd elsewhere && expect_exit 0 "$R" run --no-gc --fresh "$d/pipeline.toml")
  compare_outputs "$d/pipeline.toml" "$PWD/ref"
}

test_sql_file_changed_during_run() {
  local d="$PWD/p"
  mkdir -p "$d"
  sql_files_data "$d" 1
  cp "$d/data.csv" original.csv
  write_sql_files_pipeline "$d"
  start_paused out1.txt err1.txt "$R" run --no-gc "$d/pipeline.toml"
  orders "$d/data.csv" 80 5
  finish_paused
  cat out1.txt err1.txt
  [ "$PAUSED_RC" -eq 1 ] || { echo "want exit 1, got $PAUSED_RC"; return 1; }
  grep -q "file $d/data.csv changed while this run read it" err1.txt ||
    { echo "the error does not name data.csv"; return 1; }
  cp original.csv "$d/data.csv"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  fresh_equals "$d/pipeline.toml"
}

test_sql_file_not_named_by_a_literal_is_refused() {
  mkdir -p p
  cat >p/pipeline.toml <<'EOF'
name = "dynamic"

[stages.x]
sql = "SELECT * FROM read_csv('da' || 'ta.csv')"
EOF
  expect_exit 2 "$R" run p/pipeline.toml
  cat err.txt
  grep -q 'pipeline.toml:4: stage "x": read_csv(a function)' err.txt
  grep -q 'declare a \[sources.<name>\]' err.txt
  [ ! -e p/.respawn ] || { echo "the refused run created a store"; return 1; }
}

write_owned_pipeline() {  # DIR STORE
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<EOF
name = "shared"
store = "$2"

[sources.gen]
sql = "SELECT range AS id FROM range(1000)"

[stages.evens]
sql = "SELECT id FROM gen WHERE id % 2 = 0"

[stages.total]
sql = "SELECT sum(id) AS s FROM evens"

[outputs.total_out]
from = "total"
path = "out/total.csv"
EOF
}

test_one_name_one_owner() {
  local store="$PWD/store"
  write_owned_pipeline "$PWD/prod" "$store"
  write_owned_pipeline "$PWD/dev" "$store"
  sed -i 's/id % 2 = 0/id % 2 = 1/' dev/pipeline.toml  # a dev edit: another result

  expect_exit 0 "$R" run prod/pipeline.toml
  snapshot_outputs prod/pipeline.toml "$PWD/ref"
  store_digest "$store" >before.txt
  expect_exit 2 "$R" run dev/pipeline.toml
  cat err.txt
  grep -q "belongs to $PWD/prod/pipeline.toml" err.txt || { echo "the refusal does not name the owner"; return 1; }
  grep -q -- '--adopt' err.txt || { echo "the refusal does not name --adopt"; return 1; }
  expect_exit 2 "$R" gc dev/pipeline.toml
  grep -q "belongs to $PWD/prod/pipeline.toml" err.txt
  store_digest "$store" >after.txt
  diff before.txt after.txt || { echo "a refused run or gc changed the store"; return 1; }
  [ ! -e dev/out ] || { echo "the refused run wrote an output"; return 1; }

  expect_exit 0 "$R" status prod/pipeline.toml
  grep -q "^owner: $PWD/prod/pipeline.toml (id [0-9a-f]\{8\}, since .*), this file" out.txt ||
    { echo "status does not show the owner:"; cat out.txt; return 1; }
  expect_exit 0 "$R" status dev/pipeline.toml
  grep -q "^owner: $PWD/prod/pipeline.toml .*NOT this file" out.txt ||
    { echo "status from the copy does not say it is not the owner:"; cat out.txt; return 1; }
  expect_exit 0 "$R" status prod/pipeline.toml --json
  "$PY" - "$PWD/prod/pipeline.toml" <<'EOF'
import json, sys
owner = json.load(open("out.txt"))["owner"]
assert owner["path"] == sys.argv[1] and owner["this_file"] is True, owner
EOF

  # The owner's results are intact: reused (its work-table evens went with its own GC).
  expect_exit 0 "$R" run prod/pipeline.toml
  grep -q '^stage total: reused' out.txt || { echo "total was not reused"; cat out.txt; return 1; }
  compare_outputs prod/pipeline.toml "$PWD/ref"

  # Moved: refused until adopted; adopting reuses what the old file committed.
  mv prod moved
  expect_exit 2 "$R" run moved/pipeline.toml
  grep -q "belongs to $PWD/prod/pipeline.toml" err.txt
  expect_exit 0 "$R" run moved/pipeline.toml --adopt
  cat out.txt
  grep -q '^stage total: reused' out.txt || { echo "total was not reused after --adopt"; return 1; }
  expect_exit 0 "$R" status moved/pipeline.toml
  grep -q "^owner: $PWD/moved/pipeline.toml .*this file" out.txt
  expect_exit 2 "$R" run dev/pipeline.toml
  grep -q "belongs to $PWD/moved/pipeline.toml" err.txt
  expect_exit 0 "$R" gc moved/pipeline.toml
}

# s3_env: loads radosgw's env; 1 (skip) without it, a failure with CI=true.
s3_env() {
  if [ -z "${RESPAWN_TEST_S3_ENV_RADOSGW:-}" ] || [ ! -r "$RESPAWN_TEST_S3_ENV_RADOSGW" ]; then
    if [ "${CI:-}" = true ]; then
      echo "CI=true and RESPAWN_TEST_S3_ENV_RADOSGW does not name a readable env file"
      exit 1
    fi
    echo "skipped: RESPAWN_TEST_S3_ENV_RADOSGW not set"
    return 1
  fi
  set -a
  # shellcheck disable=SC1090
  . "$RESPAWN_TEST_S3_ENV_RADOSGW"
  set +a
  unset AWS_PROFILE AWS_SESSION_TOKEN
  export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
}

test_s3_source_replaced_during_run() {
  s3_env || return 0
  local d="$PWD/p" url="s3://$RESPAWN_TEST_BUCKET/sources-$$-$RANDOM"
  E2E_CLEANUP+=("\"$R\" store rm -r \"$url/\"")
  mkdir -p "$d"
  orders a.csv 100 1
  orders b.csv 120 2
  orders replaced.csv 300 3
  "$R" store cp a.csv "$url/in/a.csv"
  "$R" store cp b.csv "$url/in/b.csv"
  write_source_pipeline "$d" "$url/in/*.csv"

  start_paused out1.txt err1.txt "$R" run --no-gc "$d/pipeline.toml"
  "$R" store cp replaced.csv "$url/in/a.csv"
  finish_paused
  cat out1.txt err1.txt
  [ "$PAUSED_RC" -eq 1 ] || { echo "want exit 1 for an object replaced during the run, got $PAUSED_RC"; return 1; }
  grep -q "in/a.csv changed since it was fingerprinted" err1.txt ||
    { echo "the error does not say in/a.csv changed since it was fingerprinted"; return 1; }
  expect_exit 0 "$R" status "$d/pipeline.toml"
  grep -Eq '^by_customer +missing' out.txt || { echo "a checkpoint was committed:"; cat out.txt; return 1; }

  "$R" store cp a.csv "$url/in/a.csv"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  fresh_equals "$d/pipeline.toml"
}

test_s3_source_gains_an_object_during_run() {
  s3_env || return 0
  local d="$PWD/p" url="s3://$RESPAWN_TEST_BUCKET/sources-$$-$RANDOM"
  E2E_CLEANUP+=("\"$R\" store rm -r \"$url/\"")
  mkdir -p "$d"
  orders a.csv 100 1
  orders b.csv 120 2
  orders c.csv 500 3
  "$R" store cp a.csv "$url/in/a.csv"
  "$R" store cp b.csv "$url/in/b.csv"
  write_source_pipeline "$d" "$url/in/*.csv"

  start_paused out1.txt err1.txt "$R" run --no-gc "$d/pipeline.toml"
  "$R" store cp c.csv "$url/in/c.csv"
  finish_paused
  cat out1.txt err1.txt
  [ "$PAUSED_RC" -eq 0 ] || { echo "the run failed ($PAUSED_RC)"; return 1; }
  [ "$(table_csv "$d/out/report.csv" | awk -F, 'NR > 1 { n += $2 } END { print n }')" = 220 ] ||
    { echo "the run read an object that was not fingerprinted:"; table_csv "$d/out/report.csv"; return 1; }

  "$R" store rm "$url/in/c.csv"
  rm -rf "$d/out"
  expect_exit 0 "$R" run --no-gc "$d/pipeline.toml"
  cat out.txt
  grep -Eq '^stage by_customer: reused' out.txt || { echo "by_customer was not reused"; return 1; }
  fresh_equals "$d/pipeline.toml"
}

run test_local_source_rewritten_during_run
run test_local_glob_gains_a_file_during_run
run test_sql_files_edited_between_runs
run test_sql_files_relative_to_the_pipeline_file
run test_sql_file_changed_during_run
run test_sql_file_not_named_by_a_literal_is_refused
run test_one_name_one_owner
run test_s3_source_replaced_during_run
run test_s3_source_gains_an_object_during_run
e2e_finish
