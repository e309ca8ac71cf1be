#!/usr/bin/env bash
# Installs the PostgreSQL server binaries (initdb, pg_ctl, postgres) that pkg/pgserver
# (Start, its tests and `make run`) needs. Idempotent: when a server is installed
# already it only says where.
#
# The Debian package creates and starts a cluster "main" on port 5432; msp does not use it
# (StartServer runs its own instances in folders of its own), so this script stops it again.
set -euo pipefail

find_bin() {
  # The newest /usr/lib/postgresql/<version>/bin that has initdb.
  local d best="" bestv=-1 v
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] || continue
    v=$(basename "$(dirname "$d")")
    v=${v%%.*}
    if [[ "$v" =~ ^[0-9]+$ ]] && [ "$v" -gt "$bestv" ]; then
      best=$d
      bestv=$v
    fi
  done
  [ -n "$best" ] && echo "$best"
}

if bin=$(find_bin); then
  echo "PostgreSQL is installed: $bin"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "FAIL: PostgreSQL is not installed, and installing it needs root: run this script as root, or install sudo" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "FAIL: PostgreSQL is not installed and there is no apt-get here; install the PostgreSQL server (initdb, pg_ctl, postgres) with your package manager" >&2
  exit 1
fi

echo ">> installing PostgreSQL with apt-get"
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql

# The package may have started its default cluster on 5432: stop it, msp runs its own.
if command -v pg_lsclusters >/dev/null 2>&1; then
  while read -r ver name _; do
    [ -n "$ver" ] || continue
    "${as_root[@]}" pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
  done < <(pg_lsclusters --no-header 2>/dev/null || true)
fi
if command -v systemctl >/dev/null 2>&1; then
  "${as_root[@]}" systemctl stop postgresql >/dev/null 2>&1 || true
fi

if ! bin=$(find_bin); then
  echo "FAIL: apt-get installed postgresql, but there is no /usr/lib/postgresql/*/bin/initdb" >&2
  exit 1
fi
echo "PostgreSQL is installed: $bin"
