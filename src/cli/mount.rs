//! `cloudmount mount SOURCE MOUNTPOINT [-o opts] [--config FILE] [-f]`.

use clap::Args;
use cloudmount::config::{self, MountConfig, Source};
use cloudmount::daemon::{self, MountRequest, Readiness};
use std::path::PathBuf;

/// Arguments of `mount`.
#[derive(Debug, Args)]
#[command(after_help = options_help())]
pub struct MountArgs {
    /// s3://BUCKET[/PREFIX], az://CONTAINER[/PREFIX], gs://BUCKET[/PREFIX] or file:///DIR.
    pub source: String,
    /// An existing, empty directory.
    pub mountpoint: PathBuf,
    /// Mount options, comma separated (see below); may be given several times.
    #[arg(short = 'o', value_name = "OPT[=VAL],...")]
    pub options: Vec<String>,
    /// TOML file with the same option names as keys; -o options win over it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Stay in the foreground and log to stderr.
    #[arg(short = 'f', long)]
    pub foreground: bool,
}

fn options_help() -> String {
    let mut s = String::from("Mount options (-o NAME or -o NAME=VALUE):\n");
    for o in config::options::OPTIONS {
        let name = match o.takes {
            config::options::Takes::Flag => o.name.to_string(),
            config::options::Takes::Value(v) => format!("{}={v}", o.name),
        };
        s.push_str(&format!("  {name:<28} {}\n", o.doc));
    }
    s
}

/// Validate everything that can be checked here, then mount (in the background unless -f).
pub fn run(args: MountArgs) -> Result<(), String> {
    let source = Source::parse(&args.source)?;
    let mut cfg = MountConfig::default();
    if let Some(file) = &args.config {
        config::load_file(&mut cfg, file)?;
    }
    for list in &args.options {
        config::apply_option_list(&mut cfg, list).map_err(|e| e.to_string())?;
    }
    cfg.foreground |= args.foreground;
    // The kernel's name for it (symlinks and `..` resolved), as mountinfo will show it and
    // `cloudmount status` will look it up; a dead mount there cannot be resolved, so then
    // the absolute path as given.
    let mountpoint = std::fs::canonicalize(&args.mountpoint)
        .or_else(|_| std::path::absolute(&args.mountpoint))
        .map_err(|e| format!("bad mountpoint {}: {e}", args.mountpoint.display()))?;
    daemon::check_mountpoint(&mountpoint, cfg.nonempty)?;
    daemon::check_allow_other(&cfg)?;
    // Credentials are resolved once, by the daemon when it builds the backend; their errors
    // reach this terminal through the readiness pipe like every other mount-time error.
    let req = MountRequest {
        source,
        mountpoint,
        config: cfg,
    };
    if req.config.foreground {
        daemon::init_logging(req.config.debug, None, req.config.log_format)?;
        return daemon::run_mount(req, &mut Readiness::foreground());
    }
    let log = req
        .config
        .log_file
        .clone()
        .unwrap_or_else(|| daemon::default_log_file(&req.mountpoint));
    daemon::init_logging(req.config.debug, Some(&log), req.config.log_format)?;
    let mut readiness = daemon::daemonize()?;
    if daemon::run_mount(req, &mut readiness).is_err() {
        // The parent has printed the reason already (it came through the readiness pipe).
        std::process::exit(1);
    }
    Ok(())
}
