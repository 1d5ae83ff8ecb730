//! A backend that wraps another and fails, delays or holds any operation on chosen keys, and
//! records what reached the store: the write path's tests use it to break every ordering
//! between a close, a rename, an unlink and the server.

use super::{Backend, BackendError, ListPage, ObjectInfo, PartSource, PosixMeta, Upload};
use async_trait::async_trait;
use bytes::Bytes;
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One kind of backend operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// HEAD.
    Head,
    /// LIST.
    List,
    /// A ranged GET.
    Get,
    /// A whole upload (`put`, `put_file`, `put_file_reusing`, a marker).
    Put,
    /// One part of a streaming upload.
    Part,
    /// The completion of a streaming upload.
    Complete,
    /// A server-side copy.
    Copy,
    /// A delete (of an object or a marker).
    Delete,
}

/// What happens to a matching operation.
#[derive(Debug, Clone)]
pub enum Fault {
    /// It fails as a server that answers it is failing (503), without reaching the store.
    Fail,
    /// It fails as a server that does not answer (connection refused), without reaching
    /// the store.
    Down,
    /// It waits this long first.
    Delay(Duration),
    /// It signals `reached`, then waits for `release` before going on.
    Hold {
        /// Notified once the operation is waiting.
        reached: Arc<tokio::sync::Notify>,
        /// Lets it go on.
        release: Arc<tokio::sync::Notify>,
    },
}

#[derive(Debug)]
struct Rule {
    op: Op,
    needle: String,
    fault: Fault,
    times: usize,
}

/// See the module documentation.
#[derive(Debug)]
pub struct FaultBackend {
    inner: Arc<dyn Backend>,
    rules: Mutex<Vec<Rule>>,
    reached: Mutex<Vec<(Op, String)>>,
    injected: std::sync::atomic::AtomicU64,
}

impl FaultBackend {
    /// Wrap `inner`, with no faults yet.
    pub fn new(inner: Arc<dyn Backend>) -> Arc<FaultBackend> {
        Arc::new(FaultBackend {
            inner,
            rules: Mutex::default(),
            reached: Mutex::default(),
            injected: Default::default(),
        })
    }

    /// The next `times` operations `op` on keys containing `needle` meet `fault`.
    pub fn inject(&self, op: Op, needle: &str, fault: Fault, times: usize) {
        lock(&self.rules).push(Rule {
            op,
            needle: needle.to_string(),
            fault,
            times,
        });
    }

    /// Fail the next `times` operations `op` on keys containing `needle`.
    pub fn fail(&self, op: Op, needle: &str, times: usize) {
        self.inject(op, needle, Fault::Fail, times);
    }

    /// Hold the next operation `op` on a key containing `needle`: returns (reached, release).
    pub fn hold(
        &self,
        op: Op,
        needle: &str,
    ) -> (Arc<tokio::sync::Notify>, Arc<tokio::sync::Notify>) {
        let reached = Arc::new(tokio::sync::Notify::new());
        let release = Arc::new(tokio::sync::Notify::new());
        let fault = Fault::Hold {
            reached: reached.clone(),
            release: release.clone(),
        };
        self.inject(op, needle, fault, 1);
        (reached, release)
    }

    /// Remove every fault not used up yet.
    pub fn clear(&self) {
        lock(&self.rules).clear();
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The operations that reached the store (succeeded or not there), in order.
    pub fn reached(&self) -> Vec<(Op, String)> {
        lock(&self.reached).clone()
    }

    async fn gate(&self, op: Op, key: &str) -> Result<(), BackendError> {
        let fault = {
            let mut rules = lock(&self.rules);
            let hit = rules
                .iter_mut()
                .find(|r| r.op == op && r.times > 0 && key.contains(&r.needle));
            hit.map(|r| {
                r.times -= 1;
                r.fault.clone()
            })
        };
        if let Some(f) = fault {
            self.injected
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match f {
                Fault::Fail => {
                    return Err(BackendError::Busy(format!(
                        "{op:?} {key}: injected failure"
                    )))
                }
                Fault::Down => {
                    return Err(BackendError::Unreachable(format!(
                        "{op:?} {key}: injected outage"
                    )))
                }
                Fault::Delay(d) => tokio::time::sleep(d).await,
                Fault::Hold { reached, release } => {
                    reached.notify_one();
                    release.notified().await;
                }
            }
        }
        lock(&self.reached).push((op, key.to_string()));
        Ok(())
    }
}

/// A streaming upload whose parts and completion pass the faults too.
#[derive(Debug)]
struct FaultUpload {
    key: String,
    inner: Box<dyn Upload>,
    faults: Arc<FaultBackend>,
}

#[async_trait]
impl Upload for FaultUpload {
    async fn put_part(&mut self, data: Vec<Bytes>) -> Result<(), BackendError> {
        self.faults.gate(Op::Part, &self.key).await?;
        self.inner.put_part(data).await
    }
    async fn complete(self: Box<Self>, size: u64) -> Result<ObjectInfo, BackendError> {
        if let Err(e) = self.faults.gate(Op::Complete, &self.key).await {
            self.inner.abort().await;
            return Err(e);
        }
        self.inner.complete(size).await
    }
    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}

/// A [`FaultBackend`] shared as a backend (so streaming uploads can hold on to it).
#[derive(Debug, Clone)]
pub struct Faulty(pub Arc<FaultBackend>);

#[async_trait]
impl Backend for Faulty {
    fn describe(&self) -> String {
        format!("faulty {}", self.0.inner.describe())
    }
    async fn head(&self, key: &str) -> Result<ObjectInfo, BackendError> {
        self.0.gate(Op::Head, key).await?;
        self.0.inner.head(key).await
    }
    async fn list(
        &self,
        prefix: &str,
        token: Option<&str>,
        max_keys: usize,
    ) -> Result<ListPage, BackendError> {
        self.0.gate(Op::List, prefix).await?;
        self.0.inner.list(prefix, token, max_keys).await
    }
    async fn get_range(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<Bytes, BackendError> {
        self.0.gate(Op::Get, key).await?;
        self.0.inner.get_range(key, range, etag).await
    }
    async fn get_range_stream(
        &self,
        key: &str,
        range: Range<u64>,
        etag: Option<&str>,
    ) -> Result<super::ByteStream, BackendError> {
        self.0.gate(Op::Get, key).await?;
        self.0.inner.get_range_stream(key, range, etag).await
    }
    async fn put(
        &self,
        key: &str,
        data: Bytes,
        meta: &PosixMeta,
    ) -> Result<ObjectInfo, BackendError> {
        self.0.gate(Op::Put, key).await?;
        self.0.inner.put(key, data, meta).await
    }
    async fn start_upload(
        &self,
        key: &str,
        meta: &PosixMeta,
    ) -> Result<Box<dyn Upload>, BackendError> {
        let inner = self.0.inner.start_upload(key, meta).await?;
        Ok(Box::new(FaultUpload {
            key: key.to_string(),
            inner,
            faults: self.0.clone(),
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
        self.0.gate(Op::Put, key).await?;
        self.0
            .inner
            .put_file(key, file, size, part_size, meta)
            .await
    }
    async fn put_file_if(
        &self,
        key: &str,
        file: &std::fs::File,
        size: u64,
        part_size: u64,
        meta: &PosixMeta,
        cond: &super::Precondition,
    ) -> Result<ObjectInfo, BackendError> {
        self.0.gate(Op::Put, key).await?;
        self.0
            .inner
            .put_file_if(key, file, size, part_size, meta, cond)
            .await
    }
    fn max_parts(&self) -> u64 {
        self.0.inner.max_parts()
    }
    fn stores_metadata(&self) -> bool {
        self.0.inner.stores_metadata()
    }
    fn copies_parts(&self) -> bool {
        self.0.inner.copies_parts()
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
        self.0.gate(Op::Put, key).await?;
        self.0
            .inner
            .put_file_reusing(key, file, size, parts, etag, meta)
            .await
    }
    async fn put_marker(&self, dir: &str, meta: &PosixMeta) -> Result<(), BackendError> {
        self.0.gate(Op::Put, dir).await?;
        self.0.inner.put_marker(dir, meta).await
    }
    async fn marker_meta(&self, dir: &str) -> Result<Option<PosixMeta>, BackendError> {
        self.0.gate(Op::Head, dir).await?;
        self.0.inner.marker_meta(dir).await
    }
    async fn has_marker(&self, dir: &str) -> Result<Option<bool>, BackendError> {
        self.0.gate(Op::Head, dir).await?;
        self.0.inner.has_marker(dir).await
    }
    async fn delete_marker(&self, dir: &str) -> Result<(), BackendError> {
        self.0.gate(Op::Delete, dir).await?;
        self.0.inner.delete_marker(dir).await
    }
    async fn copy(&self, from: &str, to: &str) -> Result<(), BackendError> {
        self.0.gate(Op::Copy, from).await?;
        self.0.inner.copy(from, to).await
    }
    async fn copy_with_meta(
        &self,
        from: &str,
        to: &str,
        meta: &PosixMeta,
    ) -> Result<(), BackendError> {
        self.0.gate(Op::Copy, from).await?;
        self.0.inner.copy_with_meta(from, to, meta).await
    }
    fn metadata_fits(&self, pairs: &[(&'static str, String)]) -> bool {
        self.0.inner.metadata_fits(pairs)
    }
    async fn set_meta(
        &self,
        key: &str,
        meta: &PosixMeta,
        etag: &str,
    ) -> Result<Option<String>, BackendError> {
        self.0.gate(Op::Copy, key).await?;
        self.0.inner.set_meta(key, meta, etag).await
    }
    async fn delete(&self, key: &str) -> Result<(), BackendError> {
        self.0.gate(Op::Delete, key).await?;
        self.0.inner.delete(key).await
    }
    fn renames(&self) -> bool {
        self.0.inner.renames()
    }
    async fn rename(&self, from: &str, to: &str) -> Result<(), BackendError> {
        self.0.gate(Op::Copy, from).await?;
        self.0.inner.rename(from, to).await
    }
}
