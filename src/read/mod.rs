//! The read path below the filesystem core: blocks of objects ([`blocks`]), the persistent
//! disk cache ([`block_cache`]), per-handle read-ahead ([`prefetch`]) and the memory budget
//! ([`budget`]). Nothing here knows about inodes or FUSE.

pub mod block_cache;
pub mod blocks;
pub mod budget;
pub mod fill;
pub mod prefetch;

pub use block_cache::{DiskBlockCache, Pin};
pub use blocks::{BlockSource, ObjectRef};
pub use budget::MemoryBudget;
pub use prefetch::{PrefetchConfig, Prefetcher};
