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
    async fn put(&self, key: &str, _: Bytes, _: &PosixMeta) -> Result<ObjectInfo, BackendError> {
        Err(BackendError::Unsupported(key.into()))
    }
    async fn copy(&self, _: &str, _: &str) -> Result<(), BackendError> {
        Ok(())
    }
    async fn delete(&self, _: &str) -> Result<(), BackendError> {
        Ok(())
    }
    async fn start_upload(&self, _: &str, _: &PosixMeta) -> Result<Box<dyn Upload>, BackendError> {
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
