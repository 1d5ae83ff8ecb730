//! `cloudmount systemd-unit SOURCE MOUNTPOINT [-o ...] [--automount] [--mount-unit]
//! [--install [--unit-dir DIR]]`: print (or write) the systemd units of one mount.

use super::units::MountSpec;
use clap::Args;
use std::path::PathBuf;

/// Arguments of `systemd-unit`.
#[derive(Debug, Args)]
pub struct SystemdUnitArgs {
    /// s3://BUCKET[/PREFIX], az://CONTAINER[/PREFIX], gs://BUCKET[/PREFIX] or file:///DIR.
    pub source: String,
    /// Where to mount it (absolute).
    pub mountpoint: PathBuf,
    /// Mount options, comma separated; may be given several times.
    #[arg(short = 'o', value_name = "OPT[=VAL],...")]
    pub options: Vec<String>,
    /// Mount on first access: a .mount unit and an .automount unit.
    #[arg(long)]
    pub automount: bool,
    /// A .mount unit (run through mount.cloudmount) instead of a Type=notify service.
    #[arg(long)]
    pub mount_unit: bool,
    /// Boot waits for this mount and fails without it (RequiredBy= instead of WantedBy=).
    #[arg(long)]
    pub required: bool,
    /// Write the units into --unit-dir instead of printing them.
    #[arg(long)]
    pub install: bool,
    /// A unit this mount is started with and must be up before (Before= and WantedBy=), such
    /// as docker.service for a share bound into containers; repeatable.
    #[arg(long, value_name = "UNIT")]
    pub before: Vec<String>,
    /// Where --install writes.
    #[arg(long, value_name = "DIR", default_value = "/etc/systemd/system")]
    pub unit_dir: PathBuf,
}

/// Print or write the units.
pub fn run(args: SystemdUnitArgs) -> Result<(), String> {
    let spec = MountSpec {
        source: args.source,
        mountpoint: args.mountpoint,
        options: args.options,
        automount: args.automount,
        required: args.required,
        mount_unit: args.mount_unit,
        before: args.before,
    };
    let mut problems = spec.problems(false);
    problems.extend(spec.unit_problems());
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    // What only this host can tell (the mountpoint, the credential files) may be fixed
    // after the units are written: say it, do not refuse.
    if args.install {
        for p in spec.problems(true) {
            eprintln!("cloudmount: warning: {p}");
        }
    }
    let bin = std::env::current_exe()
        .map_err(|e| format!("cannot find the cloudmount binary for ExecStart=: {e}"))?;
    let units = spec.units(&bin, "Written by `cloudmount systemd-unit`.");
    if !args.install {
        for u in &units {
            print!("# ==> {} <==\n{}", u.name, u.text);
        }
        return Ok(());
    }
    std::fs::create_dir_all(&args.unit_dir)
        .map_err(|e| format!("cannot create {}: {e}", args.unit_dir.display()))?;
    for u in &units {
        let path = args.unit_dir.join(&u.name);
        std::fs::write(&path, &u.text)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    println!(
        "now run: systemctl daemon-reload && systemctl enable --now {}",
        shell_word(&spec.enabled_unit())
    );
    Ok(())
}

/// `s` quoted for a shell when it needs to be (escaped unit names hold backslashes).
fn shell_word(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "@-_.:".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}
