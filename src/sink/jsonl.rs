//! JSON lines appended to a file (flushed and synced per alert) or written to stdout (`-`).

use super::{DeliveryError, Sink, SinkFuture};
use crate::detect::Alert;
use std::io::Write;
use std::time::Duration;

pub struct JsonlSink {
    name: String,
    path: String,
}

impl JsonlSink {
    pub fn new(name: String, path: &str) -> JsonlSink {
        JsonlSink {
            name,
            path: path.to_string(),
        }
    }

    fn write(&self, line: &[u8]) -> std::io::Result<()> {
        if self.path == "-" {
            let mut out = std::io::stdout().lock();
            out.write_all(line)?;
            return out.flush();
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(line)?;
        file.sync_data()
    }
}

impl Sink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let mut line = alert.to_json().into_bytes();
            line.push(b'\n');
            self.write(&line).map_err(|e| DeliveryError::Retry {
                reason: format!("{}: {e}", self.path),
                after: Some(Duration::from_secs(5)),
            })
        })
    }
}
