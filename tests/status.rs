//! `cloudmount status` and `cloudmount unmount --all`, run inside a private mount namespace so
//! that `--all` cannot reach any mount outside this test.

mod harness;
mod support;

use std::process::Command;
use std::time::Duration;

const SCRIPT: &str = r#"
B=$1; D=$2
# FUSE mounts of other tests (or ones they left behind) were copied into this namespace: detach
# them here (only here: propagation is private), so status and --all meet this test's own.
awk '{for (i = 7; i < NF; i++) if ($i == "-") { if ($(i + 1) ~ /^fuse/) print $5; break }}' /proc/self/mountinfo | while read -r m; do
  case "$m" in "$D"/*) ;; *) umount -l -c "$(printf '%b' "$m")" 2>/dev/null ;; esac
done
cleanup() { "$B" unmount --lazy "$D/m1" 2>/dev/null; "$B" unmount --lazy "$D/m 2" 2>/dev/null; }
trap cleanup EXIT
mkdir -p "$D/s1" "$D/s2" "$D/m1" "$D/m 2"
echo hi > "$D/s1/f"
"$B" mount "file://$D/s1" "$D/m1" -o "cache=$D/c1,log_file=$D/l1" || exit 10
ln -s "$D/m 2" "$D/link"
# Through a symlink: the daemon must name its socket after the path mountinfo shows.
"$B" mount "file://$D/s2" "$D/link" -o "cache=$D/c2,log_file=$D/l2" || exit 11
cat "$D/m1/f" > /dev/null
"$B" status > "$D/status.txt" 2>&1
"$B" status --raw > "$D/raw.txt" 2>&1
stat -c %a "/run/cloudmount/$(systemd-escape --path "$D/m1").sock" > "$D/mode.txt"
"$B" unmount --all > "$D/unmount.txt" 2>&1 || exit 12
grep -F "$D/m" /proc/self/mountinfo > "$D/left.txt"
"$B" status > "$D/after.txt" 2>&1
exit 0
"#;

/// Run `script` with the binary and `dir` as `$1` and `$2`, in a mount namespace of its own.
fn in_private_namespace(script: &str, dir: &std::path::Path) -> std::process::Output {
    harness::run_bounded(
        Command::new("unshare")
            .args(["--mount", "--propagation", "private", "bash", "-c", script])
            .arg("status-test")
            .arg(harness::bin())
            .arg(dir),
        Duration::from_secs(120),
    )
}

#[test]
fn status_reports_each_mount_and_unmount_all_unmounts_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = in_private_namespace(SCRIPT, dir.path());
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    assert!(
        out.status.success(),
        "{out:?}\nlogs:\n{}\n{}",
        read("l1"),
        read("l2")
    );
    let status = read("status.txt");
    assert!(
        status.contains(&format!("file://{d}/s1 on {d}/m1\n  pid ")),
        "{status}"
    );
    assert!(
        status.contains(&format!("file://{d}/s2 on {d}/m 2\n")),
        "{status}"
    );
    assert!(
        status.contains("open for writing 0, uploads in flight 0"),
        "{status}"
    );
    assert!(
        status.contains(&format!("cache 0.0 MiB of 10.0 GiB in {d}/c1"))
            || status.contains(&format!("in {d}/c1")),
        "{status}"
    );
    assert!(status.contains("errors 0"), "{status}");
    assert!(!status.contains("no answer"), "{status}");
    let raw = read("raw.txt");
    assert!(
        raw.contains(&format!("source=file://{d}/s1\nmountpoint={d}/m1\npid=")),
        "{raw}"
    );
    assert!(raw.contains("uploads_in_flight=0\n"), "{raw}");
    assert_eq!(read("mode.txt").trim(), "600");
    let unmounted = read("unmount.txt");
    assert!(
        unmounted.contains(&format!("unmounted file://{d}/s1 from {d}/m1")),
        "{unmounted}"
    );
    assert!(unmounted.contains(&format!("from {d}/m 2")), "{unmounted}");
    assert_eq!(read("left.txt"), "", "mounts left after unmount --all");
    assert!(!read("after.txt").contains(&d), "{}", read("after.txt"));
}

const KILLED: &str = r#"
B=$1; D=$2
trap '"$B" unmount --lazy "$D/m" 2>/dev/null' EXIT
mkdir -p "$D/s" "$D/m"
"$B" mount "file://$D/s" "$D/m" -o "cache=$D/c,log_file=$D/l" || exit 10
S="/run/cloudmount/$(systemd-escape --path "$D/m").sock"
test -S "$S" || exit 11
# Other tests' mounts may have been copied into this namespace: take this mount's pid.
PID=$("$B" status --raw | awk -v mp="mountpoint=$D/m" '$0 == mp {f = 1} f && /^pid=/ {sub("pid=", ""); print; exit}')
[ -n "$PID" ] || exit 12
kill -9 "$PID"
for i in $(seq 100); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
"$B" status > "$D/status.txt" 2>&1
"$B" unmount --lazy "$D/m" > "$D/unmount.txt" 2>&1 || exit 13
test -e "$S" && exit 14
grep -qF " $D/m " /proc/self/mountinfo && exit 15
exit 0
"#;

#[test]
fn a_killed_daemon_shows_as_silent_and_unmount_clears_its_mount_and_socket() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let out = in_private_namespace(KILLED, dir.path());
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default();
    // Exit 14: the socket of the killed daemon was left in /run/cloudmount.
    assert!(
        out.status.success(),
        "{out:?}\nstatus: {}\nunmount: {}\nlog:\n{}",
        read("status.txt"),
        read("unmount.txt"),
        read("l")
    );
    let status = read("status.txt");
    assert!(
        status.contains(&format!(
            "file://{d}/s on {d}/m\n  no answer from the daemon"
        )),
        "{status}"
    );
}
