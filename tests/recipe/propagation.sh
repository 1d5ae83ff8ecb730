# The CVAT recipe's claim, with mount namespaces: $1 = cloudmount binary, $2 = a private dir.
# Runs in a mount namespace of its own (unshare -m --propagation private), which plays the host.
B=$1; D=$2
set -u
C=
cleanup() {
  [ -n "$C" ] && kill "$C" 2>/dev/null
  "$B" unmount --lazy "$D/host/share/data" 2>/dev/null
  umount -l "$D/host" 2>/dev/null
}
trap cleanup EXIT
say() { echo "$*" >> "$D/steps.txt"; }
mkdir -p "$D/host/share/data" "$D/ctr" "$D/ctr2" "$D/src"
echo v1 > "$D/src/a.txt"
# The host's / is shared under systemd; here the "host" is a shared bind of $D/host.
mount --bind "$D/host" "$D/host" && mount --make-rshared "$D/host" || exit 20
# The container starts before the mount: its namespace's copies are slaves of the host's.
unshare -m --propagation slave sleep 300 &
C=$!
for i in $(seq 100); do
  [ "$(readlink /proc/$C/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] && break
  sleep 0.05
done
[ "$(readlink /proc/$C/ns/mnt)" != "$(readlink /proc/self/ns/mnt)" ] || exit 21
in_ctr() { nsenter -t "$C" -m -- "$@"; }
# Docker's long-syntax bind of the parent, rslave.
in_ctr sh -c "mount --rbind '$D/host/share' '$D/ctr' && mount --make-rslave '$D/ctr'" || exit 22
OPTS="ro,allow_other,uid=1000,gid=1000,cache=$D/cache,log_file=$D/log"
"$B" mount "file://$D/src" "$D/host/share/data" -o "$OPTS" || exit 23
say "first mount: $(in_ctr cat "$D/ctr/data/a.txt" 2>&1)"
say "owner: $(in_ctr stat -c %u:%g "$D/ctr/data/a.txt" 2>&1)"
# A container that binds the mount point itself (started while it was mounted).
in_ctr sh -c "mount --bind '$D/host/share/data' '$D/ctr2' && mount --make-rslave '$D/ctr2'" || exit 24
say "mount-point bind: $(in_ctr cat "$D/ctr2/a.txt" 2>&1)"
# cloudmount stops and starts again (an upgrade, a restart by systemd); the data changed.
PID=$("$B" status --raw | awk -v mp="mountpoint=$D/host/share/data" '$0 == mp {f = 1} f && /^pid=/ {sub("pid=", ""); print; exit}')
[ -n "$PID" ] || exit 25
kill -TERM "$PID"
for i in $(seq 600); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$PID" 2>/dev/null && exit 27
echo v2 > "$D/src/a.txt"
"$B" mount "file://$D/src" "$D/host/share/data" -o "$OPTS" || exit 26
say "after restart, parent bind: $(in_ctr cat "$D/ctr/data/a.txt" 2>&1)"
say "after restart, mount-point bind: $(in_ctr cat "$D/ctr2/a.txt" 2>&1)"
exit 0
