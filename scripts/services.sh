#!/usr/bin/env bash
# Throw-away PostgreSQL and Redis servers on free loopback ports, for the tests and benchmarks
# that need them. Nothing here touches a system-wide cluster or service.
#
#   scripts/services.sh start        starts both; prints a directory DIR whose DIR/env holds
#                                    DATABASE_URL and REDIS_URL (source it)
#   scripts/services.sh stop DIR     stops exactly what `start` started there, and deletes DIR
#
# PostgreSQL 15 binaries come from Debian's postgresql package, Redis from redis-server; with
# INSTALL=1 (CI) a missing one is installed with apt-get.
set -euo pipefail

pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$dir" ] && command -v pg_config >/dev/null; then dir=$(pg_config --bindir); fi
  echo "$dir"
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# Runs a command as the owner of the cluster: PostgreSQL refuses to run as root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  if [ "${INSTALL:-}" = 1 ]; then
    local missing=()
    [ -n "$(pg_bin)" ] || missing+=(postgresql)
    command -v redis-server >/dev/null || missing+=(redis-server)
    if [ ${#missing[@]} -gt 0 ]; then
      apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
  fi
  local bin
  bin=$(pg_bin)
  [ -x "$bin/initdb" ] || { echo "services: PostgreSQL binaries not found" >&2; exit 1; }
  command -v redis-server >/dev/null || { echo "services: redis-server not found" >&2; exit 1; }

  local dir pg_port redis_port
  dir=$(mktemp -d /tmp/chat-services.XXXXXX)
  chmod 755 "$dir"
  mkdir "$dir/pg"
  [ "$(id -u)" = 0 ] && chown postgres "$dir" "$dir/pg"
  pg_port=$(free_port)
  as_owner "$bin/initdb" -D "$dir/pg" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
  as_owner "$bin/pg_ctl" -D "$dir/pg" -l "$dir/pg/server.log" -w \
    -o "-p $pg_port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null

  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir"
  for _ in $(seq 50); do [ -s "$dir/redis.pid" ] && break; sleep 0.1; done

  cat >"$dir/env" <<ENV
export DATABASE_URL=postgres://postgres@127.0.0.1:$pg_port/postgres
export REDIS_URL=redis://127.0.0.1:$redis_port
ENV
  echo "$dir"
}

stop() {
  local dir=${1:?usage: services.sh stop DIR}
  case "$dir" in /tmp/chat-services.*) ;; *) echo "services: not a services directory: $dir" >&2; exit 1 ;; esac
  if [ -f "$dir/pg/postmaster.pid" ]; then
    as_owner "$(pg_bin)/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null || true
  fi
  if [ -s "$dir/redis.pid" ]; then
    local pid
    pid=$(cat "$dir/redis.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: services.sh start | stop DIR" >&2; exit 2 ;;
esac
