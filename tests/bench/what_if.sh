#!/usr/bin/env bash
# What-if over 10,000 requests: seeds a fresh SQLite store through the agent API (release
# build), then times `signoff-server policies check --last 10000` with the draft set in
# tests/bench/what_if_policies.toml, three times. The target: under a second.
# WHAT_IF_DATABASE_URL=postgres://… runs it on an empty Postgres database instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-target/release/signoff-server}
COUNT=${COUNT:-10000}
PORT=${PORT:-3997}
DIR=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$DIR"; }
trap cleanup EXIT
export DATABASE_URL="${WHAT_IF_DATABASE_URL:-sqlite://$DIR/signoff.db}" SIGNOFF_DATA_DIR="$DIR" SIGNOFF_LISTEN="127.0.0.1:$PORT" RUST_LOG=warn
KEY=$("$BIN" --dev agents create --name whatif-bot | tail -n1)
"$BIN" --dev >"$DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
KEY="$KEY" PORT="$PORT" COUNT="$COUNT" python3 - <<'PY'
import json, os, random, urllib.request
from concurrent.futures import ThreadPoolExecutor
random.seed(7)
url = f"http://127.0.0.1:{os.environ['PORT']}/api/v1/requests"
headers = {"Authorization": "Bearer " + os.environ["KEY"], "Content-Type": "application/json"}
actions = ["db.export", "db.drop", "deploy.service", "s3.copy", "iam.escalate", "db.read"]
def body(i):
    return json.dumps({
        "action": random.choice(actions),
        "resource": random.choice(["k8s://prod/payments", "k8s://staging/web", "orders", "s3://logs"]),
        "title": f"what-if seed {i}",
        "reason": "seed",
        "labels": {"env": random.choice(["prod", "staging", "dev"]), "team": random.choice(["payments", "data", "web"])},
        "payload": {"rows": random.randint(0, 5000), "replicas": random.randint(1, 8)},
        "context": {"ticket": random.choice(["CHG-1", "TEST-2", "CHG-3"])},
    }).encode()
def post(i):
    request = urllib.request.Request(url, data=body(i), headers=headers, method="POST")
    with urllib.request.urlopen(request) as response:
        assert response.status in (200, 201)
with ThreadPoolExecutor(16) as pool:
    list(pool.map(post, range(int(os.environ["COUNT"]))))
PY
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=
echo "what-if: $COUNT requests seeded; replaying tests/bench/what_if_policies.toml"
for run in 1 2 3; do
    "$BIN" policies check tests/bench/what_if_policies.toml --last "$COUNT" | grep '^replayed'
done
