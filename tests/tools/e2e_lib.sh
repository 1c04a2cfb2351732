# shellcheck shell=bash
# Shared helpers of the end-to-end shell suites (tests/*_test.sh).
# Source it after `set -euo pipefail`; then call e2e_init "$@" once (e2e_init --no-reader "$@"
# for suites that read no Parquet/CSV tables).
#
# Provides: $R (absolute respawn binary), $WORK (scratch dir, removed on exit unless
# RESPAWN_KEEP_WORK=1), $PY, run NAME (one test function in a subshell, output shown on failure),
# expect_exit CODE|nonzero cmd... (stdout in out.txt, stderr in err.txt of the current dir),
# refute cmd... (the command must fail), e2e_require_server SERVER (a test's S3 server, or a
# skip), table_csv [--sort] FILE (a Parquet/CSV file as normalized CSV, read by hyparquet, see
# tests/tools/read_table.mjs), output_paths PIPELINE (name<TAB>absolute path per [outputs.X]),
# snapshot_outputs PIPELINE DIR, compare_outputs PIPELINE REFDIR, stage_actions FILE, e2e_finish.
#
# Environment: RESPAWN_E2E_ONLY=REGEX runs only the test functions whose names match (a suite
# that then runs none fails); CI=true turns a missing server into a failure instead of a skip.

E2E_TOOLS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

e2e_init() {
  local reader=1
  if [ "${1:-}" = --no-reader ]; then
    reader=0
    shift
  fi
  local bin="${1:-${RESPAWN_BINARY:-}}"
  if [ -z "$bin" ] || [ ! -x "$bin" ]; then
    echo "usage: $0 path/to/respawn (or set RESPAWN_BINARY)" >&2
    exit 2
  fi
  # R, PY and NODE are for the suites that source this file.
  # shellcheck disable=SC2034
  R="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
  PY=/usr/bin/python3
  [ -x "$PY" ] || PY=python3
  NODE="$(command -v node || true)"
  if [ "$reader" = 1 ]; then
    if [ -z "$NODE" ]; then
      echo "$0: node is missing (scripts/setup.sh installs it)" >&2
      exit 2
    fi
    local reader_dir="${RESPAWN_NODE_READER_DIR:-$E2E_TOOLS/../../.deps/node-reader}"
    if [ ! -d "$reader_dir/node_modules/hyparquet" ]; then
      echo "$0: the independent Parquet reader is not installed in $reader_dir; run scripts/setup.sh" >&2
      exit 2
    fi
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
  E2E_PASSED=0
  E2E_FAILED=0
  E2E_SKIPPED=0
  E2E_FILTERED=0
  E2E_FAILED_NAMES=()
  E2E_SKIPPED_NAMES=()
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

# The exit status with which a test function (in its subshell) says it skipped.
readonly E2E_SKIP=77

# e2e_ci: true when running in CI (CI=true or CI=1, as CI services set it). In CI nothing skips:
# a missing server fails the test that needs it.
e2e_ci() {
  case "${CI:-}" in
    true | TRUE | True | 1 | yes) return 0 ;;
    *) return 1 ;;
  esac
}

# e2e_skip REASON: ends the current test function as skipped (in CI: as failed). Only inside a
# test function that run() started (it exits the function's subshell).
e2e_skip() {
  if e2e_ci; then
    echo "FAIL (CI=$CI, nothing may skip): $*"
    exit 1
  fi
  echo "skipped: $*"
  exit "$E2E_SKIP"
}

# e2e_load_env_file FILE: exports every KEY=VALUE line of FILE (an env file written by
# scripts/s3-server.sh). Fails, naming the file, when it does not exist or cannot be read.
e2e_load_env_file() {
  local file="$1"
  if [ ! -e "$file" ]; then
    echo "env file $file does not exist (did scripts/s3-server.sh start fail?)"
    return 1
  fi
  if [ ! -f "$file" ] || [ ! -r "$file" ]; then
    echo "env file $file exists but cannot be read"
    return 1
  fi
  set -a
  . "$file" || { set +a; echo "env file $file does not parse"; return 1; }
  set +a
}

# e2e_require_server SERVER: points the current test function at the S3 server SERVER (radosgw,
# swift): loads the env file named by RESPAWN_TEST_S3_ENV_<SERVER> (set by ctest, see
# tests/suites.cmake) into the environment, without the AWS settings of the machine. When the
# variable is unset the test skips (e2e_skip: a failure in CI); a set variable whose file is
# missing or unreadable is always a failure. Call it as a plain statement of a test function.
e2e_require_server() {
  local server="$1" var
  var="RESPAWN_TEST_S3_ENV_$(tr '[:lower:]' '[:upper:]' <<<"$server")"
  if [ -z "${!var:-}" ]; then
    e2e_skip "$var is not set (run the suite through ctest, which starts $server)"
  fi
  unset AWS_PROFILE AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN
  e2e_load_env_file "${!var}" || exit 1
  local v
  for v in AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY RESPAWN_TEST_BUCKET; do
    [ -n "${!v:-}" ] || { echo "${!var} does not set $v"; exit 1; }
  done
  if [ -n "${RESPAWN_TEST_SERVER:-}" ] && [ "$RESPAWN_TEST_SERVER" != "$server" ]; then
    echo "${!var} describes server $RESPAWN_TEST_SERVER, not $server"
    exit 1
  fi
  export AWS_DEFAULT_REGION="${AWS_REGION:-us-east-1}"
  export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
}

# Runs one test function in a subshell with errexit in force (also inside command
# substitutions), in its own directory under $WORK. A function that exits with $E2E_SKIP
# (e2e_skip) counts as skipped. RESPAWN_E2E_ONLY=REGEX runs only the functions whose names match.
run() {
  local name="$1"
  if [ -n "${RESPAWN_E2E_ONLY:-}" ] && ! [[ "$name" =~ $RESPAWN_E2E_ONLY ]]; then
    E2E_FILTERED=$((E2E_FILTERED + 1))
    return 0
  fi
  local log="$WORK/$name.log"
  local start=$SECONDS
  mkdir -p "$WORK/$name"
  set +e
  (
    cd "$WORK/$name" && set -Eeuo pipefail && shopt -s inherit_errexit &&
      trap 'echo "error: exit $? at ${BASH_SOURCE[0]}:$LINENO: $BASH_COMMAND"' ERR &&
      "$name"
  ) >"$log" 2>&1
  local rc=$?
  set -e
  if [ $rc -eq 0 ]; then
    E2E_PASSED=$((E2E_PASSED + 1))
    echo "PASS $name ($((SECONDS - start)) s)"
  elif [ $rc -eq "$E2E_SKIP" ]; then
    E2E_SKIPPED=$((E2E_SKIPPED + 1))
    E2E_SKIPPED_NAMES+=("$name")
    echo "SKIP $name: $(tail -n 1 "$log")"
  else
    E2E_FAILED=$((E2E_FAILED + 1))
    E2E_FAILED_NAMES+=("$name")
    echo "FAIL $name (exit $rc, $((SECONDS - start)) s)"
    tail -n 150 "$log" | sed 's/^/    | /'
  fi
}

# e2e_finish: the summary; exits 1 when a test failed or when no test ran at all (a filter that
# matches nothing, or every test skipped).
e2e_finish() {
  echo "$E2E_PASSED passed, $E2E_FAILED failed, $E2E_SKIPPED skipped" \
    "($E2E_FILTERED not selected by RESPAWN_E2E_ONLY)"
  if [ "$E2E_SKIPPED" -ne 0 ]; then
    echo "skipped: ${E2E_SKIPPED_NAMES[*]}"
  fi
  if [ "$E2E_FAILED" -ne 0 ]; then
    echo "failed: ${E2E_FAILED_NAMES[*]}"
    exit 1
  fi
  if [ $((E2E_PASSED + E2E_FAILED)) -eq 0 ]; then
    echo "FAIL: no test case ran${RESPAWN_E2E_ONLY:+ (RESPAWN_E2E_ONLY=$RESPAWN_E2E_ONLY matches none)}"
    exit 1
  fi
}

# expect_exit CODE cmd...: runs cmd with stdout in out.txt, stderr in err.txt; checks the exit
# code ("nonzero": any failure that is not a crash, i.e. not 134/137/139 or a signal).
expect_exit() {
  local want="$1"
  shift
  local got=0
  "$@" >out.txt 2>err.txt || got=$?
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

# refute cmd...: the command must fail (exit non-zero); when it succeeds, says so with its output
# and returns 1. The form to use instead of `! cmd`, which never trips errexit.
refute() {
  local out
  if out="$("$@" 2>&1)"; then
    echo "expected this to fail, it succeeded: $*"
    [ -z "$out" ] || printf '%s\n' "$out" | head -n 20
    return 1
  fi
}

# one_error_line: err.txt is exactly one line, starting with "respawn: ".
one_error_line() {
  local n
  n=$(wc -l <err.txt)
  if [ "$n" -ne 1 ] || ! grep -q '^respawn: ' err.txt; then
    echo "expected one 'respawn: ...' line on stderr, got $n lines:"
    cat err.txt
    return 1
  fi
}

# table_csv [--sort] FILE: the table in FILE (Parquet or CSV) as normalized CSV with a header.
table_csv() {
  "$NODE" "$E2E_TOOLS/read_table.mjs" "$@"
}

# output_paths PIPELINE: one "name<TAB>absolute path" line per [outputs.name], in file order
# (cached per pipeline file content and folder).
output_paths() {
  local dir key cache
  dir="$(cd "$(dirname "$1")" && pwd)"
  key="$({ echo "$dir"; cat "$1"; } | md5sum | cut -c1-16)"
  cache="$WORK/.outputs.$key"
  if [ ! -f "$cache" ]; then
    # Safe when several subshells fill the cache at once: each writes its own file, then renames.
    output_paths_uncached "$1" >"$cache.$BASHPID"
    mv "$cache.$BASHPID" "$cache"
  fi
  cat "$cache"
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
  local got="$WORK/.cmp.$BASHPID.$RANDOM"
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

# nothing_recomputed PIPELINE FILE: FILE (a run's output) has a line for every stage of PIPELINE,
# and each is `reused` or `skipped` (not needed: with GC on, a re-run skips the work-tables GC
# dropped); no stage was computed.
nothing_recomputed() {
  local pipeline="$1" file="$2" s bad=0
  for s in $(stage_names "$pipeline"); do
    if ! grep -Eq "^stage $s: (reused|skipped)" "$file"; then
      echo "stage $s was neither reused nor skipped:"
      grep -E "^stage $s:" "$file" || echo "(no line for stage $s)"
      bad=1
    fi
  done
  return $bad
}

# store_digest DIR: a listing of every file under DIR with its checksum, except the ledger's
# head hint (ledger/head.json), which every writer rewrites by design, and the stage logs
# (pipelines/*/logs/, respawn log's diagnostics outside the ledger, replaced by every run).
store_digest() {
  (cd "$1" && find . -type f ! -path '*/ledger/head.json' ! -path './pipelines/*/logs/*' -print0 |
    sort -z | xargs -0 -r md5sum)
}
