#!/usr/bin/env bash
# A 60 GiB stream through a real mount against the local S3 server, which enforces S3's
# multipart limits (10,000 parts, 5 MiB to 5 GiB each) and keeps parts of zeros sparse, so no
# disk is needed: `dd` writes 60 GiB of zeros with -o upload_part_size=5M, the smallest base,
# where parts of a fixed size would fail at part 10,001 (48.8 GiB). Prints the part count,
# the largest part, the time and the throughput. Run as root; takes a few minutes.
#
#   bash benches/stream_limit.sh            # 60 GiB
#   GIB=8 bash benches/stream_limit.sh      # shorter
set -euo pipefail
cd "$(dirname "$0")/.."
GIB=${GIB:-60}
PORT=${PORT:-9873}
WORK=$(mktemp -d /tmp/cloudmount-stream-limit.XXXXXX)
EP=http://127.0.0.1:$PORT
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret
log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

log "building (release)"
cargo build --release --quiet --bin cloudmount --example bench_s3_server
CM=./target/release/cloudmount
mkdir -p "$WORK/data/bench" "$WORK/mnt" "$WORK/cache"
./target/release/examples/bench_s3_server "$WORK/data" "$PORT" 2>"$WORK/server.log" &
SERVER_PID=$!
DAEMON_PID=
cleanup() {
  if mountpoint -q "$WORK/mnt" 2>/dev/null; then "$CM" unmount --lazy "$WORK/mnt" || true; fi
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null || true
  kill "$SERVER_PID" 2>/dev/null || true
  # Never descend into a mount that is still there.
  mountpoint -q "$WORK/mnt" 2>/dev/null || rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 100); do curl -s -o /dev/null "$EP/bench?list-type=2&max-keys=1" && break; sleep 0.1; done

"$CM" mount s3://bench "$WORK/mnt" -f \
  -o "endpoint=$EP,cache=$WORK/cache,upload_part_size=5M" 2>"$WORK/daemon.log" &
DAEMON_PID=$!
for _ in $(seq 300); do mountpoint -q "$WORK/mnt" && break; sleep 0.1; done
mountpoint -q "$WORK/mnt"

log "writing $GIB GiB of zeros"
start=$(date +%s.%N)
dd if=/dev/zero of="$WORK/mnt/big.bin" bs=1M count=$((GIB * 1024)) status=none
end=$(date +%s.%N)
size=$(stat -c %s "$WORK/data/bench/big.bin")
want=$((GIB * 1024 * 1024 * 1024))
grep 'completed bench/big.bin' "$WORK/server.log" | tail -1
secs=$(echo "$end - $start" | bc)
echo "stream of $GIB GiB: $size bytes stored (want $want) in ${secs}s, $(echo "$size / $secs / 1000000" | bc) MB/s"
echo "staging peak: $(du -sh "$WORK/cache" | cut -f1) in the cache directory after the close"
[ "$size" -eq "$want" ]
