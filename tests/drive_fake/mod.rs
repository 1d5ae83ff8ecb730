//! An in-process fake of the Google Drive v3 REST API, for tests and benchmarks.
//!
//! It follows Google's documented API (https://developers.google.com/drive/api/reference/rest/v3)
//! on the wire: the same URL layout (`/drive/v3/…`, `/upload/drive/v3/…`, `POST /token`,
//! `GET /o/oauth2/auth`), the same JSON shapes (int64 as strings, partial responses through
//! `fields`, Google's error documents), the resumable upload protocol, shared-drive rules and
//! the changes feed, so a client can be tested through real mounts against it.
//!
//! Include it from a test binary with
//! `#[path = "drive_fake/mod.rs"] mod drive_fake;` and start it with
//! [`FakeDrive::start`]. The server runs on its own thread with its own tokio runtime, so it
//! works from plain `#[test]` functions and from inside other runtimes; it stops when the
//! handle is dropped. The handle (see `handle.rs`) seeds and inspects the state, issues
//! tokens, counts requests and injects faults, all synchronously.
//!
//! Where it simplifies (everything else follows the documented behaviour):
//! - No permissions, sharing, revisions, comments, watch channels, `generateIds`, batch
//!   requests or HTTP/2. Shared drives have no members or roles: `supportsAllDrives=true` is
//!   all it takes.
//! - `orderBy` is ignored: listings are ordered by (createdTime, id), which keeps page tokens
//!   stable while files are added. `spaces=appDataFolder` is always empty.
//! - `name contains 'x'` matches a case-insensitive prefix of the name or of a word in it
//!   (Drive documents prefix matching); `fullText contains` is a substring of name,
//!   description or content. Scopes are not enforced and JWT signatures are not verified.
//! - Exports are synthetic (`EXPORT {mime}\n` + the doc's body). The quota counts every
//!   binary byte, shared drives included. Metadata-only updates leave modifiedTime alone
//!   unless the request sets it. Resumable sessions never expire unless told to.
//!
//! Module map: `server` (accept loop, pipeline, routes), `oauth` (tokens), `files`
//! (metadata routes), `upload` + `multipart` (uploads), `changes`, `export`, `about`,
//! `meta` (request metadata and the create/update/copy rules), `query` (the `q` language),
//! `fields` (partial responses), `render` (File JSON), `store` (state), `faults`, `http`,
//! `ids`.

#![allow(dead_code)]

mod about;
mod changes;
mod export;
mod faults;
mod fields;
mod files;
mod handle;
mod http;
mod ids;
mod meta;
mod multipart;
mod oauth;
mod query;
mod render;
mod server;
mod store;
mod upload;

// Re-exports for the test binaries; not every binary uses each.
#[allow(unused_imports)]
pub use faults::{Fault, Op};
#[allow(unused_imports)]
pub use oauth::JwtClaims;
#[allow(unused_imports)]
pub use store::{
    FileSnapshot, ShortcutDetails, DOCUMENT, DRAWING, FOLDER, PRESENTATION, SHORTCUT, SPREADSHEET,
};

use http::{ApiError, Params};
use oauth::AuthState;
use serde_json::Value;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use store::Store;
use upload::Sessions;

/// How the fake behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// Lifetime of the access tokens `/token` issues (`expires_in`). Default 3600 s.
    pub token_ttl: Duration,
    /// A bearer token that is always accepted, whatever the OAuth state.
    pub static_token: Option<String>,
    /// Time to first byte: every request waits this long (asleep, no CPU) before it is
    /// answered. Default zero.
    pub ttfb: Duration,
    /// Storage quota in bytes (`about.storageQuota.limit`); uploads beyond it are 403
    /// `storageQuotaExceeded`. Default 15 GiB, a free account's.
    pub quota_limit: u64,
    /// When set, the token endpoint and the authorization page require this client id.
    pub client_id: Option<String>,
    /// When set, the token endpoint requires this client secret.
    pub client_secret: Option<String>,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The address clients reach it at, when that is not its own (a proxy in front of it):
    /// resumable upload sessions point there.
    pub public_url: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token_ttl: Duration::from_secs(3600),
            static_token: None,
            ttfb: Duration::ZERO,
            quota_limit: 15 << 30,
            client_id: None,
            client_secret: None,
            port: 0,
            public_url: None,
        }
    }
}

/// State shared by the server tasks and the handle.
pub(crate) struct Shared {
    opts: Options,
    /// `http://127.0.0.1:PORT`
    base: String,
    store: Mutex<Store>,
    auth: Mutex<AuthState>,
    faults: faults::Faults,
    uploads: Mutex<Sessions>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere must not take the whole fake down with poisoned locks.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }

    fn auth(&self) -> MutexGuard<'_, AuthState> {
        lock(&self.auth)
    }

    fn uploads(&self) -> MutexGuard<'_, Sessions> {
        lock(&self.uploads)
    }

    /// Whether a request with this bearer token may use the API.
    fn authorized(&self, token: Option<&str>) -> bool {
        let Some(t) = token else {
            return false;
        };
        self.opts.static_token.as_deref() == Some(t) || self.auth().valid(t)
    }

    /// The full File JSON of `f`.
    fn file_value(&self, store: &Store, f: &FileSnapshot) -> Value {
        render::file_json(f, &self.base, store.is_root(&f.id))
    }

    /// The file `id` if the request may see it (`supportsAllDrives` for shared drives).
    fn visible_file(&self, id: &str, p: &Params) -> Result<FileSnapshot, ApiError> {
        let all = p.flag("supportsAllDrives", false)?;
        meta::visible(&self.store(), id, all)
    }
}

/// A running fake Drive server. Dropping it stops the server.
pub struct FakeDrive {
    shared: Arc<Shared>,
    port: u16,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl FakeDrive {
    /// Binds 127.0.0.1 (`opts.port`, 0 = any) and serves on a background thread with its own
    /// runtime. Returns once the socket accepts connections.
    pub fn start(opts: Options) -> FakeDrive {
        let listener = std::net::TcpListener::bind(("127.0.0.1", opts.port))
            .unwrap_or_else(|e| panic!("fake drive: bind 127.0.0.1:{}: {e}", opts.port));
        listener
            .set_nonblocking(true)
            .expect("fake drive: non-blocking listener");
        let port = listener
            .local_addr()
            .expect("fake drive: local address")
            .port();
        let shared = Arc::new(Shared {
            base: opts
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}")),
            store: Mutex::new(Store::new(opts.quota_limit)),
            auth: Mutex::new(AuthState::default()),
            faults: faults::Faults::default(),
            uploads: Mutex::new(Sessions::default()),
            opts,
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let server_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("fake-drive-{port}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name("fake-drive-worker")
                    .enable_all()
                    .build()
                    .expect("fake drive: tokio runtime");
                rt.block_on(server::serve(listener, server_shared, rx));
                rt.shutdown_timeout(Duration::from_millis(200));
            })
            .expect("fake drive: spawn server thread");
        FakeDrive {
            shared,
            port,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:PORT` (API at `/drive/v3`, uploads at `/upload/drive/v3`, token
    /// endpoint at `/token`, authorization page at `/o/oauth2/auth`).
    pub fn url(&self) -> String {
        self.shared.base.clone()
    }

    /// The options it was started with.
    pub fn options(&self) -> &Options {
        &self.shared.opts
    }
}

impl Drop for FakeDrive {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
