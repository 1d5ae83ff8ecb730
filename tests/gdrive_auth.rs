//! `cloudmount auth gdrive` end to end against the fake Drive server's OAuth endpoints: the
//! test plays the browser (it opens the printed URL and follows the redirect to the loopback
//! port), pastes a redirect address for `--headless`, and imports a google-drive-ocamlfuse
//! directory it writes. Each stored token then mounts.

#[path = "drive_fake/mod.rs"]
mod drive_fake;
mod harness;
mod support;

use drive_fake::{FakeDrive, Options};
use harness::{bin, sh, MountCmd};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

fn fake() -> FakeDrive {
    FakeDrive::start(Options {
        client_id: Some("cid.apps".into()),
        client_secret: Some("csecret".into()),
        ..Options::default()
    })
}

fn auth_cmd(fake: &FakeDrive, token: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(bin());
    c.args(["auth", "gdrive", "--client-id", "cid.apps"])
        .arg("--auth-uri")
        .arg(format!("{}/o/oauth2/auth", fake.url()))
        .arg("--token-uri")
        .arg(format!("{}/token", fake.url()))
        .arg("--token-file")
        .arg(token)
        .args(extra)
        .env("CLOUDMOUNT_GDRIVE_CLIENT_SECRET", "csecret")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The first line of `out` that is a URL.
fn read_url(out: &mut impl BufRead) -> String {
    for _ in 0..20 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.starts_with("http") {
            return line.trim().to_string();
        }
    }
    panic!("no URL printed");
}

/// Where the authorization page redirects the browser.
fn redirect_of(url: &str) -> String {
    let (ok, out, err) = sh(&format!(
        "curl -s -o /dev/null -w '%{{redirect_url}}' '{url}'"
    ));
    assert!(ok && out.starts_with("http://127.0.0.1:"), "{out} {err}");
    out
}

/// The token file works for a mount that lists the fake's root.
fn mounts_with(fake: &FakeDrive, token: &Path) {
    assert_eq!(
        std::fs::metadata(token).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(token).unwrap();
    assert!(
        text.contains("\"refresh_token\"") && text.contains("authorized_user"),
        "{text}"
    );
    fake.create_file(&fake.root_id(), "hello.txt", b"hi");
    let endpoint = format!("endpoint={}", fake.url());
    let tf = format!("token_file={}", token.display());
    let m = MountCmd::new("gdrive:///", &[&endpoint, &tf]).mount();
    assert_eq!(std::fs::read(m.p("hello.txt")).unwrap(), b"hi");
}

#[test]
fn the_loopback_flow_stores_a_token_that_mounts() {
    let fake = fake();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("gd").join("default.json");
    let mut child = auth_cmd(&fake, &token, &["--timeout", "60"])
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let url = read_url(&mut out);
    assert!(url.contains("code_challenge_method=S256"), "{url}");
    let back = redirect_of(&url);
    let (ok, page, _) = sh(&format!("curl -s '{back}'"));
    assert!(ok && page.contains("received"), "{page}");
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut out, &mut rest);
    assert!(status.success(), "{rest}");
    assert!(rest.contains("Authorized"), "{rest}");
    mounts_with(&fake, &token);
}

#[test]
fn headless_takes_the_pasted_redirect_address() {
    let fake = fake();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("headless.json");
    let mut child = auth_cmd(&fake, &token, &["--headless"]).spawn().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let url = read_url(&mut out);
    // The browser on another machine ends on this address (it fails to load there).
    let back = redirect_of(&url);
    writeln!(child.stdin.take().unwrap(), "{back}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    mounts_with(&fake, &token);
}

#[test]
fn a_google_drive_ocamlfuse_setup_is_imported_without_consent() {
    let fake = fake();
    let dir = tempfile::tempdir().unwrap();
    let gdfuse = dir.path().join("gdfuse-default");
    std::fs::create_dir(&gdfuse).unwrap();
    std::fs::write(
        gdfuse.join("config"),
        "client_id=cid.apps\nclient_secret=csecret\nverbose=false\n",
    )
    .unwrap();
    let refresh = fake.issue_refresh_token();
    std::fs::write(
        gdfuse.join("state"),
        format!("auth_request_id=\nrefresh_token={refresh}\nlast_access_token=\n"),
    )
    .unwrap();
    let token = dir.path().join("imported.json");
    let mut cmd = auth_cmd(&fake, &token, &["--import-gdfuse"]);
    cmd.arg(&gdfuse)
        .env_remove("CLOUDMOUNT_GDRIVE_CLIENT_SECRET");
    let output = cmd.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(std::fs::read_to_string(&token).unwrap().contains(&refresh));
    mounts_with(&fake, &token);
    // A revoked one is refused before anything is stored.
    fake.revoke_refresh_tokens();
    let again = dir.path().join("again.json");
    let mut cmd = auth_cmd(&fake, &again, &["--import-gdfuse"]);
    cmd.arg(&gdfuse);
    let output = cmd.output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid_grant"));
    assert!(!again.exists());
}
