//! The handle's synchronous methods: OAuth helpers, counters and faults, seeding and
//! inspection. Seeding methods act like another Drive client would (each change is versioned
//! and appears in the changes feed). They panic on misuse (unknown ids, a file as parent),
//! which is a bug in the test, never something a request can cause.

use super::export;
use super::faults::{Fault, Op};
use super::oauth::{JwtClaims, DRIVE_SCOPE};
use super::store::{is_google_type, FileSnapshot, NewFile, ShortcutDetails, ROOT_ID, SHORTCUT};
use super::FakeDrive;
use bytes::Bytes;
use std::time::SystemTime;

impl FakeDrive {
    // ---------------------------------------------------------------- OAuth

    /// Mints a refresh token (scope `…/auth/drive`), for tests that write token files directly.
    pub fn issue_refresh_token(&self) -> String {
        self.shared.auth().mint_refresh(DRIVE_SCOPE)
    }

    /// A token file for this server: Google's `authorized_user` JSON with a fresh refresh
    /// token and this server's token endpoint.
    pub fn token_file_json(&self) -> String {
        serde_json::json!({
            "type": "authorized_user", "client_id": "test-client", "client_secret": "s",
            "refresh_token": self.issue_refresh_token(),
            "token_uri": format!("{}/token", self.url()),
        })
        .to_string()
    }

    /// Mints an access token valid for `token_ttl`.
    pub fn issue_access_token(&self) -> String {
        let ttl = self.shared.opts.token_ttl;
        self.shared.auth().mint_access(ttl)
    }

    /// The access tokens issued (and not expired by the test) so far.
    pub fn access_tokens(&self) -> Vec<String> {
        self.shared.auth().live_access()
    }

    /// Every access token issued so far becomes invalid (requests get 401); the static token
    /// keeps working.
    pub fn expire_access_tokens(&self) {
        self.shared.auth().expire_access();
    }

    /// Every refresh token issued so far becomes invalid (`invalid_grant`).
    pub fn revoke_refresh_tokens(&self) {
        self.shared.auth().revoke_refresh();
    }

    /// Number of `POST /token` requests (all grants).
    pub fn token_requests(&self) -> usize {
        self.shared.auth().requests()
    }

    /// Number of `POST /token` requests with `grant_type=grant` (`refresh_token`,
    /// `authorization_code`, `urn:ietf:params:oauth:grant-type:jwt-bearer`).
    pub fn token_requests_for(&self, grant: &str) -> usize {
        self.shared.auth().requests_for(grant)
    }

    /// Claims of the last accepted JWT-bearer assertion (`iss`, `sub`, `scope`, …).
    pub fn last_jwt_claims(&self) -> Option<JwtClaims> {
        self.shared.auth().last_jwt()
    }

    // ---------------------------------------------------------------- counters and faults

    /// Requests of kind `op` since the start or the last `reset_counts` (`Op::Any`: all).
    pub fn op_count(&self, op: Op) -> usize {
        self.shared.faults.count(op)
    }

    pub fn reset_counts(&self) {
        self.shared.faults.reset_counts();
    }

    /// Answers the next matching requests with an error (see [`Fault`]).
    pub fn inject(&self, fault: Fault) {
        self.shared.faults.inject(fault);
    }

    /// Removes every injected fault and a pending chunk drop.
    pub fn clear_faults(&self) {
        self.shared.faults.clear();
    }

    /// The next resumable chunk stores only its first `after_bytes` (rounded down to a
    /// multiple of 256 KiB), then the connection is closed without an answer.
    pub fn drop_next_chunk(&self, after_bytes: usize) {
        self.shared.faults.set_drop_chunk(after_bytes);
    }

    /// Every resumable session answers 404 from now on.
    pub fn expire_upload_sessions(&self) {
        self.shared.uploads().expire_all();
    }

    /// Resumable sessions neither completed nor expired.
    pub fn active_upload_sessions(&self) -> usize {
        self.shared.uploads().active()
    }

    // ---------------------------------------------------------------- seeding

    /// The real id of My Drive's root folder (the alias `root` also works everywhere).
    pub fn root_id(&self) -> String {
        ROOT_ID.to_string()
    }

    /// Creates a shared drive; its root folder's id is the drive id.
    pub fn create_shared_drive(&self, name: &str) -> String {
        self.shared.store().create_drive(name)
    }

    fn add(&self, parent: &str, nf: impl FnOnce(String) -> NewFile) -> String {
        let mut store = self.shared.store();
        let p = store
            .node(parent)
            .unwrap_or_else(|| panic!("fake drive: no parent {parent}"));
        assert!(p.is_folder(), "fake drive: parent {parent} is not a folder");
        let pid = p.id.clone();
        store.insert(nf(pid))
    }

    pub fn create_folder(&self, parent: &str, name: &str) -> String {
        self.add(parent, |p| NewFile::new(name, super::FOLDER, Some(p)))
    }

    /// A binary file (`application/octet-stream`).
    pub fn create_file(&self, parent: &str, name: &str, content: &[u8]) -> String {
        self.create_file_typed(parent, name, "application/octet-stream", content)
    }

    /// A binary file with a given MIME type.
    pub fn create_file_typed(
        &self,
        parent: &str,
        name: &str,
        mime: &str,
        content: &[u8],
    ) -> String {
        self.add(parent, |p| {
            let mut nf = NewFile::new(name, mime, Some(p));
            nf.content = Bytes::copy_from_slice(content);
            nf
        })
    }

    /// A binary file with a given createdTime (which is also its modifiedTime).
    pub fn create_file_at(
        &self,
        parent: &str,
        name: &str,
        content: &[u8],
        created: SystemTime,
    ) -> String {
        self.add(parent, |p| {
            let mut nf = NewFile::new(name, "application/octet-stream", Some(p));
            nf.content = Bytes::copy_from_slice(content);
            nf.created = Some(created);
            nf
        })
    }

    /// A Google Docs file (`mime` = `application/vnd.google-apps.document`, …) whose exports
    /// are made from `body`.
    pub fn create_doc(&self, parent: &str, name: &str, mime: &str, body: &[u8]) -> String {
        assert!(
            is_google_type(mime),
            "fake drive: {mime} is not a Google type"
        );
        self.add(parent, |p| {
            let mut nf = NewFile::new(name, mime, Some(p));
            nf.content = Bytes::copy_from_slice(body);
            nf
        })
    }

    /// A shortcut to `target` (which must exist).
    pub fn create_shortcut(&self, parent: &str, name: &str, target: &str) -> String {
        let t = self
            .file(target)
            .unwrap_or_else(|| panic!("fake drive: no shortcut target {target}"));
        self.add(parent, |p| {
            let mut nf = NewFile::new(name, SHORTCUT, Some(p));
            nf.shortcut = Some(ShortcutDetails {
                target_id: t.id,
                target_mime_type: t.mime_type,
            });
            nf
        })
    }

    fn existing(&self, id: &str) -> String {
        let store = self.shared.store();
        store
            .node(id)
            .map(|f| f.id.clone())
            .unwrap_or_else(|| panic!("fake drive: no file {id}"))
    }

    /// Moves `id` (and so its subtree) to the trash.
    pub fn trash(&self, id: &str) {
        let id = self.existing(id);
        self.shared.store().set_trashed(&id, true);
    }

    /// Restores `id` from the trash.
    pub fn untrash(&self, id: &str) {
        let id = self.existing(id);
        self.shared.store().set_trashed(&id, false);
    }

    /// Deletes `id` and its subtree for good.
    pub fn delete(&self, id: &str) {
        let id = self.existing(id);
        self.shared.store().remove(&id);
    }

    pub fn rename(&self, id: &str, name: &str) {
        let id = self.existing(id);
        self.shared.store().edit(&id, |f| f.name = name.to_string());
    }

    /// Makes `new_parent` the only parent of `id`.
    pub fn move_to(&self, id: &str, new_parent: &str) {
        let id = self.existing(id);
        let parent = self.existing(new_parent);
        self.shared.store().set_parents(&id, vec![parent]);
    }

    /// Replaces the content as another writer would: new size, md5, revision and version,
    /// modifiedTime now, and a change in the feed.
    pub fn set_content(&self, id: &str, content: &[u8]) {
        let id = self.existing(id);
        self.shared
            .store()
            .set_content(&id, Bytes::copy_from_slice(content), None);
    }

    /// Sets modifiedTime (bumps the version, records a change).
    pub fn set_modified_time(&self, id: &str, t: SystemTime) {
        let id = self.existing(id);
        self.shared
            .store()
            .edit(&id, |f| f.modified_time = super::http::truncate_ms(t));
    }

    /// Sets the storage quota limit in bytes.
    pub fn set_quota(&self, limit: u64) {
        self.shared.store().quota_limit = limit;
    }

    // ---------------------------------------------------------------- inspection

    /// Every field of the file, content included (None if it does not exist).
    pub fn file(&self, id: &str) -> Option<FileSnapshot> {
        self.shared.store().snapshot(id)
    }

    /// Children of `parent` that are not trashed, in listing order.
    pub fn children(&self, parent: &str) -> Vec<FileSnapshot> {
        let store = self.shared.store();
        store
            .children_keys(parent)
            .map(|keys| {
                keys.iter()
                    .filter_map(|(_, id)| store.snapshot(id))
                    .filter(|f| !f.trashed)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Children of `parent` named exactly `name` (case-sensitive), not trashed.
    pub fn find(&self, parent: &str, name: &str) -> Vec<FileSnapshot> {
        self.children(parent)
            .into_iter()
            .filter(|f| f.name == name)
            .collect()
    }

    /// Number of files (trashed ones included; roots excluded).
    pub fn count_files(&self) -> usize {
        self.shared.store().count_files()
    }

    /// What `GET /drive/v3/files/{id}/export?mimeType=mime` answers with. Panics when the
    /// export would fail.
    pub fn export_bytes(&self, id: &str, mime: &str) -> Vec<u8> {
        let f = self
            .file(id)
            .unwrap_or_else(|| panic!("fake drive: no file {id}"));
        export::export(&f.mime_type, &f.content, mime)
            .unwrap_or_else(|e| panic!("fake drive: export of {id} as {mime}: {}", e.message))
    }

    /// The changes feed's current start page token.
    pub fn start_page_token(&self) -> String {
        self.shared.store().next_change_seq().to_string()
    }
}
