//! What the adapter asks of the kernel when the session starts (`init`).

use super::Passthrough;
use fuser::{InitFlags, KernelConfig};

/// Largest read the kernel sends at once (and its read-ahead), in bytes.
const MAX_READAHEAD: u32 = 1 << 20;

/// Ask for the capabilities the adapter uses, logging the ones the kernel lacks: `acl`, the
/// kernel's ACL checks (`-o acl`); `passthrough` is turned off when the kernel cannot do it.
pub(super) fn negotiate(config: &mut KernelConfig, acl: bool, passthrough: &Passthrough) {
    // Always readdirplus: one LIST answers `ls -l` with no lookup per entry.
    if let Err(missing) = config.add_capabilities(InitFlags::FUSE_DO_READDIRPLUS) {
        tracing::info!(?missing, "kernel lacks readdirplus; plain readdir is used");
    }
    // A link whose target changes gets a new inode (see InodeTable::upsert), so the kernel
    // may keep the targets it read.
    let _ = config.add_capabilities(InitFlags::FUSE_CACHE_SYMLINKS);
    // O_TRUNC arrives with the open (one upload), not as a separate truncate first.
    if let Err(missing) = config.add_capabilities(InitFlags::FUSE_ATOMIC_O_TRUNC) {
        tracing::info!(
            ?missing,
            "kernel lacks atomic O_TRUNC; truncation comes as setattr"
        );
    }
    if acl {
        // The kernel reads, caches and enforces ACLs (with default_permissions, which
        // -o acl turns on).
        if let Err(missing) = config.add_capabilities(InitFlags::FUSE_POSIX_ACL) {
            tracing::warn!(?missing, "kernel lacks FUSE POSIX ACL support; -o acl stores ACLs but the kernel does not enforce them");
        }
    }
    let _ = config.set_max_readahead(MAX_READAHEAD);
    if passthrough.enabled() {
        // Depth 1: our backing files live on a plain filesystem.
        let ok = config.add_capabilities(InitFlags::FUSE_PASSTHROUGH).is_ok()
            && config.set_max_stack_depth(1).is_ok();
        if !ok {
            tracing::info!("kernel lacks FUSE passthrough (Linux 6.9 or later); fully cached files are served by the daemon");
            passthrough.disable();
        }
    }
}
