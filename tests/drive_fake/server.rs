//! The HTTP server: accept loop, per-request pipeline (body, latency, faults, auth) and the
//! route table.

use super::faults::Op;
use super::http::{path_decode, ApiError, Params, Resp};
use super::upload::Chunk;
use super::{about, changes, export, files, oauth, upload, Shared};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request};
use std::sync::Arc;
use tokio::net::TcpListener;

/// The error a service returns to make hyper close the connection without answering.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped on purpose")
    }
}

impl std::error::Error for Dropped {}

/// Accepts connections until `shutdown` fires; each connection is served by hyper's HTTP/1
/// server with keep-alive.
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut shutdown => return,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let svc = hyper::service::service_fn(move |req| handle(req, shared.clone()));
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, svc)
                .await;
        });
    }
}

/// The path split after a prefix: `/drive/v3/files/ID/copy` → `["files", "ID", "copy"]`.
fn segments<'a>(path: &'a str, prefix: &str) -> Option<Vec<&'a str>> {
    let rest = path.strip_prefix(prefix)?;
    if !rest.is_empty() && !rest.starts_with('/') {
        return None;
    }
    Some(rest.split('/').filter(|s| !s.is_empty()).collect())
}

/// The kind of request, for counting and faults.
fn classify(method: &Method, path: &str, p: &Params) -> Op {
    if path == "/token" {
        return Op::Token;
    }
    if segments(path, "/upload/drive/v3").is_some() {
        return if p.get("upload_id").is_some() {
            Op::ResumableChunk
        } else {
            Op::Upload
        };
    }
    let Some(seg) = segments(path, "/drive/v3") else {
        return Op::Any;
    };
    match (method, seg.as_slice()) {
        (_, ["about"]) => Op::About,
        (_, ["changes", ..]) => Op::Changes,
        (&Method::GET, ["files"]) => Op::List,
        (&Method::POST, ["files"]) => Op::Create,
        (&Method::DELETE, ["files", _]) => Op::Delete,
        (&Method::GET, ["files", _]) if p.get("alt") == Some("media") => Op::Media,
        (&Method::GET, ["files", _]) => Op::Get,
        (&Method::PATCH, ["files", _]) => Op::Update,
        (_, ["files", _, "copy"]) => Op::Copy,
        (_, ["files", _, "export"]) => Op::Export,
        _ => Op::Any,
    }
}

fn not_found_route() -> ApiError {
    ApiError::new(404, "notFound", "Not Found")
}

/// One request: read the body, wait the configured latency, count it, apply faults, check
/// the token, route.
pub(crate) async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Resp, Dropped> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(Dropped),
    };
    if !shared.opts.ttfb.is_zero() {
        tokio::time::sleep(shared.opts.ttfb).await;
    }
    let path = parts.uri.path().to_string();
    let params = Params::parse(parts.uri.query());
    let op = classify(&parts.method, &path, &params);
    if let Some(fault) = shared.faults.on_request(op) {
        return Ok(fault.response(op == Op::Token));
    }
    let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok());
    let authorization = header("authorization");
    if path == "/token" && parts.method == Method::POST {
        return Ok(oauth::token(&shared, authorization, &body));
    }
    if path == "/o/oauth2/auth" && parts.method == Method::GET {
        return Ok(oauth::authorize(&shared, &params));
    }
    let api = segments(&path, "/drive").is_some() || segments(&path, "/upload").is_some();
    if !api {
        return Ok(not_found_route().response());
    }
    if !shared.authorized(oauth::bearer(authorization)) {
        return Ok(ApiError::unauthenticated().response());
    }
    if let Some(seg) = segments(&path, "/upload/drive/v3") {
        let seg: Vec<String> = seg.into_iter().map(path_decode).collect();
        let id = match seg.as_slice() {
            [f] if f == "files" => None,
            [f, id] if f == "files" => Some(id.as_str()),
            _ => return Ok(not_found_route().response()),
        };
        if let Some(upload_id) = params.get("upload_id") {
            if !matches!(parts.method, Method::PUT | Method::POST) {
                return Ok(not_found_route().response());
            }
            return match upload::chunk(&shared, upload_id, &parts.headers, body) {
                Ok(Chunk::Answer(r)) => Ok(r),
                Ok(Chunk::Drop) => Err(Dropped),
                Err(e) => Ok(e.response()),
            };
        }
        let allowed = match id {
            None => parts.method == Method::POST,
            Some(_) => matches!(parts.method, Method::PATCH | Method::PUT),
        };
        if !allowed {
            return Ok(not_found_route().response());
        }
        return Ok(upload::start(&shared, id, &params, &parts.headers, body)
            .unwrap_or_else(|e| e.response()));
    }
    let seg: Vec<String> = segments(&path, "/drive/v3")
        .unwrap_or_default()
        .into_iter()
        .map(path_decode)
        .collect();
    let seg: Vec<&str> = seg.iter().map(String::as_str).collect();
    let m = &parts.method;
    let p = &params;
    let result = match (m, seg.as_slice()) {
        (&Method::GET, ["about"]) => about::about(&shared, p),
        (&Method::GET, ["drives"]) => Ok(about::drives_list(&shared)),
        (&Method::GET, ["drives", id]) => about::drives_get(&shared, id),
        (&Method::GET, ["changes", "startPageToken"]) => changes::start_page_token(&shared, p),
        (&Method::GET, ["changes"]) => changes::list(&shared, p),
        (&Method::GET, ["files"]) => files::list(&shared, p),
        (&Method::POST, ["files"]) => files::create(&shared, p, &body),
        (&Method::DELETE, ["files", "trash"]) => files::empty_trash(&shared, p),
        (&Method::GET, ["files", id]) => files::get(&shared, id, p, header("range")),
        (&Method::PATCH, ["files", id]) => files::update(&shared, id, p, &body),
        (&Method::DELETE, ["files", id]) => files::delete(&shared, id, p),
        (&Method::POST, ["files", id, "copy"]) => files::copy(&shared, id, p, &body),
        (&Method::GET, ["files", id, "export"]) => export::route(&shared, id, p),
        _ => Err(not_found_route()),
    };
    Ok(result.unwrap_or_else(|e| e.response()))
}
