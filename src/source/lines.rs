//! Splits a byte stream into lines with memchr, numbering them and capping their length: a line
//! longer than `max_line_bytes` is skipped whole (reported as too long), never buffered whole.

use memchr::memchr;
use std::io::{self, Read};

use crate::format::Line;

/// Reads lines from `R` through one reusable buffer.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    line_no: u64,
    max_line_bytes: usize,
}

const READ_CHUNK: usize = 256 * 1024;

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, max_line_bytes: usize) -> LineReader<R> {
        LineReader {
            inner,
            buf: vec![0; READ_CHUNK.max(max_line_bytes.min(READ_CHUNK * 4) + 1)],
            start: 0,
            end: 0,
            eof: false,
            line_no: 0,
            max_line_bytes,
        }
    }

    /// Whether a whole line is already buffered (the next call returns without reading).
    pub fn has_buffered_line(&self) -> bool {
        memchr(b'\n', &self.buf[self.start..self.end]).is_some()
    }

    /// The next line and its 1-based number, or `None` at the end. A last line without a
    /// newline is still a line.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        let mut skipping = false;
        loop {
            if let Some(i) = memchr(b'\n', &self.buf[self.start..self.end]) {
                let line_start = self.start;
                self.start += i + 1;
                self.line_no += 1;
                if skipping || i > self.max_line_bytes {
                    return Ok(Some((self.line_no, Line::TooLong)));
                }
                return Ok(Some((
                    self.line_no,
                    Line::Text(&self.buf[line_start..line_start + i]),
                )));
            }
            if self.eof {
                if self.start == self.end && !skipping {
                    return Ok(None);
                }
                let line_start = self.start;
                self.start = self.end;
                self.line_no += 1;
                if skipping || self.end - line_start > self.max_line_bytes {
                    return Ok(Some((self.line_no, Line::TooLong)));
                }
                return Ok(Some((
                    self.line_no,
                    Line::Text(&self.buf[line_start..self.end]),
                )));
            }
            if self.end - self.start > self.max_line_bytes {
                // Too long already: drop what we hold and skip to the next newline.
                skipping = true;
                self.start = 0;
                self.end = 0;
            }
            self.fill()?;
        }
    }

    /// Moves the partial line to the front, grows the buffer if needed, and reads more.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < READ_CHUNK / 2 {
            let grown = (self.buf.len() * 2).min(self.max_line_bytes + READ_CHUNK + 1);
            if grown > self.buf.len() {
                self.buf.resize(grown, 0);
            }
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(input: &[u8], max: usize) -> Vec<(u64, Option<String>)> {
        let mut reader = LineReader::new(input, max);
        let mut out = Vec::new();
        while let Some((n, line)) = reader.next_line().unwrap() {
            out.push((
                n,
                match line {
                    Line::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                    Line::TooLong => None,
                },
            ));
        }
        out
    }

    #[test]
    fn splits_numbers_and_keeps_a_last_line_without_newline() {
        assert_eq!(
            lines(b"a\n\nbc\nd", 100),
            vec![
                (1, Some("a".into())),
                (2, Some("".into())),
                (3, Some("bc".into())),
                (4, Some("d".into()))
            ]
        );
        assert_eq!(lines(b"", 100), vec![]);
        assert_eq!(lines(b"x\n", 100), vec![(1, Some("x".into()))]);
    }

    #[test]
    fn too_long_lines_are_skipped_whole() {
        let mut input = b"short\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 2_000_000));
        input.extend(b"\nafter\n");
        input.extend(std::iter::repeat_n(b'y', 700_000));
        assert_eq!(
            lines(&input, 500_000),
            vec![
                (1, Some("short".into())),
                (2, None),
                (3, Some("after".into())),
                (4, None)
            ]
        );
    }

    #[test]
    fn lines_spanning_many_reads_are_whole() {
        let long = "z".repeat(READ_CHUNK * 3);
        let input = format!("{long}\nq\n");
        let got = lines(input.as_bytes(), 1 << 20);
        assert_eq!(got, vec![(1, Some(long)), (2, Some("q".into()))]);
    }
}
