#!/usr/bin/env bash
# Fails when a process started from the given bin folder (kcp, msp-local, servicelets, ...)
# is still running: tests must stop everything they start.
set -euo pipefail
bin=$(cd "${1:?bin folder}" && pwd)
left=$(pgrep -a -f "^$bin/" || true)
if [ -n "$left" ]; then
  echo "FAIL: processes left running after the tests:" >&2
  echo "$left" >&2
  exit 1
fi
echo "ok: no process from $bin is left running"
