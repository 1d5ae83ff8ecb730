//! Google Drive (API v3) as a [`Backend`]: the project's own small client, since object_store
//! has no Drive support.
//!
//! Keys are paths below the mounted folder, as for every backend; [`tree`] turns them into
//! file ids through complete, cached folder listings, with the names of [`names`]. Folders
//! are real on Drive, so directory "markers" are folders and every listing shows its folder
//! exists. Renames and moves are one metadata request for files and whole folders alike
//! ([`Backend::renames`]). Google documents show as their exports, read-only.

mod api;
mod auth;
mod changes;
mod docs;
mod file;
pub mod names;
mod ops;
mod sessions;
mod trash;
mod tree;
mod upload;

pub use auth::{form, revoked_message};
pub use docs::{export_mime, Exports, EXPORT_FORMATS};

use super::{Backend, BackendError, ListPage, ObjectInfo, PosixMeta};
use api::{Api, Call, Limits};
use async_trait::async_trait;
use bytes::Bytes;
use file::DriveFile;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use trash::{TRASH, TRASH_DIR};
use tree::{Entry, EntryKind, Folder, Tree};

/// Google's API root.
pub const GOOGLE_API: &str = "https://www.googleapis.com";

/// What `unlink` does on Drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeleteMode {
    /// Move to the trash (google-drive-ocamlfuse's behaviour; restorable for 30 days).
    #[default]
    Trash,
    /// Delete for good.
    Permanent,
}

/// How a Drive mount is set up (from the mount options).
#[derive(Debug, Clone)]
pub struct DriveSettings {
    /// API root (`URL/drive/v3`, uploads `URL/upload/drive/v3`).
    pub endpoint: String,
    /// The authorization's label (for messages).
    pub label: String,
    /// Folder path below the start folder (`""`: the start folder itself).
    pub path: String,
    /// Start at this folder id instead of My Drive's root.
    pub root_folder: Option<String>,
    /// A shared drive's id (its root is the start folder unless `root_folder` is given).
    pub drive_id: Option<String>,
    /// Export format (extension) of each Google document type; `None`: documents are hidden.
    pub exports: Option<docs::Exports>,
    /// What deleting does.
    pub delete: DeleteMode,
    /// Trashed files are shown under `.Trash` in the mount's root.
    pub show_trash: bool,
    /// Files up to this size go up in one request; larger ones in resumable chunks of it.
    pub chunk_size: u64,
    /// How long a folder listing is trusted for resolving paths.
    pub listing_ttl: Duration,
    /// How often the changes feed is read (`None`: never).
    pub poll_interval: Option<Duration>,
    /// Pacing and retries.
    pub limits: api::Limits,
    /// Where resumable upload sessions are kept across restarts (`None`: not kept).
    pub session_dir: Option<std::path::PathBuf>,
}

/// The Drive backend.
#[derive(Debug)]
pub struct DriveBackend {
    api: Api,
    settings: DriveSettings,
    tree: Tree,
    root: tokio::sync::OnceCell<String>,
    exports: docs::ExportCache,
    /// The changes feed's page token (`None` until the feed starts).
    change_token: tokio::sync::Mutex<Option<String>>,
    /// Folders seen through `.Trash`, whose trashed children are listed.
    trash: trash::TrashView,
    /// The quota, read at the first request and with every read of the changes feed.
    quota: std::sync::Mutex<Option<super::Space>>,
    /// Resumable upload sessions kept across restarts.
    sessions: sessions::SessionStore,
}

/// Pacing and retries from the mount options.
pub fn limits(deadline: Duration, retries: usize, rate: f64, burst: u32) -> Limits {
    Limits {
        deadline,
        retries,
        rate,
        burst,
    }
}

/// Get one access token with `auth` (a check that an authorization works).
pub async fn check_token(
    auth: crate::credentials::gdrive::DriveAuth,
    http: reqwest::Client,
    label: &str,
) -> Result<(), BackendError> {
    auth::TokenSource::new(auth, http, label)
        .token()
        .await
        .map(|_| ())
}

impl DriveBackend {
    /// A backend for `settings`, authorized by `auth`.
    pub fn new(
        settings: DriveSettings,
        auth: crate::credentials::gdrive::DriveAuth,
        connect_timeout: Duration,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .http1_only()
            .connect_timeout(connect_timeout)
            .pool_idle_timeout(Duration::from_secs(50))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client for Google Drive: {e}"))?;
        let tokens = auth::TokenSource::new(auth, http.clone(), &settings.label);
        let settings_session_dir = settings.session_dir.clone();
        Ok(DriveBackend {
            api: Api::new(http, tokens, settings.limits.clone()),
            tree: Tree::new("", settings.listing_ttl),
            settings,
            root: tokio::sync::OnceCell::new(),
            exports: docs::ExportCache::default(),
            change_token: tokio::sync::Mutex::new(None),
            trash: trash::TrashView::default(),
            quota: std::sync::Mutex::new(None),
            sessions: sessions::SessionStore::new(settings_session_dir),
        })
    }

    fn api_url(&self, rest: &str) -> String {
        format!(
            "{}/drive/v3/{rest}",
            self.settings.endpoint.trim_end_matches('/')
        )
    }

    fn upload_url(&self, rest: &str) -> String {
        format!(
            "{}/upload/drive/v3/{rest}",
            self.settings.endpoint.trim_end_matches('/')
        )
    }

    /// A call with the shared-drive parameters every request needs.
    fn call(&self, method: reqwest::Method, url: String, what: String) -> Call {
        Call::new(method, url, what).q("supportsAllDrives", "true")
    }

    /// The id of the mounted folder, found once.
    async fn root_id(&self) -> Result<String, BackendError> {
        self.root
            .get_or_try_init(|| async {
                let start = match (&self.settings.root_folder, &self.settings.drive_id) {
                    (Some(id), _) => id.clone(),
                    (None, Some(d)) => d.clone(),
                    (None, None) => {
                        let f: DriveFile = self
                            .api
                            .json(
                                &self
                                    .call(
                                        reqwest::Method::GET,
                                        self.api_url("files/root"),
                                        "find My Drive's root folder".into(),
                                    )
                                    .q("fields", "id"),
                            )
                            .await?;
                        f.id
                    }
                };
                self.tree.learn_dir("", &start);
                let mut id = start;
                let mut walked = String::new();
                for part in self.settings.path.split('/').filter(|p| !p.is_empty()) {
                    let folder = self.folder(&id, true).await?;
                    match folder.get(part) {
                        Some(e) if e.kind == EntryKind::Folder => id = e.id().to_string(),
                        _ => {
                            return Err(BackendError::NotFound(format!(
                                "{}: there is no folder {part:?} in {}",
                                self.describe(),
                                if walked.is_empty() {
                                    "the start folder".to_string()
                                } else {
                                    walked.clone()
                                }
                            )))
                        }
                    }
                    walked = format!("{walked}/{part}");
                }
                self.read_quota().await;
                // Keys are relative to the mounted folder.
                self.tree.forget_all();
                self.tree.learn_dir("", &id);
                Ok(id)
            })
            .await
            .cloned()
    }

    /// The complete listing of folder `id` (`fresh`: no older than the listing TTL).
    async fn folder(&self, id: &str, fresh: bool) -> Result<Arc<Folder>, BackendError> {
        if let Some(f) = self.tree.folder(id, fresh) {
            return Ok(f);
        }
        let children = self.list_children(id, None).await?.0;
        let resolved = self.resolve_shortcuts(children).await?;
        let folder = Arc::new(Folder::build(id, resolved, &|f| self.classify(f)));
        self.tree.keep(folder.clone());
        Ok(folder)
    }

    /// Every child of folder `id` (`limit`: at most that many, one request).
    async fn list_children(
        &self,
        id: &str,
        limit: Option<usize>,
    ) -> Result<(Vec<DriveFile>, bool), BackendError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let size = limit.unwrap_or(1000).clamp(1, 1000);
            let mut call = self
                .call(
                    reqwest::Method::GET,
                    self.api_url("files"),
                    format!("list folder {id}"),
                )
                .q("q", self.query_for(id))
                .q("fields", format!("nextPageToken,files({})", file::FIELDS))
                .q("pageSize", size.to_string())
                .q("includeItemsFromAllDrives", "true");
            if let Some(d) = &self.settings.drive_id {
                call = call.q("corpora", "drive").q("driveId", d.clone());
            }
            if let Some(t) = &token {
                call = call.q("pageToken", t.clone());
            }
            let page: file::FileList = self.api.json(&call).await?;
            let in_trash_view = id == TRASH;
            out.extend(
                page.files
                    .into_iter()
                    .filter(|f| !in_trash_view || f.explicitly_trashed),
            );
            token = page.next_page_token;
            if token.is_none() || limit.is_some() {
                return Ok((out, token.is_some()));
            }
        }
    }

    /// Shortcuts replaced by their targets (with the shortcut's name, parents and creation
    /// time); broken ones are dropped.
    async fn resolve_shortcuts(
        &self,
        children: Vec<DriveFile>,
    ) -> Result<Vec<(DriveFile, Option<String>)>, BackendError> {
        let mut out = Vec::with_capacity(children.len());
        for f in children {
            let Some(target) = f.shortcut_details.as_ref().filter(|_| f.is_shortcut()) else {
                out.push((f, None));
                continue;
            };
            match self.get_file(&target.target_id).await {
                Ok(mut t) if !t.trashed && !t.is_shortcut() => {
                    t.name = f.name.clone();
                    t.parents = f.parents.clone();
                    t.created_time = f.created_time.clone();
                    out.push((t, Some(f.id)));
                }
                Ok(_) | Err(BackendError::NotFound(_)) => {
                    tracing::debug!(shortcut = %f.id, "hiding a shortcut whose target is gone");
                }
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    async fn get_file(&self, id: &str) -> Result<DriveFile, BackendError> {
        self.api
            .json(
                &self
                    .call(
                        reqwest::Method::GET,
                        self.api_url(&format!("files/{id}")),
                        format!("get file {id}"),
                    )
                    .q("fields", file::FIELDS),
            )
            .await
    }

    /// How `f` shows in the mount, or `None` to hide it.
    fn classify(&self, f: &DriveFile) -> Option<(EntryKind, String)> {
        let name = names::display(&f.name);
        if f.is_folder() {
            return Some((EntryKind::Folder, name));
        }
        if f.is_shortcut() {
            return None;
        }
        if f.is_google_doc() {
            let exports = self.settings.exports.as_ref()?;
            let (ext, mime) = exports.for_type(&f.mime_type)?;
            return Some((
                EntryKind::Doc {
                    mime: mime.to_string(),
                },
                names::with_extension(&name, ext),
            ));
        }
        Some((EntryKind::File, name))
    }

    /// The folder id of directory key `dir` (no trailing `/`), and the ids above it.
    async fn dir(&self, dir: &str) -> Result<(String, Vec<String>), BackendError> {
        let root = self.root_id().await?;
        let mut id = root.clone();
        let mut above = vec![root];
        let mut walked = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            walked = if walked.is_empty() {
                part.to_string()
            } else {
                format!("{walked}/{part}")
            };
            if walked == TRASH_DIR && self.settings.show_trash {
                id = TRASH.to_string();
                above.push(id.clone());
                continue;
            }
            if let Some(known) = self.tree.dir_id(&walked) {
                if self.tree.folder(&id, true).is_some() || self.tree.folder(&known, true).is_some()
                {
                    id = known;
                    above.push(id.clone());
                    continue;
                }
            }
            let folder = self.folder(&id, true).await?;
            match folder.get(part) {
                Some(e) if e.kind == EntryKind::Folder && !above.iter().any(|a| a == e.id()) => {
                    id = e.id().to_string();
                }
                _ => {
                    return Err(BackendError::NotFound(format!(
                        "{}: no folder {walked}",
                        self.describe()
                    )))
                }
            }
            self.tree.learn_dir(&walked, &id);
            if walked.starts_with(TRASH_DIR) && self.settings.show_trash {
                self.trash.mark(&id);
            }
            above.push(id.clone());
        }
        above.pop();
        Ok((id, above))
    }

    /// The entry of `key` from the listing kept of its folder, whatever its age, when the
    /// changes feed keeps listings right (it drops those a change touches): reads of a file
    /// never wait for its whole folder to be listed again.
    fn kept_entry(&self, key: &str) -> Option<Entry> {
        self.settings.poll_interval?;
        let (parent, name) = split(key.trim_end_matches('/'));
        let folder = self.tree.folder(&self.tree.dir_id(parent)?, false)?;
        folder.get(name).cloned()
    }

    /// The entry of key `key`, and its folder's id.
    async fn entry(&self, key: &str) -> Result<(Entry, String), BackendError> {
        let key = key.trim_end_matches('/');
        let (parent, name) = split(key);
        let (pid, _) = self.dir(parent).await?;
        let folder = self.folder(&pid, true).await?;
        match folder.get(name) {
            Some(e) => Ok((e.clone(), pid)),
            None => Err(BackendError::NotFound(format!(
                "{}: no file {key}",
                self.describe()
            ))),
        }
    }

    fn info(&self, key: &str, e: &Entry) -> ObjectInfo {
        ObjectInfo {
            size_unknown: matches!(e.kind, EntryKind::Doc { .. }),
            key: key.to_string(),
            size: match e.kind {
                EntryKind::Doc { .. } => 0,
                _ => e.file.size(),
            },
            mtime: e.file.mtime(),
            etag: e.file.etag(),
            meta: match e.kind {
                // Read-only, whatever the mount's modes say.
                EntryKind::Doc { .. } => PosixMeta {
                    mode: Some(libc::S_IFREG | 0o444),
                    ..e.file.meta()
                },
                _ => e.file.meta(),
            },
        }
    }
}

/// `("a/b", "c")` for `"a/b/c"`, `("", "c")` for `"c"`.
fn split(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

#[async_trait]
impl Backend for DriveBackend {
    fn describe(&self) -> String {
        let label = if self.settings.label == "default" {
            ""
        } else {
            &self.settings.label
        };
        format!("gdrive://{label}/{}", self.settings.path)
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, BackendError> {
        let (e, _) = self.entry(key).await?;
        if e.kind == EntryKind::Folder {
            return Err(BackendError::NotFound(format!("{key} is a folder")));
        }
        Ok(self.info(key, &e))
    }

    async fn list(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, BackendError> {
        let (id, above) = self.dir(prefix.trim_end_matches('/')).await?;
        let folder = match (token, self.tree.folder(&id, true)) {
            // A probe (a lookup, an emptiness check) is answered from a fresh listing or one
            // small request.
            (None, None) if max_keys < 16 => return self.probe(prefix, &id, max_keys).await,
            (None, _) => {
                self.tree.forget(&id);
                self.folder(&id, false).await?
            }
            (Some(_), Some(f)) => f,
            (Some(_), None) => self.folder(&id, false).await?,
        };
        // The token is the last name returned: pages stay right while the listing changes.
        let start = token.map_or(0, |t| {
            folder.entries.partition_point(|e| e.name.as_str() <= t)
        });
        let mut page = ListPage {
            marker: true,
            ..Default::default()
        };
        let end = (start + max_keys.max(1)).min(folder.entries.len());
        for e in &folder.entries[start..end] {
            match e.kind {
                EntryKind::Folder if above.iter().any(|a| a == e.id()) || e.id() == id => {}
                EntryKind::Folder => page.prefixes.push(format!("{prefix}{}/", e.name)),
                _ => page
                    .objects
                    .push(self.info(&format!("{prefix}{}", e.name), e)),
            }
        }
        if prefix.is_empty() && start == 0 && self.settings.show_trash {
            page.prefixes.insert(0, format!("{TRASH_DIR}/"));
        }
        if end < folder.entries.len() {
            page.next_token = folder
                .entries
                .get(end.wrapping_sub(1))
                .map(|e| e.name.clone());
        }
        Ok(page)
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        let e = match self.kept_entry(key) {
            Some(e) => e,
            None => self.entry(key).await?.0,
        };
        if let Some(want) = etag {
            if e.file.etag().as_deref() != Some(want) {
                return Err(BackendError::Changed(format!(
                    "{key}: changed on Google Drive"
                )));
            }
        }
        match &e.kind {
            EntryKind::Doc { mime } => self.export_range(&e, mime, range).await,
            EntryKind::Folder => Err(BackendError::NotFound(format!("{key} is a folder"))),
            EntryKind::File => self.download(key, &e, range).await,
        }
    }

    async fn put(
        &self,
        key: &str,
        data: Bytes,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        self.upload_bytes(key, data, meta).await
    }

    async fn put_file(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        _part_size: u64,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        self.upload_file(key, file, size, meta).await
    }

    async fn put_marker(&self, dir: &str, meta: &PosixMeta) -> Result<(), BackendError> {
        self.make_folder(dir.trim_end_matches('/'), meta)
            .await
            .map(|_| ())
    }

    async fn delete_marker(&self, dir: &str) -> Result<(), BackendError> {
        match self.entry(dir).await {
            Ok((e, pid)) if e.kind == EntryKind::Folder => self.remove(&e, &pid, dir).await,
            Ok(_) | Err(BackendError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BackendError> {
        self.copy_file(from, to).await
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        match self.entry(key).await {
            Ok((e, pid)) => self.remove(&e, &pid, key).await,
            Err(BackendError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn renames(&self) -> bool {
        true
    }

    fn space(&self) -> Option<super::Space> {
        *self.quota.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn change_interval(&self) -> Option<Duration> {
        self.settings.poll_interval
    }

    async fn changes(&self) -> Result<Vec<String>, BackendError> {
        self.read_changes().await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), BackendError> {
        self.move_entry(from, to).await
    }
}
