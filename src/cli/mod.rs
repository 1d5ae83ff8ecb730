//! Command-line interface: one file per subcommand.

pub mod fstab;
pub mod helper;
pub mod mount;
pub mod unmount;

use clap::{Parser, Subcommand};

/// Mount S3, Azure Blob, GCS or a local directory as a FUSE filesystem.
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
    /// Mount SOURCE (s3://BUCKET[/PREFIX], az://CONTAINER[/PREFIX], gs://BUCKET[/PREFIX],
    /// file:///DIR) at MOUNTPOINT.
    Mount(mount::MountArgs),
    /// Unmount a cloudmount mount.
    Unmount(unmount::UnmountArgs),
    /// Print the fstab line for SOURCE on MOUNTPOINT, or check an fstab (--check [FILE]).
    Fstab(fstab::FstabArgs),
}
