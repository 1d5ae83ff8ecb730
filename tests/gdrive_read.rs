//! Google Drive through real mounts against the in-repo fake Drive server
//! (tests/drive_fake): names (duplicates, `/`, shortcuts, documents, trash), reads, tokens
//! that expire or are revoked, rate-limit storms and a 10,000-file folder.

#[path = "drive_fake/mod.rs"]
mod drive_fake;
mod harness;
mod support;

use drive_fake::{FakeDrive, Fault, Op, Options};
use harness::{sh, MountCmd};
use std::time::Duration;

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// A token file for `fake` (refreshed at its token endpoint) and the mount command of
/// `gdrive:///PATH` with `opts` (the fake's endpoint first).
fn drive_mount(fake: &FakeDrive, path: &str, opts: &[&str]) -> MountCmd {
    let token = fake.token_file_json();
    let endpoint = format!("endpoint={}", fake.url());
    let mut all = vec![endpoint.as_str(), "drive_rate=0"];
    all.extend_from_slice(opts);
    MountCmd::new(&format!("gdrive:///{path}"), &all)
        .env("XDG_CONFIG_HOME", "")
        .home_file(".config/cloudmount/gdrive/default.json", &token)
}

fn ok(cmd: &str) -> String {
    let (success, out, err) = sh(cmd);
    assert!(success, "`{cmd}` failed: {err}");
    out
}

fn lines(s: &str) -> Vec<String> {
    let mut v: Vec<String> = s.lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn a_tree_with_duplicates_slashes_shortcuts_documents_and_trash_reads_right() {
    let fake = FakeDrive::start(Options::default());
    let root = fake.root_id();
    let data = fake.create_folder(&root, "data");
    let t0 = std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let first = fake.create_file_at(&data, "a.jpg", b"first", t0);
    let second = fake.create_file_at(&data, "a.jpg", b"second!", t0 + Duration::from_secs(60));
    let sub = fake.create_folder(&data, "sub");
    let nested = fake.create_folder(&sub, "nested");
    let deep: Vec<u8> = (0..(3 << 20)).map(|i: u32| (i * 7 % 251) as u8).collect();
    fake.create_file(&nested, "deep.bin", &deep);
    fake.create_file(&data, "x/y.txt", b"slash\n");
    let elsewhere = fake.create_folder(&root, "elsewhere");
    let target = fake.create_file(&elsewhere, "target.txt", b"through a shortcut\n");
    fake.create_shortcut(&data, "link.txt", &target);
    fake.create_shortcut(&data, "linked-dir", &nested);
    let doc = fake.create_doc(
        &data,
        "Plan",
        "application/vnd.google-apps.document",
        b"the plan",
    );
    let gone = fake.create_file(&data, "trashed.txt", b"old");
    fake.trash(&gone);
    // A shortcut to a folder above it must not make an endless tree.
    fake.create_shortcut(&nested, "up", &data);

    let m = drive_mount(&fake, "data", &[]).mount();
    let mnt = m.path.display().to_string();
    let short = |id: &str| id.chars().take(8).collect::<String>();
    assert_eq!(
        lines(&ok(&format!("ls {mnt}"))),
        lines(&format!(
            "Plan.docx\na ({}).jpg\na.jpg\nlink.txt\nlinked-dir\nsub\nx\u{FF0F}y.txt",
            short(&second)
        ))
    );
    let _ = first;
    // ls -l never exports a document.
    ok(&format!("ls -l {mnt} {mnt}/sub/nested"));
    assert_eq!(fake.op_count(Op::Export), 0, "ls -l exported a document");
    assert_eq!(ok(&format!("cat {mnt}/a.jpg")), "first");
    assert_eq!(
        ok(&format!("cat '{mnt}/a ({}).jpg'", short(&second))),
        "second!"
    );
    assert_eq!(ok(&format!("cat {mnt}/x\u{FF0F}y.txt")), "slash\n");
    assert_eq!(ok(&format!("cat {mnt}/link.txt")), "through a shortcut\n");
    assert_eq!(
        ok(&format!("md5sum < {mnt}/sub/nested/deep.bin"))
            .split_whitespace()
            .next()
            .unwrap(),
        support::md5_of_bytes(&deep)
    );
    assert_eq!(
        ok(&format!("md5sum < {mnt}/linked-dir/deep.bin"))
            .split_whitespace()
            .next()
            .unwrap(),
        support::md5_of_bytes(&deep)
    );
    let exported = std::fs::read(m.p("Plan.docx")).unwrap();
    assert_eq!(exported, fake.export_bytes(&doc, DOCX));
    assert!(
        std::fs::write(m.p("Plan.docx"), b"x").is_err(),
        "documents are read-only"
    );
    // df shows the account's quota (the fake's is 15 GiB).
    let (blocks, bsize) = {
        let out = ok(&format!("stat -f -c '%b %S' {mnt}"));
        let v: Vec<u64> = out.split_whitespace().map(|n| n.parse().unwrap()).collect();
        (v[0], v[1])
    };
    assert_eq!(blocks * bsize, 15 << 30);
    let found = lines(&ok(&format!("cd {mnt} && find . -type f")));
    assert_eq!(found.len(), 7, "{found:?}");
    assert!(
        !found
            .iter()
            .any(|f| f.contains("trashed") || f.contains("/up/")),
        "{found:?}"
    );
}

#[test]
fn a_revoked_authorization_fails_the_mount_with_the_command_that_fixes_it() {
    let fake = FakeDrive::start(Options::default());
    let cmd = drive_mount(&fake, "", &[]);
    fake.revoke_refresh_tokens();
    let (code, err) = cmd.mount_err();
    assert_ne!(code, 0);
    assert!(
        err.contains("cloudmount auth gdrive --label default"),
        "{err}"
    );
    assert!(err.contains("invalid_grant"), "{err}");
}

#[test]
fn a_missing_authorization_names_the_file_and_the_command() {
    let fake = FakeDrive::start(Options::default());
    let endpoint = format!("endpoint={}", fake.url());
    let (code, err) = MountCmd::new("gdrive://work/x", &[&endpoint])
        .env("XDG_CONFIG_HOME", "")
        .mount_err();
    assert_ne!(code, 0);
    assert!(
        err.contains("work.json") && err.contains("cloudmount auth gdrive --label work"),
        "{err}"
    );
}

#[test]
fn an_access_token_that_expires_mid_read_is_refreshed_and_the_read_completes() {
    let fake = FakeDrive::start(Options::default());
    let root = fake.root_id();
    let big: Vec<u8> = (0..(100u32 << 20)).map(|i| (i % 253) as u8).collect();
    fake.create_file(&root, "big.bin", &big);
    let m = drive_mount(&fake, "", &["cache=off"]).mount();
    let path = m.p("big.bin");
    let reader = std::thread::spawn(move || {
        let out = std::process::Command::new("md5sum")
            .arg(&path)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string()
    });
    // Once the read is under way, every token the server gave out stops working.
    assert!(support::wait_until(Duration::from_secs(30), || fake
        .op_count(Op::Media)
        >= 2));
    let before = fake.token_requests_for("refresh_token");
    fake.expire_access_tokens();
    assert_eq!(reader.join().unwrap(), support::md5_of_bytes(&big));
    // However many requests met the 401 at once, one refresh served them all.
    assert_eq!(fake.token_requests_for("refresh_token") - before, 1);
}

#[test]
fn a_storm_of_rate_limit_answers_slows_the_work_but_fails_nothing() {
    let fake = FakeDrive::start(Options::default());
    let root = fake.root_id();
    let dir = fake.create_folder(&root, "many");
    for i in 0..40 {
        fake.create_file(
            &dir,
            &format!("f{i:02}"),
            format!("content {i}\n").as_bytes(),
        );
    }
    let m = drive_mount(&fake, "many", &[]).mount();
    for (status, reason) in [
        (403, "userRateLimitExceeded"),
        (429, "rateLimitExceeded"),
        (403, "rateLimitExceeded"),
    ] {
        fake.inject(Fault {
            op: Op::Any,
            status,
            reason,
            retry_after: None,
            times: 40,
            every: 2,
        });
    }
    let mnt = m.path.display().to_string();
    let (success, all, err) = sh(&format!("cat {mnt}/f*"));
    assert!(success, "{err}\nlog:\n{}", m.log_text());
    assert_eq!(all.lines().count(), 40);
    for i in 0..40 {
        assert!(all.contains(&format!("content {i}\n")));
    }
    assert!(!m.log_text().contains("EIO"), "{}", m.log_text());
}

#[test]
fn a_folder_of_ten_thousand_files_lists_completely_in_bounded_memory() {
    let fake = FakeDrive::start(Options::default());
    let root = fake.root_id();
    let dir = fake.create_folder(&root, "huge");
    for i in 0..10_000 {
        fake.create_file(&dir, &format!("img_{i:05}.jpg"), b"x");
    }
    let m = drive_mount(&fake, "", &[]).mount();
    let mnt = m.path.display().to_string();
    let listed = ok(&format!("ls -l {mnt}/huge | grep -c img_"));
    assert_eq!(listed.trim(), "10000");
    assert!(
        fake.op_count(Op::List) < 40,
        "{} list requests",
        fake.op_count(Op::List)
    );
    let pid = harness::daemon_pids(&m.path)[0];
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let hwm_kb: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(hwm_kb < 256 << 10, "daemon peak RSS {hwm_kb} KiB");
}

#[test]
fn trash_show_lists_what_was_trashed_under_dot_trash() {
    let fake = FakeDrive::start(Options::default());
    let root = fake.root_id();
    let keep = fake.create_folder(&root, "keep");
    let old = fake.create_file(&keep, "old.txt", b"old\n");
    let dir = fake.create_folder(&root, "olddir");
    fake.create_file(&dir, "inner.txt", b"inner\n");
    fake.trash(&old);
    fake.trash(&dir);
    let m = drive_mount(&fake, "", &["trash=show"]).mount();
    let mnt = m.path.display().to_string();
    assert_eq!(lines(&ok(&format!("ls -A {mnt}"))), [".Trash", "keep"]);
    assert_eq!(
        lines(&ok(&format!("ls {mnt}/.Trash"))),
        ["old.txt", "olddir"]
    );
    assert_eq!(ok(&format!("cat {mnt}/.Trash/olddir/inner.txt")), "inner\n");
    assert_eq!(ok(&format!("ls {mnt}/keep")), "");
    drop(m);
    let hidden = drive_mount(&fake, "", &[]).mount();
    assert_eq!(
        lines(&ok(&format!("ls -A {}", hidden.path.display()))),
        ["keep"]
    );
}

#[test]
fn a_shared_drive_mounts_by_id() {
    let fake = FakeDrive::start(Options::default());
    let drive = fake.create_shared_drive("Team");
    let d = fake.create_folder(&drive, "datasets");
    fake.create_file(&d, "labels.csv", b"a,b\n");
    fake.create_file(&fake.root_id(), "mine.txt", b"not in the shared drive");
    let opt = format!("drive_id={drive}");
    let m = drive_mount(&fake, "datasets", &[&opt]).mount();
    assert_eq!(ok(&format!("cat {}/labels.csv", m.path.display())), "a,b\n");
    ok(&format!("echo new > {}/new.csv", m.path.display()));
    let made = fake.find(&d, "new.csv");
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].drive_id.as_deref(), Some(drive.as_str()));
}

#[test]
fn a_service_account_acts_as_its_subject() {
    let fake = FakeDrive::start(Options::default());
    fake.create_file(&fake.root_id(), "sa.txt", b"service\n");
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("key.pem");
    ok(&format!(
        "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out {} 2>/dev/null",
        pem.display()
    ));
    let key = serde_json::json!({
        "type": "service_account", "client_email": "robot@project.iam.gserviceaccount.com",
        "private_key": std::fs::read_to_string(&pem).unwrap(),
        "token_uri": format!("{}/token", fake.url()),
    });
    let endpoint = format!("endpoint={}", fake.url());
    let sa = dir.path().join("sa.json");
    std::fs::write(&sa, key.to_string()).unwrap();
    std::fs::set_permissions(&sa, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let opt = format!("service_account={}", sa.display());
    let m = MountCmd::new("gdrive:///", &[&endpoint, &opt, "subject=ann@example.com"]).mount();
    assert_eq!(ok(&format!("cat {}/sa.txt", m.path.display())), "service\n");
    let claims = fake.last_jwt_claims().expect("a JWT-bearer grant");
    assert_eq!(claims.iss, "robot@project.iam.gserviceaccount.com");
    assert_eq!(claims.sub.as_deref(), Some("ann@example.com"));
    assert!(claims.scope.contains("auth/drive"));
}

#[test]
fn a_revoked_authorization_while_mounted_serves_the_cache_and_says_what_to_run() {
    let fake = FakeDrive::start(Options::default());
    let root = fake.root_id();
    fake.create_file(&root, "warm.txt", b"cached\n");
    fake.create_file(&root, "cold.txt", b"never read\n");
    let opts = [
        "attr_timeout=1h",
        "entry_timeout=1h",
        "dir_cache_timeout=1h",
        "credential_check=1s",
    ];
    let m = drive_mount(&fake, "", &opts).mount();
    let mnt = m.path.display().to_string();
    assert_eq!(ok(&format!("cat {mnt}/warm.txt")), "cached\n");
    ok(&format!("ls -l {mnt}"));
    fake.revoke_refresh_tokens();
    fake.expire_access_tokens();
    assert_eq!(
        ok(&format!("cat {mnt}/warm.txt")),
        "cached\n",
        "the cache still serves"
    );
    let (success, _, err) = sh(&format!("cat {mnt}/cold.txt"));
    assert!(!success && err.contains("Permission denied"), "{err}");
    let log = m.log_text();
    assert!(
        log.contains("cloudmount auth gdrive --label default"),
        "{log}"
    );
    assert_eq!(
        log.matches("publish the app").count(),
        1,
        "explained once: {log}"
    );
    let (_, status, _) = sh(&format!("{} status", harness::bin()));
    let ours = status
        .split("\n\n")
        .flat_map(|s| s.split("gdrive:///"))
        .find(|s| s.contains(&mnt))
        .unwrap_or_default()
        .to_string();
    assert!(
        ours.contains("cloudmount auth gdrive --label default"),
        "{status}"
    );
    // Authorized again: the rewritten token file is picked up without a remount.
    let token = fake.token_file_json();
    let file = m
        .dir
        .path()
        .join("home/.config/cloudmount/gdrive/default.json");
    std::fs::write(&file, token).unwrap();
    let back = support::wait_until(Duration::from_secs(20), || {
        sh(&format!("cat {mnt}/cold.txt")).1 == "never read\n"
    });
    assert!(back, "not picked up; log:\n{}", m.log_text());
}
