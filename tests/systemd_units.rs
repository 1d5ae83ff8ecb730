//! systemd integration without a running systemd: every unit `cloudmount systemd-unit`
//! prints passes `systemd-analyze verify`, unit names match `systemd-escape --path`, and the
//! generator, run as systemd runs it (three output directories), writes the expected units
//! and links from a declarative config, and writes nothing for a bad one.

mod harness;
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

fn run(c: &mut Command) -> Output {
    harness::run_bounded(c, Duration::from_secs(60))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `systemd-analyze verify` on each unit file; panics with its words on a problem.
fn verify(files: &[PathBuf]) {
    for f in files {
        // `make install` installs the man page Documentation= names; not here.
        let o = run(Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(f));
        let said = text(&o);
        // Units outside the search path may be loaded only from their own directory; its
        // warnings about *other* units (the host's) are not ours.
        let ours: Vec<&str> = said
            .lines()
            .filter(|l| {
                l.contains("cloudmount") || l.contains(f.file_name().unwrap().to_str().unwrap())
            })
            .collect();
        assert!(
            o.status.success() && ours.is_empty(),
            "{}: {said}",
            f.display()
        );
    }
}

/// `systemd-unit ... --install --unit-dir DIR`, returning the files written.
fn install(args: &[&str], dir: &Path) -> Vec<PathBuf> {
    let o = run(Command::new(harness::bin())
        .arg("systemd-unit")
        .args(args)
        .arg("--install")
        .arg("--unit-dir")
        .arg(dir));
    assert!(o.status.success(), "{}", text(&o));
    let mut files: Vec<PathBuf> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("wrote ").map(PathBuf::from))
        .collect();
    files.sort();
    files
}

fn systemd_escape(p: &str) -> String {
    let o = run(Command::new("systemd-escape").arg("--path").arg(p));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn printed_units_verify_and_are_named_as_systemd_escape_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let mp = "/srv/cvat share/data-1";
    let esc = systemd_escape(mp);
    let files = install(
        &[
            "s3://cvat/share",
            mp,
            "-o",
            "allow_other,uid=1000,passwd_file=/etc/cm/p",
        ],
        dir.path(),
    );
    assert_eq!(
        files,
        [dir.path().join(format!("cloudmount@{esc}.service"))]
    );
    let unit = std::fs::read_to_string(&files[0]).unwrap();
    for want in [
        "Type=notify",
        "After=network-online.target",
        "Before=remote-fs.target",
        "-o allow_other,uid=1000,passwd_file=/etc/cm/p\n",
        "WantedBy=remote-fs.target",
    ] {
        assert!(unit.contains(want), "{want} missing:\n{unit}");
    }
    verify(&files);

    let dir = tempfile::tempdir().unwrap();
    let files = install(
        &["az://c/p", "/mnt/az", "--automount", "-o", "ro"],
        dir.path(),
    );
    let names: Vec<_> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let esc = systemd_escape("/mnt/az");
    assert_eq!(names, [format!("{esc}.automount"), format!("{esc}.mount")]);
    verify(&files);

    let dir = tempfile::tempdir().unwrap();
    let files = install(
        &["gs://b", "/mnt/.g", "--mount-unit", "--required"],
        dir.path(),
    );
    assert_eq!(
        files,
        [dir.path()
            .join(format!("{}.mount", systemd_escape("/mnt/.g")))]
    );
    assert!(std::fs::read_to_string(&files[0])
        .unwrap()
        .contains("RequiredBy=remote-fs.target"));
    verify(&files);

    // A bad option names itself and writes nothing.
    let dir = tempfile::tempdir().unwrap();
    let o = run(Command::new(harness::bin())
        .args([
            "systemd-unit",
            "s3://b",
            "/mnt/x",
            "-o",
            "colour=blue",
            "--install",
            "--unit-dir",
        ])
        .arg(dir.path()));
    assert!(
        !o.status.success() && text(&o).contains("unknown option \"colour=blue\""),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

/// Run `systemd/cloudmount-generator` as systemd does: three output directories.
fn generate(config: &Path) -> (Output, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    for d in ["normal", "early", "late"] {
        std::fs::create_dir(out.path().join(d)).unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/cloudmount-generator");
    let o = run(Command::new(script)
        .arg(out.path().join("normal"))
        .arg(out.path().join("early"))
        .arg(out.path().join("late"))
        .env("CLOUDMOUNT_BIN", harness::bin())
        .env("CLOUDMOUNT_CONFIG_DIR", config));
    (o, out)
}

/// Every file and link under `dir`, relative, sorted (links shown as `name -> target`).
fn tree(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if p.is_symlink() {
                let t = std::fs::read_link(&p).unwrap();
                out.push(format!(
                    "{rel} -> {}",
                    t.strip_prefix(dir).unwrap_or(&t).display()
                ));
            } else if p.is_dir() {
                stack.push(p);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_generator_writes_units_from_the_config_and_nothing_for_a_bad_one() {
    let config = tempfile::tempdir().unwrap();
    std::fs::write(
        config.path().join("mounts.toml"),
        "# the CVAT share\n\
         [[mount]]\n\
         source = \"s3://cvat-data/share\"\n\
         mountpoint = \"/srv/cvat/share\"\n\
         options = { allow_other = true, uid = 1000, endpoint = \"http://127.0.0.1:9000\", passwd_file = \"/etc/cloudmount/cvat.passwd\" }\n",
    )
    .unwrap();
    std::fs::create_dir(config.path().join("mounts.d")).unwrap();
    std::fs::write(
        config.path().join("mounts.d/az.toml"),
        "[[mount]]\nsource = \"az://media\"\nmountpoint = \"/mnt/media\"\nautomount = true\nrequired = true\n\
         options = { ro = true }\n",
    )
    .unwrap();
    std::fs::write(config.path().join("mounts.d/notes.txt"), "not a config").unwrap();
    let (o, out) = generate(config.path());
    assert!(o.status.success(), "{}", text(&o));
    let normal = out.path().join("normal");
    assert_eq!(
        tree(&normal),
        [
            "cloudmount@srv-cvat-share.service",
            "mnt-media.automount",
            "mnt-media.mount",
            "remote-fs.target.requires/mnt-media.automount -> mnt-media.automount",
            "remote-fs.target.wants/cloudmount@srv-cvat-share.service -> cloudmount@srv-cvat-share.service",
        ]
    );
    assert_eq!(
        std::fs::read_dir(out.path().join("early")).unwrap().count(),
        0
    );
    let service =
        std::fs::read_to_string(normal.join("cloudmount@srv-cvat-share.service")).unwrap();
    assert!(service.contains(" mount --foreground s3://cvat-data/share /srv/cvat/share -o allow_other,endpoint=http://127.0.0.1:9000,passwd_file=/etc/cloudmount/cvat.passwd,uid=1000\n"), "{service}");
    verify(&[
        normal.join("cloudmount@srv-cvat-share.service"),
        normal.join("mnt-media.mount"),
        normal.join("mnt-media.automount"),
    ]);

    // One bad entry among good ones: a clear message with file and line, and no unit at all.
    std::fs::write(
        config.path().join("mounts.d/zz-bad.toml"),
        "[[mount]]\nsource = \"s3://x\"\nmountpoint = \"/srv/x\"\noptions = { cache_size = \"lots\" }\n",
    )
    .unwrap();
    let (o, out) = generate(config.path());
    assert!(!o.status.success());
    let said = text(&o);
    assert!(
        said.contains("zz-bad.toml:1:") && said.contains("cache_size"),
        "{said}"
    );
    assert!(said.contains("no units were written"), "{said}");
    assert!(
        tree(&out.path().join("normal")).is_empty(),
        "{:?}",
        tree(&out.path().join("normal"))
    );

    // No config at all: nothing to do, and that is fine.
    let empty = tempfile::tempdir().unwrap();
    let (o, out) = generate(empty.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(tree(&out.path().join("normal")).is_empty());
}

#[test]
fn the_example_config_generates_units_that_verify() {
    let config = tempfile::tempdir().unwrap();
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mounts.example.toml");
    std::fs::copy(example, config.path().join("mounts.toml")).unwrap();
    let (o, out) = generate(config.path());
    assert!(o.status.success(), "{}", text(&o));
    let unit = out
        .path()
        .join("normal/cloudmount@home-django-share.service");
    verify(&[unit]);
}

#[test]
fn make_install_puts_every_file_in_place_and_uninstall_removes_them() {
    let root = tempfile::tempdir().unwrap();
    let make = |target: &str| {
        run(Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .arg(target)
            .arg(format!("DESTDIR={}", root.path().display()))
            .arg(format!("CLOUDMOUNT={}", harness::bin()))
            .arg("PREFIX=/usr/local")
            .env_remove("BINDIR")
            .env_remove("SBINDIR")
            .env_remove("DATADIR")
            .env_remove("MANDIR")
            .env_remove("GENERATORDIR"))
    };
    let o = make("install-files");
    assert!(o.status.success(), "{}", text(&o));
    let r = root.path();
    let link = std::fs::read_link(r.join("sbin/mount.cloudmount")).unwrap();
    assert_eq!(link, Path::new("/usr/local/bin/cloudmount"));
    assert!(r.join("usr/local/bin/cloudmount").is_file());
    let generator = std::fs::read_to_string(
        r.join("usr/local/lib/systemd/system-generators/cloudmount-generator"),
    )
    .unwrap();
    assert!(
        generator.contains(":-/usr/local/bin/cloudmount}\" systemd-generator"),
        "{generator}"
    );
    let man = std::fs::read_to_string(r.join("usr/local/share/man/man1/cloudmount.1")).unwrap();
    assert!(
        man.contains(".TH cloudmount 1")
            && man.contains("MOUNT OPTIONS")
            && man.contains("stop_timeout")
    );
    for (f, want) in [
        (
            "usr/local/share/bash-completion/completions/cloudmount",
            "systemd-unit",
        ),
        (
            "usr/local/share/zsh/site-functions/_cloudmount",
            "#compdef cloudmount",
        ),
        (
            "usr/local/share/fish/vendor_completions.d/cloudmount.fish",
            "complete -c cloudmount",
        ),
        (
            "usr/local/share/cloudmount/systemd/cloudmount@.service.in",
            "Type=notify",
        ),
    ] {
        let t = std::fs::read_to_string(r.join(f)).unwrap_or_default();
        assert!(t.contains(want), "{f}: {want} missing");
    }
    let o = make("uninstall");
    assert!(o.status.success(), "{}", text(&o));
    let left: Vec<_> = tree(r).into_iter().filter(|f| !f.ends_with('/')).collect();
    assert!(left.is_empty(), "left after uninstall: {left:?}");
}
