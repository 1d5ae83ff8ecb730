//! The CSI node plugin, with this test playing kubelet: a gRPC client on the plugin's Unix
//! socket, a moto bucket as the volume, and the mounter running as the host's service would.
//! - Identity answers; NodePublishVolume mounts the bucket at the target, which serves it;
//!   a second publish of the same target is OK.
//! - The plugin is SIGKILLed and started again: the mount still serves; unpublish works.
//! - A SIGKILLed daemon's target (ENOTCONN) is repaired by the next publish.
//! - Bad volume contexts get INVALID_ARGUMENT with a message; calls the plugin does not
//!   implement get UNIMPLEMENTED; no secret reaches a command line or a log.

mod harness;
mod support;

use cloudmount::csi::proto::identity_client::IdentityClient;
use cloudmount::csi::proto::node_client::NodeClient;
use cloudmount::csi::proto::volume_capability::{
    access_mode::Mode, AccessMode, AccessType, MountVolume,
};
use cloudmount::csi::proto::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tonic::transport::Channel;

/// A process this test started, killed (by PID) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str], log: &Path) -> Proc {
    let log = std::fs::File::create(log).expect("log file");
    let child = Command::new(harness::bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("dup"))
        .stderr(log)
        .spawn()
        .expect("start");
    Proc(child)
}

fn wait_for_socket(path: &Path) {
    assert!(
        support::wait_until(Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(path).is_ok()
        }),
        "nothing listens on {}",
        path.display()
    );
}

/// A gRPC channel over the Unix socket at `path`, as kubelet opens one.
async fn channel(path: &Path) -> Channel {
    let path = path.to_path_buf();
    tonic::transport::Endpoint::try_from("http://[::]:50051")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
        .expect("connect to the plugin")
}

fn capability(mode: Mode) -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode { mode: mode as i32 }),
    }
}

struct Kubelet {
    rt: tokio::runtime::Runtime,
    node: NodeClient<Channel>,
    identity: IdentityClient<Channel>,
}

impl Kubelet {
    fn connect(socket: &Path) -> Kubelet {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let ch = rt.block_on(channel(socket));
        Kubelet {
            rt,
            node: NodeClient::new(ch.clone()),
            identity: IdentityClient::new(ch),
        }
    }

    fn publish(&mut self, req: NodePublishVolumeRequest) -> Result<(), tonic::Status> {
        let node = &mut self.node;
        self.rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(120), node.node_publish_volume(req)).await
            })
            .map_err(|_| tonic::Status::deadline_exceeded("no answer in 120 s"))?
            .map(|_| ())
    }

    fn unpublish(&mut self, volume_id: &str, target: &Path) -> Result<(), tonic::Status> {
        let req = NodeUnpublishVolumeRequest {
            volume_id: volume_id.into(),
            target_path: target.display().to_string(),
        };
        let node = &mut self.node;
        self.rt
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(240), node.node_unpublish_volume(req))
                    .await
            })
            .map_err(|_| tonic::Status::deadline_exceeded("no answer in 240 s"))?
            .map(|_| ())
    }
}

/// Whatever is left mounted under the test's kubelet directory is detached at the end.
struct Targets(Vec<PathBuf>);

impl Drop for Targets {
    fn drop(&mut self) {
        for t in &self.0 {
            if support::is_mounted(t) {
                harness::unmount(t);
            }
        }
    }
}

#[test]
fn the_plugin_publishes_survives_restarts_and_repairs_dead_targets() {
    let s3 = support::S3Server::start_moto();
    s3.create_bucket("csi");
    s3.put_objects(
        "csi",
        vec![(
            "data/hello.txt".into(),
            bytes::Bytes::from_static(b"hello from the bucket\n"),
        )],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let kubelet_dir = d.join("kubelet");
    std::fs::create_dir_all(&kubelet_dir).expect("mkdir");
    let target = kubelet_dir.join("pods/p1/volumes/kubernetes.io~csi/pv-1/mount");
    let _cleanup = Targets(vec![target.clone()]);
    let mounter_sock = d.join("run/mounter.sock");
    let csi_sock = d.join("plugin/csi.sock");
    let _mounter = start(
        &[
            "csi-mounter",
            "--socket",
            mounter_sock.to_str().expect("utf8"),
            "--targets-under",
            kubelet_dir.to_str().expect("utf8"),
            "--state-dir",
            d.join("state").to_str().expect("utf8"),
        ],
        &d.join("mounter.log"),
    );
    wait_for_socket(&mounter_sock);
    let endpoint = format!("unix://{}", csi_sock.display());
    let plugin_args = [
        "csi",
        "--endpoint",
        endpoint.as_str(),
        "--mounter",
        mounter_sock.to_str().expect("utf8"),
        "--node-id",
        "node-7",
    ];
    let mut plugin = start(&plugin_args, &d.join("plugin.log"));
    wait_for_socket(&csi_sock);
    let mut k = Kubelet::connect(&csi_sock);

    // Identity and node information.
    let id = &mut k.identity;
    let info =
        k.rt.block_on(id.get_plugin_info(GetPluginInfoRequest {}))
            .expect("info")
            .into_inner();
    assert_eq!(info.name, "csi.cloudmount.io");
    let probe =
        k.rt.block_on(id.probe(ProbeRequest {}))
            .expect("probe")
            .into_inner();
    assert_eq!(probe.ready, Some(true));
    let caps =
        k.rt.block_on(id.get_plugin_capabilities(GetPluginCapabilitiesRequest {}))
            .expect("caps");
    assert!(
        caps.into_inner().capabilities.is_empty(),
        "no controller service"
    );
    let node = &mut k.node;
    let ni =
        k.rt.block_on(node.node_get_info(NodeGetInfoRequest {}))
            .expect("node info")
            .into_inner();
    assert_eq!(ni.node_id, "node-7");
    assert!(k
        .rt
        .block_on(node.node_get_capabilities(NodeGetCapabilitiesRequest {}))
        .is_ok());
    let staged =
        k.rt.block_on(node.node_stage_volume(NodeStageVolumeRequest::default()));
    assert_eq!(
        staged.expect_err("no staging").code(),
        tonic::Code::Unimplemented
    );

    // moto (without auth) takes any keys: a secret that cannot occur in a log by chance.
    let secret = "sEcReT-csi-0b5e9a77".to_string();
    let request = |target: &Path,
                   context: &[(&str, &str)],
                   secrets: &[(&str, &str)],
                   cap: VolumeCapability| {
        NodePublishVolumeRequest {
            volume_id: "pv-1".into(),
            target_path: target.display().to_string(),
            volume_capability: Some(cap),
            volume_context: context
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<HashMap<_, _>>(),
            secrets: secrets
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<HashMap<_, _>>(),
            ..Default::default()
        }
    };
    let options = format!("endpoint={},uid=1000", s3.endpoint);
    let context = [("source", "s3://csi"), ("options", options.as_str())];
    let secrets = [
        ("key_id", s3.access_key.as_str()),
        ("access_key", secret.as_str()),
    ];
    let good = request(
        &target,
        &context,
        &secrets,
        capability(Mode::MultiNodeMultiWriter),
    );

    // Bad requests are refused with a message, before anything is mounted.
    let bad_option = format!("{options},colour=blue");
    for (ctx, sec, cap, want) in [
        (
            vec![("source", "s3://csi"), ("options", bad_option.as_str())],
            secrets.to_vec(),
            capability(Mode::MultiNodeMultiWriter),
            "colour",
        ),
        (
            context.to_vec(),
            vec![("key_id", s3.access_key.as_str())],
            capability(Mode::MultiNodeMultiWriter),
            "access_key",
        ),
        (
            vec![("options", options.as_str())],
            secrets.to_vec(),
            capability(Mode::MultiNodeMultiWriter),
            "source",
        ),
        (
            context.to_vec(),
            secrets.to_vec(),
            VolumeCapability {
                access_type: Some(AccessType::Block(Default::default())),
                access_mode: None,
            },
            "Block",
        ),
    ] {
        let err = k
            .publish(request(&target, &ctx, &sec, cap))
            .expect_err("a bad request");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains(want), "{want}: {}", err.message());
        assert!(!support::is_mounted(&target));
    }

    // Publish: the target serves the bucket; publishing again is OK.
    k.publish(good.clone()).unwrap_or_else(|e| {
        panic!(
            "publish: {e:?}\n{}",
            std::fs::read_to_string(d.join("mounter.log")).unwrap_or_default()
        )
    });
    let hello = target.join("data/hello.txt");
    assert_eq!(
        std::fs::read(&hello).expect("read through the target"),
        b"hello from the bucket\n"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(&hello).expect("stat").uid(), 1000);
    k.publish(good.clone())
        .expect("a second publish of the same target");
    let other = request(
        &target,
        &[("source", "s3://other"), ("options", options.as_str())],
        &secrets,
        capability(Mode::MultiNodeMultiWriter),
    );
    assert_eq!(
        k.publish(other).expect_err("another source").code(),
        tonic::Code::AlreadyExists
    );

    // The plugin dies and comes back: the mount never noticed.
    let _ = plugin.0.kill();
    let _ = plugin.0.wait();
    assert_eq!(
        std::fs::read(&hello).expect("read with the plugin gone"),
        b"hello from the bucket\n"
    );
    plugin = start(&plugin_args, &d.join("plugin2.log"));
    wait_for_socket(&csi_sock);
    let mut k = Kubelet::connect(&csi_sock);
    assert_eq!(
        std::fs::read(&hello).expect("read after the restart"),
        b"hello from the bucket\n"
    );
    k.publish(good.clone()).expect("publish after the restart");

    // Secrets reach neither a command line nor a log.
    let pids = harness::daemon_pids(&target);
    assert_eq!(pids.len(), 1, "one daemon serves the target: {pids:?}");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", pids[0])).expect("cmdline");
    assert!(
        !String::from_utf8_lossy(&cmdline).contains(&secret),
        "the secret is on the command line"
    );
    for log in [
        d.join("mounter.log"),
        d.join("plugin.log"),
        d.join("plugin2.log"),
    ] {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !text.contains(&secret),
            "{} shows the secret",
            log.display()
        );
    }
    for entry in std::fs::read_dir(d.join("state/log")).expect("daemon logs") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default();
        assert!(!text.contains(&secret), "a daemon log shows the secret");
    }

    // The daemon is SIGKILLed: the target answers ENOTCONN until the next publish repairs it.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let dead = support::wait_until(Duration::from_secs(10), || {
        std::fs::metadata(&hello)
            .err()
            .and_then(|e| e.raw_os_error())
            == Some(libc::ENOTCONN)
    });
    assert!(dead, "the target does not show the dead daemon");
    k.publish(good.clone())
        .expect("publish repairs a dead target");
    assert_eq!(
        std::fs::read(&hello).expect("read after the repair"),
        b"hello from the bucket\n"
    );

    // Unpublish: unmounted, the target directory removed; again: still OK.
    k.unpublish("pv-1", &target).expect("unpublish");
    assert!(!support::is_mounted(&target));
    assert!(!target.exists(), "the target directory is left");
    k.unpublish("pv-1", &target).expect("a second unpublish");
    drop(plugin);
}
