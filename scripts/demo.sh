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
  local shown=("${@/#eyJ*/[token]}")  # never print a token
  if [ "$got" -ne "$want" ]; then echo "demo: '${shown[*]}' exited $got, expected $want" >&2; exit 1; fi
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

# -- plan and apply on the embedded engines ------------------------------------------------------
# A demo control repo of the compliant examples (the example repo itself is denied on purpose).
DEMO="$OUT/repo"
mkdir -p "$DEMO/workflows/retail" "$DEMO/workflows/health" "$DEMO/workflows/finance" "$DEMO/environments"
cp environments/local.yaml "$DEMO/environments/"
cp workflows/retail/inventory-sync.yaml workflows/retail/price-feed-export.yaml "$DEMO/workflows/retail/"
cp workflows/health/appointment-reminders.yaml workflows/health/patient-intake.yaml "$DEMO/workflows/health/"
PIDS=()
stop_workers() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stop_workers
  $CPL local down --repo "$DEMO" >/dev/null 2>&1 || true
}
trap cleanup EXIT

step "start the embedded engines (Temporal dev server, Step Functions emulator)"
expect 0 $CPL local up --repo "$DEMO"

step "validate and check the demo repo"
expect 0 $CPL validate --repo "$DEMO"
expect 0 $CPL check --env local --repo "$DEMO"

step "plan: everything is to be created (exit 4), plan file in $OUT/plan.json"
expect 4 $CPL plan --env local --repo "$DEMO" --out "$OUT/plan.json"

step "apply the reviewed plan file"
expect 0 $CPL apply --env local --repo "$DEMO" --plan "$OUT/plan.json"

step "plan again: nothing left to do (exit 0)"
expect 0 $CPL plan --env local --repo "$DEMO"

step "run health/patient-intake on Temporal through cpl's interpreter"
$CPL worker --env local --target temporal-local --repo "$DEMO" >"$OUT/worker.log" 2>&1 &
PIDS+=($!)
.venv/bin/python scripts/demo_activities.py --repo "$DEMO" --env local >"$OUT/activities.log" 2>&1 &
PIDS+=($!)
sleep 3
expect 0 $CPL run health/patient-intake --env local --repo "$DEMO" --wait --timeout 2m --input \
  '{"intakeId": "3f0c9a56-1d2b-4c1e-9a8f-2b7d5e6c4a10", "patient": {"firstName": "Ada", "lastName": "Lovelace", "dateOfBirth": "1815-12-10"}, "consents": ["treatment", "privacy-notice"], "insurance": null, "clinicId": "clinic-berlin-1"}'

step "a run that fails: the patient is already registered; its dead letter goes to health-dlq (SQS)"
INTAKE='{"intakeId": "7a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "consents": ["treatment"], "insurance": null, "clinicId": "clinic-berlin-1", "patient": {"firstName": "Ada", "lastName": "Byron", "dateOfBirth": "1815-12-10", "mrn": "%s"}}'
expect 1 $CPL run health/patient-intake --env local --repo "$DEMO" --wait --timeout 2m \
  --input "$(printf "$INTAKE" dup-0001)"

step "dead letters of the local environment (listing consumes nothing)"
expect 0 $CPL dlq list --env local --repo "$DEMO"
LETTER=$($CPL dlq list --env local --repo "$DEMO" --format json | .venv/bin/python -c \
  'import json, sys; print(next(m["id"] for m in json.load(sys.stdin)["messages"] if m["workflow"] == "health/patient-intake"))')

step "replay it with the corrected input (the merged MRN): a new run, linked in the audit trail"
expect 0 $CPL dlq replay "$LETTER" --env local --repo "$DEMO" --format json \
  --input "$(printf "$INTAKE" MRN-1001)" | tee "$OUT/replay.json"
.venv/bin/python - "$DEMO" "$OUT/replay.json" <<'PY'
import json, os, sys
from pathlib import Path
from controlplane.engines.temporal.runner import TemporalRunner
from controlplane.spec.load import load_environment

repo = Path(sys.argv[1])
environment = load_environment(repo, "local")
run_id = json.loads(Path(sys.argv[2]).read_text())["replayedAs"]["runId"]
outcome = TemporalRunner(environment, repo).outcome(environment.target("temporal-local"), run_id, 120)
print(f"replayed run {run_id}: {outcome['status']}")
# like cpl's own commands, leave by os._exit: temporalio's native threads may still be
# running, and Python's finalization must not race them
sys.stdout.flush()
os._exit(0 if outcome["status"] == "succeeded" else 1)
PY
expect 0 $CPL dlq list --env local --repo "$DEMO"

step "drift: change a live state machine by hand, as someone in the console would"
.venv/bin/python - "$DEMO" <<'PY'
import json, sys
from pathlib import Path
from controlplane.engines.stepfunctions.aws import aws_client
from controlplane.spec.load import load_environment

environment = load_environment(Path(sys.argv[1]), "local")
sfn = aws_client(environment.target("sfn-local"), "stepfunctions")
arn = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
           if m["name"] == "retail-inventory-sync")
described = sfn.describe_state_machine(stateMachineArn=arn)
definition = json.loads(described["definition"])
definition["Comment"] = "hot-fixed in the console"
logging = {**described["loggingConfiguration"], "includeExecutionData": True}
sfn.update_state_machine(stateMachineArn=arn, definition=json.dumps(definition),
                         loggingConfiguration=logging)
print(f"edited {arn}: Comment and includeExecutionData")
PY
expect 5 $CPL drift --env local --repo "$DEMO" --metrics "$OUT/drift.prom"

step "drift --sync: re-apply the desired state through the policy gate"
expect 0 $CPL drift --env local --repo "$DEMO" --sync --yes >/dev/null
expect 0 $CPL drift --env local --repo "$DEMO"

step "verify the tamper-evident audit trail"
expect 0 $CPL audit verify --env local --repo "$DEMO"

step "the compliance report for auditors"
expect 0 $CPL report --env local --repo "$DEMO" -o "$OUT/report.html"

step "identity: an environment whose principals are verified tokens (spec.identity)"
# A copy of local whose tokens are signed by a development key (its public JWKS in the repo),
# and a payout that waits for an approval by finance; access.signal also lets clerks signal,
# so the interpreter's own check of approvers.roles shows.
.venv/bin/python - "$DEMO" <<'PY'
import sys
from pathlib import Path
import yaml

repo = Path(sys.argv[1])
env = yaml.safe_load((repo / "environments" / "local.yaml").read_text())
env["metadata"]["name"] = "verified"
env["spec"]["identity"] = {"issuer": "https://cpl.local/dev", "audience": "cpl",
                           "jwks": "identity/jwks.json"}
env["spec"]["audit"] = {"sinks": [{"file": ".cpl/audit/verified.jsonl"}]}
env["spec"].setdefault("deploy", {})["state"] = ".cpl/state/verified"
(repo / "environments" / "verified.yaml").write_text(yaml.safe_dump(env, sort_keys=False))
(repo / "workflows" / "finance").mkdir(parents=True, exist_ok=True)
(repo / "workflows" / "finance" / "payout-approval.yaml").write_text("""\
apiVersion: cpl.dev/v1
kind: Workflow
metadata: {name: payout-approval, tenant: finance, version: 1.0.0, owner: team-finance,
           description: A payout released by finance., labels: {runtime: temporal}}
spec:
  timeout: 10m
  start: approve
  steps:
    - {name: approve, type: approval, signal: approve-payout, timeout: 5m,
       approvers: {roles: [finance]}, next: released}
    - {name: released, type: succeed}
  access:
    start: {roles: [payments]}
    signal: {roles: [finance, clerk]}
""")
PY
FAY=$($CPL access token --env verified --repo "$DEMO" --new-key --sub fay --role finance --ttl 10m)
CID=$($CPL access token --env verified --repo "$DEMO" --sub cid --role clerk --ttl 10m)
PAM=$($CPL access token --env verified --repo "$DEMO" --sub pam --role payments --ttl 10m)
echo "development signing key in $DEMO/.cpl/identity/, public keys in $DEMO/identity/jwks.json"
stop_workers  # this worker records the interpreter's signal events in the verified trail
$CPL worker --env verified --target temporal-local --repo "$DEMO" >"$OUT/worker-verified.log" 2>&1 &
PIDS+=($!)
sleep 3

step "a token without the role: cpl run is denied (exit 3, access.start, recorded)"
RUN_ARGS=(finance/payout-approval --env verified --target temporal-local --repo "$DEMO")
expect 3 $CPL run "${RUN_ARGS[@]}" --token "$CID"
RUN=$($CPL run "${RUN_ARGS[@]}" --token "$PAM" --format json \
  | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["runId"])')
echo "started $RUN as pam"

step "approvals: a clerk's is refused by the interpreter, finance's (a verified token) releases"
expect 0 $CPL signal "$RUN" approve-payout '{"approved": true}' --env verified \
  --target temporal-local --repo "$DEMO" --token "$CID"
expect 0 $CPL signal "$RUN" approve-payout '{"approved": true}' --env verified \
  --target temporal-local --repo "$DEMO" --token "$FAY"
.venv/bin/python - "$DEMO" "$RUN" <<'PY'
import json, os, sys, time
from pathlib import Path
from controlplane.engines.temporal.runner import TemporalRunner
from controlplane.spec.load import load_environment

repo, run_id = Path(sys.argv[1]), sys.argv[2]
environment = load_environment(repo, "verified")
outcome = TemporalRunner(environment, repo).outcome(environment.target("temporal-local"), run_id, 120)
print(f"run {run_id}: {outcome['status']}, trace {outcome['trace']}")
log = repo / ".cpl" / "audit" / "verified.jsonl"
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    events = [json.loads(line) for line in log.read_text().splitlines()]
    signals = [e for e in events if e["type"].startswith("dev.cpl.signal.")]
    if len(signals) >= 2:
        break
    time.sleep(0.2)
for event in events:
    data = event["data"]
    print(f"audit: {event['type']} actor={data.get('actor')} verified={data.get('verified')} "
          f"rule={data.get('rule', '-')}")
ok = outcome["status"] == "succeeded" and [e["type"] for e in signals] == [
    "dev.cpl.signal.refused", "dev.cpl.signal.accepted"]
sys.stdout.flush()
os._exit(0 if ok else 1)  # as above: no finalization while temporalio's threads run
PY

step "the compliance report's access section: who started and approved what, verified"
expect 0 $CPL report --env verified --repo "$DEMO" -o "$OUT/report-verified.html"
expect 0 $CPL report --env verified --repo "$DEMO" --format json -o "$OUT/report-verified.json"
.venv/bin/python - "$OUT/report-verified.json" <<'PY'
import json, sys
from pathlib import Path

access = json.loads(Path(sys.argv[1]).read_text())["evidence"]["audit"]["access"]
for entry in reversed(access["entries"]):
    who = f"{entry['actor']} ({'verified' if entry['verified'] else 'self-declared'})"
    print(f"access: {entry['kind']:<16} {who:<18} {entry['outcome']:<8} {entry['detail'] or ''}")
approved = [e for e in access["entries"] if e["kind"] == "signal accepted" and e["verified"]]
sys.exit(0 if approved and approved[0]["actor"] == "fay" else 1)
PY

step "stop the workers and the engines"
stop_workers
expect 0 $CPL local down --repo "$DEMO"
