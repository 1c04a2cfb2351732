#!/usr/bin/env bash
# respawn-test-servers: radosgw
#
# Store configuration errors and read-only commands:
#   - credentials the server rejects (wrong secret, unknown access key id) and a bucket that does
#     not exist give exit 2 (the README's "bad configuration") from every pipeline command and
#     from `respawn store`, with a message naming the problem and no secret in it;
#   - read-only commands (`status`, `ls`, `gc --dry-run`) write nothing: a local store that does
#     not exist is not created, an existing one is byte-identical afterwards, and on S3 they send
#     no PUT, POST or DELETE (no put-if-absent probe object either);
#   - the ledger keeps at most [gc] keep_run_reports run reports.
#
# Usage: tests/store_config_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init "${1:-}"

write_pipeline() { # DIR [EXTRA_TOML]
  mkdir -p "$1"
  cat >"$1/pipeline.toml" <<EOF
name = "cfg"
${2:-}

[sources.nums]
sql = "SELECT range AS id, range % 7 AS k FROM range(0, 5000)"

[stages.by_k]
sql = "SELECT k, count(*) AS n FROM nums GROUP BY k ORDER BY k"

[stages.total]
sql = "SELECT sum(n) AS n FROM by_k"

[outputs.by_k_out]
from = "by_k"
path = "out/by_k.csv"
EOF
}

# radosgw's env (endpoint, keys, bucket) into this shell; a missing server fails under CI=true.
radosgw_env() {
  local env="${RESPAWN_TEST_S3_ENV_RADOSGW:-}"
  if [ -z "$env" ]; then
    if [ "${CI:-}" = true ]; then
      echo "RESPAWN_TEST_S3_ENV_RADOSGW is not set (CI=true: a missing server is a failure)"
      exit 1
    fi
    echo "skipped: RESPAWN_TEST_S3_ENV_RADOSGW not set"
    return 1
  fi
  [ -r "$env" ] || { echo "cannot read $env"; exit 1; }
  set -a
  . "$env"
  set +a
}

# Every pipeline command and a store command exit 2 with a message containing PATTERN.
all_commands_exit_2() { # PATTERN STORE_URL
  local pattern="$1" store="$2" cmd
  for cmd in "run p/pipeline.toml" "status p/pipeline.toml" "gc p/pipeline.toml" \
    "gc --dry-run p/pipeline.toml" "ls p/pipeline.toml"; do
    # shellcheck disable=SC2086 # the command and its arguments are words on purpose
    expect_exit 2 timeout 120 "$R" --timeout 10 $cmd --store "$store"
    if ! grep -Eq "$pattern" err.txt; then
      echo "respawn $cmd: the message does not match /$pattern/:"
      cat err.txt
      return 1
    fi
  done
  expect_exit 2 timeout 120 "$R" --timeout 10 store ls "$store/"
  grep -Eq "$pattern" err.txt
}

test_rejected_credentials_and_missing_bucket_exit_2() {
  radosgw_env || return 0
  write_pipeline p
  local store="s3://$RESPAWN_TEST_BUCKET/cfg-$$" wrong="WrongSecret${RANDOM}xyzABC0123456789"
  AWS_SECRET_ACCESS_KEY="$wrong" all_commands_exit_2 'SignatureDoesNotMatch' "$store"
  if grep -qF -- "$wrong" err.txt out.txt; then
    echo "the wrong secret was printed"
    return 1
  fi
  AWS_ACCESS_KEY_ID="AKIANOSUCHKEY${RANDOM}" all_commands_exit_2 'InvalidAccessKeyId' "$store"
  all_commands_exit_2 "bucket 'no-such-bucket-$$' does not exist" "s3://no-such-bucket-$$/p"
  # With good credentials the same pipeline runs.
  expect_exit 0 "$R" run p/pipeline.toml --store "$store"
}

test_read_only_commands_create_no_local_store() {
  write_pipeline p
  expect_exit 0 "$R" status p/pipeline.toml
  grep -q 'does not exist yet' out.txt
  grep -Eq '^by_k +missing' out.txt
  expect_exit 0 "$R" --json status p/pipeline.toml
  grep -q '"store_exists": false' out.txt
  expect_exit 0 "$R" ls p/pipeline.toml
  expect_exit 0 "$R" gc --dry-run p/pipeline.toml
  expect_exit 0 "$R" ls "$PWD/nowhere"
  if [ -e p/.respawn ] || [ -e nowhere ]; then
    echo "a read-only command created a store directory:"
    find . -maxdepth 3
    return 1
  fi
  # `gc` (not a dry run) may create it: it is not read-only. A run certainly does.
  expect_exit 0 "$R" run p/pipeline.toml
  [ -d p/.respawn/pipelines/cfg/ledger ]
}

test_read_only_commands_leave_a_local_store_unchanged() {
  write_pipeline p
  expect_exit 0 "$R" run p/pipeline.toml --no-gc
  local before after
  before="$(cd p/.respawn && find . -print0 | sort -z | xargs -0 stat -c '%n %s %Y' && find . -type f -print0 | sort -z | xargs -0 md5sum)"
  sleep 1.1 # an mtime changed by a rewrite would show
  expect_exit 0 "$R" status p/pipeline.toml
  expect_exit 0 "$R" ls p/pipeline.toml
  expect_exit 0 "$R" gc --dry-run p/pipeline.toml
  grep -q 'dry run' out.txt
  after="$(cd p/.respawn && find . -print0 | sort -z | xargs -0 stat -c '%n %s %Y' && find . -type f -print0 | sort -z | xargs -0 md5sum)"
  if [ "$before" != "$after" ]; then
    echo "a read-only command changed the store:"
    diff <(echo "$before") <(echo "$after") || true
    return 1
  fi
}

test_read_only_commands_send_no_writes_to_s3() {
  radosgw_env || return 0
  write_pipeline p
  local store="s3://$RESPAWN_TEST_BUCKET/ro-$$" cmd
  expect_exit 0 "$R" run p/pipeline.toml --store "$store" --no-gc
  for cmd in "status p/pipeline.toml" "ls p/pipeline.toml" "gc --dry-run p/pipeline.toml"; do
    # shellcheck disable=SC2086 # the command and its arguments are words on purpose
    RESPAWN_LOG=debug expect_exit 0 "$R" $cmd --store "$store"
    # The log names every request sent: reads must be there, writes must not.
    if ! grep -Eq 's3 request: (GET|HEAD) ' err.txt; then
      echo "respawn $cmd: no request was logged (is the debug log still written?):"
      tail -n 20 err.txt
      return 1
    fi
    if grep -E 's3 request: (PUT|POST|DELETE) ' err.txt; then
      echo "respawn $cmd wrote to the store"
      return 1
    fi
  done
}

test_run_reports_are_bounded() {
  write_pipeline p $'[gc]\nkeep_run_reports = 3'
  for _ in 1 2 3 4 5; do
    expect_exit 0 "$R" run p/pipeline.toml --fresh
  done
  expect_exit 0 "$R" --json ls p/pipeline.toml
  local runs
  runs="$("$PY" -c 'import json,sys; print(len(json.load(open("out.txt"))[0]["runs"]))')"
  if [ "$runs" != 3 ]; then
    echo "expected 3 run reports in the ledger, found $runs"
    cat out.txt
    return 1
  fi
}

# Mistakes a new user makes on the command line and in paths: named, with the fix, exit 2,
# nothing created.
test_first_hour_mistakes() {
  write_pipeline p
  expect_exit 2 "$R" graph p/pipeline.toml
  grep -qx "respawn: unknown command 'graph'; commands: .*" err.txt
  expect_exit 2 "$R" stauts p/pipeline.toml
  grep -q "unknown command 'stauts' (did you mean \"status\"?)" err.txt
  # With --json, an error is also one JSON object on stdout.
  expect_exit 2 "$R" --json stauts p/pipeline.toml
  "$PY" -c 'import json; j = json.loads(open("out.txt").read()); assert j["event"] == "error" and j["code"] == 2 and "stauts" in j["message"], j'
  expect_exit 2 "$R" run p/pipeline.toml --store s3:/bucket/ckpt
  grep -q 'write s3://bucket/ckpt' err.txt
  [ ! -e s3: ] || { echo "a local directory named s3: was created"; return 1; }
  # A source file that does not exist: named before the store is opened.
  mkdir -p q
  sed 's|^sql = "SELECT range AS id, range % 7 AS k FROM range(0, 5000)"|path = "data/missing.csv"|' \
    p/pipeline.toml >q/pipeline.toml
  grep -q 'data/missing.csv' q/pipeline.toml
  expect_exit 2 "$R" run q/pipeline.toml
  grep -q '^respawn: q/pipeline.toml:[0-9]*: source "nums": file .*/q/data/missing.csv does not exist' err.txt
  [ ! -e q/.respawn ] || { echo "the store was created although the pipeline named a missing file"; return 1; }
  # Every command's --help lists the global options.
  local cmd
  for cmd in run status gc verify repair ls store doctor; do
    expect_exit 0 "$R" "$cmd" --help
    grep -q -- '--json' out.txt || { echo "respawn $cmd --help does not list --json"; return 1; }
  done
}

run test_rejected_credentials_and_missing_bucket_exit_2
run test_first_hour_mistakes
run test_read_only_commands_create_no_local_store
run test_read_only_commands_leave_a_local_store_unchanged
run test_read_only_commands_send_no_writes_to_s3
run test_run_reports_are_bounded
e2e_finish
