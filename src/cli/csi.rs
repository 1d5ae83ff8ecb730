//! `cloudmount csi` (the Kubernetes CSI node plugin, in the driver's pod) and `cloudmount
//! csi-mounter` (its host-side service, which runs the FUSE daemons): docs/kubernetes.md.

use clap::Args;
use cloudmount::csi::{self, host::MounterConfig, Plugin};
use std::path::PathBuf;

/// Arguments of `csi`.
#[derive(Debug, Args)]
pub struct CsiArgs {
    /// Where kubelet reaches the plugin: unix:///PATH.
    #[arg(long, default_value = "unix:///csi/csi.sock")]
    pub endpoint: String,
    /// The mounter's socket (cloudmount csi-mounter on the node's host).
    #[arg(long, default_value = "/run/cloudmount-csi/mounter.sock")]
    pub mounter: PathBuf,
    /// This node's ID for NodeGetInfo (default: $NODE_NAME, else the host name).
    #[arg(long)]
    pub node_id: Option<String>,
    /// Debug logging.
    #[arg(long)]
    pub debug: bool,
}

/// Arguments of `csi-mounter`.
#[derive(Debug, Args)]
pub struct MounterArgs {
    /// The socket the plugin asks on (made 0600 in a 0700 directory).
    #[arg(long, default_value = "/run/cloudmount-csi/mounter.sock")]
    pub socket: PathBuf,
    /// Mount only at targets under this directory.
    #[arg(long, default_value = "/var/lib/kubelet")]
    pub targets_under: PathBuf,
    /// Where the mounts' caches and logs go.
    #[arg(long, default_value = "/var/lib/cloudmount-csi")]
    pub state_dir: PathBuf,
    /// Debug logging.
    #[arg(long)]
    pub debug: bool,
}

/// Serve the node plugin.
pub fn run(args: CsiArgs) -> Result<(), String> {
    cloudmount::daemon::init_logging(args.debug, None, Default::default())?;
    let node_id = match args.node_id.or_else(|| std::env::var("NODE_NAME").ok()) {
        Some(n) if !n.is_empty() => n,
        _ => std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map_err(|e| format!("no --node-id, and the host name is unreadable: {e}"))?
            .trim()
            .to_string(),
    };
    csi::run_plugin(
        &args.endpoint,
        Plugin {
            mounter: args.mounter,
            node_id,
        },
    )
}

/// Serve the mounter.
pub fn run_mounter(args: MounterArgs) -> Result<(), String> {
    cloudmount::daemon::init_logging(args.debug, None, Default::default())?;
    if !nix::unistd::geteuid().is_root() {
        return Err("csi-mounter must run as root (it mounts for kubelet)".into());
    }
    csi::host::serve(&MounterConfig {
        socket: args.socket,
        targets_under: args.targets_under,
        state_dir: args.state_dir,
        ..Default::default()
    })
}
