#!/usr/bin/env bash
# The README's first command (`make demo`): mount a sample local directory with cloudmount's
# file:// backend and list it. Needs /dev/fuse and fuse3 (installed here when missing, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
DEMO_DIR=${DEMO_DIR:-/tmp/cloudmount-demo}
BIN=${BIN:-./target/release/cloudmount}
[ -x "$BIN" ] || cargo build --release
if ! command -v fusermount3 >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 >/dev/null
  else
    echo "install fuse3 first (sudo apt-get install fuse3)" >&2; exit 1
  fi
fi
mkdir -p "$DEMO_DIR/data/images/train" "$DEMO_DIR/data/labels" "$DEMO_DIR/mnt"
if mountpoint -q "$DEMO_DIR/mnt" 2>/dev/null || ! ls "$DEMO_DIR/mnt" >/dev/null 2>&1; then
  "$BIN" unmount --lazy "$DEMO_DIR/mnt" 2>/dev/null || true
fi
for i in 1 2 3; do printf 'image %s\n' "$i" >"$DEMO_DIR/data/images/train/img$i.jpg"; done
printf 'img1.jpg cat\nimg2.jpg dog\n' >"$DEMO_DIR/data/labels/train.txt"
printf 'cloudmount demo dataset\n' >"$DEMO_DIR/data/README.txt"
"$BIN" mount "file://$DEMO_DIR/data" "$DEMO_DIR/mnt" -o ro,log_file="$DEMO_DIR/cloudmount.log"
echo "mounted file://$DEMO_DIR/data at $DEMO_DIR/mnt (log: $DEMO_DIR/cloudmount.log)"
ls -lR "$DEMO_DIR/mnt"
echo
echo "unmount with: make demo-stop   (or: $BIN unmount $DEMO_DIR/mnt)"
