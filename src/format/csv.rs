//! CSV records as PostgreSQL's csvlog, pgaudit's AUDIT payload and Cloud Storage's usage logs
//! write them (RFC 4180: fields separated by `,`, `"` quoting a field, `""` a quote inside).

/// The first `max` fields of a CSV record (RFC 4180: `"` quotes, `""` escapes a quote inside).
pub fn split_csv(text: &str, max: usize) -> Result<Vec<std::borrow::Cow<'_, str>>, String> {
    use std::borrow::Cow;
    let mut fields = Vec::with_capacity(max);
    let bytes = text.as_bytes();
    let mut i = 0;
    while fields.len() < max {
        if bytes.get(i) == Some(&b'"') {
            let mut value = String::new();
            let mut start = i + 1;
            let mut j = start;
            loop {
                match memchr::memchr(b'"', &bytes[j..]) {
                    None => return Err(format!("a quote opened at byte {} is not closed", i + 1)),
                    Some(k) => {
                        j += k;
                        if bytes.get(j + 1) == Some(&b'"') {
                            value.push_str(&text[start..=j]);
                            j += 2;
                            start = j;
                        } else {
                            value.push_str(&text[start..j]);
                            break;
                        }
                    }
                }
            }
            fields.push(Cow::Owned(value));
            i = j + 1;
            match bytes.get(i) {
                None => break,
                Some(b',') => i += 1,
                Some(_) => return Err(format!("text after a closing quote at byte {}", i + 1)),
            }
        } else {
            let end = memchr::memchr(b',', &bytes[i..]).map_or(bytes.len(), |k| i + k);
            fields.push(Cow::Borrowed(&text[i..end]));
            if end == bytes.len() {
                break;
            }
            i = end + 1;
        }
    }
    Ok(fields)
}
