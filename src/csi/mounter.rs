//! Between the node plugin and the mounter: one JSON request per connection on a Unix socket
//! only root can open, one JSON reply. The plugin (in its pod) asks; the mounter (a service of
//! the node's host, docs/kubernetes.md) runs the FUSE daemons, so that they outlive the
//! plugin's pod (kubernetes#70013).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What the plugin asks.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Whether the mounter answers.
    Ping,
    /// Mount `source` at `target` with `options`; `env` holds the credentials.
    Mount {
        /// The volume (names the mount's cache directory with the target).
        volume_id: String,
        /// The source URL.
        source: String,
        /// Where.
        target: PathBuf,
        /// The `-o` list.
        options: String,
        /// The daemon's credentials.
        env: BTreeMap<String, String>,
    },
    /// Stop the daemon of `target` (pending uploads are sent first) and unmount; a dead
    /// mount is detached.
    Unmount {
        /// Where.
        target: PathBuf,
    },
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Ping => f.write_str("Ping"),
            Request::Mount {
                volume_id,
                source,
                target,
                options,
                env,
            } => f
                .debug_struct("Mount")
                .field("volume_id", volume_id)
                .field("source", source)
                .field("target", target)
                .field("options", options)
                .field("env", &env.keys().collect::<Vec<_>>())
                .finish(),
            Request::Unmount { target } => {
                f.debug_struct("Unmount").field("target", target).finish()
            }
        }
    }
}

/// The mounter's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// `None` when done; else what went wrong.
    pub error: Option<String>,
}

/// Longest request accepted.
pub const MAX_REQUEST: u64 = 1 << 20;

/// Send `req` to the mounter at `socket` and wait (at most `wait`) for its reply.
pub fn ask(socket: &Path, req: &Request, wait: Duration) -> Result<(), String> {
    let unreachable = |e: std::io::Error| {
        format!(
            "the cloudmount mounter does not answer at {} ({e}); is cloudmount-csi-mounter.service \
             running on this node? (docs/kubernetes.md)",
            socket.display()
        )
    };
    let mut conn = std::os::unix::net::UnixStream::connect(socket).map_err(unreachable)?;
    conn.set_read_timeout(Some(wait)).map_err(unreachable)?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(unreachable)?;
    let mut line = serde_json::to_vec(req).map_err(|e| e.to_string())?;
    line.push(b'\n');
    conn.write_all(&line).map_err(unreachable)?;
    let mut answer = String::new();
    std::io::BufReader::new(conn)
        .read_line(&mut answer)
        .map_err(unreachable)?;
    let reply: Reply = serde_json::from_str(&answer).map_err(|e| {
        format!(
            "the mounter at {} answered {answer:?}, not a reply ({e}); are the plugin and \
             the mounter the same version?",
            socket.display()
        )
    })?;
    match reply.error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_never_show_secrets() {
        let req = Request::Mount {
            volume_id: "v".into(),
            source: "s3://b".into(),
            target: "/t".into(),
            options: "ro".into(),
            env: [("AWS_SECRET_ACCESS_KEY".to_string(), "hush".to_string())].into(),
        };
        let json = serde_json::to_string(&req).unwrap();
        assert!(json.starts_with("{\"op\":\"mount\""), "{json}");
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), req);
        let shown = format!("{req:?}");
        assert!(
            !shown.contains("hush") && shown.contains("AWS_SECRET_ACCESS_KEY"),
            "{shown}"
        );
    }
}
