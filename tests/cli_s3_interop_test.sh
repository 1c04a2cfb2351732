#!/usr/bin/env bash
# respawn-test-servers: radosgw
#
# `respawn store` against a real S3 server (Ceph radosgw), checked with the AWS CLI: objects one
# writes the other reads byte for byte (odd key names, a 150 MiB multipart object), errors are
# one clear line without secrets, and doctor reports what the server can do.
#
# Usage: tests/cli_s3_interop_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
# Needs RESPAWN_TEST_S3_ENV_RADOSGW naming an env file (scripts/s3-server.sh start radosgw DIR
# writes DIR/env) with AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION,
# RESPAWN_TEST_BUCKET.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
e2e_init --no-reader "${1:-}"
ENV_FILE="${RESPAWN_TEST_S3_ENV_RADOSGW:-}"
if [ -z "$ENV_FILE" ]; then
  echo "$0: RESPAWN_TEST_S3_ENV_RADOSGW must name the env file of a running radosgw" \
       "(scripts/s3-server.sh start radosgw DIR writes DIR/env)" >&2
  exit 2
fi
unset AWS_PROFILE AWS_ENDPOINT_URL_S3 AWS_SESSION_TOKEN
e2e_load_env_file "$ENV_FILE" >&2 || exit 2
for v in AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION RESPAWN_TEST_BUCKET; do
  [ -n "${!v:-}" ] || { echo "$0: $ENV_FILE does not set $v" >&2; exit 2; }
done
export AWS_DEFAULT_REGION="$AWS_REGION"
# No ~/.aws of the machine: only the environment above.
export AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_CONFIG_FILE=/dev/null
AWS_BIN=/usr/bin/aws
[ -x "$AWS_BIN" ] || { echo "$0: $AWS_BIN (Debian awscli) is missing" >&2; exit 2; }

B="$RESPAWN_TEST_BUCKET"
P="cli-interop-$$-$RANDOM"  # every key of this run lives under s3://$B/$P
S="s3://$B/$P"
E2E_CLEANUP+=("'$AWS_BIN' --endpoint-url '$AWS_ENDPOINT_URL' s3 rm --recursive --quiet '$S/'")

aws_s3() { "$AWS_BIN" --endpoint-url "$AWS_ENDPOINT_URL" --only-show-errors s3 "$@"; }

# keys_under PREFIX: how many objects the bucket holds under $P/PREFIX, asked with awscli (0 is
# an answer; a failed request fails). Counts Contents: radosgw leaves out KeyCount when it is 0.
keys_under() {
  # shellcheck disable=SC2016 # the backquotes are JMESPath's literal syntax, not a command.
  "$AWS_BIN" --endpoint-url "$AWS_ENDPOINT_URL" s3api list-objects-v2 --bucket "$B" \
    --prefix "$P/$1" --query 'length(Contents || `[]`)' --output text
}

no_secret_in() {  # FILE...: neither the real nor any given wrong secret appears
  local f
  for f in "$@"; do
    if grep -qF -- "$AWS_SECRET_ACCESS_KEY" "$f"; then
      echo "the secret key appears in $f"
      return 1
    fi
  done
}

# Names that need care in URLs, SigV4 canonical requests and XML listings.
ODD_NAMES=("with space.txt" "plus+sign" "per%cent" "na"$'\xc3\xaf'"ve-"$'\xc3\xa9'"t"$'\xc3\xa9'".csv"
           "sub dir/a+b%c d" "tilde~and=equals&amp" "quote'and(paren)")

make_odd_tree() {
  local d="$1" i=0 n
  for n in "${ODD_NAMES[@]}"; do
    mkdir -p "$d/$(dirname "$n")"
    head -c $((1000 + i * 777)) /dev/urandom >"$d/$n"
    i=$((i + 1))
  done
}

test_respawn_writes_aws_reads() {
  make_odd_tree src
  local n
  for n in "${ODD_NAMES[@]}"; do
    expect_exit 0 "$R" store cp "src/$n" "$S/up/$n"
    aws_s3 cp "$S/up/$n" "got"
    cmp "src/$n" got
  done
  expect_exit 0 "$R" store ls "$S/up/"
  grep -qx 'with space.txt' out.txt
  grep -qx 'sub dir/' out.txt
  expect_exit 0 "$R" store cat "$S/up/plus+sign"
  cmp out.txt src/plus+sign
}

test_aws_writes_respawn_reads() {
  make_odd_tree src
  local n
  for n in "${ODD_NAMES[@]}"; do
    aws_s3 cp "src/$n" "$S/down/$n"
    expect_exit 0 "$R" store cp "$S/down/$n" got
    cmp "src/$n" got
  done
  expect_exit 0 "$R" --json store stat "$S/down/per%cent"
  "$PY" -c 'import json,os,sys; d=json.load(open("out.txt")); assert d["size"]==os.path.getsize("src/per%cent"), d; assert d["etag"], d'
}

test_recursive_both_ways() {
  make_odd_tree tree
  expect_exit 0 "$R" store cp -r -j 4 tree "$S/tree/"
  grep -q "^copied ${#ODD_NAMES[@]} objects" out.txt
  aws_s3 cp --recursive "$S/tree/tree" awsback
  diff -r tree awsback
  aws_s3 cp --recursive tree "$S/awstree"
  expect_exit 0 "$R" store cp -r --verify read "$S/awstree" back
  diff -r tree back
  expect_exit 0 "$R" --json store ls -r "$S/awstree/"
  "$PY" -c 'import json,sys; d=json.load(open("out.txt")); assert len(d["objects"])==int(sys.argv[1]), d' "${#ODD_NAMES[@]}"
  expect_exit 0 "$R" store rm -r "$S/awstree"
  grep -q "^deleted ${#ODD_NAMES[@]} objects" out.txt
  [ "$(keys_under awstree/)" = 0 ]
}

test_150mib_multipart_both_ways() {
  head -c $((150 * 1024 * 1024)) /dev/urandom >big.bin
  expect_exit 0 "$R" store cp big.bin "$S/big/by-respawn.bin"
  aws_s3 cp "$S/big/by-respawn.bin" big.aws
  cmp big.bin big.aws
  rm -f big.aws
  aws_s3 cp big.bin "$S/big/by-aws.bin"
  expect_exit 0 "$R" store cp --verify read "$S/big/by-aws.bin" big.respawn
  cmp big.bin big.respawn
  rm -f big.respawn
  # Both were multipart uploads: their ETags end in -<parts>.
  expect_exit 0 "$R" --json store stat "$S/big/by-respawn.bin"
  "$PY" -c 'import json; d=json.load(open("out.txt")); assert d["size"]==150<<20, d; assert "-" in d["etag"], d'
  expect_exit 0 "$R" --json store stat "$S/big/by-aws.bin"
  "$PY" -c 'import json; d=json.load(open("out.txt")); assert "-" in d["etag"], d'
  # Store to store (S3 to S3 through a temporary file).
  expect_exit 0 "$R" store cp "$S/big/by-aws.bin" "$S/big/copied.bin"
  aws_s3 cp "$S/big/copied.bin" big.copied
  cmp big.bin big.copied
}

test_wrong_secret() {
  local wrong="WrongSecret${RANDOM}xyzABC0123456789"
  local start=$SECONDS
  AWS_SECRET_ACCESS_KEY="$wrong" expect_exit nonzero timeout 60 "$R" --timeout 10 store ls "$S/"
  [ $((SECONDS - start)) -le 15 ] || { echo "took $((SECONDS - start)) s"; return 1; }
  one_error_line
  grep -Eqi 'SignatureDoesNotMatch|secret' err.txt
  refute grep -qF -- "$wrong" err.txt out.txt
  no_secret_in err.txt out.txt
  AWS_SECRET_ACCESS_KEY="$wrong" expect_exit nonzero timeout 60 "$R" --timeout 10 store cp "$S/x" here
  one_error_line
  refute grep -qF -- "$wrong" err.txt out.txt
}

test_missing_bucket() {
  local bucket="no-such-bucket-$$-$RANDOM"
  expect_exit 2 timeout 60 "$R" store ls "s3://$bucket/"
  one_error_line
  grep -qF "$bucket" err.txt
  expect_exit 2 timeout 60 "$R" store cp /etc/hostname "s3://$bucket/x"
  one_error_line
  grep -qF "$bucket" err.txt
  no_secret_in err.txt out.txt
}

test_unreachable_endpoint() {
  local start=$SECONDS
  AWS_ENDPOINT_URL=http://127.0.0.1:1 expect_exit nonzero timeout 60 "$R" --timeout 5 store ls "s3://$B/"
  local took=$((SECONDS - start))
  [ "$took" -le 12 ] || { echo "took $took s with --timeout 5"; return 1; }
  one_error_line
  grep -q '127.0.0.1:1' err.txt
}

test_missing_key() {
  expect_exit 1 "$R" store cat "$S/no/such/key"
  one_error_line
  grep -q 'no/such/key' err.txt
}

test_doctor() {
  expect_exit 0 "$R" doctor --throughput-mib 16 "$S/doctor"
  grep -Eq '^ok +put-if-absent: supported' out.txt
  refute grep -q 'not supported' out.txt
  grep -q 'access key id' out.txt
  no_secret_in out.txt err.txt
  [ "$(keys_under doctor/)" = 0 ]  # probes cleaned up
  expect_exit 0 "$R" --json doctor --throughput-mib 0 "$S/doctor"
  "$PY" -c 'import json; d=json.load(open("out.txt")); assert d["ok"]; assert any(c["name"]=="put-if-absent" and c["supported"] for c in d["checks"]), d'
}

run test_respawn_writes_aws_reads
run test_aws_writes_respawn_reads
run test_recursive_both_ways
run test_150mib_multipart_both_ways
run test_wrong_secret
run test_missing_bucket
run test_unreachable_endpoint
run test_missing_key
run test_doctor
e2e_finish
