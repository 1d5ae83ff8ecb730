//! Whether the store answers, and what the mount does while it does not (`-o offline=`).
//!
//! [`Connectivity`] is the one owner of that state: every request through [`Guarded`] reports
//! its outcome to it. A request that got no answer at all once its retries ran out (connection
//! refused, DNS failure, timeouts: [`BackendError::Unreachable`]) turns the mount offline; any
//! answer, even an error or a busy one, turns it online again. While offline, with
//! `offline=on`, requests are not sent: they fail at once with [`BackendError::Offline`], so an
//! uncached read costs no timeout, and the core serves what it has cached instead. The daemon
//! probes the store meanwhile ([`Guarded::probe`]) and the first answer ends it. The change
//! each way is logged once.

use super::{Backend, BackendError, ListPage, ObjectInfo, PartSource, PosixMeta, Precondition};
use super::{Space, Upload};
use crate::metrics::Metrics;
use async_trait::async_trait;
use bytes::Bytes;
use std::future::Future;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

#[derive(Debug, Clone)]
enum State {
    /// Answering, since the instant given (the mount's start, or the end of an outage).
    Online(Instant),
    /// Not answering since `since` (wall clock, for `status`) / `at`.
    Offline {
        since: SystemTime,
        at: Instant,
        why: String,
    },
}

/// The mount's view of whether its store answers.
#[derive(Debug)]
pub struct Connectivity {
    state: Mutex<State>,
    fail_fast: bool,
}

impl Connectivity {
    /// Online to start with. With `fail_fast` (`offline=on`) requests made while offline are
    /// not sent; without, every request is sent and only the state is kept (for `status`).
    pub fn new(fail_fast: bool) -> Arc<Self> {
        Arc::new(Connectivity {
            state: Mutex::new(State::Online(Instant::now())),
            fail_fast,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Since when the store has not answered, and why; `None` while it answers.
    pub fn offline_since(&self) -> Option<(SystemTime, String)> {
        match &*self.lock() {
            State::Online(_) => None,
            State::Offline { since, why, .. } => Some((*since, why.clone())),
        }
    }

    /// Whether the store answered at the last request.
    pub fn is_online(&self) -> bool {
        matches!(*self.lock(), State::Online(_))
    }

    /// Before sending a request: when it may go, the instant it started.
    fn admit(&self) -> Result<Instant, BackendError> {
        match &*self.lock() {
            State::Offline { since, why, .. } if self.fail_fast => {
                let since = chrono::DateTime::<chrono::Utc>::from(*since);
                Err(BackendError::Offline(format!(
                    "the store has not answered since {} ({why}); only cached data is served until it answers again",
                    since.format("%Y-%m-%d %H:%M:%S UTC")
                )))
            }
            _ => Ok(Instant::now()),
        }
    }

    /// After a request that started at `started`: what its outcome says about the store.
    fn observe<T>(&self, started: Instant, result: &Result<T, BackendError>) {
        let mut state = self.lock();
        match (result, &*state) {
            (Err(BackendError::Unreachable(why)), State::Online(since)) => {
                // A request sent before the store came back says nothing about it now.
                if started < *since {
                    return;
                }
                let why = why.clone();
                if self.fail_fast {
                    tracing::warn!(error = %why, "the store does not answer: serving cached listings, attributes and blocks, failing uncached reads at once (ENETUNREACH) and journaling closed writes until it answers again (-o offline=off fails every operation instead)");
                } else {
                    tracing::warn!(error = %why, "the store does not answer; operations that need it fail until it answers again (-o offline=off)");
                }
                *state = State::Offline {
                    since: SystemTime::now(),
                    at: Instant::now(),
                    why,
                };
            }
            (Err(BackendError::Unreachable(_) | BackendError::Offline(_)), _) => {}
            (_, State::Offline { at, .. }) => {
                tracing::info!(after = ?Duration::from_secs(at.elapsed().as_secs()), "the store answers again");
                *state = State::Online(Instant::now());
            }
            (_, State::Online(_)) => {}
        }
    }

    /// Run `request` unless the store is known not to answer, and note its outcome. A
    /// request that timed out may only have asked for something slow (one stalled object):
    /// the store counts as down only if a one-key listing through `prober` gets no answer
    /// within [`CONFIRM`] either.
    async fn guard<T>(
        &self,
        prober: &dyn Backend,
        request: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        let started = self.admit()?;
        let result = request.await;
        if let Err(BackendError::Unreachable(why)) = &result {
            if timed_out(why) && answers(prober).await {
                tracing::debug!(error = %why, "a request timed out, but the store answers");
                return result;
            }
        }
        self.observe(started, &result);
        result
    }
}

/// How long a store whose request timed out has to answer a one-key listing.
const CONFIRM: Duration = Duration::from_secs(2);

/// Whether an error says a request timed out (rather than found no server at all).
fn timed_out(why: &str) -> bool {
    // Not "timeout": object_store's every retry error names its `retry_timeout`.
    ["timed out", "no answer within"]
        .iter()
        .any(|t| why.contains(t))
}

/// Whether `backend` answers a one-key listing of the mounted root within [`CONFIRM`].
async fn answers(backend: &dyn Backend) -> bool {
    match tokio::time::timeout(CONFIRM, backend.list("", None, 1)).await {
        Ok(Err(BackendError::Unreachable(_))) | Err(_) => false,
        Ok(_) => true,
    }
}

/// A backend whose requests go through a [`Connectivity`].
#[derive(Debug)]
pub struct Guarded {
    inner: Arc<dyn Backend>,
    conn: Arc<Connectivity>,
    metrics: Arc<Metrics>,
}

/// Count one request `op` that started at `started` in `metrics`, by outcome.
fn record<T>(metrics: &Metrics, op: &'static str, started: Instant, r: &Result<T, BackendError>) {
    let outcome = match r {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    };
    metrics.backend.record(op, outcome, started.elapsed());
}

impl Guarded {
    /// `inner`, reporting to (and, while offline, held back by) `conn`, each request
    /// counted in `metrics`.
    pub fn new(inner: Arc<dyn Backend>, conn: Arc<Connectivity>, metrics: Arc<Metrics>) -> Self {
        Guarded {
            inner,
            conn,
            metrics,
        }
    }

    /// Send `request` (the inner backend's `op`) through the connectivity guard, and count it.
    async fn send<T>(
        &self,
        op: &'static str,
        request: impl Future<Output = Result<T, BackendError>>,
    ) -> Result<T, BackendError> {
        let started = Instant::now();
        let r = self.conn.guard(self.inner.as_ref(), request).await;
        record(&self.metrics, op, started, &r);
        r
    }

    /// Ask the store one cheap question (a one-key listing of the mounted root), sent even
    /// while offline; whether it answered. Its outcome updates the state like any request's.
    pub async fn probe(&self) -> bool {
        let started = Instant::now();
        let result = self.inner.list("", None, 1).await;
        self.conn.observe(started, &result);
        !matches!(result, Err(BackendError::Unreachable(_)))
    }
}

/// A multipart upload whose parts report to a [`Connectivity`] too.
#[derive(Debug)]
struct GuardedUpload {
    inner: Box<dyn Upload>,
    conn: Arc<Connectivity>,
    prober: Arc<dyn Backend>,
    metrics: Arc<Metrics>,
}

#[async_trait]
impl Upload for GuardedUpload {
    async fn put_part(&mut self, data: Vec<Bytes>) -> Result<(), BackendError> {
        let started = Instant::now();
        let r = self
            .conn
            .guard(self.prober.as_ref(), self.inner.put_part(data))
            .await;
        record(&self.metrics, "put_part", started, &r);
        r
    }

    async fn complete(self: Box<Self>, size: u64) -> Result<ObjectInfo, BackendError> {
        let GuardedUpload {
            inner,
            conn,
            prober,
            metrics,
        } = *self;
        let started = Instant::now();
        let r = conn.guard(prober.as_ref(), inner.complete(size)).await;
        record(&metrics, "complete_upload", started, &r);
        r
    }

    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}

#[async_trait]
impl Backend for Guarded {
    fn describe(&self) -> String {
        self.inner.describe()
    }

    async fn head(&self, key: &str) -> Result<ObjectInfo, BackendError> {
        self.send("head", self.inner.head(key)).await
    }

    async fn list(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, BackendError> {
        self.send("list", self.inner.list(prefix, token, max_keys))
            .await
    }

    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        self.send("get_range", self.inner.get_range(key, range, etag))
            .await
    }

    async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<super::ByteStream, BackendError> {
        self.send("get_range", self.inner.get_range_stream(key, range, etag))
            .await
    }

    async fn put(
        &self,
        key: &str,
        data: Bytes,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        self.send("put", self.inner.put(key, data, meta)).await
    }

    async fn start_upload(
        &self,
        key: &str,
        meta: &PosixMeta,
    ) -> Result<Box<dyn Upload>, BackendError> {
        let inner = self
            .send("start_upload", self.inner.start_upload(key, meta))
            .await?;
        Ok(Box::new(GuardedUpload {
            inner,
            conn: self.conn.clone(),
            prober: self.inner.clone(),
            metrics: self.metrics.clone(),
        }))
    }

    async fn put_file(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        part_size: u64,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        self.send(
            "put_file",
            self.inner.put_file(key, file, size, part_size, meta),
        )
        .await
    }

    async fn put_file_if(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        part_size: u64,
        meta: &PosixMeta,
        cond: &Precondition,
    ) -> Result<ObjectInfo, BackendError> {
        self.send(
            "put_file_if",
            self.inner
                .put_file_if(key, file, size, part_size, meta, cond),
        )
        .await
    }

    fn max_parts(&self) -> u64 {
        self.inner.max_parts()
    }

    fn addressable(&self, key: &str) -> Result<(), BackendError> {
        self.inner.addressable(key)
    }

    fn stores_metadata(&self) -> bool {
        self.inner.stores_metadata()
    }

    fn copies_parts(&self) -> bool {
        self.inner.copies_parts()
    }

    async fn put_file_reusing(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        parts: &[PartSource],
        etag: &str,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        self.send(
            "put_file_reusing",
            self.inner
                .put_file_reusing(key, file, size, parts, etag, meta),
        )
        .await
    }

    async fn put_marker(&self, dir: &str, meta: &PosixMeta) -> Result<(), BackendError> {
        self.send("put_marker", self.inner.put_marker(dir, meta))
            .await
    }

    async fn marker_meta(&self, dir: &str) -> Result<Option<PosixMeta>, BackendError> {
        self.send("marker_meta", self.inner.marker_meta(dir)).await
    }

    async fn has_marker(&self, dir: &str) -> Result<Option<bool>, BackendError> {
        self.send("has_marker", self.inner.has_marker(dir)).await
    }

    async fn delete_marker(&self, dir: &str) -> Result<(), BackendError> {
        self.send("delete_marker", self.inner.delete_marker(dir))
            .await
    }

    async fn copy(&self, from: &str, to: &str) -> Result<(), BackendError> {
        self.send("copy", self.inner.copy(from, to)).await
    }

    async fn copy_with_meta(
        &self,
        from: &str,
        to: &str,
        meta: &PosixMeta,
    ) -> Result<(), BackendError> {
        self.send("copy_with_meta", self.inner.copy_with_meta(from, to, meta))
            .await
    }

    fn metadata_fits(&self, pairs: &[(&'static str, String)]) -> bool {
        self.inner.metadata_fits(pairs)
    }

    async fn set_meta(
        &self,
        key: &str,
        meta: &PosixMeta,
        etag: &str,
    ) -> Result<Option<String>, BackendError> {
        self.send("set_meta", self.inner.set_meta(key, meta, etag))
            .await
    }

    async fn abort_stale_uploads(
        &self,
        older_than: Duration,
        keep: &std::collections::HashSet<String>,
    ) -> Result<usize, BackendError> {
        self.send(
            "abort_stale_uploads",
            self.inner.abort_stale_uploads(older_than, keep),
        )
        .await
    }

    fn space(&self) -> Option<Space> {
        self.inner.space()
    }

    fn change_interval(&self) -> Option<Duration> {
        self.inner.change_interval()
    }

    async fn changes(&self) -> Result<Vec<String>, BackendError> {
        self.send("changes", self.inner.changes()).await
    }

    fn renames(&self) -> bool {
        self.inner.renames()
    }

    async fn rename(&self, from: &str, to: &str) -> Result<(), BackendError> {
        self.send("rename", self.inner.rename(from, to)).await
    }

    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.send("delete", self.inner.delete(key)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::fault::{Fault, FaultBackend, Faulty, Op};
    use crate::backend::memory::MemoryBackend;

    fn backend() -> Arc<FaultBackend> {
        let mem = Arc::new(MemoryBackend::new());
        mem.insert("a", b"data".to_vec());
        FaultBackend::new(mem)
    }

    #[tokio::test]
    async fn no_answer_turns_offline_and_any_answer_back_online() {
        let fb = backend();
        let conn = Connectivity::new(true);
        let g = Guarded::new(Arc::new(Faulty(fb.clone())), conn.clone(), Metrics::new());
        assert!(g.head("a").await.is_ok());
        fb.inject(Op::Head, "a", Fault::Down, 1);
        assert!(matches!(
            g.head("a").await,
            Err(BackendError::Unreachable(_))
        ));
        assert!(conn.offline_since().is_some());
        // Not sent now: failed at once, whatever the store would say.
        let sent = fb.reached().len();
        assert!(matches!(g.head("a").await, Err(BackendError::Offline(_))));
        assert_eq!(fb.reached().len(), sent);
        assert!(matches!(
            g.head("missing").await,
            Err(BackendError::Offline(_))
        ));
        // The probe is sent, and its answer ends the outage.
        assert!(g.probe().await);
        assert!(conn.is_online());
        assert!(g.head("a").await.is_ok());
        // An answer that is an error is still an answer.
        assert!(matches!(
            g.head("missing").await,
            Err(BackendError::NotFound(_))
        ));
        assert!(conn.is_online());
    }

    #[tokio::test]
    async fn without_fail_fast_every_request_is_sent() {
        let fb = backend();
        let conn = Connectivity::new(false);
        let g = Guarded::new(Arc::new(Faulty(fb.clone())), conn.clone(), Metrics::new());
        fb.inject(Op::Head, "a", Fault::Down, 1);
        assert!(g.head("a").await.is_err());
        assert!(conn.offline_since().is_some());
        assert!(g.head("a").await.is_ok());
        assert!(conn.is_online());
    }

    #[tokio::test]
    async fn a_failure_of_a_request_sent_before_the_store_came_back_is_ignored() {
        let conn = Connectivity::new(true);
        let before = Instant::now();
        std::thread::sleep(Duration::from_millis(5));
        *conn.lock() = State::Online(Instant::now());
        conn.observe::<()>(before, &Err(BackendError::Unreachable("old".into())));
        assert!(conn.is_online());
    }
}
