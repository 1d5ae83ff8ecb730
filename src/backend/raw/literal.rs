//! Requests whose URL path must reach the server exactly as written: keys with a `.` or `..`
//! segment. reqwest (so object_store's client) parses every URL with the `url` crate, which
//! resolves dot segments, even percent-encoded ones (`dir/%2E%2E/x` goes out as `x`), so such
//! a request would reach another key. These go through hyper's own client instead, whose
//! `http::Uri` keeps the path as it is (TLS by rustls with the platform's roots, as reqwest's).

use super::{answer, BackendError};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use object_store::client::HttpRequest;
use std::time::Duration;

/// A client that sends request paths unchanged.
pub struct LiteralClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for LiteralClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiteralClient").finish_non_exhaustive()
    }
}

impl LiteralClient {
    /// A client whose requests time out after `timeout` (connections after
    /// `connect_timeout`).
    pub fn new(timeout: Duration, connect_timeout: Duration) -> Result<Self, String> {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(connect_timeout));
        http.enforce_http(false);
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_platform_verifier(provider)
            .map_err(|e| format!("TLS for requests by literal path: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(hyper_util::rt::TokioExecutor::new()).build(https);
        Ok(LiteralClient { client, timeout })
    }

    /// Send `request` (already authorized) with `body`; what [`answer`] makes of the answer.
    pub async fn execute(
        &self,
        request: HttpRequest,
        body: Bytes,
        what: &str,
    ) -> Result<(http::HeaderMap, Bytes), BackendError> {
        let (parts, _) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(body));
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| BackendError::Unreachable(format!("{what}: {e}")))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| BackendError::Unreachable(format!("{what}: reading the answer: {e}")))?
                .to_bytes();
            answer(parts.status, parts.headers, body, what)
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(done) => done,
            Err(_) => Err(BackendError::Unreachable(format!(
                "{what}: no answer within {:?}",
                self.timeout
            ))),
        }
    }
}
