//! The `-o` mount options: names, values, documentation, and how each one sets [`MountConfig`].
//!
//! [`OPTIONS`] is the only list of options. The command line, the TOML config file and the
//! documentation (`docs/options.md`, checked by a test) all come from it.

use super::values::{duration, flag, octal, size, uint};
use super::MountConfig;
use std::path::PathBuf;

/// What an option takes after `=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// A flag: `name`, or `name=true|false`.
    Flag,
    /// A value, described by the text (e.g. `SECONDS`).
    Value(&'static str),
}

/// One mount option.
#[derive(Debug)]
pub struct OptionSpec {
    /// The canonical name, also the TOML key.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// Flag or value.
    pub takes: Takes,
    /// One-line documentation.
    pub doc: &'static str,
    /// Sets the option on a config.
    apply: fn(&mut MountConfig, Option<&str>) -> Result<(), String>,
}

fn need(v: Option<&str>) -> Result<&str, String> {
    match v {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err("needs a value (name=value)".to_string()),
    }
}

fn path(v: Option<&str>) -> Result<PathBuf, String> {
    need(v).map(PathBuf::from)
}

macro_rules! opt {
    ($name:literal, [$($alias:literal),*], $takes:expr, $doc:literal, |$c:ident, $v:ident| $body:expr) => {
        OptionSpec {
            name: $name,
            aliases: &[$($alias),*],
            takes: $takes,
            doc: $doc,
            apply: |$c: &mut MountConfig, $v: Option<&str>| -> Result<(), String> {
                $body;
                Ok(())
            },
        }
    };
}

/// Every mount option cloudmount knows.
pub static OPTIONS: &[OptionSpec] = &[
    opt!("allow_other", [], Takes::Flag,
        "Let every user access the mount; turns on kernel permission checks (default_permissions). A non-root user needs user_allow_other in /etc/fuse.conf.",
        |c, v| c.allow_other = flag(v)?),
    opt!("allow_root", [], Takes::Flag,
        "Let root access the mount in addition to the mounting user.",
        |c, v| c.allow_root = flag(v)?),
    opt!("default_permissions", [], Takes::Flag,
        "Kernel permission checks against the mode bits. On by default with allow_other/allow_root; default_permissions=false turns them off.",
        |c, v| c.default_permissions = Some(flag(v)?)),
    opt!("xattr", ["use_xattr"], Takes::Flag,
        "Extended attributes (user.* and trusted.*), stored with each object in s3fs's format (x-amz-meta-xattr; x-ms-meta-xattr on Azure), so both tools read each other's (default on). Names and values must fit the store's metadata limit (2 KiB per object on S3, 8 KiB on Azure): past it, E2BIG or ENOSPC. security.* answers ENOTSUP. xattr=false answers ENOSYS and the kernel stops asking.",
        |c, v| c.xattr = flag(v)?),
    opt!("acl", [], Takes::Flag,
        "POSIX ACLs (setfacl/getfacl), stored as the extended attributes system.posix_acl_access and system.posix_acl_default, as s3fs stores them, and enforced by the kernel; turns on default_permissions (default off: each inode's first ACL check would cost a request in `ls -l`).",
        |c, v| c.acl = flag(v)?),
    opt!("ro", [], Takes::Flag, "Mount read-only.", |c, v| c.read_only = flag(v)?),
    opt!("rw", [], Takes::Flag, "Mount read-write (the default).",
        |c, v| c.read_only = !flag(v)?),
    opt!("suid", [], Takes::Flag, "Honour set-user-id bits of files (kernel flag; off: nosuid, the default; only root may mount with suid).",
        |c, v| c.suid = flag(v)?),
    opt!("nosuid", [], Takes::Flag, "Ignore set-user-id bits (the default).", |c, v| c.suid = !flag(v)?),
    opt!("dev", [], Takes::Flag, "Allow device files (kernel flag; object stores hold none, so nodev is the default).",
        |c, v| c.dev = flag(v)?),
    opt!("nodev", [], Takes::Flag, "No device files (the default).", |c, v| c.dev = !flag(v)?),
    opt!("exec", [], Takes::Flag, "Allow running programs from the mount (the default).", |c, v| c.exec = flag(v)?),
    opt!("noexec", [], Takes::Flag, "Refuse to run programs from the mount (kernel flag).", |c, v| c.exec = !flag(v)?),
    opt!("uid", [], Takes::Value("UID"), "Owner of every file and directory, whatever the object's stored owner (x-amz-meta-uid) says, as in s3fs (default: the stored owner, else the mounting user). See docs/permissions.md.",
        |c, v| c.uid = Some(uint(need(v)?)?)),
    opt!("gid", [], Takes::Value("GID"), "Group of every file and directory, whatever the object's stored group says (default: the stored group, else the mounting user's group).",
        |c, v| c.gid = Some(uint(need(v)?)?)),
    opt!("umask", [], Takes::Value("OCTAL"), "Bits cleared from every mode shown: the modes objects store (x-amz-meta-mode), as in s3fs, and the defaults 0666 (files) and 0777 (directories) of objects without one (default: stored modes as they are, defaults with 022 cleared).",
        |c, v| c.umask = Some(octal(need(v)?)?)),
    opt!("file_mode", [], Takes::Value("OCTAL"), "Permission bits of every file, e.g. 0640, whatever its stored mode says (overrides umask).",
        |c, v| c.file_mode = Some(octal(need(v)?)?)),
    opt!("dir_mode", [], Takes::Value("OCTAL"), "Permission bits of every directory, e.g. 0750, whatever its stored mode says (overrides umask).",
        |c, v| c.dir_mode = Some(octal(need(v)?)?)),
    opt!("endpoint", ["url"], Takes::Value("URL"), "Service endpoint, e.g. http://127.0.0.1:9000 for an S3-compatible server or http://127.0.0.1:10000/devstoreaccount1 for Azurite.",
        |c, v| c.endpoint = Some(need(v)?.to_string())),
    opt!("region", [], Takes::Value("REGION"), "S3 region (default us-east-1, or AWS_REGION).",
        |c, v| c.region = Some(need(v)?.to_string())),
    opt!("use_path_request_style", ["path_style"], Takes::Flag, "Path-style S3 requests (http://host/bucket/key); this is the default.",
        |c, v| c.path_style = flag(v)?),
    opt!("virtual_hosted", [], Takes::Flag, "Virtual-hosted-style S3 requests (http://bucket.host/key).",
        |c, v| c.virtual_hosted = flag(v)?),
    opt!("passwd_file", [], Takes::Value("FILE"), "s3fs credential file (ACCESS_KEY_ID:SECRET_ACCESS_KEY or BUCKET:ACCESS_KEY_ID:SECRET_ACCESS_KEY lines); must not be readable by group or others.",
        |c, v| c.passwd_file = Some(path(v)?)),
    opt!("profile", [], Takes::Value("NAME"), "Profile of ~/.aws/credentials (or AWS_SHARED_CREDENTIALS_FILE) to use.",
        |c, v| c.profile = Some(need(v)?.to_string())),
    opt!("config_file", [], Takes::Value("FILE"), "blobfuse connection.cfg for Azure (accountName, accountKey or sasToken, authType, containerName, blobEndpoint); must not be readable by group or others.",
        |c, v| c.config_file = Some(path(v)?)),
    opt!("account", ["account_name"], Takes::Value("NAME"), "Azure storage account (else from config_file or AZURE_STORAGE_ACCOUNT).",
        |c, v| c.account = Some(need(v)?.to_string())),
    opt!("service_account", [], Takes::Value("FILE"), "GCS or Google Drive service-account JSON key (GCS: else GOOGLE_APPLICATION_CREDENTIALS); must not be readable by group or others.",
        |c, v| c.service_account = Some(path(v)?)),
    opt!("attr_timeout", ["stat_cache_expire"], Takes::Value("DURATION"), "How long file attributes are trusted by the kernel and by cloudmount (default 10s); every cache's freshness is in one table in docs/read-path.md.",
        |c, v| c.attr_timeout = duration(need(v)?)?),
    opt!("entry_timeout", [], Takes::Value("DURATION"), "How long the kernel trusts a name lookup (default 10s).",
        |c, v| c.entry_timeout = duration(need(v)?)?),
    opt!("negative_timeout", [], Takes::Value("DURATION"), "How long a missing name stays missing without asking the server (default 5s; 0 disables).",
        |c, v| c.negative_timeout = duration(need(v)?)?),
    opt!("dir_cache_timeout", [], Takes::Value("DURATION"), "How long a complete directory listing is reused (default 60s; 0 disables).",
        |c, v| c.dir_cache_timeout = duration(need(v)?)?),
    opt!("dir_cache_max_entries", [], Takes::Value("N"), "Largest directory kept in the listing cache (default 200000); larger ones are always streamed page by page.",
        |c, v| c.dir_cache_max_entries = uint(need(v)?)?),
    opt!("name_max", [], Takes::Value("N"), "Longest file name in bytes, 1 to 1024 (default 255, the NAME_MAX POSIX tools expect; statfs reports it). Up to 1024 works where the store allows the key: S3 keys, paths included, end at 1024 bytes. Longer names answer ENAMETOOLONG and are not listed.",
        |c, v| {
            let n: usize = uint(need(v)?)?;
            if !(1..=1024).contains(&n) { return Err(format!("must be 1 to 1024, got {n}")); }
            c.name_max = n
        }),
    opt!("list_page_size", [], Takes::Value("N"), "Objects per LIST request, 1 to 1000 (default 1000).",
        |c, v| {
            let n: usize = uint(need(v)?)?;
            if !(1..=1000).contains(&n) { return Err(format!("must be 1 to 1000, got {n}")); }
            c.list_page_size = n
        }),
    opt!("conflict_suffix", [], Takes::Value("SUFFIX"), "When a file and a directory have the same name, the directory keeps the name and the file is shown as NAME+SUFFIX (default .file).",
        |c, v| {
            let s = need(v)?;
            if s.contains('/') { return Err("must not contain '/'".to_string()); }
            c.conflict_suffix = s.to_string()
        }),
    opt!("debug", [], Takes::Flag, "Debug logging (RUST_LOG overrides the level).", |c, v| c.debug = flag(v)?),
    opt!("foreground", [], Takes::Flag, "Stay in the foreground and log to stderr (same as -f).",
        |c, v| c.foreground = flag(v)?),
    opt!("log_file", ["logfile"], Takes::Value("FILE"), "Log file of the background daemon (default: /var/log/cloudmount/ for root, else ~/.local/state/cloudmount/).",
        |c, v| c.log_file = Some(path(v)?)),
    opt!("log_format", [], Takes::Value("text|json"), "How log lines are written: text (default; under systemd's journal, stderr lines carry a priority prefix such as <4> and no timestamp of their own, which journald adds) or json (one object per line: timestamp, level, fields, span).",
        |c, v| c.log_format = match need(v)? {
            "text" => super::LogFormat::Text,
            "json" => super::LogFormat::Json,
            other => return Err(format!("expected text or json, got {other:?}")),
        }),
    opt!("metrics", [], Takes::Value("ADDR:PORT"), "Serve Prometheus metrics at http://ADDR:PORT/metrics (off by default; use a loopback address such as 127.0.0.1:9464 unless the port is firewalled): requests by store operation and status with latency histograms, bytes from the store and from the cache, cache hits, misses, size and evictions, read-ahead resets, uploads, journal entries, FUSE latency by operation, memory budget and errors by errno, each series labelled mount=\"MOUNTPOINT\". `cloudmount stats` shows the same numbers.",
        |c, v| c.metrics = Some(need(v)?.parse().map_err(|e| format!("expected ADDR:PORT such as 127.0.0.1:9464: {e}"))?)),
    opt!("nonempty", [], Takes::Flag, "Allow mounting over a non-empty directory (its files are hidden while mounted).",
        |c, v| c.nonempty = flag(v)?),
    opt!("connect_timeout", [], Takes::Value("DURATION"), "Timeout of one connection attempt (default 5s).",
        |c, v| c.connect_timeout = duration(need(v)?)?),
    opt!("credential_check", [], Takes::Value("DURATION"), "How often to look whether the credential files (passwd_file or ~/.passwd-s3fs, ~/.aws/credentials, config_file, service_account) changed, and reload as on SIGHUP when they did (default 60s; 0 disables).",
        |c, v| c.credential_check = duration(need(v)?)?),
    opt!("stop_timeout", [], Takes::Value("DURATION"), "On SIGTERM, how long to wait for pending uploads before unmounting (default 60s); what is left is resumed at the next mount.",
        |c, v| c.stop_timeout = duration(need(v)?)?),
    opt!("request_timeout", [], Takes::Value("DURATION"), "Timeout of one request (default 60s).",
        |c, v| c.request_timeout = duration(need(v)?)?),
    opt!("retries", [], Takes::Value("N"), "Retries of a failed request (default 3).",
        |c, v| c.retries = uint(need(v)?)?),
    opt!("fuse_threads", [], Takes::Value("N"), "Threads reading FUSE requests (default 2; the work itself runs on an async runtime).",
        |c, v| {
            let n: usize = uint(need(v)?)?;
            if !(1..=64).contains(&n) { return Err(format!("must be 1 to 64, got {n}")); }
            c.fuse_threads = n
        }),
    opt!("read_ahead_max", [], Takes::Value("SIZE"), "Largest read-ahead window of one sequential reader (default 48M): how many bytes its GETs ask for ahead of it. Bytes asked for take memory only as they arrive (see max_memory).",
        |c, v| {
            let n = size(need(v)?)?;
            if !(4096..=(1u64 << 30)).contains(&n) { return Err("must be 4K to 1G".to_string()); }
            c.read_ahead_max = n
        }),
    opt!("cache", [], Takes::Value("DIR|off"), "Block cache directory, kept across restarts (default /var/cache/cloudmount for root, ~/.cache/cloudmount otherwise; file:// sources are not cached unless a directory is given); off disables it.",
        |c, v| {
            let d = need(v)?;
            c.cache = if d == "off" { None } else { Some(Some(PathBuf::from(d))) }
        }),
    opt!("cache_size", [], Takes::Value("SIZE"), "Most bytes the block cache keeps on disk, e.g. 10G (default).",
        |c, v| {
            let n = size(need(v)?)?;
            if n < 1 << 20 { return Err("must be at least 1M".to_string()); }
            c.cache_size = n
        }),
    opt!("cache_block_size", [], Takes::Value("SIZE"), "Size of one cached block and the unit of read-ahead (default 1M; 64K to 64M).",
        |c, v| {
            let n = size(need(v)?)?;
            if !((64u64 << 10)..=(64u64 << 20)).contains(&n) { return Err("must be 64K to 64M".to_string()); }
            c.cache_block_size = n
        }),
    opt!("part_size", [], Takes::Value("SIZE"), "Largest single ranged GET of a sequential reader (default 16M).",
        |c, v| {
            let n = size(need(v)?)?;
            if !((64u64 << 10)..=(1u64 << 30)).contains(&n) { return Err("must be 64K to 1G".to_string()); }
            c.part_size = n
        }),
    opt!("max_memory", [], Takes::Value("SIZE"), "Memory for read-ahead of all open files: bytes that arrived and were not read yet (default 10M). When it is spent, GETs pause (the rest of their answers waits in the socket) until readers catch up; blocks a reader waits for are always read. The background fill of files read at random takes at most three quarters of it.",
        |c, v| {
            let n = size(need(v)?)?;
            if n < 1 << 20 { return Err("must be at least 1M".to_string()); }
            c.max_memory = n
        }),
    opt!("upload_part_size", [], Takes::Value("SIZE"), "Part size of multipart uploads of written files (default 8M; 5M to 5G); smaller files go up in one PUT. Larger files raise it as needed to stay within 10,000 parts.",
        |c, v| {
            let n = size(need(v)?)?;
            if !((5u64 << 20)..=(5u64 << 30)).contains(&n) { return Err("must be 5M to 5G".to_string()); }
            c.upload_part_size = n
        }),
    opt!("meta_probe_size", [], Takes::Value("SIZE"), "Objects up to this size in a directory listing are HEADed for their stored modes, owners, s3fs symbolic links and special files, which LIST answers lack (default 0: empty objects only, the ones that can be FIFOs, sockets or device files; 4K also finds every s3fs symbolic link, at one request per small object; off: none). Without it, such attributes show once a name is looked up.",
        |c, v| {
            c.meta_probe_size = match need(v)? {
                "off" => None,
                v => Some(size(v)?),
            }
        }),
    opt!("stream_staging_max", [], Takes::Value("SIZE"), "How much already-uploaded data of a file written in order (a streaming upload) stays in the staging area (default 1G; 0 keeps all). Older sent parts are dropped, so copying a file of any size needs about this much local space; past that point the file can only be appended to until it is closed (rewriting, truncating or reading its start fails with ENOTSUP and a log line). Applies to writes through the daemon: a file written by the kernel (write_passthrough) keeps all of its bytes staged until closed, so copying a file larger than the cache disk's free space needs write_passthrough=false.",
        |c, v| {
            c.stream_staging_max = size(need(v)?)?
        }),
    opt!("upload_unclosed", [], Takes::Flag, "At a stop (SIGTERM, unmount), also upload files still open for writing, which no program closed yet (default: off; their content is kept, journaled as unclosed, and set aside in lost+found next to the staging directory at the next mount, so a half-written file never replaces a good object). Also uploads such content left by an earlier run.",
        |c, v| c.upload_unclosed = flag(v)?),
    opt!("abort_stale_uploads", [], Takes::Value("DURATION"), "S3: multipart uploads left unfinished under the mounted prefix (by a killed daemon or another client), which the store keeps and bills until aborted, are aborted once they are this old, at mount time and then hourly, unless the mount still has content for that key (default 24h; 0 never).",
        |c, v| c.abort_stale_uploads = duration(need(v)?)?),
    opt!("rename_dir_limit", [], Takes::Value("N"), "Most objects a directory rename may copy (default 10000); renaming a larger directory fails with EMLINK and a log line.",
        |c, v| {
            let n: usize = need(v)?.parse().map_err(|_| "must be a whole number".to_string())?;
            if n == 0 { return Err("must be at least 1".to_string()); }
            c.rename_dir_limit = n
        }),
    opt!("max_open_writes", [], Takes::Value("N"), "Most files open for writing at once (default 256); one more fails with ENFILE and a log line. Each streaming upload holds up to 4 parts of upload_part_size in memory.",
        |c, v| {
            let n: usize = need(v)?.parse().map_err(|_| "must be a whole number".to_string())?;
            if n == 0 { return Err("must be at least 1".to_string()); }
            c.max_open_writes = n
        }),
    opt!("sign_payload", [], Takes::Flag, "S3: hash every request body into its SigV4 signature. By default bodies are signed only over plain http to another host; over https TLS already protects them, and on loopback nothing is in between (UNSIGNED-PAYLOAD saves about 1 CPU second per GB written). sign_payload=false never signs, sign_payload always does.",
        |c, v| c.sign_payload = Some(flag(v)?)),
    opt!("mime", [], Takes::Value("FILE|off"), "S3, Azure and GCS: uploads set the object's Content-Type from the file name's extension, looked up in this mime types table, as s3fs does, and on S3 a rename to a name of another type re-types the copy (default /etc/mime.types; application/octet-stream for unknown extensions); off sets none.",
        |c, v| {
            let f = need(v)?;
            c.mime = if f == "off" { None } else { Some(PathBuf::from(f)) }
        }),
    opt!("offline", [], Takes::Flag, "When the store does not answer (connection refused, DNS failure, timeouts once `retries` ran out), keep serving: cached listings and attributes answer past their TTL (marked stale: the kernel keeps them 1 s), blocks in the disk cache are read, uncached reads fail at once with ENETUNREACH instead of a timeout each, and closed writes are journaled and uploaded in the background once the store answers (probed every second); `cloudmount status` shows since when (on by default; offline=off fails every operation that needs the store, after its timeouts).",
        |c, v| c.offline = flag(v)?),
    opt!("passthrough", [], Takes::Flag, "Files fully in the disk cache are read by the kernel straight from their cache file, without the daemon (FUSE passthrough; Linux 6.9 or later, daemon running as root; on by default, passthrough=false turns it off). Falls back to normal reads where unavailable.",
        |c, v| c.passthrough = flag(v)?),
    opt!("write_passthrough", [], Takes::Flag, "With passthrough, a file opened for writing from empty (a new file, or O_TRUNC) is written by the kernel straight into its staging file, without the daemon copying the bytes; it is uploaded from there at close (on by default; Linux 6.13 or later, the cache directory on ext4, xfs, btrfs or tmpfs; write_passthrough=false turns it off). Elsewhere, writes go through the daemon.",
        |c, v| c.write_passthrough = flag(v)?),
    opt!("token_file", [], Takes::Value("FILE"), "Google Drive: the token file (Google's authorized_user JSON as `cloudmount auth gdrive` writes it, a gcloud application-default credentials file, or a file holding only an access_token); default ~/.config/cloudmount/gdrive/LABEL.json. Must not be readable by group or others.",
        |c, v| c.drive.token_file = Some(path(v)?)),
    opt!("token_uri", [], Takes::Value("URL"), "Google Drive: the OAuth token endpoint, overriding the credential file's token_uri (default https://oauth2.googleapis.com/token).",
        |c, v| c.drive.token_uri = Some(need(v)?.to_string())),
    opt!("subject", [], Takes::Value("EMAIL"), "Google Drive: the user a service_account acts as (domain-wide delegation).",
        |c, v| c.drive.subject = Some(need(v)?.to_string())),
    opt!("root_folder", [], Takes::Value("ID"), "Google Drive: start at this folder id instead of My Drive's root (the source's PATH is then below it).",
        |c, v| c.drive.root_folder = Some(drive_id(need(v)?)?)),
    opt!("drive_id", ["team_drive"], Takes::Value("ID"), "Google Drive: mount the shared drive with this id (the source's PATH is below its root).",
        |c, v| c.drive.drive_id = Some(drive_id(need(v)?)?)),
    opt!("poll_interval", [], Takes::Value("DURATION"), "Google Drive: how often the changes feed is read, so that changes made elsewhere show within one interval whatever the cache timeouts (default 60s; 0 disables).",
        |c, v| c.drive.poll_interval = duration(need(v)?)?),
    opt!("gdocs", [], Takes::Value("export|hide"), "Google Drive: show Google Docs, Sheets, Slides and Drawings as read-only exported files (export, the default) or not at all (hide).",
        |c, v| c.drive.gdocs = match need(v)? {
            "export" => super::drive::GDocs::Export,
            "hide" => super::drive::GDocs::Hide,
            other => return Err(format!("must be export or hide, got {other:?}")),
        }),
    opt!("export_document", [], Takes::Value("EXT"), "Google Drive: export format of Google Docs (docx, the default; odt, rtf, txt, md, epub, pdf).",
        |c, v| c.drive.export_document = export(v, &["docx", "odt", "rtf", "txt", "md", "epub", "pdf"])?),
    opt!("export_spreadsheet", [], Takes::Value("EXT"), "Google Drive: export format of Google Sheets (xlsx, the default; ods, csv, tsv, pdf).",
        |c, v| c.drive.export_spreadsheet = export(v, &["xlsx", "ods", "csv", "tsv", "pdf"])?),
    opt!("export_presentation", [], Takes::Value("EXT"), "Google Drive: export format of Google Slides (pptx, the default; odp, pdf, txt).",
        |c, v| c.drive.export_presentation = export(v, &["pptx", "odp", "pdf", "txt"])?),
    opt!("export_drawing", [], Takes::Value("EXT"), "Google Drive: export format of Google Drawings (png, the default; jpg, svg, pdf).",
        |c, v| c.drive.export_drawing = export(v, &["png", "jpg", "svg", "pdf"])?),
    opt!("trash", [], Takes::Value("hide|show"), "Google Drive: trashed files are hidden (hide, the default) or shown under .Trash in the mount's root (show).",
        |c, v| c.drive.show_trash = match need(v)? {
            "hide" => false,
            "show" => true,
            other => return Err(format!("must be hide or show, got {other:?}")),
        }),
    opt!("delete", [], Takes::Value("trash|permanent"), "Google Drive: rm and rmdir move to the trash (trash, the default, as google-drive-ocamlfuse does) or delete for good (permanent).",
        |c, v| c.drive.delete_permanently = match need(v)? {
            "trash" => false,
            "permanent" => true,
            other => return Err(format!("must be trash or permanent, got {other:?}")),
        }),
    opt!("drive_rate", [], Takes::Value("N"), "Google Drive: most API requests per second on average (default 10, after a burst of 100; 0: no limit). Drive answers more with rate-limit errors, which are retried with back-off.",
        |c, v| {
            let r: f64 = need(v)?.parse().map_err(|_| "must be a number".to_string())?;
            if !(0.0..=100_000.0).contains(&r) { return Err("must be 0 to 100000".to_string()); }
            c.drive.rate = r
        }),
];

fn drive_id(v: &str) -> Result<String, String> {
    if v.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        Ok(v.to_string())
    } else {
        Err(format!(
            "{v:?} is not a Drive id (letters, digits, - and _ only)"
        ))
    }
}

fn export(v: Option<&str>, allowed: &[&str]) -> Result<String, String> {
    let e = need(v)?.trim_start_matches('.').to_ascii_lowercase();
    if allowed.contains(&e.as_str()) {
        Ok(e)
    } else {
        Err(format!("must be one of {}, got {e:?}", allowed.join(", ")))
    }
}

/// A bad option, with enough context for the user to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptionError {
    /// The name is not an option.
    #[error("unknown mount option {name:?}{hint}; `cloudmount mount --help` and docs/options.md list every option")]
    Unknown {
        /// What was given.
        name: String,
        /// A suggestion, if a known name is close.
        hint: String,
    },
    /// The value does not fit the option.
    #[error("mount option {name:?}: {reason}")]
    BadValue {
        /// The option.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The `-o` list itself is malformed.
    #[error("malformed -o list {list:?}: {reason}")]
    Malformed {
        /// The list.
        list: String,
        /// What is wrong.
        reason: String,
    },
}

/// Find an option by name or alias.
pub fn find(name: &str) -> Option<&'static OptionSpec> {
    OPTIONS
        .iter()
        .find(|o| o.name == name || o.aliases.contains(&name))
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Set one option on `cfg`.
pub fn apply_option(
    cfg: &mut MountConfig,
    name: &str,
    value: Option<&str>,
) -> Result<(), OptionError> {
    let Some(spec) = find(name) else {
        let hint = OPTIONS
            .iter()
            .map(|o| (edit_distance(o.name, name), o.name))
            .filter(|(d, _)| *d <= 2)
            .min()
            .map(|(_, n)| format!(" (did you mean {n:?}?)"))
            .unwrap_or_default();
        return Err(OptionError::Unknown {
            name: name.to_string(),
            hint,
        });
    };
    (spec.apply)(cfg, value).map_err(|reason| OptionError::BadValue {
        name: name.to_string(),
        reason,
    })
}

/// Apply a comma-separated `-o` list such as `allow_other,uid=1000,endpoint=http://h:9000`.
pub fn apply_option_list(cfg: &mut MountConfig, list: &str) -> Result<(), OptionError> {
    for item in list.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(OptionError::Malformed {
                list: list.to_string(),
                reason: "empty option between commas".to_string(),
            });
        }
        let (name, value) = match item.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v)),
            None => (item, None),
        };
        if name.is_empty() {
            return Err(OptionError::Malformed {
                list: list.to_string(),
                reason: format!("{item:?} has no option name before '='"),
            });
        }
        apply_option(cfg, name, value)?;
    }
    Ok(())
}

/// The options reference as Markdown (`docs/options.md` is this text, checked by a test).
pub fn markdown_reference() -> String {
    let mut s = String::from(
        "# Mount options\n\n<!-- Generated from src/config/options.rs by `UPDATE_DOCS=1 cargo test --lib docs`; do not edit. -->\n\n\
         Give them as `-o name[=value],...` on the command line, or as `name = value` keys in the\n\
         TOML file passed with `--config` (see `config/cloudmount.example.toml`). Command-line\n\
         options win over the file. Durations take `500ms`, `30s`, `5m`, `2h` or plain seconds;\n\
         sizes take `4096`, `512K`, `16M`, `10G`.\n\n| option | aliases | value | meaning |\n|---|---|---|---|\n",
    );
    for o in OPTIONS {
        let value = match o.takes {
            Takes::Flag => "flag".to_string(),
            Takes::Value(v) => format!("`{v}`"),
        };
        let aliases = o
            .aliases
            .iter()
            .map(|a| format!("`{a}`"))
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!(
            "| `{}` | {aliases} | {value} | {} |\n",
            o.name,
            o.doc.replace('|', "\\|")
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn docs_options_md_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/options.md");
        let want = markdown_reference();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            have == want,
            "docs/options.md is out of date: run `UPDATE_DOCS=1 cargo test --lib docs`"
        );
    }

    #[test]
    fn example_config_documents_every_option() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/cloudmount.example.toml"
        ))
        .unwrap();
        for o in OPTIONS {
            let documented = text.lines().any(|l| {
                let l = l.trim_start_matches('#').trim_start();
                l.strip_prefix(o.name)
                    .is_some_and(|r| r.trim_start().starts_with('='))
            });
            assert!(
                documented,
                "config/cloudmount.example.toml lacks a `{} = ...` line",
                o.name
            );
        }
        // And the uncommented part of the example must load.
        let mut c = MountConfig::default();
        let table: toml::Table = toml::from_str(&text).unwrap();
        for (k, v) in table {
            let v = match v {
                toml::Value::String(s) => s,
                other => other.to_string(),
            };
            apply_option(&mut c, &k, Some(&v)).unwrap();
        }
    }

    #[test]
    fn applies_a_list() {
        let mut c = MountConfig::default();
        apply_option_list(
            &mut c,
            "allow_other,uid=1000,url=http://h:9000,attr_timeout=2,ro",
        )
        .unwrap();
        assert!(c.allow_other && c.read_only);
        assert_eq!(c.uid, Some(1000));
        assert_eq!(c.endpoint.as_deref(), Some("http://h:9000"));
        assert_eq!(c.attr_timeout, Duration::from_secs(2));
    }

    #[test]
    fn reports_unknown_malformed_and_bad_values() {
        let mut c = MountConfig::default();
        let e = apply_option_list(&mut c, "allow_othr").unwrap_err();
        assert!(
            e.to_string()
                .contains("unknown mount option \"allow_othr\""),
            "{e}"
        );
        let e = apply_option_list(&mut c, "ro,,uid=1").unwrap_err();
        assert!(matches!(e, OptionError::Malformed { .. }), "{e}");
        let e = apply_option_list(&mut c, "uid=abc").unwrap_err();
        assert!(
            e.to_string().contains("\"uid\": expected a whole number"),
            "{e}"
        );
        let e = apply_option_list(&mut c, "=3").unwrap_err();
        assert!(matches!(e, OptionError::Malformed { .. }), "{e}");
        let e = apply_option_list(&mut c, "endpoint").unwrap_err();
        assert!(e.to_string().contains("needs a value"), "{e}");
    }

    #[test]
    fn names_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for o in OPTIONS {
            for n in std::iter::once(&o.name).chain(o.aliases) {
                assert!(seen.insert(*n), "duplicate option name {n}");
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz::config())]

        /// Fuzz target: the `-o` list parser answers every input, with an error or a config.
        #[test]
        fn fuzz_option_lists(list in crate::fuzz::text(&[
            "allow_other,uid=1000,gid=1000,umask=022,attr_timeout=30s",
            "endpoint=http://127.0.0.1:9000,cache=/var/cache/x,cache_size=10G,part_size=8M",
            "ro,noexec,max_memory=64M,read_ahead_max=1G,list_page_size=1000,drive_rate=2.5",
            "gdocs=hide,trash=show,delete=permanent,export_document=pdf,drive_id=0AbC_-",
        ])) {
            let mut c = MountConfig::default();
            let _ = apply_option_list(&mut c, &list);
        }
    }
}
