//! The CVAT share recipe (docs/cvat.md, config/cvat/): its files pass the checkers, and its
//! central claim holds with real mount namespaces.
//! - `mounts.toml` becomes a Type=notify service ordered before and wanted by docker.service,
//!   mounting read-only, allow_other, uid/gid 1000 under /srv/cvat-share; the unit passes
//!   `systemd-analyze verify` with nothing on stderr.
//! - The compose override passes the compose spec's schema; the Helm values' volumes pass
//!   Kubernetes' schema (as a Pod); our enum check accepts them and catches a typo that both
//!   schema checkers let through.
//! - tests/recipe/propagation.sh: a "container" namespace made before the mount, with an
//!   rslave bind of the parent directory, reads the mount, and reads the new one after
//!   cloudmount is stopped and started again; a bind of the mount point itself gets ENOTCONN.

mod harness;
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Run a command (bounded); (success, stdout, stderr).
fn run(c: &mut Command) -> (bool, String, String) {
    let out = harness::run_bounded(c, Duration::from_secs(120));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The YAML files of the recipe and of the Kubernetes manifests.
fn yaml_files() -> Vec<PathBuf> {
    let mut files = vec![
        root().join("config/cvat/docker-compose.override.yml"),
        root().join("config/cvat/helm-values.yaml"),
    ];
    for dir in ["deploy/kubernetes", "deploy/kubernetes/examples"] {
        if let Ok(entries) = std::fs::read_dir(root().join(dir)) {
            let mut more: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
                .collect();
            more.sort();
            files.extend(more);
        }
    }
    files
}

#[test]
fn the_generator_makes_a_notify_service_before_docker_that_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("etc");
    let out = dir.path().join("out");
    std::fs::create_dir_all(cfg.join("mounts.d")).expect("mkdir");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::copy(
        root().join("config/cvat/mounts.toml"),
        cfg.join("mounts.d/cvat.toml"),
    )
    .expect("copy");
    let (ok, _, err) = run(Command::new(harness::bin())
        .args(["systemd-generator", out.to_str().expect("utf8")])
        .env("CLOUDMOUNT_CONFIG_DIR", &cfg));
    assert!(ok, "generator failed: {err}");
    let name = r"cloudmount@srv-cvat\x2dshare-cvat\x2ddata.service";
    let unit = std::fs::read_to_string(out.join(name)).expect("the service unit");
    for want in [
        "Type=notify",
        "Before=docker.service",
        "WantedBy=docker.service",
        " s3://cvat-data /srv/cvat-share/cvat-data -o ",
        "allow_other",
        "uid=1000",
        "gid=1000",
        ",ro,",
        "RequiresMountsFor=/srv/cvat-share\n",
    ] {
        assert!(unit.contains(want), "{want:?} missing from\n{unit}");
    }
    assert!(
        out.join("docker.service.wants").join(name).exists(),
        "docker.service does not want the mount"
    );
    let (ok, stdout, stderr) = run(Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(out.join(name)));
    assert!(
        ok && stderr.trim().is_empty(),
        "systemd-analyze verify: {stdout}{stderr}"
    );
}

#[test]
fn compose_and_kubernetes_files_pass_the_schemas_and_our_enum_check() {
    let compose = root().join("config/cvat/docker-compose.override.yml");
    let text = std::fs::read_to_string(&compose).expect("compose file");
    for svc in [
        "cvat_server",
        "cvat_worker_import",
        "cvat_worker_export",
        "cvat_worker_annotation",
        "cvat_worker_chunks",
    ] {
        assert!(
            text.contains(&format!("\n  {svc}:\n    volumes:\n      - *cvat-share\n")),
            "{svc}"
        );
    }
    for want in [
        "source: /srv/cvat-share\n",
        "target: /home/django/share\n",
        "read_only: true",
        "propagation: rslave",
    ] {
        assert!(
            text.contains(want),
            "{want:?} missing from the compose override"
        );
    }
    let (ok, out, err) = run(Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(&compose));
    assert!(ok, "check-jsonschema: {out}{err}");

    let helm = root().join("config/cvat/helm-values.yaml");
    let helm_text = std::fs::read_to_string(&helm).expect("values");
    assert!(
        helm_text.contains("permissionFix:\n      enabled: false"),
        "{helm_text}"
    );
    assert!(
        helm_text.contains("mountPropagation: HostToContainer"),
        "{helm_text}"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = dir.path().join("pod.yaml");
    let check = root().join("tests/recipe/check.py");
    let (ok, _, err) = run(Command::new("python3")
        .arg(&check)
        .arg("helm-pod")
        .arg(&helm)
        .arg(&pod));
    assert!(ok, "{err}");
    // The CSI variant of the values (deploy/kubernetes/examples/cvat-values.yaml) too.
    let csi_pod = dir.path().join("csi-pod.yaml");
    let csi_values = root().join("deploy/kubernetes/examples/cvat-values.yaml");
    let (ok, _, err) = run(Command::new("python3")
        .arg(&check)
        .arg("helm-pod")
        .arg(&csi_values)
        .arg(&csi_pod));
    assert!(ok, "{err}");
    let mut manifests: Vec<PathBuf> = vec![pod, csi_pod];
    manifests.extend(
        yaml_files()
            .into_iter()
            .filter(|p| p.starts_with(root().join("deploy/kubernetes")))
            .filter(|p| !p.ends_with("cvat-values.yaml")),
    );
    for m in &manifests {
        let (ok, out, err) = run(Command::new("kubernetes-validate").arg("--strict").arg(m));
        assert!(ok, "kubernetes-validate {}: {out}{err}", m.display());
    }

    let (ok, _, err) = run(Command::new("python3")
        .arg(&check)
        .arg("enums")
        .args(yaml_files()));
    assert!(ok, "enum check: {err}");
    // The schema checkers let a typo through; ours does not.
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        text.replace("propagation: rslave", "propagation: rslavee"),
    )
    .expect("write");
    let (ok, _, _) = run(Command::new("check-jsonschema")
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(&bad));
    assert!(
        ok,
        "check-jsonschema now rejects bad enums: the check of our own may go"
    );
    let (ok, _, err) = run(Command::new("python3").arg(&check).arg("enums").arg(&bad));
    assert!(!ok && err.contains("'rslavee' is not one of"), "{err}");
    let bad_k8s = dir.path().join("bad-pod.yaml");
    let pod_text = std::fs::read_to_string(dir.path().join("pod.yaml")).expect("pod");
    std::fs::write(
        &bad_k8s,
        pod_text
            .replace("HostToContainer", "HostToContainr")
            .replace("type: Directory", "type: Dir"),
    )
    .expect("write");
    let (ok, _, _) = run(Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(&bad_k8s));
    assert!(
        ok,
        "kubernetes-validate now rejects bad enums: the check of our own may go"
    );
    let (ok, _, err) = run(Command::new("python3")
        .arg(&check)
        .arg("enums")
        .arg(&bad_k8s));
    assert!(
        !ok && err.contains("'HostToContainr'") && err.contains("'Dir'"),
        "{err}"
    );
}

#[test]
fn an_rslave_bind_of_the_parent_survives_a_restart_and_a_bind_of_the_mount_point_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = harness::run_bounded(
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "bash"])
            .arg(root().join("tests/recipe/propagation.sh"))
            .arg(harness::bin())
            .arg(d),
        Duration::from_secs(120),
    );
    let steps = std::fs::read_to_string(d.join("steps.txt")).unwrap_or_default();
    let log = std::fs::read_to_string(d.join("log")).unwrap_or_default();
    println!("{steps}");
    assert!(
        out.status.success(),
        "the script failed ({:?}): {}{}\nsteps:\n{steps}\nlog:\n{log}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = steps.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "first mount: v1",
            "owner: 1000:1000",
            "mount-point bind: v1",
            "after restart, parent bind: v2",
        ],
        "{steps}"
    );
    assert!(
        lines
            .get(4)
            .is_some_and(|l| l.starts_with("after restart, mount-point bind: ")
                && l.contains("Transport endpoint is not connected")),
        "{steps}"
    );
    assert!(
        log.contains("another mount of this filesystem remains"),
        "{log}"
    );
}
