//! Secrets: where they come from, how they are checked, and a type that never prints them.
//!
//! Sources, per store:
//! - S3 ([`s3::resolve`]): `passwd_file=`, `profile=`, the `AWS_*` environment variables,
//!   `~/.passwd-s3fs`, `/etc/passwd-s3fs`, the `default` profile of `~/.aws/credentials`,
//!   then object_store's instance credential chain.
//! - Azure ([`azure::resolve`]): `config_file=` (blobfuse `connection.cfg`), then
//!   `AZURE_STORAGE_ACCOUNT` + `AZURE_STORAGE_ACCESS_KEY` or `AZURE_STORAGE_SAS_TOKEN`.
//!
//! - Google Drive ([`gdrive::resolve`]): `service_account=`, `token_file=`, or the token
//!   `cloudmount auth gdrive` stored for the source's label.
//!
//! Under systemd, files passed with `LoadCredential=` stand in for unset file options
//! ([`with_systemd_credentials`]).
//!
//! Every file holding a secret is refused when its group or others can read it.

pub mod azure;
mod files;
pub mod gdrive;
pub mod oauth;
pub mod s3;
mod secret;
mod systemd;
mod watch;

pub use files::check_private;
pub use secret::Secret;
pub use systemd::{with_systemd_credentials, SYSTEMD_AZURE_CFG, SYSTEMD_GCS_KEY, SYSTEMD_PASSWD};
pub use watch::CredentialWatch;
