#!/usr/bin/env bash
# Fails when the given paths differ from what is committed (modified, deleted or new files).
# Used by `make verify` right after `make codegen`.
set -euo pipefail
changes=$(git status --porcelain --untracked-files=all -- "$@")
if [ -n "$changes" ]; then
  echo "generated files are stale; run 'make codegen' and commit the result:" >&2
  echo "$changes" >&2
  git --no-pager diff --stat -- "$@" >&2 || true
  exit 1
fi
echo "generated files are up to date"
