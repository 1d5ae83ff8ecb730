//! Test-server harness for the integration tests (`mod support;`).
//!
//! Starts moto (S3, optionally with SigV4 verification), Azurite (Azure Blob) and a
//! delaying TCP proxy on 127.0.0.1, plus small helpers (users, mounts, md5).
//! Every wait is bounded; failures panic with a message that includes the server log.
//!
//! External commands used: `moto_server`, `python3` (boto3), `azurite-blob`, `curl`,
//! `openssl`, `md5sum`, `useradd`, `id`, `runuser`. `.ci/install.sh` installs them.
#![allow(dead_code)]

pub mod fault_proxy;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::stream::{self, StreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

/// How long a server may take to become ready.
pub const SERVER_START_TIMEOUT: Duration = Duration::from_secs(60);

/// Well-known Azurite development account and key.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const AZURE_API_VERSION: &str = "2021-08-06";
/// Upload concurrency of `put_objects` (override with env SUPPORT_PUT_CONCURRENCY).
const PUT_CONCURRENCY: usize = 32;

fn put_concurrency() -> usize {
    std::env::var("SUPPORT_PUT_CONCURRENCY")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(PUT_CONCURRENCY)
}

// ------------------------------------------------------------------------------------------
// Generic helpers
// ------------------------------------------------------------------------------------------

/// A free TCP port on 127.0.0.1 (bind to port 0, read it, drop the listener).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local_addr").port()
}

/// Files set aside in a `lost+found` directory below `dir` (any depth), with their bytes
/// (their `.record` journal records left out).
pub fn lost_found_files(dir: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    for _ in 0..10_000 {
        let Some(d) = stack.pop() else { break };
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            let in_lf = d.file_name().is_some_and(|n| n == "lost+found");
            if p.is_dir() {
                stack.push(p);
            } else if in_lf && p.extension().is_none_or(|x| x != "record") {
                out.push(std::fs::read(&p).unwrap_or_default());
            }
        }
    }
    out
}

/// Drop the kernel's cached pages of `path`, so its next read goes to the daemon.
pub fn drop_pages(path: &Path) {
    use std::os::unix::io::AsRawFd;
    let f = std::fs::File::open(path).expect("open");
    // SAFETY: a valid descriptor; advice only.
    let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    assert_eq!(rc, 0, "posix_fadvise");
}

/// Poll `f` every 50 ms until it returns true or `timeout` passes. Returns the last result.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Undo the octal escapes of /proc/self/mountinfo (`\040` = space, `\011`, `\012`, `\134`).
pub fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Make `p` absolute and resolve symlinks in its parent, without touching `p` itself
/// (stat on a dead FUSE mount point can fail or hang).
fn normalize_mount_path(p: &Path) -> PathBuf {
    let abs = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    match (abs.parent(), abs.file_name()) {
        (Some(parent), Some(name)) => match parent.canonicalize() {
            Ok(cp) => cp.join(name),
            Err(_) => abs,
        },
        _ => abs,
    }
}

/// The mount points (field 5) in /proc/self/mountinfo, unescaped.
pub fn mount_points() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .collect()
}

/// True if `path` is a mount point according to /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    let want = normalize_mount_path(path);
    mount_points().iter().any(|m| *m == want || m == path)
}

/// Hex MD5 of a file, computed by `md5sum`.
pub fn md5_of_file(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    let out = Command::new("md5sum")
        .arg("--")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run md5sum: {e}"));
    assert!(
        out.status.success(),
        "md5sum {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    first_token(&out.stdout)
}

/// Hex MD5 of a byte slice (piped into `md5sum`).
pub fn md5_of_bytes(data: &[u8]) -> String {
    let out = run_with_stdin(Command::new("md5sum"), data).expect("md5sum");
    assert!(
        out.status.success(),
        "md5sum failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    first_token(&out.stdout)
}

fn first_token(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// Run `cmd`, feeding `input` on stdin from a separate thread (no pipe deadlock).
fn run_with_stdin(mut cmd: Command, input: &[u8]) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let mut stdin = child.stdin.take().expect("stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child
        .wait_with_output()
        .map_err(|e| format!("wait {cmd:?}: {e}"))?;
    let _ = writer.join();
    Ok(out)
}

/// Minimal HTTP/1.0 request to 127.0.0.1:port; returns the status code, None if no answer.
fn http_status(port: u16, method: &str, path: &str) -> Option<u16> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    while got.len() < 12 {
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&got);
    line.split_whitespace().nth(1)?.parse().ok()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// Start `cmd` with stdout+stderr into `log`.
fn spawn_logged(mut cmd: Command, log: &Path) -> Child {
    let f = std::fs::File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let f2 = f.try_clone().expect("clone log fd");
    cmd.stdin(Stdio::null()).stdout(f).stderr(f2);
    cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot start {cmd:?}: {e} (is it installed? run .ci/install.sh)")
    })
}

/// Wait until `GET path` on `port` answers `want`; panics (after killing the child) otherwise.
fn wait_ready(
    name: &str,
    child: &mut Child,
    port: u16,
    path: &str,
    want: u16,
    log: &Path,
) -> Duration {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < SERVER_START_TIMEOUT {
        if let Ok(Some(st)) = child.try_wait() {
            panic!(
                "{name} exited early with {st}; log {}:\n{}",
                log.display(),
                log_tail(log)
            );
        }
        last = http_status(port, "GET", path);
        if last == Some(want) {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "{name} not ready after {:?} (GET {path} on port {port}: last status {last:?}, want {want}); log:\n{}",
        SERVER_START_TIMEOUT,
        log_tail(log)
    );
}

fn kill_child(child: &mut Child) {
    // Child::kill sends SIGKILL to exactly this PID.
    let _ = child.kill();
    let _ = child.wait();
}

/// Percent-encode a key for a URL path: everything except unreserved characters and '/'.
pub fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() * 3);
    for &b in key.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Run curl; the body (if any) goes in on stdin. Returns (HTTP status, response body).
fn curl(args: &[String], body: Option<&[u8]>) -> Result<(u16, String), String> {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-s",
        "-S",
        "--max-time",
        "60",
        "-o",
        "-",
        "-w",
        "\n%{http_code}",
    ]);
    cmd.args(args);
    if body.is_some() {
        cmd.args(["--data-binary", "@-"]);
    }
    let out = run_with_stdin(cmd, body.unwrap_or(&[]))?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (resp, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    let code: u16 = code.trim().parse().map_err(|_| {
        format!(
            "curl {args:?}: no status ({}; stderr {})",
            text,
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if code == 0 {
        return Err(format!(
            "curl {args:?}: connection failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok((code, resp.to_string()))
}

/// One shared runtime for all harness calls, so object_store's pooled connections stay valid
/// between calls (a connection belongs to the runtime that opened it).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("support-rt")
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// Uploads one object with a raw key (curl), for keys object_store's `Path` cannot express.
type RawPut<'a> = &'a dyn Fn(&str, &[u8]) -> Result<(), String>;

/// Upload `objects` with `PUT_CONCURRENCY` requests in flight on a private runtime.
/// Keys are parsed with `Path::parse` (sent as given). Keys ending in '/' go to `raw`.
fn put_all(
    store: Arc<dyn ObjectStore>,
    objects: Vec<(String, Bytes)>,
    raw: RawPut<'_>,
) -> Result<(), String> {
    let (markers, normal): (Vec<_>, Vec<_>) =
        objects.into_iter().partition(|(k, _)| k.ends_with('/'));
    for (k, v) in markers {
        raw(&k, &v)?;
    }
    runtime().block_on(async move {
        let results: Vec<Result<(), String>> = stream::iter(normal)
            .map(|(k, v)| {
                let store = store.clone();
                async move {
                    let p = ObjPath::parse(&k).map_err(|e| format!("bad key {k:?}: {e}"))?;
                    let mut last = String::new();
                    // moto occasionally drops a connection under load: retry a few times.
                    for attempt in 0..4 {
                        match store.put(&p, PutPayload::from(v.clone())).await {
                            Ok(_) => return Ok(()),
                            Err(e) => last = e.to_string(),
                        }
                        tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                    }
                    Err(format!("put {k:?}: {last}"))
                }
            })
            .buffer_unordered(put_concurrency())
            .collect()
            .await;
        let errs: Vec<String> = results.into_iter().filter_map(Result::err).collect();
        if errs.is_empty() {
            Ok(())
        } else {
            Err(format!("{} uploads failed, first: {}", errs.len(), errs[0]))
        }
    })
}

/// Run a future on the harness's private runtime (for calls from sync test code; must not
/// be called from inside another tokio runtime).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    runtime().block_on(f)
}

// ------------------------------------------------------------------------------------------
// S3: moto
// ------------------------------------------------------------------------------------------

/// A moto S3 server on 127.0.0.1. Killed on drop.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub port: u16,
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
    /// True if the server verifies SigV4 signatures (`start_moto_auth`).
    pub auth: bool,
    child: Child,
    _dir: tempfile::TempDir,
}

/// Python launcher for moto-auth. moto 5.2.1 recomputes the SigV4 signature over
/// werkzeug's `request.url`, an IRI in which `%2B`, `%26`, `%3D`, `%C3%BC`, … (and `%2F` in
/// the query, e.g. `prefix=dir%2F`) are already decoded, so any such key or any prefixed
/// LIST got 403 SignatureDoesNotMatch even with the right key. This patch makes the check
/// use the raw request URI as sent (werkzeug's RAW_URI / REQUEST_URI) and then runs
/// moto's own server `main`.
const MOTO_AUTH_LAUNCHER: &str = r#"
import sys
import moto.core.authorization as _auth
import moto.core.responses as _resp

_orig_setup = _resp.BaseResponse.setup_class
def _setup_class(self, request, full_url, headers, *args, **kwargs):
    env = getattr(request, "environ", None) or {}
    self._raw_request_uri = env.get("RAW_URI") or env.get("REQUEST_URI")
    return _orig_setup(self, request, full_url, headers, *args, **kwargs)
_resp.BaseResponse.setup_class = _setup_class

_orig_auth = _auth.ActionAuthenticatorMixin._authenticate_and_authorize_action
def _authenticate(self, *args, **kwargs):
    raw = getattr(self, "_raw_request_uri", None)
    if not raw:
        return _orig_auth(self, *args, **kwargs)
    saved = self.uri
    self.uri = raw
    try:
        return _orig_auth(self, *args, **kwargs)
    finally:
        self.uri = saved
_auth.ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate

from moto.server import main
main(sys.argv[1:])
"#;

/// Python bootstrap for moto-auth: IAM user + allow-all S3 policy + access key, then switch
/// on auth via `/moto-api/reset-auth` (= INITIAL_NO_AUTH_ACTION_COUNT=0 from now on),
/// then verify that the key works and that a wrong secret and an unknown key are refused.
const MOTO_AUTH_BOOTSTRAP: &str = r#"
import json, sys, urllib.request
import boto3, botocore.exceptions
from botocore.config import Config
ep = sys.argv[1]
cfg = Config(retries={"max_attempts": 2}, connect_timeout=10, read_timeout=30)
def client(svc, ak, sk):
    return boto3.client(svc, endpoint_url=ep, region_name="us-east-1", config=cfg,
                        aws_access_key_id=ak, aws_secret_access_key=sk)
iam = client("iam", "test", "test")
iam.create_user(UserName="cloudmount-ci")
pol = iam.create_policy(PolicyName="cloudmount-s3-all", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "iam:*"], "Resource": "*"}]}))
iam.attach_user_policy(UserName="cloudmount-ci", PolicyArn=pol["Policy"]["Arn"])
key = iam.create_access_key(UserName="cloudmount-ci")["AccessKey"]
ak, sk = key["AccessKeyId"], key["SecretAccessKey"]
req = urllib.request.Request(ep + "/moto-api/reset-auth", data=b"0", method="POST",
                             headers={"Content-Type": "text/plain"})
urllib.request.urlopen(req, timeout=10).read()
client("s3", ak, sk).list_buckets()
for bad_ak, bad_sk in ((ak, sk[:-1] + ("A" if sk[-1] != "A" else "B")), ("AKIAUNKNOWNKEY000000", sk)):
    try:
        client("s3", bad_ak, bad_sk).list_buckets()
        sys.exit("moto did not reject a bad key: auth is not enforced")
    except botocore.exceptions.ClientError as e:
        if e.response["ResponseMetadata"]["HTTPStatusCode"] != 403:
            sys.exit("unexpected error for a bad key: %r" % e)
print(ak, sk)
"#;

/// Rotate the IAM key of the moto-auth user: make a new key, delete the old one
/// (argv: endpoint, old key id, old secret); prints the new pair.
const MOTO_ROTATE_KEY: &str = r#"
import sys, boto3
ep, ak, sk = sys.argv[1:4]
iam = boto3.client("iam", endpoint_url=ep, region_name="us-east-1",
                   aws_access_key_id=ak, aws_secret_access_key=sk)
key = iam.create_access_key(UserName="cloudmount-ci")["AccessKey"]
iam.delete_access_key(UserName="cloudmount-ci", AccessKeyId=ak)
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;

impl S3Server {
    /// With [`S3Server::start_moto_auth`]: replace the key by a new one and delete the old
    /// one, so requests signed with it fail from now on. Returns the new (id, secret).
    pub fn rotate_access_key(&self) -> (String, String) {
        let mut cmd = Command::new("python3");
        cmd.args([
            "-c",
            MOTO_ROTATE_KEY,
            &self.endpoint,
            &self.access_key,
            &self.secret_key,
        ]);
        let out = run_with_timeout(cmd, Duration::from_secs(60)).expect("run python3");
        assert!(out.status.success(), "key rotation failed: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut it = text.split_whitespace();
        match (it.next(), it.next()) {
            (Some(a), Some(s)) => (a.to_string(), s.to_string()),
            _ => panic!("key rotation printed no key: {text:?}"),
        }
    }

    /// Start `moto_server` (or, with `auth`, moto through `MOTO_AUTH_LAUNCHER`) on a free port.
    fn spawn_moto(auth: bool) -> (Child, tempfile::TempDir, u16, Duration) {
        let dir = tempfile::Builder::new()
            .prefix("moto-")
            .tempdir()
            .expect("tempdir");
        let log = dir.path().join("moto.log");
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut cmd = if auth {
                let mut c = Command::new("python3");
                c.args(["-c", MOTO_AUTH_LAUNCHER]);
                c
            } else {
                Command::new("moto_server")
            };
            cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
            cmd.env("PYTHONUNBUFFERED", "1")
                .env_remove("INITIAL_NO_AUTH_ACTION_COUNT");
            let mut child = spawn_logged(cmd, &log);
            // Port races (free_port) show up as an early exit: retry with another port.
            let start = Instant::now();
            let mut ok = false;
            while start.elapsed() < SERVER_START_TIMEOUT {
                if let Ok(Some(st)) = child.try_wait() {
                    last_err = format!("moto_server exited with {st}:\n{}", log_tail(&log));
                    break;
                }
                if http_status(port, "GET", "/moto-api/") == Some(200) {
                    ok = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if ok {
                return (child, dir, port, start.elapsed());
            }
            if child.try_wait().ok().flatten().is_none() {
                kill_child(&mut child);
                panic!(
                    "moto_server not ready after {SERVER_START_TIMEOUT:?}; log:\n{}",
                    log_tail(&log)
                );
            }
        }
        panic!("could not start moto_server: {last_err}");
    }

    /// moto accepting any credentials ("test"/"test"); readiness GET /moto-api/ → 200.
    pub fn start_moto() -> S3Server {
        let (child, dir, port, took) = Self::spawn_moto(false);
        eprintln!("[support] moto on port {port} ready in {took:.2?}");
        S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            port,
            access_key: "test".into(),
            secret_key: "test".into(),
            region: "us-east-1".into(),
            auth: false,
            child,
            _dir: dir,
        }
    }

    /// moto that verifies SigV4 signatures: a wrong secret → 403 SignatureDoesNotMatch, an
    /// unknown access key → 403 InvalidAccessKeyId. `access_key`/`secret_key` are an IAM
    /// key (IAM user with an allow-all S3 policy) made by `MOTO_AUTH_BOOTSTRAP`, which then
    /// switches auth on through `/moto-api/reset-auth` (the runtime form of
    /// `INITIAL_NO_AUTH_ACTION_COUNT`). moto runs through `MOTO_AUTH_LAUNCHER`, which makes
    /// moto check signatures over the raw request URI (see there).
    pub fn start_moto_auth() -> S3Server {
        let t0 = Instant::now();
        let (mut child, dir, port, _) = Self::spawn_moto(true);
        let endpoint = format!("http://127.0.0.1:{port}");
        let mut cmd = Command::new("python3");
        cmd.args(["-c", MOTO_AUTH_BOOTSTRAP, &endpoint]);
        let out = run_with_timeout(cmd, Duration::from_secs(60));
        let out = match out {
            Ok(o) if o.status.success() => o,
            other => {
                kill_child(&mut child);
                panic!("moto-auth bootstrap failed: {other:?}");
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        let mut it = text.split_whitespace();
        let (ak, sk) = match (it.next(), it.next()) {
            (Some(a), Some(s)) => (a.to_string(), s.to_string()),
            _ => {
                kill_child(&mut child);
                panic!("moto-auth bootstrap printed no key: {text:?}");
            }
        };
        eprintln!(
            "[support] moto-auth on port {port} ready in {:.2?}",
            t0.elapsed()
        );
        S3Server {
            endpoint,
            port,
            access_key: ak,
            secret_key: sk,
            region: "us-east-1".into(),
            auth: true,
            child,
            _dir: dir,
        }
    }

    fn sigv4_args(&self) -> Vec<String> {
        vec![
            "--aws-sigv4".into(),
            format!("aws:amz:{}:s3", self.region),
            "--user".into(),
            format!("{}:{}", self.access_key, self.secret_key),
            "-H".into(),
            "x-amz-content-sha256: UNSIGNED-PAYLOAD".into(),
        ]
    }

    /// Create a bucket (SigV4-signed curl). An existing bucket is fine.
    pub fn create_bucket(&self, name: &str) {
        let mut args = self.sigv4_args();
        args.extend([
            "-X".into(),
            "PUT".into(),
            format!("{}/{}", self.endpoint, name),
        ]);
        match curl(&args, None) {
            Ok((200, _)) | Ok((409, _)) => {}
            other => panic!("create bucket {name} at {}: {other:?}", self.endpoint),
        }
    }

    /// An object_store client for `bucket` (path style, http, this server's credentials).
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        self.store_via(bucket, &self.endpoint)
    }

    /// Like `store`, but talking to `endpoint` (e.g. a `DelayProxy` in front of this server).
    pub fn store_via(&self, bucket: &str, endpoint: &str) -> Arc<dyn ObjectStore> {
        let s3 = AmazonS3Builder::new()
            .with_endpoint(endpoint)
            .with_bucket_name(bucket)
            .with_region(&self.region)
            .with_access_key_id(&self.access_key)
            .with_secret_access_key(&self.secret_key)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .unwrap_or_else(|e| panic!("AmazonS3Builder for {bucket} at {endpoint}: {e}"));
        Arc::new(s3)
    }

    /// Upload objects (32 in flight). Keys are sent exactly as given; keys ending in '/'
    /// are created with `put_raw_key`.
    pub fn put_objects(&self, bucket: &str, objects: Vec<(String, Bytes)>) {
        let raw = |k: &str, v: &[u8]| self.try_put_raw_key(bucket, k, v);
        if let Err(e) = put_all(self.store(bucket), objects, &raw) {
            panic!("put_objects into {bucket} at {}: {e}", self.endpoint);
        }
    }

    /// PUT an object with a raw key (may end in '/', e.g. a directory marker "dir/").
    /// Run a boto3 `script` against this server (the S3 client is `c`); its stdout. For
    /// requests object_store cannot make (keys it refuses, multipart upload listings).
    pub fn boto(&self, script: &str) -> String {
        let full = format!(
            "import boto3, sys\nc = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1', \
             aws_access_key_id=sys.argv[2], aws_secret_access_key=sys.argv[3])\n{script}"
        );
        let out = Command::new("python3")
            .args([
                "-c",
                &full,
                &self.endpoint,
                &self.access_key,
                &self.secret_key,
            ])
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn put_raw_key(&self, bucket: &str, key: &str, body: &[u8]) {
        if let Err(e) = self.try_put_raw_key(bucket, key, body) {
            panic!("{e}");
        }
    }

    fn try_put_raw_key(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), String> {
        let mut args = self.sigv4_args();
        args.extend([
            "-X".into(),
            "PUT".into(),
            // without it curl sends a form content type and moto (Flask) swallows the body
            "-H".into(),
            "Content-Type: application/octet-stream".into(),
            format!("{}/{}/{}", self.endpoint, bucket, encode_key(key)),
        ]);
        match curl(&args, Some(body)) {
            Ok((200, _)) => Ok(()),
            other => Err(format!(
                "put raw key {bucket}/{key:?} at {}: {other:?}",
                self.endpoint
            )),
        }
    }

    /// Wipe all state (buckets, objects; for moto-auth also the IAM key!) via /moto-api/reset.
    pub fn reset(&self) {
        assert_eq!(
            http_status(self.port, "POST", "/moto-api/reset"),
            Some(200),
            "moto reset"
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// Run a command with a time limit (killed by PID when it runs over).
fn run_with_timeout(mut cmd: Command, limit: Duration) -> Result<Output, String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
    let mut out_pipe = child.stdout.take().expect("stdout");
    let mut err_pipe = child.stderr.take().expect("stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out_pipe.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err_pipe.read_to_end(&mut v);
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break st;
        }
        if start.elapsed() > limit {
            kill_child(&mut child);
            return Err(format!("{cmd:?} timed out after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Ok(Output {
        status,
        stdout: t_out.join().unwrap_or_default(),
        stderr: t_err.join().unwrap_or_default(),
    })
}

// ------------------------------------------------------------------------------------------
// Azure Blob: Azurite
// ------------------------------------------------------------------------------------------

/// An Azurite blob server on 127.0.0.1 with a temporary data dir. Killed on drop.
pub struct Azurite {
    /// `http://127.0.0.1:PORT/devstoreaccount1`
    pub blob_endpoint: String,
    pub port: u16,
    pub account: String,
    pub key: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Azurite {
    /// `azurite-blob … --skipApiVersionCheck --loose --disableTelemetry --silent`;
    /// readiness: GET /devstoreaccount1?comp=list → 403.
    pub fn start() -> Azurite {
        let dir = tempfile::Builder::new()
            .prefix("azurite-")
            .tempdir()
            .expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("mkdir azurite data");
        let log = dir.path().join("azurite.log");
        let port = free_port();
        let mut cmd = Command::new("azurite-blob");
        cmd.args([
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
        ])
        .arg(&data)
        .args([
            "--skipApiVersionCheck",
            "--loose",
            "--disableTelemetry",
            "--silent",
        ]);
        let mut child = spawn_logged(cmd, &log);
        let took = wait_ready(
            "azurite-blob",
            &mut child,
            port,
            "/devstoreaccount1?comp=list",
            403,
            &log,
        );
        eprintln!("[support] azurite on port {port} ready in {took:.2?}");
        Azurite {
            blob_endpoint: format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"),
            port,
            account: AZURITE_ACCOUNT.into(),
            key: AZURITE_KEY.into(),
            child,
            _dir: dir,
        }
    }

    /// SharedKey-signed request with curl; `name` is the already-encoded path below the
    /// account (e.g. "cont" or "cont/dir/"), `query` the canonicalized query lines.
    fn shared_key_put(
        &self,
        url_path: &str,
        query: &[(&str, &str)],
        extra_headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, String), String> {
        let date = http_date(SystemTime::now());
        let content_type = if extra_headers.iter().any(|(k, _)| *k == "x-ms-blob-type") {
            "application/octet-stream"
        } else {
            ""
        };
        let content_length = if body.is_empty() {
            String::new()
        } else {
            body.len().to_string()
        };
        let mut ms_headers: Vec<(String, String)> = vec![
            ("x-ms-date".into(), date.clone()),
            ("x-ms-version".into(), AZURE_API_VERSION.into()),
        ];
        for (k, v) in extra_headers {
            ms_headers.push((k.to_ascii_lowercase(), v.to_string()));
        }
        ms_headers.sort();
        let mut sts = format!("PUT\n\n\n{content_length}\n\n{content_type}\n\n\n\n\n\n\n");
        for (k, v) in &ms_headers {
            sts.push_str(&format!("{k}:{v}\n"));
        }
        // Azurite URLs are path style: the canonical resource is /account + the URL path.
        let endpoint_path = format!("/{}", self.account);
        sts.push_str(&format!("/{}{}/{}", self.account, endpoint_path, url_path));
        let mut q: Vec<_> = query.to_vec();
        q.sort();
        for (k, v) in &q {
            sts.push_str(&format!("\n{}:{}", k.to_ascii_lowercase(), v));
        }
        let sig = hmac_sha256_b64(&self.key, sts.as_bytes())?;

        let mut url = format!("{}/{}", self.blob_endpoint, url_path);
        if !q.is_empty() {
            let qs: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
            url.push('?');
            url.push_str(&qs.join("&"));
        }
        let mut args: Vec<String> = vec!["-X".into(), "PUT".into()];
        for (k, v) in &ms_headers {
            args.push("-H".into());
            args.push(format!("{k}: {v}"));
        }
        args.push("-H".into());
        args.push(format!("Authorization: SharedKey {}:{}", self.account, sig));
        if !content_type.is_empty() {
            args.push("-H".into());
            args.push(format!("Content-Type: {content_type}"));
        }
        if body.is_empty() {
            args.push("-H".into());
            args.push("Content-Length: 0".into());
            args.push(url);
            curl(&args, None)
        } else {
            args.push(url);
            curl(&args, Some(body))
        }
    }

    /// Create a container (an existing one is fine).
    pub fn create_container(&self, name: &str) {
        match self.shared_key_put(name, &[("restype", "container")], &[], &[]) {
            Ok((201, _)) | Ok((409, _)) => {}
            other => panic!(
                "create container {name} at {}: {other:?}",
                self.blob_endpoint
            ),
        }
    }

    /// An object_store client for `container`.
    pub fn store(&self, container: &str) -> Arc<dyn ObjectStore> {
        self.store_via(container, &self.blob_endpoint)
    }

    /// Like `store`, via another endpoint (e.g. `http://127.0.0.1:PROXY/devstoreaccount1`).
    pub fn store_via(&self, container: &str, blob_endpoint: &str) -> Arc<dyn ObjectStore> {
        let az = MicrosoftAzureBuilder::new()
            .with_endpoint(blob_endpoint.to_string())
            .with_account(&self.account)
            .with_access_key(&self.key)
            .with_container_name(container)
            .with_allow_http(true)
            .build()
            .unwrap_or_else(|e| panic!("MicrosoftAzureBuilder for {container}: {e}"));
        Arc::new(az)
    }

    /// Upload blobs (32 in flight); names ending in '/' go through `put_raw_blob`.
    pub fn put_objects(&self, container: &str, objects: Vec<(String, Bytes)>) {
        let raw = |k: &str, v: &[u8]| self.try_put_raw_blob(container, k, v);
        if let Err(e) = put_all(self.store(container), objects, &raw) {
            panic!(
                "put_objects into {container} at {}: {e}",
                self.blob_endpoint
            );
        }
    }

    /// Put Blob with a raw name (may end in '/', e.g. a directory marker "dir/").
    pub fn put_raw_blob(&self, container: &str, name: &str, body: &[u8]) {
        if let Err(e) = self.try_put_raw_blob(container, name, body) {
            panic!("{e}");
        }
    }

    fn try_put_raw_blob(&self, container: &str, name: &str, body: &[u8]) -> Result<(), String> {
        let path = format!("{}/{}", container, encode_key(name));
        match self.shared_key_put(&path, &[], &[("x-ms-blob-type", "BlockBlob")], body) {
            Ok((201, _)) => Ok(()),
            other => Err(format!("put raw blob {container}/{name:?}: {other:?}")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        kill_child(&mut self.child);
    }
}

/// base64(HMAC-SHA256(base64-decoded key, data)) via `openssl dgst`.
fn hmac_sha256_b64(key_b64: &str, data: &[u8]) -> Result<String, String> {
    let key = b64_decode(key_b64)?;
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let mut cmd = Command::new("openssl");
    cmd.args([
        "dgst",
        "-sha256",
        "-mac",
        "HMAC",
        "-macopt",
        &format!("hexkey:{hex}"),
        "-binary",
    ]);
    let out = run_with_stdin(cmd, data)?;
    if !out.status.success() || out.stdout.len() != 32 {
        return Err(format!(
            "openssl hmac failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(b64_encode(&out.stdout))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (if n > 1 { chunk[1] as u32 } else { 0 }) << 8
            | (if n > 2 { chunk[2] as u32 } else { 0 });
        for i in 0..4 {
            if i <= n {
                out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn b64_decode(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=') {
        let v = B64
            .iter()
            .position(|&b| b == c)
            .ok_or_else(|| format!("bad base64 char {c}"))? as u32;
        acc = acc << 6 | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// RFC 1123 date in GMT ("Sun, 06 Nov 1994 08:49:37 GMT").
pub fn http_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).expect("clock").as_secs() as i64;
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let wday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][days.rem_euclid(7) as usize];
    // civil_from_days (H. Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if mo <= 2 { 1 } else { 0 };
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(mo - 1) as usize];
    format!("{wday}, {d:02} {mon} {y} {h:02}:{m:02}:{s:02} GMT")
}

// ------------------------------------------------------------------------------------------
// DelayProxy
// ------------------------------------------------------------------------------------------

/// A loopback TCP proxy: forwards bytes both ways between clients and `upstream`; a chunk
/// from a client that contains `needle` is held for `delay` before it is forwarded (only
/// that connection waits). Stops on drop (closes the listener and all connections; a chunk held
/// then is dropped, never forwarded).
pub struct DelayProxy {
    pub port: u16,
    stop: Arc<AtomicBool>,
    delayed: Arc<AtomicUsize>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    accept_thread: Option<JoinHandle<()>>,
}

impl DelayProxy {
    /// `upstream` is "127.0.0.1:PORT".
    pub fn start(upstream: &str, needle: &str, delay: Duration) -> DelayProxy {
        Self::start_on(0, upstream, needle, delay)
    }

    /// Like `start`, listening on `port` (0: any), e.g. the port of an earlier proxy, so a
    /// mount sees the same endpoint again.
    pub fn start_on(port: u16, upstream: &str, needle: &str, delay: Duration) -> DelayProxy {
        // The sockets of an earlier proxy on this port may take a moment to close.
        let until = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(e) if Instant::now() > until => panic!("DelayProxy bind {port}: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let delayed = Arc::new(AtomicUsize::new(0));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_string();
        let needle = needle.as_bytes().to_vec();
        let (stop2, delayed2, conns2) = (stop.clone(), delayed.clone(), conns.clone());
        let accept_thread = std::thread::Builder::new()
            .name(format!("delay-proxy-{port}"))
            .spawn(move || {
                for client in listener.incoming() {
                    if stop2.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(&upstream) else {
                        let _ = client.shutdown(Shutdown::Both);
                        continue;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    {
                        let mut c = conns2.lock().unwrap();
                        c.retain(|s| s.peer_addr().is_ok());
                        if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
                            c.push(a);
                            c.push(b);
                        }
                    }
                    let (c_read, s_write) = match (client.try_clone(), server.try_clone()) {
                        (Ok(a), Ok(b)) => (a, b),
                        _ => continue,
                    };
                    let (needle, stop3, delayed3) =
                        (needle.clone(), stop2.clone(), delayed2.clone());
                    std::thread::spawn(move || {
                        pump(c_read, s_write, Some((&needle, delay, &stop3, &delayed3)));
                    });
                    std::thread::spawn(move || pump(server, client, None));
                }
            })
            .expect("spawn proxy thread");
        DelayProxy {
            port,
            stop,
            delayed,
            conns,
            accept_thread: Some(accept_thread),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many client chunks were delayed so far.
    pub fn delayed_count(&self) -> usize {
        self.delayed.load(Ordering::SeqCst)
    }
}

/// Copy `from` → `to` until EOF/error. With `delay`, a chunk containing the needle (also
/// across chunk boundaries) sleeps first (in steps, so a stopped proxy does not linger).
fn pump(
    mut from: TcpStream,
    mut to: TcpStream,
    delay: Option<(&[u8], Duration, &AtomicBool, &AtomicUsize)>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut tail: Vec<u8> = Vec::new();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((needle, d, stop, count)) = delay {
            if !needle.is_empty() {
                let mut window = std::mem::take(&mut tail);
                window.extend_from_slice(&buf[..n]);
                if window.windows(needle.len()).any(|w| w == needle) {
                    count.fetch_add(1, Ordering::SeqCst);
                    let until = Instant::now() + d;
                    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(10).min(until - Instant::now()));
                    }
                    if stop.load(Ordering::SeqCst) {
                        // Stopped while holding it: the request is cut, never delivered late
                        // (a held PUT forwarded after the drop landed after a newer version).
                        break;
                    }
                    window.clear();
                }
                let keep = window.len().min(needle.len() - 1);
                tail = window[window.len() - keep..].to_vec();
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // wake the accept loop
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

// ------------------------------------------------------------------------------------------
// Users
// ------------------------------------------------------------------------------------------

static USER_LOCK: Mutex<()> = Mutex::new(());

fn id_of(name: &str, flag: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, name]).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Create an unprivileged system user `name` if missing (we run as root); returns (uid, gid).
pub fn ensure_test_user(name: &str) -> (u32, u32) {
    let _g = USER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut last = String::new();
    for _ in 0..20 {
        if let (Some(u), Some(g)) = (id_of(name, "-u"), id_of(name, "-g")) {
            return (u, g);
        }
        // another process (parallel test binary) may hold the passwd lock: retry
        match Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .output()
        {
            Ok(o) if o.status.success() => continue,
            Ok(o) => last = String::from_utf8_lossy(&o.stderr).into_owned(),
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("cannot create test user {name}: {last}");
}

/// Run `cmd` as `user` (`runuser -u USER -- cmd…`; requires root).
pub fn run_as(user: &str, cmd: &[&str]) -> Output {
    assert!(!cmd.is_empty(), "run_as: empty command");
    Command::new("runuser")
        .args(["-u", user, "--"])
        .args(cmd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("runuser -u {user} -- {cmd:?}: {e}"))
}
