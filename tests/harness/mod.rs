//! Mounting through the real `cloudmount` binary, and unmounting whatever a test mounted even
//! when the test fails (the guard's `Drop`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cloudmount")
}

/// Whether a path is a mount point now (the support module parses mountinfo).
pub use crate::support::is_mounted;

/// A mounted filesystem in a private temp directory; unmounted on drop.
pub struct Mounted {
    /// Holds the mountpoint, HOME and log file.
    pub dir: tempfile::TempDir,
    /// The mountpoint.
    pub path: PathBuf,
    /// The daemon's log file.
    pub log: PathBuf,
}

/// How to run one `cloudmount mount`.
#[derive(Default, Clone)]
pub struct MountCmd {
    /// SOURCE URL.
    pub source: String,
    /// `-o` lists.
    pub options: Vec<String>,
    /// Extra environment (credentials).
    pub env: Vec<(String, String)>,
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// Files to create (mode 0600) under the daemon's HOME before mounting.
    pub home_files: Vec<(String, String)>,
}

impl MountCmd {
    /// Mount `source` with `-o opts` (joined with commas; empty for none).
    pub fn new(source: &str, opts: &[&str]) -> Self {
        let options = if opts.is_empty() {
            vec![]
        } else {
            vec![opts.join(",")]
        };
        MountCmd {
            source: source.to_string(),
            options,
            ..Default::default()
        }
    }

    /// Add an environment variable for the daemon.
    /// A mount of `s3://BUCKET` served by `s3` (its endpoint first, then `opts`), with the
    /// server's credentials in the environment.
    pub fn s3(s3: &crate::support::S3Server, bucket: &str, opts: &[&str]) -> Self {
        Self::s3_via(s3, &s3.endpoint, bucket, opts)
    }

    /// Like [`MountCmd::s3`], through `endpoint` (e.g. a proxy in front of the server).
    pub fn s3_via(
        s3: &crate::support::S3Server,
        endpoint: &str,
        bucket: &str,
        opts: &[&str],
    ) -> Self {
        let endpoint = format!("endpoint={endpoint}");
        let mut all = vec![endpoint.as_str()];
        all.extend_from_slice(opts);
        Self::new(&format!("s3://{bucket}"), &all)
            .env("AWS_ACCESS_KEY_ID", &s3.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &s3.secret_key)
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Create `rel` (mode 0600) under the daemon's HOME before mounting.
    pub fn home_file(mut self, rel: &str, text: &str) -> Self {
        self.home_files.push((rel.to_string(), text.to_string()));
        self
    }

    /// Run `cloudmount mount` at `mountpoint` with HOME set to `home`; returns its output.
    pub fn run_at(&self, mountpoint: &Path, home: &Path, log: &Path) -> Output {
        use std::os::unix::fs::PermissionsExt;
        for (rel, text) in &self.home_files {
            let p = home.join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(&p, text).expect("write home file");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        let mut c = Command::new(bin());
        c.arg("mount").arg(&self.source).arg(mountpoint);
        for o in &self.options {
            c.arg("-o").arg(o);
        }
        c.arg("-o").arg(format!("log_file={}", log.display()));
        if !self
            .options
            .iter()
            .any(|o| o.split(',').any(|x| x.starts_with("cache=")))
        {
            // Keep every test's block cache inside its own temp dir.
            c.arg("-o")
                .arg(format!("cache={}", home.join("cache").display()));
        }
        if let Some(f) = &self.config {
            c.arg("--config").arg(f);
        }
        c.env("HOME", home)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
        c.env_remove("AWS_PROFILE")
            .env_remove("AZURE_STORAGE_ACCOUNT")
            .env_remove("AZURE_STORAGE_ACCESS_KEY");
        c.env_remove("AZURE_STORAGE_SAS_TOKEN")
            .env_remove("RUST_LOG");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        // The daemon must return once mounted; bound the wait anyway.
        run_bounded(&mut c, Duration::from_secs(120))
    }

    /// Mount in a fresh temp dir; panics with the daemon's stderr and log if it fails.
    pub fn mount(&self) -> Mounted {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mnt");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&path).expect("mkdir mnt");
        std::fs::create_dir_all(&home).expect("mkdir home");
        let log = dir.path().join("cloudmount.log");
        let out = self.run_at(&path, &home, &log);
        let m = Mounted { dir, path, log };
        assert!(
            out.status.success(),
            "mount of {} failed: {}\nlog:\n{}",
            self.source,
            String::from_utf8_lossy(&out.stderr),
            m.log_text()
        );
        assert!(
            is_mounted(&m.path),
            "mount returned 0 but {} is not mounted",
            m.path.display()
        );
        m
    }

    /// Try a mount that must fail; returns (exit code, stderr) and checks nothing stays mounted.
    pub fn mount_err(&self) -> (i32, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("mnt");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&path).expect("mkdir");
        std::fs::create_dir_all(&home).expect("mkdir");
        let out = self.run_at(&path, &home, &dir.path().join("log"));
        let mounted = is_mounted(&path);
        if mounted {
            unmount(&path);
        }
        assert!(!mounted, "a failed mount left {} mounted", path.display());
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Mounted {
    /// A path inside the mount.
    pub fn p(&self, rel: &str) -> PathBuf {
        self.path.join(rel)
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        unmount(&self.path);
    }
}

/// PIDs of cloudmount daemons serving `mountpoint` (found in /proc; we started them).
pub fn daemon_pids(mountpoint: &Path) -> Vec<i32> {
    let want = mountpoint.to_string_lossy().into_owned();
    let mut pids = vec![];
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for e in procs.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmd
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.first().is_some_and(|a| a.ends_with("cloudmount")) && args.contains(&want) {
            pids.push(pid);
        }
    }
    pids
}

/// Unmount `path` (normally, then lazily) and wait, bounded, until it is gone.
pub fn unmount(path: &Path) {
    if !is_mounted(path) {
        return;
    }
    let _ = run_bounded(
        Command::new(bin()).arg("unmount").arg(path),
        Duration::from_secs(20),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while is_mounted(path) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    if is_mounted(path) {
        let _ = Command::new("umount").arg("-l").arg(path).output();
    }
}

/// Run a command with a time limit; kills it (by its PID) on timeout. Its output is read
/// while it runs (a full pipe would otherwise stall it).
pub fn run_bounded(c: &mut Command, limit: Duration) -> Output {
    use std::io::Read;
    c.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(std::process::Stdio::null());
    let mut child = c.spawn().expect("spawn");
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                break;
            }
        }
    }
    let status = child.wait().expect("wait");
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// Run a shell command line (tests only), returning (status ok, stdout, stderr).
pub fn sh(cmd: &str) -> (bool, String, String) {
    let out = run_bounded(
        Command::new("bash").arg("-c").arg(cmd),
        Duration::from_secs(300),
    );
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Deterministic pseudo-random bytes (xorshift), for test objects.
pub fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Whether read passthrough is used here: a daemon running as root on Linux 6.9 or later.
pub fn passthrough_expected() -> bool {
    nix::unistd::geteuid().is_root() && kernel_at_least(6, 9)
}

/// Whether write passthrough is used for a cache in `dir`: root, and where the kernel's writes
/// can be followed (see `cloudmount::write::kernel::supported`).
pub fn write_passthrough_expected(dir: &Path) -> bool {
    nix::unistd::geteuid().is_root() && cloudmount::write::kernel::supported(dir).is_none()
}

fn kernel_at_least(major: u32, minor: u32) -> bool {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (major, minor)
}
