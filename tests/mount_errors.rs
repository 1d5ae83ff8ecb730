//! Bad input: each case exits non-zero, says what is wrong (file and line where there is one),
//! and leaves nothing mounted.

mod harness;
mod support;

use harness::MountCmd;
use std::os::unix::fs::PermissionsExt;
use support::S3Server;

fn expect_err(cmd: MountCmd, needles: &[&str]) -> String {
    let (code, err) = cmd.mount_err();
    assert_ne!(code, 0, "must fail: {err}");
    for n in needles {
        assert!(err.contains(n), "stderr lacks {n:?}:\n{err}");
    }
    err
}

fn private_file(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    p
}

#[test]
fn option_url_and_mountpoint_mistakes() {
    let local = tempfile::tempdir().unwrap();
    let src = format!("file://{}", local.path().display());
    expect_err(
        MountCmd::new(&src, &["allow_othr"]),
        &["unknown mount option \"allow_othr\"", "allow_other"],
    );
    expect_err(
        MountCmd::new(&src, &["ro,,uid=1"]),
        &["malformed -o list", "empty option"],
    );
    expect_err(
        MountCmd::new(&src, &["uid=abc"]),
        &["\"uid\"", "whole number"],
    );
    expect_err(
        MountCmd::new("ftp://host/x", &[]),
        &["unknown URL scheme \"ftp\""],
    );
    expect_err(
        MountCmd::new("file:///definitely/not/here", &[]),
        &["/definitely/not/here", "does not exist"],
    );

    let out = harness::run_bounded(
        std::process::Command::new(harness::bin()).args(["mount", &src, "/no/such/mountpoint"]),
        std::time::Duration::from_secs(30),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("mountpoint /no/such/mountpoint does not exist") && err.contains("mkdir -p"),
        "{err}"
    );
}

#[test]
fn config_file_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = format!("file://{}", dir.path().display());
    let toml = private_file(
        dir.path(),
        "c.toml",
        "allow_other = false\nuid = \"x\"\n",
        0o644,
    );
    let mut cmd = MountCmd::new(&src, &[]);
    cmd.config = Some(toml.clone());
    expect_err(cmd.clone(), &[&format!("{}:2:", toml.display()), "uid"]);
    std::fs::write(&toml, "ro = true\nthis is not toml\n").unwrap();
    expect_err(cmd, &[&format!("{}:2:", toml.display()), "invalid TOML"]);
}

#[test]
fn credential_file_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let opened = private_file(dir.path(), "passwd", "AKIA:secret\n", 0o644);
    let opt = format!(
        "passwd_file={},endpoint=http://127.0.0.1:9",
        opened.display()
    );
    expect_err(
        MountCmd::new("s3://b", &[&opt]),
        &["mode 644", "chmod 600", &opened.display().to_string()],
    );

    let bad = private_file(
        dir.path(),
        "passwd2",
        "AK:SK\njust-one-field-hunter2\n",
        0o600,
    );
    let opt = format!("passwd_file={},endpoint=http://127.0.0.1:9", bad.display());
    let err = expect_err(
        MountCmd::new("s3://b", &[&opt]),
        &[&format!("{}:2:", bad.display())],
    );
    assert!(
        !err.contains("hunter2"),
        "the secret must not be printed: {err}"
    );

    let cfg = private_file(
        dir.path(),
        "connection.cfg",
        "accountName a\naccountKey k\nfoo bar\n",
        0o600,
    );
    let opt = format!("config_file={}", cfg.display());
    expect_err(
        MountCmd::new("az://c", &[&opt]),
        &[&format!("{}:3:", cfg.display()), "unknown setting \"foo\""],
    );
}

#[test]
fn server_side_failures_are_reported_at_mount_time() {
    // Nothing listens on port 9 (discard) on loopback here: connection refused.
    expect_err(
        MountCmd::new(
            "s3://b",
            &[
                "endpoint=http://127.0.0.1:9",
                "retries=0",
                "connect_timeout=2",
            ],
        )
        .env("AWS_ACCESS_KEY_ID", "a")
        .env("AWS_SECRET_ACCESS_KEY", "b"),
        &["cannot reach http://127.0.0.1:9"],
    );

    let s3 = S3Server::start_moto();
    let ep = format!("endpoint={}", s3.endpoint);
    expect_err(
        MountCmd::new("s3://no-such-bucket", &[&ep])
            .env("AWS_ACCESS_KEY_ID", "a")
            .env("AWS_SECRET_ACCESS_KEY", "b"),
        &["s3://no-such-bucket", "does not exist"],
    );

    let auth = S3Server::start_moto_auth();
    auth.create_bucket("locked");
    let ep = format!("endpoint={}", auth.endpoint);
    let err = expect_err(
        MountCmd::new("s3://locked", &[&ep])
            .env("AWS_ACCESS_KEY_ID", &auth.access_key)
            .env("AWS_SECRET_ACCESS_KEY", "wrong-secret-hunter2"),
        &["refused the credentials"],
    );
    assert!(!err.contains("hunter2"), "{err}");
    // The right keys mount.
    let m = MountCmd::new("s3://locked", &[&ep])
        .env("AWS_ACCESS_KEY_ID", &auth.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &auth.secret_key)
        .mount();
    assert!(harness::is_mounted(&m.path));
}
