#!/usr/bin/env bash
# Starts and stops a throwaway PostgreSQL 15 server for tests: respawn's commit coordinator
# (src/ledger/coordinator.h). It lives entirely in DIR (data, socket, log, pid), listens on
# 127.0.0.1 only, and is made fresh by every start.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage:
  scripts/pg-server.sh start DIR
  scripts/pg-server.sh stop DIR
  scripts/pg-server.sh status DIR

start   Makes a fresh cluster under DIR (anything a previous start left there is stopped and
        removed), with a user "respawn" whose password is random (scram-sha-256 over TCP), starts
        the server on a free port of 127.0.0.1, checks that a password login works, then writes
        DIR/env:
          RESPAWN_TEST_PG_URL=postgresql://respawn:PASSWORD@127.0.0.1:PORT/postgres
          RESPAWN_TEST_PG_PORT=PORT
          RESPAWN_TEST_PG_USER=respawn
          RESPAWN_TEST_PG_PASSWORD=PASSWORD
          RESPAWN_TEST_PG_BIN=/usr/lib/postgresql/15/bin
        The server refuses to run as root: as root, the cluster belongs to the "postgres" user
        (made by the Debian package) and every server command runs as that user. The
        postmaster's pid is in DIR/pid; the log in DIR/log/postgres.log.
stop    Sends SIGINT (fast shutdown) to the recorded postmaster pid, waits up to 15 s, then
        SIGQUIT, then SIGKILL. Leaves DIR in place (the log stays readable). Twice is fine.
status  Exit 0 when the recorded server runs.

Needs (Debian 12): postgresql-15 (scripts/setup.sh --servers).
EOF
}

die() { echo "pg-server: $*" >&2; exit 1; }
log() { echo "pg-server: $*" >&2; }

readonly kMarker=".respawn-pg-server"
BIN="${RESPAWN_PG_BIN:-/usr/lib/postgresql/15/bin}"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3

# Runs a command as the user that owns the cluster (postgres when we are root).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  "$PY" - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF
}

# True when pid $1 runs and is a postgres server (guards against pid reuse).
pid_is_postgres() {
  local cmdline
  cmdline="$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *postgres* ]]
}

stop_dir() {
  [ -f "$DIR/pid" ] || return 0
  local pid
  pid="$(cat "$DIR/pid")"
  if [ -n "$pid" ] && pid_is_postgres "$pid"; then
    kill -INT "$pid" 2>/dev/null || true
    local deadline=$(($(date +%s) + 15)) sig=QUIT
    while pid_is_postgres "$pid"; do
      if [ "$(date +%s)" -ge "$deadline" ]; then
        log "postgres (pid $pid) still runs; sending SIG$sig"
        kill "-$sig" "$pid" 2>/dev/null || true
        deadline=$(($(date +%s) + 5))
        sig=KILL
      fi
      sleep 0.05
    done
  fi
  : >"$DIR/pid"
}

prepare_dir() {
  if [ -e "$DIR" ]; then
    [ -d "$DIR" ] || die "$DIR exists and is not a directory"
    if [ -n "$(ls -A "$DIR")" ]; then
      [ -e "$DIR/$kMarker" ] ||
        die "$DIR is not empty and was not made by pg-server.sh; pick an empty or new directory"
      stop_dir
      find "$DIR" -mindepth 1 -maxdepth 1 ! -name "$kMarker" -exec rm -rf -- {} +
    fi
  fi
  mkdir -p "$DIR/log" "$DIR/sock"
  touch "$DIR/$kMarker" "$DIR/pid"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || die "user postgres does not exist (install postgresql-15)"
    chown postgres "$DIR" "$DIR/log" "$DIR/sock"
    # The server (running as postgres) must reach DIR: every parent needs search permission.
    as_owner test -x "$DIR" || die "user postgres cannot reach $DIR (a parent lacks o+x)"
  fi
}

start() {
  if [ ! -x "$BIN/initdb" ] || [ ! -x "$BIN/pg_ctl" ]; then
    die "PostgreSQL 15 is not installed in $BIN (apt-get install postgresql-15, or scripts/setup.sh --servers)"
  fi
  prepare_dir
  local password port
  password="$("$PY" -c 'import secrets; print(secrets.token_hex(16))')"
  (umask 077 && printf '%s\n' "$password" >"$DIR/pwfile")
  [ "$(id -u)" != 0 ] || chown postgres "$DIR/pwfile"
  as_owner "$BIN/initdb" -D "$DIR/data" -U respawn --pwfile="$DIR/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-instructions \
    >"$DIR/log/initdb.log" 2>&1 || { cat "$DIR/log/initdb.log" >&2; die "initdb failed"; }
  rm -f "$DIR/pwfile"
  port="$(free_port)"
  # fsync stays on (the default): tests of durability kill the server.
  as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/log/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $DIR/sock -c max_connections=200" \
    >"$DIR/log/pg_ctl.log" 2>&1 || { tail -n 30 "$DIR/log/postgres.log" >&2 || true; die "the server did not start"; }
  head -n 1 "$DIR/data/postmaster.pid" >"$DIR/pid"
  # A password login over TCP, as respawn will make it.
  PGPASSWORD="$password" "$BIN/psql" -X -q -w -h 127.0.0.1 -p "$port" -U respawn -d postgres \
    -c 'SELECT 1' >/dev/null 2>"$DIR/log/check.log" ||
    { cat "$DIR/log/check.log" >&2; stop_dir; die "a password login to 127.0.0.1:$port failed"; }
  (umask 077 && cat >"$DIR/env.tmp") <<EOF
RESPAWN_TEST_PG_URL=postgresql://respawn:$password@127.0.0.1:$port/postgres
RESPAWN_TEST_PG_PORT=$port
RESPAWN_TEST_PG_USER=respawn
RESPAWN_TEST_PG_PASSWORD=$password
RESPAWN_TEST_PG_BIN=$BIN
EOF
  mv "$DIR/env.tmp" "$DIR/env"
  log "postgres up at 127.0.0.1:$port (pid $(cat "$DIR/pid"), env: $DIR/env)"
}

# A start that fails leaves nothing running.
stop_on_failure() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then stop_dir; fi
}

main() {
  [ $# -ge 1 ] || { usage >&2; exit 2; }
  case "$1" in
    -h | --help | help) usage; exit 0 ;;
    *) ;;
  esac
  [ $# -eq 2 ] || { usage >&2; exit 2; }
  DIR="$(realpath -m -- "$2")"
  case "$1" in
    start)
      trap stop_on_failure EXIT
      start
      trap - EXIT
      ;;
    stop)
      [ -d "$DIR" ] || exit 0
      stop_dir
      ;;
    status)
      if [ ! -s "$DIR/pid" ] || ! pid_is_postgres "$(cat "$DIR/pid")"; then
        echo "no server running in $DIR"
        exit 1
      fi
      echo "postgres pid $(cat "$DIR/pid") running"
      grep -E '^RESPAWN_TEST_PG_(URL|PORT)' "$DIR/env" | sed -E 's#(://[^:]*:)[^@]*@#\1<password>@#'
      ;;
    *) usage >&2; exit 2 ;;
  esac
}

main "$@"
