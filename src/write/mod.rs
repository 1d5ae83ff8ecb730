//! The write path: files open for writing are staged in local files and uploaded on
//! `flush`/`fsync` (see [`staging`]); a journal (see [`journal`]) lets the next mount finish
//! what a killed daemon did not.

pub mod area;
pub mod journal;
pub mod kernel;
pub mod ranges;
pub mod staging;
pub mod stream;

pub use area::{Pending, StagingArea};
pub use journal::Record;
pub use kernel::KernelWrites;
pub use ranges::Ranges;
pub use staging::Staged;
pub use stream::Streamer;
