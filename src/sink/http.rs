//! The HTTP client the sinks share: reqwest over rustls (no OpenSSL), a per-sink timeout, and
//! one function that POSTs JSON and classifies the outcome.

use super::DeliveryError;
use super::SinkConfigError;
use super::{Secret, classify};
use std::time::Duration;

/// A client with `timeout` per request.
pub fn client(timeout: Duration) -> Result<reqwest::Client, SinkConfigError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("exposure/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| SinkConfigError {
            key: "sinks".into(),
            message: format!("cannot build an HTTP client: {e}"),
        })
}

/// `Retry-After`: seconds, or an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.timestamp_millis() - chrono::Utc::now().timestamp_millis();
    Some(Duration::from_millis(wait.max(0) as u64))
}

/// POSTs `body` as JSON to `url` with `headers`; connection errors and timeouts are retried.
pub async fn post_json(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: &[(String, Secret)],
    body: Vec<u8>,
) -> Result<(), DeliveryError> {
    let mut request = client
        .post(url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.expose());
    }
    let response = request.send().await.map_err(|e| DeliveryError::Retry {
        // Without the URL's query, which may hold a token.
        reason: format!(
            "{}: {}",
            url.host_str().unwrap_or("?"),
            if e.is_timeout() {
                "timed out".to_string()
            } else {
                super::secret::redact(&without_url(&e)).into_owned()
            }
        ),
        after: None,
    })?;
    let status = response.status().as_u16();
    let after = retry_after(response.headers());
    let text = response.text().await.unwrap_or_default();
    classify(status, after, &text)
}

fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}
