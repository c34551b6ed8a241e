#!/usr/bin/env bash
# `just bench`: Signoff beside the reference baseline (a bare axum + sqlx server doing the same
# durable work and nothing else, ../shared/bench/baseline), in one run, with the same load
# generator (wrk, the same threads, connections and durations), release builds of both, on
# 127.0.0.1. Prints each figure with the baseline's and their ratio, and writes the table to
# target/bench/ratios.md.
#
#   creations/s         wrk POST /api/v1/requests (signoff-body.json)  vs  /sqlite-batch, /postgres-batch (body.json)
#   decisions/s         wrk POST /api/v1/requests/{id}/decisions, every one approving a distinct
#                       pending request, with reviewers' terminal tokens  vs  the same batch route
#   wake-up             signoff-bench wake (decision over HTTP → the waiting agent's answer)  vs  wakebench latency
#   10,000 waiters RSS  signoff-bench hold on a fresh server  vs  wakebench hold on a fresh baseline
#   open loop           signoff-bench open-loop: 1,000 creations/s for 60 s, sent whatever the answers
#   notify              creations/s as above on two fresh servers, alternating: one with no channels, one
#                       with two webhook endpoints and Slack (every request routed to slack:#bench), all at
#                       a local receiver (signoff-bench receiver) that answers 2xx at once and counts what
#                       arrived during each run and after it; their ratio (no baseline: it notifies nobody).
#                       Then signoff-bench notify-latency: 100 creations/s for BENCH_NOTIFY_SECONDS on a
#                       server with one webhook endpoint at an in-process receiver, each request.created
#                       timed from the creation's answer (after its commit) to the delivery's arrival.
#
# Before each measurement it waits (a while, not forever) for other work to leave the CPUs, and
# it records the cores the server, the load generator, Postgres and everything else used.
#
# Env (defaults): SIGNOFF_BASELINE_DIR (../shared/bench/baseline from the repository root),
#   SIGNOFF_BASELINE_TARGET_DIR (/tmp/baseline-target), BENCH_STORES ("sqlite postgres"),
#   BENCH_PHASES ("create decide wake open hold notify"; decide sizes itself and is compared by create),
#   BENCH_THREADS (2) BENCH_CONNS (64) BENCH_WARMUP (3, s) BENCH_DURATION (15, s) BENCH_RUNS (2),
#   BENCH_WAITS (1000) BENCH_HOLD (10000) BENCH_OPEN_RATE (1000, /s) BENCH_OPEN_SECONDS (60),
#   BENCH_NOTIFY_RATE (100, /s) BENCH_NOTIFY_SECONDS (20),
#   BENCH_QUIET_WAIT (30, s per measurement) BENCH_QUIET_BUDGET (300, s per run), BENCH_PG_POOL (16,
#   the baseline's), BENCH_POSTGRES_URL (TEST_POSTGRES_URL, or postgres://postgres@127.0.0.1:5432/postgres),
#   BENCH_NO_BUILD=1 (use the binaries as built), BENCH_STRICT=1 (exit 3 when a target is missed).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BENCH=$ROOT/tests/bench
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET in /*) ;; *) TARGET=$ROOT/$TARGET ;; esac
BIN=$TARGET/release
REPORT_DIR=$TARGET/bench
REPORT=$REPORT_DIR/ratios.md
BASELINE_DIR=${SIGNOFF_BASELINE_DIR:-$ROOT/../shared/bench/baseline}
BASELINE_TARGET=${SIGNOFF_BASELINE_TARGET_DIR:-/tmp/baseline-target}
STORES=${BENCH_STORES:-sqlite postgres} PHASES=${BENCH_PHASES:-create decide wake open hold notify}
THREADS=${BENCH_THREADS:-2} CONNS=${BENCH_CONNS:-64} WARMUP=${BENCH_WARMUP:-3}
DURATION=${BENCH_DURATION:-15} RUNS=${BENCH_RUNS:-2} WAITS=${BENCH_WAITS:-1000} HOLD=${BENCH_HOLD:-10000}
OPEN_RATE=${BENCH_OPEN_RATE:-1000} OPEN_SECONDS=${BENCH_OPEN_SECONDS:-60}
NOTIFY_RATE=${BENCH_NOTIFY_RATE:-100} NOTIFY_SECONDS=${BENCH_NOTIFY_SECONDS:-20}
QUIET_WAIT=${BENCH_QUIET_WAIT:-30} QUIET_BUDGET=${BENCH_QUIET_BUDGET:-300} PG_POOL=${BENCH_PG_POOL:-16}
PG_ADMIN=${BENCH_POSTGRES_URL:-${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}}
HZ=$(getconf CLK_TCK)
# The baseline ignores credentials; it gets a bearer header all the same, like post.lua sends.
BASELINE_BEARER=sk_baseline_0123456789abcdef0123456789abcdef

die() { echo "ratios.sh: $*" >&2; exit 2; }
note() { echo "ratios.sh: $*" >&2; }

# ----- what the run needs -----------------------------------------------------------------

for file in Cargo.toml body.json signoff-body.json; do
  [ -f "$BASELINE_DIR/$file" ] || die "no reference baseline at $BASELINE_DIR (missing $file).
  Point SIGNOFF_BASELINE_DIR at the baseline's directory (the one with Cargo.toml, body.json and signoff-body.json)."
done
BASELINE_DIR=$(cd "$BASELINE_DIR" && pwd)
BASELINE_BODY=$BASELINE_DIR/body.json
SIGNOFF_BODY=$BASELINE_DIR/signoff-body.json

need() { command -v "$1" >/dev/null || {
  note "installing $1"
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >/dev/null; } ||
    die "$1 is needed: install it (apt-get install $1)"
}; }
need wrk; need jq; need curl

if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  note "building the baseline (release, $BASELINE_TARGET) and Signoff (release)"
  CARGO_TARGET_DIR=$BASELINE_TARGET cargo build --release --quiet --manifest-path "$BASELINE_DIR/Cargo.toml"
  (cd "$ROOT" && cargo build --release --quiet -p signoff-server -p signoff-tests --bins)
fi
BASELINE_BIN=$BASELINE_TARGET/release
for binary in "$BASELINE_BIN/baseline" "$BASELINE_BIN/wakebench" "$BIN/signoff-server" "$BIN/signoff-bench"; do
  [ -x "$binary" ] || die "$binary is missing: build it (without BENCH_NO_BUILD=1 this script does)"
done

# 10,000 waiters are 10,000 sockets on each side.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) >= HOLD + 1000 )) || note "only $(ulimit -n) open files allowed; $HOLD waiters may fail"

pg_ok() { command -v psql >/dev/null && psql "$PG_ADMIN" -qAtc 'select 1' >/dev/null 2>&1; }
if [[ " $STORES " == *" postgres "* ]] && ! pg_ok; then
  version=$(ls /etc/postgresql 2>/dev/null | tail -1)
  [ -n "$version" ] && pg_ctlcluster --skip-systemctl-redirect "$version" main start 2>/dev/null && sleep 1
  if ! pg_ok; then
    [ "${SIGNOFF_REQUIRE_POSTGRES:-0}" = 1 ] && die "Postgres is required but $PG_ADMIN does not answer"
    note "no Postgres answers at $PG_ADMIN: Postgres figures skipped"
    STORES=${STORES//postgres/}
  fi
fi
PG_SERVER=${PG_ADMIN%/*}

# ----- processes, databases, clean-up -----------------------------------------------------

WORK=$(mktemp -d /tmp/signoff-ratios.XXXXXX)
RES=$WORK/results
mkdir -p "$RES" "$REPORT_DIR"
PIDS=() PG_DBS=() FAILED=()

stop_pid() { # SIGTERM, then (after 30 s) SIGKILL; only the servers this script started
  local pid=$1 i kept=()
  for i in "${PIDS[@]}"; do [ "$i" = "$pid" ] || kept+=("$i"); done
  (( ${#kept[@]} < ${#PIDS[@]} )) || return 0
  PIDS=("${kept[@]}")
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 300; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local pid name
  for pid in "${PIDS[@]}"; do stop_pid "$pid"; done
  PIDS=()
  for name in "${PG_DBS[@]}"; do psql "$PG_ADMIN" -qAtc "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null 2>&1 || true; done
  mkdir -p "$REPORT_DIR/ratios-logs" && cp "$WORK"/*.log "$REPORT_DIR/ratios-logs/" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

new_pg_db() { # -> the URL of a fresh database
  local name=signoff_bench_$$_$1
  psql "$PG_ADMIN" -qAtc "CREATE DATABASE $name" >/dev/null
  PG_DBS+=("$name")
  echo "$PG_SERVER/$name"
}

wait_listening() { # FILE SED_EXPR PID : the address a server printed, within 60 s
  local file=$1 expr=$2 pid=$3 url i
  for ((i = 0; i < 600; i++)); do
    url=$(sed -n "$expr" "$file" 2>/dev/null | head -1)
    [ -n "$url" ] && { echo "$url"; return; }
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  die "server $pid did not start; its log: $(tail -5 "$file" "${file%.out}.log" 2>/dev/null)"
}

BL_N=0 BL_PGURL=
start_baseline() { # -> BL_PID, BL_URL: a fresh baseline process (SQLite file, and Postgres when measured)
  BL_N=$((BL_N + 1))
  local log=$WORK/baseline-$BL_N.log
  SQLITE_PATH=$WORK/baseline-data/baseline.db DATABASE_URL=$BL_PGURL PG_POOL=$PG_POOL \
    "$BASELINE_BIN/baseline" 127.0.0.1:0 >/dev/null 2>"$log" &
  BL_PID=$!
  PIDS+=("$BL_PID")
  BL_URL=$(wait_listening "$log" 's/^baseline listening on \(http:[^ ]*\).*/\1/p' "$BL_PID")
}

DB_N=0
new_signoff_db() { # STORE -> DB_URL, DB_DIR, KEY: a fresh database with one agent
  DB_N=$((DB_N + 1))
  DB_DIR=$WORK/signoff-$DB_N
  mkdir -p "$DB_DIR"
  case $1 in
    sqlite) DB_URL=sqlite://$DB_DIR/signoff.db ;;
    postgres) DB_URL=$(new_pg_db "$DB_N") ;;
  esac
  # Nothing from the caller's environment; a placeholder provider, never contacted by the
  # agent API; one agent holds all 10,000 waits.
  SO_ENV=(env -i PATH="$PATH" HOME="${HOME:-/tmp}" DATABASE_URL="$DB_URL" SIGNOFF_DATA_DIR="$DB_DIR"
    SIGNOFF_LISTEN=127.0.0.1:0 SIGNOFF_OIDC_ISSUER=http://127.0.0.1:9 SIGNOFF_OIDC_CLIENT_ID=x
    SIGNOFF_MAX_WAITS_PER_AGENT=100000 RUST_LOG=warn)
  KEY=$("${SO_ENV[@]}" "$BIN/signoff-server" agents create --name bench | tail -n1)
  [[ $KEY == so_agent_* ]] || die "signoff-server agents create printed no key"
}
SO_N=0
start_signoff() { # -> SO_PID, SO_URL: the release server on DB_URL
  SO_N=$((SO_N + 1))
  local log=$WORK/signoff-$SO_N.log
  "${SO_ENV[@]}" "$BIN/signoff-server" serve >"$log.out" 2>"$log" &
  SO_PID=$!
  PIDS+=("$SO_PID")
  SO_URL=$(wait_listening "$log.out" 's/^signoff-server listening on //p' "$SO_PID")
}

check_post() { # URL BODY BEARER : the body must be accepted with 201
  local code
  code=$(curl -s -o "$WORK/check.json" -w '%{http_code}' -X POST "$1" -H "Authorization: Bearer $3" \
    -H 'Content-Type: application/json' --data-binary @"$2")
  [ "$code" = 201 ] || die "POST $1 with $(basename "$2") answered $code, not 201: $(head -c 300 "$WORK/check.json")"
}

# ----- CPU accounting and quiet ---------------------------------------------------------

machine_ticks() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 + $9, $9 }' /proc/stat; } # busy (incl. steal), steal
ticks_of() { # the user + system ticks of the given processes (those still alive)
  local total=0 pid t
  for pid in "$@"; do
    [ -n "$pid" ] || continue # (a measurement that starts its own server names none)
    t=$(awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$pid/stat" 2>/dev/null) || continue
    total=$((total + ${t:-0}))
  done
  echo $total
}
postgres_pids() { pgrep -x postgres || true; }

QUIET_SPENT=0 BUSY_BEFORE=0
quiet() { # wait until the CPUs are nearly idle (< 0.15 core busy over 1 s), within the budgets
  local started=$SECONDS limit=$QUIET_WAIT b0 b1
  (( QUIET_BUDGET - QUIET_SPENT < limit )) && limit=$((QUIET_BUDGET - QUIET_SPENT))
  while :; do
    read -r b0 _ < <(machine_ticks); sleep 1; read -r b1 _ < <(machine_ticks)
    BUSY_BEFORE=$(awk -v t=$((b1 - b0)) -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }')
    (( (b1 - b0) * 100 < HZ * 15 )) && break
    if (( SECONDS - started >= limit )); then
      note "CPUs still busy with other work ($BUSY_BEFORE cores); measuring anyway"
      break
    fi
  done
  QUIET_SPENT=$((QUIET_SPENT + SECONDS - started))
}

DETAILS=() OTHER=()
# measure NAME LABEL SERVER_PID COMMAND... : runs COMMAND, its stdout (one JSON line) saved as
# results/NAME.json; a row with the CPU split goes to the details.
measure() {
  local name=$1 label=$2 server=$3; shift 3
  quiet
  local b0 st0 s0 p0 b1 st1 s1 p1 t0 el out cpu
  read -r b0 st0 < <(machine_ticks); s0=$(ticks_of "$server"); p0=$(ticks_of $(postgres_pids))
  t0=$(date +%s.%N)
  note "$label"
  if out=$( { TIMEFORMAT='%3U %3S'; time "$@" 2>>"$WORK/loadgen.log"; } 2>"$WORK/time" ) &&
     [ -n "$out" ] && jq -e . >/dev/null 2>&1 <<<"$out"; then
    echo "$out" >"$RES/$name.json"
  else
    FAILED+=("$label")
    note "FAILED: $label (see $REPORT_DIR/ratios-logs/loadgen.log): $(tail -3 "$WORK/loadgen.log")"
    out='{}'
  fi
  el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  read -r b1 st1 < <(machine_ticks); s1=$(ticks_of "$server"); p1=$(ticks_of $(postgres_pids))
  cpu=$(awk -v b=$((b1 - b0)) -v st=$((st1 - st0)) -v s=$((s1 - s0)) -v p=$((p1 - p0)) -v hz="$HZ" -v el="$el" '
    { l = ($1 + $2) * hz; o = b - st - s - l - p; if (o < 0) o = 0
      printf "%.2f | %.2f | %.2f | %.2f | %.2f", s / hz / el, l / hz / el, p / hz / el, o / hz / el, st / hz / el }' "$WORK/time")
  OTHER+=("$(cut -d'|' -f4 <<<"$cpu" | tr -d ' ')")
  DETAILS+=("| $label | $(summarize "$out") | $cpu | $BUSY_BEFORE |")
  echo "    $(summarize "$out") | cores server, loadgen, postgres, other, stolen: $cpu" >&2
}
summarize() { # one measurement's JSON → a short text
  jq -r '
    def n: if . == null then "?" else tostring end;
    if .rps then "\(.rps)/s, p50 \(.p50_ms) ms, p99 \(.p99_ms) ms, \(.errors) errors, \(.seconds) s"
      + (if (.threads_out_of_ids // 0) > 0 then ", ids ran out" else "" end)
      + (if .receiver_at_end then "; arrived during the run: \(.receiver_at_end.webhook - .receiver_before.webhook) webhook deliveries, \(.receiver_at_end.slack - .receiver_before.slack) Slack calls (receiver: \(.receiver_cores) cores)" else "" end)
    elif .decision_sent_to_waiter then "decision recorded → waiter p50 \(.decision_recorded_to_waiter.p50_ms) / p99 \(.decision_recorded_to_waiter.p99_ms) / max \(.decision_recorded_to_waiter.max_ms) ms; decision sent → waiter p50 \(.decision_sent_to_waiter.p50_ms) / p99 \(.decision_sent_to_waiter.p99_ms) / max \(.decision_sent_to_waiter.max_ms) ms; decision answered → waiter p99 \(.decision_reply_to_waiter.p99_ms) ms; decision call p99 \(.decision_call.p99_ms) ms"
    elif .wake_sent_to_waiter then "wake sent → waiter p50 \(.wake_sent_to_waiter.p50_ms) / p99 \(.wake_sent_to_waiter.p99_ms) / max \(.wake_sent_to_waiter.max_ms) ms; wake answered → waiter p99 \(.wake_returned_to_waiter.p99_ms) ms"
    elif .rss_parked_mb then "\(.parked) parked in \(.ramp_s) s\(if (.ended_early // 0) > 0 then " (\(.ended_early) ended before woken)" else "" end); RSS idle \(.rss_idle_mb) MB, parked \(.rss_parked_mb) MB, VmHWM \(.hwm_mb) MB; all woken in \(.wake_all_s) s, \(.errors) errors\(if .first_error then " (first: \(.first_error))" else "" end)"
    elif .scheduled then "\(.ok) of \(.scheduled) at \(.sent_per_second)/s: p50 \(.p50_ms) / p99 \(.p99_ms) / p99.9 \(.p999_ms) / max \(.max_ms) ms, \(.errors) errors\(if .first_error then " (first: \(.first_error))" else "" end); sender late ≤ \(.sender_late_max_ms) ms; \(.connections_max) connections"
    elif .answer_to_delivery then "\(.delivered) of \(.created) request.created at \(.rate)/s: answer → delivery p50 \(.answer_to_delivery.p50_ms) / p99 \(.answer_to_delivery.p99_ms) / max \(.answer_to_delivery.max_ms) ms; sent → delivery p99 \(.sent_to_delivery.p99_ms) ms; recorded → delivery p99 \(.recorded_to_delivery.p99_ms) ms; \(.delivered_before_answer) before the answer; \(.missing) missing, \(.errors) errors\(if .first_error then " (first: \(.first_error))" else "" end); sender late ≤ \(.sender_late_max_ms) ms"
    else "failed" end' <<<"$1" | tr '|' '/'
}

wrk_create() { # URL BODY_FILE BEARER SECONDS
  BODY_FILE=$2 BEARER=$3 wrk -t"$THREADS" -c"$CONNS" -d"${4}s" --timeout 10s -s "$BENCH/create.lua" "$1" |
    sed -n 's/^SUMMARY //p'
}
wrk_decide() { # URL IDS_FILE TOKENS SECONDS
  IDS_FILE=$2 TOKENS=$3 THREADS=$THREADS wrk -t"$THREADS" -c"$CONNS" -d"${4}s" --timeout 10s -s "$BENCH/decide.lua" "$1" |
    sed -n 's/^SUMMARY //p'
}

phase() { [[ " $PHASES " == *" $1 "* ]] && { [ "$1" != hold ] || (( HOLD > 0 )); }; }

seed() { # COUNT FILE : pending requests on SO_URL, on behalf of someone no reviewer is; their ids
  note "seeding $1 pending requests for the decisions"
  "$BIN/signoff-bench" seed "$SO_URL" "$KEY" "$1" "$SIGNOFF_BODY" requester@bench.example >"$2" 2>>"$WORK/loadgen.log"
}

# ----- notifications ----------------------------------------------------------------------

RECEIVER_URL= RECEIVER_PID=
start_receiver() { # -> RECEIVER_URL, RECEIVER_PID: one receiver for every webhook endpoint and Slack's API
  local log=$WORK/receiver.log
  "$BIN/signoff-bench" receiver >"$log.out" 2>"$log" &
  RECEIVER_PID=$!
  PIDS+=("$RECEIVER_PID")
  RECEIVER_URL=$(wait_listening "$log.out" 's/^receiver listening on //p' "$RECEIVER_PID")
}
receiver_counts() { curl -fsS "$RECEIVER_URL/count"; }
with_channels() { # the next start_signoff gets two signed webhook endpoints and Slack, all at the receiver
  local secret
  secret=whsec_$(printf signoff-bench-webhook-secret | base64)
  SO_ENV+=("SIGNOFF_NOTIFY_WEBHOOKS=$(jq -cn --arg at "$RECEIVER_URL" --arg secret "$secret" \
      '["bench-a", "bench-b"] | map({name: ., url: "\($at)/hooks/\(.)", secret: $secret})')"
    SIGNOFF_NOTIFY_SLACK_BOT_TOKEN=xoxb-signoff-bench SIGNOFF_NOTIFY_SLACK_SIGNING_SECRET=signoff-bench-signing
    "SIGNOFF_NOTIFY_SLACK_API_URL=$RECEIVER_URL/slack" "SIGNOFF_NOTIFY_DEFAULT=slack:#bench")
}
wrk_notified() { # URL BODY_FILE BEARER SECONDS : wrk_create, with the receiver's counts before and at
  local before out at_end t0 t1 # its end, and the cores the receiver used (within "other" in the details)
  t0=$(ticks_of "$RECEIVER_PID")
  before=$(receiver_counts) && out=$(wrk_create "$@") && at_end=$(receiver_counts) && [ -n "$out" ] || return 1
  t1=$(ticks_of "$RECEIVER_PID")
  jq -c --argjson before "$before" --argjson at_end "$at_end" --arg ended "$(date +%s%3N)" \
    --arg cores "$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v s="$4" 'BEGIN { printf "%.2f", t / hz / s }')" \
    '. + {receiver_before: $before, receiver_at_end: $at_end, ended_unix_ms: ($ended | tonumber),
          receiver_cores: ($cores | tonumber)}' <<<"$out"
}
backlog() { # the channels server's undelivered events, summed over its channels (its /metrics)
  curl -fsS "$CHANNELS_BASE/metrics" 2>/dev/null |
    awk '/^signoff_channel_backlog_events\{/ { sum += $NF } END { printf "%d", sum }'
}
drain() { # [RESULT] : until every channel of the channels server has caught up with the trail
  # and the receiver's counts stay still for 3 s (at most 600 s); RESULT gets the counts
  local last now still=0 started=$SECONDS
  last=$(receiver_counts)
  while (( still < 3 && SECONDS - started < 600 )); do
    sleep 1
    now=$(receiver_counts)
    if [ "$now" = "$last" ] && [ "$(backlog)" = 0 ]; then still=$((still + 1)); else still=0 last=$now; fi
  done
  (( still >= 3 )) || note "deliveries still arriving 600 s after the run"
  if [ -n "${1:-}" ] && [ -f "$RES/$1.json" ]; then
    jq -c --argjson after "$last" '. + {receiver_after: $after}' "$RES/$1.json" >"$RES/$1.tmp" && mv "$RES/$1.tmp" "$RES/$1.json"
  fi
}

# ----- the run ----------------------------------------------------------------------------

STARTED=$SECONDS
CONTEXT="$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), \
$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), load average at start $(cut -d' ' -f1-3 /proc/loadavg); \
release builds; loopback; wrk -t$THREADS -c$CONNS -d${DURATION}s after ${WARMUP}s warm-up, best of $RUNS runs, alternating baseline and Signoff"
note "$CONTEXT"

mkdir -p "$WORK/baseline-data"
if [[ " $STORES " == *" postgres "* ]]; then BL_PGURL=$(new_pg_db baseline); fi
start_baseline
BASE_PID=$BL_PID BASE_URL=$BL_URL

for store in $STORES; do
  route=$store-batch
  note "== $store"
  new_signoff_db "$store"
  TOKENS=$("$BIN/signoff-bench" tokens "$DB_URL" 8 | paste -sd, -)
  start_signoff
  check_post "$BASE_URL/$route" "$BASELINE_BODY" "$BASELINE_BEARER"
  check_post "$SO_URL/api/v1/requests" "$SIGNOFF_BODY" "$KEY"

  if phase create; then # the same wrk, alternating the two servers
    wrk_create "$BASE_URL/$route" "$BASELINE_BODY" "$BASELINE_BEARER" "$WARMUP" >/dev/null
    wrk_create "$SO_URL/api/v1/requests" "$SIGNOFF_BODY" "$KEY" "$WARMUP" >/dev/null
    for run in $(seq "$RUNS"); do
      measure "create-baseline-$store-$run" "baseline POST /$route, run $run" "$BASE_PID" \
        wrk_create "$BASE_URL/$route" "$BASELINE_BODY" "$BASELINE_BEARER" "$DURATION"
      measure "create-signoff-$store-$run" "Signoff ($store) POST /api/v1/requests, run $run" "$SO_PID" \
        wrk_create "$SO_URL/api/v1/requests" "$SIGNOFF_BODY" "$KEY" "$DURATION"
    done
  fi

  if phase decide; then
    # Distinct pending requests (on behalf of someone who is not a reviewer), as many as the
    # warm-up's rate says a run needs, and half as many again; a run that uses them all up
    # ends early, its rate still right.
    rate=$(jq -s 'map(.rps) | max // 2000 | floor' "$RES"/create-signoff-"$store"-*.json 2>/dev/null || echo 2000)
    seed $((rate * WARMUP * 6 / 5 + 1000)) "$WORK/ids-$store-warm"
    rate=$(wrk_decide "$SO_URL" "$WORK/ids-$store-warm" "$TOKENS" "$WARMUP" | jq '.rps // empty' || true)
    per_run=$((${rate:-2000} * DURATION * 3 / 2 + 1000))
    seed $((RUNS * per_run)) "$WORK/ids-$store"
    for run in $(seq "$RUNS"); do
      sed -n "$(((run - 1) * per_run + 1)),$((run * per_run))p" "$WORK/ids-$store" >"$WORK/ids-$store-$run"
      measure "decide-signoff-$store-$run" "Signoff ($store) POST /api/v1/requests/{id}/decisions, run $run" "$SO_PID" \
        wrk_decide "$SO_URL" "$WORK/ids-$store-$run" "$TOKENS" "$DURATION"
    done
  fi

  if phase wake; then # a reviewer's decision over HTTP → the waiting agent's answer
    measure "wake-signoff-$store" "Signoff ($store) wake-up on decision, $WAITS waits" "$SO_PID" \
      "$BIN/signoff-bench" wake "$SO_URL" "$KEY" "${TOKENS%%,*}" "$WAITS"
  fi
  stop_pid "$SO_PID"

  if phase open; then # on a fresh server: a fixed rate whatever the answers
    new_signoff_db "$store"
    start_signoff
    measure "open-signoff-$store" "Signoff ($store) open loop, $OPEN_RATE creations/s for $OPEN_SECONDS s" "$SO_PID" \
      "$BIN/signoff-bench" open-loop "$SO_URL" "$KEY" "$SIGNOFF_BODY" "$OPEN_RATE" "$OPEN_SECONDS" "$CONNS"
    stop_pid "$SO_PID"
  fi

  if phase hold; then
    # On a fresh process, like the baseline's: the requests are created first, then the
    # server restarts, so its memory holds the waits and not the creation burst.
    new_signoff_db "$store"
    start_signoff
    "$BIN/signoff-bench" seed "$SO_URL" "$KEY" "$HOLD" "$SIGNOFF_BODY" >"$WORK/hold-ids-$store" 2>>"$WORK/loadgen.log"
    stop_pid "$SO_PID"
    start_signoff
    measure "hold-signoff-$store" "Signoff ($store) $HOLD waiting agents" "$SO_PID" \
      "$BIN/signoff-bench" hold "$SO_URL" "$KEY" "$SO_PID" "$WORK/hold-ids-$store"
    stop_pid "$SO_PID"
  fi

  if phase notify; then
    # Two fresh servers, alternating as in create: one without channels, one with two webhook
    # endpoints and Slack, at the receiver; each run's deliveries drain before the next run.
    [ -n "$RECEIVER_URL" ] || start_receiver
    new_signoff_db "$store"
    start_signoff
    BARE_PID=$SO_PID BARE_URL=$SO_URL/api/v1/requests BARE_KEY=$KEY
    new_signoff_db "$store"
    with_channels
    start_signoff
    CHANNELS_PID=$SO_PID CHANNELS_BASE=$SO_URL CHANNELS_URL=$SO_URL/api/v1/requests CHANNELS_KEY=$KEY
    check_post "$BARE_URL" "$SIGNOFF_BODY" "$BARE_KEY"
    check_post "$CHANNELS_URL" "$SIGNOFF_BODY" "$CHANNELS_KEY"
    wrk_create "$BARE_URL" "$SIGNOFF_BODY" "$BARE_KEY" "$WARMUP" >/dev/null
    wrk_create "$CHANNELS_URL" "$SIGNOFF_BODY" "$CHANNELS_KEY" "$WARMUP" >/dev/null
    drain
    for run in $(seq "$RUNS"); do
      measure "notify-bare-$store-$run" "Signoff ($store) POST /api/v1/requests, no channels, run $run" "$BARE_PID" \
        wrk_create "$BARE_URL" "$SIGNOFF_BODY" "$BARE_KEY" "$DURATION"
      measure "notify-channels-$store-$run" "Signoff ($store) POST /api/v1/requests, 2 webhooks + Slack, run $run" \
        "$CHANNELS_PID" wrk_notified "$CHANNELS_URL" "$SIGNOFF_BODY" "$CHANNELS_KEY" "$DURATION"
      drain "notify-channels-$store-$run"
    done
    stop_pid "$BARE_PID"
    stop_pid "$CHANNELS_PID"
    # Its own server, started inside (its CPU shows as the load generator's).
    measure "notify-latency-$store" "Signoff ($store) request.created → webhook receiver, $NOTIFY_RATE/s for $NOTIFY_SECONDS s" "" \
      env TEST_POSTGRES_URL="$PG_ADMIN" "$BIN/signoff-bench" notify-latency "$store" "$NOTIFY_RATE" "$NOTIFY_SECONDS"
  fi
done

if phase wake; then
  measure wake-baseline "baseline wake-up, $WAITS waits" "$BASE_PID" "$BASELINE_BIN/wakebench" latency "$BASE_URL" "$WAITS"
fi
stop_pid "$BASE_PID"
if phase hold; then
  start_baseline
  measure hold-baseline "baseline $HOLD parked long-polls (fresh process)" "$BL_PID" \
    "$BASELINE_BIN/wakebench" hold "$BL_URL" "$HOLD" "$BL_PID"
  stop_pid "$BL_PID"
fi

# ----- the table --------------------------------------------------------------------------

MISSED=0
get() { jq -r "$2 // empty" "$RES/$1.json" 2>/dev/null || true; }
best() { jq -s "map($2) | max // empty" "$RES"/$1-*.json 2>/dev/null || true; } # over the runs
# row FIGURE SIGNOFF BASELINE UNIT KIND TARGET_TEXT THRESHOLD [PROBLEM]: KIND min-ratio | max-ratio |
# max-value; a PROBLEM (errors) is shown beside Signoff's figure and fails the target.
ROWS=()
row() {
  local figure=$1 s=$2 b=$3 unit=$4 kind=$5 target=$6 limit=$7 line
  line=$(awk -v s="$s" -v b="$b" -v unit="$unit" -v kind="$kind" -v limit="$limit" -v extra="${8:-}" '
    function commas(x,   t, r) { t = sprintf("%d", x); r = ""
      while (length(t) > 3) { r = "," substr(t, length(t) - 2) r; t = substr(t, 1, length(t) - 3) }
      return t r }
    function fmt(x) { if (x == "") return "—"; if (unit == "/s") return commas(x) "/s"; return x " " unit }
    BEGIN {
      gsub(/\|/, "/", extra)
      ratio = (s != "" && b != "" && b > 0) ? sprintf("%.2f", s / b) : "—"
      if (s == "") met = "no figure"
      else if (kind == "min-ratio") met = (ratio != "—" && s / b >= limit) ? "yes" : "**no**"
      else if (kind == "max-ratio") met = (ratio != "—" && s / b <= limit) ? "yes" : "**no**"
      else met = (s + 0 <= limit) ? "yes" : "**no**"
      if (extra != "") met = "**no**"
      printf "%s | %s | %s | %s", fmt(s) (extra == "" ? "" : " (" extra ")"), fmt(b), ratio, met
    }')
  [[ $line == *"| yes" ]] || MISSED=$((MISSED + 1))
  ROWS+=("| $figure | ${line% | *} | $target | ${line##* | } |")
}

storename() { if [ "$1" = sqlite ]; then echo SQLite; else echo Postgres; fi; }
if phase create; then
  for store in $STORES; do
    row "creations/s, $(storename "$store")" "$(best "create-signoff-$store" .rps)" "$(best "create-baseline-$store" .rps)" \
      /s min-ratio "≥ 0.6 × baseline /$store-batch" 0.6
  done
fi
if phase decide; then
  for store in $STORES; do
    row "decisions/s (distinct requests), $(storename "$store")" "$(best "decide-signoff-$store" .rps)" \
      "$(best "create-baseline-$store" .rps)" /s min-ratio "≥ 0.4 × baseline /$store-batch" 0.4
  done
fi
if phase notify; then
  for store in $STORES; do
    row "creations/s with 2 webhook endpoints + Slack (baseline column: the same without channels), $(storename "$store")" \
      "$(best "notify-channels-$store" .rps)" "$(best "notify-bare-$store" .rps)" /s min-ratio "≥ 0.9 × without channels" 0.9 \
      "$(jq -rs 'map(select(.receiver_after)) | if length == 0 then "no delivery counts"
        elif any(.receiver_at_end.webhook - .receiver_before.webhook == 0) then "no webhook delivery during a run"
        elif any(.receiver_after.webhook - .receiver_before.webhook < 2 * .ok) then "webhook deliveries missing"
        elif any(.receiver_after.slack - .receiver_before.slack < .ok) then "Slack posts missing"
        else empty end' "$RES"/notify-channels-"$store"-*.json 2>/dev/null || echo "no delivery counts")"
  done
fi
if phase wake; then
  for store in $STORES; do
    row "decision commit → waiting agent's response, p99, $(storename "$store")" \
      "$(get "wake-signoff-$store" .decision_recorded_to_waiter.p99_ms)" "$(get wake-baseline .wake_sent_to_waiter.p99_ms)" \
      ms max-value "≤ 3 ms" 3
  done
fi
if phase notify; then
  for store in $STORES; do
    row "request.created commit → webhook receiver's 2xx, p99 at $NOTIFY_RATE creations/s, $(storename "$store") (no baseline: it notifies nobody)" \
      "$(get "notify-latency-$store" .answer_to_delivery.p99_ms)" "" ms max-value "≤ 250 ms" 250 \
      "$(get "notify-latency-$store" 'if .missing > 0 or .errors > 0 then "\(.missing) not delivered, \(.errors) errors" else null end')"
  done
fi
if phase hold; then
  for store in $STORES; do
    row "$HOLD waiting agents, server RSS, $(storename "$store")" "$(get "hold-signoff-$store" .rss_parked_mb)" \
      "$(get hold-baseline .rss_parked_mb)" MB max-ratio "≤ 1.1 × baseline" 1.1 \
      "$(get "hold-signoff-$store" 'if .errors > 0 then "\(.errors) waits failed, first: \(.first_error)" else null end')"
  done
fi
if phase open; then
  for store in $STORES; do
    errors=$(get "open-signoff-$store" .errors)
    row "open loop $OPEN_RATE creations/s × $OPEN_SECONDS s, p99, $(storename "$store")" "$(get "open-signoff-$store" .p99_ms)" \
      "" ms max-value "≤ 20 ms, 0 errors" 20 "$([ "${errors:-x}" = 0 ] || echo "${errors:-?} errors")"
  done
fi

{
  echo "# Signoff beside the reference baseline"
  echo
  echo "$CONTEXT. Baseline: \`$BASELINE_DIR\` (\`$BASELINE_BIN/baseline\`, PG_POOL=$PG_POOL)."
  echo
  echo "| figure | Signoff | baseline | ratio | target | met? |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${ROWS[@]}"
  echo
  echo "Creations: Signoff's \`POST /api/v1/requests\` (agent key, \`signoff-body.json\`) against the baseline's group-commit"
  echo "route of the same store (\`body.json\`), the same wrk script (\`tests/bench/create.lua\`); decisions: reviewers'"
  echo "terminal tokens approving distinct pending requests (\`tests/bench/decide.lua\`), against the same baseline route."
  echo "Wake-up: from the decision's recorded time (\`decided_at\`, taken in the engine's batch before its commit, whole"
  echo "milliseconds, so up to 1 ms more) to the end of the waiting agent's answer, wall clock; \"decision sent\" in the details"
  echo "adds the decision's own HTTP call before it. The baseline's figure is from its \`/wake\` call being sent (no commit)."
  echo "RSS: VmRSS with every waiter parked, each on its own connection, on a fresh process. Rates: best of the runs."
  if phase notify; then
    echo "Notifications: the creations/s of two fresh servers measured alternately, one with no channels and one with two"
    echo "signed webhook endpoints and Slack (\`SIGNOFF_NOTIFY_DEFAULT=slack:#bench\`), all at \`signoff-bench receiver\`, which"
    echo "answers at once and counts; each run's deliveries drain before the next run. Commit → receiver: from the creation's"
    echo "answer (sent after the commit, so this is at most the commit's figure) to the \`request.created\` delivery's arrival;"
    echo "the details add the figures from the creation being sent (at least the commit's) and from the event's recorded time."
    echo
    echo "Deliveries at the receiver (webhook: 2 endpoints × each event, so at least 2 per creation; Slack: its Web API"
    echo "calls, a \`chat.postMessage\` per creation):"
    echo
    for file in $(for store in $STORES; do ls "$RES"/notify-channels-"$store"-*.json 2>/dev/null; done); do
      name=$(basename "$file" .json) && name=${name#notify-channels-}
      jq -r --arg run "$(storename "${name%-*}"), run ${name##*-}" '
        def commas: tostring | [scan("\\d")] | reverse | [range(0; length) as $i | .[$i] + (if $i > 0 and $i % 3 == 0 then "," else "" end)] | reverse | join("");
        (.receiver_at_end.webhook - .receiver_before.webhook) as $during
        | ((.receiver_after // .receiver_at_end).webhook - .receiver_at_end.webhook) as $after
        | "- \($run): \(.ok | commas) creations answered; webhook deliveries \($during | commas) during the run and"
          + " \($after | commas) after it, at least \(2 * .ok | commas) expected; Slack calls \(.receiver_at_end.slack - .receiver_before.slack | commas)"
          + " during and \((.receiver_after // .receiver_at_end).slack - .receiver_at_end.slack | commas) after, at least \(.ok | commas) expected"
          + (if .receiver_after and .receiver_after.last_unix_ms > .ended_unix_ms
             then "; the last arrival \((((.receiver_after.last_unix_ms - .ended_unix_ms) / 10 | round) / 100)) s after the run" else "" end)' "$file"
    done
  fi
  echo
  echo "## Every measurement"
  echo
  echo "| measurement | result | server cores | loadgen cores | postgres cores | other cores | stolen cores | busy before (cores) |"
  echo "|---|---|---|---|---|---|---|---|"
  printf '%s\n' "${DETAILS[@]}"
  echo
  echo "Other work on the machine during the measurements (cores, beyond the server, the load generator and Postgres):" \
    "max $(printf '%s\n' "${OTHER[@]}" | sort -g | tail -1), mean $(printf '%s\n' "${OTHER[@]}" | awk '{ t += $1 } END { printf "%.2f", NR ? t / NR : 0 }');" \
    "waited $QUIET_SPENT s for idle CPUs. Whole run: $((SECONDS - STARTED)) s."
  if (( ${#FAILED[@]} > 0 )); then
    echo
    echo "**Failed:** $(printf '%s; ' "${FAILED[@]}")"
  fi
} >"$REPORT"
cat "$REPORT"
note "written to $REPORT"
(( ${#FAILED[@]} == 0 )) || exit 1
(( MISSED == 0 )) || [ "${BENCH_STRICT:-0}" != 1 ] || exit 3
