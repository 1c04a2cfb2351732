#!/usr/bin/env bash
# Checkpoints keep DuckDB types exactly, end to end through the real binary: a stage computes
# sum() over a BIGINT (a HUGEINT that no DOUBLE holds: 27021597764222985) next to other types
# Parquet cannot hold, and a downstream stage reports typeof() and the exact text of each,
#   - on a fresh run (the downstream stage reads the checkpoint just written),
#   - on the run that resumes after a kill right after the upstream stage committed (it reads
#     the checkpoint back from the store),
# and the Parquet output of the HUGEINT column holds it as DECIMAL(38,0) with every digit (read
# back by a second pipeline).
#
# Usage: tests/pipeline_types_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

# write_pipeline DIR: the pipeline under test in DIR/pipeline.toml. `totals` has no input, so
# it is the first commit of a run and `report` (which reads it) the second.
write_pipeline() {
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<'EOF'
name = "types"

[stages.totals]
sql = """
SELECT i % 2 AS k,
       sum((9007199254740993 + i)::BIGINT) AS total,
       to_days(CAST(i % 2 AS INTEGER) + 1) + to_milliseconds(2) AS gap,
       CAST(CASE WHEN i % 2 = 0 THEN 'low' ELSE 'high' END AS ENUM('low', 'high')) AS band,
       CAST('12:30:00.000001+05:30' AS TIME WITH TIME ZONE) AS local_time
FROM range(6) t(i)
GROUP BY ALL
ORDER BY k
"""

[stages.report]
sql = """
SELECT k, typeof(total) AS total_type, CAST(total AS VARCHAR) AS total_text,
       typeof(gap) AS gap_type, CAST(gap AS VARCHAR) AS gap_text,
       typeof(band) AS band_type, CAST(band AS VARCHAR) AS band_text,
       CAST(local_time AS VARCHAR) AS time_text
FROM totals
ORDER BY k
"""

[outputs.report_out]
from = "report"
path = "out/report.csv"

[outputs.totals_out]
from = "totals"
path = "out/totals.parquet"
EOF
}

# What plain DuckDB gives for `report` over the same SQL (DuckDB's CSV writer, header first).
expected_report() {
  cat <<'EOF'
k,total_type,total_text,gap_type,gap_text,band_type,band_text,time_text
0,HUGEINT,27021597764222985,INTERVAL,1 day 00:00:00.002,"ENUM('low', 'high')",low,12:30:00.000001+05:30
1,HUGEINT,27021597764222988,INTERVAL,2 days 00:00:00.002,"ENUM('low', 'high')",high,12:30:00.000001+05:30
EOF
}

# check_report DIR: DIR/out/report.csv is exactly what plain DuckDB gives.
check_report() {
  if ! diff <(expected_report) "$1/out/report.csv"; then
    echo "report.csv differs from plain DuckDB's (< expected, > got)"
    return 1
  fi
}

test_fresh_run_reads_exact_types() {
  write_pipeline p
  expect_exit 0 "$R" run --no-gc p/pipeline.toml
  grep -Eq '^stage report: computed' out.txt || { cat out.txt; return 1; }
  check_report p
}

test_resumed_run_reads_exact_types() {
  write_pipeline p
  # Killed right after `totals` committed: `report` never ran.
  local rc=0
  RESPAWN_CRASH_AT=runner:after-commit@1 "$R" run --no-gc p/pipeline.toml >kill.txt 2>&1 || rc=$?
  [ "$rc" -eq 137 ] || { echo "the killed run exited $rc, want 137"; cat kill.txt; return 1; }
  [ ! -e p/out/report.csv ] || { echo "report.csv exists after the kill"; return 1; }
  # The resumed run takes `totals` from its checkpoint in the store and computes `report`.
  expect_exit 0 "$R" run --no-gc p/pipeline.toml
  grep -Eq '^stage totals: reused' out.txt || { cat out.txt; return 1; }
  grep -Eq '^stage report: computed' out.txt || { cat out.txt; return 1; }
  check_report p
}

test_parquet_output_keeps_every_digit() {
  write_pipeline p
  expect_exit 0 "$R" run --no-gc p/pipeline.toml
  mkdir -p q
  cat >q/pipeline.toml <<'EOF'
name = "readback"

[sources.totals]
path = "../p/out/totals.parquet"

[stages.seen]
sql = """
SELECT k, typeof(total) AS total_type, CAST(total AS VARCHAR) AS total_text,
       CAST(gap AS VARCHAR) AS gap_text, CAST(local_time AS VARCHAR) AS time_text
FROM totals ORDER BY k
"""

[outputs.seen_out]
from = "seen"
path = "out/seen.csv"
EOF
  expect_exit 0 "$R" run --no-gc q/pipeline.toml
  local want
  want="$(
    cat <<'EOF'
k,total_type,total_text,gap_text,time_text
0,"DECIMAL(38,0)",27021597764222985,1 day 00:00:00.002,07:00:00.000001+00
1,"DECIMAL(38,0)",27021597764222988,2 days 00:00:00.002,07:00:00.000001+00
EOF
  )"
  if [ "$(cat q/out/seen.csv)" != "$want" ]; then
    echo "the Parquet output reads back as:"
    cat q/out/seen.csv
    echo "want:"
    echo "$want"
    return 1
  fi
}

run test_fresh_run_reads_exact_types
run test_resumed_run_reads_exact_types
run test_parquet_output_keeps_every_digit
e2e_finish
