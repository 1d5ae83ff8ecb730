//! `cloudmount fstab SOURCE MOUNTPOINT [-o ...]` prints a correct fstab line;
//! `cloudmount fstab --check [FILE]` validates every cloudmount line of an fstab and prints
//! one line per problem (`FILE:LINE: ...`), exiting non-zero when there is any.

use super::helper::{known_option, split_options};
use super::units::MountSpec;
use clap::Args;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Arguments of `fstab`.
#[derive(Debug, Args)]
pub struct FstabArgs {
    /// s3://BUCKET[/PREFIX], az://CONTAINER[/PREFIX], gs://BUCKET[/PREFIX] or file:///DIR.
    #[arg(required_unless_present = "check")]
    pub source: Option<String>,
    /// Where to mount it.
    #[arg(required_unless_present = "check")]
    pub mountpoint: Option<PathBuf>,
    /// Mount options, comma separated; may be given several times.
    #[arg(short = 'o', value_name = "OPT[=VAL],...")]
    pub options: Vec<String>,
    /// Mount on first access (x-systemd.automount) instead of at boot.
    #[arg(long)]
    pub automount: bool,
    /// Leave out `nofail` (boot then waits for, and fails with, this mount).
    #[arg(long)]
    pub required: bool,
    /// Check the cloudmount lines of FILE (default /etc/fstab) instead of printing one.
    #[arg(long, value_name = "FILE", num_args = 0..=1, default_missing_value = "/etc/fstab")]
    pub check: Option<PathBuf>,
}

/// Print a line, or check a file.
pub fn run(args: FstabArgs) -> Result<(), String> {
    if let Some(file) = &args.check {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let (lines, problems) = check(&file.display().to_string(), &text);
        for p in &problems {
            println!("{p}");
        }
        if problems.is_empty() {
            println!(
                "{}: {lines} cloudmount line(s), no problems",
                file.display()
            );
            return Ok(());
        }
        return Err(format!(
            "{} problem(s) in {}",
            problems.len(),
            file.display()
        ));
    }
    let (Some(source), Some(mountpoint)) = (&args.source, &args.mountpoint) else {
        return Err("give SOURCE and MOUNTPOINT, or --check [FILE]".into());
    };
    println!("{}", line(source, mountpoint, &args)?);
    Ok(())
}

/// The fstab line for `source` on `mountpoint` with the options of `args`.
fn line(source: &str, mountpoint: &Path, args: &FstabArgs) -> Result<String, String> {
    cloudmount::config::Source::parse(source)?;
    let given = args.options.join(",");
    let (mut opts, unknown) = split_options(&given, &known_option);
    if let Some(u) = unknown.first() {
        return Err(format!(
            "unknown mount option {u:?}; `cloudmount mount --help` and docs/options.md list every option"
        ));
    }
    // Userspace options the user gave are kept as given; ours come after.
    let (all, _) = split_options(&given, &|_| true);
    for o in given
        .split(',')
        .filter(|o| !o.is_empty() && !all.contains(&o.to_string()))
    {
        opts.push(o.to_string());
    }
    for add in ["_netdev", "nofail", "x-systemd.automount"] {
        let wanted = match add {
            "nofail" => !args.required,
            "x-systemd.automount" => args.automount,
            _ => true,
        };
        if wanted && !opts.iter().any(|o| o == add) {
            opts.push(add.to_string());
        }
    }
    Ok(format!(
        "{} {} cloudmount {} 0 0",
        escape(source),
        escape(&mountpoint.display().to_string()),
        opts.join(",")
    ))
}

/// fstab's octal escapes for the characters that would split a field.
fn escape(s: &str) -> String {
    s.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('\t', "\\011")
        .replace('\n', "\\012")
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// Check fstab `text` (named `file` in messages): the number of cloudmount lines, and one
/// message per problem.
fn check(file: &str, text: &str) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut count = 0;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.is_empty() || fields[0].starts_with('#') {
            continue;
        }
        let mountpoint = fields.get(1).map(|m| unescape(m));
        if let Some(m) = &mountpoint {
            if let Some(first) = seen.insert(m.clone(), n) {
                problems.push(format!(
                    "{file}:{n}: mountpoint {m} is already used on line {first}"
                ));
            }
        }
        let fstype = fields.get(2).copied().unwrap_or_default();
        if fstype != "cloudmount" && fstype != "fuse.cloudmount" {
            continue;
        }
        count += 1;
        let mut say = |p: String| problems.push(format!("{file}:{n}: {p}"));
        let (Some(source), Some(mountpoint)) = (fields.first(), mountpoint) else {
            say("too few fields (SOURCE MOUNTPOINT TYPE OPTIONS 0 0)".into());
            continue;
        };
        let spec = MountSpec {
            source: unescape(source),
            mountpoint: PathBuf::from(mountpoint),
            options: vec![fields.get(3).copied().unwrap_or("defaults").to_string()],
            ..Default::default()
        };
        for p in spec.problems(true) {
            say(p);
        }
    }
    (count, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn args(opts: &[&str], automount: bool, required: bool) -> FstabArgs {
        FstabArgs {
            source: None,
            mountpoint: None,
            options: opts.iter().map(|s| s.to_string()).collect(),
            automount,
            required,
            check: None,
        }
    }

    #[test]
    fn printed_lines_add_netdev_nofail_and_automount_when_asked() {
        let l = line(
            "s3://cvat-share",
            Path::new("/mnt/cvat share"),
            &args(&["allow_other,uid=1000", "ro"], true, false),
        )
        .unwrap();
        assert_eq!(
            l,
            "s3://cvat-share /mnt/cvat\\040share cloudmount \
             allow_other,uid=1000,ro,_netdev,nofail,x-systemd.automount 0 0"
        );
        let l = line("az://c", Path::new("/m"), &args(&["noauto"], false, true)).unwrap();
        assert_eq!(l, "az://c /m cloudmount noauto,_netdev 0 0");
        assert!(line("s3://b", Path::new("/m"), &args(&["bogus"], false, false)).is_err());
        assert!(line("bucket", Path::new("/m"), &args(&[], false, false)).is_err());
    }

    #[test]
    fn check_reports_each_problem_with_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let private = dir.path().join("ok.passwd");
        std::fs::write(&private, "k:s").unwrap();
        std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600)).unwrap();
        let open = dir.path().join("open.passwd");
        std::fs::write(&open, "k:s").unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
        let m = mnt.display();
        let text = format!(
            "# comment\n\
             /dev/sda1 / ext4 defaults 0 1\n\
             s3://good {m} cloudmount ro,passwd_file={},_netdev,nofail,x-systemd.automount 0 0\n\
             s3://bad {m} cloudmount bogus_opt,passwd_file={} 0 0\n\
             az://c /does/not/exist fuse.cloudmount uid=abc 0 0\n",
            private.display(),
            open.display()
        );
        let (count, problems) = check("fstab", &text);
        assert_eq!(count, 3);
        let joined = problems.join("\n");
        assert!(
            joined.contains(&format!(
                "fstab:4: mountpoint {m} is already used on line 3"
            )),
            "{joined}"
        );
        assert!(
            joined.contains("fstab:4: unknown option \"bogus_opt\""),
            "{joined}"
        );
        assert!(
            joined.contains("fstab:4: passwd_file: credential file")
                && joined.contains("chmod 600"),
            "{joined}"
        );
        assert!(
            joined.contains("fstab:5: mountpoint /does/not/exist does not exist"),
            "{joined}"
        );
        assert!(
            joined.contains("fstab:5:") && joined.contains("uid"),
            "{joined}"
        );
        assert!(!joined.contains("fstab:3:"), "the good line: {joined}");
        let (count, problems) = check("f", &format!("s3://good {m} cloudmount ro 0 0\n"));
        assert_eq!((count, problems.len()), (1, 0));
    }

    fn field() -> impl proptest::strategy::Strategy<Value = String> {
        proptest::prop_oneof![
            proptest::prelude::any::<String>(),
            proptest::sample::select(vec![
                "s3://b/p".to_string(),
                "gdrive://work/x".into(),
                "/mnt/a\\040b".into(),
                "cloudmount".into(),
                "fuse.cloudmount".into(),
                "ro,allow_other,uid=1000,passwd_file=/nonexistent,_netdev".into(),
                "bogus=,=,,x-systemd.automount".into(),
                "0".into(),
                "#".into(),
            ]),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config {
            cases: std::env::var("FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000),
            failure_persistence: None,
            ..proptest::test_runner::Config::default()
        })]

        /// Fuzz target: `cloudmount fstab --check` reads any fstab, line by line, without
        /// panicking; every problem names its line.
        #[test]
        fn fuzz_fstab_check(lines in proptest::collection::vec(proptest::collection::vec(field(), 0..7), 0..6)) {
            let text: String = lines.iter().map(|l| l.join(" ") + "\n").collect();
            let (_, problems) = check("fstab", &text);
            for p in problems {
                proptest::prop_assert!(p.starts_with("fstab:"), "{}", p);
            }
        }
    }
}
