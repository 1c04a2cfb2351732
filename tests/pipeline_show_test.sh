#!/usr/bin/env bash
# `respawn show`: a committed checkpoint's rows as a table, CSV and JSON, a query over them, and
# the errors a user meets (unknown stage with a did-you-mean, a stage GC dropped, a store that
# does not exist). The CSV of a whole checkpoint equals the stage's output file as read by an
# independent Parquet reader (hyparquet), row for row; show writes nothing to the store.
#
# Usage: tests/pipeline_show_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

write_pipeline() {
  mkdir -p p
  cat >p/pipeline.toml <<'TOML'
name = "shown"

# work-tables go as soon as a run finished: `show` of one GC dropped is an error checked below
[gc]
work_tables_ttl = "0"

[sources.gen]
sql = "SELECT range AS id, range % 5 AS g, 'name ' || range AS label FROM range(0, 300)"

[stages.base]
sql = "SELECT id, g, label FROM gen WHERE id % 3 <> 0"

[stages.by_g]
sql = "SELECT g, count(*) AS n, sum(id) AS total FROM base GROUP BY g ORDER BY g"

[outputs.by_g_out]
from = "by_g"
path = "out/by_g.parquet"
TOML
}

test_show_formats_and_query() {
  write_pipeline
  expect_exit 0 "$R" run p/pipeline.toml
  local before
  before="$(store_digest p/.respawn)"
  expect_exit 0 "$R" show p/pipeline.toml by_g
  grep -Eq '^\| g +\| n +\| total +\|$' out.txt
  grep -Eq '^\| +0 \| +40 \| +6000 \|$' out.txt
  grep -q '^5 of 5 rows of stage by_g' out.txt
  # The whole checkpoint as CSV equals the output file, read by another Parquet reader. (JSON
  # keeps HUGEINT and DECIMAL values exact, as strings.)
  expect_exit 0 "$R" show p/pipeline.toml by_g --limit 0 --format csv
  cp out.txt shown.csv
  table_csv p/out/by_g.parquet >file.csv
  diff shown.csv file.csv
  expect_exit 0 "$R" --json show p/pipeline.toml by_g --limit 2
  "$PY" -c 'import json; rows = [json.loads(l) for l in open("out.txt")]; assert rows == [{"g": 0, "n": 40, "total": "6000"}, {"g": 1, "n": 40, "total": "5940"}], rows'
  expect_exit 0 "$R" show p/pipeline.toml by_g --sql "SELECT sum(n) AS rows_kept FROM by_g"
  grep -Eq '^\| +200 \|$' out.txt
  [ "$before" = "$(store_digest p/.respawn)" ] || { echo "show changed the store"; return 1; }
}

test_show_errors() {
  write_pipeline
  expect_exit 1 "$R" show p/pipeline.toml by_g
  grep -q 'does not exist yet' err.txt
  [ ! -e p/.respawn ] || { echo "show created the store"; return 1; }
  expect_exit 0 "$R" run p/pipeline.toml
  expect_exit 2 "$R" show p/pipeline.toml by_gg
  grep -q 'no stage or generated source is named "by_gg" (did you mean "by_g"?)' err.txt
  # base is a work-table: GC dropped it after the run.
  expect_exit 1 "$R" show p/pipeline.toml base
  grep -q 'has no committed checkpoint' err.txt
  expect_exit 2 "$R" show p/pipeline.toml by_g --sql "SELECT nope FROM by_g"
  grep -q 'nope' err.txt
}

run test_show_formats_and_query
run test_show_errors
e2e_finish
