//! JSON lines appended to a file (flushed and synced per alert) or written to stdout (`-`),
//! each write on tokio's blocking pool so that a stuck reader or disk holds up this sink alone.

use super::{DeliveryError, Sink, SinkFuture};
use crate::detect::Alert;
use crate::ocsf::AlertFormat;
use std::io::Write;
use std::time::Duration;

pub struct JsonlSink {
    name: String,
    path: String,
    format: AlertFormat,
}

impl JsonlSink {
    pub fn new(name: String, path: &str, format: AlertFormat) -> JsonlSink {
        JsonlSink {
            name,
            path: path.to_string(),
            format,
        }
    }
}

/// Appends `line` to `path` and syncs it, or writes it to stdout (`-`). Blocking.
fn write(path: &str, line: &[u8]) -> std::io::Result<()> {
    if path == "-" {
        let mut out = std::io::stdout().lock();
        out.write_all(line)?;
        return out.flush();
    }
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(line)?;
    file.sync_data()
}

impl Sink for JsonlSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver<'a>(&'a mut self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let mut line = self.format.encode(alert).into_bytes();
            line.push(b'\n');
            // Off the async runtime: a stdout nobody reads (or a stalled disk) blocks this
            // sink alone, never the other sinks, metrics or shutdown.
            let path = self.path.clone();
            let written = tokio::task::spawn_blocking(move || write(&path, &line))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            written.map_err(|e| DeliveryError::Retry {
                reason: format!("{}: {e}", self.path),
                after: Some(Duration::from_secs(5)),
            })
        })
    }
}
