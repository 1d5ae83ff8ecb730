//! The requests behind reads, deletes, copies, moves and new folders, and how each one
//! updates the kept listings so that the mount sees its own changes at once.

use super::file::{self, DriveFile, FOLDER};
use super::tree::{Entry, EntryKind};
use super::{names, split, DeleteMode, DriveBackend};
use crate::backend::{BackendError, ListPage, ObjectInfo, PosixMeta};
use bytes::Bytes;
use reqwest::Method;
use std::ops::Range;

impl DriveBackend {
    /// Folder listing `pid`, if kept, with `add` put in and `removed` (an own id) taken out.
    pub(super) fn patch_folder(
        &self,
        pid: &str,
        add: Option<(DriveFile, Option<String>)>,
        removed: Option<&str>,
    ) {
        if let Some(f) = self.tree.folder(pid, false) {
            let edited = f.edited(add, removed, &|f| self.classify(f));
            self.tree.keep(std::sync::Arc::new(edited));
        }
    }

    /// A small listing of folder `id` (a lookup's or an emptiness check's), without names
    /// told apart.
    pub(super) async fn probe(
        &self,
        prefix: &str,
        id: &str,
        max_keys: usize,
    ) -> Result<ListPage, BackendError> {
        let (files, more) = self.list_children(id, Some(max_keys.max(1))).await?;
        let mut page = ListPage {
            marker: true,
            ..Default::default()
        };
        for f in files {
            let Some((kind, name)) = self.classify(&f).or_else(|| {
                f.is_shortcut()
                    .then(|| (EntryKind::File, names::display(&f.name)))
            }) else {
                continue;
            };
            match kind {
                EntryKind::Folder => page.prefixes.push(format!("{prefix}{name}/")),
                _ => page.objects.push(ObjectInfo {
                    size_unknown: f.is_google_doc(),
                    key: format!("{prefix}{name}"),
                    size: f.size(),
                    mtime: f.mtime(),
                    etag: f.etag(),
                    meta: f.meta(),
                }),
            }
        }
        if more {
            // Only whether there is anything matters here; a complete listing comes from the
            // first page of a real one.
            page.next_token = Some("0".into());
        }
        Ok(page)
    }

    /// Bytes `range` of binary file `e` (a short answer is an error, never content).
    pub(super) async fn download(
        &self,
        key: &str,
        e: &Entry,
        range: Range<u64>,
    ) -> Result<Bytes, BackendError> {
        let size = e.file.size();
        let end = range.end.min(size);
        if range.start >= end {
            return Ok(Bytes::new());
        }
        let call = self
            .call(
                Method::GET,
                self.api_url(&format!("files/{}", e.id())),
                format!("read {key}"),
            )
            .q("alt", "media")
            .h("range", format!("bytes={}-{}", range.start, end - 1));
        let r = self.api.send(&call).await?;
        let whole = r.status().as_u16() == 200;
        let body = r.bytes().await.map_err(|err| {
            BackendError::Unreachable(format!("read {key}: {}", super::api::why(&err)))
        })?;
        let body = if whole && body.len() as u64 == size {
            body.slice(range.start as usize..end as usize)
        } else {
            body
        };
        if body.len() as u64 != end - range.start {
            return Err(BackendError::Unreachable(format!(
                "read {key}: Google Drive sent {} bytes of {}",
                body.len(),
                end - range.start
            )));
        }
        Ok(body)
    }

    /// Trash or delete entry `e` of folder `pid`.
    pub(super) async fn remove(&self, e: &Entry, pid: &str, key: &str) -> Result<(), BackendError> {
        let url = self.api_url(&format!("files/{}", e.own_id()));
        let r = match self.settings.delete {
            DeleteMode::Trash => self
                .api
                .send(
                    &self
                        .call(Method::PATCH, url, format!("trash {key}"))
                        .q("fields", "id")
                        .json(&serde_json::json!({"trashed": true})),
                )
                .await
                .map(|_| ()),
            DeleteMode::Permanent => self
                .api
                .send(&self.call(Method::DELETE, url, format!("delete {key}")))
                .await
                .map(|_| ()),
        };
        match r {
            Ok(()) | Err(BackendError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
        self.patch_folder(pid, None, Some(e.own_id()));
        if e.kind == EntryKind::Folder {
            self.tree.forget_dir(key.trim_end_matches('/'));
            self.tree.forget(e.id());
        }
        Ok(())
    }

    /// Server-side copy of file `from` to `to` (into an existing folder).
    pub(super) async fn copy_file(&self, from: &str, to: &str) -> Result<(), BackendError> {
        let (e, _) = self.entry(from).await?;
        let (parent, name) = split(to);
        let (pid, _) = self.dir(parent).await?;
        self.replace_existing(to).await?;
        let body = serde_json::json!({"name": names::to_drive(name), "parents": [pid]});
        let f: DriveFile = self
            .api
            .json(
                &self
                    .call(
                        Method::POST,
                        self.api_url(&format!("files/{}/copy", e.id())),
                        format!("copy {from} to {to}"),
                    )
                    .q("fields", file::FIELDS)
                    .json(&body),
            )
            .await?;
        self.patch_folder(&pid, Some((f, None)), None);
        Ok(())
    }

    /// Remove what `to` names now, so that a move or copy replaces it (Drive would keep both).
    async fn replace_existing(&self, to: &str) -> Result<(), BackendError> {
        match self.entry(to).await {
            Ok((e, pid)) => self.remove(&e, &pid, to).await,
            Err(BackendError::NotFound(_)) => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Move (rename) file or folder `from` to `to`: one metadata request, whatever it holds.
    pub(super) async fn move_entry(&self, from: &str, to: &str) -> Result<(), BackendError> {
        let dir = from.ends_with('/');
        let (from, to) = (from.trim_end_matches('/'), to.trim_end_matches('/'));
        let (e, old_pid) = self.entry(from).await?;
        let (parent, name) = split(to);
        let (new_pid, _) = self.dir(parent).await?;
        self.replace_existing(to).await?;
        let mut call = self
            .call(
                Method::PATCH,
                self.api_url(&format!("files/{}", e.own_id())),
                format!("move {from} to {to}"),
            )
            .q("fields", file::FIELDS);
        if new_pid != old_pid {
            call = call
                .q("addParents", new_pid.clone())
                .q("removeParents", old_pid.clone());
        }
        let drive_name = match &e.kind {
            // A document keeps its Drive name unless the extension part changed.
            EntryKind::Doc { .. } if names::to_drive(name) == names::to_drive(&e.name) => {
                e.file.name.clone()
            }
            _ => names::to_drive(name),
        };
        let moved: DriveFile = self
            .api
            .json(&call.json(&serde_json::json!({"name": drive_name})))
            .await?;
        let shown = match &e.shortcut {
            Some(s) => {
                let mut t = e.file.clone();
                t.name = moved.name.clone();
                t.parents = moved.parents.clone();
                (t, Some(s.clone()))
            }
            None => (moved, None),
        };
        self.patch_folder(&old_pid, None, Some(e.own_id()));
        self.patch_folder(&new_pid, Some(shown), None);
        if dir || e.kind == EntryKind::Folder {
            self.tree.forget_dir(from);
            self.tree.forget_dir(to);
        }
        Ok(())
    }

    /// The folder of directory key `dir`, created (with its parents) when missing; its
    /// attributes are set to `meta`.
    pub(super) async fn make_folder(
        &self,
        dir: &str,
        meta: &PosixMeta,
    ) -> Result<String, BackendError> {
        if dir.is_empty() {
            return self.root_id().await;
        }
        match self.entry(dir).await {
            Ok((e, _)) if e.kind == EntryKind::Folder => {
                if !meta.is_empty() {
                    self.set_properties(e.own_id(), meta, dir).await?;
                }
                return Ok(e.id().to_string());
            }
            Ok(_) => {
                return Err(BackendError::Other(format!(
                    "{dir}: a file has that name, not a folder"
                )))
            }
            Err(BackendError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
        let (parent, name) = split(dir);
        let pid = Box::pin(self.make_folder(parent, &PosixMeta::default())).await?;
        let body = serde_json::json!({
            "name": names::to_drive(name), "mimeType": FOLDER, "parents": [pid],
            "appProperties": properties(meta),
        });
        let f: DriveFile = self
            .api
            .json(
                &self
                    .call(
                        Method::POST,
                        self.api_url("files"),
                        format!("create folder {dir}"),
                    )
                    .q("fields", file::FIELDS)
                    .json(&body),
            )
            .await?;
        let id = f.id.clone();
        self.patch_folder(&pid, Some((f, None)), None);
        self.tree.learn_dir(dir, &id);
        Ok(id)
    }

    async fn set_properties(
        &self,
        id: &str,
        meta: &PosixMeta,
        key: &str,
    ) -> Result<(), BackendError> {
        let body = serde_json::json!({"appProperties": properties(meta)});
        self.api
            .send(
                &self
                    .call(
                        Method::PATCH,
                        self.api_url(&format!("files/{id}")),
                        format!("set attributes of {key}"),
                    )
                    .q("fields", "id")
                    .json(&body),
            )
            .await
            .map(|_| ())
    }
}

/// `meta` as `appProperties`.
pub(super) fn properties(meta: &PosixMeta) -> serde_json::Value {
    serde_json::Value::Object(
        meta.to_pairs()
            .into_iter()
            .map(|(k, v)| (k.to_string(), serde_json::Value::String(v)))
            .collect(),
    )
}
