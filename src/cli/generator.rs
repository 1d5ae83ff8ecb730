//! `cloudmount systemd-generator NORMAL [EARLY LATE]`: the systemd generator
//! (`systemd/cloudmount-generator` runs it at boot and at every `systemctl daemon-reload`).
//! It reads `/etc/cloudmount/mounts.toml` and `/etc/cloudmount/mounts.d/*.toml`
//! (`$CLOUDMOUNT_CONFIG_DIR` instead of `/etc/cloudmount`) and writes each mount's units, with
//! the links that start them with `remote-fs.target`, into NORMAL. Every file is checked
//! before anything is written: a bad config writes no unit at all and says what is wrong.
//!
//! ```toml
//! [[mount]]
//! source = "s3://cvat-data/share"
//! mountpoint = "/srv/cvat/share"
//! options = { allow_other = true, uid = 1000, passwd_file = "/etc/cloudmount/cvat.passwd" }
//! automount = false    # mount on first access instead of at boot
//! required = false     # boot waits for it and fails without it
//! mount_unit = false   # a .mount unit through mount.cloudmount instead of a service
//! before = ["docker.service"]  # started with these units, and up before them
//! ```

use super::units::{MountSpec, Unit};
use clap::Args;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Arguments systemd passes a generator.
#[derive(Debug, Args)]
pub struct GeneratorArgs {
    /// The output directory for normal units (the generator's first argument).
    pub normal_dir: PathBuf,
    /// The early output directory (not used).
    pub early_dir: Option<PathBuf>,
    /// The late output directory (not used).
    pub late_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MountsFile {
    #[serde(default)]
    mount: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    source: String,
    mountpoint: PathBuf,
    #[serde(default)]
    options: toml::Table,
    #[serde(default)]
    automount: bool,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    mount_unit: bool,
    #[serde(default)]
    before: Vec<String>,
}

/// Where the declarative config lives.
fn config_dir() -> PathBuf {
    std::env::var_os("CLOUDMOUNT_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/cloudmount"))
}

/// `mounts.toml`, then `mounts.d/*.toml` in name order; the ones that exist.
fn config_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files: Vec<PathBuf> = vec![dir.join("mounts.toml")];
    let d = dir.join("mounts.d");
    if d.is_dir() {
        let mut more: Vec<PathBuf> = std::fs::read_dir(&d)
            .map_err(|e| format!("cannot read {}: {e}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        more.sort();
        files.extend(more);
    }
    Ok(files.into_iter().filter(|f| f.is_file()).collect())
}

/// The line of the `n`th (0-based) `[[mount]]` header of `text`.
fn entry_line(text: &str, n: usize) -> usize {
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim_start().starts_with("[[mount]]"))
        .nth(n)
        .map_or(1, |(i, _)| i + 1)
}

/// An `options` table as `-o` words: `true` is the bare name, anything else `name=value`.
fn option_words(table: &toml::Table) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (k, v) in table {
        let value = match v {
            toml::Value::Boolean(true) => {
                out.push(k.clone());
                continue;
            }
            toml::Value::Boolean(false) => "false".to_string(),
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            other => {
                return Err(format!(
                    "option {k:?}: expected a string, number or boolean, got {}",
                    other.type_str()
                ))
            }
        };
        if value.contains(',') {
            return Err(format!("option {k:?}: a value cannot contain ','"));
        }
        out.push(format!("{k}={value}"));
    }
    Ok(out)
}

/// Read and check every config file: the mounts, or every problem (`FILE:LINE: ...`).
fn read_specs(files: &[PathBuf]) -> Result<Vec<MountSpec>, Vec<String>> {
    let mut specs = Vec::new();
    let mut problems = Vec::new();
    let mut seen: HashMap<PathBuf, String> = HashMap::new();
    for file in files {
        let f = file.display();
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{f}: cannot read: {e}"));
                continue;
            }
        };
        let parsed: MountsFile = match toml::from_str(&text) {
            Ok(p) => p,
            Err(e) => {
                let line = e.span().map_or(1, |s| {
                    text[..s.start.min(text.len())].lines().count().max(1)
                });
                problems.push(format!("{f}:{line}: {}", e.message().trim()));
                continue;
            }
        };
        for (n, entry) in parsed.mount.into_iter().enumerate() {
            let at = format!("{f}:{}", entry_line(&text, n));
            let options = match option_words(&entry.options) {
                Ok(o) => o,
                Err(e) => {
                    problems.push(format!("{at}: {e}"));
                    continue;
                }
            };
            let spec = MountSpec {
                source: entry.source,
                mountpoint: entry.mountpoint,
                options,
                automount: entry.automount,
                required: entry.required,
                mount_unit: entry.mount_unit,
                before: entry.before,
            };
            // Mountpoints may be created later in boot, and credential files may be
            // readable only by the service: those are checked when mounting.
            for p in spec.problems(false).into_iter().chain(spec.unit_problems()) {
                problems.push(format!("{at}: {p}"));
            }
            if let Some(first) = seen.insert(spec.mountpoint.clone(), at.clone()) {
                problems.push(format!(
                    "{at}: mountpoint {} is already used at {first}",
                    spec.mountpoint.display()
                ));
            }
            specs.push(spec);
        }
    }
    if problems.is_empty() {
        Ok(specs)
    } else {
        Err(problems)
    }
}

/// Write `units` and their links into `dir`, each file whole (written aside, then renamed);
/// on any failure, remove what was written.
fn write_all(dir: &Path, units: &[(Unit, Vec<String>)]) -> Result<usize, String> {
    let mut written: Vec<PathBuf> = Vec::new();
    let result = (|| {
        for (unit, link_dirs) in units {
            let path = dir.join(&unit.name);
            let tmp = dir.join(format!(".{}.tmp", unit.name));
            std::fs::write(&tmp, &unit.text)
                .and_then(|_| std::fs::rename(&tmp, &path))
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            written.push(path.clone());
            for wants in link_dirs {
                let d = dir.join(wants);
                std::fs::create_dir_all(&d)
                    .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
                let link = d.join(&unit.name);
                let _ = std::fs::remove_file(&link);
                std::os::unix::fs::symlink(&path, &link)
                    .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
                written.push(link);
            }
        }
        Ok(units.len())
    })();
    if result.is_err() {
        for p in written {
            let _ = std::fs::remove_file(p);
        }
    }
    result
}

/// Generate. Problems go to stderr (the journal, at boot) and fail the generator.
pub fn run(args: GeneratorArgs) -> Result<(), String> {
    let dir = config_dir();
    let files = config_files(&dir)?;
    if files.is_empty() {
        return Ok(());
    }
    let specs = read_specs(&files).map_err(|problems| {
        for p in &problems {
            eprintln!("cloudmount-generator: {p}");
        }
        format!(
            "{} problem(s) in {}; no units were written (fix them, then `systemctl daemon-reload`)",
            problems.len(),
            dir.display()
        )
    })?;
    let bin = std::env::current_exe()
        .map_err(|e| format!("cannot find the cloudmount binary for ExecStart=: {e}"))?;
    let mut units = Vec::new();
    for s in &specs {
        let what = format!(
            "Generated by cloudmount-generator from {}; edit that, not this file.",
            dir.display()
        );
        let enabled = s.enabled_unit();
        for u in s.units(&bin, &what) {
            let links = if u.name == enabled {
                s.link_dirs()
            } else {
                Vec::new()
            };
            units.push((u, links));
        }
    }
    let n = write_all(&args.normal_dir, &units)?;
    eprintln!(
        "cloudmount-generator: {n} unit(s) for {} mount(s) in {}",
        specs.len(),
        args.normal_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_become_specs_and_problems_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("mounts.toml");
        std::fs::write(
            &good,
            "[[mount]]\nsource = \"s3://b\"\nmountpoint = \"/srv/b\"\n\
             options = { allow_other = true, uid = 1000, ro = false }\n",
        )
        .unwrap();
        let specs = read_specs(std::slice::from_ref(&good)).unwrap();
        assert_eq!(specs.len(), 1);
        assert_eq!(specs[0].options, ["allow_other", "ro=false", "uid=1000"]);
        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            "# x\n[[mount]]\nsource = \"s3://c\"\nmountpoint = \"/srv/b\"\n\n\
             [[mount]]\nsource = \"nope\"\nmountpoint = \"/srv/n\"\noptions = { bogus = 1 }\n",
        )
        .unwrap();
        let problems = read_specs(&[good, bad.clone()]).unwrap_err().join("\n");
        let b = bad.display();
        assert!(
            problems.contains(&format!("{b}:2: mountpoint /srv/b is already used")),
            "{problems}"
        );
        assert!(
            problems.contains(&format!("{b}:6: unknown option \"bogus=1\"")),
            "{problems}"
        );
        assert!(
            problems.contains(&format!("{b}:6: ")) && problems.contains("nope"),
            "{problems}"
        );
        std::fs::write(&bad, "[[mount]]\nsource = \"s3://c\"\nmountpont = \"/x\"\n").unwrap();
        let problems = read_specs(std::slice::from_ref(&bad))
            .unwrap_err()
            .join("\n");
        assert!(problems.contains("mountpont"), "{problems}");
    }
}
