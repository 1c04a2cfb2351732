#!/usr/bin/env bash
# Starts and stops throwaway S3-compatible servers for tests and benchmarks, all on 127.0.0.1:
#   radosgw  Ceph RADOS Gateway (with one ceph-mon and one ceph-osd): full S3 semantics,
#            including put-if-absent (If-None-Match: *).
#   swift    OpenStack Swift with its s3api middleware (tempauth, memcached): no conditional PUT,
#            which exercises respawn's lease fallback.
# Each server lives entirely in DIR (config, data, logs, pids) and is made fresh by every start.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage:
  scripts/s3-server.sh start radosgw DIR [--bluestore] [--size BYTES]
  scripts/s3-server.sh start swift DIR
  scripts/s3-server.sh stop DIR
  scripts/s3-server.sh status DIR

start   Makes a fresh server under DIR (anything a previous start left there is stopped and
        removed), waits until a signed S3 request works, creates a user with a random access
        key and secret and the bucket "respawn-test", then writes DIR/env:
          AWS_ENDPOINT_URL=http://127.0.0.1:PORT
          AWS_ACCESS_KEY_ID=...
          AWS_SECRET_ACCESS_KEY=...
          AWS_REGION=us-east-1
          RESPAWN_TEST_BUCKET=respawn-test
          RESPAWN_TEST_SERVER=radosgw|swift
        (use it with: set -a; . DIR/env; set +a). Every daemon's pid is in DIR/pids, logs are
        in DIR/log. Ports are picked free at start; nothing listens beyond 127.0.0.1.
  --bluestore  radosgw only: keep objects in a sparse file under DIR (BlueStore) instead of
               RAM (memstore); for benchmarks that write GiBs.
  --size BYTES radosgw only: capacity of the OSD (default 4 GiB for memstore, 64 GiB for the
               sparse BlueStore file).
stop    Sends SIGTERM to every pid recorded in DIR/pids, waits up to 15 s, then SIGKILL.
        Leaves DIR in place (logs stay readable). Doing it twice is fine.
status  Prints each recorded daemon and whether it runs; exit 0 only if all of them do.

Needs (Debian 12): radosgw ceph-mon ceph-osd ceph-common uuid-runtime swift swift-proxy
swift-object swift-container swift-account memcached openssl python3 (scripts/setup.sh --servers).
EOF
}

die() { echo "s3-server: $*" >&2; exit 1; }
log() { echo "s3-server: $*" >&2; }

readonly kBucket="respawn-test"
readonly kRegion="us-east-1"
readonly kMarker=".respawn-s3-server"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# Prints N distinct TCP ports on 127.0.0.1 that are free right now.
free_ports() {
  "$PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Prints the first port of a run of N consecutive free TCP ports on 127.0.0.1.
free_port_range() {
  "$PY" - "$1" <<'EOF'
import random, socket, sys
n = int(sys.argv[1])
for _ in range(200):
    base = random.randrange(20000, 60000 - n)
    socks = []
    try:
        for p in range(base, base + n):
            s = socket.socket()
            socks.append(s)
            s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(base)
    sys.exit(0)
sys.exit("no run of %d free ports found" % n)
EOF
}

now() { date +%s.%N; }

# Notes in DIR/log/start.log how long start has taken so far, for finding slow steps.
step() { printf '%6.2f s  %s\n' "$(echo "$(now) - $T0" | bc -l)" "$*" >>"$DIR/log/start.log"; }

# Runs a daemon in its own session with all stdio on a log file and records its pid.
#   spawn NAME LOGFILE CMD...
spawn() {
  local name="$1" logfile="$2"
  shift 2
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  local pid=$!
  echo "$pid $name" >>"$DIR/pids"
}

# True when pid $1 runs and its command line mentions $2 (guards against pid reuse).
pid_matches() {
  local pid="$1" name="$2"
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$name"* ]]
}

# Sends SigV4-signed requests without a body to $ENDPOINT as $ACCESS_KEY (credentials pass
# through the environment, never argv), in order. Until WAIT_SECONDS pass (or a recorded daemon
# exits), the first request is retried whatever the error (the server is still coming up), the
# others on 5xx and connection errors (a backend daemon may still be starting).
#   s3_call WAIT_SECONDS METHOD PATH [METHOD PATH]...
s3_call() {
  S3_ACCESS_KEY="$ACCESS_KEY" S3_SECRET_KEY="$SECRET_KEY" S3_ENDPOINT="$ENDPOINT" \
    S3_REGION="$kRegion" S3_PIDS="$DIR/pids" "$PY" - "$@" <<'END_S3_CALL_PY'
import datetime, hashlib, hmac, http.client, os, sys, time, urllib.parse

access, secret = os.environ["S3_ACCESS_KEY"], os.environ["S3_SECRET_KEY"]
endpoint, region = os.environ["S3_ENDPOINT"], os.environ["S3_REGION"]
host = urllib.parse.urlsplit(endpoint).netloc
empty_sha256 = hashlib.sha256(b"").hexdigest()

def hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()

def request(method, path):
    amz_date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scope = "%s/%s/s3/aws4_request" % (amz_date[:8], region)
    headers = {"host": host, "x-amz-content-sha256": empty_sha256, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join([method, path, "", "".join("%s:%s\n" % (k, headers[k]) for k in sorted(headers)),
                           signed, empty_sha256])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = hm(("AWS4" + secret).encode(), amz_date[:8])
    for part in (region, "s3", "aws4_request"):
        key = hm(key, part)
    headers["authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s" % (
        access, scope, signed, hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest())
    headers["content-length"] = "0"
    conn = http.client.HTTPConnection(host, timeout=10)
    try:
        conn.request(method, path, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        conn.close()

def daemons_alive():
    with open(os.environ["S3_PIDS"]) as f:
        for line in f:
            pid, name = line.split(None, 1)
            try:
                os.kill(int(pid), 0)
            except OSError:
                return "%s (pid %s) exited" % (name.strip(), pid)
    return None

wait = float(sys.argv[1])
calls = list(zip(sys.argv[2::2], sys.argv[3::2]))
deadline = time.monotonic() + wait
for i, (method, path) in enumerate(calls):
    while True:
        try:
            status, body = request(method, path)
            # A retried bucket PUT may find the bucket made by the attempt that timed out.
            if status < 300 or (status == 409 and "BucketAlreadyOwnedByYou" in body):
                break
            last = "HTTP %d: %s" % (status, body[:300])
            retry = i == 0 or status >= 500
        except OSError as e:
            last = str(e)
            retry = True
        dead = daemons_alive()
        if not retry or dead or time.monotonic() >= deadline:
            sys.exit("%s %s failed: %s%s" % (method, path, last, "; " + dead if dead else ""))
        time.sleep(0.1)
END_S3_CALL_PY
}

# Makes DIR empty and ours: stops what a previous start left, refuses foreign directories.
prepare_dir() {
  if [ -e "$DIR" ]; then
    [ -d "$DIR" ] || die "$DIR exists and is not a directory"
    if [ -n "$(ls -A "$DIR")" ]; then
      [ -e "$DIR/$kMarker" ] ||
        die "$DIR is not empty and was not made by s3-server.sh; pick an empty or new directory"
      stop_dir
      # Unlinking thousands of files can take tens of seconds (ext4 with online discard), so the
      # old server's files go to a trash directory that a background rm empties.
      local trash="$DIR/.trash.$$.$RANDOM"
      mkdir "$trash"
      find "$DIR" -mindepth 1 -maxdepth 1 ! -name "$kMarker" ! -name '.trash.*' \
        -exec mv -t "$trash" -- {} +
      setsid nice -n 19 rm -rf -- "$trash" </dev/null >/dev/null 2>&1 &
    fi
  fi
  mkdir -p "$DIR/log"
  touch "$DIR/$kMarker" "$DIR/pids"
}

write_env() {
  local server="$1"
  (umask 077 && cat >"$DIR/env.tmp") <<EOF
AWS_ENDPOINT_URL=$ENDPOINT
AWS_ACCESS_KEY_ID=$ACCESS_KEY
AWS_SECRET_ACCESS_KEY=$SECRET_KEY
AWS_REGION=$kRegion
RESPAWN_TEST_BUCKET=$kBucket
RESPAWN_TEST_SERVER=$server
EOF
  mv "$DIR/env.tmp" "$DIR/env"
  step "ready"
}

# ---------------------------------------------------------------------------------------------
# radosgw: ceph-mon + ceph-osd + radosgw, auth none, one replica.

start_radosgw() {
  local objectstore="memstore" size=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --bluestore) objectstore="bluestore" ;;
      --size) [ $# -ge 2 ] || die "--size needs a value in bytes"; size="$2"; shift ;;
      *) die "unknown option for radosgw: $1 (see --help)" ;;
    esac
    shift
  done
  if [ -z "$size" ]; then
    if [ "$objectstore" = memstore ]; then size=$((4 << 30)); else size=$((64 << 30)); fi
  fi
  local b
  for b in ceph-mon ceph-osd radosgw radosgw-admin monmaptool ceph uuidgen openssl; do
    command -v "$b" >/dev/null || die "$b not found; run scripts/setup.sh --servers"
  done

  local mon_port rgw_port osd_base fsid osd_uuid conf
  read -r mon_port rgw_port <<<"$(free_ports 2)"
  osd_base="$(free_port_range 16)"
  fsid="$(uuidgen)"
  osd_uuid="$(uuidgen)"
  conf="$DIR/ceph.conf"
  mkdir -p "$DIR/run" "$DIR/mon" "$DIR/osd/0" "$DIR/rgw" "$DIR/crash"

  local store_conf
  if [ "$objectstore" = memstore ]; then
    store_conf="osd objectstore = memstore
memstore device bytes = $size"
  else
    store_conf="osd objectstore = bluestore
bluestore block path = $DIR/osd/block.0
bluestore block create = true
bluestore block size = $size
bluestore block db create = false
bluestore block wal create = false
bluestore fsck on mount = false
bluestore cache size = 268435456"
  fi

  cat >"$conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$mon_port]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
keyring = $DIR/keyring
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
log to stderr = false
err to stderr = false
crash dir = $DIR/crash
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
paxos propose interval = 0.05
mon data avail warn = 2
mon data avail crit = 1

[mon]
mon data = $DIR/mon/\$name

[osd]
osd data = $DIR/osd/\$id
ms bind port min = $osd_base
ms bind port max = $((osd_base + 15))
$store_conf

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:$rgw_port tcp_nodelay=1
rgw data = $DIR/rgw
# Lifecycle workers sleep through SIGTERM and delay exit by seconds; no test uses lifecycle rules.
rgw enable lc threads = false
# Deleted and overwritten data goes back to the (RAM-backed) OSD within a minute, not 2 h.
rgw gc obj min wait = 60
rgw gc processor period = 30
EOF
  : >"$DIR/keyring"

  monmaptool --create --clobber --addv a "[v2:127.0.0.1:$mon_port]" --fsid "$fsid" \
    "$DIR/monmap" >"$DIR/log/mkfs.log" 2>&1 || die "monmaptool failed; see $DIR/log/mkfs.log"
  ceph-mon -c "$conf" --mkfs -i a --monmap "$DIR/monmap" >>"$DIR/log/mkfs.log" 2>&1 ||
    die "ceph-mon --mkfs failed; see $DIR/log/mkfs.log"
  step "mon made"
  spawn ceph-mon "$DIR/log/ceph-mon.out" ceph-mon -c "$conf" -f -i a

  timeout 60 ceph -c "$conf" --connect-timeout 30 osd create "$osd_uuid" >>"$DIR/log/mkfs.log" 2>&1 ||
    die "ceph osd create failed; see $DIR/log/mkfs.log and $DIR/log/mon.a.log"
  step "osd created in the osdmap"
  timeout 120 ceph-osd -c "$conf" -i 0 --mkfs --osd-uuid "$osd_uuid" >>"$DIR/log/mkfs.log" 2>&1 ||
    die "ceph-osd --mkfs failed; see $DIR/log/mkfs.log"
  spawn ceph-osd "$DIR/log/ceph-osd.out" ceph-osd -c "$conf" -f -i 0
  step "osd made"

  ENDPOINT="http://127.0.0.1:$rgw_port"
  ACCESS_KEY="$(openssl rand -hex 10 | tr a-f A-F)"
  SECRET_KEY="$(openssl rand -hex 20)"
  # Before radosgw starts: run beside it, radosgw-admin sometimes waits ~5 s on its notifies.
  # It blocks until the OSD serves the pools it creates. Its output (with the secret) is dropped.
  timeout 120 radosgw-admin -c "$conf" user create --uid=respawn --display-name=respawn \
    --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null 2>"$DIR/log/user-create.log" ||
    die "radosgw-admin user create failed; see $DIR/log/user-create.log"
  step "user created"
  spawn radosgw "$DIR/log/radosgw.out" radosgw -c "$conf" -f -n client.rgw
  s3_call 120 GET / PUT "/$kBucket" ||
    die "radosgw at $ENDPOINT did not answer a signed request or make bucket $kBucket; see $DIR/log"
  write_env radosgw
}

# ---------------------------------------------------------------------------------------------
# swift: proxy (s3api + tempauth) + account/container/object servers + memcached, one replica.

start_swift() {
  [ $# -eq 0 ] || die "unknown option for swift: $1 (see --help)"
  local b
  for b in swift-proxy-server swift-account-server swift-container-server swift-object-server \
    memcached openssl; do
    command -v "$b" >/dev/null || die "$b not found; run scripts/setup.sh --servers"
  done
  local memcached_port proxy_port account_port container_port object_port etc
  read -r memcached_port proxy_port account_port container_port object_port <<<"$(free_ports 5)"
  etc="$DIR/etc"
  mkdir -p "$etc" "$DIR/srv/d1" "$DIR/run"

  # tempauth turns user_<account>_<user> = <key> into the S3 access key "<account>:<user>" with
  # the S3 secret <key>.
  local user
  user="$(openssl rand -hex 8)"
  ACCESS_KEY="respawn:$user"
  SECRET_KEY="$(openssl rand -hex 20)"
  ENDPOINT="http://127.0.0.1:$proxy_port"

  cat >"$etc/swift.conf" <<END_SWIFT_CONF
[swift-hash]
swift_hash_path_suffix = $(openssl rand -hex 16)
swift_hash_path_prefix = $(openssl rand -hex 16)

[storage-policy:0]
name = Policy-0
default = yes

[swift-constraints]
END_SWIFT_CONF
  local kind port
  for kind in account container object; do
    case "$kind" in
      account) port="$account_port" ;;
      container) port="$container_port" ;;
      object) port="$object_port" ;;
      *) die "no port for $kind" ;;
    esac
    cat >"$etc/$kind-server.conf" <<END_SERVER_CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $port
workers = 0
user = root
swift_dir = $etc
devices = $DIR/srv
mount_check = false
log_name = $kind-server
log_level = INFO

[pipeline:main]
pipeline = $kind-server

[app:$kind-server]
use = egg:swift#$kind
END_SERVER_CONF
  done

  (
    umask 077  # holds the secret
    cat >"$etc/proxy-server.conf" <<END_PROXY_CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $proxy_port
workers = 0
user = root
swift_dir = $etc
log_name = proxy-server
log_level = INFO

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats bulk s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:s3api]
use = egg:swift#s3api
location = $kRegion
max_upload_part_num = 10000
multi_delete_concurrency = 8

[filter:tempauth]
use = egg:swift#tempauth
user_respawn_$user = $SECRET_KEY .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$memcached_port

[filter:slo]
use = egg:swift#slo
max_manifest_segments = 10000

[filter:dlo]
use = egg:swift#dlo

[filter:copy]
use = egg:swift#copy

[filter:versioned_writes]
use = egg:swift#versioned_writes

[filter:bulk]
use = egg:swift#bulk

[filter:listing_formats]
use = egg:swift#listing_formats

[filter:proxy-logging]
use = egg:swift#proxy_logging

[filter:healthcheck]
use = egg:swift#healthcheck

[filter:gatekeeper]
use = egg:swift#gatekeeper

[filter:catch_errors]
use = egg:swift#catch_errors
END_PROXY_CONF
  )

  # One Python process builds all three rings (swift-ring-builder would take nine).
  /usr/bin/python3 - "$etc" "$account_port" "$container_port" "$object_port" \
    >"$DIR/log/rings.log" 2>&1 <<'END_RINGS_PY' || die "building the swift rings failed; see $DIR/log/rings.log"
import sys
from swift.common.ring import RingBuilder
etc = sys.argv[1]
for kind, port in zip(("account", "container", "object"), sys.argv[2:5]):
    builder = RingBuilder(8, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "device": "d1", "weight": 100.0, "meta": ""})
    builder.rebalance()
    builder.save("%s/%s.builder" % (etc, kind))
    builder.get_ring().save("%s/%s.ring.gz" % (etc, kind))
END_RINGS_PY

  step "rings built"
  spawn memcached "$DIR/log/memcached.log" memcached -l 127.0.0.1 -p "$memcached_port" -U 0 -u root -m 64
  for kind in account container object proxy; do
    spawn "swift-$kind-server" "$DIR/log/$kind-server.log" \
      "swift-$kind-server" "$etc/$kind-server.conf" -v
  done
  s3_call 120 GET / PUT "/$kBucket" ||
    die "swift at $ENDPOINT did not answer a signed request or make bucket $kBucket; see $DIR/log"
  write_env swift
}

# ---------------------------------------------------------------------------------------------

# Stops the recorded daemons newest first (clients before the servers they talk to, so none of
# them waits on a peer that is already gone): SIGTERM, up to 15 s in all, then SIGKILL.
stop_dir() {
  [ -f "$DIR/pids" ] || return 0
  local pid name entries=()
  while read -r pid name; do entries=("$pid:$name" "${entries[@]+"${entries[@]}"}"); done <"$DIR/pids"
  local deadline=$(($(date +%s) + 15)) entry
  for entry in "${entries[@]+"${entries[@]}"}"; do
    pid="${entry%%:*}"
    name="${entry#*:}"
    pid_matches "$pid" "$name" || continue
    kill -TERM "$pid" 2>/dev/null || true
    while pid_matches "$pid" "$name"; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        log "$name (pid $pid) still runs 15 s after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        break
      fi
      sleep 0.05
    done
  done
  : >"$DIR/pids"
}

status_dir() {
  if [ ! -s "$DIR/pids" ]; then
    echo "no server recorded in $DIR"
    return 1
  fi
  local pid name rc=0
  while read -r pid name; do
    if pid_matches "$pid" "$name"; then echo "$name pid $pid running"; else echo "$name pid $pid stopped"; rc=1; fi
  done <"$DIR/pids"
  if [ -f "$DIR/env" ]; then grep -E '^(AWS_ENDPOINT_URL|RESPAWN_TEST_)' "$DIR/env" || rc=1; fi
  return $rc
}

main() {
  [ $# -ge 1 ] || { usage >&2; exit 2; }
  case "$1" in
    -h | --help | help) usage; exit 0 ;;
    *) ;;
  esac
  local cmd="$1"
  shift
  case "$cmd" in
    start)
      [ $# -ge 2 ] || { usage >&2; exit 2; }
      local server="$1"
      DIR="$(realpath -m -- "$2")"
      shift 2
      case "$server" in radosgw | swift) ;; *) die "unknown server '$server' (radosgw or swift)" ;; esac
      T0="$(now)"
      prepare_dir
      step "directory ready"
      # A start that fails leaves nothing running.
      trap 'rc=$?; if [ $rc -ne 0 ]; then stop_dir; fi' EXIT
      "start_$server" "$@"
      trap - EXIT
      printf 's3-server: %s up at %s in %.1f s (env: %s/env)\n' "$server" "$ENDPOINT" \
        "$(echo "$(now) - $T0" | bc -l)" "$DIR"
      ;;
    stop)
      [ $# -eq 1 ] || { usage >&2; exit 2; }
      DIR="$(realpath -m -- "$1")"
      [ -d "$DIR" ] || exit 0
      stop_dir
      ;;
    status)
      [ $# -eq 1 ] || { usage >&2; exit 2; }
      DIR="$(realpath -m -- "$1")"
      status_dir
      ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
