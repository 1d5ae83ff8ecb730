//! Secrets stay secret: a debug-level log of a whole session (mount, list, read, write,
//! rename, unmount) holds none of the secrets used, and neither does the daemon's command line,
//! for S3 (keys from a passwd file) and Google Drive (client secret, refresh token, and the
//! access tokens the server handed out).

#[path = "drive_fake/mod.rs"]
mod drive_fake;
mod harness;
mod support;

use harness::{daemon_pids, sh, MountCmd};

fn ok(cmd: &str) -> String {
    let (success, out, err) = sh(cmd);
    assert!(success, "`{cmd}` failed: {err}");
    out
}

/// Work through the mount, then check the log and the command line for `secrets`.
fn exercise_and_check(m: &harness::Mounted, secrets: &[String]) {
    let mnt = m.path.display().to_string();
    ok(&format!("echo data > {mnt}/a.txt && cat {mnt}/a.txt && ls -l {mnt} && mv {mnt}/a.txt {mnt}/b.txt && rm {mnt}/b.txt"));
    let pid = daemon_pids(&m.path)[0];
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let environ = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let log = m.log_text();
    assert!(log.contains("DEBUG"), "not a debug log:\n{log}");
    for s in secrets {
        assert!(!s.is_empty());
        assert!(!log.contains(s.as_str()), "a secret is in the log:\n{log}");
        assert!(
            !environ.contains(s.as_str()),
            "a secret is on the command line: {environ}"
        );
    }
}

#[test]
fn s3_keys_never_reach_the_log_or_the_command_line() {
    let s3 = support::S3Server::start_moto_auth();
    s3.create_bucket("sec");
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    std::fs::write(&pw, format!("{}:{}\n", s3.access_key, s3.secret_key)).unwrap();
    std::fs::set_permissions(&pw, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let endpoint = format!("endpoint={}", s3.endpoint);
    let passwd = format!("passwd_file={}", pw.display());
    let m = MountCmd::new("s3://sec", &[&endpoint, &passwd, "debug"]).mount();
    exercise_and_check(&m, std::slice::from_ref(&s3.secret_key));
}

#[test]
fn drive_tokens_never_reach_the_log_or_the_command_line() {
    let fake = drive_fake::FakeDrive::start(drive_fake::Options {
        client_id: Some("cid".into()),
        client_secret: Some("client-secret-value".into()),
        ..Default::default()
    });
    let refresh = fake.issue_refresh_token();
    let token = serde_json::json!({
        "type": "authorized_user", "client_id": "cid", "client_secret": "client-secret-value",
        "refresh_token": refresh, "token_uri": format!("{}/token", fake.url()),
    });
    let endpoint = format!("endpoint={}", fake.url());
    let m = MountCmd::new("gdrive:///", &[&endpoint, "debug"])
        .env("XDG_CONFIG_HOME", "")
        .home_file(".config/cloudmount/gdrive/default.json", &token.to_string())
        .mount();
    let mut secrets = vec!["client-secret-value".to_string(), refresh];
    // Every access token the server handed out (the daemon's among them).
    let issued = fake.access_tokens();
    assert!(!issued.is_empty());
    secrets.extend(issued);
    exercise_and_check(&m, &secrets);
}
