//! S3 credentials: s3fs passwd files, `~/.aws/credentials` profiles, `AWS_*` variables.

use super::files::{home, read_private};
use super::Secret;
use crate::config::MountConfig;
use std::path::{Path, PathBuf};

/// Credentials for an S3 client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum S3Credentials {
    /// A fixed key pair.
    Static {
        /// Access key id (not secret; may be logged).
        access_key: String,
        /// Secret access key.
        secret_key: Secret,
        /// Session token, for temporary credentials.
        session_token: Option<Secret>,
        /// Where the pair came from, for logs (`/root/.passwd-s3fs line 2`).
        origin: String,
    },
    /// object_store's own chain: web identity, ECS/EKS, EC2 instance metadata.
    InstanceChain,
}

/// Pick the credentials for `bucket` in s3fs's order (see the module docs of
/// [`crate::credentials`]). Errors name the file and line and say how to fix it.
pub fn resolve(cfg: &MountConfig, bucket: &str) -> Result<S3Credentials, String> {
    if let Some(f) = &cfg.passwd_file {
        return from_passwd_file(f, bucket)?.ok_or_else(|| {
            format!("{}: no line for bucket {bucket:?} and no default ACCESS_KEY_ID:SECRET_ACCESS_KEY line", f.display())
        });
    }
    if let Some(p) = &cfg.profile {
        return from_profile(p, true).and_then(|c| {
            c.ok_or_else(|| {
                format!(
                    "profile {p:?} not found in {}",
                    aws_credentials_path().display()
                )
            })
        });
    }
    if let (Ok(ak), Ok(sk)) = (
        std::env::var("AWS_ACCESS_KEY_ID"),
        std::env::var("AWS_SECRET_ACCESS_KEY"),
    ) {
        if !ak.is_empty() && !sk.is_empty() {
            return Ok(S3Credentials::Static {
                access_key: ak,
                secret_key: Secret::new(sk),
                session_token: std::env::var("AWS_SESSION_TOKEN")
                    .ok()
                    .filter(|t| !t.is_empty())
                    .map(Secret::new),
                origin: "the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment variables"
                    .to_string(),
            });
        }
    }
    for f in default_passwd_files() {
        if f.exists() {
            if let Some(c) = from_passwd_file(&f, bucket)? {
                return Ok(c);
            }
        }
    }
    let profile = std::env::var("AWS_PROFILE").ok().filter(|p| !p.is_empty());
    let explicit = profile.is_some();
    if let Some(c) = from_profile(profile.as_deref().unwrap_or("default"), explicit)? {
        return Ok(c);
    }
    Ok(S3Credentials::InstanceChain)
}

/// Parse an s3fs passwd file: the line for `bucket`, else the default line.
pub fn from_passwd_file(path: &Path, bucket: &str) -> Result<Option<S3Credentials>, String> {
    let text = read_private(path)?;
    parse_passwd(&text, bucket)
        .map_err(|(line, msg)| format!("{}:{line}: {msg}", path.display()))
        .map(|found| {
            found.map(|(line, ak, sk)| S3Credentials::Static {
                access_key: ak,
                secret_key: Secret::new(sk),
                session_token: None,
                origin: format!("{} line {line}", path.display()),
            })
        })
}

/// Line number, access key and secret key of one passwd line.
type PasswdLine = (usize, String, String);

/// `(line, access key, secret key)` for `bucket`; errors are `(line, message)` and never
/// contain the line's text, which holds a secret.
pub(crate) fn parse_passwd(
    text: &str,
    bucket: &str,
) -> Result<Option<PasswdLine>, (usize, String)> {
    let mut default = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(':').collect();
        match fields.as_slice() {
            [ak, sk] if !ak.is_empty() && !sk.is_empty() => {
                if default.is_none() {
                    default = Some((i + 1, ak.to_string(), sk.to_string()));
                }
            }
            [b, ak, sk] if !b.is_empty() && !ak.is_empty() && !sk.is_empty() => {
                if *b == bucket {
                    return Ok(Some((i + 1, ak.to_string(), sk.to_string())));
                }
            }
            _ => {
                return Err((
                    i + 1,
                    "expected ACCESS_KEY_ID:SECRET_ACCESS_KEY or BUCKET:ACCESS_KEY_ID:SECRET_ACCESS_KEY \
                     (the line's content is not shown because it holds a secret)"
                        .to_string(),
                ))
            }
        }
    }
    Ok(default)
}

/// `~/.passwd-s3fs`, then `/etc/passwd-s3fs`.
fn default_passwd_files() -> impl Iterator<Item = PathBuf> {
    home()
        .map(|h| h.join(".passwd-s3fs"))
        .into_iter()
        .chain([PathBuf::from("/etc/passwd-s3fs")])
}

/// The files [`resolve`] may read with `cfg`, in its order (whether they exist or not).
pub fn files(cfg: &MountConfig) -> Vec<PathBuf> {
    if let Some(f) = &cfg.passwd_file {
        return vec![f.clone()];
    }
    if cfg.profile.is_some() {
        return vec![aws_credentials_path()];
    }
    default_passwd_files()
        .chain([aws_credentials_path()])
        .collect()
}

fn aws_credentials_path() -> PathBuf {
    std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".aws/credentials")))
        .unwrap_or_else(|| PathBuf::from("/root/.aws/credentials"))
}

/// Credentials of `profile` in the shared credentials file. A missing file is an error only
/// when the profile was asked for explicitly.
fn from_profile(profile: &str, explicit: bool) -> Result<Option<S3Credentials>, String> {
    let path = aws_credentials_path();
    if !path.exists() {
        return if explicit {
            Err(format!(
                "profile {profile:?} asked for, but {} does not exist",
                path.display()
            ))
        } else {
            Ok(None)
        };
    }
    let text = read_private(&path)?;
    parse_profile(&text, profile)
        .map_err(|(line, msg)| format!("{}:{line}: {msg}", path.display()))
        .map(|found| {
            found.map(|(ak, sk, token)| S3Credentials::Static {
                access_key: ak,
                secret_key: Secret::new(sk),
                session_token: token.map(Secret::new),
                origin: format!("profile {profile:?} of {}", path.display()),
            })
        })
}

type ProfileKeys = (String, String, Option<String>);

pub(crate) fn parse_profile(
    text: &str,
    profile: &str,
) -> Result<Option<ProfileKeys>, (usize, String)> {
    let mut in_profile = false;
    let (mut ak, mut sk, mut token) = (None, None, None);
    let mut section_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[') {
            let Some(name) = name.strip_suffix(']') else {
                return Err((i + 1, "section header lacks its closing ']'".to_string()));
            };
            in_profile = name.trim() == profile;
            if in_profile {
                section_line = i + 1;
            }
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err((i + 1, "expected key = value".to_string()));
        };
        if in_profile {
            match k.trim() {
                "aws_access_key_id" => ak = Some(v.trim().to_string()),
                "aws_secret_access_key" => sk = Some(v.trim().to_string()),
                "aws_session_token" => token = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    match (ak, sk) {
        (Some(a), Some(s)) => Ok(Some((a, s, token))),
        (None, None) => Ok(None),
        _ => Err((
            section_line,
            format!("profile {profile:?} needs both aws_access_key_id and aws_secret_access_key"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_prefers_the_bucket_line() {
        let t = "# c\nAK1:SK1\nmybucket:AK2:SK2\n";
        assert_eq!(
            parse_passwd(t, "mybucket").unwrap(),
            Some((3, "AK2".into(), "SK2".into()))
        );
        assert_eq!(
            parse_passwd(t, "other").unwrap(),
            Some((2, "AK1".into(), "SK1".into()))
        );
        assert_eq!(parse_passwd("b:AK:SK\n", "x").unwrap(), None);
    }

    #[test]
    fn passwd_errors_name_the_line_but_not_the_secret() {
        let (line, msg) = parse_passwd("AK:SK\nnot-a-valid-line-hunter2\n", "b").unwrap_err();
        assert_eq!(line, 2);
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[test]
    fn profiles_parse() {
        let t = "[default]\naws_access_key_id = A\naws_secret_access_key = S\n[p2]\naws_access_key_id=B\n";
        assert_eq!(
            parse_profile(t, "default").unwrap(),
            Some(("A".into(), "S".into(), None))
        );
        assert_eq!(parse_profile(t, "nope").unwrap(), None);
        assert_eq!(parse_profile(t, "p2").unwrap_err().0, 4);
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Fuzz targets: the s3fs passwd file and the AWS credentials file.
        #[test]
        fn fuzz_passwd_files(
            text in crate::fuzz::text(&["# c\nAK1:SK1\nmybucket:AK2:SK2\n", "b:k:s:t\n\n:x:\n"]),
            bucket in crate::fuzz::text(&["mybucket", "b"]),
        ) {
            let _ = parse_passwd(&text, &bucket);
        }

        #[test]
        fn fuzz_aws_credentials_files(
            text in crate::fuzz::text(&[
                "[default]\naws_access_key_id = A\naws_secret_access_key = S\n[ci]\naws_session_token=T\n",
            ]),
            profile in crate::fuzz::text(&["default", "ci"]),
        ) {
            let _ = parse_profile(&text, &profile);
        }
    }
}
