//! Writes to Google Drive through real mounts against the in-repo fake Drive server: large
//! files through resumable uploads that survive a dropped connection and a killed daemon,
//! updates in place, one-request renames of files and folders, and changes made elsewhere
//! showing within one poll interval.

#[path = "drive_fake/mod.rs"]
mod drive_fake;
mod harness;
mod support;

use drive_fake::{FakeDrive, Op, Options};
use harness::{daemon_pids, pattern, sh, MountCmd};
use std::path::Path;
use std::time::Duration;
use support::{md5_of_bytes, wait_until, DelayProxy};

fn drive_cmd(fake: &FakeDrive, endpoint: &str, cache: &Path, opts: &[&str]) -> MountCmd {
    let token = fake.token_file_json();
    let endpoint = format!("endpoint={endpoint}");
    let cache = format!("cache={}", cache.display());
    let mut all = vec![endpoint.as_str(), cache.as_str(), "drive_rate=0"];
    all.extend_from_slice(opts);
    MountCmd::new("gdrive:///", &all)
        .env("XDG_CONFIG_HOME", "")
        .home_file(".config/cloudmount/gdrive/default.json", &token)
}

fn ok(cmd: &str) -> String {
    let (success, out, err) = sh(cmd);
    assert!(success, "`{cmd}` failed: {err}");
    out
}

#[test]
fn a_large_file_survives_a_dropped_connection_and_an_overwrite_keeps_its_id() {
    let fake = FakeDrive::start(Options::default());
    let cache = tempfile::tempdir().unwrap();
    let m = drive_cmd(&fake, &fake.url(), cache.path(), &[]).mount();
    let local = tempfile::tempdir().unwrap();
    let data = pattern(100 << 20, 3);
    let src = local.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();
    // The connection drops in the middle of the first chunk.
    fake.drop_next_chunk(3 << 20);
    ok(&format!(
        "cp {} {}",
        src.display(),
        m.p("big.bin").display()
    ));
    let root = fake.root_id();
    let found = fake.find(&root, "big.bin");
    assert_eq!(found.len(), 1, "one file on the server");
    assert_eq!(
        found[0].md5_checksum.as_deref(),
        Some(md5_of_bytes(&data).as_str())
    );
    assert!(
        fake.op_count(Op::ResumableChunk) > 13,
        "no status query after the drop"
    );
    let id = found[0].id.clone();
    // Overwrite in place: same id, nothing created beside it.
    let other = pattern(20 << 20, 4);
    std::fs::write(&src, &other).unwrap();
    ok(&format!(
        "cp {} {}",
        src.display(),
        m.p("big.bin").display()
    ));
    let found = fake.find(&root, "big.bin");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, id, "the overwrite made a new file");
    assert_eq!(
        found[0].md5_checksum.as_deref(),
        Some(md5_of_bytes(&other).as_str())
    );
    // A small file goes up in one request and reads back.
    ok(&format!("echo hello > {}", m.p("small.txt").display()));
    assert_eq!(
        fake.find(&root, "small.txt")[0].content.as_ref(),
        b"hello\n"
    );
    ok(&format!(
        "mkdir -p {0}/d/e && echo x > {0}/d/e/f",
        m.path.display()
    ));
    let d = fake.find(&root, "d");
    assert_eq!(d.len(), 1);
    assert!(d[0].is_folder());
}

#[test]
fn renames_of_a_file_and_of_a_folder_of_1000_files_are_one_request_each() {
    let fake = FakeDrive::start(Options::default());
    let root = fake.root_id();
    let dir = fake.create_folder(&root, "photos");
    for i in 0..1000 {
        fake.create_file(&dir, &format!("p{i:04}.jpg"), b"jpeg");
    }
    let file = fake.create_file(&root, "notes.txt", b"notes");
    let cache = tempfile::tempdir().unwrap();
    let m = drive_cmd(&fake, &fake.url(), cache.path(), &[]).mount();
    let mnt = m.path.display().to_string();
    ok(&format!("ls {mnt}/photos > /dev/null"));
    fake.reset_counts();
    ok(&format!("mv {mnt}/notes.txt {mnt}/renamed.txt"));
    ok(&format!(
        "mkdir {mnt}/archive && mv {mnt}/photos {mnt}/archive/2026"
    ));
    assert_eq!(fake.op_count(Op::Copy), 0, "a rename copied");
    assert!(
        fake.op_count(Op::Update) <= 2,
        "{} updates",
        fake.op_count(Op::Update)
    );
    assert_eq!(fake.file(&file).unwrap().name, "renamed.txt");
    let moved = fake.file(&dir).unwrap();
    assert_eq!(moved.name, "2026");
    assert_eq!(
        fake.children(&dir).len(),
        1000,
        "the files stayed in the moved folder"
    );
    let listed = ok(&format!("ls {mnt}/archive/2026 | wc -l"));
    assert_eq!(listed.trim(), "1000");
    assert_eq!(ok(&format!("cat {mnt}/renamed.txt")), "notes");
    // rm moves to the trash; rmdir refuses a folder that is not empty.
    ok(&format!("rm {mnt}/renamed.txt"));
    assert!(fake.file(&file).unwrap().trashed);
    let (success, _, err) = sh(&format!("rmdir {mnt}/archive"));
    assert!(!success && err.contains("not empty"), "{err}");
}

#[test]
fn changes_made_elsewhere_show_within_the_poll_interval_despite_hour_long_timeouts() {
    let fake = FakeDrive::start(Options::default());
    let root = fake.root_id();
    let dir = fake.create_folder(&root, "shared");
    let f = fake.create_file(&dir, "a.txt", b"one");
    let cache = tempfile::tempdir().unwrap();
    let opts = [
        "poll_interval=1s",
        "attr_timeout=1h",
        "entry_timeout=1h",
        "dir_cache_timeout=1h",
        "negative_timeout=1h",
    ];
    let m = drive_cmd(&fake, &fake.url(), cache.path(), &opts).mount();
    let mnt = m.path.display().to_string();
    assert_eq!(ok(&format!("cat {mnt}/shared/a.txt")), "one");
    assert_eq!(ok(&format!("ls {mnt}/shared")), "a.txt\n");
    let (missing, _, _) = sh(&format!("stat {mnt}/shared/new.txt"));
    assert!(!missing);
    fake.set_content(&f, b"two!");
    fake.create_file(&dir, "new.txt", b"new");
    let other = fake.create_file(&root, "moved-in.txt", b"m");
    fake.move_to(&other, &dir);
    let seen = wait_until(Duration::from_secs(10), || {
        let (_, cat, _) = sh(&format!("cat {mnt}/shared/a.txt"));
        let (_, ls, _) = sh(&format!("ls {mnt}/shared"));
        cat == "two!" && ls == "a.txt\nmoved-in.txt\nnew.txt\n"
    });
    assert!(seen, "changes did not show; log:\n{}", m.log_text());
    assert_eq!(ok(&format!("stat -c %s {mnt}/shared/a.txt")).trim(), "4");
}

#[test]
fn sigkill_during_a_resumable_upload_is_completed_by_the_next_mount() {
    // The fake sits behind a proxy, and its upload sessions point at the proxy.
    let port = support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let fake = FakeDrive::start(Options {
        public_url: Some(endpoint.clone()),
        ..Options::default()
    });
    let upstream = format!("127.0.0.1:{}", fake.port());
    // The second chunk of the resumable upload is held (the first is on the server).
    let proxy = DelayProxy::start_on(port, &upstream, "bytes 8388608-", Duration::from_secs(600));
    let cache = tempfile::tempdir().unwrap();
    let cmd = drive_cmd(&fake, &endpoint, cache.path(), &[]);
    let m = cmd.mount();
    let local = tempfile::tempdir().unwrap();
    let data = pattern(20 << 20, 9);
    let src = local.path().join("big.bin");
    std::fs::write(&src, &data).unwrap();
    let mut writer = std::process::Command::new("cp")
        .arg(&src)
        .arg(m.p("big.bin"))
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || proxy.delayed_count() >= 1),
        "no chunk was sent; log:\n{}",
        m.log_text()
    );
    for pid in daemon_pids(&m.path) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = writer.wait();
    drop(m);
    drop(proxy);
    assert!(
        fake.find(&fake.root_id(), "big.bin").is_empty(),
        "finished before the kill"
    );
    let _proxy = DelayProxy::start_on(port, &upstream, "no such request", Duration::ZERO);
    let m = cmd.mount();
    let found = fake.find(&fake.root_id(), "big.bin");
    assert_eq!(found.len(), 1, "log:\n{}", m.log_text());
    assert_eq!(
        found[0].md5_checksum.as_deref(),
        Some(md5_of_bytes(&data).as_str())
    );
}

#[test]
fn modes_owners_and_times_live_in_app_properties_and_delete_permanent_deletes() {
    let fake = FakeDrive::start(Options::default());
    let root = fake.root_id();
    let cache = tempfile::tempdir().unwrap();
    let m = drive_cmd(&fake, &fake.url(), cache.path(), &["delete=permanent"]).mount();
    let mnt = m.path.display().to_string();
    ok(&format!(
        "echo x > {mnt}/f && chmod 640 {mnt}/f && touch -m -d @1700000000 {mnt}/f"
    ));
    let f = fake.find(&root, "f").remove(0);
    assert_eq!(
        f.app_properties.get("mode").map(String::as_str),
        Some("33184"),
        "{:?}",
        f.app_properties
    );
    assert_eq!(
        f.modified_time
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
        1_700_000_000
    );
    drop(m);
    let m = drive_cmd(&fake, &fake.url(), cache.path(), &["delete=permanent"]).mount();
    let mnt = m.path.display().to_string();
    assert_eq!(
        ok(&format!("stat -c '%a %Y' {mnt}/f")).trim(),
        "640 1700000000"
    );
    ok(&format!("rm {mnt}/f"));
    assert!(fake.file(&f.id).is_none(), "deleted for good, not trashed");
}
