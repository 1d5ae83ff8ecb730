//! Drive's changes feed (`changes.getStartPageToken`, then `changes.list` page by page): each
//! change names a file id; the keys it touches are where kept listings showed it before and
//! where its parents show it now. Kept listings of those folders are dropped, so the next
//! look asks Drive.

use super::file::{self, DriveFile};
use super::{names, DriveBackend};
use crate::backend::BackendError;
use reqwest::Method;
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartToken {
    start_page_token: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Change {
    #[serde(default)]
    file_id: Option<String>,
    #[serde(default)]
    file: Option<DriveFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeList {
    #[serde(default)]
    changes: Vec<Change>,
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(default)]
    new_start_page_token: Option<String>,
}

/// `dir` joined with `name` as a key (`dir` is `""` for the root).
fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// A directory key's listing key (`""` or ending in `/`).
fn listing(dir: &str) -> String {
    if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct About {
    #[serde(default)]
    storage_quota: Quota,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Quota {
    #[serde(default)]
    limit: Option<String>,
    #[serde(default)]
    usage: Option<String>,
}

impl DriveBackend {
    /// Read the quota (`about`) for `statfs`; a failure keeps what was known.
    pub(super) async fn read_quota(&self) {
        let call = self
            .call(Method::GET, self.api_url("about"), "read the quota".into())
            .q("fields", "storageQuota");
        match self.api.json::<About>(&call).await {
            Ok(a) => {
                let num = |v: &Option<String>| v.as_deref().and_then(|n| n.parse::<u64>().ok());
                let space = crate::backend::Space {
                    total: num(&a.storage_quota.limit),
                    used: num(&a.storage_quota.usage).unwrap_or(0),
                };
                *self.quota.lock().unwrap_or_else(|p| p.into_inner()) = Some(space);
            }
            Err(e) => tracing::debug!(error = %e, "cannot read the Drive quota"),
        }
    }

    fn shared(&self, call: super::api::Call) -> super::api::Call {
        let call = call.q("includeItemsFromAllDrives", "true");
        match &self.settings.drive_id {
            Some(d) => call.q("driveId", d.clone()),
            None => call,
        }
    }

    /// The keys changes since the last call touched (the first call only starts the feed).
    pub(super) async fn read_changes(&self) -> Result<Vec<String>, BackendError> {
        let mut token = self.change_token.lock().await;
        let Some(mut page) = token.clone() else {
            let start: StartToken = self
                .api
                .json(&self.shared(self.call(
                    Method::GET,
                    self.api_url("changes/startPageToken"),
                    "start the changes feed".into(),
                )))
                .await?;
            *token = Some(start.start_page_token);
            return Ok(Vec::new());
        };
        self.read_quota().await;
        let mut keys = Vec::new();
        // Bounded: a feed that pages forever is cut after 1,000 pages (a million changes),
        // after which everything is forgotten.
        for _ in 0..1000 {
            let call = self
                .shared(self.call(
                    Method::GET,
                    self.api_url("changes"),
                    "read the changes feed".into(),
                ))
                .q("pageToken", page.clone())
                .q("pageSize", "1000")
                .q("includeRemoved", "true")
                .q(
                    "fields",
                    format!(
                        "nextPageToken,newStartPageToken,changes(fileId,removed,file({}))",
                        file::FIELDS
                    ),
                );
            let list: ChangeList = self.api.json(&call).await?;
            for c in &list.changes {
                keys.extend(self.touched(c));
            }
            match (list.next_page_token, list.new_start_page_token) {
                (Some(next), _) => page = next,
                (None, Some(new)) => {
                    *token = Some(new);
                    keys.sort();
                    keys.dedup();
                    return Ok(keys);
                }
                (None, None) => {
                    return Err(BackendError::Other(
                        "the changes feed answered without a next page or a new start token".into(),
                    ))
                }
            }
        }
        *token = Some(page);
        self.tree.forget_all();
        Ok(vec![String::new()])
    }

    /// The keys one change touches; kept listings it makes wrong are dropped.
    fn touched(&self, c: &Change) -> Vec<String> {
        let Some(id) = c
            .file_id
            .as_deref()
            .or(c.file.as_ref().map(|f| f.id.as_str()))
        else {
            return Vec::new();
        };
        let mut keys = Vec::new();
        // Where it was.
        for (folder, name, is_folder) in self.tree.holders(id) {
            for dir in self.tree.dirs_of(&folder) {
                let key = join(&dir, &name);
                if is_folder {
                    self.tree.forget_dir(&key);
                    keys.push(listing(&key));
                }
                keys.push(key);
                keys.push(listing(&dir));
            }
            self.tree.forget(&folder);
        }
        // A folder's own listing, wherever it shows.
        for dir in self.tree.dirs_of(id) {
            keys.push(listing(&dir));
        }
        self.tree.forget(id);
        // Where it is now.
        if let Some(f) = &c.file {
            for parent in &f.parents {
                for dir in self.tree.dirs_of(parent) {
                    keys.push(join(&dir, &names::display(&f.name)));
                    keys.push(listing(&dir));
                }
                self.tree.forget(parent);
            }
        }
        keys
    }
}
