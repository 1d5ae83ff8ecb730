//! Process life of a mount: checks before mounting, daemonizing with a readiness report to the
//! parent, logging, signals, and unmounting on exit.

mod checks;
mod daemonize;
mod logging;
mod notify;
mod run;

pub use checks::{check_allow_other, check_mountpoint, fuse_mount_source};
pub use daemonize::{daemonize, Readiness};
pub use logging::{default_log_file, init_logging};
pub use notify::Notifier;
pub use run::{run_mount, MountRequest};
