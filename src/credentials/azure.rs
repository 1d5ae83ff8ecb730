//! Azure credentials: blobfuse's `connection.cfg` and environment variables.

use super::files::read_private;
use super::Secret;
use crate::config::MountConfig;
use std::path::Path;

/// How to authenticate to a storage account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AzureAuth {
    /// Shared key of the account.
    Key(Secret),
    /// A SAS token (query string, with or without the leading `?`).
    Sas(Secret),
    /// object_store's chain (managed identity, workload identity, Azure CLI).
    Chain,
}

/// Everything needed to reach one Azure container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureCredentials {
    /// Storage account name.
    pub account: String,
    /// Authentication.
    pub auth: AzureAuth,
    /// Blob endpoint from the config file (`blobEndpoint`), if any.
    pub endpoint: Option<String>,
    /// Container name from the config file (`containerName`), if any.
    pub container: Option<String>,
}

/// Credentials from `config_file=`, else from `AZURE_STORAGE_*` variables; `account=` wins.
pub fn resolve(cfg: &MountConfig) -> Result<AzureCredentials, String> {
    let mut creds = match &cfg.config_file {
        Some(path) => from_connection_cfg(path)?,
        None => from_env()?,
    };
    if let Some(a) = &cfg.account {
        creds.account = a.clone();
    }
    if creds.account.is_empty() {
        return Err(
            "no Azure storage account: set -o account=NAME, AZURE_STORAGE_ACCOUNT, \
                    or accountName in the file given with -o config_file="
                .to_string(),
        );
    }
    Ok(creds)
}

fn from_env() -> Result<AzureCredentials, String> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    let auth = match (
        var("AZURE_STORAGE_ACCESS_KEY"),
        var("AZURE_STORAGE_SAS_TOKEN"),
    ) {
        (Some(k), _) => AzureAuth::Key(Secret::new(k)),
        (None, Some(s)) => AzureAuth::Sas(Secret::new(s)),
        (None, None) => AzureAuth::Chain,
    };
    Ok(AzureCredentials {
        account: var("AZURE_STORAGE_ACCOUNT").unwrap_or_default(),
        auth,
        endpoint: var("AZURE_STORAGE_BLOB_ENDPOINT"),
        container: None,
    })
}

/// Parse blobfuse's `connection.cfg` (`key value` lines, `#` comments).
pub fn from_connection_cfg(path: &Path) -> Result<AzureCredentials, String> {
    let text = read_private(path)?;
    parse_connection_cfg(&text).map_err(|(line, msg)| match line {
        0 => format!("{}: {msg}", path.display()),
        l => format!("{}:{l}: {msg}", path.display()),
    })
}

pub(crate) fn parse_connection_cfg(text: &str) -> Result<AzureCredentials, (usize, String)> {
    let (mut account, mut key, mut sas, mut auth_type, mut container, mut endpoint) =
        (None, None, None, None, None, None);
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once(char::is_whitespace) else {
            return Err((
                i + 1,
                "expected `name value` (e.g. `accountName myaccount`)".to_string(),
            ));
        };
        let v = v.trim().to_string();
        match k {
            "accountName" => account = Some(v),
            "accountKey" => key = Some((i + 1, v)),
            "sasToken" => sas = Some((i + 1, v)),
            "authType" => auth_type = Some((i + 1, v)),
            "containerName" => container = Some(v),
            "blobEndpoint" => endpoint = Some(v),
            "accountType" | "blobCacheTimeout" | "dnsType" => {}
            other => {
                return Err((
                    i + 1,
                    format!(
                        "unknown setting {other:?}; known: accountName, accountKey, sasToken, \
                         authType, containerName, blobEndpoint"
                    ),
                ))
            }
        }
    }
    let auth = match auth_type {
        None => match (key, sas) {
            (Some((_, k)), _) => AzureAuth::Key(Secret::new(k)),
            (None, Some((_, s))) => AzureAuth::Sas(Secret::new(s)),
            (None, None) => AzureAuth::Chain,
        },
        Some((line, t)) => match t.to_ascii_lowercase().as_str() {
            "key" => AzureAuth::Key(Secret::new(
                key.ok_or((line, "authType Key needs an accountKey line".to_string()))?
                    .1,
            )),
            "sas" => AzureAuth::Sas(Secret::new(
                sas.ok_or((line, "authType SAS needs a sasToken line".to_string()))?
                    .1,
            )),
            "msi" | "spn" | "azcli" => AzureAuth::Chain,
            other => {
                return Err((
                    line,
                    format!("unknown authType {other:?}; use Key, SAS, MSI or SPN"),
                ))
            }
        },
    };
    Ok(AzureCredentials {
        account: account.unwrap_or_default(),
        auth,
        endpoint,
        container,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blobfuse_connection_cfg() {
        let c = parse_connection_cfg(
            "# blobfuse\naccountName acct\naccountKey c2VjcmV0\ncontainerName cont\nblobEndpoint http://127.0.0.1:10000/acct\n",
        )
        .unwrap();
        assert_eq!(c.account, "acct");
        assert_eq!(c.auth, AzureAuth::Key(Secret::new("c2VjcmV0")));
        assert_eq!(c.container.as_deref(), Some("cont"));
        let c =
            parse_connection_cfg("accountName a\nsasToken ?sv=1&sig=x\nauthType SAS\n").unwrap();
        assert!(matches!(c.auth, AzureAuth::Sas(_)));
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(
            parse_connection_cfg("accountName a\nbogusSetting x\n")
                .unwrap_err()
                .0,
            2
        );
        assert_eq!(
            parse_connection_cfg("accountName a\nauthType SAS\n")
                .unwrap_err()
                .0,
            2
        );
        assert_eq!(parse_connection_cfg("lonely\n").unwrap_err().0, 1);
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Fuzz target: blobfuse's connection.cfg.
        #[test]
        fn fuzz_connection_cfg(text in crate::fuzz::text(&[
            "# blobfuse\naccountName acct\naccountKey c2VjcmV0\ncontainerName cont\nblobEndpoint http://127.0.0.1:10000/acct\n",
            "accountName a\nsasToken ?sv=1&sig=x\nauthType SAS\n",
        ])) {
            let _ = parse_connection_cfg(&text);
        }
    }
}
