//! One Drive API request, sent well: a paced rate, a fresh access token (renewed once on a
//! 401), back-off with jitter on rate limits (403 `rateLimitExceeded`/`userRateLimitExceeded`,
//! 429, honouring `Retry-After`) and on server errors, all within one deadline per call, and
//! every failure mapped onto a [`BackendError`] that says what the server said.

use super::auth::TokenSource;
use crate::backend::BackendError;
use bytes::Bytes;
use serde::Deserialize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How requests are paced and retried.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Deadline of one call, retries included.
    pub deadline: Duration,
    /// Retries of a server error or a failed connection (rate limits retry until the deadline).
    pub retries: usize,
    /// Requests per second on average.
    pub rate: f64,
    /// Requests that may go at once after a quiet spell.
    pub burst: u32,
}

/// Caps the request rate (generic cell rate: `rate` per second, bursts of `burst`).
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    tolerance: Duration,
    next: Mutex<tokio::time::Instant>,
}

impl Pacer {
    /// A pacer for `rate` requests per second (0: unlimited) with bursts of `burst`.
    pub fn new(rate: f64, burst: u32) -> Self {
        let interval = if rate > 0.0 {
            Duration::from_secs_f64(1.0 / rate)
        } else {
            Duration::ZERO
        };
        Pacer {
            interval,
            tolerance: interval * burst.max(1).saturating_sub(1),
            next: Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Wait for this request's turn.
    pub async fn wait(&self) {
        if self.interval.is_zero() {
            return;
        }
        let wait = {
            let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
            let now = tokio::time::Instant::now();
            let tat = (*next).max(now);
            *next = tat + self.interval;
            tat.saturating_duration_since(now + self.tolerance)
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[derive(Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error: ErrorDetail,
}

#[derive(Deserialize, Default)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorItem>,
}

#[derive(Deserialize, Default)]
struct ErrorItem {
    #[serde(default)]
    reason: String,
}

/// What went wrong with one attempt, and whether another may help.
enum Outcome {
    Retry(BackendError, Option<Duration>),
    Reauth(u64),
    Fail(BackendError),
}

/// A request to make.
#[derive(Debug, Clone)]
pub struct Call {
    /// HTTP method.
    pub method: reqwest::Method,
    /// URL without the query.
    pub url: String,
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Option<Bytes>,
    /// What this is, for errors (`list folder …`).
    pub what: String,
    /// One attempt only: a failure is returned, not retried (a resumable upload's chunk,
    /// which must be followed by a status query instead).
    pub once: bool,
}

impl Call {
    /// A request without a body.
    pub fn new(method: reqwest::Method, url: String, what: impl Into<String>) -> Self {
        Call {
            method,
            url,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            what: what.into(),
            once: false,
        }
    }

    /// Add a query parameter.
    pub fn q(mut self, k: &str, v: impl Into<String>) -> Self {
        self.query.push((k.to_string(), v.into()));
        self
    }

    /// Add a header.
    pub fn h(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.to_string(), v.into()));
        self
    }

    /// Set a JSON body.
    pub fn json(mut self, v: &serde_json::Value) -> Self {
        self.body = Some(Bytes::from(v.to_string()));
        self.h("content-type", "application/json; charset=UTF-8")
    }

    fn full_url(&self) -> String {
        if self.query.is_empty() {
            return self.url.clone();
        }
        let q = super::auth::form(
            &self
                .query
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{sep}{q}", self.url)
    }
}

/// The reason of a reqwest error, with its sources.
pub fn why(e: &reqwest::Error) -> String {
    crate::backend::error::chain_message(e)
}

/// Sends calls.
#[derive(Debug)]
pub struct Api {
    /// The HTTP client (HTTP/1.1 only, as rclone uses for Drive).
    pub http: reqwest::Client,
    /// Access tokens.
    pub tokens: TokenSource,
    pacer: Pacer,
    limits: Limits,
}

impl Api {
    /// A client sending through `http` with tokens from `tokens`.
    pub fn new(http: reqwest::Client, tokens: TokenSource, limits: Limits) -> Self {
        Api {
            http,
            tokens,
            pacer: Pacer::new(limits.rate, limits.burst),
            limits,
        }
    }

    /// Send `call` until it succeeds (2xx, or 308 for resumable uploads) or the deadline or
    /// the retries run out.
    pub async fn send(&self, call: &Call) -> Result<reqwest::Response, BackendError> {
        let start = Instant::now();
        let url = call.full_url();
        let mut failures = 0usize;
        let mut reauths = 0usize;
        loop {
            let left = self.limits.deadline.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(BackendError::Unreachable(format!(
                    "{}: no answer within request_timeout ({:?})",
                    call.what, self.limits.deadline
                )));
            }
            self.pacer.wait().await;
            let (token, generation) = match self.tokens.token().await {
                Ok(t) => t,
                // The token endpoint is busy or down: as for any other request.
                Err(e @ (BackendError::Unreachable(_) | BackendError::Busy(_))) => {
                    failures += 1;
                    let pause = backoff(failures);
                    if failures > self.limits.retries.max(8) || pause >= left {
                        return Err(e);
                    }
                    tokio::time::sleep(pause).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut req = self
                .http
                .request(call.method.clone(), &url)
                .timeout(left)
                .bearer_auth(token.expose());
            for (k, v) in &call.headers {
                req = req.header(k.as_str(), v.as_str());
            }
            if let Some(b) = &call.body {
                req = req.body(b.clone());
            } else if matches!(
                call.method,
                reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
            ) {
                req = req.header("content-length", "0");
            }
            let outcome = match req.send().await {
                Ok(r) if r.status().is_success() || r.status().as_u16() == 308 => return Ok(r),
                Ok(r) => classify(r, &call.what, generation).await,
                Err(e) => Outcome::Retry(
                    BackendError::Unreachable(format!("{}: {}", call.what, why(&e))),
                    None,
                ),
            };
            match outcome {
                Outcome::Fail(e) => return Err(e),
                Outcome::Reauth(g) if reauths < 2 => {
                    reauths += 1;
                    self.tokens.rejected(g).await?;
                }
                Outcome::Reauth(_) => {
                    return Err(BackendError::Denied(format!(
                        "{}: Google Drive refused fresh access tokens (401)",
                        call.what
                    )))
                }
                Outcome::Retry(e, after) => {
                    let rate_limited = after.is_some();
                    failures += 1;
                    if call.once {
                        return Err(e);
                    }
                    if !rate_limited && failures > self.limits.retries {
                        return Err(e);
                    }
                    let pause = after
                        .filter(|d| !d.is_zero())
                        .unwrap_or_else(|| backoff(failures));
                    let left = self.limits.deadline.saturating_sub(start.elapsed());
                    if pause >= left {
                        return Err(e);
                    }
                    tracing::debug!(what = %call.what, error = %e, ?pause, "retrying a Drive request");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// [`Api::send`], and the JSON answer.
    pub async fn json<T: serde::de::DeserializeOwned>(
        &self,
        call: &Call,
    ) -> Result<T, BackendError> {
        let r = self.send(call).await?;
        let body = r.bytes().await.map_err(|e| {
            BackendError::Unreachable(format!("{}: reading the answer: {}", call.what, why(&e)))
        })?;
        serde_json::from_slice(&body).map_err(|e| {
            BackendError::Other(format!(
                "{}: Google Drive answered something unexpected: {e}",
                call.what
            ))
        })
    }
}

/// Exponential back-off with jitter: about 2^(n-1) × 250 ms, at most 8 s.
fn backoff(n: usize) -> Duration {
    let base = Duration::from_millis(250) * (1u32 << n.saturating_sub(1).min(5));
    let base = base.min(Duration::from_secs(8));
    let mut b = [0u8; 2];
    let _ = aws_lc_rs::rand::fill(&mut b);
    let jitter = base.mul_f64(f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0);
    base + jitter
}

/// Sort a failed answer.
async fn classify(r: reqwest::Response, what: &str, generation: u64) -> Outcome {
    let status = r.status().as_u16();
    let retry_after = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = r.bytes().await.unwrap_or_default();
    let parsed: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
    let reason = parsed
        .error
        .errors
        .first()
        .map(|e| e.reason.clone())
        .unwrap_or_default();
    let msg = format!(
        "{what}: Google Drive answered {status} {reason}: {}",
        parsed.error.message
    );
    const RATE: [&str; 4] = [
        "rateLimitExceeded",
        "userRateLimitExceeded",
        "sharingRateLimitExceeded",
        "quotaExceeded",
    ];
    let rate_limit = status == 429 || (status == 403 && RATE.contains(&reason.as_str()));
    match status {
        _ if rate_limit => Outcome::Retry(
            BackendError::Busy(msg),
            Some(retry_after.unwrap_or(Duration::ZERO)),
        ),
        401 => Outcome::Reauth(generation),
        404 => Outcome::Fail(BackendError::NotFound(msg)),
        412 => Outcome::Fail(BackendError::Changed(msg)),
        403 if reason == "storageQuotaExceeded" => Outcome::Fail(BackendError::NoSpace(msg)),
        403 => Outcome::Fail(BackendError::Denied(msg)),
        408 | 500..=599 => Outcome::Retry(BackendError::Busy(msg), retry_after),
        _ => Outcome::Fail(BackendError::Other(msg)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_lets_a_burst_through_then_keeps_the_rate() {
        let p = Pacer::new(10.0, 5);
        let t0 = tokio::time::Instant::now();
        for _ in 0..5 {
            p.wait().await;
        }
        assert!(t0.elapsed() < Duration::from_millis(5));
        for _ in 0..10 {
            p.wait().await;
        }
        let e = t0.elapsed();
        assert!(
            e >= Duration::from_millis(900) && e < Duration::from_millis(1200),
            "{e:?}"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(
            backoff(1) >= Duration::from_millis(250) && backoff(1) <= Duration::from_millis(375)
        );
        assert!(backoff(20) <= Duration::from_secs(12));
    }
}
