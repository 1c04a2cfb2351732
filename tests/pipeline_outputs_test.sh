#!/usr/bin/env bash
# Output options (`options = {...}` on [outputs.X]): a CSV output with its own delimiter and NULL
# string, a JSON output, a Parquet output with another codec. Each file is checked by a reader
# that shares no code with respawn or DuckDB (the bytes of the CSV, Python's json module, the
# hyparquet reader and its footer for the codec and row groups). Changing an output's options rewrites that
# output and only it, without recomputing the stage; a mistyped option is an error before any
# work, naming the option and the ones that exist; so is an output that cannot be written.
# Partitioned outputs (partition_by) are folders in hive layout holding exactly the stage's rows
# (read back by Python and hyparquet), replaced as a whole when the rows change.
#
# Usage: tests/pipeline_outputs_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

# write_pipeline CSV_OPTIONS: a pipeline with three outputs of one stage.
write_pipeline() {
  mkdir -p p
  cat >p/pipeline.toml <<TOML
name = "outs"

[sources.gen]
sql = "SELECT range AS id, CASE WHEN range % 2 = 0 THEN 'n' || range END AS label FROM range(0, 4)"

[stages.s]
sql = "SELECT id, label FROM gen ORDER BY id"

[outputs.semi]
from = "s"
path = "out/semi.csv"
options = $1

[outputs.lines]
from = "s"
path = "out/lines.json"

[stages.big]
sql = "SELECT range AS id, range % 7 AS g FROM range(0, 10000)"

[outputs.snappy]
from = "big"
path = "out/snappy.parquet"
options = { compression = "snappy", row_group_size = 1000 }
TOML
}

test_options_shape_the_files() {
  write_pipeline '{ delimiter = ";", null = "NA" }'
  expect_exit 0 "$R" run p/pipeline.toml
  printf 'id;label\n0;n0\n1;NA\n2;n2\n3;NA\n' >want.csv
  diff want.csv p/out/semi.csv
  "$PY" - p/out/lines.json <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
want = [{"id": 0, "label": "n0"}, {"id": 1, "label": None}, {"id": 2, "label": "n2"},
        {"id": 3, "label": None}]
assert rows == want, rows
PYEOF
  table_csv p/out/snappy.parquet >got.csv
  [ "$(wc -l <got.csv)" = 10001 ] || { echo "snappy.parquet: $(wc -l <got.csv) lines"; return 1; }
  [ "$(sed -n 10001p got.csv)" = 9999,3 ] || { sed -n 10001p got.csv; return 1; }
  "$NODE" --input-type=module - "${RESPAWN_NODE_READER_DIR:-$E2E_TOOLS/../../.deps/node-reader}" p/out/snappy.parquet <<'JSEOF'
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
const [dir, file] = process.argv.slice(2);
const { parquetMetadata } = await import(
  pathToFileURL(join(dir, 'node_modules/hyparquet/src/index.js')).href);
const buf = readFileSync(file);
const meta = parquetMetadata(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length));
const codecs = new Set(meta.row_groups.flatMap(g => g.columns.map(c => c.meta_data.codec)));
if (meta.row_groups.length < 2 || codecs.size !== 1 || !codecs.has('SNAPPY')) {
  console.error(`row groups ${meta.row_groups.length}, codecs ${[...codecs]}`);
  process.exit(1);
}
JSEOF
}

test_changed_options_rewrite_only_that_output() {
  write_pipeline '{ delimiter = ";" }'
  expect_exit 0 "$R" run p/pipeline.toml
  expect_exit 0 "$R" run p/pipeline.toml
  grep -q '^output semi: unchanged' out.txt
  write_pipeline '{ delimiter = "|" }'
  expect_exit 0 "$R" run p/pipeline.toml
  grep -q '^output semi: written' out.txt
  grep -q '^output lines: unchanged' out.txt
  grep -q '^output snappy: unchanged' out.txt
  nothing_recomputed p/pipeline.toml out.txt
  [ "$(head -1 p/out/semi.csv)" = 'id|label' ] || { head -1 p/out/semi.csv; return 1; }
}

test_bad_options_are_errors() {
  write_pipeline '{ delimeter = ";" }'
  expect_exit 2 "$R" run p/pipeline.toml
  grep -q 'output "semi": csv outputs take no option "delimeter" (did you mean "delimiter"?)' err.txt
  [ ! -e p/.respawn ] || { echo "a bad pipeline file created the store"; return 1; }
  write_pipeline '{ header = "yes" }'
  expect_exit 2 "$R" run p/pipeline.toml
  grep -q 'options.header must be a boolean' err.txt
  write_pipeline '{ delimiter = ";" }'
  sed -i 's/compression = "snappy"/compression = "snapy"/' p/pipeline.toml
  expect_exit 2 "$R" run p/pipeline.toml
  grep -q 'options.compression "snapy" is not a Parquet codec (did you mean "snappy"?)' err.txt
}

# A local output that cannot be written is found before any stage runs or the store is made,
# with the output's line: a folder at its path, a file where a folder must be made, a read-only
# folder (a read-only bind mount in a mount namespace of its own: root ignores permissions).
test_unwritable_outputs_fail_before_any_stage() {
  write_pipeline '{ delimiter = ";" }'
  mkdir -p p/out/lines.json
  expect_exit 2 "$R" run p/pipeline.toml
  grep -q '^respawn: .*pipeline.toml:16: output "lines" cannot be written: .*/out/lines.json is a folder; name a file inside it$' err.txt
  rmdir p/out/lines.json
  touch p/out/semi.csv.d
  sed -i 's|out/semi.csv|out/semi.csv.d/semi.csv|' p/pipeline.toml
  expect_exit 2 "$R" run p/pipeline.toml
  grep -q 'output "semi" cannot be written: .*/out/semi.csv.d is a file, so no folder can be made there' err.txt
  if grep -q '^stage ' out.txt || [ -e p/.respawn ]; then
    echo "a stage ran or the store was made before the output check"
    return 1
  fi
  sed -i 's|out/semi.csv.d/semi.csv|ro/semi.csv|' p/pipeline.toml
  mkdir -p p/ro
  # shellcheck disable=SC2016  # $0 is the inner shell's: the binary
  expect_exit 2 unshare -m bash -c 'mount --bind p/ro p/ro && mount -o remount,bind,ro p/ro &&
    exec "$0" run p/pipeline.toml' "$R"
  grep -q 'output "semi" cannot be written: folder .*/ro is not writable (Read-only file system)' err.txt
  [ ! -e p/.respawn ] || { echo "the store was made"; return 1; }
}

# partitioned_pipeline DAYS: one stage of 40 rows over DAYS days and 2 regions, written as a
# Parquet folder partitioned by day and region and a CSV folder partitioned by day.
partitioned_pipeline() {
  mkdir -p q
  cat >q/pipeline.toml <<TOML
name = "parts"

[stages.daily]
sql = "SELECT (DATE '2024-01-01' + INTERVAL (range % $1) DAY)::DATE AS day, range % 2 AS region, range AS v FROM range(0, 40)"

[outputs.by_day]
from = "daily"
path = "out/by_day"
partition_by = ["day", "region"]

[outputs.by_day_csv]
from = "daily"
path = "out/by_day_csv/"
format = "csv"
partition_by = ["day"]
TOML
}

# check_partitions DAYS: the folders hold exactly the rows the SQL makes, in hive layout, read
# back without DuckDB (Python for the CSV, hyparquet for the Parquet files).
check_partitions() {
  local days="$1" f
  : >parquet_rows.csv
  for f in $(cd q/out/by_day && find . -name '*.parquet' | sort); do
    # day=2024-01-02/region=1/data_0.parquet: the partition values come from the path.
    local day region
    day="$(sed -E 's|.*day=([^/]+)/.*|\1|' <<<"$f")"
    region="$(sed -E 's|.*region=([^/]+)/.*|\1|' <<<"$f")"
    table_csv "q/out/by_day/$f" | tail -n +2 | sed "s|^|$day,$region,|" >>parquet_rows.csv
  done
  "$PY" - "$days" <<'EOF'
import csv, datetime, glob, os, sys
days = int(sys.argv[1])
want = sorted(((datetime.date(2024, 1, 1) + datetime.timedelta(days=r % days)).isoformat(),
               str(r % 2), str(r)) for r in range(40))
got = sorted(tuple(row) for row in csv.reader(open("parquet_rows.csv")))
assert got == want, ("parquet folder", got[:5], want[:5])
dirs = sorted(os.listdir("q/out/by_day"))
assert dirs == sorted({"day=" + d for d, _, _ in want}), dirs
rows = []
for path in sorted(glob.glob("q/out/by_day_csv/day=*/*.csv")):
    day = path.split("day=")[1].split("/")[0]
    with open(path) as f:
        r = list(csv.reader(f))
    assert r[0] == ["region", "v"], r[0]
    rows += [(day, a, b) for a, b in r[1:]]
assert sorted(rows) == want, ("csv folder", sorted(rows)[:5])
print("partitions ok:", len(dirs), "days")
EOF
  # Nothing temporary left beside the folders.
  if [ -n "$(find q/out -maxdepth 1 -name '*respawn-tmp*')" ]; then
    echo "a temporary folder was left:"
    ls -A q/out
    return 1
  fi
}

test_partitioned_outputs() {
  partitioned_pipeline 3
  expect_exit 0 "$R" run q/pipeline.toml
  check_partitions 3
  expect_exit 0 "$R" run q/pipeline.toml
  grep -q '^output by_day: unchanged' out.txt
  # Fewer days: the folder is replaced as a whole, so the vanished day's partition goes.
  partitioned_pipeline 2
  expect_exit 0 "$R" run q/pipeline.toml
  grep -q '^output by_day: written' out.txt
  check_partitions 2
  # A partition file changed by hand makes the folder not current: it is written again.
  rm q/out/by_day/day=2024-01-01/region=0/data_0.parquet
  expect_exit 0 "$R" run q/pipeline.toml
  grep -q '^output by_day: written' out.txt
  grep -q '^output by_day_csv: unchanged' out.txt
  check_partitions 2
}

test_partition_errors() {
  partitioned_pipeline 3
  sed -i 's/partition_by = \["day"\]/partition_by = ["dya"]/' q/pipeline.toml
  expect_exit 2 "$R" run q/pipeline.toml
  grep -q 'pipeline.toml:15: output "by_day_csv": partition_by names "dya", which is not a column of "daily"' err.txt
  grep -q 'Candidate bindings: "day"' err.txt
  partitioned_pipeline 3
  sed -i 's|path = "out/by_day"$|path = "s3://bucket/by_day"|' q/pipeline.toml
  expect_exit 2 "$R" run q/pipeline.toml
  grep -q 'partition_by is supported for local outputs only' err.txt
  partitioned_pipeline 3
  mkdir -p q/out && echo x >q/out/by_day
  expect_exit 2 "$R" run q/pipeline.toml
  grep -q 'by_day is a file, and a partitioned output is a folder' err.txt
  partitioned_pipeline 3
  sed -i 's/partition_by = \["day"\]/partition_by = []/' q/pipeline.toml
  expect_exit 2 "$R" run q/pipeline.toml
  grep -q 'partition_by must be a non-empty array of column names' err.txt
}

run test_options_shape_the_files
run test_changed_options_rewrite_only_that_output
run test_bad_options_are_errors
run test_unwritable_outputs_fail_before_any_stage
run test_partitioned_outputs
run test_partition_errors
e2e_finish
