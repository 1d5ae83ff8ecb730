//! The fake Google Drive v3 server of the tests (tests/drive_fake/), as a standalone process
//! for benchmarks and manual runs. Never use it for anything but local testing: it keeps
//! everything in memory and checks tokens only loosely.
//!
//! `cargo run --release --example fake_drive_server -- PORT [--token-ttl SECS]
//!  [--static-token TOKEN] [--ttfb-ms N] [--seed DIR]`
//!
//! `--seed DIR` uploads a local directory tree into My Drive's root at startup (folders as
//! folders, files with their content and modification time). Prints `fake drive listening on http://127.0.0.1:PORT`
//! once it accepts connections, then serves until killed.

#[path = "../tests/drive_fake/mod.rs"]
mod drive_fake;

use drive_fake::{FakeDrive, Options};
use std::io::Write;
use std::path::Path;
use std::time::Duration;

fn usage() -> ! {
    eprintln!(
        "usage: fake_drive_server PORT [--token-ttl SECS] [--static-token TOKEN] [--ttfb-ms N] [--seed DIR]"
    );
    std::process::exit(2);
}

/// Uploads `dir`'s entries under the folder `parent`; returns (folders, files, bytes).
fn seed(drive: &FakeDrive, dir: &Path, parent: &str) -> std::io::Result<(usize, usize, u64)> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    let (mut folders, mut files, mut bytes) = (0, 0, 0);
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let kind = e.file_type()?;
        if kind.is_dir() {
            let id = drive.create_folder(parent, &name);
            let (d, f, b) = seed(drive, &e.path(), &id)?;
            folders += d + 1;
            files += f;
            bytes += b;
        } else if kind.is_file() {
            let content = std::fs::read(e.path())?;
            bytes += content.len() as u64;
            let id = drive.create_file(parent, &name, &content);
            // Keep the local modification time, as an upload by a sync tool would.
            if let Ok(mtime) = e.metadata().and_then(|m| m.modified()) {
                drive.set_modified_time(&id, mtime);
            }
            files += 1;
        }
    }
    Ok((folders, files, bytes))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(port) = args.first().and_then(|p| p.parse::<u16>().ok()) else {
        usage();
    };
    let mut opts = Options {
        port,
        ..Options::default()
    };
    let mut seed_dir = None;
    let mut i = 1;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_else(|| usage());
        match args[i].as_str() {
            "--token-ttl" => {
                opts.token_ttl = Duration::from_secs(value.parse().unwrap_or_else(|_| usage()))
            }
            "--static-token" => opts.static_token = Some(value),
            "--ttfb-ms" => {
                opts.ttfb = Duration::from_millis(value.parse().unwrap_or_else(|_| usage()))
            }
            "--seed" => seed_dir = Some(value),
            _ => usage(),
        }
        i += 2;
    }
    let drive = FakeDrive::start(opts);
    if let Some(dir) = seed_dir {
        match seed(&drive, Path::new(&dir), "root") {
            Ok((d, f, b)) => {
                eprintln!("fake drive: seeded {d} folders, {f} files, {b} bytes from {dir}")
            }
            Err(e) => {
                eprintln!("fake drive: seeding from {dir}: {e}");
                std::process::exit(1);
            }
        }
    }
    println!("fake drive listening on {}", drive.url());
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}
