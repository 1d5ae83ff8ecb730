//! The CSI driver's deployment files hold together (they are schema-checked with the CVAT
//! recipe's files in tests/cvat_recipe.rs): the names match the plugin's, the CSIDriver says
//! what the plugin does, the DaemonSet registers the plugin and propagates its mounts, and the
//! mounter's unit — in systemd/ and in the ConfigMap the DaemonSet installs it from — is the
//! same text and passes `systemd-analyze verify`.

mod harness;
mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn manifests_name_the_driver_and_keep_the_daemons_outside_the_pod() {
    let name = cloudmount::csi::DRIVER_NAME;
    let driver = read("deploy/kubernetes/csidriver.yaml");
    for want in [
        format!("name: {name}\n"),
        "attachRequired: false\n".into(),
        "podInfoOnMount: true\n".into(),
    ] {
        assert!(
            driver.contains(&want),
            "{want:?} missing from csidriver.yaml"
        );
    }
    let ds = read("deploy/kubernetes/node-daemonset.yaml");
    for want in [
        "image: registry.k8s.io/sig-storage/csi-node-driver-registrar:".to_string(),
        format!("--kubelet-registration-path=/var/lib/kubelet/plugins/{name}/csi.sock"),
        format!("path: /var/lib/kubelet/plugins/{name}\n"),
        "path: /var/lib/kubelet/plugins_registry\n".into(),
        "mountPropagation: Bidirectional".into(),
        "--endpoint=unix:///csi/csi.sock".into(),
        "--mounter=/run/cloudmount-csi/mounter.sock".into(),
        "systemctl restart cloudmount-csi-mounter.service".into(),
        "hostPID: true".into(),
    ] {
        assert!(
            ds.contains(&want),
            "{want:?} missing from node-daemonset.yaml"
        );
    }
    for example in ["examples/s3-volume.yaml", "examples/cvat-share.yaml"] {
        let text = read(&format!("deploy/kubernetes/{example}"));
        assert!(text.contains(&format!("driver: {name}\n")), "{example}");
        assert!(text.contains("nodePublishSecretRef:"), "{example}");
        assert!(
            text.contains("key_id:") && text.contains("access_key:"),
            "{example}"
        );
    }
}

#[test]
fn the_mounter_unit_is_installed_as_written_and_verifies() {
    let unit = read("systemd/cloudmount-csi-mounter.service");
    assert!(
        unit.contains("\nKillMode=process\n"),
        "the daemons must outlive a restart"
    );
    assert!(unit.contains("\nRestart=always\n"));
    let cm = read("deploy/kubernetes/mounter-unit.yaml");
    let (_, body) = cm
        .split_once("  cloudmount-csi-mounter.service: |\n")
        .expect("the unit in the ConfigMap");
    let embedded: String = body
        .lines()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(embedded, unit, "the ConfigMap's unit differs from systemd/");
    // Verified with the binary of this build in ExecStart= (the path the DaemonSet installs
    // to does not exist here).
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cloudmount-csi-mounter.service");
    std::fs::write(
        &path,
        unit.replace("/opt/cloudmount-csi/bin/cloudmount", harness::bin()),
    )
    .expect("write");
    let out = harness::run_bounded(
        Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path),
        Duration::from_secs(60),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && err.trim().is_empty(),
        "systemd-analyze verify: {err}"
    );
}
