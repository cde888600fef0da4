//! The one envelope of every checkpoint `exposure` writes — a followed file's state dir
//! checkpoint and a Kafka partition's state alike: what it is (`format`), which layout
//! (`version`), and when it was written (`written_at`), at the top of a JSON object. Opening
//! one reads the envelope first, so that a newer layout is named as such, never taken for
//! corruption, and never read as if it were this one.

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A checkpoint kind: its format name and the one layout version this build reads and writes.
pub trait Enveloped: DeserializeOwned {
    const FORMAT: &'static str;
    const VERSION: u32;
}

/// The envelope fields of a checkpoint about to be written.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub format: String,
    pub version: u32,
    /// RFC 3339, for people reading the file.
    pub written_at: String,
}

/// The envelope of a `T` written now.
pub fn stamp<T: Enveloped>() -> Stamp {
    Stamp {
        format: T::FORMAT.to_string(),
        version: T::VERSION,
        written_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }
}

/// Why a checkpoint cannot be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("{0}")]
    Corrupt(String),
    #[error("it is {found} version {version}, this exposure reads {reads} version {reads_version}")]
    Version {
        found: String,
        version: String,
        reads: &'static str,
        reads_version: u32,
    },
}

/// Opens a `T` from `bytes`: its envelope first, then the rest.
pub fn open<T: Enveloped>(bytes: &[u8]) -> Result<T, EnvelopeError> {
    open_version(bytes, T::VERSION)
}

/// Opens a `T` written in layout `version` of its format (an earlier layout the same type
/// still reads, for a migration).
pub fn open_version<T: Enveloped>(bytes: &[u8], version: u32) -> Result<T, EnvelopeError> {
    #[derive(Deserialize)]
    struct Envelope {
        format: Option<String>,
        version: Option<serde_json::Value>,
    }
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Corrupt(e.to_string()))?;
    let version_ok = matches!(
        &envelope.version,
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(version))
    );
    if envelope.format.as_deref() != Some(T::FORMAT) || !version_ok {
        return Err(EnvelopeError::Version {
            found: envelope
                .format
                .map_or_else(|| "no format".to_string(), |f| format!("\"{f}\"")),
            version: envelope
                .version
                .map_or_else(|| "none".to_string(), |v| v.to_string()),
            reads: T::FORMAT,
            reads_version: T::VERSION,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Corrupt(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Note {
        format: String,
        version: u32,
        written_at: String,
        body: u32,
    }

    impl Enveloped for Note {
        const FORMAT: &'static str = "exposure.note";
        const VERSION: u32 = 2;
    }

    #[test]
    fn opens_its_own_version_and_names_any_other() {
        let stamp = stamp::<Note>();
        let text = format!(
            r#"{{"format":"exposure.note","version":2,"written_at":"{}","body":7}}"#,
            stamp.written_at
        );
        assert_eq!(open::<Note>(text.as_bytes()).unwrap().body, 7);
        let newer = text.replace("\"version\":2", "\"version\":3");
        let error = open::<Note>(newer.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            error,
            "it is \"exposure.note\" version 3, this exposure reads exposure.note version 2"
        );
        let other = text.replace("exposure.note", "exposure.other");
        assert!(matches!(
            open::<Note>(other.as_bytes()),
            Err(EnvelopeError::Version { .. })
        ));
        // A newer layout with fields this one does not know is named by its version, not
        // reported as corrupt.
        let newer_layout = newer.replace("\"body\":7", "\"body\":7,\"more\":1");
        assert!(matches!(
            open::<Note>(newer_layout.as_bytes()),
            Err(EnvelopeError::Version { .. })
        ));
        assert!(matches!(
            open::<Note>(&text.as_bytes()[..text.len() / 2]),
            Err(EnvelopeError::Corrupt(_))
        ));
    }
}
