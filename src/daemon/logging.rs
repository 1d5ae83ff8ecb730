//! Log setup: stderr in the foreground, a log file in the background. `RUST_LOG` wins over
//! `-o debug`. Nothing logged ever contains a secret (see [`crate::credentials::Secret`]).

use std::path::{Path, PathBuf};
use tracing_subscriber::EnvFilter;

/// Default log file for a background mount at `mountpoint`.
pub fn default_log_file(mountpoint: &Path) -> PathBuf {
    let dir = crate::config::user_dir("/var/log", "XDG_STATE_HOME", ".local/state");
    let name: String = mountpoint
        .to_string_lossy()
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!(
        "{}.log",
        if name.is_empty() {
            "root".to_string()
        } else {
            name
        }
    ))
}

/// Install the global subscriber: to `file` when given, else to stderr.
pub fn init_logging(debug: bool, file: Option<&Path>) -> Result<(), String> {
    // fuser logs unimplemented operations and benign unmount races at warn; keep its errors only.
    let default = if debug {
        "cloudmount=debug,fuser=info,info"
    } else {
        "cloudmount=info,fuser=error,warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match file {
        None => builder.with_writer(std::io::stderr).try_init(),
        Some(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| {
                    format!(
                        "cannot open log file {}: {e} (choose another with -o log_file=)",
                        path.display()
                    )
                })?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(f))
                .try_init()
        }
    }
    .map_err(|e| format!("cannot set up logging: {e}"))
}
