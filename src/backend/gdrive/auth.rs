//! Access tokens for Drive requests: refreshed before they expire and after a 401, by one
//! request however many operations are waiting, and never through an interactive flow (a
//! daemon has nobody to click "Allow").

use crate::backend::BackendError;
use crate::credentials::gdrive::{DriveAuth, DRIVE_SCOPE};
use crate::credentials::Secret;
use base64::Engine;
use serde::Deserialize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Mutex;

/// Refresh this long before a token expires.
const EARLY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct Token {
    value: Secret,
    expires: Option<Instant>,
    /// Counts tokens, so that a 401 retires only the token it was answered to.
    generation: u64,
}

#[derive(Deserialize)]
struct TokenReply {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TokenError {
    #[serde(default)]
    error: String,
    #[serde(default)]
    error_description: String,
}

/// Hands out access tokens.
#[derive(Debug)]
pub struct TokenSource {
    auth: DriveAuth,
    http: reqwest::Client,
    /// The authorization's label (for the command that fixes a revoked one).
    label: String,
    current: Mutex<Option<Token>>,
    /// The server answered `invalid_grant`: no more refreshes until the token file is
    /// rewritten (a reload builds a new source).
    revoked: AtomicBool,
}

/// The message for a refresh token Google no longer accepts.
pub fn revoked_message(label: &str, detail: &str) -> String {
    format!(
        "the Google Drive authorization {label:?} was revoked or has expired ({detail}); run \
         `cloudmount auth gdrive --label {label}` to authorize again (a rewritten token file \
         is picked up without a remount). OAuth apps left in \"Testing\" get refresh tokens \
         that expire after 7 days: publish the app, or use a service account"
    )
}

impl TokenSource {
    /// Tokens for `auth`, refreshed through `http`.
    pub fn new(auth: DriveAuth, http: reqwest::Client, label: &str) -> Self {
        TokenSource {
            auth,
            http,
            label: label.to_string(),
            current: Mutex::new(None),
            revoked: AtomicBool::new(false),
        }
    }

    /// A valid access token and its generation.
    pub async fn token(&self) -> Result<(Secret, u64), BackendError> {
        if self.revoked.load(Ordering::Relaxed) {
            return Err(self.revoked_error());
        }
        let mut cur = self.current.lock().await;
        if let Some(t) = cur.as_ref() {
            let fresh = t.expires.is_none_or(|e| Instant::now() + EARLY < e);
            if fresh {
                return Ok((t.value.clone(), t.generation));
            }
        }
        let generation = cur.as_ref().map_or(1, |t| t.generation + 1);
        let (value, expires) = self.fetch().await?;
        let token = Token {
            value,
            expires,
            generation,
        };
        *cur = Some(token.clone());
        Ok((token.value, generation))
    }

    /// The server refused token `generation` (401): the next [`TokenSource::token`] gets a
    /// new one, unless that happened already. A fixed access token cannot be renewed.
    pub async fn rejected(&self, generation: u64) -> Result<(), BackendError> {
        if let DriveAuth::AccessToken(_) = self.auth {
            return Err(BackendError::Denied(format!(
                "Google Drive refused the access token of authorization {:?}, which cannot \
                 be refreshed (the token file holds only an access_token); run `cloudmount \
                 auth gdrive --label {}`",
                self.label, self.label
            )));
        }
        let mut cur = self.current.lock().await;
        if cur.as_ref().is_some_and(|t| t.generation == generation) {
            if let Some(t) = cur.as_mut() {
                t.expires = Some(Instant::now());
            }
        }
        Ok(())
    }

    /// The short error of every request once the authorization was revoked (the log has the
    /// whole story once).
    fn revoked_error(&self) -> BackendError {
        BackendError::Denied(format!(
            "the Google Drive authorization {:?} was revoked (invalid_grant): run \
             `cloudmount auth gdrive --label {}`",
            self.label, self.label
        ))
    }

    async fn fetch(&self) -> Result<(Secret, Option<Instant>), BackendError> {
        let (uri, form) = match &self.auth {
            DriveAuth::AccessToken(t) => return Ok((t.clone(), None)),
            DriveAuth::AuthorizedUser {
                client_id,
                client_secret,
                refresh_token,
                token_uri,
            } => (
                token_uri,
                form(&[
                    ("grant_type", "refresh_token"),
                    ("client_id", client_id),
                    ("client_secret", client_secret.expose()),
                    ("refresh_token", refresh_token.expose()),
                ]),
            ),
            DriveAuth::ServiceAccount {
                client_email,
                private_key,
                token_uri,
                subject,
            } => {
                let jwt = assertion(client_email, private_key, token_uri, subject.as_deref())?;
                (
                    token_uri,
                    form(&[
                        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                        ("assertion", &jwt),
                    ]),
                )
            }
        };
        let sent = Instant::now();
        let reply = self
            .http
            .post(uri.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| {
                BackendError::Unreachable(format!("token endpoint {uri}: {}", super::api::why(&e)))
            })?;
        let status = reply.status();
        let body = reply.bytes().await.map_err(|e| {
            BackendError::Unreachable(format!("token endpoint {uri}: {}", super::api::why(&e)))
        })?;
        if status.is_success() {
            let t: TokenReply = serde_json::from_slice(&body).map_err(|e| {
                BackendError::Other(format!("token endpoint {uri} answered no token: {e}"))
            })?;
            let expires = t.expires_in.map(|s| sent + Duration::from_secs(s));
            return Ok((Secret::new(t.access_token), expires));
        }
        let err: TokenError = serde_json::from_slice(&body).unwrap_or(TokenError {
            error: String::new(),
            error_description: String::from_utf8_lossy(&body).chars().take(200).collect(),
        });
        if err.error == "invalid_grant" {
            let msg = revoked_message(
                &self.label,
                &format!("invalid_grant: {}", err.error_description),
            );
            // The first error tells the whole story (the log shows it once, with the
            // operation that met it); later ones are short.
            if !self.revoked.swap(true, Ordering::Relaxed) {
                return Err(BackendError::Denied(msg));
            }
            return Err(self.revoked_error());
        }
        let rate_limited = String::from_utf8_lossy(&body).contains("ateLimitExceeded");
        if status.is_server_error() || status.as_u16() == 429 || rate_limited {
            return Err(BackendError::Busy(format!(
                "token endpoint {uri} answered {status}"
            )));
        }
        Err(BackendError::Denied(format!(
            "token endpoint {uri} refused the credentials of authorization {:?}: {status} {} {}",
            self.label, err.error, err.error_description
        )))
    }
}

/// `application/x-www-form-urlencoded` body.
pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Everything but RFC 3986's unreserved characters is encoded.
const UNRESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encode a query or form value.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, UNRESERVED).to_string()
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

/// A signed JWT-bearer assertion (RS256) for a service account.
fn assertion(
    email: &str,
    pem: &Secret,
    aud: &str,
    subject: Option<&str>,
) -> Result<String, BackendError> {
    use aws_lc_rs::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
    let bad = |why: &str| {
        BackendError::Denied(format!(
            "the private_key of service account {email} is not usable: {why}"
        ))
    };
    let der = pem_body(pem.expose()).ok_or_else(|| bad("not a PEM PRIVATE KEY"))?;
    let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| bad(&e.to_string()))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let mut claims = serde_json::json!({
        "iss": email, "scope": DRIVE_SCOPE, "aud": aud, "iat": now, "exp": now + 3600,
    });
    if let (Some(sub), Some(map)) = (subject, claims.as_object_mut()) {
        map.insert("sub".into(), sub.into());
    }
    let signing = format!(
        "{}.{}",
        b64url(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64url(claims.to_string().as_bytes())
    );
    let mut sig = vec![0u8; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        signing.as_bytes(),
        &mut sig,
    )
    .map_err(|_| bad("signing failed"))?;
    Ok(format!("{signing}.{}", b64url(&sig)))
}

/// The DER bytes of the first PEM block.
fn pem_body(pem: &str) -> Option<Vec<u8>> {
    let start = pem.find("-----BEGIN")?;
    let rest = &pem[start..];
    let body_start = rest.find('\n')? + 1;
    let end = rest.find("-----END")?;
    let b64: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            form(&[("a", "x y/z"), ("b_c", "1.~")]),
            "a=x%20y%2Fz&b_c=1.~"
        );
    }

    #[test]
    fn a_bad_service_account_key_is_reported_not_panicked() {
        let e = assertion("sa@p", &Secret::new("junk"), "http://t", None).unwrap_err();
        assert!(e.to_string().contains("sa@p"), "{e}");
        assert!(
            pem_body("-----BEGIN PRIVATE KEY-----\nAAEC\n-----END PRIVATE KEY-----\n")
                .is_some_and(|d| d == [0, 1, 2])
        );
    }
}
