//! Secret values of the sink configuration (PagerDuty routing keys, webhook header values,
//! passwords and query values in sink URLs) and their redaction. Every secret read is
//! registered here, and every text that reaches a log, a printed line or a state file from a
//! receiver (response bodies that echo a request, client errors) goes through [`redact`] first,
//! whatever its source: a receiver that answers with the request echoed never makes us store
//! or print the key it was sent.

use std::borrow::Cow;
use std::sync::RwLock;

/// What replaces a secret in text.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets shorter than this are not searched for: they would blank out common words.
const MIN_LEN: usize = 4;

static KNOWN: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// A secret value: never shown by `Debug`, and redacted from receivers' answers.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Registers `value` for redaction.
    pub fn new(value: impl Into<String>) -> Secret {
        let value = value.into();
        register(&value);
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Registers `value` (and the forms a receiver may echo it in: JSON-escaped, percent-encoded)
/// for redaction.
pub fn register(value: &str) {
    if value.len() < MIN_LEN {
        return;
    }
    let json = serde_json::to_string(value).unwrap_or_default();
    let json = json.trim_matches('"').to_string();
    let percent: String = value
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let mut known = KNOWN.write().unwrap_or_else(|e| e.into_inner());
    for form in [value.to_string(), json, percent] {
        if !known.contains(&form) {
            known.push(form);
        }
    }
    // Longest first, so that a secret containing another is replaced whole.
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers the password and the query values of a sink URL.
pub fn register_url(url: &reqwest::Url) {
    if let Some(password) = url.password() {
        register(password);
    }
    for (_, value) in url.query_pairs() {
        register(&value);
    }
}

/// `text` with every registered secret replaced by [`REDACTED`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let known = KNOWN.read().unwrap_or_else(|e| e.into_inner());
    let mut text = Cow::Borrowed(text);
    for secret in known.iter() {
        if text.contains(secret.as_str()) {
            text = Cow::Owned(text.replace(secret.as_str(), REDACTED));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_values_are_redacted_in_every_form_they_are_echoed_in() {
        let key = Secret::new("R0uting/Key+\"42\"");
        let echoed = format!(
            "400: {{\"routing_key\":{}}} url=/x?k={} raw={}",
            serde_json::to_string(key.expose()).unwrap(),
            "R0uting%2FKey%2B%2242%22",
            key.expose()
        );
        let redacted = redact(&echoed);
        assert!(!redacted.contains("R0uting"), "{redacted}");
        assert_eq!(redacted.matches(REDACTED).count(), 3, "{redacted}");
        assert_eq!(format!("{key:?}"), "Secret(***)");
    }

    #[test]
    fn text_without_secrets_is_untouched() {
        Secret::new("another-secret-value");
        assert!(matches!(redact("HTTP 400: bad request"), Cow::Borrowed(_)));
    }
}
