//! cloudmount: mount an object store (S3, Azure Blob, GCS, a local directory) as a FUSE filesystem.
//!
//! Layers, with one direction of dependency (top to bottom):
//! - [`daemon`]: process life (daemonize, logging, signals, the mount loop);
//! - [`fuse`]: the thin `fuser::Filesystem` adapter, one short method per operation;
//! - [`fs`]: the filesystem core (inodes, handles, caches); no `fuser` types;
//! - [`backend`]: the narrow [`backend::Backend`] trait and its implementations.
//!
//! [`config`] and [`credentials`] turn command lines, config files and secrets into values the
//! layers above are built from.

pub mod backend;
pub mod config;
pub mod credentials;
pub mod csi;
pub mod daemon;
pub mod fs;
pub mod fuse;
#[cfg(test)]
mod fuzz;
#[cfg(feature = "fuzzing")]
pub mod fuzz_targets;
pub mod metrics;
pub mod read;
pub mod write;
