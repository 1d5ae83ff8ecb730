//! The write path: files open for writing are staged in local files and uploaded on
//! `flush`/`fsync` (see [`staging`]).

pub mod staging;
pub mod stream;

pub use staging::{Pending, Staged, StagingArea};
pub use stream::Streamer;
