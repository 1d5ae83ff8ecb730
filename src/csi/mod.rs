//! A Kubernetes CSI node plugin for pre-provisioned cloudmount volumes (docs/kubernetes.md).
//!
//! Two processes: the node plugin ([`run_plugin`], `cloudmount csi`), which kubelet calls
//! over gRPC in the driver's pod, and the mounter ([`host::serve`], `cloudmount
//! csi-mounter`), a service of the node's host that the plugin asks to start and stop the
//! FUSE daemons. The daemons therefore live outside the plugin's pod, and restarting or
//! upgrading the plugin breaks no mount (kubernetes#70013).

pub mod host;
pub mod mounter;
mod node;
pub mod volume;

pub use node::{Plugin, DRIVER_NAME};

/// The gRPC code of the CSI spec (proto/csi.proto, v1.12.0), generated at build time.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    tonic::include_proto!("csi.v1");
}

use std::path::PathBuf;

/// The path of a `unix://` endpoint (`unix:///csi/csi.sock` or a plain path).
pub fn endpoint_path(endpoint: &str) -> Result<PathBuf, String> {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    if !path.starts_with('/') {
        return Err(format!(
            "endpoint {endpoint:?} must be unix:///ABSOLUTE/PATH (kubelet talks to plugins over Unix sockets)"
        ));
    }
    Ok(PathBuf::from(path))
}

/// Serve the Identity and Node services on the Unix socket `endpoint` until SIGTERM/SIGINT.
pub fn run_plugin(endpoint: &str, plugin: Plugin) -> Result<(), String> {
    let path = endpoint_path(endpoint)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    rt.block_on(async move {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(format!("cannot replace {}: {e}", path.display()))
            }
            _ => {}
        }
        let listener = tokio::net::UnixListener::bind(&path)
            .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
        tracing::info!(endpoint = %path.display(), mounter = %plugin.mounter.display(), node = %plugin.node_id, "CSI node plugin {DRIVER_NAME} serving");
        let incoming = tokio_stream::wrappers::UnixListenerStream::new(listener);
        let stop = async {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        };
        tonic::transport::Server::builder()
            .add_service(proto::identity_server::IdentityServer::new(plugin.clone()))
            .add_service(proto::node_server::NodeServer::new(plugin))
            .serve_with_incoming_shutdown(incoming, stop)
            .await
            .map_err(|e| format!("the gRPC server failed: {e}"))?;
        let _ = std::fs::remove_file(&path);
        tracing::info!("CSI node plugin stopped (the mounts it asked for keep serving)");
        Ok(())
    })
}
