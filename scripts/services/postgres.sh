#!/usr/bin/env bash
# Starts a PostgreSQL server for the tests on 127.0.0.1 (as root; idempotent) and prints
# RETAIN_TEST_POSTGRES_URL=postgresql://... on stdout (scripts/test exports it).
#
# Installs Debian's postgresql when missing, creates a cluster of its own named "retain" (port
# RETAIN_TEST_POSTGRES_PORT, default 54329; listening on 127.0.0.1 only; password
# authentication over TCP), starts it, and creates the role and database the tests use. Run
# again with the server up, it only checks that it answers (no root needed then).
set -euo pipefail

port="${RETAIN_TEST_POSTGRES_PORT:-54329}"
user=retain
password=retain
database=retain_test
cluster=retain
url="postgresql://$user:$password@127.0.0.1:$port/$database"

log() { echo "postgres.sh: $*" >&2; }
fail() {
  log "$*"
  for f in /var/log/postgresql/postgresql-*-"$cluster".log; do
    [ -f "$f" ] && { log "--- tail of $f"; tail -n 20 "$f" >&2; }
  done
  exit 1
}
answers() {
  PGPASSWORD="$password" PGCONNECT_TIMEOUT=3 psql -X -q -w -h 127.0.0.1 -p "$port" -U "$user" \
    -d "$database" -tAc 'SELECT 1' >/dev/null 2>&1
}
as_postgres() { runuser -u postgres -- "$@"; }
sql() { as_postgres psql -X -q -w -h /var/run/postgresql -p "$port" -d postgres -tAc "$1"; }

if command -v psql >/dev/null && answers; then
  log "up at 127.0.0.1:$port"
  echo "RETAIN_TEST_POSTGRES_URL=$url"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  fail "no PostgreSQL answers at 127.0.0.1:$port as $user; run this script as root to install and start one"
fi

if ! command -v pg_createcluster >/dev/null || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing postgresql"
  # No "main" cluster from the package: the tests have their own, bound to 127.0.0.1.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/retain-tests.conf
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"

if [ ! -d "/etc/postgresql/$version/$cluster" ]; then
  log "creating cluster $version/$cluster on port $port"
  pg_createcluster --port "$port" --start-conf manual "$version" "$cluster" -- \
    --auth-local=peer --auth-host=scram-sha-256 >/dev/null
fi
# Loopback only, never the machine's other addresses (conf.d is read after postgresql.conf).
mkdir -p "/etc/postgresql/$version/$cluster/conf.d"
cat > "/etc/postgresql/$version/$cluster/conf.d/retain-tests.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
CONF
mkdir -p /var/run/postgresql && chown postgres:postgres /var/run/postgresql

status="$(pg_lsclusters -h | awk -v v="$version" -v c="$cluster" '$1 == v && $2 == c {print $4}')"
if [ "$status" != online ]; then
  log "starting cluster $version/$cluster"
  pg_ctlcluster "$version" "$cluster" start || fail "the cluster did not start"
fi
for _ in $(seq 100); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.1
done
pg_isready -q -h 127.0.0.1 -p "$port" || fail "the server does not answer on 127.0.0.1:$port"

if [ "$(sql "SELECT 1 FROM pg_roles WHERE rolname = '$user'")" != 1 ]; then
  sql "CREATE ROLE $user LOGIN PASSWORD '$password'" >/dev/null
fi
if [ "$(sql "SELECT 1 FROM pg_database WHERE datname = '$database'")" != 1 ]; then
  sql "CREATE DATABASE $database OWNER $user" >/dev/null
fi
answers || fail "the server is up but $user cannot connect to $database"
log "up at 127.0.0.1:$port"
echo "RETAIN_TEST_POSTGRES_URL=$url"
