//! An open directory: serves `readdir` pages from a cached listing or from a paged stream.
//!
//! Entry indexes are positions in the listing; the kernel's offset for the entry at index `i`
//! is `i + 3` (after `.` and `..`). A stream keeps only the entries the kernel has not taken yet
//! (at most one page), so a 100,000-entry directory never sits in memory per call. A request for
//! an earlier position (rewinddir, seekdir) restarts the listing. A stream that ends with at most
//! `dir_cache_max_entries` entries is stored in the listing cache.
//!
//! Entries that exist only in the mount so far (a new directory, a created file not uploaded
//! yet) are given at open and follow the store's entries, unless the store lists the name too.

use super::dir_cache::{DirCache, Listing};
use super::listing::{DirStream, ListRules, Listed};
use crate::backend::{Backend, BackendError};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::SystemTime;

#[derive(Debug)]
enum Source {
    Cached(Arc<Listing>),
    Stream {
        stream: Box<DirStream>,
        /// Entries pulled from the stream but not yet taken by the kernel.
        buffered: VecDeque<Listed>,
        /// Listing index of the entry after the last buffered one.
        next_index: u64,
        /// Every entry so far, for the listing cache, while the directory is small enough.
        collected: Option<Vec<Listed>>,
        /// When the first page was asked for (the cache refuses the listing if the
        /// directory changed since).
        started: std::time::Instant,
    },
}

/// One `opendir` of a directory.
#[derive(Debug)]
pub struct DirHandle {
    /// The directory's inode.
    pub ino: u64,
    /// The directory's parent inode (for `..`).
    pub parent: u64,
    key: String,
    rules: ListRules,
    mtime: SystemTime,
    source: Source,
    /// Entries only the mount knows, shown after the store's.
    extras: Vec<Listed>,
    /// Names of `extras` the store listed too (so they are not shown twice).
    seen: std::collections::HashSet<String>,
}

impl DirHandle {
    /// Open directory `key`, from the listing cache when it has a fresh listing.
    pub fn open(
        ino: u64,
        parent: u64,
        key: &str,
        cache: &DirCache,
        rules: &ListRules,
        mtime: SystemTime,
    ) -> Self {
        let source = match cache.get(key) {
            Some(l) => Source::Cached(l),
            None => Self::fresh_stream(key, rules, mtime),
        };
        DirHandle {
            ino,
            parent,
            key: key.to_string(),
            rules: rules.clone(),
            mtime,
            source,
            extras: Vec::new(),
            seen: Default::default(),
        }
    }

    /// Also show `extras` (entries only the mount knows) after the store's entries.
    pub fn with_extras(mut self, extras: Vec<Listed>) -> Self {
        self.extras = extras;
        self
    }

    fn fresh_stream(key: &str, rules: &ListRules, mtime: SystemTime) -> Source {
        Source::Stream {
            stream: Box::new(DirStream::new(key, rules, mtime)),
            buffered: VecDeque::new(),
            next_index: 0,
            collected: Some(Vec::new()),
            started: std::time::Instant::now(),
        }
    }

    /// Serve the directory's last cached listing, however old, instead of the stream, when
    /// the stream has not handed out any entry yet (its first page failed); whether it does.
    pub fn use_stale(&mut self, cache: &DirCache) -> bool {
        let untouched =
            matches!(&self.source, Source::Stream { next_index, .. } if *next_index == 0);
        match cache.get_stale(&self.key) {
            Some(listing) if untouched => {
                self.source = Source::Cached(listing);
                true
            }
            _ => false,
        }
    }

    /// Entries this handle holds in memory for the stream (0 when served from the cache);
    /// the listing collected for the cache is not counted.
    pub fn in_memory(&self) -> usize {
        match &self.source {
            Source::Cached(_) => 0,
            Source::Stream {
                stream, buffered, ..
            } => stream.in_memory() + buffered.len(),
        }
    }

    /// Hand entries with index `>= start` to `emit` until it returns `false` (the reply is
    /// full; that entry is kept for the next call) or the listing ends.
    pub async fn feed(
        &mut self,
        start: u64,
        backend: &dyn Backend,
        cache: &DirCache,
        emit: &mut (dyn FnMut(&Listed, u64) -> bool + Send),
    ) -> Result<(), BackendError> {
        if let Source::Cached(listing) = &self.source {
            for (i, e) in listing.entries.iter().enumerate().skip(start as usize) {
                if !emit(e, i as u64) {
                    return Ok(());
                }
            }
            let tail = self
                .extras
                .iter()
                .filter(|x| listing.get(&x.name).is_none());
            Self::feed_tail(tail, listing.entries.len() as u64, start, emit);
            return Ok(());
        }
        let rewind = matches!(&self.source, Source::Stream { buffered, next_index, .. }
            if start < next_index - buffered.len() as u64);
        if rewind {
            self.source = Self::fresh_stream(&self.key, &self.rules, self.mtime);
            self.seen.clear();
        }
        let Source::Stream {
            stream,
            buffered,
            next_index,
            collected,
            started,
        } = &mut self.source
        else {
            return Ok(());
        };
        loop {
            if buffered.is_empty() {
                match stream.next(backend).await? {
                    Some(e) => {
                        if self.extras.iter().any(|x| x.name == e.name) {
                            self.seen.insert(e.name.clone());
                        }
                        if let Some(c) = collected.as_mut() {
                            c.push(e.clone());
                            if !cache.accepts(c.len()) {
                                *collected = None;
                            }
                        }
                        buffered.push_back(e);
                        *next_index += 1;
                    }
                    None => {
                        if let Some(c) = collected.take() {
                            cache.put(&self.key, c, *started);
                        }
                        let seen = &self.seen;
                        let tail = self.extras.iter().filter(|x| !seen.contains(&x.name));
                        Self::feed_tail(tail, *next_index, start, emit);
                        return Ok(());
                    }
                }
            }
            let index = *next_index - buffered.len() as u64;
            let Some(front) = buffered.front() else {
                continue;
            };
            if index < start {
                buffered.pop_front();
                continue;
            }
            if !emit(front, index) {
                return Ok(());
            }
            buffered.pop_front();
        }
    }

    /// Hand the mount-only entries, numbered from `base`, from index `start` on.
    fn feed_tail<'a>(
        tail: impl Iterator<Item = &'a Listed>,
        base: u64,
        start: u64,
        emit: &mut (dyn FnMut(&Listed, u64) -> bool + Send),
    ) {
        for (i, e) in (base..).zip(tail) {
            if i >= start && !emit(e, i) {
                return;
            }
        }
    }
}
