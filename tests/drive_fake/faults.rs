//! Request counting and fault injection.
//!
//! Every request is classified as one [`Op`] and counted (also under [`Op::Any`]). An injected
//! [`Fault`] answers matching requests with an error instead of serving them; a dropped chunk
//! makes the next resumable chunk store only part of its bytes and close the connection
//! without answering.

use super::http::{json_response, with_header, ApiError, Resp};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Mutex;

/// The kinds of requests, for counting and for targeting faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// files.list
    List,
    /// files.get (metadata)
    Get,
    /// files.get with `alt=media`
    Media,
    /// files.export
    Export,
    /// files.create without media (`POST /drive/v3/files`)
    Create,
    /// files.update without media (`PATCH /drive/v3/files/{id}`)
    Update,
    /// Any `/upload` request except resumable chunks (media, multipart, resumable initiation)
    Upload,
    /// A `PUT` to a resumable session (chunks and status queries)
    ResumableChunk,
    /// files.delete and files.emptyTrash
    Delete,
    /// files.copy
    Copy,
    /// changes.list and changes.getStartPageToken
    Changes,
    /// about.get
    About,
    /// `POST /token`
    Token,
    /// Every request (as a count); every request (as a fault target).
    Any,
}

/// An error to answer instead of serving.
#[derive(Clone, Debug)]
pub struct Fault {
    /// Which requests it hits.
    pub op: Op,
    /// HTTP status, e.g. 403, 429, 500, 503, 401.
    pub status: u16,
    /// Google's reason: `userRateLimitExceeded`, `rateLimitExceeded`, `backendError`,
    /// `notFound`, `storageQuotaExceeded`, `authError`… (429 always uses `rateLimitExceeded`).
    pub reason: &'static str,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// How many requests it answers before it is used up; 0 = until `clear_faults`.
    pub times: usize,
    /// 1 = every matching request; n = every n-th matching request (counted over all
    /// requests the fault matches, also those another fault answered).
    pub every: usize,
}

impl Default for Fault {
    /// One 503 `backendError` on the next request.
    fn default() -> Self {
        Fault {
            op: Op::Any,
            status: 503,
            reason: "backendError",
            retry_after: None,
            times: 1,
            every: 1,
        }
    }
}

impl Fault {
    /// The error response for this fault; `oauth` selects the token endpoint's error shape.
    pub(crate) fn response(&self, oauth: bool) -> Resp {
        let reason = if self.status == 429 {
            "rateLimitExceeded"
        } else {
            self.reason
        };
        if oauth {
            let r = json_response(
                self.status,
                &json!({"error": reason, "error_description": format!("Injected fault: {reason}")}),
            );
            return match self.retry_after {
                Some(s) => with_header(r, "retry-after", &s.to_string()),
                None => r,
            };
        }
        if self.status == 401 {
            return ApiError::unauthenticated().response();
        }
        let message = match reason {
            "userRateLimitExceeded" => "User Rate Limit Exceeded".to_string(),
            "rateLimitExceeded" => "Rate Limit Exceeded".to_string(),
            "dailyLimitExceeded" => "Daily Limit Exceeded".to_string(),
            "backendError" => "Backend Error".to_string(),
            "internalError" => "Internal Error".to_string(),
            "notFound" => "File not found: .".to_string(),
            "storageQuotaExceeded" => {
                "The user's Drive storage quota has been exceeded.".to_string()
            }
            other => format!("Injected fault: {other}"),
        };
        let mut e = ApiError::new(self.status, reason, message);
        if matches!(
            reason,
            "userRateLimitExceeded" | "rateLimitExceeded" | "dailyLimitExceeded" | "quotaExceeded"
        ) {
            e.domain = "usageLimits";
        }
        e.retry_after = self.retry_after;
        e.response()
    }
}

struct Active {
    fault: Fault,
    seen: usize,
    fired: usize,
}

#[derive(Default)]
struct State {
    counts: HashMap<Op, usize>,
    faults: Vec<Active>,
    drop_chunk: Option<usize>,
}

/// Thread-safe counters and faults of one server.
#[derive(Default)]
pub(crate) struct Faults {
    state: Mutex<State>,
}

impl Faults {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a request of kind `op` and returns the fault to answer it with, if any.
    pub fn on_request(&self, op: Op) -> Option<Fault> {
        let mut s = self.lock();
        *s.counts.entry(Op::Any).or_default() += 1;
        if op != Op::Any {
            *s.counts.entry(op).or_default() += 1;
        }
        // Every matching fault counts the request, so `every` is a rate over all matching
        // requests; the first fault that is due answers it.
        let mut hit = None;
        for (i, a) in s.faults.iter_mut().enumerate() {
            if a.fault.op != Op::Any && a.fault.op != op {
                continue;
            }
            a.seen += 1;
            if hit.is_none() && a.seen % a.fault.every.max(1) == 0 {
                a.fired += 1;
                hit = Some((i, a.fault.clone()));
            }
        }
        let (i, fault) = hit?;
        if fault.times != 0 && s.faults[i].fired >= fault.times {
            s.faults.remove(i);
        }
        Some(fault)
    }

    pub fn count(&self, op: Op) -> usize {
        self.lock().counts.get(&op).copied().unwrap_or(0)
    }

    pub fn reset_counts(&self) {
        self.lock().counts.clear();
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(Active {
            fault,
            seen: 0,
            fired: 0,
        });
    }

    pub fn clear(&self) {
        let mut s = self.lock();
        s.faults.clear();
        s.drop_chunk = None;
    }

    pub fn set_drop_chunk(&self, after_bytes: usize) {
        self.lock().drop_chunk = Some(after_bytes);
    }

    /// Takes the pending chunk drop, if any.
    pub fn take_drop_chunk(&self) -> Option<usize> {
        self.lock().drop_chunk.take()
    }
}
