#!/usr/bin/env bash
# Runs every fuzz target of the module for a fixed time each and prints the
# exec counts. Usage: scripts/fuzz-all.sh [FUZZTIME]   (default 30s)
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-30s}
status=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for target in $(grep -ho '^func \(Fuzz[A-Za-z0-9_]*\)' "$dir"/*_test.go 2>/dev/null | awk '{print $2}' | sort -u); do
    log=$(mktemp)
    if go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$t" -parallel 2 >"$log" 2>&1; then
      execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | awk '{print $2}')
      printf '%-45s %-22s ok    execs %s\n' "${pkg#github.com/pumplab/pumplab/}" "$target" "${execs:-?}"
    else
      printf '%-45s %-22s FAIL\n' "${pkg#github.com/pumplab/pumplab/}" "$target"
      tail -20 "$log"
      status=1
    fi
    rm -f "$log"
  done
done
exit $status
