//! The filesystem's error type and the one exhaustive mapping of errors to errno values.

use crate::backend::BackendError;

/// Why a filesystem operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// No such file or directory.
    #[error("no such file or directory")]
    NotFound,
    /// The inode number is not (or no longer) known.
    #[error("unknown inode {0}")]
    UnknownInode(u64),
    /// A directory operation on a file.
    #[error("not a directory")]
    NotDir,
    /// A file operation on a directory.
    #[error("is a directory")]
    IsDir,
    /// A write on this read-only filesystem.
    #[error("read-only filesystem")]
    ReadOnly,
    /// The name is longer than a key may be.
    #[error("name too long")]
    NameTooLong,
    /// A handle that was never opened or is already released.
    #[error("bad file handle {0}")]
    BadHandle(u64),
    /// The object changed on the server while it was open.
    #[error("the object changed on the server while open; reopen the file")]
    Stale,
    /// The name exists already.
    #[error("file exists")]
    Exists,
    /// A directory to remove or replace still has entries.
    #[error("directory not empty")]
    NotEmpty,
    /// An argument the operation cannot take (e.g. a rename flag).
    #[error("invalid argument: {0}")]
    Invalid(&'static str),
    /// An operation the object store cannot do, with the reason.
    #[error("not supported: {0}")]
    Unsupported(String),
    /// The staging area for written data is full.
    #[error("no space left in the staging area for written data")]
    NoSpace,
    /// Local I/O on staged data failed.
    #[error("staging I/O failed: {0}")]
    LocalIo(String),
    /// Too many files open for writing at once.
    #[error("too many files open for writing (max_open_writes={0}); close some or raise -o max_open_writes=")]
    TooManyWriters(usize),
    /// Too many objects for one operation (e.g. renaming a large directory).
    #[error("{0}")]
    TooMany(String),
    /// The extended attribute is not there.
    #[error("no such extended attribute")]
    NoAttribute,
    /// An extended attribute that alone does not fit the store's metadata.
    #[error("{0}")]
    AttributeTooBig(String),
    /// The object's metadata would not fit the store's limit.
    #[error("{0}")]
    MetadataFull(String),
    /// The file is open in a way that rules this open out (FUSE passthrough), with why.
    #[error("{0}")]
    InUse(String),
    /// The file is being executed, so it may not be emptied (`O_TRUNC`).
    #[error("{0}")]
    TextBusy(String),
    /// The backend failed.
    #[error("{0}")]
    Backend(#[from] BackendError),
}

impl From<std::io::Error> for FsError {
    fn from(e: std::io::Error) -> Self {
        match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EDQUOT) => FsError::NoSpace,
            _ => FsError::LocalIo(e.to_string()),
        }
    }
}

impl FsError {
    /// The errno to answer the kernel with. Exhaustive on purpose: a new variant must choose.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound | FsError::UnknownInode(_) => libc::ENOENT,
            FsError::NotDir => libc::ENOTDIR,
            FsError::IsDir => libc::EISDIR,
            FsError::ReadOnly => libc::EROFS,
            FsError::NameTooLong => libc::ENAMETOOLONG,
            FsError::BadHandle(_) => libc::EBADF,
            FsError::Stale => libc::ESTALE,
            FsError::Exists => libc::EEXIST,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::Invalid(_) => libc::EINVAL,
            FsError::Unsupported(_) => libc::ENOTSUP,
            FsError::NoSpace => libc::ENOSPC,
            FsError::LocalIo(_) => libc::EIO,
            FsError::TooMany(_) => libc::EMLINK,
            FsError::TooManyWriters(_) => libc::ENFILE,
            FsError::NoAttribute => libc::ENODATA,
            FsError::AttributeTooBig(_) => libc::E2BIG,
            FsError::MetadataFull(_) => libc::ENOSPC,
            FsError::InUse(_) => libc::EBUSY,
            FsError::TextBusy(_) => libc::ETXTBSY,
            FsError::Backend(b) => match b {
                BackendError::NotFound(_) => libc::ENOENT,
                BackendError::Changed(_) => libc::ESTALE,
                BackendError::Denied(_) => libc::EACCES,
                BackendError::Unreachable(_) | BackendError::Busy(_) => libc::EIO,
                BackendError::Offline(_) => libc::ENETUNREACH,
                BackendError::InvalidKey { .. } => libc::EINVAL,
                BackendError::Unsupported(_) => libc::ENOTSUP,
                BackendError::NoSpace(_) => libc::ENOSPC,
                BackendError::Other(_) => libc::EIO,
            },
        }
    }

    /// Whether this error is part of normal operation (logged at debug, not warn).
    pub fn is_expected(&self) -> bool {
        matches!(
            self,
            FsError::NotFound
                | FsError::ReadOnly
                | FsError::NotDir
                | FsError::IsDir
                | FsError::Exists
                | FsError::NotEmpty
                | FsError::NoAttribute
                | FsError::TextBusy(_)
        ) || matches!(
            self,
            // Offline: the log said so once, when the store stopped answering.
            FsError::Backend(BackendError::NotFound(_) | BackendError::Offline(_))
        )
    }
}

/// Result of a filesystem operation.
pub type FsResult<T> = Result<T, FsError>;
