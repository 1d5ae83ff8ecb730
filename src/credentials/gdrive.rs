//! Google Drive credentials: which file holds them, and what it says.
//!
//! - `token_file=FILE`, else `~/.config/cloudmount/gdrive/LABEL.json` (what `cloudmount auth
//!   gdrive --label LABEL` writes; `$XDG_CONFIG_HOME` is honoured), holds Google's
//!   `authorized_user` JSON (`client_id`, `client_secret`, `refresh_token`, and `token_uri`
//!   when not Google's), so a gcloud application-default credentials file works too. A file
//!   holding only an `access_token` is used as it is, for tokens minted elsewhere.
//! - `service_account=FILE` is a service account's JSON key (`client_email`, `private_key`,
//!   `token_uri`); `subject=EMAIL` acts as that user through domain-wide delegation.
//!
//! Every such file must be private to its owner (mode 0600 or stricter).

use super::files::{home, read_private};
use super::Secret;
use crate::config::MountConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Google's OAuth token endpoint.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Google's OAuth authorization page.
pub const GOOGLE_AUTH_URI: &str = "https://accounts.google.com/o/oauth2/auth";
/// The scope a mount needs: the whole Drive, read and write.
pub const DRIVE_SCOPE: &str = "https://www.googleapis.com/auth/drive";

/// How the mount gets access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveAuth {
    /// A fixed access token, used as it is until the server refuses it.
    AccessToken(Secret),
    /// An OAuth client's refresh token (`authorized_user`).
    AuthorizedUser {
        /// OAuth client id.
        client_id: String,
        /// OAuth client secret.
        client_secret: Secret,
        /// The refresh token.
        refresh_token: Secret,
        /// Where tokens are refreshed.
        token_uri: String,
    },
    /// A service account key, signing its own JWT assertions.
    ServiceAccount {
        /// The account's e-mail address (the JWT's issuer).
        client_email: String,
        /// The RSA private key, PEM (PKCS#8).
        private_key: Secret,
        /// Where assertions are exchanged for tokens.
        token_uri: String,
        /// The user to act as (domain-wide delegation).
        subject: Option<String>,
    },
}

/// Credentials and where they came from (a file path, for messages).
#[derive(Debug, Clone)]
pub struct DriveCredentials {
    /// The credentials.
    pub auth: DriveAuth,
    /// The file they were read from.
    pub file: PathBuf,
}

#[derive(Deserialize)]
struct FileJson {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    client_email: Option<String>,
    #[serde(default)]
    private_key: Option<String>,
}

/// The directory of stored Drive authorizations (`~/.config/cloudmount/gdrive`; without
/// `$HOME`, as in a system service, the user's home directory from the password database).
pub fn token_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".config")))
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.dir.join(".config"))
        })?;
    Some(base.join("cloudmount").join("gdrive"))
}

/// The token file of authorization `label`.
pub fn token_path(label: &str) -> Option<PathBuf> {
    token_dir().map(|d| d.join(format!("{label}.json")))
}

/// The file a mount of label `label` reads its credentials from with `cfg`.
pub fn credential_file(cfg: &MountConfig, label: &str) -> Option<PathBuf> {
    cfg.service_account
        .clone()
        .or_else(|| cfg.drive.token_file.clone())
        .or_else(|| token_path(label))
}

/// Read the credentials of a mount of label `label`; the error names the file and the fix.
pub fn resolve(cfg: &MountConfig, label: &str) -> Result<DriveCredentials, String> {
    let Some(file) = credential_file(cfg, label) else {
        return Err("no HOME to find the Drive token under; give -o token_file=FILE".to_string());
    };
    if !file.exists() {
        return Err(format!(
            "no Drive authorization for label {label:?}: {} does not exist; run \
             `cloudmount auth gdrive --label {label}` (or give -o token_file= or \
             service_account=)",
            file.display()
        ));
    }
    let text = read_private(&file)?;
    let auth = parse(
        &text,
        cfg.drive.token_uri.as_deref(),
        cfg.drive.subject.clone(),
    )
    .map_err(|e| format!("{}: {e}", file.display()))?;
    Ok(DriveCredentials { auth, file })
}

/// Parse a token or key file; `token_uri` (the option) wins over the file's.
pub fn parse(
    text: &str,
    token_uri: Option<&str>,
    subject: Option<String>,
) -> Result<DriveAuth, String> {
    let j: FileJson = serde_json::from_str(text)
        .map_err(|e| format!("not a Google credentials JSON file ({e})"))?;
    let uri = |file: Option<String>| {
        token_uri
            .map(str::to_string)
            .or(file)
            .unwrap_or_else(|| GOOGLE_TOKEN_URI.to_string())
    };
    let need = |v: Option<String>, what: &str| {
        v.filter(|s| !s.is_empty())
            .ok_or_else(|| format!("the credentials have no {what:?}"))
    };
    match j.kind.as_deref() {
        Some("service_account") => Ok(DriveAuth::ServiceAccount {
            client_email: need(j.client_email, "client_email")?,
            private_key: Secret::new(need(j.private_key, "private_key")?),
            token_uri: uri(j.token_uri),
            subject,
        }),
        Some("authorized_user") | None if j.refresh_token.is_some() => {
            Ok(DriveAuth::AuthorizedUser {
                client_id: need(j.client_id, "client_id")?,
                client_secret: Secret::new(j.client_secret.unwrap_or_default()),
                refresh_token: Secret::new(need(j.refresh_token, "refresh_token")?),
                token_uri: uri(j.token_uri),
            })
        }
        None | Some("authorized_user") => match j.access_token.filter(|t| !t.is_empty()) {
            Some(t) => Ok(DriveAuth::AccessToken(Secret::new(t))),
            None => {
                Err("the credentials hold neither a refresh_token nor an access_token".to_string())
            }
        },
        Some(other) => Err(format!(
            "credentials of type {other:?} are not supported: use an authorized_user token \
             (`cloudmount auth gdrive`) or a service_account key"
        )),
    }
}

/// Write `json` to `path` as a private file (0600, in a 0700 directory), atomically.
pub fn store(path: &Path, json: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let dir = path
        .parent()
        .ok_or_else(|| format!("{} has no directory", path.display()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("token")
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .and_then(|_| f.write_all(json.as_bytes()))
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_of_credentials_file() {
        let u = parse(
            r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}"#,
            None,
            None,
        )
        .unwrap();
        assert!(
            matches!(u, DriveAuth::AuthorizedUser { ref token_uri, .. } if token_uri == GOOGLE_TOKEN_URI)
        );
        let t = parse(r#"{"access_token":"at"}"#, None, None).unwrap();
        assert_eq!(t, DriveAuth::AccessToken(Secret::new("at")));
        let sa = parse(
            r#"{"type":"service_account","client_email":"x@y","private_key":"k","token_uri":"http://f/token"}"#,
            Some("http://o/token"),
            Some("u@d".into()),
        )
        .unwrap();
        assert!(
            matches!(sa, DriveAuth::ServiceAccount { ref token_uri, ref subject, .. } if token_uri == "http://o/token" && subject.as_deref() == Some("u@d"))
        );
        assert!(parse("{}", None, None).unwrap_err().contains("neither"));
        assert!(parse(r#"{"type":"external_account"}"#, None, None)
            .unwrap_err()
            .contains("not supported"));
        assert!(parse("nope", None, None)
            .unwrap_err()
            .contains("not a Google"));
    }

    #[test]
    fn stores_private_files_and_resolve_names_the_fix() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gd").join("default.json");
        store(&path, r#"{"access_token":"x"}"#).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        let mut cfg = MountConfig::default();
        cfg.drive.token_file = Some(path.clone());
        assert!(resolve(&cfg, "default").is_ok());
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(resolve(&cfg, "default").unwrap_err().contains("chmod 600"));
        let mut missing = MountConfig::default();
        missing.drive.token_file = Some(dir.path().join("none.json"));
        let e = resolve(&missing, "work").unwrap_err();
        assert!(e.contains("cloudmount auth gdrive --label work"), "{e}");
    }
}
