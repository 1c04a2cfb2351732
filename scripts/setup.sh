#!/usr/bin/env bash
# Installs everything respawn needs to build and test on a fresh Debian 12 machine (as root):
# Debian packages with apt-get, and DuckDB 1.4.4 (libduckdb.so + duckdb.h) from the npm registry.
# Idempotent: a second run does nothing that is already done. Usage: scripts/setup.sh [--servers]
#   --servers   also install the servers and peer clients used by tests/benchmarks (Ceph radosgw,
#               OpenStack Swift, PostgreSQL 15 for the commit coordinator, awscli, rclone, s3cmd).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
want_servers=0
for a in "$@"; do case "$a" in --servers) want_servers=1 ;; *) echo "setup.sh: unknown option $a" >&2; exit 2 ;; esac; done

sudo_cmd=""
if [ "$(id -u)" != 0 ]; then sudo_cmd="sudo"; fi

build_pkgs=(build-essential cmake pkg-config git ca-certificates curl
  libcurl4-openssl-dev libssl-dev libtomlplusplus-dev libcli11-dev nlohmann-json3-dev
  libpugixml-dev libxxhash-dev libgtest-dev libgmock-dev libbenchmark-dev libpq-dev
  shellcheck)  # tests/shellcheck_test.sh lints every shell script
server_pkgs=(radosgw ceph-mon ceph-osd ceph-common uuid-runtime
  swift swift-proxy swift-object swift-container swift-account memcached python3-keystonemiddleware
  postgresql-15 awscli rclone s3cmd bc)

missing=()
check() { for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p"); done; }
check "${build_pkgs[@]}"
# Node.js/npm fetch DuckDB and run the independent Parquet readers; any install will do.
if ! command -v npm >/dev/null 2>&1; then missing+=(nodejs npm); fi
if [ "$want_servers" = 1 ]; then check "${server_pkgs[@]}"; fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  # Keep package scripts from starting system daemons (ceph, swift, memcached, postgresql) during
  # install.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee /usr/sbin/policy-rc.d >/dev/null
    $sudo_cmd chmod +x /usr/sbin/policy-rc.d
    trap '$sudo_cmd rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# DuckDB 1.4.4 from the npm registry: the official libduckdb.so and the matching duckdb.h.
duck="$here/.deps/duckdb-1.4.4"
if [ ! -f "$duck/lib/libduckdb.so" ] || [ ! -f "$duck/include/duckdb.h" ]; then
  echo "setup: fetching DuckDB 1.4.4 from the npm registry" >&2
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent @duckdb/node-bindings-linux-x64@1.4.4-r.4 duckdb@1.4.4 >/dev/null)
  mkdir -p "$duck/lib" "$duck/include"
  tar -xzf "$tmp"/duckdb-node-bindings-linux-x64-1.4.4-r.4.tgz -C "$tmp" package/libduckdb.so
  mv "$tmp/package/libduckdb.so" "$duck/lib/"
  tar -xzf "$tmp"/duckdb-1.4.4.tgz -C "$tmp" package/src/duckdb/src/include/duckdb.h
  mv "$tmp/package/src/duckdb/src/include/duckdb.h" "$duck/include/"
  rm -rf "$tmp"
fi
# The independent Parquet/CSV reader the end-to-end tests check respawn's outputs with
# (tests/tools/read_table.mjs): hyparquet, a pure-JavaScript Parquet parser that shares no code
# with DuckDB, plus its decompressors (zstd, snappy, ...).
install_node_reader() {
  local dir="$here/.deps/node-reader"
  local want=(hyparquet@1.31.5 hyparquet-compressors@1.1.2)
  if [ -f "$dir/node_modules/hyparquet/package.json" ] &&
     [ -f "$dir/node_modules/hyparquet-compressors/package.json" ] &&
     grep -q '"version": "1.31.5"' "$dir/node_modules/hyparquet/package.json"; then
    return 0
  fi
  echo "setup: installing the independent Parquet reader (hyparquet) from the npm registry" >&2
  mkdir -p "$dir"
  npm install --prefix "$dir" --silent --no-audit --no-fund --save-exact "${want[@]}" >/dev/null
}
install_node_reader

echo "setup: ok" >&2
