//! The SOURCE argument: which store and which prefix inside it to mount.

use std::fmt;
use std::path::PathBuf;

/// A parsed SOURCE URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `s3://bucket[/prefix]`: Amazon S3 or an S3-compatible server.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix of the mounted root (may be empty).
        prefix: String,
    },
    /// `az://container[/prefix]`: Azure Blob Storage (account from options, env or config file).
    Azure {
        /// Container name.
        container: String,
        /// Blob name prefix of the mounted root (may be empty).
        prefix: String,
    },
    /// `gs://bucket[/prefix]`: Google Cloud Storage.
    Gcs {
        /// Bucket name.
        bucket: String,
        /// Key prefix of the mounted root (may be empty).
        prefix: String,
    },
    /// `gdrive://LABEL/PATH`: folder PATH of the Google Drive account authorized under LABEL
    /// (`gdrive:///PATH`: the label `default`).
    Gdrive {
        /// The stored authorization's label.
        label: String,
        /// Folder path below My Drive's root (or `root_folder`, or the shared drive's root).
        path: String,
    },
    /// `file:///abs/dir`: a local directory (the embedded demo backend).
    Local {
        /// Absolute path of the directory.
        dir: PathBuf,
    },
}

impl Source {
    /// Parse `s3://`, `az://`, `gs://`, `gdrive://` or `file://` URLs.
    pub fn parse(s: &str) -> Result<Source, String> {
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(format!(
                "source {s:?} is not a URL: use s3://BUCKET[/PREFIX], az://CONTAINER[/PREFIX], \
                 gs://BUCKET[/PREFIX], gdrive://[LABEL]/[PATH] or file:///ABSOLUTE/DIR"
            ));
        };
        let split = |what: &str| -> Result<(String, String), String> {
            let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if name.is_empty() {
                return Err(format!(
                    "source {s:?} names no {what}: write {scheme}://{what}[/PREFIX]"
                ));
            }
            Ok((name.to_string(), prefix.trim_matches('/').to_string()))
        };
        match scheme {
            "s3" => split("BUCKET").map(|(bucket, prefix)| Source::S3 { bucket, prefix }),
            "az" | "azure" | "abfs" => {
                split("CONTAINER").map(|(container, prefix)| Source::Azure { container, prefix })
            }
            "gs" | "gcs" => split("BUCKET").map(|(bucket, prefix)| Source::Gcs { bucket, prefix }),
            "gdrive" | "drive" => {
                let (label, path) = rest.split_once('/').unwrap_or((rest, ""));
                let label = if label.is_empty() { "default" } else { label };
                let ok = |c: char| c.is_ascii_alphanumeric() || "-_.@".contains(c);
                if !label.chars().all(ok) || label.starts_with('.') {
                    return Err(format!(
                        "source {s:?}: the label {label:?} may hold letters, digits, '-', '_',                          '.' and '@' only: write gdrive://LABEL/PATH"
                    ));
                }
                Ok(Source::Gdrive {
                    label: label.to_string(),
                    path: path.trim_matches('/').to_string(),
                })
            }
            "file" => {
                if !rest.starts_with('/') {
                    return Err(format!(
                        "source {s:?}: a file URL needs an absolute path, like file:///srv/data"
                    ));
                }
                Ok(Source::Local { dir: PathBuf::from(rest) })
            }
            other => Err(format!(
                "unknown URL scheme {other:?} in source {s:?}: cloudmount mounts s3://, az://, gs://, \
                 gdrive:// and file:// sources"
            )),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |scheme: &str, name: &str, prefix: &str| {
            if prefix.is_empty() {
                format!("{scheme}://{name}")
            } else {
                format!("{scheme}://{name}/{prefix}")
            }
        };
        match self {
            Source::S3 { bucket, prefix } => f.write_str(&join("s3", bucket, prefix)),
            Source::Azure { container, prefix } => f.write_str(&join("az", container, prefix)),
            Source::Gcs { bucket, prefix } => f.write_str(&join("gs", bucket, prefix)),
            Source::Gdrive { label, path } => {
                let label = if label == "default" { "" } else { label };
                write!(f, "gdrive://{label}/{path}")
            }
            Source::Local { dir } => write!(f, "file://{}", dir.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_scheme() {
        assert_eq!(
            Source::parse("s3://b/p/q/").unwrap(),
            Source::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            Source::parse("az://c").unwrap(),
            Source::Azure {
                container: "c".into(),
                prefix: String::new()
            }
        );
        assert!(matches!(
            Source::parse("gs://b/x").unwrap(),
            Source::Gcs { .. }
        ));
        assert_eq!(
            Source::parse("file:///tmp/d").unwrap(),
            Source::Local {
                dir: "/tmp/d".into()
            }
        );
        assert_eq!(Source::parse("s3://b/p").unwrap().to_string(), "s3://b/p");
        assert_eq!(
            Source::parse("gdrive:///Datasets/cvat/").unwrap(),
            Source::Gdrive {
                label: "default".into(),
                path: "Datasets/cvat".into()
            }
        );
        let work = Source::parse("gdrive://work/a b").unwrap();
        assert_eq!(work.to_string(), "gdrive://work/a b");
        assert_eq!(
            Source::parse("gdrive://").unwrap().to_string(),
            "gdrive:///"
        );
        assert!(Source::parse("gdrive://../x")
            .unwrap_err()
            .contains("label"));
    }

    #[test]
    fn rejects_bad_sources_with_a_hint() {
        assert!(Source::parse("ftp://x")
            .unwrap_err()
            .contains("unknown URL scheme \"ftp\""));
        assert!(Source::parse("bucket").unwrap_err().contains("not a URL"));
        assert!(Source::parse("s3://")
            .unwrap_err()
            .contains("names no BUCKET"));
        assert!(Source::parse("file://rel/dir")
            .unwrap_err()
            .contains("absolute path"));
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Fuzz target: SOURCE URLs; whatever parses prints back to what parses the same.
        #[test]
        fn fuzz_source_urls(url in crate::fuzz::text(&[
            "s3://bucket/prefix/x", "az://container", "gs://b/p", "file:///srv/data",
            "gdrive://work/Datasets/cvat", "gdrive:///a b",
        ])) {
            if let Ok(s) = Source::parse(&url) {
                proptest::prop_assert_eq!(Source::parse(&s.to_string()), Ok(s));
            }
        }
    }
}
