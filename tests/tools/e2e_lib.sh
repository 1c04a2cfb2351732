# shellcheck shell=bash disable=SC2034
# Shared helpers of the end-to-end shell suites (tests/golden_ok_test.sh, tests/pipeline_*_test.sh).
# Source it after `set -euo pipefail`; then call e2e_init "$@" once.
#
# Provides: $R (absolute respawn binary), $WORK (scratch dir, removed on exit unless
# RESPAWN_KEEP_WORK=1), $PY, run NAME (one test function in a subshell, output shown on failure),
# expect_exit CODE|nonzero cmd... (stdout in out.txt, stderr in err.txt of the current dir),
# table_csv [--sort] FILE (a Parquet/CSV file as normalized CSV, read by hyparquet, see
# tests/tools/read_table.mjs), output_paths PIPELINE (name<TAB>absolute path per [outputs.X]),
# snapshot_outputs PIPELINE DIR, compare_outputs PIPELINE REFDIR, stage_actions FILE, e2e_finish.

E2E_TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

e2e_init() {
  local bin="${1:-${RESPAWN_BINARY:-}}"
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "usage: $0 path/to/respawn (or set RESPAWN_BINARY)" >&2
    exit 2
  fi
  R="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
  PY=/usr/bin/python3
  [ -x "$PY" ] || PY=python3
  NODE="$(command -v node || true)"
  if [ -z "$NODE" ]; then
    echo "$0: node is missing (scripts/setup.sh installs it)" >&2
    exit 2
  fi
  local reader_dir="${RESPAWN_NODE_READER_DIR:-$E2E_TOOLS/../../.deps/node-reader}"
  if [ ! -d "$reader_dir/node_modules/hyparquet" ]; then
    echo "$0: the independent Parquet reader is not installed in $reader_dir; run scripts/setup.sh" >&2
    exit 2
  fi
  export LC_ALL=C.UTF-8
  unset RESPAWN_CHAOS RESPAWN_CRASH_AT RESPAWN_PAUSE_AT RESPAWN_STORE
  WORK="$(mktemp -d "${TMPDIR:-/tmp}/respawn-e2e.XXXXXX")"
  # respawn's DuckDB temp directories (killed runs leave theirs behind) go away with $WORK.
  mkdir -p "$WORK/tmp"
  export TMPDIR="$WORK/tmp"
  E2E_CLEANUP=()
  trap e2e_cleanup EXIT
  cd "$WORK"
  passed=0
  failed=0
  failed_names=()
}

e2e_cleanup() {
  local c
  for c in "${E2E_CLEANUP[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
  if [ "${RESPAWN_KEEP_WORK:-0}" = 1 ]; then
    echo "kept $WORK"
  else
    rm -rf "$WORK"
  fi
}

# Runs one test function in a subshell with errexit in force, in its own directory under $WORK.
# RESPAWN_E2E_ONLY=REGEX runs only the test functions whose names match.
run() {
  local name="$1"
  if [ -n "${RESPAWN_E2E_ONLY:-}" ] && ! [[ "$name" =~ $RESPAWN_E2E_ONLY ]]; then
    return 0
  fi
  local log="$WORK/$name.log"
  local start=$SECONDS
  mkdir -p "$WORK/$name"
  set +e
  (
    cd "$WORK/$name" && set -Eeuo pipefail &&
      trap 'echo "error: exit $? at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND"' ERR &&
      "$name"
  ) >"$log" 2>&1
  local rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    passed=$((passed + 1))
    echo "PASS $name ($((SECONDS - start)) s)"
  else
    failed=$((failed + 1))
    failed_names+=("$name")
    echo "FAIL $name (exit $rc, $((SECONDS - start)) s)"
    tail -n 150 "$log" | sed 's/^/    | /'
  fi
}

e2e_finish() {
  echo "$passed passed, $failed failed"
  if [ "$failed" -ne 0 ]; then
    echo "failed: ${failed_names[*]}"
    exit 1
  fi
}

# expect_exit CODE cmd...: runs cmd with stdout in out.txt, stderr in err.txt; checks the exit
# code ("nonzero": any failure that is not a crash, i.e. not 134/137/139 or a signal).
expect_exit() {
  local want="$1"
  shift
  set +e
  "$@" >out.txt 2>err.txt
  local got=$?
  set -e
  local ok=0
  if [ "$want" = nonzero ]; then
    if [ "$got" -ne 0 ] && [ "$got" -lt 128 ]; then ok=1; fi
  elif [ "$got" -eq "$want" ]; then
    ok=1
  fi
  if [ "$ok" -ne 1 ]; then
    echo "expected exit $want, got $got from: $*"
    echo "--- stdout"; tail -n 40 out.txt; echo "--- stderr"; tail -n 40 err.txt
    return 1
  fi
}

# table_csv [--sort] FILE: the table in FILE (Parquet or CSV) as normalized CSV with a header.
table_csv() {
  "$NODE" "$E2E_TOOLS/read_table.mjs" "$@"
}

# output_paths PIPELINE: one "name<TAB>absolute path" line per [outputs.name], in file order
# (cached per pipeline file content).
output_paths() {
  local key cache
  key="$(cat "$1" | md5sum | cut -c1-16)"
  cache="$WORK/.outputs.$key"
  if [ ! -f "$cache" ] || ! grep -qxF "# $(cd "$(dirname "$1")" && pwd)" "$cache"; then
    { echo "# $(cd "$(dirname "$1")" && pwd)"; output_paths_uncached "$1"; } >"$cache.$$"
    mv "$cache.$$" "$cache"
  fi
  tail -n +2 "$cache"
}

output_paths_uncached() {
  "$PY" - "$1" <<'EOF'
import os, sys, tomllib
path = sys.argv[1]
with open(path, "rb") as f:
    spec = tomllib.load(f)
base = os.path.dirname(os.path.abspath(path))
for name, out in spec.get("outputs", {}).items():
    p = out["path"]
    print(f"{name}\t{p if os.path.isabs(p) else os.path.join(base, p)}")
EOF
}

# stage_names PIPELINE: the [stages.X] names, in file order.
stage_names() {
  "$PY" - "$1" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    spec = tomllib.load(f)
print("\n".join(spec.get("stages", {}).keys()))
EOF
}

# snapshot_outputs PIPELINE DIR: each output as normalized CSV in DIR/<name>.csv (rows in file
# order; names listed in $E2E_SORTED_OUTPUTS are sorted instead).
snapshot_outputs() {
  local pipeline="$1" dir="$2" name path mode jobs=""
  mkdir -p "$dir"
  while IFS=$'\t' read -r name path; do
    if [ ! -f "$path" ]; then
      echo "output $name: $path does not exist"
      return 1
    fi
    mode=ordered
    [[ " ${E2E_SORTED_OUTPUTS:-} " != *" $name "* ]] || mode=sorted
    jobs+="$mode"$'\t'"$path"$'\t'"$dir/$name.csv"$'\n'
  done < <(output_paths "$pipeline")
  "$NODE" "$E2E_TOOLS/read_table.mjs" --batch <<<"$jobs"
}

# compare_outputs PIPELINE REFDIR: every output equals REFDIR/<name>.csv row for row.
compare_outputs() {
  local pipeline="$1" ref="$2" name path
  local got="$WORK/.cmp.$$.$RANDOM"
  snapshot_outputs "$pipeline" "$got" || return 1
  local bad=0
  while IFS=$'\t' read -r name path; do
    if ! cmp -s "$ref/$name.csv" "$got/$name.csv"; then
      echo "output $name ($path) differs from the reference:"
      diff "$ref/$name.csv" "$got/$name.csv" | head -n 20
      bad=1
    fi
  done < <(output_paths "$pipeline")
  rm -rf "$got"
  return $bad
}

# stage_actions FILE: "name action" per `stage NAME: computed|reused ...` line of FILE, sorted.
stage_actions() {
  sed -n -E 's/^stage ([A-Za-z0-9_]+): (computed|reused).*/\1 \2/p' "$1" | sort
}

# uncheckpointed_stages PIPELINE: the stages with checkpoint = false.
uncheckpointed_stages() {
  "$PY" - "$1" <<'EOF'
import sys, tomllib
with open(sys.argv[1], "rb") as f:
    spec = tomllib.load(f)
print("\n".join(k for k, v in spec.get("stages", {}).items() if v.get("checkpoint", True) is False))
EOF
}

# all_stages_reused PIPELINE FILE: every checkpointed stage of PIPELINE has a `stage NAME: reused`
# line; a stage with checkpoint = false is not recomputed when nothing needs it.
all_stages_reused() {
  local pipeline="$1" file="$2" s bad=0
  local nocp
  nocp=" $(uncheckpointed_stages "$pipeline" | tr '\n' ' ') "
  for s in $(stage_names "$pipeline"); do
    if [[ "$nocp" == *" $s "* ]]; then
      if grep -Eq "^stage $s: computed" "$file"; then
        echo "stage $s (checkpoint = false) was recomputed although every stage reading it was reused:"
        grep -E "^stage $s:" "$file"
        bad=1
      fi
      continue
    fi
    if ! grep -Eq "^stage $s: reused" "$file"; then
      echo "stage $s was not reused:"
      grep -E "^stage $s:" "$file" || echo "(no line for stage $s)"
      bad=1
    fi
  done
  return $bad
}

# store_digest DIR: a listing of every file under DIR with its checksum, except the ledger's
# head hint (ledger/head.json), which every writer rewrites by design.
store_digest() {
  (cd "$1" && find . -type f ! -path '*/ledger/head.json' -print0 | sort -z | xargs -0 -r md5sum)
}
