//! Lines of inputs read with [`Read`] (files, gzip, stdin, object streams): a [`Framer`] fed
//! by reads, and the one loop from such an input to decoded records ([`decode_all`]).

use std::io::{self, Read};

use super::frame::{Framer, READ_CHUNK};
use crate::format::decode::LineCap;
use crate::format::{DecodeSink, Decoder, Line};

/// Decodes every line of `reader` with `decoder` into `sink`, then finishes the decoder (a
/// record still open at the end is decoded or reported). `stop(sink)` is asked after each
/// line: when it says so, reading ends there and the decoder is not finished. A read error
/// ends reading: `read_error(sink, error)` reports it as the command does, then the decoder is
/// finished (the lines before it are decoded). The one loop from bytes to decoded records for
/// inputs read whole (replay's parallel reader hands blocks of lines on instead).
pub fn decode_all<R: Read, S: DecodeSink>(
    reader: R,
    decoder: &mut Decoder,
    sink: &mut S,
    mut stop: impl FnMut(&mut S) -> bool,
    read_error: impl FnOnce(&mut S, io::Error),
) {
    let mut lines = LineReader::new(reader, decoder.line_cap());
    loop {
        match lines.next_line() {
            Ok(Some((line_no, line))) => decoder.line(line_no, line, sink),
            Ok(None) => break,
            Err(e) => {
                read_error(sink, e);
                break;
            }
        }
        if stop(sink) {
            return;
        }
    }
    decoder.finish(sink);
}

/// How much a [`LineReader`] asks of its reader at a time: large reads keep system calls and
/// buffer moves few on archives of many gigabytes.
const LINE_READ: usize = 4 * READ_CHUNK;

/// Reads the lines of `R`: a [`Framer`] fed by reads into its own buffer.
pub struct LineReader<R> {
    inner: R,
    framer: Framer,
    eof: bool,
}

impl<R: Read> LineReader<R> {
    pub fn new(inner: R, cap: LineCap) -> LineReader<R> {
        LineReader {
            inner,
            framer: Framer::new(cap),
            eof: false,
        }
    }

    /// Whether a whole line is already read (the next call returns without reading).
    pub fn has_buffered_line(&mut self) -> bool {
        self.framer.has_record()
    }

    /// The next line and its 1-based number, or `None` at the end. A last line without a
    /// newline is still a line.
    pub fn next_line(&mut self) -> io::Result<Option<(u64, Line<'_>)>> {
        loop {
            if let Some(framed) = self.framer.frame() {
                return Ok(Some(self.framer.record(framed)));
            }
            if self.eof {
                return Ok(self.framer.frame_last().map(|f| self.framer.record(f)));
            }
            self.fill()?;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        loop {
            match self.inner.read(self.framer.spare(LINE_READ)) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.framer.filled(n);
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
        let cap = LineCap {
            line: max,
            document: max,
        };
        let mut reader = LineReader::new(input, cap);
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
    fn a_cloudtrail_document_may_be_longer_than_a_record_line() {
        let cap = LineCap::new(crate::format::Format::Auto, 1000);
        let document = format!(r#"{{"Records":[{}{{}}]}}"#, "{},".repeat(5000));
        let record = format!(r#"{{"ts":1,"pad":"{}"}}"#, "x".repeat(5000));
        let input = format!("{record}\n{document}");
        let mut reader = LineReader::new(input.as_bytes(), cap);
        assert_eq!(reader.next_line().unwrap(), Some((1, Line::TooLong)));
        let (n, line) = reader.next_line().unwrap().unwrap();
        assert_eq!((n, line), (2, Line::Text(document.as_bytes())));
        assert_eq!(reader.next_line().unwrap(), None);
    }

    #[test]
    fn lines_spanning_many_reads_are_whole() {
        let long = "z".repeat(READ_CHUNK * 3);
        let input = format!("{long}\nq\n");
        let got = lines(input.as_bytes(), 1 << 20);
        assert_eq!(got, vec![(1, Some(long)), (2, Some("q".into()))]);
    }
}
