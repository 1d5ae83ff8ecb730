//! Reference model of the write path (issue 11): four programs open, write (files up to
//! 64 MiB, so streaming and multipart uploads are reached), truncate, close, rename and unlink
//! eight files through the core, while any backend operation may fail, another client
//! replaces or deletes objects, and the daemon is killed (the core dropped without a stop and
//! a new one started on the same cache directory, which replays the journal).
//!
//! After every step, for every file: the server holds one complete version a program wrote or
//! another client put (never a mix), exactly the last version whose close returned 0 while
//! nothing changed it since, and a failed close or `rm`/`mv` left the server as it was; after
//! a crash, closed content whose upload failed is on the server unless the server moved on
//! meanwhile. `MODEL_STEPS=N` and `MODEL_SEEDS=a,b` run longer or other seeds.

use super::super::{CloudFs, ROOT_INO};
use super::Access;
use crate::backend::fault::{FaultBackend, Faulty, Op};
use crate::backend::memory::MemoryBackend;
use crate::backend::{Backend, PosixMeta};
use crate::config::MountConfig;
use crate::read::DiskBlockCache;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

const KEYS: usize = 8;
const ACTORS: usize = 4;
const MAX_SIZE: usize = 64 << 20;
const SEEDS: [u64; 4] = [3, 17, 2026, 90_001];
const STEPS: usize = 2_500;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A version's fingerprint; `ABSENT` for no object.
type Fp = u64;
const ABSENT: Fp = 0;

fn fp(data: &[u8]) -> Fp {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    data.hash(&mut h);
    h.finish() | 1
}

/// What the model knows of one name.
#[derive(Default, Clone)]
struct Name {
    /// What the file holds as the mount shows it (`None`: no such file).
    content: Option<Vec<u8>>,
    /// Every complete version the server may hold.
    allowed: HashSet<Fp>,
    /// The version the server must hold now, when known.
    must: Option<Fp>,
    /// Closed content whose upload failed and that nothing superseded: the journal's.
    pending: Option<Fp>,
    /// The server moved past `pending` (another client): replay must set it aside.
    conflicted: bool,
    /// Changed since `pending` was closed: the journal holds it as unclosed.
    reopened: bool,
    /// A close failed because the version its unchanged bytes come from is gone: its
    /// session can never be uploaded (set aside at the next mount).
    doomed: bool,
    /// Write handles open on it.
    open: usize,
    /// Its session outlived its last close (the upload failed): the mount shows the session.
    kept: bool,
    /// The staging file the kernel writes while handles are open (write passthrough).
    by_kernel: Option<Arc<std::fs::File>>,
}

struct World {
    backend: Arc<MemoryBackend>,
    faults: Arc<FaultBackend>,
    cache: tempfile::TempDir,
    fs: Option<Arc<CloudFs>>,
    names: Vec<Name>,
    /// Each program's open handle: (name index, or `None` once its name is gone; fh).
    handles: [Option<(Option<usize>, u64)>; ACTORS],
    /// Run as the FUSE adapter does with write passthrough: a handle that starts a file
    /// empty has the kernel write its staging file, and later handles of that session join.
    kernel: bool,
    /// Each program's handle's staging file, when the kernel writes it.
    direct: [Option<Arc<std::fs::File>>; ACTORS],
    /// Handles the kernel wrote through so far.
    kernel_opens: u64,
    /// Fingerprints of server versions, by ETag (hashing 64 MiB at every check is slow).
    seen: HashMap<String, Fp>,
    log: Vec<String>,
    injected: u64,
}

fn key(i: usize) -> String {
    format!("k{i}")
}

impl World {
    fn new(seed: u64, kernel: bool) -> World {
        let backend = Arc::new(MemoryBackend::with_streaming(10_000));
        let faults = FaultBackend::new(backend.clone());
        let mut w = World {
            backend,
            faults,
            cache: tempfile::tempdir().expect("tempdir"),
            fs: None,
            names: vec![Name::default(); KEYS],
            handles: [None; ACTORS],
            kernel,
            direct: Default::default(),
            kernel_opens: 0,
            seen: HashMap::new(),
            log: vec![format!("seed {seed}")],
            injected: 0,
        };
        for n in &mut w.names {
            n.allowed.insert(ABSENT);
            n.must = Some(ABSENT);
        }
        w.start();
        w
    }

    fn start(&mut self) {
        let cache = DiskBlockCache::open(self.cache.path(), "memory://model", 1 << 30, 1 << 20)
            .expect("cache");
        let cfg = MountConfig {
            attr_timeout: std::time::Duration::ZERO,
            negative_timeout: std::time::Duration::ZERO,
            dir_cache_timeout: std::time::Duration::ZERO,
            upload_part_size: 5 << 20,
            ..MountConfig::default()
        };
        let backend = Arc::new(Faulty(self.faults.clone()));
        self.fs = Some(Arc::new(CloudFs::with_cache(
            backend,
            &cfg,
            Some(Arc::new(cache)),
        )));
    }

    fn fs(&self) -> Arc<CloudFs> {
        self.fs.clone().expect("mounted")
    }

    async fn server(&mut self, i: usize) -> Fp {
        let Ok(info) = self.backend.head(&key(i)).await else {
            return ABSENT;
        };
        let etag = info.etag.unwrap_or_default();
        if let Some(f) = self.seen.get(&etag) {
            return *f;
        }
        let data = self
            .backend
            .get_range(&key(i), 0..info.size, None)
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default();
        let f = fp(&data);
        self.seen.insert(etag, f);
        f
    }

    fn fail(&self, what: &str) -> ! {
        if let Ok(path) = std::env::var("MODEL_LOG") {
            let _ = std::fs::write(path, self.log.join("\n"));
        }
        let tail = self.log.len().saturating_sub(40);
        panic!("{what}\nlast steps:\n{}", self.log[tail..].join("\n"));
    }

    async fn check(&mut self) {
        for i in 0..KEYS {
            let now = self.server(i).await;
            let n = &self.names[i];
            if !n.allowed.contains(&now) {
                self.fail(&format!(
                    "k{i}: the server holds a version nobody wrote (mixed)"
                ));
            }
            if let Some(m) = n.must.filter(|m| *m != now) {
                self.fail(&format!("k{i}: server {now:x}, must be {m:x}"));
            }
        }
    }

    /// Whether the mount's file `i` has no object yet (created, not uploaded).
    async fn is_local(&self, i: usize) -> bool {
        match self.ino(i).await {
            Some(ino) => self.fs().inodes.is_local(ino),
            None => false,
        }
    }

    async fn ino(&self, i: usize) -> Option<u64> {
        self.fs()
            .lookup(ROOT_INO, &key(i))
            .await
            .ok()
            .map(|e| e.attr.ino)
    }

    /// One random step.
    async fn step(&mut self, rng: &mut Rng) {
        if rng.below(4) == 0 {
            let ops = [
                Op::Head,
                Op::List,
                Op::Get,
                Op::Put,
                Op::Part,
                Op::Complete,
                Op::Copy,
                Op::Delete,
            ];
            let op = ops[rng.below(ops.len())];
            let needle = if rng.below(2) == 0 {
                key(rng.below(KEYS))
            } else {
                String::new()
            };
            self.faults.fail(op, &needle, 1);
            self.log
                .push(format!("  fault: next {op:?} on {needle:?} fails"));
        }
        let a = rng.below(ACTORS);
        let i = rng.below(KEYS);
        match (rng.below(20), self.handles[a]) {
            (0..=2, None) => self.open(a, i, rng.below(3) == 0).await,
            (0..=7, Some((n, fh))) => self.write(a, n, fh, rng).await,
            (8, Some((n, fh))) => self.ftruncate(a, n, fh, rng).await,
            (9..=10, Some((n, fh))) => self.flush(a, n, fh).await,
            (11..=12, Some((n, fh))) => self.release(a, n, fh).await,
            (13, _) => self.rename(i, rng.below(KEYS)).await,
            (14, _) => self.unlink(i).await,
            (15..=16, _) => self.outside(i, rng).await,
            (17, _) if rng.below(8) == 0 => self.crash().await,
            _ => {}
        }
        self.injected = self.faults.injected();
    }

    async fn open(&mut self, a: usize, i: usize, truncate: bool) {
        let fs = self.fs();
        // As the kernel does: a lookup first, then open or create.
        let found = match fs.lookup(ROOT_INO, &key(i)).await {
            Ok(e) => Some(e.attr.ino),
            Err(crate::fs::FsError::NotFound) => None,
            Err(_) => return,
        };
        let exists = found.is_some();
        if exists != self.names[i].content.is_some() {
            self.fail(&format!(
                "k{i}: the mount says exists={exists}, the model not"
            ));
        }
        let opened = if let Some(ino) = found {
            fs.open(ino, Access::Write { truncate }).await
        } else {
            fs.create(ROOT_INO, &key(i), PosixMeta::default())
                .await
                .map(|(_, o)| o)
        };
        self.log.push(format!(
            "a{a}: open k{i} trunc={truncate} exists={exists}: {:?}",
            opened.as_ref().err()
        ));
        let Ok(o) = opened else { return };
        let fh = o.fh;
        self.direct[a] = match (&o.staging, self.kernel) {
            (Some(s), true) if s.fresh && self.names[i].open == 0 => {
                if let Err(e) = fs.write_by_kernel(fh).await {
                    self.fail(&format!("k{i}: write_by_kernel failed: {e}"));
                }
                self.names[i].by_kernel = Some(s.file.clone());
                Some(s.file.clone())
            }
            // Later opens of the session join the file the kernel writes.
            (Some(s), true) => self.names[i]
                .by_kernel
                .clone()
                .filter(|k| Arc::ptr_eq(k, &s.file)),
            _ => None,
        };
        self.log
            .push(format!("  by kernel: {}", self.direct[a].is_some()));
        self.kernel_opens += u64::from(self.direct[a].is_some());
        let n = &mut self.names[i];
        if truncate || !exists {
            n.content = Some(Vec::new());
            n.doomed = false;
            if n.pending.is_some() {
                n.reopened = true;
            }
        }
        n.open += 1;
        self.handles[a] = Some((Some(i), fh));
    }

    async fn write(&mut self, a: usize, n: Option<usize>, fh: u64, rng: &mut Rng) {
        let len = self.content_len(n);
        let (at, size) = if rng.below(60) == 0 {
            // Big: streaming and multipart uploads.
            (rng.below(MAX_SIZE - (8 << 20)), 1 + rng.below(8 << 20))
        } else {
            (rng.below(len + 4096), 1 + rng.below(64 << 10))
        };
        let byte = (rng.next() & 0xff) as u8;
        let data = Bytes::from(vec![byte; size]);
        let r = match &self.direct[a] {
            // The kernel writes the staging file; the daemon sees nothing.
            Some(f) => {
                use std::os::unix::fs::FileExt;
                f.write_all_at(&data, at as u64)
                    .map(|()| size as u32)
                    .map_err(crate::fs::FsError::from)
            }
            None => self.fs().write(fh, at as u64, data).await,
        };
        self.log.push(format!(
            "a{a}: write {n:?} at {at} +{size}: {:?}",
            r.as_ref().err()
        ));
        if let Err(e) = r {
            self.fail(&format!("a write failed: {e}"));
        }
        if let Some(c) = n.and_then(|i| self.names[i].content.as_mut()) {
            if c.len() < at + size {
                c.resize(at + size, 0);
            }
            c[at..at + size].fill(byte);
        }
        self.changed(n);
    }

    fn content_len(&self, n: Option<usize>) -> usize {
        n.and_then(|i| self.names[i].content.as_ref())
            .map_or(0, Vec::len)
    }

    fn changed(&mut self, n: Option<usize>) {
        if let Some(i) = n {
            if self.names[i].pending.is_some() {
                self.names[i].reopened = true;
            }
        }
    }

    async fn ftruncate(&mut self, a: usize, n: Option<usize>, fh: u64, rng: &mut Rng) {
        let size = rng.below(self.content_len(n) + 1);
        let fs = self.fs();
        let Some(ino) = fs.handle(fh).ok().map(|h| h.ino) else {
            self.fail("a handle vanished");
        };
        let r = fs.set_size(ino, size as u64).await;
        self.log.push(format!(
            "a{a}: ftruncate {n:?} to {size}: {:?}",
            r.as_ref().err()
        ));
        if let Err(e) = r {
            self.fail(&format!("an ftruncate failed: {e}"));
        }
        if let Some(c) = n.and_then(|i| self.names[i].content.as_mut()) {
            c.resize(size, 0);
        }
        self.changed(n);
    }

    async fn flush(&mut self, a: usize, n: Option<usize>, fh: u64) {
        let before = match n {
            Some(i) => Some(self.server(i).await),
            None => None,
        };
        let r = self.fs().flush(fh).await;
        self.log
            .push(format!("a{a}: close {n:?}: {:?}", r.as_ref().err()));
        let Some(i) = n else { return };
        let Some(f) = self.names[i].content.as_deref().map(fp) else {
            return;
        };
        let after = self.server(i).await;
        let pending = self.names[i].pending;
        self.log.push(format!(
            "  k{i}: content {f:x} server {after:x} pending {pending:?}"
        ));
        let name = &mut self.names[i];
        name.allowed.insert(f);
        match r {
            Ok(()) => {
                name.must = Some(f);
                name.pending = None;
                name.conflicted = false;
                name.reopened = false;
            }
            Err(e) => {
                name.doomed |= matches!(
                    e,
                    crate::fs::FsError::Backend(crate::backend::BackendError::Changed(_))
                );
                name.pending = (!name.doomed).then_some(f);
                name.conflicted = false;
                name.reopened = false;
                if self.server(i).await != before.unwrap_or(ABSENT) {
                    self.fail(&format!("k{i}: a failed close changed the server"));
                }
                self.names[i].must = before;
            }
        }
    }

    async fn release(&mut self, a: usize, n: Option<usize>, fh: u64) {
        let fs = self.fs();
        let ino = fs.handle(fh).map(|h| h.ino).ok();
        fs.release(fh).await;
        self.handles[a] = None;
        self.direct[a] = None;
        self.log.push(format!("a{a}: release {n:?}"));
        let Some(i) = n else { return };
        self.names[i].open -= 1;
        if self.names[i].open > 0 {
            return;
        }
        // The kernel drops the backing file with the last handle.
        self.names[i].by_kernel = None;
        // The last close sends what is unsent; the program does not see its result, but a
        // session that failed stays (journaled).
        let Some(f) = self.names[i].content.as_deref().map(fp) else {
            return;
        };
        let kept = ino.is_some_and(|ino| fs.is_open_for_write(ino));
        let now = self.server(i).await;
        self.log
            .push(format!("  k{i}: content {f:x} server {now:x} kept {kept}"));
        let name = &mut self.names[i];
        name.allowed.insert(f);
        name.kept = kept;
        if !kept {
            name.must = Some(f);
            name.pending = None;
        } else if !name.doomed {
            name.pending = Some(f);
            name.conflicted = false;
        }
        name.reopened = false;
    }

    async fn rename(&mut self, i: usize, j: usize) {
        if self.names[i].content.is_none() {
            return;
        }
        let (before_i, before_j) = (self.server(i).await, self.server(j).await);
        let local = self.is_local(i).await;
        let r = self
            .fs()
            .rename(ROOT_INO, &key(i), ROOT_INO, &key(j), false)
            .await;
        self.log
            .push(format!("rename k{i} -> k{j}: {:?}", r.as_ref().err()));
        if i == j {
            return;
        }
        let (now_i, now_j) = (self.server(i).await, self.server(j).await);
        if r.is_err() {
            // Copied then not deleted: the new name holds a copy of the old one's version.
            if now_i != before_i || (now_j != before_j && now_j != before_i) {
                self.fail("a failed rename changed the server otherwise than by a copy");
            }
            if now_j != before_j {
                let copy = self.server_bytes(j).await;
                let n = &mut self.names[j];
                n.allowed.insert(now_j);
                n.must = Some(now_j);
                if n.kept || n.pending.is_some() {
                    n.conflicted = true;
                } else if n.open == 0 {
                    n.content = copy;
                }
            }
            return;
        }
        // The replaced file's open handles now write to a file without a name.
        for h in self.handles.iter_mut().flatten() {
            if h.0 == Some(j) {
                h.0 = None;
            } else if h.0 == Some(i) {
                h.0 = Some(j);
            }
        }
        let mut moved = std::mem::take(&mut self.names[i]);
        let old_j = std::mem::take(&mut self.names[j]);
        moved.allowed.extend(old_j.allowed);
        moved.must = Some(now_j);
        moved.allowed.insert(now_j);
        // Its journal record now names the new name, expecting what is there now.
        moved.conflicted = false;
        self.names[j] = moved;
        let shows = self.server_bytes(i).await;
        let gone = &mut self.names[i];
        if local {
            gone.content = shows;
        }
        gone.allowed.insert(ABSENT);
        // A file only the mount had leaves what another client put under its name.
        gone.allowed.insert(now_i);
        gone.must = Some(if local { now_i } else { ABSENT });
    }

    async fn unlink(&mut self, i: usize) {
        if self.names[i].content.is_none() {
            return;
        }
        let before = self.server(i).await;
        let local = self.is_local(i).await;
        let r = self.fs().unlink(ROOT_INO, &key(i)).await;
        self.log
            .push(format!("unlink k{i}: {:?}", r.as_ref().err()));
        if r.is_err() {
            if self.server(i).await != before {
                self.fail(&format!("k{i}: a failed unlink changed the server"));
            }
            return;
        }
        for h in self.handles.iter_mut().flatten() {
            if h.0 == Some(i) {
                h.0 = None;
            }
        }
        let now = self.server(i).await;
        let shows = self.server_bytes(i).await;
        let n = &mut self.names[i];
        n.content = if local { shows } else { None };
        n.allowed.insert(ABSENT);
        // A file only the mount had (never uploaded) is removed from the mount only: what
        // is under its name on the server (another client's) stays.
        n.must = Some(if local { now } else { ABSENT });
        n.pending = None;
        n.conflicted = false;
        n.kept = false;
        n.open = 0;
    }

    /// Another client puts or deletes the object (only of files no program has open).
    async fn outside(&mut self, i: usize, rng: &mut Rng) {
        if self.names[i].open > 0 {
            return;
        }
        let f = if rng.below(3) == 0 {
            self.backend.remove(&key(i));
            self.log.push(format!("outside: DELETE k{i}"));
            ABSENT
        } else {
            let data = vec![(rng.next() & 0xff) as u8; 1 + rng.below(100_000)];
            let f = fp(&data);
            self.backend.insert(&key(i), data.clone());
            self.log
                .push(format!("outside: PUT k{i} ({} bytes)", data.len()));
            if !self.names[i].kept {
                self.names[i].content = Some(data);
            }
            f
        };
        let n = &mut self.names[i];
        n.allowed.insert(f);
        n.must = Some(f);
        if n.kept {
            // The mount still shows its session (whose next close wins).
            n.conflicted = true;
        } else if f == ABSENT {
            n.content = None;
        }
    }

    /// The daemon is killed: no stop, no drain; the next one replays the journal.
    async fn crash(&mut self) {
        self.log.push("crash, remount".into());
        self.faults.clear();
        let mut before = [ABSENT; KEYS];
        for (i, b) in before.iter_mut().enumerate() {
            *b = self.server(i).await;
        }
        self.fs = None;
        self.handles = [None; ACTORS];
        self.direct = Default::default();
        self.start();
        let aside_before = self.set_aside();
        self.fs().resume_uploads().await;
        let aside: Vec<String> = self
            .set_aside()
            .into_iter()
            .filter(|n| !aside_before.contains(n))
            .collect();
        self.log.push(format!("  set aside: {aside:?}"));
        for (i, was) in before.into_iter().enumerate() {
            let now = self.server(i).await;
            let n = &mut self.names[i];
            let put_aside = aside.iter().any(|a| a.ends_with(&format!("-{}", key(i))));
            let ok = match n.pending.take() {
                // Closed content whose upload failed, and nothing happened to its name since:
                // the replay sends it, or (when it can never be completed: the version its
                // unchanged bytes come from is gone) sets it aside, never drops it silently.
                Some(p) if !n.conflicted && !n.reopened => now == p || (now == was && put_aside),
                // Another client changed the name meanwhile (the replay sends it only if the
                // server is back at the version it expects), or it was changed after
                // (unclosed: set aside).
                Some(p) if !n.reopened => now == p || now == was,
                _ => now == was,
            };
            if !ok {
                self.fail(&format!(
                    "k{i}: after the remount the server holds {now:x}, was {was:x}"
                ));
            }
            n.open = 0;
            n.by_kernel = None;
            n.kept = false;
            n.conflicted = false;
            n.reopened = false;
            n.doomed = false;
            n.must = Some(now);
            self.names[i].content = self.server_bytes(i).await;
        }
    }

    /// What is in lost+found (data files).
    fn set_aside(&self) -> Vec<String> {
        let dir = self.fs().lost_found_dir().map(std::path::Path::to_path_buf);
        let entries = dir.and_then(|d| std::fs::read_dir(d).ok());
        entries
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".record"))
            .collect()
    }

    async fn server_bytes(&self, i: usize) -> Option<Vec<u8>> {
        let size = self.backend.head(&key(i)).await.ok()?.size;
        let data = self.backend.get_range(&key(i), 0..size, None).await;
        Some(data.map(|d| d.to_vec()).unwrap_or_default())
    }
}

/// Faults injected and handles the kernel wrote through.
async fn run(seed: u64, steps: usize, kernel: bool) -> (u64, u64) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut w = World::new(seed, kernel);
    for n in 0..steps {
        w.log.push(format!("step {n}"));
        w.step(&mut rng).await;
        w.check().await;
    }
    w.crash().await;
    w.check().await;
    (w.injected, w.kernel_opens)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_path_matches_its_model_under_faults_and_crashes() {
    let steps = std::env::var("MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(STEPS);
    let seeds: Vec<u64> = match std::env::var("MODEL_SEEDS") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => SEEDS.to_vec(),
    };
    if std::env::var("MODEL_TRACE").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("cloudmount=debug")
            .with_test_writer()
            .try_init();
    }
    let mut injected = 0;
    for seed in &seeds {
        injected += run(*seed, steps, false).await.0;
    }
    println!(
        "model: {} seeds x {steps} steps, {injected} faults injected",
        seeds.len()
    );
    assert!(injected > 0);
}

/// The same model with write passthrough: files opened from empty are written by the kernel
/// straight into their staging file, which the core learns of only from the file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_path_matches_its_model_when_the_kernel_writes_staging() {
    let dir = tempfile::tempdir().expect("tempdir");
    if let Some(why) = crate::write::kernel::supported(dir.path()) {
        // Nothing to run: the mount would not use kernel writes here either.
        println!("kernel writes unsupported here: {why}");
        return;
    }
    let steps = std::env::var("MODEL_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(STEPS);
    let (mut injected, mut by_kernel) = (0, 0);
    for seed in SEEDS {
        let (i, k) = run(seed, steps, true).await;
        injected += i;
        by_kernel += k;
    }
    println!(
        "model with kernel writes: {by_kernel} handles written by the kernel, {injected} faults"
    );
    assert!(injected > 0 && by_kernel > 0);
}
