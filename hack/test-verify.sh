#!/usr/bin/env bash
# Shows that `make verify` passes on the committed tree and fails once a generated file is
# stale. Works on a clone of HEAD in a temp folder, reusing the tools in $BIN.
set -euo pipefail
BIN=${BIN:?set BIN to the folder with controller-gen and apigen}
repo=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git clone -q "$repo" "$tmp/msp"
cd "$tmp/msp"
git config user.email verify@msp.invalid
git config user.name verify
# -o: the tools are built already; never rebuild them from the clone's fresh timestamps.
mk() { make --no-print-directory BIN="$BIN" -o "$BIN/controller-gen" -o "$BIN/apigen" "$@"; }

if ! mk verify >"$tmp/clean.log" 2>&1; then
  echo "FAIL: make verify fails on the committed tree:" >&2
  cat "$tmp/clean.log" >&2
  exit 1
fi
echo "ok: make verify passes on the committed tree"

# A field's documentation changes, but nobody ran `make codegen`.
sed -i 's|// size is the storage the database may use|// size is how much storage the database may use|' apis/postgres/v1alpha1/postgresdatabase_types.go
git commit -qam "change a field's documentation without regenerating"
if mk verify >"$tmp/stale.log" 2>&1; then
  echo "FAIL: make verify passed although the generated files are stale" >&2
  cat "$tmp/stale.log" >&2
  exit 1
fi
if ! grep -q "generated files are stale" "$tmp/stale.log"; then
  echo "FAIL: make verify failed, but not for stale generated files:" >&2
  cat "$tmp/stale.log" >&2
  exit 1
fi
echo "ok: make verify fails on stale generated files:"
grep -E '^ ?M|stale' "$tmp/stale.log" | sed 's/^/    /'
