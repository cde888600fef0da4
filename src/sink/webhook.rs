//! The generic webhook: the alert object (schema `exposure.alert/v1`) POSTed as JSON, with
//! headers whose values come from environment variables.

use super::Secret;
use super::{Sink, SinkFuture};
use crate::detect::Alert;

pub struct WebhookSink {
    name: String,
    url: reqwest::Url,
    client: reqwest::Client,
    headers: Vec<(String, Secret)>,
}

impl WebhookSink {
    pub fn new(
        name: String,
        url: reqwest::Url,
        client: reqwest::Client,
        headers: Vec<(String, Secret)>,
    ) -> WebhookSink {
        WebhookSink {
            name,
            url,
            client,
            headers,
        }
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let body = alert.to_json().into_bytes();
            super::http::post_json(&self.client, &self.url, &self.headers, body).await
        })
    }
}
