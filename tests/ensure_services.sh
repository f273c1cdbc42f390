#!/usr/bin/env bash
# Make PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) reachable for the tests:
# use them when they already answer, start them when installed, install them otherwise.
set -euo pipefail

reachable() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq "$@" >/dev/null
}

wait_for() { # host port name
  for _ in $(seq 1 60); do reachable "$1" "$2" && return 0; sleep 0.5; done
  echo "ensure_services: $3 did not come up on $1:$2" >&2
  return 1
}

if ! reachable 127.0.0.1 5432; then
  echo "ensure_services: starting PostgreSQL"
  command -v pg_ctlcluster >/dev/null || apt_install postgresql
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for 127.0.0.1 5432 PostgreSQL
  # A fresh cluster asks for a password over TCP: give postgres the one the tests use.
  as_root su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" || true
  as_root su postgres -c "psql -q -tc \"SELECT 1 FROM pg_database WHERE datname='test'\" | grep -q 1 || createdb test" || true
fi

if ! reachable 127.0.0.1 6379; then
  echo "ensure_services: starting Redis"
  command -v redis-server >/dev/null || apt_install redis-server
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null || true
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for 127.0.0.1 6379 Redis
fi
# The vector store's migration runs CREATE EXTENSION vector: give the local cluster the
# pgvector extension when it lacks it. Debian's postgresql-<major>-pgvector when this
# release has it (12 does not); else Debian's pgvector source package (from a release
# that has it, through a private apt list: the system's sources stay as they are)
# compiled against this cluster's server headers. Skipped when already installed.
pgvector_source_suite=trixie
install_pgvector() { # major
  if apt-cache policy "postgresql-$1-pgvector" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    apt_install "postgresql-$1-pgvector"
    return
  fi
  apt_install "postgresql-server-dev-$1" build-essential
  local work; work=$(mktemp -d)
  chmod 755 "$work" # apt fetches as the _apt user
  mkdir -p "$work/lists/partial"
  echo "deb-src http://deb.debian.org/debian $pgvector_source_suite main" >"$work/sources.list"
  local apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$work/lists")
  as_root apt-get "${apt_opts[@]}" update -qq
  (cd "$work" && apt-get "${apt_opts[@]}" source --download-only -qq pgvector >/dev/null)
  tar -xzf "$work"/pgvector_*.orig.tar.gz -C "$work"
  local src; src=$(find "$work" -maxdepth 1 -type d -name 'pgvector-*' | head -n 1)
  make -s -C "$src" PG_CONFIG="/usr/lib/postgresql/$1/bin/pg_config" OPTFLAGS="" >/dev/null
  as_root make -s -C "$src" PG_CONFIG="/usr/lib/postgresql/$1/bin/pg_config" install >/dev/null
  rm -rf "$work"
}
if reachable 127.0.0.1 5432 && ls /usr/lib/postgresql/*/bin >/dev/null 2>&1; then
  for pg_major in $(ls /usr/lib/postgresql); do
    if [ ! -f "/usr/share/postgresql/$pg_major/extension/vector.control" ]; then
      echo "ensure_services: installing pgvector for PostgreSQL $pg_major"
      install_pgvector "$pg_major"
    fi
  done
fi
# The fault tests start, stop and restart Redis and PostgreSQL instances of their own
# (spare ports, temporary directories): they need the binaries even when the shared
# servers above run elsewhere (a container, another host).
if ! command -v redis-server >/dev/null; then
  echo "ensure_services: installing redis-server (binaries for the fault tests)"
  apt_install redis-server
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  echo "ensure_services: installing postgresql (binaries for the fault tests)"
  apt_install postgresql
fi
# The deployment tests run deploy/nginx.conf in a foreground nginx (never the system service).
if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
  echo "ensure_services: installing nginx"
  apt_install nginx-light || apt_install nginx
  # Debian's package may start the system service: the tests do not use it.
  as_root service nginx stop >/dev/null 2>&1 || true
fi
# The playground tests drive a real headless Chromium (tests/chromium.py).
if ! command -v chromium >/dev/null && [ ! -x /usr/bin/chromium ]; then
  echo "ensure_services: installing chromium (browser tests)"
  apt_install chromium
fi
# The JavaScript client's tests (clients/js) run under node's own test runner.
if ! command -v node >/dev/null; then
  echo "ensure_services: installing nodejs (JavaScript client tests)"
  apt_install nodejs
fi
echo "ensure_services: PostgreSQL and Redis are reachable, nginx, chromium and node are installed"
