//! The OAuth 2.0 installed-app flow for Google Drive (authorization code with PKCE and a
//! loopback redirect, RFC 8252), and the import of a google-drive-ocamlfuse authorization.
//! The result is Google's `authorized_user` JSON, written by [`super::gdrive::store`].

use base64::Engine;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

/// An OAuth client (a "Desktop app" client of a Google Cloud project).
#[derive(Debug, Clone)]
pub struct Client {
    /// Client id.
    pub id: String,
    /// Client secret (for installed apps Google issues one, not confidential).
    pub secret: super::Secret,
    /// The authorization page.
    pub auth_uri: String,
    /// The token endpoint.
    pub token_uri: String,
}

/// One authorization attempt: what goes into the URL and what must come back.
#[derive(Debug)]
pub struct Attempt {
    /// The PKCE verifier (kept here, never sent until the exchange).
    pub verifier: String,
    /// The `state` the redirect must carry back.
    pub state: String,
    /// Where Google sends the browser (`http://127.0.0.1:PORT/`).
    pub redirect_uri: String,
}

fn random(n: usize) -> Result<String, String> {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| "no random numbers".to_string())?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

impl Attempt {
    /// A new attempt redirecting to `redirect_uri`.
    pub fn new(redirect_uri: &str) -> Result<Attempt, String> {
        Ok(Attempt {
            verifier: random(48)?,
            state: random(16)?,
            redirect_uri: redirect_uri.to_string(),
        })
    }

    /// The S256 challenge of the verifier.
    pub fn challenge(&self) -> String {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, self.verifier.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(d.as_ref())
    }

    /// The URL to open in a browser.
    pub fn url(&self, client: &Client) -> String {
        let q = crate::backend::gdrive::form(&[
            ("client_id", &client.id),
            ("redirect_uri", &self.redirect_uri),
            ("response_type", "code"),
            ("scope", super::gdrive::DRIVE_SCOPE),
            ("code_challenge", &self.challenge()),
            ("code_challenge_method", "S256"),
            ("state", &self.state),
            ("access_type", "offline"),
            ("prompt", "consent"),
        ]);
        let sep = if client.auth_uri.contains('?') {
            '&'
        } else {
            '?'
        };
        format!("{}{sep}{q}", client.auth_uri)
    }

    /// The code in a redirect URL (or just its query), after checking its `state`.
    pub fn code_from(&self, redirect: &str) -> Result<String, String> {
        let query = redirect.split_once('?').map_or(redirect, |(_, q)| q);
        let query = query.split('#').next().unwrap_or_default();
        let params = parse_query(query.trim());
        if let Some(e) = params.get("error") {
            return Err(format!("the authorization was refused: {e}"));
        }
        if params.get("state") != Some(&self.state) {
            return Err(
                "the redirect URL does not belong to this authorization (its state differs); \
                 paste the URL the browser shows after this run's link"
                    .to_string(),
            );
        }
        params
            .get("code")
            .cloned()
            .ok_or_else(|| "the redirect URL holds no code".to_string())
    }
}

/// `a=b&c=d` decoded.
pub fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (decode(k), decode(v)))
        .collect()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

/// Wait on `listener` for the browser's redirect and answer it; the request's query.
pub fn catch_redirect(listener: &TcpListener, limit: Duration) -> Result<String, String> {
    let deadline = Instant::now() + limit;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("loopback listener: {e}"))?;
    loop {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut line = String::new();
                let mut reader = BufReader::new(&mut stream);
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let target = line
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_string();
                let Some((_, query)) = target.split_once('?') else {
                    // A favicon or another stray request.
                    let _ = stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                };
                let body = "cloudmount received the authorization; you can close this window.\n";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                return Ok(query.to_string());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return Err(format!(
                        "no authorization arrived within {}s; run the command again (or use \
                         --headless on a machine without a browser)",
                        limit.as_secs()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => return Err(format!("loopback listener: {e}")),
        }
    }
}

/// Exchange `code` for a refresh token.
pub async fn exchange(client: &Client, attempt: &Attempt, code: &str) -> Result<String, String> {
    let body = crate::backend::gdrive::form(&[
        ("grant_type", "authorization_code"),
        ("code", code),
        ("code_verifier", &attempt.verifier),
        ("redirect_uri", &attempt.redirect_uri),
        ("client_id", &client.id),
        ("client_secret", client.secret.expose()),
    ]);
    let r = reqwest::Client::new()
        .post(&client.token_uri)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("cannot reach the token endpoint {}: {e}", client.token_uri))?;
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if !status.is_success() {
        return Err(format!(
            "the token endpoint refused the code: {status} {} {}",
            json["error"].as_str().unwrap_or_default(),
            json["error_description"].as_str().unwrap_or_default()
        ));
    }
    json["refresh_token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| {
            "the token endpoint gave no refresh_token (was access_type=offline lost?)".to_string()
        })
}

/// The `authorized_user` JSON for a refresh token.
pub fn authorized_user(client: &Client, refresh_token: &str) -> String {
    let mut j = serde_json::json!({
        "type": "authorized_user",
        "client_id": client.id,
        "client_secret": client.secret.expose(),
        "refresh_token": refresh_token,
    });
    if client.token_uri != super::gdrive::GOOGLE_TOKEN_URI {
        j["token_uri"] = client.token_uri.clone().into();
    }
    serde_json::to_string_pretty(&j).unwrap_or_default()
}

/// The client and refresh token of a google-drive-ocamlfuse setup in `dir` (`config` and
/// `state`, `key=value` lines), with no new consent.
pub fn read_gdfuse(dir: &Path) -> Result<(String, super::Secret, super::Secret), String> {
    let read = |name: &str| -> Result<HashMap<String, String>, String> {
        let p = dir.join(name);
        let text =
            std::fs::read_to_string(&p).map_err(|e| format!("cannot read {}: {e}", p.display()))?;
        Ok(text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect())
    };
    let config = read("config")?;
    let state = read("state")?;
    let refresh = state
        .get("refresh_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("{}/state holds no refresh_token: google-drive-ocamlfuse was never authorized there", dir.display()))?;
    let id = config
        .get("client_id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| {
            format!(
                "{}/config has no client_id: that setup refreshes its tokens through \
             google-drive-ocamlfuse's own web service, which cloudmount cannot use. Authorize \
             anew with `cloudmount auth gdrive` (or pass that setup's client with --client-id \
             and --client-secret)",
                dir.display()
            )
        })?;
    let secret = config.get("client_secret").cloned().unwrap_or_default();
    Ok((
        id.clone(),
        super::Secret::new(secret),
        super::Secret::new(refresh.clone()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client {
            id: "cid".into(),
            secret: super::super::Secret::new("sec"),
            auth_uri: "http://127.0.0.1:1/o/oauth2/auth".into(),
            token_uri: "http://127.0.0.1:1/token".into(),
        }
    }

    #[test]
    fn the_url_carries_pkce_and_the_redirect_must_match_its_state() {
        let a = Attempt::new("http://127.0.0.1:5555/").unwrap();
        let url = a.url(&client());
        let q = parse_query(url.split_once('?').unwrap().1);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], a.challenge());
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:5555/");
        let good = format!(
            "http://127.0.0.1:5555/?state={}&code=4%2Fabc&scope=x",
            a.state
        );
        assert_eq!(a.code_from(&good).unwrap(), "4/abc");
        assert!(a
            .code_from("http://127.0.0.1:5555/?state=other&code=x")
            .unwrap_err()
            .contains("state"));
        assert!(a
            .code_from(&format!("?state={}&error=access_denied", a.state))
            .unwrap_err()
            .contains("access_denied"));
        let json = authorized_user(&client(), "r1");
        assert!(json.contains("\"token_uri\"") && json.contains("authorized_user"));
    }

    #[test]
    fn gdfuse_setups_import_with_their_own_client_only() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("config"),
            "client_id=abc.apps\nclient_secret=s3\nverbose=false\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("state"),
            "auth_request_id=\nrefresh_token=1//rt\nlast_access_token=ya29\n",
        )
        .unwrap();
        let (id, secret, rt) = read_gdfuse(d.path()).unwrap();
        assert_eq!(
            (id.as_str(), secret.expose(), rt.expose()),
            ("abc.apps", "s3", "1//rt")
        );
        std::fs::write(d.path().join("config"), "client_id=\n").unwrap();
        assert!(read_gdfuse(d.path())
            .unwrap_err()
            .contains("own web service"));
    }
}
