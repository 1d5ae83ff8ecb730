//! What a NodePublishVolume asks for, checked: the source and options of the volume context,
//! the credentials of the node-publish secrets, the access mode. A request that cannot be
//! mounted is refused here, with a message that names the field to fix, before anything runs.

use crate::config::{apply_option_list, MountConfig, Source};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

/// Options a volume context may not set: they name files on the node (credentials come from
/// the node-publish secrets; the cache, the log and the foreground are the mounter's).
const NODE_OPTIONS: [&str; 9] = [
    "passwd_file",
    "config_file",
    "service_account",
    "token_file",
    "profile",
    "cache",
    "log_file",
    "foreground",
    "f",
];

/// A checked mount order: what the mounter runs.
#[derive(Clone, PartialEq, Eq)]
pub struct Order {
    /// The source URL.
    pub source: String,
    /// The `-o` list (validated), without the mounter's own additions.
    pub options: String,
    /// Credentials, as the environment of the daemon (never on a command line or in a log).
    pub env: BTreeMap<String, String>,
}

impl fmt::Debug for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Order")
            .field("source", &self.source)
            .field("options", &self.options)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The parts of a NodePublishVolume request an order is made from.
#[derive(Default)]
pub struct Publish<'a> {
    /// `volume_context`: `source` and `options`.
    pub context: Option<&'a HashMap<String, String>>,
    /// The node-publish secrets.
    pub secrets: Option<&'a HashMap<String, String>>,
    /// The capability's mount flags (a PV's `mountOptions`).
    pub mount_flags: &'a [String],
    /// The volume is published read-only (`readonly`, or a reader-only access mode).
    pub read_only: bool,
}

/// Check `p` and make the order, or say what is wrong.
pub fn order(p: &Publish<'_>) -> Result<Order, String> {
    let empty = HashMap::new();
    let context = p.context.unwrap_or(&empty);
    for k in context.keys() {
        // Kubernetes adds its own csi.storage.k8s.io/ keys (podInfoOnMount).
        if k != "source" && k != "options" && !k.starts_with("csi.storage.k8s.io/") {
            return Err(format!(
                "unknown volume attribute {k:?}: a cloudmount volume takes `source` (the URL) and \
                 `options` (the -o list)"
            ));
        }
    }
    let source = context.get("source").filter(|s| !s.is_empty()).ok_or(
        "the volume attributes lack `source` (s3://BUCKET[/PREFIX] or az://CONTAINER[/PREFIX])",
    )?;
    let parsed = Source::parse(source).map_err(|e| format!("volume attribute `source`: {e}"))?;
    let mut options: Vec<String> = Vec::new();
    for list in context
        .get("options")
        .map(String::as_str)
        .into_iter()
        .chain(p.mount_flags.iter().map(String::as_str))
    {
        options.extend(
            list.split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_string),
        );
    }
    for o in &options {
        let name = o.split_once('=').map_or(o.as_str(), |(n, _)| n);
        if NODE_OPTIONS.contains(&name) {
            return Err(format!(
                "option {name:?} is not allowed in a CSI volume: credentials come from the \
                 node-publish secrets, and the cache and logs are the node's"
            ));
        }
    }
    if p.read_only && !options.iter().any(|o| o == "ro") {
        options.push("ro".into());
    }
    if !options.iter().any(|o| o == "allow_other") {
        // Pods run as users other than the daemon's.
        options.push("allow_other".into());
    }
    let list = options.join(",");
    apply_option_list(&mut MountConfig::default(), &list)
        .map_err(|e| format!("volume attribute `options`: {e}"))?;
    let env = credentials(&parsed, p.secrets.unwrap_or(&empty))?;
    Ok(Order {
        source: source.clone(),
        options: list,
        env,
    })
}

/// The daemon's environment for the secrets of a `source` volume.
fn credentials(
    source: &Source,
    secrets: &HashMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let (allowed, required): (&[&str], &[&str]) = match source {
        Source::S3 { .. } => (
            &["key_id", "access_key", "session_token"],
            &["key_id", "access_key"],
        ),
        Source::Azure { .. } => (
            &["account_name", "account_key", "sas_token"],
            &["account_name"],
        ),
        other => {
            return Err(format!(
                "{other}: the CSI driver mounts s3:// and az:// sources"
            ))
        }
    };
    for k in secrets.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(format!(
                "unknown node-publish secret {k:?} (expected {})",
                allowed.join(", ")
            ));
        }
    }
    let get = |k: &str| secrets.get(k).filter(|v| !v.is_empty()).cloned();
    for k in required {
        if get(k).is_none() {
            return Err(format!(
                "the node-publish secret lacks {k:?} (a {} volume needs {})",
                match source {
                    Source::S3 { .. } => "s3://",
                    _ => "az://",
                },
                required.join(" and ")
            ));
        }
    }
    let mut env = BTreeMap::new();
    let mut set = |var: &str, key: &str| {
        if let Some(v) = get(key) {
            env.insert(var.to_string(), v);
        }
    };
    match source {
        Source::S3 { .. } => {
            set("AWS_ACCESS_KEY_ID", "key_id");
            set("AWS_SECRET_ACCESS_KEY", "access_key");
            set("AWS_SESSION_TOKEN", "session_token");
        }
        _ => {
            if get("account_key").is_none() && get("sas_token").is_none() {
                return Err(
                    "the node-publish secret lacks \"account_key\" or \"sas_token\" (an az:// \
                     volume needs one of them)"
                        .into(),
                );
            }
            set("AZURE_STORAGE_ACCOUNT", "account_name");
            set("AZURE_STORAGE_ACCESS_KEY", "account_key");
            set("AZURE_STORAGE_SAS_TOKEN", "sas_token");
        }
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_s3_volume_becomes_an_order_with_secrets_in_the_environment() {
        let ctx = map(&[
            ("source", "s3://data/images"),
            ("options", "endpoint=http://127.0.0.1:9000,uid=1000"),
            ("csi.storage.k8s.io/pod.name", "cvat-0"),
        ]);
        let sec = map(&[("key_id", "AKIA"), ("access_key", "s3cr3t")]);
        let flags = vec!["gid=1000".to_string()];
        let o = order(&Publish {
            context: Some(&ctx),
            secrets: Some(&sec),
            mount_flags: &flags,
            read_only: true,
        })
        .unwrap();
        assert_eq!(o.source, "s3://data/images");
        assert_eq!(
            o.options,
            "endpoint=http://127.0.0.1:9000,uid=1000,gid=1000,ro,allow_other"
        );
        assert_eq!(o.env["AWS_SECRET_ACCESS_KEY"], "s3cr3t");
        assert!(!o.env.contains_key("AWS_SESSION_TOKEN"));
        let shown = format!("{o:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("AWS_SECRET_ACCESS_KEY"),
            "{shown}"
        );
    }

    #[test]
    fn bad_requests_say_what_to_fix() {
        let sec = map(&[("key_id", "a"), ("access_key", "b")]);
        let bad = |ctx: &[(&str, &str)], sec: &HashMap<String, String>| {
            let ctx = map(ctx);
            order(&Publish {
                context: Some(&ctx),
                secrets: Some(sec),
                ..Default::default()
            })
            .unwrap_err()
        };
        assert!(bad(&[], &sec).contains("lack `source`"));
        assert!(bad(&[("source", "ftp://x")], &sec).contains("`source`"));
        assert!(bad(&[("source", "s3://b"), ("options", "bogus=1")], &sec).contains("bogus"));
        assert!(
            bad(&[("source", "s3://b"), ("options", "passwd_file=/x")], &sec)
                .contains("not allowed")
        );
        assert!(bad(&[("source", "s3://b"), ("colour", "red")], &sec)
            .contains("unknown volume attribute"));
        assert!(
            bad(&[("source", "s3://b")], &map(&[("key_id", "a")])).contains("lacks \"access_key\"")
        );
        assert!(bad(
            &[("source", "s3://b")],
            &map(&[("key_id", "a"), ("access_key", "b"), ("token", "c")])
        )
        .contains("unknown node-publish secret"));
        assert!(
            bad(&[("source", "az://c")], &map(&[("account_name", "a")])).contains("account_key")
        );
        assert!(bad(&[("source", "file:///tmp")], &HashMap::new()).contains("s3:// and az://"));
        let az = order(&Publish {
            context: Some(&map(&[("source", "az://c/p")])),
            secrets: Some(&map(&[("account_name", "acct"), ("sas_token", "sv=1")])),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(az.env["AZURE_STORAGE_ACCOUNT"], "acct");
        assert_eq!(az.env["AZURE_STORAGE_SAS_TOKEN"], "sv=1");
    }
}
