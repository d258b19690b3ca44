#!/usr/bin/env bash
# test-services.sh - make sure what `make test` needs is there, and say what
# is missing when it cannot be made so.
#
# The tests need PostgreSQL (TEST_DATABASE_URL, default
# postgres://postgres@127.0.0.1:5432/test, trust authentication) and Redis
# (TEST_REDIS_URL, default redis://127.0.0.1:6379/15); as root they also
# bring up a Samba AD DC (scripts/ad-dc.sh) and, for the browser tests, run
# Chromium.
#
# As root on Debian, for what is missing: installs the packages with apt
# (postgresql redis-server samba-ad-dc samba-ad-provision ldap-utils
# ldb-tools chromium; `apt-get update` once first), starts the PostgreSQL
# cluster listening on the URL's port and a redis-server on the URL's port
# (loopback only), lets loopback connections in without a password when
# they are refused (a test machine's setting), and creates the database.
# What already answers is left alone, so the same command works on a fresh
# machine, on a laptop whose services run, and in .ci/run.
#
# Without root, it only checks: each missing piece is named with how to get
# it, and the exit status is 1. `make test-short` needs none of them.
set -euo pipefail

db_url=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
redis_url=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

say() { printf 'test-services: %s\n' "$*"; }
missing=()
miss() { missing+=("$*"); }

is_root=
[ "$(id -u)" = 0 ] && is_root=1
is_loopback() { [[ $1 == 127.* || $1 == localhost || $1 == ::1 ]]; }
# answers HOST PORT: something accepts TCP connections there.
answers() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
# wait_for WHAT CMD...: up to 30 seconds for CMD to succeed.
wait_for() {
  local what=$1
  shift
  for _ in $(seq 60); do "$@" && return 0; sleep 0.5; done
  say "$what did not come up within 30 seconds"
  return 1
}

# --- the URLs ---------------------------------------------------------------
re_pg='^postgres(ql)?://(([^:@/]*)(:[^@/]*)?@)?([^:/?]+)(:([0-9]+))?/([^?]+)'
if [[ $db_url =~ $re_pg ]]; then
  pg_user=${BASH_REMATCH[3]:-postgres} pg_host=${BASH_REMATCH[5]} pg_port=${BASH_REMATCH[7]:-5432} pg_db=${BASH_REMATCH[8]}
else
  say "TEST_DATABASE_URL=$db_url is not a postgres://user@host:port/database URL"
  exit 1
fi
re_redis='^rediss?://([^@/]*@)?([^:/?]+)(:([0-9]+))?'
if [[ $redis_url =~ $re_redis ]]; then
  redis_host=${BASH_REMATCH[2]} redis_port=${BASH_REMATCH[4]:-6379}
else
  say "TEST_REDIS_URL=$redis_url is not a redis://host:port/db URL"
  exit 1
fi

# --- packages ---------------------------------------------------------------
packages=(postgresql redis-server samba-ad-dc samba-ad-provision ldap-utils ldb-tools chromium)
if [ -n "$is_root" ] && command -v dpkg >/dev/null && command -v apt-get >/dev/null; then
  absent=()
  for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || absent+=("$p"); done
  if [ ${#absent[@]} -gt 0 ]; then
    say "installing ${absent[*]} (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${absent[@]}" >/dev/null
  fi
fi

# --- PostgreSQL -------------------------------------------------------------
# start_pg starts the local Debian cluster that listens on pg_port.
start_pg() {
  command -v pg_lsclusters >/dev/null || return 1
  local ver name
  read -r ver name < <(pg_lsclusters -h | awk -v p="$pg_port" '$3 == p {print $1, $2; exit}') || return 1
  [ -n "$ver" ] || return 1
  say "starting PostgreSQL $ver/$name on port $pg_port"
  pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" start || return 1
  wait_for "PostgreSQL on port $pg_port" answers "$pg_host" "$pg_port"
}
# psql_tcp runs psql over TCP as the URL's user.
psql_tcp() { psql -X -q -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres -tA "$@"; }
# trust_loopback lets loopback TCP connections of the cluster on pg_port in
# without a password (a fresh Debian cluster asks for one).
trust_loopback() {
  local ver name hba
  read -r ver name < <(pg_lsclusters -h | awk -v p="$pg_port" '$3 == p {print $1, $2; exit}') || return 1
  hba=/etc/postgresql/$ver/$name/pg_hba.conf
  [ -f "$hba" ] || return 1
  say "letting loopback connections into PostgreSQL $ver/$name without a password ($hba; a test machine's setting)"
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  pg_ctlcluster --skip-systemctl-redirect "$ver" "$name" reload
}

pg_ok=
if ! answers "$pg_host" "$pg_port"; then
  if [ -n "$is_root" ] && is_loopback "$pg_host" && start_pg; then :; else
    miss "PostgreSQL on $pg_host:$pg_port (TEST_DATABASE_URL): install and start it, e.g. as root: apt-get install postgresql && pg_ctlcluster --skip-systemctl-redirect \$(ls /etc/postgresql) main start (or run \`sudo make test\`, which does it)"
  fi
fi
if answers "$pg_host" "$pg_port"; then
  if ! command -v psql >/dev/null; then
    miss "psql (to check the database $pg_db exists): apt-get install postgresql-client"
  elif ! psql_tcp -c 'SELECT 1' >/dev/null 2>&1; then
    if [ -n "$is_root" ] && is_loopback "$pg_host" && trust_loopback && psql_tcp -c 'SELECT 1' >/dev/null 2>&1; then
      pg_ok=1
    else
      miss "PostgreSQL on $pg_host:$pg_port refuses user $pg_user without a password: allow it in pg_hba.conf (host all all 127.0.0.1/32 trust) or put the password in TEST_DATABASE_URL"
    fi
  else
    pg_ok=1
  fi
fi
if [ -n "$pg_ok" ] && [ "$(psql_tcp -c "SELECT 1 FROM pg_database WHERE datname = '$pg_db'")" != 1 ]; then
  if psql_tcp -c "CREATE DATABASE \"$pg_db\"" >/dev/null 2>&1; then
    say "created the database $pg_db"
  else
    miss "the database $pg_db on $pg_host:$pg_port: create it (createdb -h $pg_host -p $pg_port -U $pg_user $pg_db)"
  fi
fi

# --- Redis ------------------------------------------------------------------
redis_ping() (
  exec 3<>"/dev/tcp/$redis_host/$redis_port" || exit 1
  printf 'PING\r\n' >&3
  read -r -t 2 reply <&3 || exit 1
  [[ $reply == +PONG* ]]
)
if ! answers "$redis_host" "$redis_port" 2>/dev/null; then
  if [ -n "$is_root" ] && is_loopback "$redis_host" && command -v redis-server >/dev/null; then
    say "starting redis-server on port $redis_port (nothing kept on disk)"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$redis_port" --save "" --appendonly no \
      --dir /var/lib/redis --logfile "/var/log/redis/test-$redis_port.log"
    wait_for "Redis on port $redis_port" redis_ping || true
  fi
fi
if ! redis_ping 2>/dev/null; then
  miss "Redis on $redis_host:$redis_port (TEST_REDIS_URL): install and start it, e.g. as root: apt-get install redis-server && redis-server --daemonize yes --bind 127.0.0.1 --port $redis_port --save '' (or run \`sudo make test\`, which does it)"
fi

# --- what root alone brings -------------------------------------------------
if [ -z "$is_root" ]; then
  say "not root: the Samba AD DC tests (connectors/ldap) are skipped; run as root to include them"
elif ! command -v samba >/dev/null; then
  say "samba is not installed: the AD DC tests are skipped (apt-get install samba-ad-dc samba-ad-provision ldap-utils ldb-tools)"
fi

if [ ${#missing[@]} -gt 0 ]; then
  say "missing what the tests need:"
  for m in "${missing[@]}"; do printf '  - %s\n' "$m"; done
  printf '  `make test-short` runs every test that needs no server.\n'
  exit 1
fi
say "PostgreSQL $pg_host:$pg_port/$pg_db and Redis $redis_host:$redis_port answer"
