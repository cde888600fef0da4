//! Free text that reaches a terminal, a log line, a page or an audit record: which characters
//! are refused in what a person types (`--reason`, `--by`, globs) and how a name from the logs
//! is shown so that it cannot forge output. Control characters move a terminal's cursor or
//! start a new (forged) log line; Unicode bidirectional formatting characters reorder what is
//! shown (`\u{202e}txt.exe` reads as "exe.txt"). Names from the logs are already refused with
//! control characters by the decoder; bidi characters are legal in names, so they are shown
//! escaped.

use std::borrow::Cow;

/// The Unicode bidirectional formatting characters (UAX #9): embeddings, overrides, isolates
/// and marks. Each changes how the text around it is ordered on screen.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// A character refused in free text: a control character (C0, DEL, C1) or a bidi formatting
/// character.
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control() || is_bidi_control(c)
}

/// `text` with every unsafe character written as `<U+XXXX>`, so that it is seen, not obeyed.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe_char(c) {
            shown.push_str(&format!("<U+{:04X}>", c as u32));
        } else {
            shown.push(c);
        }
    }
    Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_and_controls_are_shown_not_obeyed() {
        assert_eq!(visible("\u{202e}txt.exe"), "<U+202E>txt.exe");
        assert_eq!(visible("a\u{1b}[2Jb"), "a<U+001B>[2Jb");
        assert_eq!(visible("x\u{2066}y\u{2069}"), "x<U+2066>y<U+2069>");
        assert!(matches!(visible("plain.name@corp"), Cow::Borrowed(_)));
        for c in ['\n', '\r', '\u{7f}', '\u{85}', '\u{200f}', '\u{061c}'] {
            assert!(is_unsafe_char(c), "{c:?}");
        }
        for c in ['a', 'é', '日', '|', ' '] {
            assert!(!is_unsafe_char(c), "{c:?}");
        }
    }
}
