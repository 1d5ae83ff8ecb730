//! Log setup: stderr in the foreground, a log file in the background; text or JSON lines
//! (`-o log_format`), journald's priority prefixes under systemd. `RUST_LOG` wins over
//! `-o debug`. Nothing logged ever contains a secret (see [`crate::credentials::Secret`]).

use crate::config::LogFormat;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tracing::Level;
use tracing_subscriber::fmt::format::{FormatEvent, FormatFields, Writer};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{self, FmtContext};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Layer};

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

/// The level filter, swappable at runtime (`cloudmount log-level`).
type Filter = reload::Layer<EnvFilter, tracing_subscriber::Registry>;

/// The subscriber's layers sit on the level filter over the registry.
type Filtered = tracing_subscriber::layer::Layered<Filter, tracing_subscriber::Registry>;

/// The handle that swaps the filter of the subscriber [`init_logging`] installed.
static LEVEL: OnceLock<reload::Handle<EnvFilter, tracing_subscriber::Registry>> = OnceLock::new();

/// The filter directives of a level: ours at `level`, fuser's errors only unless debugging,
/// everything else at warn.
fn directives(level: &str) -> String {
    let fuser = if matches!(level, "debug" | "trace") {
        "info"
    } else {
        "error"
    };
    format!("cloudmount={level},fuser={fuser},warn")
}

/// Change the log level of this process at runtime: `error`, `warn`, `info`, `debug`, `trace`
/// (for cloudmount's own lines), or full `RUST_LOG` directives. Returns the directives now in
/// force.
pub fn set_log_level(spec: &str) -> Result<String, String> {
    let spec = spec.trim();
    let wanted = match spec {
        "error" | "warn" | "info" | "debug" | "trace" => directives(spec),
        "" => return Err("needs a level: error, warn, info, debug or trace".into()),
        other => other.to_string(),
    };
    let filter = EnvFilter::try_new(&wanted).map_err(|e| {
        format!(
            "{spec:?} is neither a level (error, warn, info, debug, trace) nor RUST_LOG \
             directives: {e}"
        )
    })?;
    let handle = LEVEL
        .get()
        .ok_or("this process has no log subscriber to change")?;
    handle
        .reload(filter)
        .map_err(|e| format!("cannot change the log level: {e}"))?;
    tracing::info!(directives = %wanted, "log level changed");
    Ok(wanted)
}

/// Install the global subscriber: to `file` when given, else to stderr, in `format`. On
/// stderr under systemd's journal (`JOURNAL_STREAM` names stderr), text lines carry a priority
/// prefix and no timestamp, which journald adds.
pub fn init_logging(debug: bool, file: Option<&Path>, format: LogFormat) -> Result<(), String> {
    // fuser logs unimplemented operations and benign unmount races at warn; keep its errors only.
    let default = directives(if debug { "debug" } else { "info" });
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let (filter, handle) = reload::Layer::new(filter);
    let writer = match file {
        None => BoxMakeWriter::new(std::io::stderr),
        Some(path) => BoxMakeWriter::new(std::sync::Mutex::new(open_log(path)?)),
    };
    let journal = file.is_none() && under_journald();
    let layer: Box<dyn Layer<Filtered> + Send + Sync> = match (format, journal) {
        (LogFormat::Json, _) => fmt::layer()
            .json()
            .with_target(false)
            .with_writer(writer)
            .boxed(),
        (LogFormat::Text, true) => fmt::layer()
            .with_ansi(false)
            .event_format(Prioritized(fmt::format().without_time().with_target(false)))
            .with_writer(writer)
            .boxed(),
        (LogFormat::Text, false) => fmt::layer()
            .with_target(false)
            .with_ansi(file.is_none())
            .with_writer(writer)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init()
        .map_err(|e| format!("cannot set up logging: {e}"))?;
    let _ = LEVEL.set(handle);
    Ok(())
}

/// The log file at `path`, opened for appending (its directory made if missing).
fn open_log(path: &Path) -> Result<std::fs::File, String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            format!(
                "cannot open log file {}: {e} (choose another with -o log_file=)",
                path.display()
            )
        })
}

/// Whether stderr is systemd's journal stream: `JOURNAL_STREAM` holds its `device:inode`.
fn under_journald() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(m) => dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()),
        Err(_) => false,
    }
}

/// Text lines with the syslog priority journald reads from a `<N>` prefix (sd-daemon(3)).
struct Prioritized<F>(F);

impl<S, N, F> FormatEvent<S, N> for Prioritized<F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn journald_lines_carry_a_priority_and_no_timestamp() {
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::registry().with(
            fmt::layer()
                .with_ansi(false)
                .event_format(Prioritized(fmt::format().without_time().with_target(false)))
                .with_writer(move || out.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(key = "k", "upload failed");
            tracing::info!("mounted");
            tracing::error!("gone");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "<4> WARN upload failed key=\"k\"",
                "<6> INFO mounted",
                "<3>ERROR gone"
            ],
            "{text}"
        );
    }
}
