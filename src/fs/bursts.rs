//! Lookup bursts. Many names looked up in one directory within a second (a `stat` of every
//! file on a list, an image loader opening a task's files) cost a HEAD and a one-key LIST per
//! name. Past [`THRESHOLD`] such lookups, the next one lists the whole directory instead, a
//! page per 1,000 names, into the listing cache, and the lookups after it are answered from
//! there. One owner, one lock: which directories are in a burst, being listed, or too large.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Lookups in one directory within [`WINDOW`] that make a burst.
pub const THRESHOLD: u32 = 8;

/// How close together the lookups of a burst are.
const WINDOW: Duration = Duration::from_secs(1);

/// Largest directory a burst lists (a bigger one is left to per-name lookups).
pub const MAX_ENTRIES: usize = 20_000;

/// How long a directory found too large is not listed again for a burst.
const TOO_BIG_FOR: Duration = Duration::from_secs(300);

/// Directories tracked at most (the oldest are forgotten past it).
const MAX_TRACKED: usize = 4096;

#[derive(Debug, Clone, Copy)]
enum State {
    /// `count` lookups since `since`.
    Counting { since: Instant, count: u32 },
    /// One lookup is listing the directory now.
    Listing,
    /// Too large to list for a burst, until then.
    TooBig(Instant),
}

/// Lookup counts per directory key.
#[derive(Debug, Default)]
pub struct LookupBursts {
    dirs: Mutex<HashMap<String, State>>,
}

impl LookupBursts {
    /// A lookup of a name in directory `dir` is about to ask the store: whether it should
    /// list the directory instead. The listing ends when the guard returned is dropped (or
    /// [`Listing::too_big`]), so a lookup cancelled mid-listing cannot leave it started.
    pub fn start(&self, dir: &str) -> Option<Listing<'_>> {
        self.should_list(dir).then(|| Listing {
            bursts: self,
            dir: dir.to_string(),
            too_big: false,
        })
    }

    fn should_list(&self, dir: &str) -> bool {
        let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if dirs.len() >= MAX_TRACKED && !dirs.contains_key(dir) {
            dirs.retain(|_, s| matches!(s, State::Listing));
        }
        let state = dirs.entry(dir.to_string()).or_insert(State::Counting {
            since: now,
            count: 0,
        });
        match *state {
            State::Listing => false,
            State::TooBig(until) if now < until => false,
            State::Counting { since, count } if now.duration_since(since) < WINDOW => {
                if count + 1 >= THRESHOLD {
                    *state = State::Listing;
                    true
                } else {
                    *state = State::Counting {
                        since,
                        count: count + 1,
                    };
                    false
                }
            }
            _ => {
                *state = State::Counting {
                    since: now,
                    count: 1,
                };
                false
            }
        }
    }

    /// The listing of `dir` ended; `too_big` when the directory had more than [`MAX_ENTRIES`].
    fn listed(&self, dir: &str, too_big: bool) {
        let mut dirs = self.dirs.lock().unwrap_or_else(|p| p.into_inner());
        if too_big {
            dirs.insert(dir.to_string(), State::TooBig(Instant::now() + TOO_BIG_FOR));
        } else {
            dirs.remove(dir);
        }
    }
}

/// A burst listing of one directory under way.
#[derive(Debug)]
pub struct Listing<'a> {
    bursts: &'a LookupBursts,
    dir: String,
    too_big: bool,
}

impl Listing<'_> {
    /// The directory has more entries than a burst lists.
    pub fn too_big(mut self) {
        self.too_big = true;
    }
}

impl Drop for Listing<'_> {
    fn drop(&mut self) {
        self.bursts.listed(&self.dir, self.too_big);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_th_lookup_lists_once() {
        let b = LookupBursts::default();
        for _ in 1..THRESHOLD {
            assert!(b.start("d/").is_none());
        }
        let listing = b.start("d/");
        assert!(listing.is_some(), "the burst starts a listing");
        assert!(b.start("d/").is_none(), "one listing at a time");
        assert!(
            b.start("e/").is_none(),
            "other directories count on their own"
        );
        drop(listing);
        assert!(b.start("d/").is_none(), "counting starts again");
        for _ in 2..THRESHOLD {
            assert!(b.start("d/").is_none());
        }
        let listing = b.start("d/").expect("a second burst");
        listing.too_big();
        for _ in 0..2 * THRESHOLD {
            assert!(b.start("d/").is_none(), "too big: left to per-name lookups");
        }
    }
}
