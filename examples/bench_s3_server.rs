//! A small, fast S3-compatible server for benchmarks: serves the directory DATA (one
//! sub-directory per bucket, keys are file paths) on 127.0.0.1 without checking signatures.
//! Never use it for anything but local benchmarks.
//!
//! `cargo run --release --example bench_s3_server -- DATA PORT [--ttfb-ms N] [--cpu-us N]`
//!
//! A latency model for benchmarks (issue 16): `--ttfb-ms N` answers every request N ms late
//! (a timer, no CPU: what a distant store's round trip costs), and `--cpu-us N` spends N µs of
//! CPU on each request before answering (what a slower server spends; about 3,000 makes a
//! 100 KiB GET take 3 ms, as the slower S3 servers do).
//!
//! Supports what the mounts under test use: GET (with Range) and HEAD of objects, ListObjects
//! v1 and v2 with prefix, delimiter `/`, max-keys and paging, GetBucketLocation, PUT and DELETE
//! of objects, and multipart uploads (initiate, upload part, complete, abort; parts are kept
//! under DATA/.uploads/ and joined at completion). Object bodies stream from the file in 1 MiB chunks read on blocking threads, so
//! one GET runs at memory speed and a 1 GiB object needs no 1 GiB buffer.
//!
//! Multipart uploads follow S3's limits: part numbers 1 to 10,000, every part but the last at
//! least 5 MiB, at most 5 GiB each (`EntityTooSmall` / `EntityTooLarge` / `InvalidArgument`
//! otherwise). A part of only zeros is stored as a sparse file and stays sparse in the joined
//! object, so a stream of tens of GiB of zeros (the part-limit benchmark) needs no disk; each
//! completion is logged with its part count and sizes.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use std::convert::Infallible;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

type Body = BoxBody<Bytes, std::io::Error>;

const CHUNK: usize = 1 << 20;
/// S3's multipart limits.
const MAX_PARTS: u32 = 10_000;
const MIN_PART: u64 = 5 << 20;
const MAX_PART: u64 = 5 << 30;

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(
        Full::new(body.into())
            .map_err(|e: Infallible| match e {})
            .boxed(),
    );
    *r.status_mut() = status;
    r
}

fn error(status: StatusCode, code: &str) -> Response<Body> {
    let mut r = full(status, format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>{code}</Message></Error>"));
    r.headers_mut().insert(
        "content-type",
        "application/xml".parse().expect("static header"),
    );
    r
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(v) => {
                    out.push(v);
                    i += 3;
                    continue;
                }
                Err(_) => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_path(s: &str) -> String {
    decode(&s.replace('+', "%2B"))
}

fn query(req: &Request<Incoming>) -> Vec<(String, String)> {
    req.uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn etag(meta: &std::fs::Metadata) -> String {
    let m = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    format!("\"{m:x}-{:x}\"", meta.len())
}

fn iso(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Parse `bytes=a-b`, `bytes=a-`, `bytes=-n` against `size`; `None` for unsatisfiable.
fn range(h: &str, size: u64) -> Option<(u64, u64)> {
    let spec = h.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (size.saturating_sub(n), size)
        }
        (a, "") => (a.parse().ok()?, size),
        (a, b) => (a.parse().ok()?, (b.parse::<u64>().ok()? + 1).min(size)),
    };
    (start < end && start < size).then_some((start, end))
}

fn object(
    root: &Path,
    bucket: &str,
    key: &str,
    req: &Request<Incoming>,
    head: bool,
) -> Response<Body> {
    let path = root.join(bucket).join(key);
    let meta = match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => m,
        // A directory answers for the object `key/` as an empty directory object, like the
        // file-backed servers s3fs is usually run against (s3fs needs it to see directories).
        Ok(m) if m.is_dir() && key.ends_with('/') => {
            let mut r = full(StatusCode::OK, Bytes::new());
            let h = r.headers_mut();
            h.insert("etag", "\"d\"".parse().expect("static"));
            h.insert(
                "content-type",
                "application/x-directory".parse().expect("static"),
            );
            h.insert("content-length", 0u64.into());
            if let Ok(t) = m.modified() {
                h.insert(
                    "last-modified",
                    httpdate::fmt_http_date(t).parse().expect("date"),
                );
            }
            return r;
        }
        _ => return error(StatusCode::NOT_FOUND, "NoSuchKey"),
    };
    let size = meta.len();
    let tag = etag(&meta);
    if let Some(want) = req.headers().get("if-match").and_then(|v| v.to_str().ok()) {
        if want != tag && want != "*" {
            return error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
        }
    }
    let (start, end, status) = match req.headers().get("range").and_then(|v| v.to_str().ok()) {
        Some(h) => match range(h, size) {
            Some((a, b)) => (a, b, StatusCode::PARTIAL_CONTENT),
            None => return error(StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange"),
        },
        None => (0, size, StatusCode::OK),
    };
    let mut resp = if head || start == end {
        full(status, Bytes::new())
    } else {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
        tokio::task::spawn_blocking(move || {
            let file = match std::fs::File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            let mut off = start;
            while off < end {
                let n = ((end - off) as usize).min(CHUNK);
                let mut buf = vec![0u8; n];
                if let Err(e) = file.read_exact_at(&mut buf, off) {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
                off += n as u64;
                if tx.blocking_send(Ok(Frame::data(Bytes::from(buf)))).is_err() {
                    return;
                }
            }
        });
        let stream = tokio_stream_from(rx);
        let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        *r.status_mut() = status;
        r
    };
    let h = resp.headers_mut();
    let len = end - start;
    h.insert("content-length", len.into());
    h.insert("etag", tag.parse().expect("hex etag"));
    h.insert("accept-ranges", "bytes".parse().expect("static"));
    h.insert(
        "content-type",
        "application/octet-stream".parse().expect("static"),
    );
    if let Ok(t) = meta.modified() {
        h.insert(
            "last-modified",
            httpdate::fmt_http_date(t).parse().expect("date"),
        );
    }
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            "content-range",
            format!("bytes {start}-{}/{size}", end - 1)
                .parse()
                .expect("range"),
        );
    }
    resp
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Frame<Bytes>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Frame<Bytes>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

struct Item {
    key: String,
    size: u64,
    mtime: SystemTime,
    etag: String,
    dir: bool,
}

/// Keys under `prefix` (files, and with the delimiter, directories as common prefixes).
fn list_items(root: &Path, bucket: &str, prefix: &str, delimited: bool) -> Vec<Item> {
    let (dir_part, name_part) = match prefix.rfind('/') {
        Some(i) => (&prefix[..=i], &prefix[i + 1..]),
        None => ("", prefix),
    };
    let mut out = Vec::new();
    let mut stack = vec![(root.join(bucket).join(dir_part), dir_part.to_string(), true)];
    while let Some((dir, key_dir, top)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if top && !name.starts_with(name_part) {
                continue;
            }
            let Ok(meta) = e.metadata() else { continue };
            let key = format!("{key_dir}{name}");
            if meta.is_dir() {
                if delimited {
                    out.push(Item {
                        key: format!("{key}/"),
                        size: 0,
                        mtime: SystemTime::UNIX_EPOCH,
                        etag: String::new(),
                        dir: true,
                    });
                } else {
                    stack.push((e.path(), format!("{key}/"), false));
                }
            } else {
                let mtime = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                out.push(Item {
                    key,
                    size: meta.len(),
                    mtime,
                    etag: etag(&meta),
                    dir: false,
                });
            }
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn list(root: &Path, bucket: &str, q: &[(String, String)]) -> Response<Body> {
    if !root.join(bucket).is_dir() {
        return error(StatusCode::NOT_FOUND, "NoSuchBucket");
    }
    let get = |k: &str| q.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str());
    let v2 = get("list-type") == Some("2");
    let prefix = get("prefix").unwrap_or("");
    let delimited = get("delimiter") == Some("/");
    let max: usize = get("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000)
        .min(1000);
    let after = if v2 {
        get("continuation-token").or(get("start-after"))
    } else {
        get("marker")
    }
    .unwrap_or("");
    let items: Vec<Item> = list_items(root, bucket, prefix, delimited)
        .into_iter()
        .filter(|i| i.key.as_str() > after)
        .collect();
    let truncated = items.len() > max;
    let page = &items[..items.len().min(max)];
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
    x.push_str(&format!(
        "<Name>{}</Name><Prefix>{}</Prefix><MaxKeys>{max}</MaxKeys>",
        xml_escape(bucket),
        xml_escape(prefix)
    ));
    if delimited {
        x.push_str("<Delimiter>/</Delimiter>");
    }
    x.push_str(&format!("<IsTruncated>{truncated}</IsTruncated>"));
    if v2 {
        x.push_str(&format!("<KeyCount>{}</KeyCount>", page.len()));
    } else {
        x.push_str(&format!("<Marker>{}</Marker>", xml_escape(after)));
    }
    if truncated {
        let last = page.last().map(|i| xml_escape(&i.key)).unwrap_or_default();
        x.push_str(&if v2 {
            format!("<NextContinuationToken>{last}</NextContinuationToken>")
        } else {
            format!("<NextMarker>{last}</NextMarker>")
        });
    }
    for i in page.iter().filter(|i| !i.dir) {
        x.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            xml_escape(&i.key), iso(i.mtime), xml_escape(&i.etag), i.size
        ));
    }
    for i in page.iter().filter(|i| i.dir) {
        x.push_str(&format!(
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            xml_escape(&i.key)
        ));
    }
    x.push_str("</ListBucketResult>");
    let mut r = full(StatusCode::OK, x);
    r.headers_mut()
        .insert("content-type", "application/xml".parse().expect("static"));
    r
}

async fn put(root: &Path, bucket: &str, key: &str, req: Request<Incoming>) -> Response<Body> {
    let path = root.join(bucket).join(key);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return error(StatusCode::BAD_REQUEST, "IncompleteBody"),
    };
    let res = if key.ends_with('/') {
        std::fs::create_dir_all(&path)
    } else {
        path.parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|_| std::fs::write(&path, &body))
    };
    match res.and_then(|_| std::fs::metadata(&path)) {
        Ok(m) => {
            let mut r = full(StatusCode::OK, Bytes::new());
            r.headers_mut()
                .insert("etag", etag(&m).parse().expect("etag"));
            r
        }
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
    }
}

fn xml(x: String) -> Response<Body> {
    let mut r = full(StatusCode::OK, x);
    r.headers_mut()
        .insert("content-type", "application/xml".parse().expect("static"));
    r
}

fn param<'a>(q: &'a [(String, String)], name: &str) -> Option<&'a str> {
    q.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Multipart uploads: POST ?uploads, PUT ?partNumber&uploadId, POST ?uploadId, DELETE ?uploadId.
async fn multipart(
    root: &Path,
    bucket: &str,
    key: &str,
    q: &[(String, String)],
    req: Request<Incoming>,
) -> Option<Response<Body>> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let dir_of = |id: &str| root.join(".uploads").join(id.replace(['/', '.'], "_"));
    let method = req.method().clone();
    if method == Method::POST && q.iter().any(|(k, _)| k == "uploads") {
        let id = format!(
            "up{}",
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        if std::fs::create_dir_all(dir_of(&id)).is_err() {
            return Some(error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError"));
        }
        return Some(xml(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>", xml_escape(bucket), xml_escape(key))));
    }
    let id = param(q, "uploadId")?;
    let dir = dir_of(id);
    match method {
        Method::PUT => {
            let n: u32 = param(q, "partNumber")?.parse().ok()?;
            if !(1..=MAX_PARTS).contains(&n) {
                return Some(error(StatusCode::BAD_REQUEST, "InvalidArgument"));
            }
            let body = match req.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return Some(error(StatusCode::BAD_REQUEST, "IncompleteBody")),
            };
            if body.len() as u64 > MAX_PART {
                return Some(error(StatusCode::BAD_REQUEST, "EntityTooLarge"));
            }
            let part = dir.join(format!("{n:05}"));
            let stored = if body.iter().all(|b| *b == 0) {
                std::fs::File::create(&part).and_then(|f| f.set_len(body.len() as u64))
            } else {
                std::fs::write(&part, &body)
            };
            if stored.is_err() {
                return Some(error(StatusCode::NOT_FOUND, "NoSuchUpload"));
            }
            let mut r = full(StatusCode::OK, Bytes::new());
            r.headers_mut()
                .insert("etag", format!("\"{id}-{n}\"").parse().expect("etag"));
            Some(r)
        }
        Method::POST => {
            let mut parts: Vec<PathBuf> = match std::fs::read_dir(&dir) {
                Ok(d) => d.flatten().map(|e| e.path()).collect(),
                Err(_) => return Some(error(StatusCode::NOT_FOUND, "NoSuchUpload")),
            };
            parts.sort();
            let sizes: Vec<u64> = parts
                .iter()
                .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
                .collect();
            let small = sizes[..sizes.len().saturating_sub(1)]
                .iter()
                .any(|s| *s < MIN_PART);
            if small {
                return Some(error(StatusCode::BAD_REQUEST, "EntityTooSmall"));
            }
            let path = root.join(bucket).join(key);
            let joined = (|| -> std::io::Result<u64> {
                use std::io::{Seek, SeekFrom};
                use std::os::unix::fs::MetadataExt;
                if let Some(p) = path.parent() {
                    std::fs::create_dir_all(p)?;
                }
                let mut out = std::fs::File::create(&path)?;
                let mut total = 0;
                for p in &parts {
                    let m = std::fs::metadata(p)?;
                    if m.blocks() == 0 {
                        // A sparse part of zeros stays a hole.
                        out.seek(SeekFrom::Current(m.len() as i64))?;
                    } else {
                        std::io::copy(&mut std::fs::File::open(p)?, &mut out)?;
                    }
                    total += m.len();
                }
                out.set_len(total)?;
                std::fs::remove_dir_all(&dir)?;
                Ok(total)
            })();
            let Ok(total) = joined else {
                return Some(error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError"));
            };
            let largest = sizes.iter().max().copied().unwrap_or(0);
            eprintln!(
                "bench_s3_server: completed {bucket}/{key}: {} parts, {total} bytes, largest part {largest} bytes",
                parts.len()
            );
            Some(xml(format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?><CompleteMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>{}</Bucket><Key>{}</Key><ETag>\"{id}-{}\"</ETag></CompleteMultipartUploadResult>", xml_escape(bucket), xml_escape(key), parts.len())))
        }
        Method::DELETE => {
            let _ = std::fs::remove_dir_all(&dir);
            Some(full(StatusCode::NO_CONTENT, Bytes::new()))
        }
        _ => None,
    }
}

async fn handle(req: Request<Incoming>, root: Arc<PathBuf>) -> Result<Response<Body>, Infallible> {
    let path = decode_path(req.uri().path());
    let trimmed = path.trim_start_matches('/');
    let (bucket, key) = trimmed.split_once('/').unwrap_or((trimmed, ""));
    let (bucket, key) = (bucket.to_string(), key.to_string());
    let q = query(&req);
    if bucket.is_empty() || bucket.contains("..") || key.split('/').any(|p| p == "..") {
        return Ok(error(StatusCode::BAD_REQUEST, "InvalidRequest"));
    }
    let is_multipart = q.iter().any(|(k, _)| k == "uploads" || k == "uploadId");
    if is_multipart && !key.is_empty() {
        return Ok(multipart(&root, &bucket, &key, &q, req)
            .await
            .unwrap_or_else(|| error(StatusCode::BAD_REQUEST, "InvalidRequest")));
    }
    Ok(match (req.method().clone(), key.is_empty()) {
        (Method::GET, true) if q.iter().any(|(k, _)| k == "location") => {
            full(StatusCode::OK, "<?xml version=\"1.0\" encoding=\"UTF-8\"?><LocationConstraint xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">us-east-1</LocationConstraint>")
        }
        (Method::GET, true) => list(&root, &bucket, &q),
        (Method::HEAD, true) => {
            if root.join(&bucket).is_dir() { full(StatusCode::OK, Bytes::new()) } else { error(StatusCode::NOT_FOUND, "NoSuchBucket") }
        }
        (Method::GET, false) => object(&root, &bucket, &key, &req, false),
        (Method::HEAD, false) => object(&root, &bucket, &key, &req, true),
        (Method::PUT, false) => put(&root, &bucket, &key, req).await,
        (Method::DELETE, false) => {
            let p = root.join(&bucket).join(&key);
            let _ = if key.ends_with('/') {
                std::fs::remove_dir(&p)
            } else {
                std::fs::remove_file(&p)
            };
            full(StatusCode::NO_CONTENT, Bytes::new())
        }
        _ => error(StatusCode::NOT_IMPLEMENTED, "NotImplemented"),
    })
}

/// The latency model: a delay before each answer, and CPU spent on each request.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    ttfb: std::time::Duration,
    cpu: std::time::Duration,
}

impl Cost {
    /// Pay the cost of one request, then answer it.
    async fn pay(self) {
        if !self.cpu.is_zero() {
            // Busy: the server's own work, on the runtime thread that serves the request.
            let started = std::time::Instant::now();
            while started.elapsed() < self.cpu {
                std::hint::spin_loop();
            }
        }
        if !self.ttfb.is_zero() {
            tokio::time::sleep(self.ttfb).await;
        }
    }
}

/// `--ttfb-ms N` / `--cpu-us N` from `args` (after DATA and PORT).
fn cost(args: &[String]) -> Result<Cost, String> {
    let mut c = Cost::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| format!("{flag} needs a number"))?;
        match flag.as_str() {
            "--ttfb-ms" => c.ttfb = std::time::Duration::from_millis(value),
            "--cpu-us" => c.cpu = std::time::Duration::from_micros(value),
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(c)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: bench_s3_server DATA_DIR PORT [--ttfb-ms N] [--cpu-us N]";
    let (Some(dir), Some(port)) = (args.get(1), args.get(2).and_then(|p| p.parse::<u16>().ok()))
    else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let cost = match cost(args.get(3..).unwrap_or_default()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}\n{usage}");
            std::process::exit(2);
        }
    };
    let root = Arc::new(PathBuf::from(dir));
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runtime: {e}");
            std::process::exit(1);
        }
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bind 127.0.0.1:{port}: {e}");
                std::process::exit(1);
            }
        };
        eprintln!(
            "bench_s3_server: serving {} on http://127.0.0.1:{port} ({cost:?})",
            root.display()
        );
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let root = root.clone();
            tokio::spawn(async move {
                let io = hyper_util::rt::TokioIo::new(stream);
                let svc = hyper::service::service_fn(move |req| {
                    let root = root.clone();
                    async move {
                        cost.pay().await;
                        handle(req, root).await
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, svc)
                    .await;
            });
        }
    });
}
