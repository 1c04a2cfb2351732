#!/usr/bin/env bash
# The examples run as their comments say. examples/devprod: each profile writes its own store,
# --param overrides the profile's value, and the outputs equal what Python computes from the
# same CSV (a reader and an aggregation that share no code with respawn or DuckDB); a second
# run reuses every stage.
#
# Usage: tests/examples_test.sh path/to/respawn   (or with RESPAWN_BINARY set)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/tools/e2e_lib.sh"
SRC="${RESPAWN_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
e2e_init "${1:-}"

# expect_by_region MIN_AMOUNT: checks out/by_region.csv (';'-separated) and by_customer.json
# against Python's aggregation of the orders at or above MIN_AMOUNT.
expect_outputs() {
  "$PY" - "$1" <<'PYEOF'
import csv, json, sys
from collections import defaultdict
from decimal import Decimal
min_amount = Decimal(sys.argv[1])
orders = [r for r in csv.DictReader(open("ex/data/orders.csv"))
          if Decimal(r["amount"]) >= min_amount]
regions = defaultdict(lambda: [0, Decimal(0)])
customers = defaultdict(lambda: [0, Decimal(0)])
for r in orders:
    for agg, key in ((regions, r["region"]), (customers, r["customer"])):
        agg[key][0] += 1
        agg[key][1] += Decimal(r["amount"])
got = list(csv.reader(open("ex/out/by_region.csv"), delimiter=";"))
want = [["region", "orders", "revenue"]] + [
    [k, str(n), str(total.normalize() if total == total.to_integral() else total)]
    for k, (n, total) in sorted(regions.items())]
assert [row[:2] for row in got] == [row[:2] for row in want], (got, want)
assert all(Decimal(g[2]) == Decimal(w[2]) for g, w in zip(got[1:], want[1:])), (got, want)
lines = [json.loads(l) for l in open("ex/out/by_customer.json")]
want_c = sorted(((k, n, t) for k, (n, t) in customers.items()), key=lambda x: (-x[2], x[0]))
assert [(l["customer"], l["orders"], Decimal(str(l["total"]))) for l in lines] == want_c, lines
print(f"{len(orders)} orders at or above {min_amount}: outputs match")
PYEOF
}

test_devprod_profiles_and_params() {
  cp -r "$SRC/examples/devprod" ex
  rm -rf ex/out ex/.respawn-dev ex/.respawn-prod
  expect_exit 0 "$R" run ex/pipeline.toml --profile dev
  [ -d ex/.respawn-dev ] && [ ! -e ex/.respawn-prod ]
  expect_outputs 250
  expect_exit 0 "$R" run ex/pipeline.toml --profile dev
  all_stages_reused ex/pipeline.toml out.txt
  expect_exit 0 "$R" run ex/pipeline.toml --profile prod
  [ -d ex/.respawn-prod ]
  expect_outputs 0
  expect_exit 0 "$R" run ex/pipeline.toml --profile dev --param min_amount=100
  grep -q '^stage large_orders: computed .*(changed param min_amount)' out.txt
  expect_outputs 100
  expect_exit 0 "$R" show ex/pipeline.toml by_region --profile prod --format csv
  [ "$(sed -n 1p out.txt)" = "region,orders,revenue" ]
  # The partitioned output: one folder per region of the orders at or above 100, holding them.
  local want got r
  want="$(awk -F, 'NR > 1 && $5 >= 100 { print "region=" $3 }' ex/data/orders.csv | sort -u)"
  got="$(cd ex/out/orders_by_region && find . -mindepth 1 -maxdepth 1 -name 'region=*' -printf '%f\n' | sort)"
  if [ -z "$want" ] || [ "$want" != "$got" ]; then
    echo "partition folders: want $want, got $got"
    return 1
  fi
  for r in $got; do
    [ "$(table_csv ex/out/orders_by_region/"$r"/*.parquet | tail -n +2 | wc -l)" = \
      "$(awk -F, -v r="${r#region=}" 'NR > 1 && $5 >= 100 && $3 == r' ex/data/orders.csv | wc -l)" ]
  done
  # --select: a selected stage that is current is reused; the run is partial.
  expect_exit 0 "$R" run ex/pipeline.toml --profile dev --param min_amount=100 --select by_customer
  grep -q '^stage by_customer: reused' out.txt
  grep -q 'partial' out.txt
  expect_exit 0 "$R" log ex/pipeline.toml by_region --profile dev --param min_amount=100
  grep -q '^SQL as run:' out.txt
}

run test_devprod_profiles_and_params
e2e_finish
