//! Build the [`Backend`] a [`Source`] names, with its credentials and client settings.

use super::raw::azure::AzureRaw;
use super::raw::s3::S3Raw;
use super::{Backend, ObjectStoreBackend};
use crate::config::{MountConfig, Source};
use crate::credentials::azure::{self, AzureAuth};
use crate::credentials::s3::{self, S3Credentials};
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;

/// User metadata one S3 object may carry: 2 KiB of names and values (AWS's documented limit).
const S3_META_LIMIT: usize = 2048;
/// Metadata one Azure blob may carry: 8 KiB of names and values.
const AZURE_META_LIMIT: usize = 8192;
/// Custom metadata one GCS object may carry: 8 KiB of names and values.
const GCS_META_LIMIT: usize = 8192;
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

fn client_options(cfg: &MountConfig) -> ClientOptions {
    let http = cfg
        .endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    ClientOptions::new()
        .with_allow_http(http)
        .with_connect_timeout(cfg.connect_timeout)
        .with_timeout(cfg.request_timeout)
        .with_pool_idle_timeout(Duration::from_secs(50))
}

fn retry(cfg: &MountConfig) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: cfg.retries,
        // Bound the total time spent retrying one request, so an outage surfaces as an error.
        retry_timeout: cfg.request_timeout.max(Duration::from_secs(1)) * (cfg.retries as u32 + 1),
    }
}

/// A backend, and which credentials it uses (for messages; never the secret itself).
#[derive(Debug)]
pub struct BuiltBackend {
    /// The backend.
    pub backend: Arc<dyn Backend>,
    /// Where its credentials come from, e.g. `/root/.passwd-s3fs line 2`.
    pub credentials: String,
}

/// Build the backend for `source`. Credential problems are reported here, before mounting,
/// with the file and line at fault.
pub fn build_backend(source: &Source, cfg: &MountConfig) -> Result<BuiltBackend, String> {
    let cfg = &crate::credentials::with_systemd_credentials(cfg);
    let name = source.to_string();
    let (backend, credentials): (Arc<dyn Backend>, String) = match source {
        Source::S3 { bucket, prefix } => {
            let virtual_hosted = cfg.virtual_hosted && !cfg.path_style;
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_client_options(client_options(cfg))
                .with_retry(retry(cfg))
                .with_virtual_hosted_style_request(virtual_hosted)
                .with_unsigned_payload(!cfg.signs_payload())
                // If-Match / If-None-Match on PUT: the journal's replay never overwrites a
                // version newer than the one its content replaces.
                .with_conditional_put(object_store::aws::S3ConditionalPut::ETagMatch);
            let region = cfg
                .region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .unwrap_or_else(|| "us-east-1".to_string());
            b = b.with_region(&region);
            if let Some(e) = &cfg.endpoint {
                b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
            }
            let credentials = match s3::resolve(cfg, bucket)? {
                S3Credentials::Static {
                    access_key,
                    secret_key,
                    session_token,
                    origin,
                } => {
                    tracing::info!(%origin, %access_key, "S3 credentials");
                    b = b
                        .with_access_key_id(access_key)
                        .with_secret_access_key(secret_key.expose());
                    if let Some(t) = session_token {
                        b = b.with_token(t.expose());
                    }
                    origin
                }
                S3Credentials::InstanceChain => {
                    tracing::info!("S3 credentials from the instance credential chain");
                    "none configured (no -o passwd_file= or profile=, no AWS_ACCESS_KEY_ID and \
                     AWS_SECRET_ACCESS_KEY, no ~/.passwd-s3fs, /etc/passwd-s3fs or \
                     ~/.aws/credentials), so the instance credential service was asked"
                        .to_string()
                }
            };
            let store = Arc::new(
                b.build()
                    .map_err(|e| format!("S3 client for {name}: {e}"))?,
            );
            let bucket_url = match (&cfg.endpoint, virtual_hosted) {
                (Some(e), true) => e.trim_end_matches('/').to_string(),
                (Some(e), false) => format!("{}/{bucket}", e.trim_end_matches('/')),
                (None, true) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
                (None, false) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
            };
            let copier = S3Raw::new(
                store.clone(),
                &client_options(cfg),
                bucket_url,
                bucket,
                &region,
            )?
            .signing_payloads(cfg.signs_payload())
            .retrying(cfg.retries)
            .literal_requests(cfg.request_timeout, cfg.connect_timeout);
            (
                Arc::new(
                    ObjectStoreBackend::new(store.clone(), Some(store), prefix, name)
                        .with_raw(copier)
                        .with_mime(cfg.mime.as_deref().map(super::mime::MimeTypes::load))
                        .with_meta_limit(S3_META_LIMIT),
                ),
                credentials,
            )
        }
        Source::Azure { container, prefix } => {
            let creds = azure::resolve(cfg)?;
            if let Some(c) = creds.container.as_deref().filter(|c| c != container) {
                tracing::warn!(config_container = c, url_container = %container, "the container of the URL wins over containerName of the config file");
            }
            let mut b = MicrosoftAzureBuilder::new()
                .with_account(&creds.account)
                .with_container_name(container)
                .with_client_options(client_options(cfg))
                .with_retry(retry(cfg));
            if let Some(e) = cfg.endpoint.clone().or(creds.endpoint.clone()) {
                b = b.with_allow_http(e.starts_with("http://")).with_endpoint(e);
            }
            b = match &creds.auth {
                AzureAuth::Key(k) => b.with_access_key(k.expose()),
                AzureAuth::Sas(s) => {
                    let pairs = object_store::azure::split_sas(s.expose().trim_start_matches('?'))
                        .map_err(|_| {
                            "the Azure SAS token is not a valid query string".to_string()
                        })?;
                    b.with_sas_authorization(pairs)
                }
                AzureAuth::Chain => b,
            };
            tracing::info!(account = %creds.account, auth = auth_kind(&creds.auth), "Azure credentials");
            let from = match &cfg.config_file {
                Some(f) => format!("from {}", f.display()),
                None => "from the AZURE_STORAGE_* variables".to_string(),
            };
            let credentials = match creds.auth {
                AzureAuth::Chain => format!(
                    "account {}, no key or SAS token {from} (AZURE_STORAGE_ACCESS_KEY, \
                     AZURE_STORAGE_SAS_TOKEN or accountKey/sasToken), so the Azure credential \
                     chain was asked",
                    creds.account
                ),
                ref auth => format!("account {}, {} {from}", creds.account, auth_kind(auth)),
            };
            let store = Arc::new(
                b.build()
                    .map_err(|e| format!("Azure client for {name}: {e}"))?,
            );
            let container_url = match cfg.endpoint.clone().or(creds.endpoint.clone()) {
                Some(e) => format!("{}/{container}", e.trim_end_matches('/')),
                None => format!(
                    "https://{}.blob.core.windows.net/{container}",
                    creds.account
                ),
            };
            // The endpoint may come from a blobfuse connection.cfg rather than -o endpoint=.
            let http = container_url.starts_with("http://");
            let copier = AzureRaw::new(
                store.clone(),
                &client_options(cfg).with_allow_http(http),
                &container_url,
                &creds.account,
            )?
            .retrying(cfg.retries);
            (
                Arc::new(
                    ObjectStoreBackend::new(store.clone(), Some(store), prefix, name)
                        .with_raw(copier)
                        .with_mime(cfg.mime.as_deref().map(super::mime::MimeTypes::load))
                        .with_meta_limit(AZURE_META_LIMIT),
                ),
                credentials,
            )
        }
        Source::Gcs { bucket, prefix } => {
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_client_options(client_options(cfg))
                .with_retry(retry(cfg));
            let credentials = match &cfg.service_account {
                Some(f) => {
                    crate::credentials::check_private(f)?;
                    b = b.with_service_account_path(f.to_string_lossy());
                    format!("service account {}", f.display())
                }
                None => {
                    "GOOGLE_APPLICATION_CREDENTIALS or the instance credential service".to_string()
                }
            };
            if let Some(e) = &cfg.endpoint {
                b = b.with_base_url(e);
            }
            let store = Arc::new(
                b.build()
                    .map_err(|e| format!("GCS client for {name}: {e}"))?,
            );
            (
                Arc::new(
                    ObjectStoreBackend::new(store.clone(), Some(store), prefix, name)
                        .with_mime(cfg.mime.as_deref().map(super::mime::MimeTypes::load))
                        .with_meta_limit(GCS_META_LIMIT),
                ),
                credentials,
            )
        }
        Source::Gdrive { label, path } => {
            let creds = crate::credentials::gdrive::resolve(cfg, label)?;
            let settings = drive_settings(cfg, label, path);
            let credentials = format!("{}", creds.file.display());
            tracing::info!(label = %label, file = %credentials, "Google Drive credentials");
            let backend =
                super::gdrive::DriveBackend::new(settings, creds.auth, cfg.connect_timeout)?;
            (Arc::new(backend), credentials)
        }
        Source::Local { dir } => {
            if !dir.is_dir() {
                return Err(format!(
                    "source directory {} does not exist or is not a directory",
                    dir.display()
                ));
            }
            let store = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
                format!("cannot use {} as the source directory: {e}", dir.display())
            })?;
            let backend = Arc::new(ObjectStoreBackend::local(
                Arc::new(store),
                dir.clone(),
                name,
            ));
            (backend, "none needed".to_string())
        }
    };
    Ok(BuiltBackend {
        backend,
        credentials,
    })
}

/// The Drive backend's settings from the mount options.
fn drive_settings(cfg: &MountConfig, label: &str, path: &str) -> super::gdrive::DriveSettings {
    use crate::config::drive::GDocs;
    let d = &cfg.drive;
    super::gdrive::DriveSettings {
        endpoint: cfg
            .endpoint
            .clone()
            .unwrap_or_else(|| super::gdrive::GOOGLE_API.to_string()),
        label: label.to_string(),
        path: path.to_string(),
        root_folder: d.root_folder.clone(),
        drive_id: d.drive_id.clone(),
        exports: (d.gdocs == GDocs::Export).then(|| super::gdrive::Exports {
            document: d.export_document.clone(),
            spreadsheet: d.export_spreadsheet.clone(),
            presentation: d.export_presentation.clone(),
            drawing: d.export_drawing.clone(),
        }),
        show_trash: d.show_trash,
        // Beside the staging area, per authorization.
        session_dir: cfg
            .cache_root()
            .map(|c| c.join("gdrive-uploads").join(label)),
        delete: if d.delete_permanently {
            super::gdrive::DeleteMode::Permanent
        } else {
            super::gdrive::DeleteMode::Trash
        },
        chunk_size: cfg.upload_part_size,
        poll_interval: Some(d.poll_interval).filter(|p| !p.is_zero()),
        // With a changes feed, a listing is right until the feed says otherwise (and at
        // most one interval old); without one, it lives as long as attributes do.
        listing_ttl: if d.poll_interval.is_zero() {
            cfg.attr_timeout
        } else {
            d.poll_interval.max(cfg.attr_timeout)
        }
        .max(Duration::from_secs(1)),
        limits: super::gdrive::limits(cfg.request_timeout, cfg.retries, d.rate, d.burst),
    }
}

fn auth_kind(a: &AzureAuth) -> &'static str {
    match a {
        AzureAuth::Key(_) => "shared key",
        AzureAuth::Sas(_) => "SAS token",
        AzureAuth::Chain => "credential chain",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn gcs_service_account_file_is_checked_and_the_bucket_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.json");
        std::fs::write(&key, "{}").unwrap();
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let src = Source::parse("gs://bucket/pre").unwrap();
        let cfg = MountConfig {
            service_account: Some(key.clone()),
            ..Default::default()
        };
        let err = build_backend(&src, &cfg).unwrap_err();
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
        let err = build_backend(&src, &cfg).unwrap_err();
        assert!(err.starts_with("GCS client for gs://bucket/pre"), "{err}");
        let missing = MountConfig {
            service_account: Some(dir.path().join("nope.json")),
            ..Default::default()
        };
        assert!(build_backend(&src, &missing)
            .unwrap_err()
            .contains("nope.json"));
    }

    #[test]
    fn local_source_must_exist() {
        let err = build_backend(
            &Source::parse("file:///no/such/dir").unwrap(),
            &MountConfig::default(),
        )
        .unwrap_err();
        assert!(
            err.contains("/no/such/dir") && err.contains("does not exist"),
            "{err}"
        );
    }
}
