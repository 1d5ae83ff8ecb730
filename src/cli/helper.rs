//! The mount helper: the same binary run by `mount -t cloudmount SOURCE DIR -o ...` (as
//! `/sbin/mount.cloudmount`, which `make install` links) and by `mount.fuse3` for
//! `fuse.cloudmount` entries (as `cloudmount SOURCE DIR -o ...`).
//!
//! mount(8) runs a helper as `mount.TYPE SOURCE DIR [-sfnv] [-N NS] [-o OPTIONS] [-t TYPE]`.
//! Of the options: the ones only mount(8) and systemd read (`_netdev`, `nofail`, `noauto`,
//! `user`, `x-systemd.*`, `defaults`, ...) are dropped here, so they never reach the daemon
//! or the kernel; `ro`/`rw`, `suid`/`nosuid`, `dev`/`nodev` and `exec`/`noexec` become the
//! kernel mount flags; the rest are cloudmount's own options (`docs/options.md`). An unknown
//! option is an error, as on the command line, unless `-s` (sloppy) was given.

use super::mount::MountArgs;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Options that only mount(8), systemd or the fstab reader use (`x-*` and `comment=*` too),
/// and the access-time and sync flags, which mean nothing for an object store (the mount is
/// always `noatime`; writes are uploaded at close and fsync).
const USERSPACE_ONLY: &[&str] = &[
    "_netdev",
    "nofail",
    "noauto",
    "auto",
    "user",
    "nouser",
    "users",
    "owner",
    "group",
    "defaults",
    "sync",
    "async",
    "atime",
    "noatime",
    "relatime",
    "norelatime",
    "strictatime",
    "lazytime",
    "nolazytime",
    "diratime",
    "nodiratime",
];

/// Split an fstab/`-o` option list: (cloudmount options and kernel flags, unknown options);
/// the ones only mount(8) and systemd read are left out of both.
pub fn split_options(list: &str, known: &impl Fn(&str) -> bool) -> (Vec<String>, Vec<String>) {
    let mut kept = Vec::new();
    let mut unknown = Vec::new();
    for opt in list.split(',').filter(|o| !o.is_empty()) {
        let name = opt.split('=').next().unwrap_or_default();
        let userspace = USERSPACE_ONLY.contains(&name)
            || name.starts_with("x-")
            || name == "comment"
            || name == "helper";
        if userspace {
            continue;
        }
        if known(name) {
            kept.push(opt.to_string());
        } else {
            unknown.push(opt.to_string());
        }
    }
    (kept, unknown)
}

/// Whether `name` is one of cloudmount's options (or an alias).
pub fn known_option(name: &str) -> bool {
    cloudmount::config::options::OPTIONS
        .iter()
        .any(|o| o.name == name || o.aliases.contains(&name))
}

/// What a helper invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperRequest {
    /// The mount to make (options already filtered).
    pub source: String,
    /// Where.
    pub mountpoint: PathBuf,
    /// cloudmount options and kernel flags, comma separated.
    pub options: String,
    /// `-f`: mount(8)'s fake mode: check, then do nothing.
    pub fake: bool,
    /// `-v`: say what is done.
    pub verbose: bool,
    /// Options dropped as unknown under `-s`.
    pub dropped: Vec<String>,
}

/// Whether `argv` is a helper invocation: run as `mount.cloudmount` (or any `mount.*` name),
/// or as `cloudmount SOURCE DIR ...` with a URL where a subcommand would be.
pub fn is_helper(argv: &[OsString]) -> bool {
    let name = argv
        .first()
        .map(Path::new)
        .and_then(Path::file_name)
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with("mount.") {
        return true;
    }
    argv.get(1)
        .map(|a| a.to_string_lossy())
        .is_some_and(|a| a.contains("://"))
}

/// Parse a helper command line (`argv[0]` included).
pub fn parse(argv: &[OsString], known: impl Fn(&str) -> bool) -> Result<HelperRequest, String> {
    let usage = "usage: mount.cloudmount SOURCE MOUNTPOINT [-sfnv] [-o OPTIONS]";
    let mut positional = Vec::new();
    let mut raw_options = Vec::new();
    let (mut sloppy, mut fake, mut verbose) = (false, false, false);
    let mut args = argv
        .iter()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = args.next() {
        if let Some(flags) = a.strip_prefix('-').filter(|f| !f.is_empty()) {
            let mut chars = flags.chars();
            while let Some(c) = chars.next() {
                match c {
                    's' => sloppy = true,
                    'f' => fake = true,
                    'v' => verbose = true,
                    'n' => {}
                    'o' | 't' | 'N' => {
                        let rest: String = chars.collect();
                        let value = if rest.is_empty() {
                            args.next()
                                .ok_or_else(|| format!("-{c} needs a value; {usage}"))?
                        } else {
                            rest
                        };
                        if c == 'o' {
                            raw_options.push(value);
                        }
                        break;
                    }
                    other => return Err(format!("unknown flag -{other}; {usage}")),
                }
            }
        } else {
            positional.push(a);
        }
    }
    let [source, mountpoint] = <[String; 2]>::try_from(positional)
        .map_err(|p| format!("expected SOURCE and MOUNTPOINT, got {p:?}; {usage}"))?;
    let (kept, dropped) = split_options(&raw_options.join(","), &known);
    if let Some(opt) = dropped.first().filter(|_| !sloppy) {
        return Err(format!(
            "unknown mount option {opt:?} (the fstab line or -o list); `cloudmount mount \
             --help` and docs/options.md list every option, -s ignores unknown ones"
        ));
    }
    Ok(HelperRequest {
        source,
        mountpoint: PathBuf::from(mountpoint),
        options: kept.join(","),
        fake,
        verbose,
        dropped,
    })
}

/// Run a helper invocation: mount in the background, returning once the mount answers (or
/// with the reason it failed), as mount(8) expects of a helper.
pub fn run(argv: &[OsString]) -> Result<(), String> {
    let req = parse(argv, known_option)?;
    for d in &req.dropped {
        eprintln!("cloudmount: ignoring unknown option {d:?} (-s)");
    }
    if req.verbose {
        eprintln!(
            "cloudmount: mounting {} on {} with -o {}",
            req.source,
            req.mountpoint.display(),
            req.options
        );
    }
    if req.fake {
        return Ok(());
    }
    super::mount::run(MountArgs {
        source: req.source,
        mountpoint: req.mountpoint,
        options: if req.options.is_empty() {
            Vec::new()
        } else {
            vec![req.options]
        },
        config: None,
        foreground: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn known(n: &str) -> bool {
        [
            "ro",
            "rw",
            "endpoint",
            "uid",
            "allow_other",
            "nosuid",
            "noexec",
            "exec",
        ]
        .contains(&n)
    }

    #[test]
    fn helpers_are_recognised_by_name_or_by_a_url_first() {
        assert!(is_helper(&argv(&[
            "/sbin/mount.cloudmount",
            "s3://b",
            "/m"
        ])));
        assert!(is_helper(&argv(&[
            "cloudmount",
            "s3://b",
            "/m",
            "-o",
            "ro"
        ])));
        assert!(!is_helper(&argv(&["cloudmount", "mount", "s3://b", "/m"])));
        assert!(!is_helper(&argv(&["cloudmount", "--help"])));
    }

    #[test]
    fn userspace_options_are_dropped_and_the_rest_kept() {
        let r = parse(
            &argv(&[
                "mount.cloudmount",
                "s3://bucket/pre",
                "/mnt/x",
                "-n",
                "-o",
                "rw,_netdev,nofail,noauto,x-systemd.automount,x-systemd.mount-timeout=30,\
                 defaults,uid=33,allow_other,endpoint=http://127.0.0.1:9000,noexec,user,comment=x",
            ]),
            known,
        )
        .unwrap();
        assert_eq!(r.source, "s3://bucket/pre");
        assert_eq!(r.mountpoint, PathBuf::from("/mnt/x"));
        assert_eq!(
            r.options,
            "rw,uid=33,allow_other,endpoint=http://127.0.0.1:9000,noexec"
        );
        assert!(!r.fake);
    }

    #[test]
    fn unknown_options_fail_unless_sloppy_and_flags_combine() {
        let e = parse(
            &argv(&["mount.cloudmount", "s3://b", "/m", "-o", "bogus=1"]),
            known,
        )
        .unwrap_err();
        assert!(
            e.contains("\"bogus=1\"") && e.contains("docs/options.md"),
            "{e}"
        );
        let r = parse(
            &argv(&["mount.cloudmount", "s3://b", "/m", "-sfv", "-oro,bogus"]),
            known,
        )
        .unwrap();
        assert_eq!((r.options.as_str(), r.fake, r.verbose), ("ro", true, true));
        assert_eq!(r.dropped, vec!["bogus".to_string()]);
        assert!(parse(&argv(&["mount.cloudmount", "s3://b"]), known).is_err());
        assert!(parse(&argv(&["mount.cloudmount", "s3://b", "/m", "-q"]), known).is_err());
    }
}
