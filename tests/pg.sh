#!/usr/bin/env bash
# Starts or stops a throwaway PostgreSQL 15 cluster for tests, demos and
# benchmarks.
#
#   tests/pg.sh start DIR [logical]
#                           initdb in DIR (created), start on a free
#                           127.0.0.1 port with its Unix socket in DIR,
#                           create database pqstest and the roles tests
#                           use, and write DIR/env (sourceable) with
#                           PQS_TEST_CONNINFO and friends. `logical`:
#                           with wal_level=logical (the change streams'
#                           server; not the standby's primary, whose
#                           recovery conflicts then end sessions).
#   tests/pg.sh standby DIR PRIMARY_DIR
#                           a hot standby of the server in PRIMARY_DIR
#                           (pg_basebackup -R, streaming), on a free port,
#                           with DIR/env naming it (PQS_TEST_STANDBY_*).
#   tests/pg.sh pgbouncer DIR SERVER_DIR
#                           PgBouncer in transaction mode (two server
#                           connections) in front of database pqstest of
#                           the server in SERVER_DIR, on a free port,
#                           with DIR/env naming it
#                           (PQS_TEST_PGBOUNCER_CONNINFO).
#   tests/pg.sh stop DIR    stop the server (or PgBouncer) and remove DIR.
#
# The server runs as the postgres OS user: initdb refuses root.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# Starts the cluster in $dir/data on a free 127.0.0.1 port (another
# program may take a free port first: a few tries) with server options $1,
# and prints the port.
run_on_free_port() {
  local port tries=0
  while :; do
    port=$(free_port)
    if as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off $1" \
      start >/dev/null; then
      echo "$port"
      return 0
    fi
    tries=$((tries + 1))
    [ $tries -lt 5 ] || { cat "$dir/server.log" >&2; exit 1; }
  done
}

start() {
  [ -x "$PGBIN/initdb" ] || { echo "PostgreSQL 15 server not found in $PGBIN (apt-get install postgresql-15)" >&2; exit 1; }
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  as_pg "$PGBIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 \
    --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  # scram for the one role that tests passwords; trust for the rest.
  cat >"$dir/data/pg_hba.conf" <<HBA
local all all trust
host  all pqs_scram 127.0.0.1/32 scram-sha-256
host  all all       127.0.0.1/32 trust
local replication all trust
host  replication all 127.0.0.1/32 trust
HBA
  local port
  local wal=""
  [ "${3:-}" = logical ] && wal="-c wal_level=logical"
  port=$(run_on_free_port "-c synchronous_commit=off -c full_page_writes=off -c max_connections=100 $wal")
  as_pg "$PGBIN/psql" -q -h "$dir" -p "$port" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 <<SQL >/dev/null
CREATE DATABASE pqstest;
CREATE ROLE pqs_scram LOGIN PASSWORD 'pqs-Secret-8734';
SQL
  cat >"$dir/env" <<ENV
export PQS_TEST_DIR='$dir'
export PQS_TEST_PORT='$port'
export PQS_TEST_CONNINFO='host=127.0.0.1 port=$port dbname=pqstest user=postgres'
export PQS_TEST_SOCKET_CONNINFO='host=$dir port=$port dbname=pqstest user=postgres'
export PQS_TEST_SCRAM_USER='pqs_scram'
export PQS_TEST_SCRAM_PASSWORD='pqs-Secret-8734'
ENV
  chmod 644 "$dir/env"
}

standby() {
  local primary=${1:?usage: $0 standby DIR PRIMARY_DIR}
  # shellcheck disable=SC1091
  local pport=$(. "$primary/env" && echo "$PQS_TEST_PORT")
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  as_pg "$PGBIN/pg_basebackup" -h "$primary" -p "$pport" -U postgres \
    -D "$dir/data" -R -X stream -c fast >"$dir/basebackup.log" 2>&1 ||
    { cat "$dir/basebackup.log" >&2; exit 1; }
  # Queries that conflict with replay are cancelled after 100 ms, so that
  # the conflict test need not wait.
  local port
  port=$(run_on_free_port "-c hot_standby=on -c max_standby_streaming_delay=100ms -c hot_standby_feedback=off")
  cat >"$dir/env" <<ENV
export PQS_TEST_STANDBY_DIR='$dir'
export PQS_TEST_STANDBY_PORT='$port'
export PQS_TEST_STANDBY_CONNINFO='host=127.0.0.1 port=$port dbname=pqstest user=postgres'
ENV
  chmod 644 "$dir/env"
}

pgbouncer() {
  local server=${1:?usage: $0 pgbouncer DIR SERVER_DIR}
  command -v pgbouncer >/dev/null ||
    { echo "pgbouncer not found (apt-get install pgbouncer)" >&2; exit 1; }
  # shellcheck disable=SC1091
  local sport=$(. "$server/env" && echo "$PQS_TEST_PORT")
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  local port tries=0
  echo '"postgres" ""' >"$dir/userlist.txt"
  while :; do
    port=$(free_port)
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
pqstest = host=127.0.0.1 port=$sport dbname=pqstest
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 50
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"/*
    # pgbouncer refuses to run as root.
    if as_pg pgbouncer -d -q "$dir/pgbouncer.ini"; then
      for _ in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.1
      done
      break
    fi
    tries=$((tries + 1))
    [ $tries -lt 5 ] || { cat "$dir/pgbouncer.log" >&2; exit 1; }
  done
  cat >"$dir/env" <<ENV
export PQS_TEST_PGBOUNCER_CONNINFO='host=127.0.0.1 port=$port dbname=pqstest user=postgres'
ENV
  chmod 644 "$dir/env"
}

stop() {
  if [ -f "$dir/pgbouncer.pid" ]; then
    kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  fi
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "$cmd" in
start) start "$@" ;;
standby) standby "${3:-}" ;;
pgbouncer) pgbouncer "${3:-}" ;;
stop) stop ;;
*) echo "usage: $0 start|standby|pgbouncer|stop DIR [PRIMARY_DIR]" >&2; exit 2 ;;
esac
