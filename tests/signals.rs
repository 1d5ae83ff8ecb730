//! The daemon's signals, through real mounts: SIGHUP re-reads credentials (a rotated passwd
//! file) and drops cached listings without unmounting; SIGTERM keeps what a file still open
//! for writing holds (no program closed it) and uploads it only with `upload_unclosed`.

mod harness;
mod support;

use harness::{daemon_pids, sh, MountCmd};
use object_store::{aws::AmazonS3Builder, path::Path as ObjPath, ObjectStore, ObjectStoreExt};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use support::{block_on, wait_until, S3Server};

fn signal(mountpoint: &Path, sig: nix::sys::signal::Signal) {
    let pids = daemon_pids(mountpoint);
    assert_eq!(pids.len(), 1, "one daemon serves {}", mountpoint.display());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pids[0]), sig).expect("kill");
}

/// Write a private s3fs passwd file the way an operator rotates one: aside, then renamed.
fn write_passwd(path: &Path, key: &str, secret: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, format!("{key}:{secret}\n")).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn store(s3: &S3Server, bucket: &str, key: &str, secret: &str) -> Arc<dyn ObjectStore> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(&s3.endpoint)
            .with_bucket_name(bucket)
            .with_region(&s3.region)
            .with_access_key_id(key)
            .with_secret_access_key(secret)
            .with_allow_http(true)
            .build()
            .unwrap(),
    )
}

#[test]
fn sighup_picks_up_a_rotated_passwd_file() {
    rotated_passwd_is_picked_up(true);
}

/// `credential_check`: the daemon notices the rotated file by itself.
#[test]
fn a_rotated_passwd_file_is_picked_up_without_a_signal() {
    rotated_passwd_is_picked_up(false);
}

/// Rotate the key (the old one is deleted on the server), rewrite the passwd file, then
/// SIGHUP (`sighup`) or wait for the daemon's own look at the file: new objects read.
fn rotated_passwd_is_picked_up(sighup: bool) {
    let s3 = S3Server::start_moto_auth();
    s3.create_bucket("rot");
    let old = store(&s3, "rot", &s3.access_key, &s3.secret_key);
    block_on(old.put(&ObjPath::from("a.txt"), "first\n".into())).unwrap();
    let creds = tempfile::tempdir().unwrap();
    let passwd = creds.path().join("passwd-s3fs");
    write_passwd(&passwd, &s3.access_key, &s3.secret_key);
    let endpoint = format!("endpoint={}", s3.endpoint);
    let pf = format!("passwd_file={}", passwd.display());
    // With SIGHUP, the daemon must not look by itself (the signal is what is tested).
    let check = if sighup {
        "credential_check=0"
    } else {
        "credential_check=1s"
    };
    let m = MountCmd::new(
        "s3://rot",
        &[
            &endpoint,
            &pf,
            "attr_timeout=0",
            "negative_timeout=0",
            "retries=0",
            check,
        ],
    )
    .mount();
    assert_eq!(std::fs::read_to_string(m.p("a.txt")).unwrap(), "first\n");

    // The old key is deleted: the mount cannot read anything new with it.
    let (key, secret) = s3.rotate_access_key();
    let new = store(&s3, "rot", &key, &secret);
    block_on(new.put(&ObjPath::from("b.txt"), "second\n".into())).unwrap();
    assert!(
        std::fs::read_to_string(m.p("b.txt")).is_err(),
        "a deleted key still reads"
    );

    write_passwd(&passwd, &key, &secret);
    if sighup {
        signal(&m.path, nix::sys::signal::Signal::SIGHUP);
    }
    let read = wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(m.p("b.txt")).is_ok_and(|t| t == "second\n")
    });
    assert!(
        read,
        "after the rotation the new key is not used; log:\n{}",
        m.log_text()
    );
    assert!(harness::is_mounted(&m.path), "the reload unmounted");
    let log = m.log_text();
    assert!(log.contains("reloaded"), "{log}");
    let why = if sighup {
        "SIGHUP: re-reading"
    } else {
        "a credential file changed: re-reading"
    };
    assert!(log.contains(why), "{log}");
    assert!(!log.contains(&secret), "the secret is in the log");
}

#[test]
fn sighup_drops_cached_listings_and_a_bad_reload_keeps_the_mount() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), "a").unwrap();
    let m = MountCmd::new(
        &format!("file://{}", src.display()),
        &["dir_cache_timeout=1h"],
    )
    .mount();
    let ls = |m: &harness::Mounted| sh(&format!("ls {}", m.path.display())).1;
    assert_eq!(ls(&m), "a\n");
    std::fs::write(src.join("b"), "b").unwrap();
    assert_eq!(ls(&m), "a\n", "the listing is cached for an hour");
    signal(&m.path, nix::sys::signal::Signal::SIGHUP);
    let fresh = wait_until(Duration::from_secs(10), || ls(&m) == "a\nb\n");
    assert!(fresh, "SIGHUP did not drop the listing: {:?}", ls(&m));

    // A reload that fails (the source is gone) keeps serving with what it had.
    std::fs::rename(&src, dir.path().join("moved")).unwrap();
    signal(&m.path, nix::sys::signal::Signal::SIGHUP);
    let said = wait_until(Duration::from_secs(10), || {
        m.log_text().contains("reload failed")
    });
    assert!(said, "{}", m.log_text());
    assert!(harness::is_mounted(&m.path));
}

/// Case 9 of issue 11 (SIGTERM while writing): an `O_TRUNC` rewrite still open at the stop
/// never replaces the good object; its content is kept for lost+found at the next mount.
/// `upload_unclosed` uploads it instead.
#[test]
fn sigterm_keeps_a_file_no_program_closed_and_uploads_it_only_when_asked() {
    let s3 = S3Server::start_moto();
    s3.create_bucket("drain");
    let server = s3.store("drain");
    let stored = || {
        block_on(async { server.get(&ObjPath::from("open.txt")).await?.bytes().await })
            .map(|b| b.to_vec())
            .ok()
    };
    for upload_unclosed in [false, true] {
        block_on(server.put(
            &ObjPath::from("open.txt"),
            object_store::PutPayload::from_static(b"good\n"),
        ))
        .unwrap();
        let cache = tempfile::tempdir().unwrap();
        let cache_opt = format!("cache={}", cache.path().display());
        let mut opts = vec!["stop_timeout=30s", cache_opt.as_str()];
        if upload_unclosed {
            opts.push("upload_unclosed");
        }
        let cmd = MountCmd::s3(&s3, "drain", &opts);
        let m = cmd.mount();
        let file = m.p("open.txt");
        // A writer that keeps its file open (no close, so no upload yet).
        let mut writer = std::process::Command::new("python3")
            .args([
                "-c",
                "import sys, time\nf = open(sys.argv[1], 'w')\nf.write('half\\n')\nf.flush()\n\
                 print('written', flush=True)\ntime.sleep(120)\n",
            ])
            .arg(&file)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the writer");
        let mut line = String::new();
        let out = writer.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        assert_eq!(line, "written\n");
        assert_eq!(
            stored().as_deref(),
            Some(&b"good\n"[..]),
            "nothing sent before close"
        );

        let pid = daemon_pids(&m.path)[0];
        signal(&m.path, nix::sys::signal::Signal::SIGTERM);
        let exited = wait_until(Duration::from_secs(60), || {
            !Path::new(&format!("/proc/{pid}")).exists()
        });
        let _ = writer.kill();
        let _ = writer.wait();
        assert!(exited, "the daemon did not exit; log:\n{}", m.log_text());
        assert!(
            !harness::is_mounted(&m.path),
            "the busy mount was left behind"
        );
        if upload_unclosed {
            assert_eq!(
                stored().as_deref(),
                Some(&b"half\n"[..]),
                "{}",
                m.log_text()
            );
            continue;
        }
        assert_eq!(
            stored().as_deref(),
            Some(&b"good\n"[..]),
            "the good object stays; log:\n{}",
            m.log_text()
        );
        assert!(
            m.log_text().contains("no program closed it"),
            "{}",
            m.log_text()
        );
        drop(m);
        // The next mount sets the kept content aside, and still does not send it.
        let again = cmd.mount();
        assert_eq!(stored().as_deref(), Some(&b"good\n"[..]));
        assert_eq!(
            support::lost_found_files(cache.path()),
            vec![b"half\n".to_vec()],
            "log:\n{}",
            again.log_text()
        );
        let status = harness::sh(&format!("{} status --raw", harness::bin()));
        assert!(status.1.contains("lost_found=1"), "{status:?}");
    }
}

#[test]
fn sighup_makes_the_kernel_forget_attributes_it_was_told_to_keep_for_an_hour() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("a"), "1").unwrap();
    let m = MountCmd::new(
        &format!("file://{}", src.display()),
        &[
            "attr_timeout=1h",
            "entry_timeout=1h",
            "dir_cache_timeout=1h",
        ],
    )
    .mount();
    let size = || std::fs::metadata(m.p("a")).map(|md| md.len()).unwrap_or(0);
    assert_eq!(size(), 1);
    std::fs::write(src.join("a"), "12345").unwrap();
    assert_eq!(size(), 1, "the kernel keeps the attributes for an hour");
    signal(&m.path, nix::sys::signal::Signal::SIGHUP);
    let fresh = wait_until(Duration::from_secs(10), || size() == 5);
    assert!(
        fresh,
        "size still {} after SIGHUP; log:\n{}",
        size(),
        m.log_text()
    );
    assert!(
        m.log_text().contains("kernel caches dropped"),
        "{}",
        m.log_text()
    );
}
