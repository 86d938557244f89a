#!/usr/bin/env bash
# The main job on the example control repo: validate, compare engines, render, and gate.
# Each step states what it shows; expected non-zero exits (a denial) are checked, not ignored.
set -euo pipefail
cd "$(dirname "$0")/.."
CPL=".venv/bin/cpl"
OUT=".cpl/demo"
rm -rf "$OUT" && mkdir -p "$OUT"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
expect() {  # expect CODE command...: run, and fail the demo unless it exits with CODE
  local want=$1; shift
  set +e; "$@"; local got=$?; set -e
  if [ "$got" -ne "$want" ]; then echo "demo: '$*' exited $got, expected $want" >&2; exit 1; fi
}

step "validate the example repo (schema + semantic checks)"
expect 0 $CPL validate

step "portability: what each engine runs exactly, approximately or not at all"
expect 0 $CPL compat retail/order-fulfillment health/prior-authorization

step "render every workflow for the local environment into $OUT/render"
for workflow in $(find workflows -name '*.yaml' | sort); do
  expect 0 $CPL render "$workflow" --env local -o "$OUT/render" >/dev/null
done
find "$OUT/render" -type f | sort

step "policy gates on the local environment: the deliberately non-compliant examples are denied"
expect 3 $CPL check --env local
expect 3 $CPL check --env prod --format sarif -o "$OUT/prod.sarif"
echo "SARIF report for prod written to $OUT/prod.sarif"
