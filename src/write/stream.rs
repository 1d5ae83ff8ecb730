//! Streaming upload of a file written in order: once a part's worth of new bytes is staged,
//! a multipart upload begins and every full part goes out while the program is still writing,
//! so a large copy is mostly uploaded by the time it is closed (and the close only sends the
//! rest and completes the upload).
//!
//! Only content that started empty (a new file, or `O_TRUNC`) streams. A write before what was
//! already sent, a truncation below it, a rename or an unlink stops streaming: the upload is
//! aborted and the file is sent whole at close, as without streaming. A failed part does the
//! same, so a streaming error never fails a `write`; errors are reported at close.
//!
//! With a `keep` limit, sent bytes more than `keep` behind the end of what was sent are
//! dropped from the staging file, so a copy of any size needs at most about `keep` plus a few
//! parts of local space. From then on the upload can no longer be given up and re-sent whole:
//! writes before what was sent are refused (see `Staged::check_change`), and a rename or
//! mode change meanwhile is applied after the upload completes (a server-side copy) or only in
//! the mount (logged).

use super::Staged;
use crate::backend::{Backend, BackendError, ObjectInfo, PartPlan, PosixMeta, Upload};
use bytes::Bytes;
use std::collections::VecDeque;

/// The streaming state of one staged file.
#[derive(Debug)]
pub struct Streamer {
    upload: Option<(String, Box<dyn Upload>)>,
    /// Attributes the upload was started with (mtime aside).
    meta: PosixMeta,
    sent: u64,
    /// Sizes the parts (they grow with the stream, so any size fits the part limit).
    plan: PartPlan,
    /// Parts sent so far.
    parts: u64,
    /// Sent bytes kept in staging behind `sent` (0: all).
    keep: u64,
    /// The written buffers holding the bytes from `sent` on, while writes arrive in order
    /// (`None` after one did not): parts are made of them instead of being read back from the
    /// staging file.
    mirror: Option<Mirror>,
    stopped: bool,
}

/// Written buffers in order, shared with the caller (no copy).
#[derive(Debug, Default)]
struct Mirror {
    pieces: VecDeque<Bytes>,
    len: u64,
}

impl Mirror {
    fn push(&mut self, b: Bytes) {
        self.len += b.len() as u64;
        self.pieces.push_back(b);
    }

    /// The first `len` bytes (at most what there is), as pieces.
    fn take(&mut self, len: u64) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut left = len.min(self.len);
        while left > 0 {
            let Some(mut front) = self.pieces.pop_front() else {
                break;
            };
            if front.len() as u64 > left {
                let head = front.split_to(left as usize);
                self.pieces.push_front(front);
                out.push(head);
                self.len -= left;
                break;
            }
            left -= front.len() as u64;
            self.len -= front.len() as u64;
            out.push(front);
        }
        out
    }
}

impl Streamer {
    /// Stream in parts sized by `plan`, keeping `keep` sent bytes staged (0: all of them).
    pub fn new(plan: PartPlan, keep: u64) -> Self {
        Streamer {
            upload: None,
            meta: PosixMeta::default(),
            sent: 0,
            plan,
            parts: 0,
            keep,
            mirror: Some(Mirror::default()),
            stopped: false,
        }
    }

    /// Keep `mirror` in step with a write of `data` at `offset` (at or past `sent`).
    fn mirror_write(&mut self, staged: &Staged, offset: u64, data: &Bytes) {
        let end = offset + data.len() as u64;
        match self.mirror.as_mut() {
            Some(m) if offset == self.sent + m.len => m.push(data.clone()),
            Some(_) => self.mirror = None,
            // The write is all there is past what was sent: mirror again from here.
            None if offset == self.sent && end == staged.size() => {
                let mut m = Mirror::default();
                m.push(data.clone());
                self.mirror = Some(m);
            }
            None => {}
        }
    }

    /// The next `len` bytes after `sent`: from the mirror, or read from the staging file.
    async fn next_bytes(&mut self, staged: &Staged, len: u64) -> std::io::Result<Vec<Bytes>> {
        if let Some(m) = self.mirror.as_mut().filter(|m| m.len >= len) {
            return Ok(m.take(len));
        }
        self.mirror = None;
        staged
            .read_at(self.sent, len)
            .await
            .map(|d| vec![Bytes::from(d)])
    }

    /// Whether a write at `offset` continues the stream.
    pub fn accepts(&self, offset: u64) -> bool {
        !self.stopped && offset >= self.sent
    }

    /// Bytes handed to the store so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Parts handed to the store so far.
    pub fn parts(&self) -> u64 {
        self.parts
    }

    /// The file was cut to `size` bytes (at or past what was sent; below it the caller
    /// stops the stream): written buffers past the cut must never be sent.
    pub fn truncated(&mut self, size: u64) {
        if self
            .mirror
            .as_ref()
            .is_some_and(|m| size < self.sent + m.len)
        {
            self.mirror = None;
        }
    }

    /// After a write at `offset`: send every full part past what was sent (an upload begins
    /// with the attributes `meta`).
    pub async fn after_write(
        &mut self,
        backend: &dyn Backend,
        staged: &mut Staged,
        offset: u64,
        data: &Bytes,
        meta: &PosixMeta,
    ) {
        if self.stopped {
            return;
        }
        if offset < self.sent {
            if staged.dropped() == 0 {
                self.stop().await;
            }
            return;
        }
        self.mirror_write(staged, offset, data);
        for _ in 0..(1u64 << 20) {
            // Only bytes written without a gap go out (a hole may still be filled).
            let part = self.plan.stream(self.parts);
            if staged.written_through(self.sent) < self.sent + part {
                return;
            }
            if self.upload.is_none() {
                match backend.start_upload(&staged.key, meta).await {
                    Ok(u) => {
                        self.upload = Some((staged.key.clone(), u));
                        self.meta = meta.without_times();
                    }
                    Err(e) => {
                        tracing::debug!(key = %staged.key, error = %e, "no streaming upload; the file goes up at close");
                        self.stopped = true;
                        return;
                    }
                }
            }
            let sent = match self.next_bytes(staged, part).await {
                Ok(data) => self.put(data).await,
                Err(e) => Err(BackendError::Other(e.to_string())),
            };
            if let Err(e) = sent {
                tracing::debug!(key = %staged.key, error = %e, "streaming upload stopped; the file goes up whole at close");
                self.stop().await;
                return;
            }
            self.sent += part;
            self.parts += 1;
            if self.keep > 0 && self.sent > self.keep {
                if let Err(e) = staged.drop_below(self.sent - self.keep).await {
                    tracing::debug!(key = %staged.key, error = %e, "cannot drop sent data from staging; it stays");
                }
            }
        }
    }

    async fn put(&mut self, data: Vec<Bytes>) -> Result<(), BackendError> {
        match self.upload.as_mut() {
            Some((_, u)) => u.put_part(data).await,
            None => Err(BackendError::Other("no upload in progress".into())),
        }
    }

    /// Stop streaming (the content changed before what was sent): abort the upload.
    pub async fn stop(&mut self) {
        self.stopped = true;
        if let Some((_, u)) = self.upload.take() {
            u.abort().await;
        }
    }

    /// At close: send the rest and complete the upload. `None` when nothing was streamed (or
    /// the upload had to be given up, e.g. renamed or chmod-ed meanwhile): the caller sends
    /// the file whole, with `meta`.
    pub async fn finish(
        &mut self,
        backend: &dyn Backend,
        staged: &Staged,
        meta: &PosixMeta,
    ) -> Option<Result<ObjectInfo, BackendError>> {
        if self.stopped {
            return None;
        }
        // Nothing streamed yet (e.g. a close of a dup'ed descriptor before any write): the
        // caller sends what there is, and streaming goes on with the next writes.
        let (key, upload) = self.upload.take()?;
        let done = self.complete(backend, staged, meta, key, upload).await;
        // Whatever happened, a later upload of this content starts from byte 0 again
        // (possible only while nothing was dropped from staging).
        self.stopped = staged.dropped() > 0;
        self.sent = 0;
        self.parts = 0;
        self.mirror = None;
        done
    }

    async fn complete(
        &mut self,
        backend: &dyn Backend,
        staged: &Staged,
        meta: &PosixMeta,
        key: String,
        mut upload: Box<dyn Upload>,
    ) -> Option<Result<ObjectInfo, BackendError>> {
        let same_meta = meta.without_times() == self.meta;
        if (key != staged.key || !same_meta) && staged.dropped() == 0 {
            upload.abort().await;
            return None;
        }
        let rest = staged.size().saturating_sub(self.sent);
        if rest > 0 {
            let sent = match self.next_bytes(staged, rest).await {
                Ok(data) => upload.put_part(data).await,
                Err(e) => Err(BackendError::Other(e.to_string())),
            };
            if let Err(e) = sent {
                tracing::debug!(%key, error = %e, "last part failed; the file goes up whole");
                upload.abort().await;
                return None;
            }
        }
        let done = upload.complete(staged.size()).await;
        if !same_meta {
            tracing::warn!(%key, "mode or owner changed during a streaming upload whose data left the staging area; the stored object keeps the ones it was started with");
        }
        if key == staged.key {
            return Some(done);
        }
        // Renamed meanwhile, and the data is only on the server now: move it there.
        let moved = match done {
            Ok(_) => match backend.copy(&key, &staged.key).await {
                Ok(()) => {
                    let _ = backend.delete(&key).await;
                    backend.head(&staged.key).await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        Some(moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::ListPage;
    use crate::backend::PartPlan;
    use async_trait::async_trait;
    use std::sync::{Arc, Mutex};

    /// Records parts per upload; `completed` holds the joined objects.
    #[derive(Debug, Default)]
    struct Recorder {
        parts: Arc<Mutex<Vec<usize>>>,
        completed: Arc<Mutex<Vec<Vec<u8>>>>,
        aborted: Arc<Mutex<usize>>,
    }

    #[derive(Debug)]
    struct RecUpload {
        got: Vec<u8>,
        parts: Arc<Mutex<Vec<usize>>>,
        completed: Arc<Mutex<Vec<Vec<u8>>>>,
        aborted: Arc<Mutex<usize>>,
    }

    #[async_trait]
    impl Upload for RecUpload {
        async fn put_part(&mut self, data: Vec<Bytes>) -> Result<(), BackendError> {
            self.parts
                .lock()
                .unwrap()
                .push(data.iter().map(Bytes::len).sum());
            for d in data {
                self.got.extend_from_slice(&d);
            }
            Ok(())
        }
        async fn complete(self: Box<Self>, size: u64) -> Result<ObjectInfo, BackendError> {
            assert_eq!(self.got.len() as u64, size);
            self.completed.lock().unwrap().push(self.got.clone());
            Ok(ObjectInfo {
                size_unknown: false,
                key: "k".into(),
                size,
                mtime: std::time::SystemTime::now(),
                etag: None,
                meta: PosixMeta::default(),
            })
        }
        async fn abort(self: Box<Self>) {
            *self.aborted.lock().unwrap() += 1;
        }
    }

    #[async_trait]
    impl Backend for Recorder {
        fn describe(&self) -> String {
            "recorder".into()
        }
        async fn head(&self, key: &str) -> Result<ObjectInfo, BackendError> {
            Err(BackendError::NotFound(key.into()))
        }
        async fn list(&self, _: &str, _: Option<&str>, _: usize) -> Result<ListPage, BackendError> {
            Ok(ListPage::default())
        }
        async fn get_range(
            &self,
            key: &str,
            _: std::ops::Range<u64>,
            _: Option<&str>,
        ) -> Result<Bytes, BackendError> {
            Err(BackendError::NotFound(key.into()))
        }
        async fn put(
            &self,
            key: &str,
            _: Bytes,
            _: &PosixMeta,
        ) -> Result<ObjectInfo, BackendError> {
            Err(BackendError::Unsupported(key.into()))
        }
        async fn copy(&self, _: &str, _: &str) -> Result<(), BackendError> {
            Ok(())
        }
        async fn delete(&self, _: &str) -> Result<(), BackendError> {
            Ok(())
        }
        async fn start_upload(
            &self,
            _: &str,
            _: &PosixMeta,
        ) -> Result<Box<dyn Upload>, BackendError> {
            Ok(Box::new(RecUpload {
                got: Vec::new(),
                parts: self.parts.clone(),
                completed: self.completed.clone(),
                aborted: self.aborted.clone(),
            }))
        }
    }

    const PART: u64 = 5 << 20;

    #[tokio::test]
    async fn in_order_writes_go_out_as_full_parts_and_close_sends_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let area = crate::write::StagingArea::open(dir.path()).unwrap();
        let mut st = area.create("k").unwrap();
        let b = Recorder::default();
        let mut s = Streamer::new(PartPlan::new(PART, 10_000), 0);
        let chunk = Bytes::from(vec![7u8; 1 << 20]);
        for i in 0..12u64 {
            st.write_at(i << 20, chunk.clone()).await.unwrap();
            s.after_write(&b, &mut st, i << 20, &chunk, &PosixMeta::default())
                .await;
        }
        assert_eq!(
            *b.parts.lock().unwrap(),
            [5 << 20, 5 << 20],
            "two parts sent while writing"
        );
        assert_eq!(s.sent(), 10 << 20);
        let done = s
            .finish(&b, &st, &PosixMeta::default())
            .await
            .expect("streamed")
            .unwrap();
        assert_eq!(done.size, 12 << 20);
        assert_eq!(*b.parts.lock().unwrap(), [5 << 20, 5 << 20, 2 << 20]);
        assert_eq!(b.completed.lock().unwrap()[0], vec![7u8; 12 << 20]);
        assert!(
            s.finish(&b, &st, &PosixMeta::default()).await.is_none(),
            "finished once; later closes send whole"
        );
    }

    #[tokio::test]
    async fn a_write_before_what_was_sent_stops_streaming() {
        let dir = tempfile::tempdir().unwrap();
        let area = crate::write::StagingArea::open(dir.path()).unwrap();
        let mut st = area.create("k").unwrap();
        let b = Recorder::default();
        let mut s = Streamer::new(PartPlan::new(PART, 10_000), 0);
        let first = Bytes::from(vec![1u8; 6 << 20]);
        st.write_at(0, first.clone()).await.unwrap();
        s.after_write(&b, &mut st, 0, &first, &PosixMeta::default())
            .await;
        assert_eq!(s.sent(), 5 << 20);
        st.write_at(100, Bytes::from_static(b"rewrite"))
            .await
            .unwrap();
        s.after_write(
            &b,
            &mut st,
            100,
            &Bytes::from_static(b"rewrite"),
            &PosixMeta::default(),
        )
        .await;
        assert_eq!(*b.aborted.lock().unwrap(), 1, "the upload is aborted");
        assert!(
            s.finish(&b, &st, &PosixMeta::default()).await.is_none(),
            "the file goes up whole at close"
        );
    }

    #[tokio::test]
    async fn a_renamed_file_is_not_completed_under_its_old_name() {
        let dir = tempfile::tempdir().unwrap();
        let area = crate::write::StagingArea::open(dir.path()).unwrap();
        let mut st = area.create("old").unwrap();
        let b = Recorder::default();
        let mut s = Streamer::new(PartPlan::new(PART, 10_000), 0);
        let first = Bytes::from(vec![1u8; 5 << 20]);
        st.write_at(0, first.clone()).await.unwrap();
        s.after_write(&b, &mut st, 0, &first, &PosixMeta::default())
            .await;
        st.key = "new".into();
        assert!(s.finish(&b, &st, &PosixMeta::default()).await.is_none());
        assert_eq!(*b.aborted.lock().unwrap(), 1);
    }

    #[tokio::test]
    async fn sent_parts_beyond_keep_leave_staging_and_only_appends_are_allowed() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let area = crate::write::StagingArea::open(dir.path()).unwrap();
        let mut st = area.create("k").unwrap();
        st.stream = None;
        let b = Recorder::default();
        let mut s = Streamer::new(PartPlan::new(PART, 10_000), PART);
        let mut want = Vec::new();
        for i in 0..32u64 {
            let chunk = Bytes::from(vec![i as u8; 1 << 20]);
            st.write_at(i << 20, chunk.clone()).await.unwrap();
            want.extend_from_slice(&chunk);
            s.after_write(&b, &mut st, i << 20, &chunk, &PosixMeta::default())
                .await;
        }
        assert_eq!(s.sent(), 30 << 20);
        assert_eq!(st.dropped(), 25 << 20, "all but `keep` of what was sent");
        let on_disk = std::fs::metadata(st.path()).unwrap().blocks() * 512;
        assert!(on_disk <= 8 << 20, "{on_disk} bytes still staged of 32 MiB");
        assert_eq!(st.size(), 32 << 20, "the size is kept");
        st.stream = Some(s);
        assert!(st.check_change(32 << 20).is_ok(), "appending goes on");
        assert!(st.check_change(30 << 20).is_ok(), "after what was sent");
        let refused = st.check_change(100).unwrap_err();
        assert!(refused.contains("stream_staging_max"), "{refused}");
        let mut s = st.stream.take().unwrap();
        let done = s
            .finish(&b, &st, &PosixMeta::default())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done.size, 32 << 20);
        assert!(
            b.completed.lock().unwrap()[0] == want,
            "every byte reached the store"
        );
        assert!(
            st.check_change(32 << 20).is_err(),
            "finished: nothing more can go up"
        );
    }

    #[tokio::test]
    async fn writes_out_of_order_past_what_was_sent_still_make_the_right_parts() {
        let dir = tempfile::tempdir().unwrap();
        let area = crate::write::StagingArea::open(dir.path()).unwrap();
        let mut st = area.create("k").unwrap();
        let b = Recorder::default();
        let mut s = Streamer::new(PartPlan::new(PART, 10_000), 0);
        let mut want = vec![0u8; 13 << 20];
        // In order, then one chunk ahead of the next, then the gap, then in order again.
        let order = [0u64, 1, 2, 4, 3, 5, 6, 7, 8, 9, 10, 11, 12];
        for i in order {
            let chunk = Bytes::from(vec![i as u8 + 1; 1 << 20]);
            want[(i as usize) << 20..((i as usize) + 1) << 20].copy_from_slice(&chunk);
            st.write_at(i << 20, chunk.clone()).await.unwrap();
            s.after_write(&b, &mut st, i << 20, &chunk, &PosixMeta::default())
                .await;
        }
        assert_eq!(s.sent(), 10 << 20);
        s.finish(&b, &st, &PosixMeta::default())
            .await
            .expect("streamed")
            .unwrap();
        assert!(
            b.completed.lock().unwrap()[0] == want,
            "parts in order, right bytes"
        );
    }

    #[tokio::test]
    async fn a_close_before_anything_was_streamed_does_not_stop_streaming() {
        let dir = tempfile::tempdir().unwrap();
        let area = crate::write::StagingArea::open(dir.path()).unwrap();
        let mut st = area.create("k").unwrap();
        let b = Recorder::default();
        let mut s = Streamer::new(PartPlan::new(PART, 10_000), 0);
        // dd opens, dup2()s and closes the first descriptor: a flush of the empty file.
        assert!(s.finish(&b, &st, &PosixMeta::default()).await.is_none());
        let chunk = Bytes::from(vec![3u8; 1 << 20]);
        for i in 0..6u64 {
            st.write_at(i << 20, chunk.clone()).await.unwrap();
            s.after_write(&b, &mut st, i << 20, &chunk, &PosixMeta::default())
                .await;
        }
        assert_eq!(s.sent(), 5 << 20, "streaming still on");
        s.finish(&b, &st, &PosixMeta::default())
            .await
            .expect("streamed")
            .unwrap();
        // Appending after that close starts a new upload of the whole content.
        st.write_at(6 << 20, chunk.clone()).await.unwrap();
        s.after_write(&b, &mut st, 6 << 20, &chunk, &PosixMeta::default())
            .await;
        s.finish(&b, &st, &PosixMeta::default())
            .await
            .expect("streamed again")
            .unwrap();
        assert_eq!(b.completed.lock().unwrap()[1], vec![3u8; 7 << 20]);
    }
}
