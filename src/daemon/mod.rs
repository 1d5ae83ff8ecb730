//! Process life of a mount: checks before mounting, daemonizing with a readiness report to the
//! parent, logging, signals, and unmounting on exit.

mod changes;
mod checks;
mod cleanup;
mod control;
mod daemonize;
mod dir_times;
mod events;
mod logging;
mod metrics_http;
mod names;
mod notify;
mod offline;
mod reload;
mod requests;
mod run;

pub use checks::{
    check_allow_other, check_mountpoint, cloudmount_mounts, fuse_mount_source, unmount_path,
};
pub use control::{query, query_status, request, wait_until_closed};
pub use daemonize::{daemonize, Readiness};
pub use logging::{default_log_file, init_logging, set_log_level};
pub use names::{control_socket, escape_path, runtime_dir};
pub use notify::Notifier;
pub use run::{run_mount, MountRequest};
