#!/usr/bin/env bash
# Google Drive workloads: cloudmount on the in-repo fake Drive server (examples/fake_drive_server.rs,
# data in memory) next to cloudmount on the S3 bench server (examples/bench_s3_server.rs, data on
# tmpfs), same machine, same data, same run, with each server's raw single-stream GET as the
# ceiling. No peer is measured: rclone's Drive backend and google-drive-ocamlfuse talk only to
# Google's own endpoints (no endpoint option), so they cannot be pointed at a local server.
# Run as root (mounts, drop_caches):
#
#   bash benches/gdrive.sh                     # 3 rounds
#   ROUNDS=1 DRIVE_OPTS=drive_rate=0 bash benches/gdrive.sh
#
# Workloads: cold sequential read of 1 GiB (MB/s), 2,000 x 100 KiB read by 8 readers (files/s),
# `ls -l` of a 10,000-file folder on a fresh mount (s). cloudmount's Drive pacer defaults to
# 10 requests/s after a burst of 100, as Google's quotas want; the default run measures both
# that default and drive_rate=0 (no pacing), because the fake has no quota.
# Output: benches/results/gdrive-latest.{csv,md}.
set -uo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
WORK=${WORK:-/dev/shm/cloudmount-bench-gdrive}
S3_PORT=${S3_PORT:-9181}
GD_PORT=${GD_PORT:-9182}
OUT=benches/results
CSV=$OUT/gdrive-latest.csv
MD=$OUT/gdrive-latest.md
mkdir -p "$WORK" "$OUT"
echo "round,setup,metric,value,unit" >"$CSV"
log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }

cargo build --release --quiet --bin cloudmount --example bench_s3_server --example fake_drive_server || exit 1
CM=./target/release/cloudmount

DATA=$WORK/data/bench
if [ ! -f "$WORK/data/.complete" ]; then
  log "creating the dataset in $DATA"
  rm -rf "$WORK/data"
  mkdir -p "$DATA/big" "$DATA/images" "$DATA/wide"
  head -c 1G /dev/urandom >"$DATA/big/file1g.bin"
  python3 - "$DATA" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(2000):
    with open(f"{d}/images/img{i:05d}.jpg", "wb") as f: f.write(os.urandom(100 * 1024))
for i in range(10000):
    with open(f"{d}/wide/obj{i:05d}.txt", "wb") as f: f.write(b"x" * 1024)
PY
  md5sum "$DATA/big/file1g.bin" | cut -d' ' -f1 >"$WORK/data/big.md5"
  touch "$WORK/data/.complete"
fi
BIG_MD5=$(cat "$WORK/data/big.md5")

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
./target/release/examples/bench_s3_server "$WORK/data" "$S3_PORT" 2>"$WORK/s3.log" &
S3_PID=$!
log "seeding the fake Drive server (about 1.2 GB in memory)"
./target/release/examples/fake_drive_server "$GD_PORT" --static-token bench-token --seed "$WORK/data" >"$WORK/gd.log" 2>&1 &
GD_PID=$!
MNT=$WORK/mnt
TOOL_PID=
cleanup() {
  if mountpoint -q "$MNT" 2>/dev/null; then fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; fi
  [ -n "$TOOL_PID" ] && kill "$TOOL_PID" 2>/dev/null
  kill "$S3_PID" "$GD_PID" 2>/dev/null
}
trap cleanup EXIT
for _ in $(seq 600); do grep -q listening "$WORK/gd.log" && break; sleep 0.1; done
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$S3_PORT/bench?list-type=2&max-keys=1" && break; sleep 0.1; done
mkdir -p "$MNT"
printf '{"access_token":"bench-token"}' >"$WORK/token.json" && chmod 600 "$WORK/token.json"
GD=http://127.0.0.1:$GD_PORT
H="Authorization: Bearer bench-token"
# The id of the 1 GiB file, for the raw GET.
BIG_ID=$(curl -s -H "$H" "$GD/drive/v3/files?q=name%20%3D%20%27file1g.bin%27%20and%20trashed%20%3D%20false&fields=files(id)" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["files"][0]["id"])')

mount_setup() { # mount_setup SETUP CACHE
  local setup=$1 cache=$2
  mkdir -p "$cache"
  case $setup in
    s3) "$CM" mount s3://bench "$MNT" -f -o "endpoint=http://127.0.0.1:$S3_PORT,cache=$cache" 2>"$WORK/tool.log" & ;;
    gdrive) "$CM" mount gdrive:///bench "$MNT" -f -o "endpoint=$GD,token_file=$WORK/token.json,cache=$cache${DRIVE_OPTS:+,$DRIVE_OPTS}" 2>"$WORK/tool.log" & ;;
    gdrive-unpaced) "$CM" mount gdrive:///bench "$MNT" -f -o "endpoint=$GD,token_file=$WORK/token.json,cache=$cache,drive_rate=0" 2>"$WORK/tool.log" & ;;
  esac
  TOOL_PID=$!
  for _ in $(seq 300); do mountpoint -q "$MNT" && return 0; kill -0 "$TOOL_PID" 2>/dev/null || break; sleep 0.1; done
  log "$setup did not mount: $(tail -3 "$WORK/tool.log")"; return 1
}
unmount_setup() {
  fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
  for _ in $(seq 200); do kill -0 "$TOOL_PID" 2>/dev/null || break; sleep 0.1; done
  kill "$TOOL_PID" 2>/dev/null; wait "$TOOL_PID" 2>/dev/null; TOOL_PID=
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
rec() { echo "$ROUND,$1,$2,$3,$4" >>"$CSV"; }
secs() { local t0; t0=$(now); if "$@" >/dev/null 2>&1; then echo "$(now) - $t0" | bc -l; else echo fail; fi; }

SETUPS=${SETUPS:-"s3 gdrive gdrive-unpaced"}
read -r -a setups <<<"$SETUPS"
for ROUND in $(seq "$ROUNDS"); do
  raw=$(curl -s -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$S3_PORT/bench/big/file1g.bin")
  rec s3 raw_get "$(echo "scale=1; $raw / 1000000" | bc -l)" MB/s
  raw=$(curl -s -o /dev/null -H "$H" -w '%{speed_download}' "$GD/drive/v3/files/$BIG_ID?alt=media")
  rec gdrive raw_get "$(echo "scale=1; $raw / 1000000" | bc -l)" MB/s
  n=${#setups[@]}
  for ((k = 0; k < n; k++)); do
    setup=${setups[$(((k + ROUND - 1) % n))]}
    log "round $ROUND: $setup"
    cache=$WORK/cache-$setup
    rm -rf "$cache"; drop; mount_setup "$setup" "$cache" || continue
    s=$(secs dd if="$MNT/big/file1g.bin" of=/dev/null bs=1M)
    [ "$s" = fail ] && rec "$setup" seq_read_cold fail MB/s || rec "$setup" seq_read_cold "$(echo "scale=1; 1073.741824 / $s" | bc -l)" MB/s
    if [ "$ROUND" = 1 ] && [ "$(md5sum "$MNT/big/file1g.bin" | cut -d' ' -f1)" != "$BIG_MD5" ]; then log "$setup: md5 MISMATCH"; rec "$setup" seq_read_cold invalid MB/s; fi
    unmount_setup
    rm -rf "$cache"; drop; mount_setup "$setup" "$cache" || continue
    s=$(secs bash -c "ls '$MNT/images' | sed 's|^|$MNT/images/|' | xargs -P 8 -n 25 cat >/dev/null")
    [ "$s" = fail ] && rec "$setup" small_files_par fail files/s || rec "$setup" small_files_par "$(echo "scale=1; 2000 / $s" | bc -l)" files/s
    unmount_setup
    rm -rf "$cache"; drop; mount_setup "$setup" "$cache" || continue
    s=$(secs ls -l "$MNT/wide"); rec "$setup" list_wide_cold "$s" s
    c=$(ls "$MNT/wide" | wc -l); [ "$c" = 10000 ] || { log "$setup: wide lists $c"; rec "$setup" list_wide_cold invalid s; }
    unmount_setup
  done
done
python3 - "$CSV" "$MD" "$SETUPS" <<'PY'
import csv, statistics, sys
from collections import defaultdict
rows = list(csv.DictReader(open(sys.argv[1])))
setups = sys.argv[3].split()
bad = {(r["round"], r["setup"], r["metric"]) for r in rows if r["value"] in ("invalid", "fail")}
vals = defaultdict(list); unit = {}
for r in rows:
    if (r["round"], r["setup"], r["metric"]) in bad: continue
    try: vals[(r["setup"], r["metric"])].append(float(r["value"]))
    except ValueError: pass
    unit[r["metric"]] = r["unit"]
def med(s, m):
    v = vals.get((s, m)); return statistics.median(v) if v else None
out = ["| metric | unit | " + " | ".join(setups) + " |", "|---|---|" + "---:|" * len(setups)]
for m in ["raw_get", "seq_read_cold", "small_files_par", "list_wide_cold"]:
    cells = []
    for s in setups:
        v = med(s, m) if m != "raw_get" else med("gdrive" if s.startswith("gdrive") else s, m)
        cells.append("—" if v is None else (f"{v:,.3f}" if v < 10 else f"{v:,.1f}"))
    out.append(f"| {m} | {unit.get(m, '')} | " + " | ".join(cells) + " |")
lines = [""]
for s in setups:
    raw = med("gdrive" if s.startswith("gdrive") else s, "raw_get"); cold = med(s, "seq_read_cold")
    if raw and cold: lines.append(f"- {s}: cold read is {100 * cold / raw:.0f}% of its server's raw GET")
lines.append("Medians over rounds; failed or unverified runs left out: " + (", ".join(sorted({f"{s}/{m}" for _, s, m in bad})) or "none") + ".")
text = "\n".join(out + lines) + "\n"
open(sys.argv[2], "w").write(text); print(text)
PY
