//! Credentials systemd hands a service (`LoadCredential=NAME:PATH`): files under
//! `$CREDENTIALS_DIRECTORY`, readable only by the service. They stand in for the credential
//! file options the mount does not set.

use crate::config::MountConfig;
use std::path::PathBuf;

/// The credential holding an s3fs passwd file (`passwd_file`).
pub const SYSTEMD_PASSWD: &str = "passwd-s3fs";
/// The credential holding a blobfuse `connection.cfg` (`config_file`).
pub const SYSTEMD_AZURE_CFG: &str = "azure-connection.cfg";
/// The credential holding a GCS service account key (`service_account`).
pub const SYSTEMD_GCS_KEY: &str = "gcs-service-account.json";

/// `$CREDENTIALS_DIRECTORY/NAME`, when systemd passed a credential of that name.
fn credential(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let path = PathBuf::from(dir).join(name);
    path.is_file().then_some(path)
}

/// `cfg` with every unset credential file option taken from systemd's credentials, if any.
pub fn with_systemd_credentials(cfg: &MountConfig) -> MountConfig {
    let mut cfg = cfg.clone();
    for (slot, name) in [
        (&mut cfg.passwd_file, SYSTEMD_PASSWD),
        (&mut cfg.config_file, SYSTEMD_AZURE_CFG),
        (&mut cfg.service_account, SYSTEMD_GCS_KEY),
    ] {
        if slot.is_none() {
            if let Some(p) = credential(name) {
                tracing::info!(credential = name, path = %p.display(), "using a credential systemd passed (LoadCredential=)");
                *slot = Some(p);
            }
        }
    }
    cfg
}
