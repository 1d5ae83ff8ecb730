//! Errors of the backend layer, independent of the store behind it.

use std::error::Error as StdError;

/// Every way a backend call can fail, as the filesystem needs to tell them apart.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The object, bucket or container does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The object changed on the server (its entity tag no longer matches).
    #[error("the object changed on the server: {0}")]
    Changed(String),
    /// The server refused the credentials or the operation.
    #[error("access denied: {0}")]
    Denied(String),
    /// The server could not be reached (connection refused, DNS, timeout): no answer came.
    #[error("cannot reach the server: {0}")]
    Unreachable(String),
    /// The server answered that it is busy or failing for now (408, 429, 5xx): worth another
    /// try later, but it is up.
    #[error("the server is busy or failing: {0}")]
    Busy(String),
    /// Not sent: the store has not answered since the time given, and the mount serves what
    /// it has cached until it answers again (`-o offline=on`).
    #[error("offline: {0}")]
    Offline(String),
    /// The key cannot be expressed for this store.
    #[error("invalid object key {key:?}: {reason}")]
    InvalidKey {
        /// The key that was refused.
        key: String,
        /// Why it was refused.
        reason: String,
    },
    /// The store's space quota is used up.
    #[error("out of space: {0}")]
    NoSpace(String),
    /// The store does not support this operation.
    #[error("not supported by this store: {0}")]
    Unsupported(String),
    /// Anything else the server or client reported.
    #[error("{0}")]
    Other(String),
}

impl BackendError {
    /// The kind of failure, as a metrics label (`not_found`, `unreachable`…).
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::NotFound(_) => "not_found",
            BackendError::Changed(_) => "changed",
            BackendError::Denied(_) => "denied",
            BackendError::Unreachable(_) => "unreachable",
            BackendError::Busy(_) => "busy",
            BackendError::Offline(_) => "offline",
            BackendError::InvalidKey { .. } => "invalid_key",
            BackendError::NoSpace(_) => "no_space",
            BackendError::Unsupported(_) => "unsupported",
            BackendError::Other(_) => "other",
        }
    }

    /// Whether a later try may succeed because the server was down, unreachable or busy.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            BackendError::Unreachable(_) | BackendError::Busy(_) | BackendError::Offline(_)
        )
    }
}

/// The whole `source()` chain of an error as one line, with secrets in URLs redacted.
pub(crate) fn chain_message(err: &(dyn StdError + 'static)) -> String {
    let mut msg = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !msg.contains(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        cur = e.source();
    }
    redact(&msg)
}

/// Remove query-string secrets (SAS signatures, presigned credentials) from a message.
pub fn redact(msg: &str) -> String {
    const SECRET_PARAMS: [&str; 4] = [
        "sig=",
        "X-Amz-Signature=",
        "X-Amz-Credential=",
        "X-Amz-Security-Token=",
    ];
    let mut out = msg.to_string();
    for p in SECRET_PARAMS {
        let mut from = 0;
        while let Some(pos) = out[from..].find(p) {
            let start = from + pos + p.len();
            let end = out[start..]
                .find(['&', ' ', ')', '"', '\''])
                .map_or(out.len(), |e| start + e);
            out.replace_range(start..end, "REDACTED");
            from = start + "REDACTED".len();
        }
    }
    out
}

impl From<object_store::Error> for BackendError {
    fn from(err: object_store::Error) -> Self {
        use object_store::Error as E;
        let msg = chain_message(&err);
        match err {
            E::NotFound { .. } => BackendError::NotFound(msg),
            // AlreadyExists: a conditional create found an object (If-None-Match: *).
            E::Precondition { .. } | E::NotModified { .. } | E::AlreadyExists { .. } => {
                BackendError::Changed(msg)
            }
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => BackendError::Denied(msg),
            E::NotSupported { .. } | E::NotImplemented { .. } => BackendError::Unsupported(msg),
            E::InvalidPath { .. } => BackendError::InvalidKey {
                key: String::new(),
                reason: msg,
            },
            E::JoinError { .. } | E::UnknownConfigurationKey { .. } => BackendError::Other(msg),
            E::Generic { .. } => classify_generic(msg),
            _ => BackendError::Other(msg),
        }
    }
}

/// object_store reports many HTTP failures as `Generic`; sort them by what the text says.
fn classify_generic(msg: String) -> BackendError {
    let has = |needles: &[&str]| needles.iter().any(|n| msg.contains(n));
    if has(&[
        "NoSuchBucket",
        "ContainerNotFound",
        "NoSuchKey",
        "BlobNotFound",
        "404 Not Found",
    ]) {
        BackendError::NotFound(msg)
    } else if has(&[
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
        "AuthenticationFailed",
        "AuthorizationFailure",
        "AuthorizationPermissionMismatch",
        "403 Forbidden",
        "401 Unauthorized",
        "InvalidClientTokenId",
    ]) {
        BackendError::Denied(msg)
    } else if has(&[
        "error sending request",
        "Connection refused",
        "connection refused",
        "dns error",
        "timed out",
        "operation timed out",
        "error trying to connect",
        "tcp connect error",
    ]) {
        BackendError::Unreachable(msg)
    } else if has(&["412 Precondition Failed", "ConditionNotMet"]) {
        BackendError::Changed(msg)
    } else {
        BackendError::Other(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_sas_signature_and_presigned_parts() {
        let m = redact("error sending request for url (http://h/c/b?sv=1&sig=abc%2Fdef&se=2)");
        assert_eq!(
            m,
            "error sending request for url (http://h/c/b?sv=1&sig=REDACTED&se=2)"
        );
        let m = redact("GET http://h/b/k?X-Amz-Credential=AKIA/x&X-Amz-Signature=ff00 failed");
        assert!(!m.contains("AKIA") && !m.contains("ff00"), "{m}");
    }

    #[test]
    fn classifies_generic_messages() {
        assert!(matches!(
            classify_generic("x NoSuchBucket y".into()),
            BackendError::NotFound(_)
        ));
        assert!(matches!(
            classify_generic("SignatureDoesNotMatch".into()),
            BackendError::Denied(_)
        ));
        assert!(matches!(
            classify_generic("error sending request: tcp connect error: Connection refused".into()),
            BackendError::Unreachable(_)
        ));
        assert!(matches!(
            classify_generic("teapot".into()),
            BackendError::Other(_)
        ));
    }
}
