//! systemd units for one mount, filled in from the templates in `systemd/`: a `Type=notify`
//! service (the default), or a `.mount` unit that runs `mount.cloudmount`, plus an
//! `.automount` to mount on first access. Shared by `cloudmount systemd-unit` and the
//! generator; `cloudmount fstab --check` uses the same checks.

use super::helper::{known_option, split_options};
use cloudmount::daemon::escape_path;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

const SERVICE: &str = include_str!("../../systemd/cloudmount@.service.in");
const MOUNT: &str = include_str!("../../systemd/cloudmount.mount.in");
const AUTOMOUNT: &str = include_str!("../../systemd/cloudmount.automount.in");

/// Options naming a file with secrets: checked to be private. Units keep the path (not a
/// secret) in `ExecStart=`/`Options=`, so SIGHUP re-reads a rotated file; systemd's
/// `LoadCredential=` copies would stay as they were at start.
const CREDENTIAL_OPTIONS: [&str; 4] = [
    "passwd_file",
    "config_file",
    "service_account",
    "token_file",
];

/// One mount as an operator declares it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MountSpec {
    /// `s3://BUCKET[/PREFIX]`, `az://...`, `gs://...` or `file:///DIR`.
    pub source: String,
    /// Absolute path of the mountpoint.
    pub mountpoint: PathBuf,
    /// Options as given: cloudmount options, kernel flags, and mount(8)/systemd ones.
    pub options: Vec<String>,
    /// Mount on first access (an `.automount` with a `.mount` unit) instead of at boot.
    pub automount: bool,
    /// Boot waits for this mount and fails without it (`RequiredBy=`, not `WantedBy=`).
    pub required: bool,
    /// A `.mount` unit through `mount.cloudmount` instead of a service.
    pub mount_unit: bool,
    /// Units this mount is started with and must be up before (`Before=` and `WantedBy=`,
    /// or `RequiredBy=` when required), e.g. `docker.service` for a CVAT share.
    pub before: Vec<String>,
}

/// A unit file: its name and its text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// File name, e.g. `cloudmount@srv-share.service`.
    pub name: String,
    /// Contents.
    pub text: String,
}

impl MountSpec {
    /// The options, comma separated, as one list.
    fn option_list(&self) -> String {
        self.options.join(",")
    }

    /// Whether it is mounted on first access (asked for, or `x-systemd.automount` given).
    pub fn is_automount(&self) -> bool {
        self.automount
            || self
                .option_list()
                .split(',')
                .any(|o| o == "x-systemd.automount")
    }

    /// What is wrong with this mount, one message per problem (empty when nothing is).
    /// With `on_this_host`, also that the mountpoint exists and credential files are private.
    pub fn problems(&self, on_this_host: bool) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = cloudmount::config::Source::parse(&self.source) {
            out.push(e);
        }
        let mp = self.mountpoint.display().to_string();
        for (what, text) in [("source", self.source.as_str()), ("mountpoint", &mp)]
            .into_iter()
            .chain(self.options.iter().map(|o| ("option", o.as_str())))
        {
            if text.chars().any(char::is_control) {
                out.push(format!("the {what} {text:?} contains a control character"));
            }
        }
        if !self.mountpoint.is_absolute()
            || self
                .mountpoint
                .components()
                .any(|c| matches!(c, Component::ParentDir))
        {
            out.push(format!(
                "mountpoint {mp} must be an absolute path without '..'"
            ));
        } else if on_this_host && !self.mountpoint.is_dir() {
            out.push(format!(
                "mountpoint {mp} does not exist (or is not a directory); create it"
            ));
        }
        let (kept, unknown) = split_options(&self.option_list(), &known_option);
        for u in unknown {
            out.push(format!(
                "unknown option {u:?}; `cloudmount mount --help` and docs/options.md list every option"
            ));
        }
        if let Err(e) = self.config() {
            out.push(e);
        }
        for u in &self.before {
            if !is_unit_name(u) {
                out.push(format!(
                    "before: {u:?} is not a unit name (such as docker.service or \
                     multi-user.target)"
                ));
            }
        }
        if on_this_host {
            for (name, value) in kept.iter().filter_map(|o| o.split_once('=')) {
                if CREDENTIAL_OPTIONS.contains(&name) {
                    if let Err(e) = cloudmount::credentials::check_private(Path::new(value)) {
                        out.push(format!("{name}: {e}"));
                    }
                }
            }
        }
        out
    }

    /// What units cannot express: a mountpoint with `%` (a specifier in `Where=`), or one whose
    /// unit name would be longer than a file name may be.
    pub fn unit_problems(&self) -> Vec<String> {
        let mp = self.mountpoint.display().to_string();
        let mut out = Vec::new();
        if mp.contains('%') {
            out.push(format!(
                "mountpoint {mp} contains '%', which unit files cannot name"
            ));
        }
        // "cloudmount@" + name + ".service" must fit in NAME_MAX (255).
        if escape_path(&self.mountpoint).len() > 230 {
            out.push(format!(
                "mountpoint {mp} is too long for a unit name; mount it at a shorter path"
            ));
        }
        out
    }

    /// The stop timeout the units give systemd: the daemon's `stop_timeout`, and a minute for
    /// the unmount and the cache writes that follow it.
    fn stop_timeout(&self) -> Duration {
        let cfg = self.config().unwrap_or_default();
        cfg.stop_timeout.saturating_add(Duration::from_secs(60))
    }

    /// The daemon's configuration from the options (the ones mount(8) and systemd read left
    /// out); an error names the first option that does not parse.
    fn config(&self) -> Result<cloudmount::config::MountConfig, String> {
        let (kept, _) = split_options(&self.option_list(), &known_option);
        let mut cfg = cloudmount::config::MountConfig::default();
        if !kept.is_empty() {
            cloudmount::config::apply_option_list(&mut cfg, &kept.join(","))
                .map_err(|e| e.to_string())?;
        }
        Ok(cfg)
    }

    /// The unit `systemctl enable` (or the generator's wants link) names.
    pub fn enabled_unit(&self) -> String {
        let esc = escape_path(&self.mountpoint);
        if self.is_automount() {
            format!("{esc}.automount")
        } else if self.mount_unit {
            format!("{esc}.mount")
        } else {
            format!("cloudmount@{esc}.service")
        }
    }

    /// The target section word: `WantedBy` or `RequiredBy`.
    fn install_word(&self) -> &'static str {
        if self.required {
            "RequiredBy"
        } else {
            "WantedBy"
        }
    }

    /// `Before=` lines for the units this mount must be up before.
    fn ordering(&self) -> String {
        self.before
            .iter()
            .map(|u| format!("Before={u}\n"))
            .collect()
    }

    /// `WantedBy=`/`RequiredBy=` lines for the units this mount must be up before.
    fn also_wanted_by(&self) -> String {
        self.before
            .iter()
            .map(|u| format!("{}={u}\n", self.install_word()))
            .collect()
    }

    /// The `.wants`/`.requires` directories the enabled unit is linked from.
    pub fn link_dirs(&self) -> Vec<String> {
        let kind = if self.required { "requires" } else { "wants" };
        std::iter::once("remote-fs.target")
            .chain(self.before.iter().map(String::as_str))
            .map(|u| format!("{u}.{kind}"))
            .collect()
    }

    /// The units of this mount, running `bin`; `generated` says what wrote them.
    /// Call [`MountSpec::problems`] first: this only renders.
    pub fn units(&self, bin: &Path, generated: &str) -> Vec<Unit> {
        let esc = escape_path(&self.mountpoint);
        let mp = self.mountpoint.display().to_string();
        let timeout = format!("{}s", self.stop_timeout().as_secs());
        let fill = |template: &str| {
            template
                .replace("@GENERATED@", generated)
                .replace("@SOURCE@", &specifiers(&self.source))
                .replace("@MOUNTPOINT@", &mp)
                .replace("@TIMEOUT_STOP@", &timeout)
                .replace("@WANTED_BY@", self.install_word())
                .replace("@BEFORE@\n", &self.ordering())
                .replace("@ALSO_WANTED_BY@\n", &self.also_wanted_by())
        };
        let mut units = Vec::new();
        if self.is_automount() || self.mount_unit {
            let mut opts: Vec<String> = self
                .option_list()
                .split(',')
                .filter(|o| !o.is_empty() && *o != "x-systemd.automount")
                .map(str::to_string)
                .collect();
            if !opts.iter().any(|o| o == "_netdev") {
                opts.push("_netdev".into());
            }
            units.push(Unit {
                name: format!("{esc}.mount"),
                text: fill(MOUNT).replace("@OPTIONS@", &specifiers(&opts.join(","))),
            });
            if self.is_automount() {
                units.push(Unit {
                    name: format!("{esc}.automount"),
                    text: fill(AUTOMOUNT).replace("@IDLE@", "0"),
                });
            }
            return units;
        }
        let (opts, _) = split_options(&self.option_list(), &known_option);
        let mut argv = vec![
            bin.display().to_string(),
            "mount".into(),
            "--foreground".into(),
            self.source.clone(),
            mp.clone(),
        ];
        if !opts.is_empty() {
            argv.push("-o".into());
            argv.push(opts.join(","));
        }
        let exec = argv
            .iter()
            .map(|a| exec_quote(a))
            .collect::<Vec<_>>()
            .join(" ");
        let parent = self
            .mountpoint
            .parent()
            .filter(|p| *p != Path::new("/"))
            .map(|p| format!("RequiresMountsFor={}\n", word(&p.display().to_string())))
            .unwrap_or_default();
        units.push(Unit {
            name: format!("cloudmount@{esc}.service"),
            text: fill(SERVICE)
                .replace("@EXEC_START@", &exec)
                .replace("@REQUIRES_MOUNTS_FOR@\n", &parent),
        });
        units
    }
}

/// Whether `u` is a plain unit name: `NAME.TYPE`, of the characters unit names may hold.
fn is_unit_name(u: &str) -> bool {
    const TYPES: [&str; 6] = [
        ".service", ".target", ".mount", ".socket", ".path", ".timer",
    ];
    TYPES.iter().any(|t| u.len() > t.len() && u.ends_with(t))
        && u.len() <= 255
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || ":-_.\\@".contains(c))
}

/// `%` written so systemd does not read it as a specifier.
fn specifiers(s: &str) -> String {
    s.replace('%', "%%")
}

/// One `ExecStart=` word: specifiers and variables escaped, quoted when it has to be.
fn exec_quote(arg: &str) -> String {
    word(&arg.replace('$', "$$"))
}

/// One word of a space-separated unit setting: specifiers escaped, quoted when it has to be.
fn word(arg: &str) -> String {
    let s = specifiers(arg);
    let plain = !s.is_empty()
        && s != ";"
        && !s
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\'));
    if plain {
        s
    } else {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(src: &str, mp: &str, opts: &[&str]) -> MountSpec {
        MountSpec {
            source: src.into(),
            mountpoint: mp.into(),
            options: opts.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_service_keeps_the_credential_path_and_quotes_its_arguments() {
        let s = spec(
            "s3://b/p%x",
            "/srv/my share",
            &[
                "allow_other,passwd_file=/etc/cm/p,_netdev",
                "stop_timeout=5s",
            ],
        );
        let units = s.units(Path::new("/usr/bin/cloudmount"), "test");
        assert_eq!(units.len(), 1);
        let u = &units[0];
        assert_eq!(u.name, "cloudmount@srv-my\\x20share.service");
        assert!(
            u.text.contains(
                "ExecStart=/usr/bin/cloudmount mount --foreground s3://b/p%%x \"/srv/my share\" \
             -o allow_other,passwd_file=/etc/cm/p,stop_timeout=5s\n"
            ),
            "{}",
            u.text
        );
        assert!(!u.text.contains("LoadCredential"), "{}", u.text);
        assert!(u.text.contains("Type=notify\n") && u.text.contains("TimeoutStopSec=65s\n"));
        assert!(u.text.contains("RequiresMountsFor=/srv\n"));
        assert!(u
            .text
            .contains("After=network-online.target\nBefore=remote-fs.target\n"));
        assert!(u.text.contains("WantedBy=remote-fs.target"));
        assert!(!u.text.contains('@') || !u.text.contains("@SOURCE@"));
        assert_eq!(s.enabled_unit(), u.name);
    }

    #[test]
    fn automount_gives_a_mount_and_an_automount_unit() {
        let mut s = spec("az://c", "/mnt/az", &["ro,x-systemd.automount"]);
        s.required = true;
        let units = s.units(Path::new("/bin/cm"), "test");
        let names: Vec<_> = units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["mnt-az.mount", "mnt-az.automount"]);
        assert!(
            units[0]
                .text
                .contains("What=az://c\nWhere=/mnt/az\nType=cloudmount\nOptions=ro,_netdev\n"),
            "{}",
            units[0].text
        );
        assert!(units[1].text.contains("Where=/mnt/az\n"));
        assert!(units[1].text.contains("RequiredBy=remote-fs.target"));
        assert_eq!(s.enabled_unit(), "mnt-az.automount");
        for u in &units {
            assert!(
                !u.text.contains("@"),
                "a placeholder is left in {}:\n{}",
                u.name,
                u.text
            );
        }
    }

    #[test]
    fn a_drive_mount_takes_its_options_and_its_token_file_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("gdrive-work.json");
        std::fs::write(&token, "{}").unwrap();
        let opts = format!(
            "allow_other,uid=1000,token_file={},drive_id=0AbC,poll_interval=30s,gdocs=hide,trash=show,delete=permanent,export_document=pdf",
            token.display()
        );
        let s = spec(
            "gdrive://work/Datasets/cvat",
            "/srv/cvat-share/gd",
            &[&opts],
        );
        assert!(s.problems(false).is_empty(), "{:?}", s.problems(false));
        let units = s.units(Path::new("/usr/bin/cloudmount"), "test");
        assert!(units[0].text.contains("mount --foreground gdrive://work/Datasets/cvat /srv/cvat-share/gd -o allow_other,uid=1000,token_file="), "{}", units[0].text);
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token, std::fs::Permissions::from_mode(0o644)).unwrap();
        let p = s.problems(true).join("\n");
        assert!(p.contains("token_file") && p.contains("chmod 600"), "{p}");
        for (opt, says) in [
            ("gdocs=maybe", "export or hide"),
            ("drive_id=a/b", "not a Drive id"),
        ] {
            let bad = spec("gdrive:///x", "/m", &[opt]).problems(false).join("\n");
            assert!(bad.contains(says), "{bad}");
        }
    }

    #[test]
    fn problems_name_the_option_or_the_path() {
        assert!(spec("s3://b", "/m", &["ro"]).problems(false).is_empty());
        let p = spec("bucket", "rel/m", &["bogus,uid=x"])
            .problems(false)
            .join("\n");
        assert!(p.contains("absolute path"), "{p}");
        assert!(p.contains("unknown option \"bogus\""), "{p}");
        assert!(p.contains("uid"), "{p}");
        let p = spec("s3://b", "/does/not/exist/here", &[])
            .problems(true)
            .join("\n");
        assert!(p.contains("does not exist"), "{p}");
        let p = spec(
            "s3://b",
            "/m",
            &["endpoint=http://x\nExecStartPre=/bin/evil"],
        )
        .problems(false);
        assert!(p.join("\n").contains("control character"), "{p:?}");
        assert!(
            spec("s3://b", "/m%i", &[]).problems(false).is_empty(),
            "fstab may name it"
        );
        assert_eq!(spec("s3://b", "/m%i", &[]).unit_problems().len(), 1);
        let long = format!("/{}", "d".repeat(240));
        assert_eq!(spec("s3://b", &long, &[]).unit_problems().len(), 1);
    }

    #[test]
    fn before_orders_the_service_and_links_it_from_those_units() {
        let mut s = spec("s3://b", "/srv/share/b", &["ro"]);
        s.before = vec!["docker.service".into()];
        assert!(s.problems(false).is_empty(), "{:?}", s.problems(false));
        let u = &s.units(Path::new("/usr/bin/cloudmount"), "test")[0];
        assert!(
            u.text
                .contains("Before=remote-fs.target\nBefore=docker.service\n"),
            "{}",
            u.text
        );
        assert!(
            u.text
                .contains("WantedBy=remote-fs.target\nWantedBy=docker.service\n"),
            "{}",
            u.text
        );
        assert_eq!(
            s.link_dirs(),
            ["remote-fs.target.wants", "docker.service.wants"]
        );
        s.required = true;
        assert_eq!(
            s.link_dirs(),
            ["remote-fs.target.requires", "docker.service.requires"]
        );
        s.before = vec!["docker service".into(), "docker".into()];
        assert_eq!(s.problems(false).len(), 2, "{:?}", s.problems(false));
    }
}
