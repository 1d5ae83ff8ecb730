//! `cloudmount warm PATH... [--jobs N] [--list FILE]`: fetch files, or whole trees, into the
//! block cache of the daemon that serves them, before their readers arrive. The walk happens
//! here (through the mount); each file is fetched by the daemon itself, block by block,
//! without passing through the page cache. A progress bar on a terminal, plain lines
//! otherwise.

use super::control::{mount_of, unreachable, Served};
use clap::Args;
use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use std::collections::VecDeque;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Arguments of `warm`.
#[derive(Debug, Args)]
pub struct WarmArgs {
    /// Files or directories on a cloudmount mount (directories are walked).
    pub paths: Vec<PathBuf>,
    /// Files fetched at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// A file of paths, one per line (a CVAT task's image list); relative ones are taken from
    /// the current directory. `-` reads standard input.
    #[arg(long)]
    pub list: Option<PathBuf>,
}

/// How long one chunk of a file may take to arrive.
const CHUNK_WAIT: Duration = Duration::from_secs(300);

/// Deepest directory walked.
const MAX_DEPTH: usize = 256;

/// Files to warm on one mount.
struct Batch {
    mount: Served,
    /// (path relative to the mount's root, size)
    files: Vec<(String, u64)>,
}

/// Fetch everything named; fail when a set does not fit its cache or a file failed.
pub fn run(args: WarmArgs) -> Result<(), String> {
    if !(1..=64).contains(&args.jobs) {
        return Err(format!("--jobs must be 1 to 64, not {}", args.jobs));
    }
    let mut paths = args.paths.clone();
    if let Some(list) = &args.list {
        paths.extend(read_list(list)?);
    }
    if paths.is_empty() {
        return Err("nothing to warm: name files or directories, or --list FILE".into());
    }
    let batches = collect(&paths)?;
    let mut failed = Vec::new();
    for b in batches {
        check_fits(&b)?;
        failed.extend(warm_batch(&b, args.jobs));
    }
    if failed.is_empty() {
        return Ok(());
    }
    for e in failed.iter().take(20) {
        eprintln!("cloudmount: {e}");
    }
    Err(format!("{} file(s) could not be warmed", failed.len()))
}

/// The paths in `list`, one per line (blank lines skipped).
fn read_list(list: &Path) -> Result<Vec<PathBuf>, String> {
    let text = if list == Path::new("-") {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("cannot read the list from standard input: {e}"))?;
        s
    } else {
        std::fs::read_to_string(list)
            .map_err(|e| format!("cannot read the list {}: {e}", list.display()))?
    };
    Ok(text
        .lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(PathBuf::from)
        .collect())
}

/// Walk `paths` into one batch per mount, each file once.
fn collect(paths: &[PathBuf]) -> Result<Vec<Batch>, String> {
    let mut batches: Vec<Batch> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for p in paths {
        let abs = std::fs::canonicalize(p).map_err(|e| format!("{}: {e}", p.display()))?;
        let mount = mount_of(&abs)?;
        let i = match batches
            .iter()
            .position(|b| b.mount.mountpoint == mount.mountpoint)
        {
            Some(i) => i,
            None => {
                batches.push(Batch {
                    mount,
                    files: Vec::new(),
                });
                batches.len() - 1
            }
        };
        let b = &mut batches[i];
        let mut found = Vec::new();
        walk(&abs, 0, &mut found)?;
        for (path, size) in found {
            let rel = path.strip_prefix(&b.mount.mountpoint).map_err(|_| {
                format!(
                    "{} is not under {}",
                    path.display(),
                    b.mount.mountpoint.display()
                )
            })?;
            let rel = rel
                .to_str()
                .ok_or_else(|| format!("{}: the name is not UTF-8", path.display()))?
                .to_string();
            if seen.insert((b.mount.mountpoint.clone(), rel.clone())) {
                b.files.push((rel, size));
            }
        }
    }
    Ok(batches)
}

/// Regular files at or below `path` (symbolic links and special files are skipped).
fn walk(path: &Path, depth: usize, out: &mut Vec<(PathBuf, u64)>) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.is_file() {
        out.push((path.to_path_buf(), meta.len()));
    } else if meta.is_dir() {
        if depth >= MAX_DEPTH {
            return Err(format!(
                "{}: deeper than {MAX_DEPTH} directories",
                path.display()
            ));
        }
        let entries = std::fs::read_dir(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut names: Vec<PathBuf> = Vec::new();
        for entry in entries {
            names.push(
                entry
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .path(),
            );
        }
        names.sort();
        for n in names {
            walk(&n, depth + 1, out)?;
        }
    }
    Ok(())
}

/// Refuse a batch larger than its mount's cache: warming it would evict its own start.
fn check_fits(b: &Batch) -> Result<(), String> {
    let status = super::control::ask(&b.mount, "status")?;
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("")
            .to_string()
    };
    let mp = b.mount.mountpoint.display();
    if field("cache_dir").is_empty() {
        return Err(format!(
            "{mp} has no block cache to warm (it was mounted with -o cache=off)"
        ));
    }
    let limit: u64 = field("cache_limit").parse().unwrap_or(0);
    let total: u64 = b.files.iter().map(|f| f.1).sum();
    if total > limit {
        return Err(format!(
            "{} file(s) of {} do not fit the cache of {mp}, whose limit is {} \
             (-o cache_size=): warm fewer files, or remount with a larger cache_size",
            b.files.len(),
            HumanBytes(total),
            HumanBytes(limit)
        ));
    }
    Ok(())
}

/// What the workers of one batch share.
struct Progress {
    bytes: AtomicU64,
    files: AtomicU64,
    failed: Mutex<Vec<String>>,
}

/// Warm `b` with `jobs` workers; the errors of the files that failed.
fn warm_batch(b: &Batch, jobs: usize) -> Vec<String> {
    let total: u64 = b.files.iter().map(|f| f.1).sum();
    let count = b.files.len() as u64;
    let queue = Mutex::new(b.files.iter().cloned().collect::<VecDeque<_>>());
    let p = Arc::new(Progress {
        bytes: AtomicU64::new(0),
        files: AtomicU64::new(0),
        failed: Mutex::new(Vec::new()),
    });
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {bytes}/{total_bytes} {msg} {bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let started = Instant::now();
    eprintln!(
        "warming {count} file(s), {}, into the cache of {} ({})",
        HumanBytes(total),
        b.mount.mountpoint.display(),
        b.mount.source
    );
    std::thread::scope(|s| {
        for _ in 0..jobs.min(b.files.len()).max(1) {
            s.spawn(|| worker(&b.mount, &queue, &p));
        }
        let mut last_line = Instant::now();
        while p.files.load(Ordering::Relaxed) + failed_count(&p) < count {
            std::thread::sleep(Duration::from_millis(100));
            let (bytes, files) = (
                p.bytes.load(Ordering::Relaxed),
                p.files.load(Ordering::Relaxed),
            );
            match &bar {
                Some(bar) => {
                    bar.set_position(bytes);
                    bar.set_message(format!("{files}/{count} files"));
                }
                None if last_line.elapsed() >= Duration::from_secs(2) => {
                    last_line = Instant::now();
                    eprintln!("{}", line(bytes, total, files, count, started));
                }
                None => {}
            }
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let (bytes, files) = (
        p.bytes.load(Ordering::Relaxed),
        p.files.load(Ordering::Relaxed),
    );
    eprintln!("{}", line(bytes, total, files, count, started));
    let failed = p.failed.lock().map(|f| f.clone()).unwrap_or_default();
    failed
}

fn failed_count(p: &Progress) -> u64 {
    p.failed.lock().map_or(0, |f| f.len() as u64)
}

/// A plain progress line.
fn line(bytes: u64, total: u64, files: u64, count: u64, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    format!(
        "warmed {files}/{count} files, {} of {}, {}/s",
        HumanBytes(bytes),
        HumanBytes(total),
        HumanBytes((bytes as f64 / secs) as u64)
    )
}

/// Take files off `queue` and have the daemon fetch each.
fn worker(m: &Served, queue: &Mutex<VecDeque<(String, u64)>>, p: &Progress) {
    loop {
        let next = queue.lock().ok().and_then(|mut q| q.pop_front());
        let Some((rel, _)) = next else {
            return;
        };
        match warm_one(m, &rel, p) {
            Ok(()) => {
                p.files.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if let Ok(mut f) = p.failed.lock() {
                    f.push(e);
                }
            }
        }
    }
}

/// Ask the daemon to fetch `rel`, counting its progress lines.
fn warm_one(m: &Served, rel: &str, p: &Progress) -> Result<(), String> {
    let path = serde_json::to_string(rel).map_err(|e| e.to_string())?;
    let conn = cloudmount::daemon::request(&m.socket, &format!("warm {path}"), CHUNK_WAIT)
        .map_err(|e| unreachable(m, &e))?;
    for l in std::io::BufReader::new(conn).lines() {
        let l = l.map_err(|e| format!("{rel}: the daemon stopped answering: {e}"))?;
        if let Some(n) = l.strip_prefix("progress=") {
            p.bytes.fetch_add(n.parse().unwrap_or(0), Ordering::Relaxed);
        } else if l.starts_with("done=") {
            return Ok(());
        } else if let Some(e) = l.strip_prefix("error=") {
            return Err(e.to_string());
        }
    }
    Err(format!(
        "{rel}: the daemon closed the connection before the file was done"
    ))
}
