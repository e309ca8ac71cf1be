#!/bin/sh
# ASSESS 3 of msp-conformance for a PostgresDatabase: with the connection Secret's uri
# (CONNECTION_URI), psql creates a table, writes a row and reads it back. PSQL names the
# psql binary (default: psql on PATH).
set -eu
"${PSQL:-psql}" "$CONNECTION_URI" -v ON_ERROR_STOP=1 -qtA \
  -c "CREATE TABLE IF NOT EXISTS msp_conformance (at timestamptz DEFAULT now())" \
  -c "INSERT INTO msp_conformance DEFAULT VALUES" \
  -c "SELECT count(*) > 0 FROM msp_conformance" | grep -qx t
