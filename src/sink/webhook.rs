//! The generic webhook: the alert object (schema `exposure.alert/v1`, or with `format = "ocsf"`
//! its OCSF Detection Finding) POSTed as JSON, with
//! headers whose values come from environment variables.

use super::Secret;
use super::{Sink, SinkFuture};
use crate::detect::Alert;
use crate::ocsf::AlertFormat;

pub struct WebhookSink {
    name: String,
    url: reqwest::Url,
    client: reqwest::Client,
    headers: Vec<(String, Secret)>,
    format: AlertFormat,
}

impl WebhookSink {
    pub fn new(
        name: String,
        url: reqwest::Url,
        client: reqwest::Client,
        headers: Vec<(String, Secret)>,
        format: AlertFormat,
    ) -> WebhookSink {
        WebhookSink {
            name,
            url,
            client,
            headers,
            format,
        }
    }
}

impl Sink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let body = self.format.encode(alert).into_bytes();
            super::http::post_json(&self.client, &self.url, &self.headers, body).await
        })
    }
}
