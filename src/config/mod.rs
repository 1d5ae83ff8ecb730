//! Mount configuration: one [`MountConfig`] built from defaults, an optional TOML file and the
//! `-o` options of the command line (which win over the file).
//!
//! [`options::OPTIONS`] is the single source of truth for option names, values and docs; the
//! TOML file uses the same names as keys.

pub mod drive;
pub(crate) mod file;
pub mod options;
mod source;
mod values;

pub use file::load_file;
pub use options::{apply_option_list, OptionError};
pub use source::Source;

use std::path::PathBuf;
use std::time::Duration;

/// Everything a mount is built from, apart from secrets (see [`crate::credentials`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MountConfig {
    /// Let users other than the mounting user access the mount (`allow_other`).
    pub allow_other: bool,
    /// Let root access the mount in addition to the mounting user (`allow_root`).
    pub allow_root: bool,
    /// Kernel permission checks against the mode bits. `None` means automatic: on with
    /// `allow_other` or `allow_root`, off otherwise.
    pub default_permissions: Option<bool>,
    /// Extended attributes (`user.*`, `trusted.*`) stored with objects in s3fs's format;
    /// off answers ENOSYS, so the kernel stops asking.
    pub xattr: bool,
    /// POSIX ACLs (`system.posix_acl_access`/`_default`), stored like extended attributes and
    /// enforced by the kernel; turns on kernel permission checks.
    pub acl: bool,
    /// Mount read-only (`ro`). Writes are not implemented yet, so they fail with EROFS anyway.
    pub read_only: bool,
    /// Owner of every file and directory, whatever an object's stored metadata says; unset:
    /// the stored owner, else the mounting user (docs/permissions.md).
    pub uid: Option<u32>,
    /// Group of every file and directory, whatever an object's stored metadata says; unset:
    /// the stored group, else the mounting user's group.
    pub gid: Option<u32>,
    /// Bits cleared from every mode shown: stored ones, and the defaults 0666 (files) and 0777
    /// (directories); unset: stored modes as they are, defaults with 022 cleared.
    pub umask: Option<u32>,
    /// Permission bits of every file, whatever its stored mode says (overrides `umask`).
    pub file_mode: Option<u32>,
    /// Permission bits of every directory, whatever its stored mode says.
    pub dir_mode: Option<u32>,
    /// Service endpoint URL (S3-compatible server, Azurite, private endpoint).
    pub endpoint: Option<String>,
    /// S3 region; default `us-east-1` or `AWS_REGION`/`AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// Path-style S3 requests (`http://host/bucket/key`), which is also the default.
    pub path_style: bool,
    /// Virtual-hosted-style S3 requests (`http://bucket.host/key`).
    pub virtual_hosted: bool,
    /// s3fs-format credential file for S3.
    pub passwd_file: Option<PathBuf>,
    /// Profile of `~/.aws/credentials` to use.
    pub profile: Option<String>,
    /// blobfuse `connection.cfg` file for Azure.
    pub config_file: Option<PathBuf>,
    /// Azure storage account name (else from the config file or `AZURE_STORAGE_ACCOUNT`).
    pub account: Option<String>,
    /// GCS service-account JSON key file (else `GOOGLE_APPLICATION_CREDENTIALS`).
    pub service_account: Option<PathBuf>,
    /// How long the kernel and cloudmount trust file attributes.
    pub attr_timeout: Duration,
    /// How long the kernel trusts a name → inode lookup.
    pub entry_timeout: Duration,
    /// How long a name that was not found stays "not found" without asking the server.
    pub negative_timeout: Duration,
    /// How long a complete directory listing is reused without listing again.
    pub dir_cache_timeout: Duration,
    /// Largest directory (in entries) whose listing is kept in the listing cache; larger
    /// directories are always streamed page by page.
    pub dir_cache_max_entries: usize,
    /// Objects asked for per LIST request (1..=1000 on S3).
    pub list_page_size: usize,
    /// Longest file name, in bytes (255, what POSIX tools expect, up to 1024, what FUSE
    /// carries); `statfs` reports it, longer names answer ENAMETOOLONG and are not listed.
    pub name_max: usize,
    /// Name suffix under which a file stays reachable when a directory has the same name.
    pub conflict_suffix: String,
    /// Debug logging (`debug`); `RUST_LOG` overrides the level.
    pub debug: bool,
    /// Stay in the foreground and log to stderr (`-f`).
    pub foreground: bool,
    /// Log file of the background daemon; default under the user's state directory.
    pub log_file: Option<PathBuf>,
    /// How log lines are written (`log_format`).
    pub log_format: LogFormat,
    /// Where Prometheus metrics are served (`metrics=ADDR:PORT`); off when `None`.
    pub metrics: Option<std::net::SocketAddr>,
    /// Allow mounting over a non-empty directory (`nonempty`).
    pub nonempty: bool,
    /// On SIGTERM, how long to wait for uploads still in progress (files still open for
    /// writing are uploaded first) before unmounting; what is left is resumed at the next mount.
    pub stop_timeout: Duration,
    /// How often the daemon looks whether its credential files changed (a rotated passwd
    /// file, connection.cfg or service account) and reloads as on SIGHUP when they did; 0
    /// turns it off.
    pub credential_check: Duration,
    /// Timeout of one connection attempt to the server.
    pub connect_timeout: Duration,
    /// Timeout of one request to the server.
    pub request_timeout: Duration,
    /// Retries of a failed request before an error reaches the application.
    pub retries: usize,
    /// FUSE worker threads reading requests from the kernel.
    pub fuse_threads: usize,
    /// Largest read-ahead window of one open file, in bytes.
    pub read_ahead_max: u64,
    /// Block cache on local disk: `None` disables it; `Some(None)` uses the default directory
    /// (`/var/cache/cloudmount` for root, else `$XDG_CACHE_HOME/cloudmount` or `~/.cache/cloudmount`).
    pub cache: Option<Option<PathBuf>>,
    /// Most bytes the block cache keeps on disk.
    pub cache_size: u64,
    /// Size of one cached block (and the unit of read-ahead), in bytes.
    pub cache_block_size: u64,
    /// Largest single ranged GET of a sequential reader, in bytes.
    pub part_size: u64,
    /// Memory for read-ahead across all open files (bytes that arrived and were not read yet),
    /// in bytes.
    pub max_memory: u64,
    /// Part size of multipart uploads of written files, in bytes (files up to this size go up
    /// in one PUT).
    pub upload_part_size: u64,
    /// Objects of at most this many bytes that a directory listing returns are HEADed for
    /// their stored metadata (modes, owners, s3fs symbolic links), which LIST answers do not
    /// carry; 0 HEADs only empty objects (FIFOs, sockets and device files are empty), `None`
    /// none (objects then show the mount's defaults until looked up by name).
    pub meta_probe_size: Option<u64>,
    /// Bytes of a streaming upload's sent data its staging file keeps (0: all); older sent
    /// parts are dropped, so a large copy needs about this much local space, but the file can
    /// then only be appended to until it is closed. Not for files the kernel writes
    /// ([`MountConfig::write_passthrough`]), which keep all their bytes staged.
    pub stream_staging_max: u64,
    /// Upload, at a stop, content of files still open for writing that no program closed
    /// (and such content left by an earlier run); by default it is kept in `lost+found`
    /// instead, so a half-written file never replaces a good object.
    pub upload_unclosed: bool,
    /// Multipart uploads left unfinished on the server under the mounted prefix (by a killed
    /// daemon or another client) are aborted once they are this old, at mount time and then
    /// hourly, unless the mount still has content for that key; 0 never aborts any.
    pub abort_stale_uploads: Duration,
    /// Most objects a directory rename may copy; a larger directory is refused.
    pub rename_dir_limit: usize,
    /// Most files open for writing at once (each may hold up to 4 upload parts in memory).
    pub max_open_writes: usize,
    /// Keep serving cached listings, attributes and blocks while the store does not answer,
    /// fail uncached reads at once, journal closed writes and upload them once it answers.
    pub offline: bool,
    /// The mime types table uploads take their Content-Type from, by file name extension
    /// (s3fs's `mime`); `None` (`mime=off`): no Content-Type is set.
    pub mime: Option<PathBuf>,
    /// Let the kernel read files that are fully in the disk cache straight from their cache file
    /// (FUSE passthrough, Linux 6.9 or later, daemon running as root).
    pub passthrough: bool,
    /// With `passthrough`, let the kernel write a file opened for writing from empty (a new
    /// file, or `O_TRUNC`) straight into its staging file (Linux 6.13 or later, staging on ext4,
    /// xfs, btrfs or tmpfs); the daemon uploads it from there at close.
    pub write_passthrough: bool,
    /// Kernel flag: honour set-user-id bits (`suid`; default `nosuid`).
    pub suid: bool,
    /// Kernel flag: allow device files (`dev`; default `nodev`).
    pub dev: bool,
    /// Kernel flag: allow running programs (`exec`, the default; `noexec`).
    pub exec: bool,
    /// S3: hash request bodies into the signature (`None`: only over plain http to a host
    /// that is not loopback, where nothing else protects them).
    pub sign_payload: Option<bool>,
    /// Google Drive settings (`gdrive://` sources only).
    pub drive: drive::DriveOptions,
}

impl MountConfig {
    /// Whether S3 request bodies are hashed into their signatures: as `sign_payload` says, or
    /// by default only over plain http to a host that is not loopback.
    pub fn signs_payload(&self) -> bool {
        self.sign_payload.unwrap_or_else(|| {
            let Some(endpoint) = self.endpoint.as_deref() else {
                return false; // AWS, over https
            };
            let Some(rest) = endpoint.strip_prefix("http://") else {
                return false;
            };
            let host = rest.split('/').next().unwrap_or_default();
            let host = match host.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or_default(),
                None => host.split(':').next().unwrap_or_default(),
            };
            let loopback = host == "localhost"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            !loopback
        })
    }
}

/// How the daemon writes log lines (`log_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines; under systemd's journal without timestamps of their own and
    /// with a priority prefix (`<4>` for a warning) on each line.
    #[default]
    Text,
    /// One JSON object per line (time, level, fields, spans).
    Json,
}

impl Default for MountConfig {
    fn default() -> Self {
        MountConfig {
            allow_other: false,
            allow_root: false,
            default_permissions: None,
            xattr: true,
            acl: false,
            read_only: false,
            uid: None,
            gid: None,
            umask: None,
            file_mode: None,
            dir_mode: None,
            endpoint: None,
            region: None,
            path_style: false,
            virtual_hosted: false,
            passwd_file: None,
            profile: None,
            config_file: None,
            account: None,
            service_account: None,
            attr_timeout: Duration::from_secs(10),
            entry_timeout: Duration::from_secs(10),
            negative_timeout: Duration::from_secs(5),
            dir_cache_timeout: Duration::from_secs(60),
            dir_cache_max_entries: 200_000,
            list_page_size: 1000,
            name_max: 255,
            conflict_suffix: ".file".to_string(),
            debug: false,
            log_format: LogFormat::Text,
            metrics: None,
            foreground: false,
            log_file: None,
            nonempty: false,
            stop_timeout: Duration::from_secs(60),
            credential_check: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(60),
            retries: 3,
            fuse_threads: 2,
            read_ahead_max: 48 << 20,
            cache: Some(None),
            cache_size: 10 << 30,
            cache_block_size: 1 << 20,
            part_size: 16 << 20,
            max_memory: 10 << 20,
            passthrough: true,
            write_passthrough: true,
            offline: true,
            mime: Some(PathBuf::from("/etc/mime.types")),
            sign_payload: None,
            suid: false,
            dev: false,
            exec: true,
            upload_part_size: 8 << 20,
            rename_dir_limit: 10_000,
            meta_probe_size: Some(0),
            stream_staging_max: 1 << 30,
            upload_unclosed: false,
            abort_stale_uploads: Duration::from_secs(24 * 3600),
            max_open_writes: 256,
            drive: drive::DriveOptions::default(),
        }
    }
}

impl MountConfig {
    /// Whether the kernel checks permissions against the mode bits.
    pub fn kernel_permission_checks(&self) -> bool {
        self.acl
            || self
                .default_permissions
                .unwrap_or(self.allow_other || self.allow_root)
    }

    /// Bits cleared from default modes (`umask`, else 022).
    pub fn default_umask(&self) -> u32 {
        self.umask.unwrap_or(0o022)
    }

    /// Permission bits of files without a stored mode.
    pub fn file_perm(&self) -> u16 {
        (self.file_mode.unwrap_or(0o666 & !self.default_umask()) & 0o7777) as u16
    }

    /// The block cache's root directory, or `None` when the cache is off.
    pub fn cache_root(&self) -> Option<PathBuf> {
        let explicit = self.cache.as_ref()?;
        Some(
            explicit
                .clone()
                .unwrap_or_else(|| user_dir("/var/cache", "XDG_CACHE_HOME", ".cache")),
        )
    }

    /// Permission bits of directories without a stored mode.
    pub fn dir_perm(&self) -> u16 {
        (self.dir_mode.unwrap_or(0o777 & !self.default_umask()) & 0o7777) as u16
    }
}

/// `ROOT_DIR/cloudmount` for root, else `$XDG_VAR/cloudmount` or `~/HOME_SUBDIR/cloudmount`
/// (the XDG base directory rules), falling back to `/tmp/cloudmount`.
pub fn user_dir(root_dir: &str, xdg_var: &str, home_subdir: &str) -> PathBuf {
    let base = if nix::unistd::geteuid().is_root() {
        PathBuf::from(root_dir)
    } else {
        std::env::var_os(xdg_var)
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_subdir)))
            .unwrap_or_else(|| PathBuf::from("/tmp"))
    };
    base.join("cloudmount")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_other_turns_on_kernel_permission_checks_unless_disabled() {
        let mut c = MountConfig {
            allow_other: true,
            ..Default::default()
        };
        assert!(c.kernel_permission_checks());
        c.default_permissions = Some(false);
        assert!(!c.kernel_permission_checks());
        assert!(!MountConfig::default().kernel_permission_checks());
    }

    #[test]
    fn modes_follow_umask_unless_set() {
        let c = MountConfig {
            umask: Some(0o027),
            ..Default::default()
        };
        assert_eq!((c.file_perm(), c.dir_perm()), (0o640, 0o750));
        let c = MountConfig {
            file_mode: Some(0o400),
            ..Default::default()
        };
        assert_eq!(c.file_perm(), 0o400);
    }

    #[test]
    fn payloads_are_signed_only_where_nothing_else_protects_them() {
        let with = |endpoint: Option<&str>, sign: Option<bool>| MountConfig {
            endpoint: endpoint.map(str::to_string),
            sign_payload: sign,
            ..MountConfig::default()
        };
        assert!(!with(None, None).signs_payload(), "AWS over https");
        assert!(!with(Some("https://minio.lan:9000"), None).signs_payload());
        for lo in [
            "http://127.0.0.1:9000",
            "http://localhost/",
            "http://[::1]:80",
        ] {
            assert!(!with(Some(lo), None).signs_payload(), "{lo}");
        }
        assert!(with(Some("http://minio.lan:9000"), None).signs_payload());
        assert!(with(Some("http://10.0.0.5"), None).signs_payload());
        assert!(with(Some("http://127.0.0.1"), Some(true)).signs_payload());
        assert!(!with(Some("http://minio.lan"), Some(false)).signs_payload());
    }
}
