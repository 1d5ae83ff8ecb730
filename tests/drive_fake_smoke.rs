//! Smoke tests of the fake Google Drive server (tests/drive_fake/) over plain HTTP: what a
//! Drive client relies on behaves as Google documents it.

#[path = "drive_fake/mod.rs"]
mod drive_fake;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use drive_fake::{FakeDrive, Fault, Op, Options, DOCUMENT, FOLDER};
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

const TOKEN: &str = "smoke-static-token";
const JSON: &str = "application/json; charset=UTF-8";
const BIN: &str = "application/octet-stream";

fn start() -> FakeDrive {
    FakeDrive::start(Options {
        static_token: Some(TOKEN.into()),
        ..Options::default()
    })
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn md5_hex(b: &[u8]) -> String {
    use md5::{Digest, Md5};
    Md5::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// A reply: status, headers, body.
struct Reply {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    }

    /// `error.errors[0].reason`.
    fn reason(&self) -> String {
        let v = self.json();
        v["error"]["errors"][0]["reason"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A plain HTTP client with the static token (unless a request sets `authorization`).
struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(d: &FakeDrive) -> Api {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Api {
            base: d.url(),
            http,
        }
    }

    async fn try_send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Result<Reply, reqwest::Error> {
        let url = match path.starts_with("http") {
            true => path.to_string(),
            false => format!("{}{path}", self.base),
        };
        let mut req = self.http.request(method, url).body(body);
        if !headers.iter().any(|(k, _)| *k == "authorization") {
            req = req.header("authorization", format!("Bearer {TOKEN}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await?;
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let body = r.bytes().await?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    async fn send(
        &self,
        m: Method,
        path: &str,
        h: &[(&str, &str)],
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        self.try_send(m, path, h, body).await.unwrap()
    }

    async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, &[], Vec::new()).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, &[], Vec::new()).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(
            Method::POST,
            path,
            &[("content-type", JSON)],
            body.to_string(),
        )
        .await
    }

    async fn patch(&self, path: &str, body: Value) -> Reply {
        self.send(
            Method::PATCH,
            path,
            &[("content-type", JSON)],
            body.to_string(),
        )
        .await
    }

    async fn upload(
        &self,
        m: Method,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        self.send(m, path, &[("content-type", content_type)], body)
            .await
    }

    async fn form(&self, path: &str, pairs: &[(&str, &str)]) -> Reply {
        let body: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        let ct = "application/x-www-form-urlencoded";
        let h = [("content-type", ct), ("authorization", "")];
        self.send(Method::POST, path, &h, body.join("&")).await
    }

    /// Ids listed by `path` (an owned-path variant of `listed` for closures).
    async fn listed_owned(&self, path: String) -> Vec<String> {
        self.listed(&path, "id").await
    }

    /// Names (or ids with `key = "id"`) of the files a listing returns, in order.
    async fn listed(&self, path: &str, key: &str) -> Vec<String> {
        let r = self.get(path).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let files = v["files"].as_array().unwrap();
        files
            .iter()
            .map(|f| f[key].as_str().unwrap().to_string())
            .collect()
    }
}

#[tokio::test]
async fn oauth_refresh_jwt_and_revoke() {
    let d = FakeDrive::start(Options {
        client_id: Some("cid".into()),
        client_secret: Some("secret".into()),
        ..Options::default()
    });
    let api = Api::new(&d);
    let refresh = d.issue_refresh_token();
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
        ("client_id", "cid"),
        ("client_secret", "secret"),
    ];
    let r = api.form("/token", &grant).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["token_type"].as_str(), v["expires_in"].as_u64()),
        (Some("Bearer"), Some(3600))
    );
    assert!(v.get("refresh_token").is_none());
    let auth = format!("Bearer {}", v["access_token"].as_str().unwrap());
    let about = "/drive/v3/about?fields=user,storageQuota";
    let h = [("authorization", auth.as_str())];
    assert_eq!(
        api.send(Method::GET, about, &h, Vec::new()).await.status,
        200
    );
    // Expired access tokens: 401 in Google's shape.
    d.expire_access_tokens();
    let r = api.send(Method::GET, about, &h, Vec::new()).await;
    assert_eq!((r.status, r.reason().as_str()), (401, "authError"));
    let e = &r.json()["error"];
    assert_eq!(e["status"], "UNAUTHENTICATED");
    assert_eq!(
        e["message"],
        "Request had invalid authentication credentials."
    );
    // Wrong client.
    let mut wrong = grant;
    wrong[2].1 = "other";
    let r = api.form("/token", &wrong).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // Revoked refresh tokens: invalid_grant.
    d.revoke_refresh_tokens();
    let r = api.form("/token", &grant).await;
    assert_eq!(r.status, 400);
    assert_eq!(
        r.json(),
        json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})
    );
    let r = api.form("/token", &[("grant_type", "password")]).await;
    assert_eq!(r.json()["error"], "unsupported_grant_type");
    // JWT bearer (service account with a subject): claims recorded, signature not checked.
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
    let jwt = |exp: i64| {
        let claims = json!({"iss": "sa@p.iam.gserviceaccount.com", "sub": "user@example.com",
            "scope": "https://www.googleapis.com/auth/drive", "aud": format!("{}/token", d.url()),
            "iat": exp - 3600, "exp": exp});
        format!(
            "{header}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let bearer = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let r = api
        .form(
            "/token",
            &[("grant_type", bearer), ("assertion", &jwt(now + 3600))],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = d.last_jwt_claims().unwrap();
    assert_eq!(c.iss, "sa@p.iam.gserviceaccount.com");
    assert_eq!(c.sub.as_deref(), Some("user@example.com"));
    let r = api
        .form(
            "/token",
            &[("grant_type", bearer), ("assertion", &jwt(now - 10))],
        )
        .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(d.token_requests(), 6);
    assert_eq!(d.token_requests_for("refresh_token"), 3);
    assert_eq!(d.op_count(Op::Token), 6);
}

#[tokio::test]
async fn pkce_authorization_code_flow() {
    let d = start();
    let api = Api::new(&d);
    let verifier = "a-verifier-of-more-than-forty-three-characters-0123456789";
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let challenge = URL_SAFE_NO_PAD.encode(digest.as_ref());
    let redirect = "http://127.0.0.1:9/callback";
    let auth_url = |method: &str| {
        format!(
            "/o/oauth2/auth?client_id=cid&redirect_uri={}&response_type=code&scope={}&code_challenge={challenge}&code_challenge_method={method}&state=st%20ate&access_type=offline&prompt=consent",
            enc(redirect),
            enc("https://www.googleapis.com/auth/drive")
        )
    };
    // Approves at once: 302 to the redirect URI with code, state and scope.
    let authorize = || async {
        let r = api.get(&auth_url("S256")).await;
        assert_eq!(r.status, 302);
        let location = r.header("location").unwrap();
        let (target, query) = location.split_once('?').unwrap();
        assert_eq!(target, redirect);
        let mut q = std::collections::HashMap::new();
        for kv in query.split('&') {
            let (k, v) = kv.split_once('=').unwrap();
            q.insert(
                k.to_string(),
                percent_encoding::percent_decode_str(v)
                    .decode_utf8()
                    .unwrap()
                    .into_owned(),
            );
        }
        assert_eq!(q["state"], "st ate");
        assert_eq!(q["scope"], "https://www.googleapis.com/auth/drive");
        q["code"].clone()
    };
    let exchange = |code: String, verifier: &'static str| {
        let api = &api;
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("code_verifier", verifier),
                ("redirect_uri", redirect),
                ("client_id", "cid"),
                ("client_secret", "s"),
            ];
            api.form("/token", &form).await
        }
    };
    let code = authorize().await;
    let r = exchange(code.clone(), verifier).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert!(v["refresh_token"].is_string() && v["access_token"].is_string());
    assert_eq!(v["scope"], "https://www.googleapis.com/auth/drive");
    // A code works once; a wrong verifier fails.
    assert_eq!(
        exchange(code, verifier).await.json()["error"],
        "invalid_grant"
    );
    assert_eq!(
        exchange(authorize().await, "wrong-verifier").await.json()["error"],
        "invalid_grant"
    );
    // Bad authorization requests.
    assert_eq!(api.get(&auth_url("plain")).await.status, 400);
    assert_eq!(
        api.get("/o/oauth2/auth?client_id=cid&response_type=code")
            .await
            .status,
        400
    );
    // The refresh token it gave works.
    let refresh = v["refresh_token"].as_str().unwrap();
    let r = api
        .form(
            "/token",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn auth_errors_routes_and_about() {
    let d = start();
    let api = Api::new(&d);
    let r = api
        .send(
            Method::GET,
            "/drive/v3/files",
            &[("authorization", "")],
            Vec::new(),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("content-type").unwrap(),
        "application/json; charset=UTF-8"
    );
    assert_eq!(r.json()["error"]["errors"][0]["location"], "Authorization");
    let r = api.get("/drive/v3/nothing-here").await;
    assert_eq!(
        (r.status, r.json()["error"]["code"].as_u64()),
        (404, Some(404))
    );
    let r = api.get("/drive/v3/files/nope").await;
    assert_eq!((r.status, r.reason().as_str()), (404, "notFound"));
    assert_eq!(r.json()["error"]["message"], "File not found: nope.");
    // about needs fields; usage counts content; the quota is enforced.
    assert_eq!(api.get("/drive/v3/about").await.status, 400);
    d.create_file("root", "a", &[1; 1000]);
    let v = api
        .get("/drive/v3/about?fields=storageQuota,user(emailAddress)")
        .await
        .json();
    assert_eq!(v["storageQuota"]["usage"], "1000");
    assert!(v.get("kind").is_none() && v["user"]["emailAddress"].is_string());
    d.set_quota(1500);
    let r = api
        .upload(
            Method::POST,
            "/upload/drive/v3/files?uploadType=media",
            BIN,
            vec![0u8; 600],
        )
        .await;
    assert_eq!(
        (r.status, r.reason().as_str()),
        (403, "storageQuotaExceeded")
    );
}

#[tokio::test]
async fn list_queries_paging_and_fields() {
    let d = start();
    let api = Api::new(&d);
    let big = d.create_folder("root", "big");
    for i in 0..2500 {
        d.create_file(&big, &format!("File-{i:05}.bin"), &[i as u8; 3]);
    }
    d.create_folder(&big, "Sub Folder");
    let q = enc(&format!(
        "'{big}' in parents and trashed=false and mimeType != '{FOLDER}'"
    ));
    let mut seen = HashSet::new();
    let mut token: Option<String> = None;
    let mut pages = Vec::new();
    loop {
        let mut path =
            format!("/drive/v3/files?q={q}&pageSize=1000&fields=nextPageToken,files(id,name,size)");
        if let Some(t) = &token {
            path.push_str(&format!("&pageToken={}", enc(t)));
        }
        let r = api.get(&path).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        assert!(v.get("kind").is_none());
        let files = v["files"].as_array().unwrap();
        pages.push(files.len());
        for f in files {
            let keys: Vec<&String> = f.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["id", "name", "size"]);
            assert_eq!(f["size"], "3");
            assert!(seen.insert(f["id"].as_str().unwrap().to_string()));
        }
        if pages.len() == 1 {
            // Files added while paging do not disturb the pages.
            for i in 0..10 {
                d.create_file(&big, &format!("late-{i}"), b"xyz");
            }
        }
        match v.get("nextPageToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, [1000, 1000, 510]);
    assert_eq!(seen.len(), 2510);
    // pageSize above 1000 is clamped; default fields are the minimal set.
    let r = api
        .get(&format!("/drive/v3/files?q={q}&pageSize=5000"))
        .await
        .json();
    assert_eq!(r["files"].as_array().unwrap().len(), 1000);
    assert_eq!(
        (r["kind"].as_str(), r["incompleteSearch"].as_bool()),
        (Some("drive#fileList"), Some(false))
    );
    let keys: HashSet<&str> = r["files"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, HashSet::from(["kind", "id", "name", "mimeType"]));
    // Names match case-insensitively; escapes work.
    let id = d.create_file(&big, "It's A\\Name", b"");
    let q = enc(&format!("name = 'it\\'s a\\\\name' and '{big}' in parents"));
    assert_eq!(
        api.listed(&format!("/drive/v3/files?q={q}"), "id").await,
        [id]
    );
    let q = enc("name = 'FILE-00042.BIN' or (name contains 'sub' and not mimeType = 'text/plain')");
    let names = api.listed(&format!("/drive/v3/files?q={q}"), "name").await;
    assert_eq!(names, ["File-00042.bin", "Sub Folder"]);
    // The 'root' alias in queries and paths.
    let r = api
        .get(&format!(
            "/drive/v3/files?q={}&fields=files(id,parents)",
            enc("'root' in parents")
        ))
        .await;
    assert_eq!(
        r.json()["files"],
        json!([{"id": big, "parents": [d.root_id()]}])
    );
    assert_eq!(
        api.get("/drive/v3/files/root?fields=id,name").await.json()["id"],
        d.root_id()
    );
    // Bad queries and selections are 400, never "match everything".
    for bad in [
        "fullText has 'x'",
        "name = 'x' and",
        "name = x",
        "'x' in nowhere",
        "foo = 'bar'",
    ] {
        let r = api.get(&format!("/drive/v3/files?q={}", enc(bad))).await;
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(
            r.json(),
            json!({"error": {"code": 400, "message": "Invalid Value", "errors": [{"domain": "global",
                "reason": "invalid", "location": "q", "locationType": "parameter", "message": "Invalid Value"}]}})
        );
    }
    let r = api.get("/drive/v3/files?fields=files(id,etag)").await;
    assert_eq!((r.status, r.reason().as_str()), (400, "invalidParameter"));
    assert_eq!(
        api.get("/drive/v3/files?pageToken=garbage!").await.status,
        400
    );
    assert_eq!(d.op_count(Op::List), 14);
}

#[tokio::test]
async fn media_ranges_export_and_metadata() {
    let d = start();
    let api = Api::new(&d);
    let content: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let id = d.create_file("root", "r.bin", &content);
    let media = format!("/drive/v3/files/{id}?alt=media");
    let r = api.get(&media).await;
    assert_eq!((r.status, &r.body[..]), (200, &content[..]));
    assert_eq!(r.header("content-length").unwrap(), "1000");
    let ranged = |range: &'static str| {
        let (api, media) = (&api, &media);
        async move {
            api.send(Method::GET, media, &[("range", range)], Vec::new())
                .await
        }
    };
    let r = ranged("bytes=10-19").await;
    assert_eq!((r.status, &r.body[..]), (206, &content[10..20]));
    assert_eq!(r.header("content-range").unwrap(), "bytes 10-19/1000");
    assert_eq!(r.header("content-length").unwrap(), "10");
    let r = ranged("bytes=990-").await;
    assert_eq!((r.status, &r.body[..]), (206, &content[990..]));
    let r = ranged("bytes=-5").await;
    assert_eq!((r.status, &r.body[..]), (206, &content[995..]));
    assert_eq!(
        ranged("bytes=995-5000")
            .await
            .header("content-range")
            .unwrap(),
        "bytes 995-999/1000"
    );
    let r = ranged("bytes=1000-").await;
    assert_eq!(
        (r.status, r.header("content-range").unwrap().as_str()),
        (416, "bytes */1000")
    );
    // Docs: no size or md5, not downloadable, exportable.
    let doc = d.create_doc("root", "Notes", DOCUMENT, b"hello doc");
    let v = api
        .get(&format!(
            "/drive/v3/files/{doc}?fields=size,md5Checksum,mimeType,exportLinks"
        ))
        .await
        .json();
    assert!(v.get("size").is_none() && v.get("md5Checksum").is_none());
    assert!(v["exportLinks"]["application/pdf"].is_string());
    let r = api.get(&format!("/drive/v3/files/{doc}?alt=media")).await;
    assert_eq!(
        (r.status, r.reason().as_str()),
        (403, "fileNotDownloadable")
    );
    let pdf = "application/pdf";
    let r = api
        .get(&format!(
            "/drive/v3/files/{doc}/export?mimeType={}",
            enc(pdf)
        ))
        .await;
    assert_eq!(
        (r.status, r.header("content-type").unwrap().as_str()),
        (200, pdf)
    );
    assert_eq!(&r.body[..], &d.export_bytes(&doc, pdf)[..]);
    assert_eq!(&r.body[..], b"EXPORT application/pdf\nhello doc");
    let r = api
        .get(&format!(
            "/drive/v3/files/{doc}/export?mimeType={}",
            enc("text/csv")
        ))
        .await;
    assert_eq!(r.status, 400);
    let huge = d.create_doc("root", "Huge", DOCUMENT, &vec![b'x'; 10 * 1024 * 1024]);
    let r = api
        .get(&format!(
            "/drive/v3/files/{huge}/export?mimeType=text%2Fplain"
        ))
        .await;
    assert_eq!(
        (r.status, r.reason().as_str()),
        (403, "exportSizeLimitExceeded")
    );
    let r = api
        .get(&format!(
            "/drive/v3/files/{id}/export?mimeType=text%2Fplain"
        ))
        .await;
    assert_eq!((r.status, r.reason().as_str()), (403, "fileNotExportable"));
    // Metadata of a binary file: int64 as strings, checksums, RFC 3339 times with millis.
    let v = api
        .get(&format!("/drive/v3/files/{id}?fields=*"))
        .await
        .json();
    assert_eq!(
        (v["size"].as_str(), v["kind"].as_str()),
        (Some("1000"), Some("drive#file"))
    );
    assert_eq!(v["md5Checksum"], md5_hex(&content).as_str());
    assert!(v["version"].is_string());
    let t = v["modifiedTime"].as_str().unwrap();
    assert!(
        t.len() == 24 && t.ends_with('Z') && t.as_bytes()[19] == b'.',
        "{t}"
    );
}

fn multipart_body(boundary: &str, meta: &Value, media: &[u8]) -> Vec<u8> {
    let mut b = format!(
        "--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    b.extend_from_slice(media);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b
}

#[tokio::test]
async fn uploads_multipart_media_and_update_in_place() {
    let d = start();
    let api = Api::new(&d);
    let folder = d.create_folder("root", "up");
    let content: Vec<u8> = (0..=255u8).cycle().take(256 * 1000).collect();
    let meta = json!({"name": "bin.dat", "parents": [folder], "appProperties": {"k": "v"}});
    let fields = "id,name,size,md5Checksum,parents,version,appProperties";
    let path = format!("/upload/drive/v3/files?uploadType=multipart&fields={fields}");
    let ct = "multipart/related; boundary=\"b0undary\"";
    let r = api
        .upload(
            Method::POST,
            &path,
            ct,
            multipart_body("b0undary", &meta, &content),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["size"], content.len().to_string());
    assert_eq!(v["md5Checksum"], md5_hex(&content));
    assert_eq!(
        (&v["parents"], &v["appProperties"]),
        (&json!([folder]), &json!({"k": "v"}))
    );
    let got = api.get(&format!("/drive/v3/files/{id}?alt=media")).await;
    assert!(got.body[..] == content[..], "binary content must survive");
    // Update the content in place: same id, new version, md5 and revision.
    let before = d.file(&id).unwrap();
    let new: Vec<u8> = (0..=255u8).rev().cycle().take(70_000).collect();
    let path = format!("/upload/drive/v3/files/{id}?uploadType=media&fields=id,size,md5Checksum");
    let v = api
        .upload(Method::PATCH, &path, BIN, new.clone())
        .await
        .json();
    assert_eq!(
        v,
        json!({"id": id, "size": "70000", "md5Checksum": md5_hex(&new)})
    );
    let after = d.file(&id).unwrap();
    assert!(after.version > before.version);
    assert_ne!(after.head_revision_id, before.head_revision_id);
    assert_eq!(&after.content[..], &new[..]);
    // A multipart update applies the metadata too.
    let path = format!("/upload/drive/v3/files/{id}?uploadType=multipart&fields=id,name,size");
    let body = multipart_body("xyz", &json!({"name": "renamed.dat"}), b"tiny");
    let r = api
        .upload(
            Method::PATCH,
            &path,
            "multipart/related; boundary=xyz",
            body,
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"id": id, "name": "renamed.dat", "size": "4"})
    );
    // A simple media upload creates "Untitled" in My Drive.
    let path = "/upload/drive/v3/files?uploadType=media&fields=name,parents,mimeType";
    let r = api.upload(Method::POST, path, "text/plain", "plain").await;
    assert_eq!(
        r.json(),
        json!({"name": "Untitled", "parents": [d.root_id()], "mimeType": "text/plain"})
    );
    assert_eq!(d.op_count(Op::Upload), 4);
}

#[tokio::test]
async fn resumable_upload_status_drop_and_resume() {
    let d = start();
    let api = Api::new(&d);
    let folder = d.create_folder("root", "res");
    const K: usize = 256 * 1024;
    let content: Vec<u8> = (0..4 * K + 1000).map(|i| (i * 7 % 256) as u8).collect();
    let total = content.len();
    let len = total.to_string();
    let h = [
        ("content-type", JSON),
        ("x-upload-content-type", BIN),
        ("x-upload-content-length", len.as_str()),
    ];
    let path = "/upload/drive/v3/files?uploadType=resumable&fields=id,name,size,md5Checksum";
    let meta = json!({"name": "big.bin", "parents": [folder]});
    let r = api.send(Method::POST, path, &h, meta.to_string()).await;
    assert_eq!(r.status, 200);
    assert!(r.body.is_empty());
    let session = r.header("location").unwrap();
    let prefix = format!(
        "{}/upload/drive/v3/files?uploadType=resumable&upload_id=",
        d.url()
    );
    assert!(session.starts_with(&prefix), "{session}");
    let put = |range: String, data: Vec<u8>| {
        let (api, session) = (&api, &session);
        async move {
            api.try_send(Method::PUT, session, &[("content-range", &range)], data)
                .await
        }
    };
    // Nothing stored: 308 without Range.
    let r = put(format!("bytes */{total}"), vec![]).await.unwrap();
    assert_eq!((r.status, r.header("range")), (308, None));
    let r = put("bytes 0-262143/*".into(), content[..K].to_vec())
        .await
        .unwrap();
    assert_eq!(
        (r.status, r.header("range").as_deref()),
        (308, Some("bytes=0-262143"))
    );
    // Not a multiple of 256 KiB, or not where the stored bytes end: 400.
    let r = put(
        format!("bytes {K}-{}/*", K + 999),
        content[K..K + 1000].to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 400);
    let r = put(format!("bytes 0-{}/*", K - 1), content[..K].to_vec())
        .await
        .unwrap();
    assert_eq!(r.status, 400);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(msg.contains("byte 0") && msg.contains("262144"), "{msg}");
    assert!(
        d.find(&folder, "big.bin").is_empty(),
        "nothing visible before completion"
    );
    // A chunk of two units is cut after one unit and the connection dropped.
    d.drop_next_chunk(K + 100);
    let r = put(
        format!("bytes {K}-{}/{total}", 3 * K - 1),
        content[K..3 * K].to_vec(),
    )
    .await;
    assert!(r.is_err(), "the connection should have been dropped");
    let r = put("bytes */*".into(), vec![]).await.unwrap();
    assert_eq!(
        (r.status, r.header("range").as_deref()),
        (308, Some("bytes=0-524287"))
    );
    // Resume from there to the end.
    let r = put(
        format!("bytes {}-{}/{total}", 2 * K, total - 1),
        content[2 * K..].to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(
        (v["size"].as_str(), v["md5Checksum"].as_str()),
        (Some(len.as_str()), Some(md5_hex(&content).as_str()))
    );
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(&d.file(&id).unwrap().content[..], &content[..]);
    // Status of a completed session: the file.
    let r = put(format!("bytes */{total}"), vec![]).await.unwrap();
    assert_eq!(
        (r.status, r.json()["id"].as_str()),
        (200, Some(id.as_str()))
    );
    // A resumable update keeps the id; an empty upload completes with a status query.
    let path = format!("/upload/drive/v3/files/{id}?uploadType=resumable&fields=id,size");
    let r = api
        .send(
            Method::PATCH,
            &path,
            &[("x-upload-content-type", BIN)],
            Vec::new(),
        )
        .await;
    let session2 = r.header("location").unwrap();
    assert!(session2.contains(&format!("/upload/drive/v3/files/{id}?")));
    let r = api
        .send(
            Method::PUT,
            &session2,
            &[("content-range", "bytes 0-9/10")],
            b"0123456789".to_vec(),
        )
        .await;
    assert_eq!(r.json(), json!({"id": id, "size": "10"}));
    let r = api
        .send(
            Method::POST,
            "/upload/drive/v3/files?uploadType=resumable&fields=size",
            &[],
            Vec::new(),
        )
        .await;
    let session3 = r.header("location").unwrap();
    let r = api
        .send(
            Method::PUT,
            &session3,
            &[("content-range", "bytes */0")],
            Vec::new(),
        )
        .await;
    assert_eq!((r.status, r.json()), (200, json!({"size": "0"})));
    // Expired sessions are 404.
    d.expire_upload_sessions();
    assert_eq!(
        put(format!("bytes */{total}"), vec![])
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(d.op_count(Op::ResumableChunk), 11);
}

#[tokio::test]
async fn metadata_move_trash_delete_copy_shortcut() {
    let d = start();
    let api = Api::new(&d);
    let a = d.create_folder("root", "A");
    let b = d.create_folder("root", "B");
    let inner = d.create_folder(&a, "inner");
    let f = d.create_file(&inner, "f.txt", b"data");
    // Create through the API: a folder, a shortcut (target type filled in), 404 for a bad target.
    let body = json!({"name": "C/with slash", "mimeType": FOLDER, "parents": ["root"]});
    let r = api.post("/drive/v3/files?fields=name,parents", body).await;
    assert_eq!(
        r.json(),
        json!({"name": "C/with slash", "parents": [d.root_id()]})
    );
    let shortcut = "application/vnd.google-apps.shortcut";
    let body = json!({"name": "link", "mimeType": shortcut, "shortcutDetails": {"targetId": f}});
    let r = api
        .post("/drive/v3/files?fields=shortcutDetails", body)
        .await;
    assert_eq!(
        r.json()["shortcutDetails"],
        json!({"targetId": f, "targetMimeType": BIN})
    );
    let body =
        json!({"name": "bad", "mimeType": shortcut, "shortcutDetails": {"targetId": "missing"}});
    assert_eq!(api.post("/drive/v3/files", body).await.status, 404);
    // Rename and merge properties (null deletes a key).
    let r = api
        .patch(
            &format!("/drive/v3/files/{f}?fields=name"),
            json!({"name": "g.txt", "appProperties": {"x": "1", "y": "2"}}),
        )
        .await;
    assert_eq!(r.json()["name"], "g.txt");
    let r = api
        .patch(
            &format!("/drive/v3/files/{f}?fields=appProperties"),
            json!({"appProperties": {"x": null}}),
        )
        .await;
    assert_eq!(r.json()["appProperties"], json!({"y": "2"}));
    // Move A under B: only A's parents change, its subtree follows.
    let r = api
        .patch(
            &format!("/drive/v3/files/{a}?addParents={b}&removeParents=root&fields=parents"),
            json!({}),
        )
        .await;
    assert_eq!(r.json()["parents"], json!([b]));
    assert_eq!(d.file(&f).unwrap().parents, std::slice::from_ref(&inner));
    // Two parents, parents in the body, a cycle: refused.
    let r = api
        .patch(&format!("/drive/v3/files/{f}?addParents={b}"), json!({}))
        .await;
    assert_eq!((r.status, r.reason().as_str()), (403, "cannotAddParent"));
    let r = api
        .patch(&format!("/drive/v3/files/{f}"), json!({"parents": [b]}))
        .await;
    assert_eq!((r.status, r.reason().as_str()), (403, "fieldNotWritable"));
    let r = api
        .patch(
            &format!("/drive/v3/files/{b}?addParents={inner}&removeParents=root"),
            json!({}),
        )
        .await;
    assert_eq!(r.status, 400);
    // Trash B: everything below is trashed, only B explicitly.
    let r = api
        .patch(
            &format!("/drive/v3/files/{b}?fields=trashed,explicitlyTrashed"),
            json!({"trashed": true}),
        )
        .await;
    assert_eq!(
        r.json(),
        json!({"trashed": true, "explicitlyTrashed": true})
    );
    let snap = d.file(&f).unwrap();
    assert!(snap.trashed && !snap.explicitly_trashed);
    let ids = |q: String| api.listed_owned(format!("/drive/v3/files?q={}", enc(&q)));
    assert!(ids(format!("'{inner}' in parents and trashed = false"))
        .await
        .is_empty());
    assert_eq!(
        ids(format!("'{inner}' in parents and trashed = true")).await,
        [f.as_str()]
    );
    assert!(!ids("trashed = false".into()).await.contains(&a));
    // Trashed files can still be read; untrash restores the subtree.
    assert_eq!(
        api.get(&format!("/drive/v3/files/{f}?alt=media"))
            .await
            .body,
        "data"
    );
    api.patch(&format!("/drive/v3/files/{b}"), json!({"trashed": false}))
        .await;
    assert_eq!(
        ids(format!("'{inner}' in parents and trashed = false")).await,
        [f.as_str()]
    );
    // Copy.
    let r = api
        .post(
            &format!("/drive/v3/files/{f}/copy?fields=id,name,md5Checksum"),
            json!({}),
        )
        .await;
    let c = r.json();
    assert_eq!(
        (c["name"].as_str(), c["md5Checksum"].as_str()),
        (Some("Copy of g.txt"), Some(md5_hex(b"data").as_str()))
    );
    assert_ne!(c["id"], f.as_str());
    assert_eq!(d.op_count(Op::Copy), 1);
    // Delete a folder: its subtree goes (A, inner, f, the copy); emptyTrash removes the trash.
    let n = d.count_files();
    assert_eq!(
        api.delete(&format!("/drive/v3/files/{a}")).await.status,
        204
    );
    assert_eq!(d.count_files(), n - 4);
    assert!(d.file(&f).is_none());
    let t = d.create_file("root", "t", b"");
    d.trash(&t);
    assert_eq!(api.delete("/drive/v3/files/trash").await.status, 204);
    assert!(d.file(&t).is_none());
    assert_eq!(api.delete("/drive/v3/files/root").await.status, 403);
}

#[tokio::test]
async fn changes_paging() {
    let d = start();
    let api = Api::new(&d);
    let start = api.get("/drive/v3/changes/startPageToken").await.json();
    assert_eq!(start["kind"], "drive#startPageToken");
    let token = start["startPageToken"].as_str().unwrap().to_string();
    let ids: Vec<String> = (0..150)
        .map(|i| d.create_file("root", &format!("c{i}"), b"x"))
        .collect();
    // Several changes to one file show once, at its latest state.
    d.rename(&ids[0], "renamed");
    d.set_content(&ids[0], b"new");
    d.delete(&ids[1]);
    let fields = enc("nextPageToken,newStartPageToken,changes(fileId,removed,file(id,name))");
    let page = |t: String| {
        let (api, fields) = (&api, &fields);
        async move {
            api.get(&format!(
                "/drive/v3/changes?pageToken={t}&pageSize=100&fields={fields}"
            ))
            .await
            .json()
        }
    };
    let p1 = page(token).await;
    assert_eq!(p1["changes"].as_array().unwrap().len(), 100);
    assert!(p1.get("newStartPageToken").is_none());
    let p2 = page(p1["nextPageToken"].as_str().unwrap().to_string()).await;
    let c2 = p2["changes"].as_array().unwrap();
    assert_eq!(c2.len(), 50);
    assert!(p2.get("nextPageToken").is_none());
    assert_eq!(c2[49], json!({"fileId": ids[1], "removed": true}));
    assert_eq!(c2[48]["file"], json!({"id": ids[0], "name": "renamed"}));
    let all: Vec<&Value> = p1["changes"].as_array().unwrap().iter().chain(c2).collect();
    assert_eq!(
        all.iter()
            .filter(|c| c["fileId"] == ids[0].as_str())
            .count(),
        1
    );
    // Polling again: nothing new, same token.
    let new_start = p2["newStartPageToken"].as_str().unwrap().to_string();
    let p3 = page(new_start.clone()).await;
    assert!(p3["changes"].as_array().unwrap().is_empty());
    assert_eq!(p3["newStartPageToken"], new_start.as_str());
    assert_eq!(api.get("/drive/v3/changes").await.status, 400);
    // Default fields: kinds, and the default file set.
    d.rename(&ids[2], "again");
    let v = api
        .get(&format!("/drive/v3/changes?pageToken={new_start}"))
        .await
        .json();
    assert_eq!(
        (v["kind"].as_str(), v["changes"][0]["kind"].as_str()),
        (Some("drive#changeList"), Some("drive#change"))
    );
    assert_eq!(v["changes"][0]["file"]["name"], "again");
    assert!(v["changes"][0]["file"].get("size").is_none());
}

#[tokio::test]
async fn injected_faults() {
    let d = start();
    let api = Api::new(&d);
    d.inject(Fault {
        op: Op::List,
        status: 429,
        reason: "rateLimitExceeded",
        retry_after: Some(7),
        times: 1,
        every: 1,
    });
    let r = api.get("/drive/v3/files").await;
    assert_eq!(
        (r.status, r.header("retry-after").as_deref()),
        (429, Some("7"))
    );
    let e = r.json();
    assert_eq!(e["error"]["code"], 429);
    assert_eq!(e["error"]["errors"][0]["reason"], "rateLimitExceeded");
    assert_eq!(e["error"]["errors"][0]["domain"], "usageLimits");
    assert_eq!(api.get("/drive/v3/files").await.status, 200);
    // Every second Get fails with 403 userRateLimitExceeded, twice.
    d.inject(Fault {
        op: Op::Get,
        status: 403,
        reason: "userRateLimitExceeded",
        retry_after: None,
        times: 2,
        every: 2,
    });
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(api.get("/drive/v3/files/root").await.status);
    }
    assert_eq!(statuses, [200, 403, 200, 403, 200, 200]);
    d.inject(Fault {
        op: Op::Any,
        status: 503,
        reason: "backendError",
        ..Fault::default()
    });
    let r = api.get("/drive/v3/about?fields=user").await;
    assert_eq!((r.status, r.reason().as_str()), (503, "backendError"));
    assert_eq!(r.json()["error"]["errors"][0]["domain"], "global");
    assert_eq!(
        (
            d.op_count(Op::List),
            d.op_count(Op::Get),
            d.op_count(Op::Any)
        ),
        (2, 6, 9)
    );
    d.reset_counts();
    assert_eq!(d.op_count(Op::Any), 0);
}

#[tokio::test]
async fn shared_drive_rules() {
    let d = start();
    let api = Api::new(&d);
    let drive = d.create_shared_drive("Team");
    let folder = d.create_folder(&drive, "docs");
    let file = d.create_file(&folder, "x.bin", b"xyz");
    d.create_file("root", "mine.bin", b"m");
    assert_eq!(
        api.get(&format!("/drive/v3/files/{file}")).await.status,
        404
    );
    let v = api
        .get(&format!(
            "/drive/v3/files/{file}?supportsAllDrives=true&fields=driveId"
        ))
        .await
        .json();
    assert_eq!(v["driveId"], drive.as_str());
    let r = api
        .get(&format!(
            "/drive/v3/files/{file}?alt=media&supportsAllDrives=true"
        ))
        .await;
    assert_eq!(r.body, "xyz");
    // corpora=drive needs driveId (and the all-drives flags).
    let flags = "includeItemsFromAllDrives=true&supportsAllDrives=true";
    assert_eq!(
        api.get(&format!("/drive/v3/files?corpora=drive&{flags}"))
            .await
            .status,
        400
    );
    let in_drive = format!("/drive/v3/files?corpora=drive&driveId={drive}&{flags}");
    let mut names = api.listed(&in_drive, "name").await;
    names.sort();
    assert_eq!(names, ["docs", "x.bin"]);
    let q = enc(&format!("'{drive}' in parents"));
    assert_eq!(
        api.listed(&format!("{in_drive}&q={q}"), "name").await,
        ["docs"]
    );
    // Without those parameters shared-drive items are not listed.
    assert_eq!(api.listed("/drive/v3/files", "name").await, ["mine.bin"]);
    assert!(api
        .listed(&format!("/drive/v3/files?q={q}"), "name")
        .await
        .is_empty());
    // Updates and deletes need supportsAllDrives too.
    assert_eq!(
        api.patch(&format!("/drive/v3/files/{file}"), json!({"name": "y"}))
            .await
            .status,
        404
    );
    let r = api
        .patch(
            &format!("/drive/v3/files/{file}?supportsAllDrives=true&fields=name"),
            json!({"name": "y"}),
        )
        .await;
    assert_eq!(r.json()["name"], "y");
    assert_eq!(
        api.delete(&format!("/drive/v3/files/{file}")).await.status,
        404
    );
    assert_eq!(
        api.get("/drive/v3/drives").await.json()["drives"][0]["id"],
        drive.as_str()
    );
}
