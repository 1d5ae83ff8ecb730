//! Command-line interface: one file per subcommand.

pub mod auth;
pub mod control;
pub mod csi;
pub mod fstab;
pub mod generator;
pub mod helper;
pub mod log_level;
pub mod mount;
pub mod stats;
pub mod status;
pub mod systemd_unit;
pub mod units;
pub mod unmount;
pub mod warm;

use clap::{Parser, Subcommand};

/// Mount S3, Azure Blob, Google Drive, GCS or a local directory as a FUSE filesystem.
#[derive(Debug, Parser)]
#[command(name = "cloudmount", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Mount SOURCE (s3://BUCKET[/PREFIX], az://CONTAINER[/PREFIX], gdrive://[LABEL]/[PATH],
    /// gs://BUCKET[/PREFIX], file:///DIR) at MOUNTPOINT.
    Mount(mount::MountArgs),
    /// Authorize an account once (Google Drive: `cloudmount auth gdrive --label L`).
    Auth(auth::AuthArgs),
    /// Unmount a cloudmount mount.
    Unmount(unmount::UnmountArgs),
    /// Print the fstab line for SOURCE on MOUNTPOINT, or check an fstab (--check [FILE]).
    Fstab(fstab::FstabArgs),
    /// Print (or --install) the systemd units of SOURCE on MOUNTPOINT: a Type=notify service,
    /// or a .mount unit (--mount-unit), plus an .automount (--automount).
    SystemdUnit(systemd_unit::SystemdUnitArgs),
    /// The systemd generator: write units for /etc/cloudmount/mounts.toml and mounts.d/*.toml
    /// into the directories systemd passes (installed as cloudmount-generator).
    SystemdGenerator(generator::GeneratorArgs),
    /// List the cloudmount mounts with source, pid, cache use, pending uploads and errors.
    Status(status::StatusArgs),
    /// What a mount's daemon counted (requests, bytes, cache, uploads, latencies, errors),
    /// with rates; --json for the raw numbers, --watch to repeat.
    Stats(stats::StatsArgs),
    /// Fetch files or whole trees into the block cache of the daemon that serves them, with
    /// a progress bar (--list FILE: paths one per line, such as a CVAT task's image list).
    Warm(warm::WarmArgs),
    /// Change a running daemon's log level (error, warn, info, debug, trace).
    LogLevel(log_level::LogLevelArgs),
    /// The Kubernetes CSI node plugin (in the driver's pod; docs/kubernetes.md).
    Csi(csi::CsiArgs),
    /// The CSI driver's host service: runs the FUSE daemons the plugin asks for, outside its
    /// pod, so that they outlive it.
    CsiMounter(csi::MounterArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `cloudmount man | man -l -`.
    Man,
}

/// Print the completions for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<(), String> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut cmd, "cloudmount", &mut std::io::stdout());
    Ok(())
}

/// Print the man page, with the mount options of docs/options.md as a section.
pub fn man() -> Result<(), String> {
    let cmd = <Cli as clap::CommandFactory>::command();
    let page = clap_mangen::Man::new(cmd);
    let mut out = Vec::new();
    page.render(&mut out)
        .map_err(|e| format!("cannot render the man page: {e}"))?;
    out.extend_from_slice(b".SH \"MOUNT OPTIONS\"\n");
    for o in cloudmount::config::options::OPTIONS {
        let name = match o.takes {
            cloudmount::config::options::Takes::Flag => o.name.to_string(),
            cloudmount::config::options::Takes::Value(v) => format!("{}={v}", o.name),
        };
        let doc = o.doc.replace('\\', "\\\\").replace("\n.", "\n\\&.");
        out.extend_from_slice(format!(".TP\n\\fB{name}\\fR\n{doc}\n").as_bytes());
    }
    out.extend_from_slice(
        b".SH FILES\n.TP\n/etc/cloudmount/mounts.toml, /etc/cloudmount/mounts.d/*.toml\n\
          Mounts the systemd generator turns into units at boot.\n\
          .TP\n/run/cloudmount/*.sock\nControl sockets `cloudmount status` reads.\n\
          .SH \"SEE ALSO\"\nmount(8), fstab(5), systemd.mount(5), systemd.generator(7)\n",
    );
    use std::io::Write;
    std::io::stdout()
        .write_all(&out)
        .map_err(|e| format!("cannot write the man page: {e}"))
}
