//! An HTTP/1.1 proxy on loopback that injects one fault into every request whose request
//! line (method, path, query) contains a chosen text, while the fault is set: latency, a stall, a reset before the headers, a reset mid-body, a body cut short
//! without a reset, 500, 503 SlowDown with `Retry-After`, 403, a wrong `Content-Length`; and
//! the server gone (connections refused) and back (listening again on the same port).
//!
//! Each request is forwarded on its own upstream connection (`Connection: close`), so the
//! whole answer is known before it is passed on (or broken); the client side keeps its
//! connection alive where the answer's framing allows.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What happens to each request while set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The answer is held this long, then passed on whole.
    Latency(Duration),
    /// Nothing is answered until the client gives up or the fault is cleared.
    Stall,
    /// The connection is reset (RST) once the request is read.
    ResetBeforeHeaders,
    /// The headers and half the body are sent, then the connection is reset.
    ResetMidBody,
    /// The headers and half the body are sent, then the connection is closed (FIN).
    ShortBody,
    /// `500 InternalError`.
    Status500,
    /// `503 SlowDown` with `Retry-After: 1`.
    SlowDown503,
    /// `403 AccessDenied`.
    Forbidden403,
    /// The answer says `Content-Length` is half its body (the rest follows, then a close).
    WrongLength,
}

impl Fault {
    /// Short name for tables.
    pub fn name(self) -> String {
        match self {
            Fault::Latency(d) => format!("latency {} ms", d.as_millis()),
            Fault::Stall => "stall".into(),
            Fault::ResetBeforeHeaders => "reset before headers".into(),
            Fault::ResetMidBody => "reset mid-body".into(),
            Fault::ShortBody => "body cut short (FIN)".into(),
            Fault::Status500 => "500 InternalError".into(),
            Fault::SlowDown503 => "503 SlowDown, Retry-After 1".into(),
            Fault::Forbidden403 => "403 AccessDenied".into(),
            Fault::WrongLength => "Content-Length half the body".into(),
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    fault: Mutex<Option<(Fault, String)>>,
    stop: AtomicBool,
    faulted: AtomicUsize,
    requests: AtomicUsize,
    /// The longest a client waited on a stalled request before it gave up, in ms.
    longest_wait: std::sync::atomic::AtomicU64,
    conns: Mutex<Vec<TcpStream>>,
}

/// See the module documentation. Stops on drop.
pub struct FaultProxy {
    /// The port it listens on (kept across [`FaultProxy::go_away`] / [`FaultProxy::come_back`]).
    pub port: u16,
    upstream: String,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Forward to `upstream` ("127.0.0.1:PORT").
    pub fn start(upstream: &str) -> FaultProxy {
        let mut p = FaultProxy {
            port: 0,
            upstream: upstream.to_string(),
            shared: Arc::new(Shared::default()),
            accept: None,
        };
        p.listen();
        p
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Inject `fault` from now on into every request whose request line contains `needle`
    /// (or one of its `|`-separated parts; `""`: every request).
    pub fn set(&self, fault: Fault, needle: &str) {
        *self.shared.fault.lock().unwrap() = Some((fault, needle.to_string()));
    }

    /// Inject no fault from now on.
    pub fn clear(&self) {
        *self.shared.fault.lock().unwrap() = None;
    }

    /// Requests that met a fault so far.
    pub fn faulted(&self) -> usize {
        self.shared.faulted.load(Ordering::SeqCst)
    }

    /// The longest a client waited for an answer to a stalled request before it gave up on
    /// it (closed the connection): the client's own deadline, as the server saw it.
    pub fn longest_wait(&self) -> Duration {
        Duration::from_millis(self.shared.longest_wait.load(Ordering::SeqCst))
    }

    /// Requests seen so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The server is gone: the port refuses connections, open ones are closed.
    pub fn go_away(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
        for s in self.shared.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// The server is back, on the same port.
    pub fn come_back(&mut self) {
        self.shared.stop.store(false, Ordering::SeqCst);
        self.listen();
    }

    fn listen(&mut self) {
        let listener = bind(self.port);
        self.port = listener.local_addr().expect("addr").port();
        let (shared, upstream) = (self.shared.clone(), self.upstream.clone());
        self.accept = Some(
            std::thread::Builder::new()
                .name(format!("fault-proxy-{}", self.port))
                .spawn(move || {
                    for client in listener.incoming() {
                        if shared.stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let Ok(client) = client else { continue };
                        if let Ok(c) = client.try_clone() {
                            let mut conns = shared.conns.lock().unwrap();
                            conns.retain(|s| s.peer_addr().is_ok());
                            conns.push(c);
                        }
                        let (shared, upstream) = (shared.clone(), upstream.clone());
                        std::thread::spawn(move || serve(client, &upstream, &shared));
                    }
                })
                .expect("spawn the proxy"),
        );
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.go_away();
    }
}

/// Bind `port` on loopback (0: any), waiting briefly for a port just released.
fn bind(port: u16) -> TcpListener {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => return l,
            Err(e) if Instant::now() > until => panic!("FaultProxy bind {port}: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Close `s` with a TCP reset (its clone kept for `go_away` is closed too, or the socket
/// would stay open).
fn reset(s: TcpStream, shared: &Shared) {
    if let Ok(peer) = s.peer_addr() {
        shared
            .conns
            .lock()
            .unwrap()
            .retain(|c| c.peer_addr().ok() != Some(peer));
    }
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(s);
}

struct Message {
    head: Vec<u8>,
    body: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Read one request from `c` (`None` at a clean end of the connection).
fn read_request(c: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Message> {
    let mut chunk = [0u8; 64 * 1024];
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head: Vec<u8> = buf.drain(..end).collect();
    let text = String::from_utf8_lossy(&head).into_owned();
    let chunked = header(&text, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
    let len: usize = header(&text, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = Vec::new();
    if chunked {
        // Pass chunked bodies on as they are, up to the last chunk.
        loop {
            if let Some(i) = find(buf, b"0\r\n\r\n") {
                body.extend(buf.drain(..i + 5));
                break;
            }
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    } else {
        while buf.len() < len {
            match c.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        body.extend(buf.drain(..len));
    }
    Some(Message { head, body })
}

/// Send `req` upstream on a new connection and read the whole answer.
fn forward(upstream: &str, req: &Message) -> Option<Message> {
    let mut s = TcpStream::connect(upstream).ok()?;
    let text = String::from_utf8_lossy(&req.head);
    let mut head = String::new();
    for line in text.trim_end().split("\r\n") {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(line);
            head.push_str("\r\n");
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).ok()?;
    s.write_all(&req.body).ok()?;
    let mut all = Vec::new();
    s.read_to_end(&mut all).ok()?;
    let end = find(&all, b"\r\n\r\n")? + 4;
    let body = all.split_off(end);
    Some(Message { head: all, body })
}

/// The head of an answer without its `Connection` header, with `Content-Length` set to
/// `len` where it had one.
fn rewrite_head(head: &[u8], len: Option<usize>) -> (Vec<u8>, bool) {
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    let mut framed = false;
    for line in text.trim_end().split("\r\n") {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") {
            continue;
        }
        if lower.starts_with("content-length:") {
            framed = true;
            if let Some(n) = len {
                out.push_str(&format!("Content-Length: {n}\r\n"));
                continue;
            }
        }
        if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
            framed = true;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("\r\n");
    (out.into_bytes(), framed)
}

fn error_answer(status: &str, code: &str, extra: &str) -> Vec<u8> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error>"
    );
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Serve one client connection, request by request.
fn serve(mut client: TcpStream, upstream: &str, shared: &Shared) {
    let _ = client.set_nodelay(true);
    let mut buf = Vec::new();
    while let Some(req) = read_request(&mut client, &mut buf) {
        shared.requests.fetch_add(1, Ordering::SeqCst);
        let line_end = find(&req.head, b"\r\n").unwrap_or(req.head.len());
        let line = String::from_utf8_lossy(&req.head[..line_end]).into_owned();
        let fault = match &*shared.fault.lock().unwrap() {
            Some((f, needle)) if needle.split('|').any(|n| line.contains(n)) => Some(*f),
            _ => None,
        };
        if fault.is_some() {
            shared.faulted.fetch_add(1, Ordering::SeqCst);
        }
        let is_head = req.head.starts_with(b"HEAD ");
        match fault {
            Some(Fault::ResetBeforeHeaders) => return reset(client, shared),
            Some(Fault::Stall) => {
                // Until the fault is cleared, the proxy stops, or the client hangs up.
                let _ = client.set_read_timeout(Some(Duration::from_millis(50)));
                let mut probe = [0u8; 1];
                let since = Instant::now();
                let gave_up = || {
                    let ms = since.elapsed().as_millis() as u64;
                    shared.longest_wait.fetch_max(ms, Ordering::SeqCst);
                };
                loop {
                    let stalling =
                        matches!(&*shared.fault.lock().unwrap(), Some((Fault::Stall, _)));
                    if shared.stop.load(Ordering::SeqCst) || !stalling {
                        return;
                    }
                    match client.peek(&mut probe) {
                        Ok(_) => return gave_up(),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(_) => return gave_up(),
                    }
                }
            }
            Some(Fault::Status500) => {
                let a = error_answer("500 Internal Server Error", "InternalError", "");
                if client.write_all(&a).is_err() {
                    return;
                }
                continue;
            }
            Some(Fault::SlowDown503) => {
                let a = error_answer("503 Slow Down", "SlowDown", "Retry-After: 1\r\n");
                if client.write_all(&a).is_err() {
                    return;
                }
                continue;
            }
            Some(Fault::Forbidden403) => {
                let a = error_answer("403 Forbidden", "AccessDenied", "");
                if client.write_all(&a).is_err() {
                    return;
                }
                continue;
            }
            _ => {}
        }
        let Some(answer) = forward(upstream, &req) else {
            return reset(client, shared);
        };
        let half = answer.body.len() / 2;
        match fault {
            Some(Fault::Latency(d)) => std::thread::sleep(d),
            Some(Fault::ResetMidBody) => {
                let (head, _) = rewrite_head(&answer.head, None);
                let _ = client.write_all(&head);
                let _ = client.write_all(&answer.body[..half]);
                let _ = client.flush();
                std::thread::sleep(Duration::from_millis(20));
                return reset(client, shared);
            }
            Some(Fault::ShortBody) => {
                let (head, _) = rewrite_head(&answer.head, None);
                let _ = client.write_all(&head);
                let _ = client.write_all(&answer.body[..half]);
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            Some(Fault::WrongLength) if !is_head => {
                let (head, _) = rewrite_head(&answer.head, Some(half));
                let _ = client.write_all(&head);
                let _ = client.write_all(&answer.body);
                let _ = client.shutdown(Shutdown::Both);
                return;
            }
            _ => {}
        }
        let (head, framed) = rewrite_head(&answer.head, None);
        if client.write_all(&head).is_err() || client.write_all(&answer.body).is_err() {
            return;
        }
        if !framed && !is_head {
            let _ = client.shutdown(Shutdown::Both);
            return;
        }
    }
}
