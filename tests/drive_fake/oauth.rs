//! Google's OAuth 2.0 endpoints as a client sees them: the authorization page (which approves
//! at once, the test plays the browser) and the token endpoint with the authorization-code
//! (+PKCE S256), refresh-token and JWT-bearer (service account) grants; plus the bearer-token
//! check every API request goes through.

use super::http::{form_decode, query_encode, response, with_header, Params, Resp};
use super::ids;
use super::Shared;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The scope tokens are issued with when the request names none.
pub(crate) const DRIVE_SCOPE: &str = "https://www.googleapis.com/auth/drive";

/// The claims of the last JWT-bearer assertion the token endpoint accepted.
#[derive(Clone, Debug, PartialEq)]
pub struct JwtClaims {
    pub iss: String,
    pub sub: Option<String>,
    pub scope: String,
    pub aud: Option<String>,
    pub exp: i64,
    pub iat: Option<i64>,
}

struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: String,
    scope: String,
}

/// Issued tokens and codes.
#[derive(Default)]
pub(crate) struct AuthState {
    /// access token → expiry
    access: HashMap<String, Instant>,
    /// refresh token → scope
    refresh: HashMap<String, String>,
    codes: HashMap<String, Code>,
    by_grant: HashMap<String, usize>,
    total: usize,
    last_jwt: Option<JwtClaims>,
}

impl AuthState {
    /// True for an issued, unexpired access token.
    pub fn valid(&self, token: &str) -> bool {
        self.access
            .get(token)
            .is_some_and(|exp| Instant::now() < *exp)
    }

    pub fn mint_access(&mut self, ttl: Duration) -> String {
        let t = ids::secret("ya29.fake-");
        self.access.insert(t.clone(), Instant::now() + ttl);
        t
    }

    pub fn mint_refresh(&mut self, scope: &str) -> String {
        let t = ids::secret("1//fake-");
        self.refresh.insert(t.clone(), scope.to_string());
        t
    }

    /// The access tokens that still work.
    pub fn live_access(&self) -> Vec<String> {
        self.access.keys().cloned().collect()
    }

    /// Every access token issued so far stops working.
    pub fn expire_access(&mut self) {
        self.access.clear();
    }

    /// Every refresh token issued so far stops working (`invalid_grant`).
    pub fn revoke_refresh(&mut self) {
        self.refresh.clear();
    }

    /// /token calls, all grants together.
    pub fn requests(&self) -> usize {
        self.total
    }

    /// /token calls with `grant_type=grant`.
    pub fn requests_for(&self, grant: &str) -> usize {
        self.by_grant.get(grant).copied().unwrap_or(0)
    }

    pub fn last_jwt(&self) -> Option<JwtClaims> {
        self.last_jwt.clone()
    }
}

/// The bearer token of an `Authorization` header value.
pub(crate) fn bearer(header: Option<&str>) -> Option<&str> {
    let h = header?.trim();
    let (scheme, token) = h.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn page_error(status: u16, what: &str) -> Resp {
    response(
        status,
        "text/html; charset=utf-8",
        format!("<html><body><h1>Error {status}: {what}</h1></body></html>"),
    )
}

/// `GET /o/oauth2/auth`: checks the request and redirects (302) to `redirect_uri` with a
/// one-time `code`, `state` and `scope`.
pub(crate) fn authorize(shared: &Arc<Shared>, p: &Params) -> Resp {
    let (Some(client_id), Some(redirect_uri), Some(challenge)) = (
        p.get("client_id"),
        p.get("redirect_uri"),
        p.get("code_challenge"),
    ) else {
        return page_error(
            400,
            "invalid_request (missing client_id, redirect_uri or code_challenge)",
        );
    };
    if p.get("response_type") != Some("code") {
        return page_error(400, "unsupported_response_type");
    }
    if p.get("code_challenge_method") != Some("S256") {
        return page_error(400, "invalid_request (code_challenge_method must be S256)");
    }
    if shared
        .opts
        .client_id
        .as_deref()
        .is_some_and(|c| c != client_id)
    {
        return page_error(401, "invalid_client");
    }
    let scope = p.get("scope").unwrap_or(DRIVE_SCOPE).to_string();
    let code = ids::secret("4/fake-");
    shared.auth().codes.insert(
        code.clone(),
        Code {
            client_id: client_id.to_string(),
            redirect_uri: redirect_uri.to_string(),
            challenge: challenge.to_string(),
            scope: scope.clone(),
        },
    );
    let sep = if redirect_uri.contains('?') { '&' } else { '?' };
    let mut location = format!("{redirect_uri}{sep}code={}", query_encode(&code));
    if let Some(state) = p.get("state") {
        location.push_str(&format!("&state={}", query_encode(state)));
    }
    location.push_str(&format!("&scope={}", query_encode(&scope)));
    with_header(
        response(302, "text/html; charset=utf-8", ""),
        "location",
        &location,
    )
}

fn token_json(status: u16, v: &Value) -> Resp {
    let r = response(status, "application/json; charset=utf-8", v.to_string());
    let r = with_header(
        r,
        "cache-control",
        "no-cache, no-store, max-age=0, must-revalidate",
    );
    with_header(r, "pragma", "no-cache")
}

fn oauth_error(status: u16, error: &str, description: &str) -> Resp {
    token_json(
        status,
        &json!({"error": error, "error_description": description}),
    )
}

fn invalid_grant(description: &str) -> Resp {
    oauth_error(400, "invalid_grant", description)
}

/// Client credentials from the form or from HTTP Basic auth.
fn client_credentials(
    form: &Params,
    authorization: Option<&str>,
) -> (Option<String>, Option<String>) {
    let mut id = form.get("client_id").map(str::to_string);
    let mut secret = form.get("client_secret").map(str::to_string);
    if let Some(basic) = authorization
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("basic"))
        .and_then(|(_, b)| STANDARD.decode(b.trim()).ok())
        .and_then(|b| String::from_utf8(b).ok())
    {
        if let Some((i, s)) = basic.split_once(':') {
            id.get_or_insert_with(|| form_decode(i));
            secret.get_or_insert_with(|| form_decode(s));
        }
    }
    (id, secret)
}

/// `POST /token` with a form body.
pub(crate) fn token(shared: &Arc<Shared>, authorization: Option<&str>, body: &[u8]) -> Resp {
    let form = Params::parse(Some(&String::from_utf8_lossy(body)));
    let grant = form.get("grant_type").unwrap_or("").to_string();
    {
        let mut auth = shared.auth();
        auth.total += 1;
        *auth.by_grant.entry(grant.clone()).or_default() += 1;
    }
    let (client_id, client_secret) = client_credentials(&form, authorization);
    let needs_client = grant == "authorization_code" || grant == "refresh_token";
    if needs_client {
        if let Some(expected) = &shared.opts.client_id {
            if client_id.as_ref() != Some(expected) {
                return oauth_error(401, "invalid_client", "The OAuth client was not found.");
            }
        }
        if let Some(expected) = &shared.opts.client_secret {
            if client_secret.as_ref() != Some(expected) {
                return oauth_error(401, "invalid_client", "Unauthorized");
            }
        }
    }
    let ttl = shared.opts.token_ttl;
    match grant.as_str() {
        "authorization_code" => {
            let (Some(code), Some(redirect_uri)) = (form.get("code"), form.get("redirect_uri"))
            else {
                return oauth_error(
                    400,
                    "invalid_request",
                    "Missing required parameter: code or redirect_uri",
                );
            };
            let mut auth = shared.auth();
            let Some(c) = auth.codes.remove(code) else {
                return invalid_grant("Malformed auth code.");
            };
            if c.redirect_uri != redirect_uri {
                return invalid_grant("Bad Request");
            }
            if client_id.as_deref().is_some_and(|id| id != c.client_id) {
                return oauth_error(401, "unauthorized_client", "Unauthorized");
            }
            let Some(verifier) = form.get("code_verifier") else {
                return invalid_grant("Missing code verifier.");
            };
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
            if URL_SAFE_NO_PAD.encode(digest.as_ref()) != c.challenge {
                return invalid_grant("Invalid code verifier.");
            }
            let access = auth.mint_access(ttl);
            let refresh = auth.mint_refresh(&c.scope);
            token_json(
                200,
                &json!({"access_token": access, "expires_in": ttl.as_secs(), "refresh_token": refresh,
                        "scope": c.scope, "token_type": "Bearer"}),
            )
        }
        "refresh_token" => {
            let Some(refresh) = form.get("refresh_token") else {
                return oauth_error(
                    400,
                    "invalid_request",
                    "Missing required parameter: refresh_token",
                );
            };
            let mut auth = shared.auth();
            let Some(scope) = auth.refresh.get(refresh).cloned() else {
                return invalid_grant("Token has been expired or revoked.");
            };
            let access = auth.mint_access(ttl);
            token_json(
                200,
                &json!({"access_token": access, "expires_in": ttl.as_secs(), "scope": scope,
                        "token_type": "Bearer"}),
            )
        }
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => {
            let claims = match jwt_claims(form.get("assertion").unwrap_or("")) {
                Ok(c) => c,
                Err(e) => return invalid_grant(e),
            };
            let mut auth = shared.auth();
            auth.last_jwt = Some(claims);
            let access = auth.mint_access(ttl);
            token_json(
                200,
                &json!({"access_token": access, "expires_in": ttl.as_secs(), "token_type": "Bearer"}),
            )
        }
        other => oauth_error(
            400,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {other}"),
        ),
    }
}

fn b64_json(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Decodes (without verifying the signature) and checks a JWT-bearer assertion.
fn jwt_claims(assertion: &str) -> Result<JwtClaims, &'static str> {
    let parts: Vec<&str> = assertion.split('.').collect();
    if parts.len() != 3 || parts[2].is_empty() {
        return Err("Invalid JWT: malformed assertion.");
    }
    let header = b64_json(parts[0]).ok_or("Invalid JWT Signature.")?;
    if header.get("alg").and_then(Value::as_str).is_none() {
        return Err("Invalid JWT Signature.");
    }
    let c = b64_json(parts[1]).ok_or("Invalid JWT: claims are not JSON.")?;
    let s = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let (Some(iss), Some(scope)) = (s("iss"), s("scope")) else {
        return Err("Invalid JWT: missing iss or scope claim.");
    };
    let exp = c
        .get("exp")
        .and_then(Value::as_i64)
        .ok_or("Invalid JWT: missing exp claim.")?;
    let iat = c.get("iat").and_then(Value::as_i64);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let too_long = iat.is_some_and(|iat| exp.saturating_sub(iat) > 3600);
    if exp <= now || too_long {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.");
    }
    Ok(JwtClaims {
        iss,
        sub: s("sub"),
        scope,
        aud: s("aud"),
        exp,
        iat,
    })
}
