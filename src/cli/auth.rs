//! `cloudmount auth gdrive`: authorize a Google Drive account once, on this machine or on one
//! without a browser, or take over a google-drive-ocamlfuse authorization; mounts of
//! `gdrive://LABEL/…` then use the stored token.

use clap::{Args, Subcommand};
use cloudmount::credentials::gdrive::{self, GOOGLE_AUTH_URI, GOOGLE_TOKEN_URI};
use cloudmount::credentials::oauth::{self, Attempt, Client};
use cloudmount::credentials::Secret;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

/// `cloudmount auth SERVICE`.
#[derive(Debug, Args)]
pub struct AuthArgs {
    /// The service to authorize.
    #[command(subcommand)]
    pub service: Service,
}

/// Services that need an interactive authorization.
#[derive(Debug, Subcommand)]
pub enum Service {
    /// Google Drive: OAuth 2.0 with PKCE and a loopback redirect; stores Google's
    /// authorized_user JSON in ~/.config/cloudmount/gdrive/LABEL.json (mode 0600).
    Gdrive(GdriveArgs),
}

/// `cloudmount auth gdrive`.
#[derive(Debug, Args)]
pub struct GdriveArgs {
    /// The label the authorization is stored under; mount it as gdrive://LABEL/PATH.
    #[arg(long, default_value = "default")]
    pub label: String,
    /// OAuth client id of your Google Cloud project's "Desktop app" client.
    #[arg(long, env = "CLOUDMOUNT_GDRIVE_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Its client secret (prefer the CLOUDMOUNT_GDRIVE_CLIENT_SECRET variable to the command
    /// line).
    #[arg(long, env = "CLOUDMOUNT_GDRIVE_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// No browser here: print the URL, open it on any machine, and paste back the whole
    /// address the browser ends on (it fails to load; that is expected).
    #[arg(long)]
    pub headless: bool,
    /// Take over a google-drive-ocamlfuse setup (its config and state in DIR, default
    /// ~/.gdfuse/LABEL) with no new consent.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = "")]
    pub import_gdfuse: Option<PathBuf>,
    /// The authorization page.
    #[arg(long, default_value = GOOGLE_AUTH_URI)]
    pub auth_uri: String,
    /// The token endpoint.
    #[arg(long, default_value = GOOGLE_TOKEN_URI)]
    pub token_uri: String,
    /// Write the token here instead of ~/.config/cloudmount/gdrive/LABEL.json.
    #[arg(long)]
    pub token_file: Option<PathBuf>,
    /// How long to wait for the browser, in seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
}

/// Run `cloudmount auth`.
pub fn run(a: AuthArgs) -> Result<(), String> {
    match a.service {
        Service::Gdrive(g) => gdrive_auth(g),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

const NO_CLIENT: &str = "no OAuth client: give --client-id and --client-secret (or the \
CLOUDMOUNT_GDRIVE_CLIENT_ID and CLOUDMOUNT_GDRIVE_CLIENT_SECRET variables). Create one in the \
Google Cloud console: enable the Google Drive API, then APIs & Services > Credentials > Create \
credentials > OAuth client ID > Desktop app. Publish the app (OAuth consent screen > Publish): \
an app left in \"Testing\" gets refresh tokens that expire after 7 days";

fn gdrive_auth(a: GdriveArgs) -> Result<(), String> {
    let path = match &a.token_file {
        Some(p) => p.clone(),
        None => gdrive::token_path(&a.label)
            .ok_or("no HOME to store the token under; give --token-file")?,
    };
    let rt = runtime()?;
    let (client, refresh) = match &a.import_gdfuse {
        Some(dir) => {
            let dir = if dir.as_os_str().is_empty() {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .ok_or("no HOME to find ~/.gdfuse under; give --import-gdfuse DIR")?
                    .join(".gdfuse")
                    .join(&a.label)
            } else {
                dir.clone()
            };
            let (id, secret, refresh) = oauth::read_gdfuse(&dir)?;
            let client = Client {
                id: a.client_id.clone().unwrap_or(id),
                secret: a.client_secret.clone().map(Secret::new).unwrap_or(secret),
                auth_uri: a.auth_uri.clone(),
                token_uri: a.token_uri.clone(),
            };
            println!(
                "Importing the google-drive-ocamlfuse authorization in {}",
                dir.display()
            );
            (client, refresh.expose().to_string())
        }
        None => {
            let client = Client {
                id: a.client_id.clone().ok_or(NO_CLIENT)?,
                secret: Secret::new(a.client_secret.clone().ok_or(NO_CLIENT)?),
                auth_uri: a.auth_uri.clone(),
                token_uri: a.token_uri.clone(),
            };
            let refresh = consent(&client, &a, &rt)?;
            (client, refresh)
        }
    };
    let json = oauth::authorized_user(&client, &refresh);
    // Prove the token works before storing it.
    let auth = gdrive::parse(&json, None, None)?;
    let http = reqwest::Client::new();
    rt.block_on(cloudmount::backend::gdrive::check_token(
        auth, http, &a.label,
    ))
    .map_err(|e| format!("the authorization does not work: {e}"))?;
    gdrive::store(&path, &json)?;
    let label = if a.label == "default" {
        String::new()
    } else {
        a.label.clone()
    };
    println!(
        "Authorized. The token is in {} (mode 0600).\nMount with: cloudmount mount gdrive://{label}/FOLDER MOUNTPOINT",
        path.display()
    );
    Ok(())
}

/// Ask the user's consent in a browser; the refresh token.
fn consent(
    client: &Client,
    a: &GdriveArgs,
    rt: &tokio::runtime::Runtime,
) -> Result<String, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot listen on 127.0.0.1 for the redirect: {e}"))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("loopback listener: {e}"))?
        .port();
    let attempt = Attempt::new(&format!("http://127.0.0.1:{port}/"))?;
    let url = attempt.url(client);
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "Open this URL in a browser and allow access to Google Drive:\n\n{url}\n"
    );
    let code = if a.headless {
        drop(listener);
        let _ = writeln!(
            out,
            "Then paste here the whole address the browser ends on (http://127.0.0.1:{port}/?state=…&code=…; \
             the page itself fails to load, which is expected):"
        );
        let _ = out.flush();
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the pasted address: {e}"))?;
        attempt.code_from(line.trim())?
    } else {
        let _ = out.flush();
        open_browser(&url);
        let query = oauth::catch_redirect(&listener, Duration::from_secs(a.timeout))?;
        attempt.code_from(&query)?
    };
    rt.block_on(oauth::exchange(client, &attempt, &code))
}

/// Open `url` in the desktop's browser, if there is a desktop.
fn open_browser(url: &str) {
    let desktop = ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty()));
    if desktop {
        let _ = std::process::Command::new("xdg-open")
            .arg(url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
    }
}
