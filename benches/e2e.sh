#!/usr/bin/env bash
# End-to-end benchmark: cloudmount against the peers that install here (s3fs, rclone mount with
# --vfs-cache-mode full and off) on the same machine, the same local S3 server and the same data,
# plus the raw speed of a direct GET (the ceiling). Tools are interleaved and rotated per round;
# the report gives medians and same-round ratios. Run as root (mounts, drop_caches):
#
#   bash benches/e2e.sh              # 3 rounds, all tools, about 10 minutes
#   ROUNDS=1 TOOLS="cloudmount s3fs" bash benches/e2e.sh
#   CM_OPTS=max_memory=16M TOOLS=cloudmount bash benches/e2e.sh    # extra cloudmount -o options
#   NO_WRITES=1 bash benches/e2e.sh  # reads only
#   ONLY="seq rand" bash benches/e2e.sh
#                                    # only these workload groups: seq small list rand stat write
#   SETTINGS="0ms 20ms cpu3ms" bash benches/e2e.sh
#                                    # server latency models, each a full run: answers after
#                                    # 0 or N ms (timer, no CPU), or CPU_US µs of server CPU per
#                                    # request (default 3000: a 100 KiB GET takes ~3 ms)
#   TOOLS="cloudmount cloudmount-metrics" NO_WRITES=1 bash benches/e2e.sh
#                                    # the cost of -o metrics= with a scrape every second
#   TOOLS="cloudmount cloudmount-nowp" ONLY=write bash benches/e2e.sh
#                                    # write passthrough against writes through the daemon
#
# Output: a CSV of every measurement and a Markdown table (benches/results/e2e-latest.{csv,md}).
# Server: examples/bench_s3_server.rs serving files from tmpfs (no signature checks), so the
# server is not the bottleneck; data lives under $WORK (default /dev/shm/cloudmount-bench).
set -uo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
WORK=${WORK:-/dev/shm/cloudmount-bench}
PORT=${PORT:-9871}
TOOLS=${TOOLS:-"cloudmount s3fs rclone-full rclone-off"}
SETTINGS=${SETTINGS:-"0ms 20ms"}
CPU_US=${CPU_US:-3000}
OUTDIR=${OUTDIR:-benches/results}
CSV=$OUTDIR/e2e-latest.csv
MD=$OUTDIR/e2e-latest.md
EP=http://127.0.0.1:$PORT
export AWS_ACCESS_KEY_ID=benchkey AWS_SECRET_ACCESS_KEY=benchsecret
mkdir -p "$OUTDIR" "$WORK"
log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }
now() { date +%s.%N; }
# ONLY="seq rand" runs only those workload groups (seq small list rand stat write).
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }

# ---------------------------------------------------------------- tools and build
if ! command -v s3fs >/dev/null || ! command -v rclone >/dev/null || ! command -v fusermount3 >/dev/null || ! command -v bc >/dev/null || ! command -v fio >/dev/null; then
  log "installing s3fs, rclone, fuse3, fio"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq s3fs rclone fuse3 bc fio >/dev/null
fi
log "building (release)"
cargo build --release --quiet --bin cloudmount --example bench_s3_server || exit 1
CM=./target/release/cloudmount

# ---------------------------------------------------------------- dataset on tmpfs
DATA=$WORK/data/bench
if [ ! -f "$WORK/data/.complete" ]; then
  log "creating the dataset in $DATA"
  rm -rf "$WORK/data"
  mkdir -p "$DATA/big" "$DATA/images" "$DATA/wide" "$DATA/tree"
  head -c 1G /dev/urandom >"$DATA/big/file1g.bin"
  python3 - "$DATA" <<'PY'
import os, sys
d = sys.argv[1]
for i in range(2000):
    with open(f"{d}/images/img{i:05d}.jpg", "wb") as f: f.write(os.urandom(100 * 1024))
for i in range(10000):
    with open(f"{d}/wide/obj{i:05d}.txt", "wb") as f: f.write(b"x" * 1024)
for a in range(4):
    for b in range(12):
        p = f"{d}/tree/a{a}/b{b}"
        os.makedirs(p, exist_ok=True)
        for c in range(10):
            with open(f"{p}/f{c}.dat", "wb") as f: f.write(os.urandom(4096))
PY
  md5sum "$DATA/big/file1g.bin" | cut -d' ' -f1 >"$WORK/data/big.md5"
  touch "$WORK/data/.complete"
fi
BIG_MD5=$(cat "$WORK/data/big.md5")
printf '%s:%s\n' "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" >"$WORK/passwd" && chmod 600 "$WORK/passwd"

# ---------------------------------------------------------------- server and cleanup
SERVER_PID=
start_server() { # start_server SETTING -- (re)start the server with that latency model
  local flags=()
  case $1 in
    # cpu* first: "cpu3ms" also ends in "ms".
    cpu*) flags=(--cpu-us "$CPU_US") ;;
    *ms) flags=(--ttfb-ms "${1%ms}") ;;
    *) log "unknown setting $1 (0ms, 20ms, cpu3ms)"; exit 2 ;;
  esac
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  ./target/release/examples/bench_s3_server "$WORK/data" "$PORT" "${flags[@]}" 2>>"$WORK/server.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do curl -s -o /dev/null "$EP/bench?list-type=2&max-keys=1" && return 0; sleep 0.1; done
  log "the server did not start"; exit 1
}
MNT=$WORK/mnt
TOOL_PID=
SCRAPER_PID=
MPORT=$((PORT + 1))
cleanup() {
  [ -n "$SCRAPER_PID" ] && kill "$SCRAPER_PID" 2>/dev/null
  if mountpoint -q "$MNT" 2>/dev/null; then fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; fi
  [ -n "$TOOL_PID" ] && kill "$TOOL_PID" 2>/dev/null
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null
}
trap cleanup EXIT
mkdir -p "$MNT"

# ---------------------------------------------------------------- mounting each tool
mount_tool() { # mount_tool TOOL CACHE_DIR -- foreground daemon in the background; PID in TOOL_PID
  local tool=$1 cache=$2
  mkdir -p "$cache"
  case $tool in
    cloudmount) "$CM" mount s3://bench "$MNT" -f -o "endpoint=$EP,cache=$cache${CM_OPTS:+,$CM_OPTS}" 2>"$WORK/tool.log" & ;;
    # The same with writes through the daemon (no write passthrough), for an A/B in one run.
    cloudmount-nowp) "$CM" mount s3://bench "$MNT" -f -o "endpoint=$EP,cache=$cache,write_passthrough=false${CM_OPTS:+,$CM_OPTS}" 2>"$WORK/tool.log" & ;;
    # The same with the Prometheus endpoint on, scraped every second while mounted.
    cloudmount-metrics) "$CM" mount s3://bench "$MNT" -f -o "endpoint=$EP,cache=$cache,metrics=127.0.0.1:$MPORT${CM_OPTS:+,$CM_OPTS}" 2>"$WORK/tool.log" & ;;
    s3fs) s3fs bench "$MNT" -f -o "passwd_file=$WORK/passwd,url=$EP,use_path_request_style,endpoint=us-east-1,use_cache=$cache" 2>"$WORK/tool.log" & ;;
    rclone-full | rclone-off)
      env -u AWS_CA_BUNDLE RCLONE_CONFIG_B_TYPE=s3 RCLONE_CONFIG_B_PROVIDER=Other RCLONE_CONFIG_B_ENDPOINT=$EP \
      RCLONE_CONFIG_B_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_B_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
      RCLONE_CONFIG_B_FORCE_PATH_STYLE=true \
        rclone mount b:bench "$MNT" --cache-dir "$cache" --vfs-cache-mode "${tool#rclone-}" 2>"$WORK/tool.log" & ;;
  esac
  TOOL_PID=$!
  if [ "$tool" = cloudmount-metrics ]; then
    (while kill -0 "$TOOL_PID" 2>/dev/null; do curl -s -o /dev/null "http://127.0.0.1:$MPORT/metrics"; sleep 1; done) &
    SCRAPER_PID=$!
  fi
  for _ in $(seq 300); do mountpoint -q "$MNT" && return 0; kill -0 "$TOOL_PID" 2>/dev/null || break; sleep 0.1; done
  log "$tool did not mount: $(tail -3 "$WORK/tool.log")"; return 1
}
unmount_tool() {
  fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null
  for _ in $(seq 200); do kill -0 "$TOOL_PID" 2>/dev/null || break; sleep 0.1; done
  kill "$TOOL_PID" 2>/dev/null; wait "$TOOL_PID" 2>/dev/null; TOOL_PID=
  if [ -n "$SCRAPER_PID" ]; then kill "$SCRAPER_PID" 2>/dev/null; wait "$SCRAPER_PID" 2>/dev/null; SCRAPER_PID=; fi
}
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }
cpu_s() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$TOOL_PID/stat" 2>/dev/null; }
hwm_mib() { awk '/VmHWM/ {printf "%.1f", $2 / 1024}' "/proc/$TOOL_PID/status" 2>/dev/null; }
rec() { echo "$ROUND,$SETTING,$1,$2,$3,$4,$5" >>"$CSV"; }   # rec TOOL METRIC VALUE UNIT NOTE
invalid() { rec "$1" "$2" invalid "" "result failed verification"; }   # drops that round's value
# secs CMD...: wall seconds of CMD, or "fail" when it fails (a failed run is never a number).
secs() { local t0; t0=$(now); if "$@" >/dev/null 2>&1; then echo "$(now) - $t0" | bc -l; else echo fail; fi; }
mbps() { [ "$1" = fail ] && echo fail || echo "scale=1; 1073.741824 / $1" | bc -l; }
per_s() { [ "$2" = fail ] && echo fail || echo "scale=1; $1 / $2" | bc -l; }

# 2,048 random 4 KiB reads with fio (psync, one job, a fixed seed): IOPS.
randread() {
  fio --name=rand --filename="$1" --rw=randread --bs=4k --ioengine=psync --number_ios=2048 \
    --size=1G --randrepeat=1 --randseed=7 --invalidate=1 --output-format=json 2>/dev/null |
    python3 -c 'import json, sys; j = json.load(sys.stdin)["jobs"][0]["read"]; print(round(j["iops"]) if j["io_bytes"] == 2048 * 4096 else "fail")'
}
# stat of the 2,000 known image paths, without listing their directory first: ops/s.
statstorm() { python3 - "$1" <<'PY'
import os, sys, time
paths = [f"{sys.argv[1]}/images/img{i:05d}.jpg" for i in range(2000)]
t = time.time()
for p in paths: os.stat(p)
print(round(2000 / (time.time() - t), 1))
PY
}

# Write sources (tmpfs) and waits for uploads to land on the server (bounded).
SRC512=$WORK/src512.bin; SRC16K=$WORK/src16k.bin
[ -f "$SRC512" ] || head -c 512M /dev/urandom >"$SRC512"
[ -f "$SRC16K" ] || head -c 16K /dev/urandom >"$SRC16K"
SRC512_MD5=$(md5sum <"$SRC512" | cut -d' ' -f1)
wait_size() { for _ in $(seq 3000); do [ "$(stat -c %s "$1" 2>/dev/null)" = "$2" ] && return 0; sleep 0.05; done; return 1; }
wait_count() { for _ in $(seq 3000); do [ "$(find "$1" -type f -size 16k 2>/dev/null | wc -l)" -ge "$2" ] && return 0; sleep 0.05; done; return 1; }
raw_put() { # single-stream curl PUT of the 512 MiB source: the write ceiling
  local t0; t0=$(now)
  curl -s -o /dev/null -T "$SRC512" "$EP/bench/rawput/big512" || { echo fail; return; }
  echo "scale=1; 536.870912 / ($(now) - $t0)" | bc -l
  rm -rf "${DATA:?}/rawput"
}
# The same 512 MiB as 4 parallel PUTs of 128 MiB (what a multipart upload with 4 parts in
# flight can reach at best: the multipart ceiling).
for i in 0 1 2 3; do [ -f "$WORK/src512.p$i" ] || dd if="$SRC512" of="$WORK/src512.p$i" bs=1M skip=$((i * 128)) count=128 status=none; done
raw_put_par() {
  local t0 ok=1 pids=(); t0=$(now)
  for i in 0 1 2 3; do curl -s -o /dev/null -T "$WORK/src512.p$i" "$EP/bench/rawput/p$i" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || ok=0; done
  [ "$ok" = 1 ] && echo "scale=1; 536.870912 / ($(now) - $t0)" | bc -l || echo fail
  rm -rf "${DATA:?}/rawput"
}

# The same 4 parts as one real multipart upload: initiate, the 4 parts in parallel, complete
# (the server joins the parts then, as it does for every multipart uploader, whose seq_write
# is timed until the object is complete): the 4-part multipart PUT ceiling.
raw_put_mpu() {
  local t0 id ok=1 pids=(); t0=$(now)
  id=$(curl -s -X POST "$EP/bench/rawput/mpu?uploads" | sed -n 's:.*<UploadId>\(.*\)</UploadId>.*:\1:p')
  [ -n "$id" ] || { echo fail; return; }
  for i in 0 1 2 3; do curl -s -f -o /dev/null -T "$WORK/src512.p$i" "$EP/bench/rawput/mpu?partNumber=$((i + 1))&uploadId=$id" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || ok=0; done
  curl -s -f -o /dev/null -X POST --data '<CompleteMultipartUpload/>' "$EP/bench/rawput/mpu?uploadId=$id" || ok=0
  [ "$ok" = 1 ] && [ "$(stat -c %s "$DATA/rawput/mpu" 2>/dev/null)" = 536870912 ] \
    && echo "scale=1; 536.870912 / ($(now) - $t0)" | bc -l || echo fail
  rm -rf "${DATA:?}/rawput"
}

echo "round,setting,tool,metric,value,unit,note" >"$CSV"
# ---------------------------------------------------------------- rounds
read -r -a tools <<<"$TOOLS"
for SETTING in $SETTINGS; do
start_server "$SETTING"
log "server setting: $SETTING"
for ROUND in $(seq "$ROUNDS"); do
  drop
  raw=$(curl -s -o /dev/null -w '%{speed_download}' "$EP/bench/big/file1g.bin")
  rec direct-get raw_get "$(echo "scale=1; $raw / 1000000" | bc -l)" MB/s "single-stream curl GET of 1 GiB"
  [ -z "${NO_WRITES:-}" ] && rec direct-put raw_put "$(raw_put)" MB/s "single-stream curl PUT of 512 MiB"
  [ -z "${NO_WRITES:-}" ] && rec direct-put raw_put_par "$(raw_put_par)" MB/s "4 parallel curl PUTs of 128 MiB"
  [ -z "${NO_WRITES:-}" ] && rec direct-put raw_put_mpu "$(raw_put_mpu)" MB/s "multipart upload of 4 parts of 128 MiB in parallel, completed"
  n=${#tools[@]}
  for ((k = 0; k < n; k++)); do
    tool=${tools[$(((k + ROUND - 1) % n))]}
    log "round $ROUND: $tool"
    cache=$WORK/cache-$tool; rm -rf "$cache"
    if want seq; then
    # Sequential: cold, warm (same mount), then after a remount with the same cache.
    drop; mount_tool "$tool" "$cache" || continue
    s=$(secs dd if="$MNT/big/file1g.bin" of=/dev/null bs=1M); rec "$tool" seq_read_cold "$(mbps "$s")" MB/s ""
    s=$(secs dd if="$MNT/big/file1g.bin" of=/dev/null bs=1M); rec "$tool" seq_read_warm "$(mbps "$s")" MB/s ""
    rec "$tool" peak_rss "$(hwm_mib)" MiB "VmHWM after cold+warm 1 GiB"
    rec "$tool" cpu_per_gib "$(echo "scale=2; $(cpu_s) / 2" | bc -l)" s/GiB "daemon CPU over cold+warm"
    if [ "$ROUND" = 1 ]; then
      got=$(md5sum "$MNT/big/file1g.bin" | cut -d' ' -f1)
      [ "$got" = "$BIG_MD5" ] || { log "$tool: md5 MISMATCH"; invalid "$tool" seq_read_cold; invalid "$tool" seq_read_warm; }
    fi
    unmount_tool; drop
    mount_tool "$tool" "$cache" || continue
    s=$(secs dd if="$MNT/big/file1g.bin" of=/dev/null bs=1M); rec "$tool" seq_read_remount "$(mbps "$s")" MB/s "same cache dir"
    unmount_tool
    fi
    if want small; then
    # Small files, serial then 8 parallel readers (fresh mounts, empty caches).
    rm -rf "$cache"; drop; mount_tool "$tool" "$cache" || continue
    s=$(secs bash -c "cat '$MNT'/images/* >/dev/null"); rec "$tool" small_files_seq "$(per_s 2000 "$s")" files/s "2,000 x 100 KiB"
    unmount_tool; rm -rf "$cache"; drop; mount_tool "$tool" "$cache" || continue
    s=$(secs bash -c "ls '$MNT/images' | sed 's|^|$MNT/images/|' | xargs -P 8 -n 25 cat >/dev/null"); rec "$tool" small_files_par "$(per_s 2000 "$s")" files/s "xargs -P 8"
    unmount_tool
    fi
    if want list; then
    # Tree walk, then listing (fresh mounts).
    rm -rf "$cache"; drop; mount_tool "$tool" "$cache" || continue
    s=$(secs find "$MNT/tree" -type f); rec "$tool" tree_find "$s" s "480 files in 52 dirs, fresh mount"
    c=$(find "$MNT/tree" -type f | wc -l); [ "$c" = 480 ] || { log "$tool: tree has $c files"; invalid "$tool" tree_find; }
    unmount_tool
    rm -rf "$cache"; drop; mount_tool "$tool" "$cache" || continue
    s=$(secs ls -l "$MNT/wide"); rec "$tool" list_wide_cold "$s" s "ls -l of 10,000 entries"
    s=$(secs ls -l "$MNT/wide"); rec "$tool" list_wide_warm "$s" s "same again"
    c=$(ls "$MNT/wide" | wc -l); [ "$c" = 10000 ] || { log "$tool: wide lists $c entries"; invalid "$tool" list_wide_cold; invalid "$tool" list_wide_warm; }
    unmount_tool
    fi
    if want rand; then
    # Random 4 KiB reads.
    rm -rf "$cache"; drop; mount_tool "$tool" "$cache" || continue
    rec "$tool" rand_read "$(randread "$MNT/big/file1g.bin" || echo fail)" IOPS "fio psync, 2,048 x 4 KiB"
    unmount_tool
    fi
    if want stat; then
    # A stat storm of known paths: fresh mount, then again on the same mount.
    rm -rf "$cache"; drop; mount_tool "$tool" "$cache" || continue
    rec "$tool" stat_cold "$(statstorm "$MNT" || echo fail)" ops/s "stat of 2,000 known paths, fresh mount"
    rec "$tool" stat_warm "$(statstorm "$MNT" || echo fail)" ops/s "same again"
    unmount_tool
    fi
    if want write; then
    # Writes, timed until the bytes are on the server (tools that upload after close are
    # waited for): 512 MiB sequential, then 500 new files of 16 KiB.
    if [ -z "${NO_WRITES:-}" ]; then
      rm -rf "$cache" "$DATA/w"; drop; mount_tool "$tool" "$cache" || continue
      mkdir -p "$MNT/w" 2>/dev/null
      t0=$(now)
      if dd if="$SRC512" of="$MNT/w/big512" bs=1M status=none 2>/dev/null && wait_size "$DATA/w/big512" 536870912; then
        rec "$tool" seq_write "$(echo "scale=1; 536.870912 / ($(now) - $t0)" | bc -l)" MB/s "512 MiB, until on the server"
        [ "$(md5sum <"$DATA/w/big512" | cut -d' ' -f1)" = "$SRC512_MD5" ] || { log "$tool: written md5 MISMATCH"; invalid "$tool" seq_write; }
      else
        rec "$tool" seq_write fail MB/s ""
      fi
      t0=$(now)
      if python3 -c "
import sys
d, data = sys.argv[1], open(sys.argv[2], 'rb').read()
for i in range(500):
    with open(f'{d}/s{i:03d}', 'wb') as f: f.write(data)
" "$MNT/w" "$SRC16K" 2>/dev/null && wait_count "$DATA/w" 500; then
        rec "$tool" small_creates "$(echo "scale=1; 500 / ($(now) - $t0)" | bc -l)" files/s "500 x 16 KiB, until on the server"
      else
        rec "$tool" small_creates fail files/s ""
      fi
      unmount_tool; rm -rf "$DATA/w"
    fi
    fi
  done
done
done
log "done; report: $MD"
python3 - "$CSV" "$MD" "$TOOLS" <<'PY'
import csv, statistics, sys
from collections import defaultdict
rows = list(csv.DictReader(open(sys.argv[1])))
tools = sys.argv[3].split()
higher = {"seq_read_cold", "seq_read_warm", "seq_read_remount", "small_files_seq", "small_files_par", "rand_read", "raw_get",
          "stat_cold", "stat_warm", "seq_write", "small_creates", "raw_put", "raw_put_par", "raw_put_mpu"}
metrics = ["seq_read_cold", "seq_read_warm", "seq_read_remount", "small_files_seq", "small_files_par",
           "list_wide_cold", "list_wide_warm", "tree_find", "rand_read", "stat_cold", "stat_warm",
           "peak_rss", "cpu_per_gib", "seq_write", "small_creates"]
bad = {(r["round"], r["setting"], r["tool"], r["metric"]) for r in rows if r["value"] in ("invalid", "fail")}
vals = defaultdict(list); by_round = defaultdict(dict); unit = {}
settings = []
for r in rows:
    if r["setting"] not in settings:
        settings.append(r["setting"])
    if r["unit"]: unit[r["metric"]] = r["unit"]
    if (r["round"], r["setting"], r["tool"], r["metric"]) in bad:
        continue
    try: v = float(r["value"])
    except ValueError: continue
    vals[(r["setting"], r["tool"], r["metric"])].append(v)
    by_round[(r["setting"], r["metric"])][(r["round"], r["tool"])] = v
def med(st, t, m):
    v = vals.get((st, t, m)); return statistics.median(v) if v else None
def same_round_ratio(st, m, a, b):
    """Median over rounds of a/b (inverted for lower-is-better metrics), each round's own pair."""
    rs = by_round.get((st, m), {})
    out = []
    for (rnd, t), v in rs.items():
        if t != a or (rnd, b) not in rs or not v or not rs[(rnd, b)]:
            continue
        w = rs[(rnd, b)]
        out.append(v / w if m in higher else w / v)
    return statistics.median(out) if out else None
text = []
for st in settings:
    peers = [t for t in tools if t != "cloudmount"]
    head = "| metric | unit | " + " | ".join(tools) + "".join(f" | vs {p}" for p in peers) + " |"
    out = [f"## Server setting: {st}", "", head, "|---|---|" + "---:|" * (len(tools) + len(peers))]
    for m in metrics:
        cells = []
        for t in tools:
            v = med(st, t, m)
            cells.append("—" if v is None else (f"{v:,.3f}" if v < 10 else f"{v:,.1f}"))
        ratios = []
        for p in peers:
            r = same_round_ratio(st, m, "cloudmount", p) if "cloudmount" in tools else None
            ratios.append("—" if r is None else f"{r:.2f}x")
        out.append(f"| {m} | {unit.get(m, '')} | " + " | ".join(cells) + "".join(f" | {x}" for x in ratios) + " |")
    raw = med(st, "direct-get", "raw_get")
    out += ["", f"Raw single-stream GET of the 1 GiB object (the ceiling): {raw:,.0f} MB/s" if raw else "raw GET: not measured"]
    for m in ["seq_read_cold", "seq_read_warm", "seq_read_remount"]:
        parts = []
        for t in tools:
            rs = by_round.get((st, m), {}); rg = by_round.get((st, "raw_get"), {})
            pct = [100 * v / rg[(rnd, "direct-get")] for (rnd, tt), v in rs.items() if tt == t and (rnd, "direct-get") in rg]
            if pct: parts.append(f"{t} {statistics.median(pct):.0f}%")
        out.append(f"- {m} as % of the same round's raw GET: " + ", ".join(parts))
    rawput = med(st, "direct-put", "raw_put"); rawpar = med(st, "direct-put", "raw_put_par")
    rawmpu = med(st, "direct-put", "raw_put_mpu")
    if rawput:
        # The ceiling: the faster of one PUT and a completed 4-part multipart upload (timed
        # like seq_write, until the object is whole on the server). 4 plain parallel PUTs skip
        # the server's join of the parts, which every multipart writer waits for: shown too.
        ceiling = max(rawput, rawmpu or 0)
        out.append(f"- raw PUT of 512 MiB: single stream {rawput:,.0f} MB/s, 4-part multipart upload {rawmpu or 0:,.0f} MB/s (the write ceiling: {ceiling:,.0f} MB/s); 4 parallel plain PUTs of its parts {rawpar or 0:,.0f} MB/s")
        parts = [f"{t} {100 * med(st, t, 'seq_write') / ceiling:.0f}%" for t in tools if med(st, t, 'seq_write')]
        out.append("- seq_write as % of the write ceiling: " + ", ".join(parts))
        if rawpar:
            parts = [f"{t} {100 * med(st, t, 'seq_write') / rawpar:.0f}%" for t in tools if med(st, t, 'seq_write')]
            out.append("- seq_write as % of 4 parallel plain PUTs: " + ", ".join(parts))
    text += out + [""]
text.append("Ratios: cloudmount against each peer, >1 means cloudmount is better (higher throughput, or lower")
text.append("time/RSS/CPU), the median of each round's own ratio. Values are medians over rounds; runs that")
text.append("failed or failed verification (md5, entry counts, fio byte counts) are left out: "
            + (", ".join(sorted({f"{s}/{t}/{m}" for _, s, t, m in bad})) or "none") + ".")
open(sys.argv[2], "w").write("\n".join(text) + "\n")
PY
