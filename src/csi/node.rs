//! The CSI Identity and Node services. Publish checks the request ([`super::volume`]), looks
//! at the target (already served: done; dead: detached and mounted again; another source:
//! refused), then asks the mounter on the host to mount. Unpublish asks it to stop the
//! daemon, and removes the target directory. Every other call answers UNIMPLEMENTED.

use super::mounter::{ask, Request};
use super::proto::identity_server::Identity;
use super::proto::node_server::Node;
use super::proto::volume_capability::access_mode::Mode;
use super::proto::volume_capability::AccessType;
use super::proto::*;
use super::volume::{order, Publish};
use crate::daemon;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::{Request as Rpc, Response, Status};

/// The driver's name, as `CSIDriver` objects and PVs name it.
pub const DRIVER_NAME: &str = "csi.cloudmount.io";

/// How long a mount or an unmount through the mounter may take.
const MOUNTER_WAIT: Duration = Duration::from_secs(240);

/// The plugin's state: where the mounter listens, and this node's name.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// The mounter's socket.
    pub mounter: PathBuf,
    /// This node's ID (NodeGetInfo).
    pub node_id: String,
}

impl Plugin {
    /// Ask the mounter, off the async runtime.
    async fn mounter(&self, req: Request) -> Result<(), String> {
        let socket = self.mounter.clone();
        tokio::task::spawn_blocking(move || ask(&socket, &req, MOUNTER_WAIT))
            .await
            .map_err(|e| format!("the mounter call failed: {e}"))?
    }
}

#[tonic::async_trait]
impl Identity for Plugin {
    async fn get_plugin_info(
        &self,
        _: Rpc<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        Ok(Response::new(GetPluginInfoResponse {
            name: DRIVER_NAME.into(),
            vendor_version: env!("CARGO_PKG_VERSION").into(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Rpc<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        // No controller service: volumes are pre-provisioned.
        Ok(Response::new(GetPluginCapabilitiesResponse {
            capabilities: Vec::new(),
        }))
    }

    async fn probe(&self, _: Rpc<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        let ready = self.mounter(Request::Ping).await;
        if let Err(e) = &ready {
            tracing::warn!(error = %e, "probe: the mounter does not answer");
        }
        Ok(Response::new(ProbeResponse {
            ready: Some(ready.is_ok()),
        }))
    }
}

/// The target path of a request, which must be absolute.
fn target(path: &str) -> Result<PathBuf, Status> {
    let p = PathBuf::from(path);
    if path.is_empty() || !p.is_absolute() {
        return Err(Status::invalid_argument(format!(
            "target_path {path:?} must be an absolute path"
        )));
    }
    Ok(p)
}

/// Whether the access mode lets the volume be written.
fn writable(cap: &VolumeCapability) -> Result<bool, Status> {
    let mode = cap
        .access_mode
        .as_ref()
        .map_or(Ok(Mode::Unknown), |m| Mode::try_from(m.mode))
        .map_err(|_| Status::invalid_argument("unknown volume_capability.access_mode"))?;
    Ok(!matches!(
        mode,
        Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly
    ))
}

#[tonic::async_trait]
impl Node for Plugin {
    async fn node_publish_volume(
        &self,
        request: Rpc<NodePublishVolumeRequest>,
    ) -> Result<Response<NodePublishVolumeResponse>, Status> {
        let r = request.get_ref();
        if r.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is empty"));
        }
        let target = target(&r.target_path)?;
        let cap = r
            .volume_capability
            .as_ref()
            .ok_or_else(|| Status::invalid_argument("volume_capability is missing"))?;
        let flags =
            match &cap.access_type {
                Some(AccessType::Mount(m)) => m.mount_flags.clone(),
                Some(AccessType::Block(_)) => return Err(Status::invalid_argument(
                    "a cloudmount volume is a filesystem: use volumeMode: Filesystem, not Block",
                )),
                None => Vec::new(),
            };
        let order = order(&Publish {
            context: Some(&r.volume_context),
            secrets: Some(&r.secrets),
            mount_flags: &flags,
            read_only: r.readonly || !writable(cap)?,
        })
        .map_err(Status::invalid_argument)?;
        if let Some(have) = daemon::fuse_mount_source(&target) {
            if have != order.source && super::host::answers(&target) {
                return Err(Status::already_exists(format!(
                    "{} already holds {have}, not {}",
                    target.display(),
                    order.source
                )));
            }
        }
        tracing::info!(volume = %r.volume_id, target = %target.display(), source = %order.source, "publish");
        self.mounter(Request::Mount {
            volume_id: r.volume_id.clone(),
            source: order.source,
            target,
            options: order.options,
            env: order.env,
        })
        .await
        .map_err(Status::internal)?;
        Ok(Response::new(NodePublishVolumeResponse {}))
    }

    async fn node_unpublish_volume(
        &self,
        request: Rpc<NodeUnpublishVolumeRequest>,
    ) -> Result<Response<NodeUnpublishVolumeResponse>, Status> {
        let r = request.into_inner();
        if r.volume_id.is_empty() {
            return Err(Status::invalid_argument("volume_id is empty"));
        }
        let target = target(&r.target_path)?;
        tracing::info!(volume = %r.volume_id, target = %target.display(), "unpublish");
        self.mounter(Request::Unmount {
            target: target.clone(),
        })
        .await
        .map_err(Status::internal)?;
        remove_target(&target).map_err(Status::internal)?;
        Ok(Response::new(NodeUnpublishVolumeResponse {}))
    }

    async fn node_get_capabilities(
        &self,
        _: Rpc<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        // No staging: each publish is one mount.
        Ok(Response::new(NodeGetCapabilitiesResponse {
            capabilities: Vec::new(),
        }))
    }

    async fn node_get_info(
        &self,
        _: Rpc<NodeGetInfoRequest>,
    ) -> Result<Response<NodeGetInfoResponse>, Status> {
        Ok(Response::new(NodeGetInfoResponse {
            node_id: self.node_id.clone(),
            max_volumes_per_node: 0,
            accessible_topology: None,
        }))
    }
}

/// Remove the target directory once nothing is mounted there (already gone: fine).
fn remove_target(target: &Path) -> Result<(), String> {
    match std::fs::remove_dir(target) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!("cannot remove {}: {e}", target.display())),
    }
}
