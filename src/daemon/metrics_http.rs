//! `-o metrics=ADDR:PORT`: the mount's numbers in the Prometheus text format at `/metrics`,
//! served by hyper's HTTP/1 server on the daemon's runtime.

use crate::metrics::Snapshot;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::sync::Arc;

/// What a scrape encodes: the numbers at the moment of the scrape.
pub type Source = Arc<dyn Fn() -> Snapshot + Send + Sync>;

/// Bind `addr` now (so a taken port fails the mount with a clear message) and serve scrapes
/// from `snapshot` on the current runtime.
pub fn serve(addr: SocketAddr, snapshot: Source) -> Result<(), String> {
    let std_listener = std::net::TcpListener::bind(addr).map_err(|e| {
        format!(
            "cannot serve metrics on {addr}: {e} (choose another port with -o metrics=ADDR:PORT)"
        )
    })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    let listener = tokio::net::TcpListener::from_std(std_listener)
        .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
    tracing::info!(%addr, "serving metrics at http://{addr}/metrics");
    tokio::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            };
            let snapshot = snapshot.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let snapshot = snapshot.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(&req, &snapshot)) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(conn), service)
                    .await;
            });
        }
    });
    Ok(())
}

/// `/metrics` gets the numbers; anything else a 404 that says where they are.
fn answer(req: &Request<hyper::body::Incoming>, snapshot: &Source) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, kind: &'static str, body: String| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static(kind),
        );
        r
    };
    if req.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "cloudmount serves its metrics at /metrics\n".into(),
        );
    }
    match crate::metrics::prometheus::encode(&snapshot()) {
        Ok(text) => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            text,
        ),
        Err(e) => reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("cannot encode the metrics: {e}\n"),
        ),
    }
}
