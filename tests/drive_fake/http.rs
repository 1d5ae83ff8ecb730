//! HTTP plumbing shared by every route: response builders, Google's JSON error shape,
//! query-string parsing, `Range` parsing and RFC 3339 timestamps.

use bytes::Bytes;
use http_body_util::Full;
use hyper::Response;
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Every response body is a complete buffer (Content-Length is always set by `Full`).
pub(crate) type Resp = Response<Full<Bytes>>;

/// The content type Google's JSON APIs answer with.
pub(crate) const JSON_TYPE: &str = "application/json; charset=UTF-8";

/// A response with `status`, `content_type` and `body`.
pub(crate) fn response(status: u16, content_type: &str, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = content_type.parse() {
        r.headers_mut().insert("content-type", v);
    }
    r
}

/// A JSON response.
pub(crate) fn json_response(status: u16, v: &Value) -> Resp {
    response(status, JSON_TYPE, v.to_string())
}

/// An empty response (204, 308, and the resumable initiation's 200).
pub(crate) fn empty(status: u16) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    r
}

/// Sets a header; values the fake builds itself are always valid.
pub(crate) fn with_header(mut r: Resp, name: &'static str, value: &str) -> Resp {
    if let Ok(v) = value.parse() {
        r.headers_mut().insert(name, v);
    }
    r
}

/// An error in Google's JSON shape:
/// `{"error":{"code":N,"message":"…","errors":[{"domain","reason","message",…}]}}`.
#[derive(Clone, Debug)]
pub(crate) struct ApiError {
    pub status: u16,
    pub domain: &'static str,
    pub reason: &'static str,
    pub message: String,
    /// `(locationType, location)`, e.g. `("parameter", "q")`.
    pub location: Option<(&'static str, String)>,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            domain: "global",
            reason,
            message: message.into(),
            location: None,
            retry_after: None,
        }
    }

    /// Adds `location`/`locationType` to the error item.
    pub fn at(mut self, location_type: &'static str, location: &str) -> Self {
        self.location = Some((location_type, location.to_string()));
        self
    }

    /// 404 `File not found: ID.`, as Drive answers for unknown (or invisible) ids.
    pub fn not_found(id: &str) -> Self {
        Self::new(404, "notFound", format!("File not found: {id}.")).at("parameter", "fileId")
    }

    /// 400 `Invalid Value` for a parameter (`q`, `pageToken`, …).
    pub fn invalid_value(param: &str) -> Self {
        Self::new(400, "invalid", "Invalid Value").at("parameter", param)
    }

    /// 400 `badRequest` with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "badRequest", message)
    }

    /// 403 for operations the user may not do on this item.
    pub fn forbidden(reason: &'static str, message: impl Into<String>) -> Self {
        Self::new(403, reason, message)
    }

    /// 401 for a missing, unknown or expired bearer token.
    pub fn unauthenticated() -> Self {
        Self::new(401, "authError", "Invalid Credentials").at("header", "Authorization")
    }

    /// 400 `parseError` for a request body that is not valid JSON.
    pub fn parse_error() -> Self {
        Self::new(400, "parseError", "Parse Error")
    }

    /// The error JSON document.
    pub fn body(&self) -> Value {
        let mut item =
            json!({"domain": self.domain, "reason": self.reason, "message": self.message});
        if let Some((t, l)) = &self.location {
            item["locationType"] = json!(t);
            item["location"] = json!(l);
        }
        // A 401 has the longer top-level sentence and the `status` Google uses there.
        let unauthenticated = self.status == 401 && self.reason == "authError";
        let top = if unauthenticated {
            "Request had invalid authentication credentials.".to_string()
        } else {
            self.message.clone()
        };
        let mut err = json!({"code": self.status, "message": top, "errors": [item]});
        if unauthenticated {
            err["status"] = json!("UNAUTHENTICATED");
        }
        json!({ "error": err })
    }

    /// The HTTP response.
    pub fn response(&self) -> Resp {
        let mut r = json_response(self.status, &self.body());
        if let Some(s) = self.retry_after {
            r = with_header(r, "retry-after", &s.to_string());
        }
        if self.status == 401 {
            r = with_header(
                r,
                "www-authenticate",
                "Bearer realm=\"https://accounts.google.com/\"",
            );
        }
        r
    }
}

/// Decoded `k=v` pairs of a query string or form body (`+` is a space, `%XX` decoded).
#[derive(Clone, Debug, Default)]
pub(crate) struct Params(pub Vec<(String, String)>);

/// Percent-decodes `s`, treating `+` as a space (form/query encoding).
pub(crate) fn form_decode(s: &str) -> String {
    let spaced = s.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

impl Params {
    /// Parses `a=1&b=x+y&c=%2F`; `None` gives no parameters.
    pub fn parse(q: Option<&str>) -> Self {
        Params(
            q.unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (form_decode(k), form_decode(v))
                })
                .collect(),
        )
    }

    /// The first value of `k`.
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    /// A boolean parameter: absent → `default`, `true`/`false` → the value, else 400.
    pub fn flag(&self, k: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(k) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(_) => Err(ApiError::invalid_value(k)),
        }
    }

    /// A comma-separated list parameter (`addParents=a,b`); empty items are dropped.
    pub fn list(&self, k: &str) -> Vec<String> {
        self.get(k)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `pageSize`: absent → `default`; 1..=`max` as given; above `max` clamped; else 400.
    pub fn page_size(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get("pageSize") {
            None => Ok(default),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= 1 => Ok((n as u64).min(max as u64) as usize),
                _ => Err(ApiError::invalid_value("pageSize")),
            },
        }
    }
}

/// Percent-decodes a path segment (no `+` handling: in paths `+` is a literal).
pub(crate) fn path_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Percent-encodes a value for a query string.
pub(crate) fn query_encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A parsed `Range` request header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeReq {
    /// No usable Range header: serve everything with 200.
    Full,
    /// Serve `[start, end)` with 206.
    Part(u64, u64),
    /// 416.
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n` against `size`. Malformed headers are ignored
/// (as HTTP says), a range starting at or beyond the end is unsatisfiable.
pub(crate) fn parse_range(h: Option<&str>, size: u64) -> RangeReq {
    let Some(spec) = h.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeReq::Full;
    };
    // Multiple ranges are not supported by Drive either; serve the first.
    let spec = spec.split(',').next().unwrap_or("").trim();
    let Some((a, b)) = spec.split_once('-') else {
        return RangeReq::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<u64>() {
            Ok(0) => RangeReq::Unsatisfiable,
            Ok(_) if size == 0 => RangeReq::Unsatisfiable,
            Ok(n) => RangeReq::Part(size.saturating_sub(n), size),
            Err(_) => RangeReq::Full,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeReq::Full;
    };
    let end = if b.is_empty() {
        size
    } else {
        match b.parse::<u64>() {
            Ok(e) if e >= start => e.saturating_add(1).min(size),
            _ => return RangeReq::Full,
        }
    };
    if start >= size {
        RangeReq::Unsatisfiable
    } else {
        RangeReq::Part(start, end)
    }
}

/// Current time truncated to milliseconds (Drive's precision).
pub(crate) fn now_ms() -> SystemTime {
    truncate_ms(SystemTime::now())
}

/// `t` truncated to whole milliseconds.
pub(crate) fn truncate_ms(t: SystemTime) -> SystemTime {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => UNIX_EPOCH + Duration::from_millis(d.as_millis() as u64),
        Err(_) => UNIX_EPOCH,
    }
}

/// `2026-12-03T12:00:00.000Z`.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

/// Parses an RFC 3339 timestamp; a missing offset means UTC (as in Drive queries).
pub(crate) fn parse_time(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    let parsed = chrono::DateTime::parse_from_rfc3339(s)
        .or_else(|_| chrono::DateTime::parse_from_rfc3339(&format!("{s}Z")))
        .ok()?;
    Some(truncate_ms(SystemTime::from(
        parsed.with_timezone(&chrono::Utc),
    )))
}

/// Nanoseconds since the epoch (for page tokens); times before 1970 count as 0.
pub(crate) fn nanos(t: SystemTime) -> u128 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

/// The inverse of [`nanos`]; None when out of range (a forged page token).
pub(crate) fn from_nanos(n: u128) -> Option<SystemTime> {
    let secs = u64::try_from(n / 1_000_000_000).ok()?;
    UNIX_EPOCH.checked_add(Duration::new(secs, (n % 1_000_000_000) as u32))
}
