//! Framing: the one place where a byte stream becomes records (lines), sans I/O. A source
//! pushes bytes in (or reads straight into [`Framer::spare`]) and takes capped records out;
//! the partial record at the end of what was pushed is kept for the next push. Files, gzip,
//! stdin, object streams ([`super::lines::LineReader`]), the follower ([`super::tail`]) and
//! Kafka payloads all wrap it, so every source frames alike:
//!
//! - a record ends at `\n`; a `\r` before it is not part of the record;
//! - a last record without `\n` is a record when the stream ends ([`Framer::finish`]);
//! - a record longer than its [`LineCap`] is skipped whole, its bytes counted but never held,
//!   and comes out as [`Line::TooLong`] once its end is seen.

use memchr::memchr;

use crate::format::Line;
use crate::format::decode::LineCap;

/// How much a read into [`Framer::spare`] asks for at least.
pub const READ_CHUNK: usize = 256 * 1024;

/// A record framed, not yet borrowed from the framer's buffer ([`Framer::record`]): taken
/// apart so that a reader may frame in a loop and still return the record it borrows.
#[derive(Debug, Clone, Copy)]
pub struct Framed {
    line_no: u64,
    bytes: Option<(usize, usize)>,
}

/// The framing state of one stream: its buffer, the partial record it holds, the number of the
/// last record handed out and the stream offsets of both.
#[derive(Debug)]
pub struct Framer {
    buf: Vec<u8>,
    /// The held bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    /// How much of the held bytes is known to hold no `\n`.
    searched: usize,
    /// The partial record is already over its cap: its bytes are dropped as they come.
    skipping: bool,
    /// Stream offset of `buf[start]`.
    offset: u64,
    /// Stream offset where the partial record starts.
    record_start: u64,
    line_no: u64,
    cap: LineCap,
}

impl Framer {
    pub fn new(cap: LineCap) -> Framer {
        Framer::starting_at(cap, 0, 0)
    }

    /// A framer for a stream taken up at byte `offset`, after `line_no` records.
    pub fn starting_at(cap: LineCap, offset: u64, line_no: u64) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            end: 0,
            searched: 0,
            skipping: false,
            offset,
            record_start: offset,
            line_no,
            cap,
        }
    }

    /// The cap records are framed under.
    pub fn cap(&self) -> LineCap {
        self.cap
    }

    /// The number of the last record handed out (records are numbered from 1).
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Stream offset just past everything pushed so far (where the next read starts).
    pub fn pushed(&self) -> u64 {
        self.offset + (self.end - self.start) as u64
    }

    /// Stream offset where the record not yet handed out starts: everything before it was
    /// handed out, so a reader taken up here loses nothing and repeats nothing.
    pub fn record_start(&self) -> u64 {
        self.record_start
    }

    /// Whether part of a record is held (or being skipped), waiting for its end.
    pub fn holds_partial(&self) -> bool {
        self.skipping || self.start < self.end
    }

    /// The partial record held, unless it is being skipped as too long.
    pub fn held(&self) -> Option<&[u8]> {
        (!self.skipping).then(|| &self.buf[self.start..self.end])
    }

    /// Copies `bytes` in after what is held.
    pub fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len();
        self.spare(n)[..n].copy_from_slice(bytes);
        self.filled(n);
    }

    /// Frames `bytes`, pushed after what is held, handing each whole record to `on_record`:
    /// the records wholly inside `bytes` are borrowed from it, only a partial record at either
    /// end is copied (for sources that read into buffers of their own: the follower's shared
    /// read buffer, Kafka payloads).
    pub fn push_each(&mut self, mut bytes: &[u8], on_record: &mut impl FnMut(u64, Line<'_>)) {
        if self.holds_partial() {
            let Some(i) = memchr(b'\n', bytes) else {
                self.hold(bytes);
                return;
            };
            // The held record ends here; its `\n` is done with too.
            self.hold(&bytes[..i]);
            let framed = self.handed_out(self.start, self.end, self.end);
            self.offset += 1;
            self.record_start = self.offset;
            let (line_no, line) = self.record(framed);
            on_record(line_no, line);
            bytes = &bytes[i + 1..];
        }
        while let Some(i) = memchr(b'\n', bytes) {
            let record = &bytes[..i];
            let line = if self.cap.allows(i, record) {
                Line::Text(strip_cr(record))
            } else {
                Line::TooLong
            };
            self.offset += i as u64 + 1;
            self.record_start = self.offset;
            self.line_no += 1;
            on_record(self.line_no, line);
            bytes = &bytes[i + 1..];
        }
        self.hold(bytes);
    }

    /// Keeps `bytes`, part of a record, unless that record is over its cap already: then it
    /// is skipped (its bytes counted, not held).
    fn hold(&mut self, bytes: &[u8]) {
        let held = self.end - self.start;
        let over = self.skipping || {
            let start = if held > 0 {
                &self.buf[self.start..self.end]
            } else {
                bytes
            };
            !self.cap.allows(held + bytes.len(), start)
        };
        if over {
            self.skipping = true;
            self.offset += (held + bytes.len()) as u64;
            self.start = 0;
            self.end = 0;
            self.searched = 0;
        } else {
            self.push(bytes);
        }
    }

    /// Room for at least `want` more bytes after what is held, to read into; say how many
    /// were read with [`Framer::filled`].
    pub fn spare(&mut self, want: usize) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.start > 0 && self.buf.len() - self.end < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < want {
            self.buf.resize(self.end + want, 0);
        }
        &mut self.buf[self.end..]
    }

    /// Takes in `n` bytes read into [`Framer::spare`].
    pub fn filled(&mut self, n: usize) {
        debug_assert!(self.end + n <= self.buf.len());
        self.end += n;
    }

    /// Whether a whole record is held (the next [`Framer::next_record`] gives it).
    pub fn has_record(&self) -> bool {
        memchr(b'\n', &self.buf[self.start + self.searched..self.end]).is_some()
    }

    /// The next whole record and its number, or `None` when more bytes are needed.
    #[inline]
    pub fn next_record(&mut self) -> Option<(u64, Line<'_>)> {
        let framed = self.frame()?;
        Some(self.record(framed))
    }

    /// The stream ended: the record still held, if any, as the last one (after any whole
    /// record not yet taken).
    pub fn finish(&mut self) -> Option<(u64, Line<'_>)> {
        let framed = self.frame().or_else(|| self.frame_last())?;
        Some(self.record(framed))
    }

    /// The record `framed` (framed last: any push or framing since moves the buffer).
    #[inline(always)]
    pub fn record(&self, framed: Framed) -> (u64, Line<'_>) {
        let line = match framed.bytes {
            Some((start, end)) => Line::Text(strip_cr(&self.buf[start..end])),
            None => Line::TooLong,
        };
        (framed.line_no, line)
    }

    /// Frames the next whole record, or says more bytes are needed.
    #[inline(always)]
    pub fn frame(&mut self) -> Option<Framed> {
        let from = self.start + self.searched;
        let Some(i) = memchr(b'\n', &self.buf[from..self.end]) else {
            self.searched = self.end - self.start;
            self.drop_if_over_cap();
            return None;
        };
        let (start, end) = (self.start, from + i);
        Some(self.handed_out(start, end, end + 1))
    }

    /// The stream ended: frames the record still held, if any.
    pub fn frame_last(&mut self) -> Option<Framed> {
        if !self.holds_partial() {
            return None;
        }
        let (start, end) = (self.start, self.end);
        Some(self.handed_out(start, end, end))
    }

    /// The record `buf[start..end]` is handed out (if its cap allows it), and the bytes up to
    /// `next` are done with.
    #[inline(always)]
    fn handed_out(&mut self, start: usize, end: usize, next: usize) -> Framed {
        let allowed = !self.skipping && self.cap.allows(end - start, &self.buf[start..end]);
        self.offset += (next - self.start) as u64;
        self.record_start = self.offset;
        self.start = next;
        self.searched = 0;
        self.skipping = false;
        self.line_no += 1;
        Framed {
            line_no: self.line_no,
            bytes: allowed.then_some((start, end)),
        }
    }

    /// A partial record already over its cap is dropped, not held: it is skipped to its end.
    fn drop_if_over_cap(&mut self) {
        let held = &self.buf[self.start..self.end];
        if self.skipping || !self.cap.allows(held.len(), held) {
            self.skipping = true;
            self.offset += held.len() as u64;
            self.start = 0;
            self.end = 0;
            self.searched = 0;
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(max: usize) -> LineCap {
        LineCap {
            line: max,
            document: max,
        }
    }

    /// Frames `input` pushed in pieces of `piece` bytes.
    fn frame(input: &[u8], piece: usize, max: usize) -> Vec<(u64, Option<String>)> {
        let mut framer = Framer::new(cap(max));
        let mut out = Vec::new();
        let text = |line: Line<'_>| match line {
            Line::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
            Line::TooLong => None,
        };
        for chunk in input.chunks(piece.max(1)) {
            framer.push(chunk);
            while let Some((n, line)) = framer.next_record() {
                out.push((n, text(line)));
            }
        }
        if let Some((n, line)) = framer.finish() {
            out.push((n, text(line)));
        }
        assert!(!framer.holds_partial());
        assert_eq!(framer.record_start(), input.len() as u64);
        // Pushed with records borrowed from what is pushed: the same records.
        let mut framer = Framer::new(cap(max));
        let mut borrowed = Vec::new();
        for chunk in input.chunks(piece.max(1)) {
            framer.push_each(chunk, &mut |n, line| borrowed.push((n, text(line))));
        }
        if let Some((n, line)) = framer.finish() {
            borrowed.push((n, text(line)));
        }
        assert_eq!(framer.record_start(), input.len() as u64);
        assert_eq!(borrowed, out, "push_each, pieces of {piece}");
        out
    }

    #[test]
    fn records_are_the_same_however_the_bytes_are_pushed() {
        let input = b"a\r\n\nbc\nd\r";
        let want = vec![
            (1, Some("a".into())),
            (2, Some("".into())),
            (3, Some("bc".into())),
            (4, Some("d".into())),
        ];
        for piece in 1..=input.len() {
            assert_eq!(frame(input, piece, 100), want, "pieces of {piece}");
        }
        assert_eq!(frame(b"", 1, 100), vec![]);
        assert_eq!(frame(b"x\n", 1, 100), vec![(1, Some("x".into()))]);
    }

    #[test]
    fn an_overlong_record_is_skipped_whole_and_never_held() {
        let mut input = b"ok\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 5000));
        input.extend(b"\nafter\n");
        input.extend(std::iter::repeat_n(b'y', 3000));
        let want = vec![
            (1, Some("ok".into())),
            (2, None),
            (3, Some("after".into())),
            (4, None),
        ];
        for piece in [1, 7, 100, 1000, 100_000] {
            assert_eq!(frame(&input, piece, 1000), want, "pieces of {piece}");
        }
        let mut framer = Framer::new(cap(1000));
        let mut borrowing = Framer::new(cap(1000));
        for _ in 0..100 {
            framer.push(&[b'z'; 1000]);
            assert!(framer.next_record().is_none());
            assert!(framer.buf.len() <= 4000, "held {}", framer.buf.len());
            borrowing.push_each(&[b'z'; 1000], &mut |_, _| panic!("no record yet"));
            assert!(borrowing.buf.len() <= 2000, "held {}", borrowing.buf.len());
        }
        for framer in [&framer, &borrowing] {
            assert!(framer.holds_partial());
            assert_eq!(framer.record_start(), 0);
            assert_eq!(framer.pushed(), 100_000);
        }
    }

    #[test]
    fn offsets_say_where_to_take_the_stream_up_again() {
        let mut framer = Framer::starting_at(cap(100), 1000, 7);
        framer.push(b"one\ntw");
        assert_eq!(framer.next_record(), Some((8, Line::Text(b"one"))));
        assert_eq!(framer.next_record(), None);
        assert_eq!((framer.record_start(), framer.pushed()), (1004, 1006));
        framer.push(b"o\n");
        assert_eq!(framer.next_record(), Some((9, Line::Text(b"two"))));
        assert_eq!(framer.record_start(), 1008);
        assert!(framer.finish().is_none());
    }

    #[test]
    fn a_cloudtrail_document_may_be_longer_than_a_record_line() {
        let cap = LineCap::new(crate::format::Format::Auto, 1000);
        let document = format!(r#"{{"Records":[{}{{}}]}}"#, "{},".repeat(5000));
        let record = format!(r#"{{"ts":1,"pad":"{}"}}"#, "x".repeat(5000));
        let mut framer = Framer::new(cap);
        framer.push(format!("{record}\n{document}").as_bytes());
        assert_eq!(framer.next_record(), Some((1, Line::TooLong)));
        assert_eq!(framer.next_record(), None);
        assert_eq!(framer.finish(), Some((2, Line::Text(document.as_bytes()))));
    }
}
