//! CSV records as PostgreSQL's csvlog, pgaudit's AUDIT payload and Cloud Storage's usage logs
//! write them (RFC 4180: fields separated by `,`, `"` quoting a field, `""` a quote inside).

/// A CSV export with a header line (the exports of grants and tags people make with `psql
/// --csv` or a worksheet download): its column names, then its records.
pub struct Headed<'a> {
    /// The names of the first line that is not blank, trimmed and in lower case.
    pub columns: Vec<String>,
    /// Each line after it that is not blank, with its number (1-based).
    pub records: Vec<(u64, &'a str)>,
}

/// `text` as a CSV export with a header; an empty text or a header that is not CSV gives the
/// line (1) and why.
pub fn headed(text: &str) -> Result<Headed<'_>, (u64, String)> {
    let mut lines = text.lines().enumerate();
    let Some((_, header)) = lines.find(|(_, l)| !l.trim().is_empty()) else {
        return Err((1, "empty: no header line".into()));
    };
    let columns = split_csv(header, 64)
        .map_err(|e| (1, e))?
        .iter()
        .map(|c| c.trim().to_ascii_lowercase())
        .collect();
    let records = lines
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(at, l)| (at as u64 + 1, l))
        .collect();
    Ok(Headed { columns, records })
}

impl Headed<'_> {
    /// The fields of `record`, as many as there are columns.
    pub fn fields<'r>(&self, record: &'r str) -> Result<Vec<std::borrow::Cow<'r, str>>, String> {
        split_csv(record, self.columns.len())
    }

    /// The field of column `name` (lower case) among a record's `fields`, trimmed; "" when
    /// the export has no such column.
    pub fn field<'f>(&self, fields: &'f [std::borrow::Cow<'_, str>], name: &str) -> &'f str {
        (self.columns.iter().position(|c| c == name))
            .and_then(|i| fields.get(i))
            .map_or("", |f| f.trim())
    }
}

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
