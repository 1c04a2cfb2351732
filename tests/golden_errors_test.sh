#!/usr/bin/env bash
# Golden bad-input cases: every tests/golden/errors/<case>/ (see tests/golden/README.md) is run
# with the real `respawn run` (and so the real DuckDB) in a scratch copy of its directory. The
# exit code must equal expected_exit.txt (2 when the file is absent), stderr must be exactly
# "respawn: " followed by expected_error.txt (the first line is compared first, for a clear
# message), and a rejected pipeline (exit 2) must leave no store behind.
#
# Usage: tests/golden_errors_test.sh path/to/respawn [CASE...]   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
SRC="${RESPAWN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
e2e_init --no-reader "${1:-}"
shift || true
CASES_DIR="$SRC/tests/golden/errors"

# golden_error_case CASE: the whole check of one case directory.
golden_error_case() {
  local case_name="$1"
  local dir="$CASES_DIR/$case_name"
  [ -f "$dir/pipeline.toml" ] || { echo "$dir has no pipeline.toml"; return 1; }
  [ -s "$dir/expected_error.txt" ] || { echo "$dir has no expected_error.txt"; return 1; }
  local want_exit=2
  if [ -f "$dir/expected_exit.txt" ]; then
    want_exit="$(tr -d '[:space:]' <"$dir/expected_exit.txt")"
    [[ "$want_exit" =~ ^[0-9]+$ ]] || { echo "expected_exit.txt is not a number: $want_exit"; return 1; }
  fi
  [ "$want_exit" -ne 0 ] || { echo "expected_exit.txt says 0: an error case must fail"; return 1; }
  local want
  want="respawn: $(head -n 1 "$dir/expected_error.txt" | tr -d '\r')"

  # args.txt (optional): more arguments for `respawn run pipeline.toml`, on one line.
  local args=()
  if [ -f "$dir/args.txt" ]; then read -r -a args <"$dir/args.txt"; fi
  cp -r "$dir" case
  rm -rf case/.respawn
  # From inside the case directory, so that messages name "pipeline.toml" as the cases do.
  (cd case && expect_exit "$want_exit" "$R" run pipeline.toml "${args[@]}") || {
    echo "--- want (exit $want_exit): $want"
    return 1
  }
  local got
  got="$(head -n 1 case/err.txt)"
  if [ "$got" != "$want" ]; then
    echo "first line of stderr differs (exit $want_exit as expected):"
    echo "  want: $want"
    echo "  got:  $got"
    echo "--- whole stderr"
    cat case/err.txt
    return 1
  fi
  # The whole message: every line of stderr (the SQL error's LINE block and caret, later
  # problems) must equal expected_error.txt, "respawn: " of the first line aside.
  if ! diff <(tr -d '\r' <"$dir/expected_error.txt") <(sed '1s/^respawn: //' case/err.txt) >diff.txt; then
    echo "stderr differs from expected_error.txt after its first line (< want, > got):"
    cat diff.txt
    return 1
  fi
  if grep -Eiq 'terminate called|internal error|assertion|segmentation' case/err.txt; then
    echo "an internal failure on stderr:"
    cat case/err.txt
    return 1
  fi
  if [ "$want_exit" -eq 2 ] && [ -e case/.respawn ]; then
    echo "a rejected pipeline (exit 2) created a store:"
    find case/.respawn | head -n 20
    return 1
  fi
}

cases=("$@")
if [ "${#cases[@]}" -eq 0 ]; then
  for d in "$CASES_DIR"/*/; do cases+=("$(basename "$d")"); done
fi
[ "${#cases[@]}" -gt 0 ] || { echo "no cases in $CASES_DIR" >&2; exit 1; }
for c in "${cases[@]}"; do
  [[ "$c" =~ ^[A-Za-z0-9_]+$ ]] || { echo "bad case name $c" >&2; exit 2; }
  eval "golden_error_$c() { golden_error_case $c; }"
  run "golden_error_$c"
done
e2e_finish
