//! A smoke test of the Drive backend against a server we did not write: npm
//! `google-drive-mock` 1.2.0 behind tests/gdrive_mock/wrapper.js (installed by
//! .ci/install.sh into /opt/cloudmount-test/gdrive-mock, or `$GDRIVE_MOCK_DIR`). It checks our
//! reading of the API (paths, queries, fields, uploads, moves, trash) through a real mount.
//! The mock has no `root` alias (so the mount starts at `root_folder=`), no resumable uploads
//! and corrupts binary multipart bodies, so the files here are small and textual.

mod harness;
mod support;

use harness::{sh, MountCmd};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Mock {
    child: Child,
    url: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_mock() -> Mock {
    let dir = std::env::var("GDRIVE_MOCK_DIR")
        .unwrap_or_else(|_| "/opt/cloudmount-test/gdrive-mock".into());
    let modules = format!("{dir}/node_modules");
    assert!(
        std::path::Path::new(&modules)
            .join("google-drive-mock")
            .exists(),
        "google-drive-mock is not installed in {dir}: run `bash .ci/install.sh`"
    );
    let port = support::free_port();
    let child = Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/gdrive_mock/wrapper.js"
        ))
        .env("NODE_PATH", &modules)
        .env("GDRIVE_PORT", port.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node");
    let url = format!("http://127.0.0.1:{port}");
    let mock = Mock { child, url };
    let up = support::wait_until(Duration::from_secs(30), || {
        sh(&format!("curl -sf {}/", mock.url)).1 == "OK"
    });
    assert!(up, "google-drive-mock did not answer");
    mock
}

/// One API call with curl; the answer's body.
fn api(mock: &Mock, method: &str, path: &str, body: &str, content_type: &str) -> serde_json::Value {
    let out = Command::new("curl")
        .args([
            "-s",
            "-X",
            method,
            "-H",
            "Authorization: Bearer valid-token",
        ])
        .args([
            "-H",
            &format!("Content-Type: {content_type}"),
            "--data-binary",
            body,
        ])
        .arg(format!("{}{path}", mock.url))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
}

fn id(v: &serde_json::Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

fn ok(cmd: &str) -> String {
    let (success, out, err) = sh(cmd);
    assert!(success, "`{cmd}` failed: {err}");
    out
}

#[test]
fn a_third_party_drive_mock_lists_reads_writes_moves_and_trashes_through_a_mount() {
    let mock = start_mock();
    let json = "application/json";
    let top = id(&api(
        &mock,
        "POST",
        "/drive/v3/files",
        r#"{"name":"top","mimeType":"application/vnd.google-apps.folder"}"#,
        json,
    ));
    let sub = id(&api(
        &mock,
        "POST",
        "/drive/v3/files",
        &format!(
            r#"{{"name":"sub","mimeType":"application/vnd.google-apps.folder","parents":["{top}"]}}"#
        ),
        json,
    ));
    let f = id(&api(
        &mock,
        "POST",
        "/upload/drive/v3/files?uploadType=media",
        "hello from the mock\n",
        "application/octet-stream",
    ));
    api(
        &mock,
        "PATCH",
        &format!("/drive/v3/files/{f}?addParents={top}"),
        r#"{"name":"hello.txt"}"#,
        json,
    );

    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token.json");
    std::fs::write(&token, r#"{"access_token":"valid-token"}"#).unwrap();
    std::fs::set_permissions(&token, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let opts = [
        format!("endpoint={}", mock.url),
        format!("token_file={}", token.display()),
        format!("root_folder={top}"),
        "drive_rate=0".to_string(),
    ];
    let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
    let m = MountCmd::new("gdrive:///", &opts).mount();
    let mnt = m.path.display().to_string();
    let mut names: Vec<String> = ok(&format!("ls {mnt}"))
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, ["hello.txt", "sub"], "log:\n{}", m.log_text());
    assert_eq!(ok(&format!("cat {mnt}/hello.txt")), "hello from the mock\n");

    ok(&format!(
        "echo written through the mount > {mnt}/sub/made.txt"
    ));
    let listed = api(
        &mock,
        "GET",
        &format!("/drive/v3/files?q=%27{sub}%27+in+parents+and+trashed+%3D+false"),
        "",
        json,
    );
    let made = listed["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "made.txt")
        .cloned();
    let made = made.unwrap_or_else(|| panic!("not uploaded: {listed}"));
    let out = Command::new("curl")
        .args(["-s", "-H", "Authorization: Bearer valid-token"])
        .arg(format!(
            "{}/drive/v3/files/{}?alt=media",
            mock.url,
            id(&made)
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "written through the mount\n"
    );

    ok(&format!("mv {mnt}/sub/made.txt {mnt}/moved.txt"));
    let moved = api(
        &mock,
        "GET",
        &format!("/drive/v3/files/{}?fields=id,name,parents", id(&made)),
        "",
        json,
    );
    assert_eq!(moved["name"], "moved.txt");
    assert_eq!(moved["parents"][0].as_str(), Some(top.as_str()));
    ok(&format!("rm {mnt}/moved.txt"));
    let gone = api(
        &mock,
        "GET",
        &format!("/drive/v3/files/{}?fields=id,trashed", id(&made)),
        "",
        json,
    );
    assert_eq!(gone["trashed"], true, "{gone}");
    let mut names: Vec<String> = ok(&format!("ls {mnt}"))
        .lines()
        .map(str::to_string)
        .collect();
    names.sort();
    assert_eq!(names, ["hello.txt", "sub"]);
}
