//! Where events come from: files (plain or gzip) and stdin, read as lines. Sources only deliver
//! bytes and positions; parsing is `format`'s and detection is `detect`'s.

pub mod lines;

use flate2::read::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

/// One input named on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn from_arg(arg: &str) -> Input {
        if arg == "-" {
            Input::Stdin
        } else {
            Input::File(PathBuf::from(arg))
        }
    }

    /// How reports name this input.
    pub fn display_name(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".into(),
            Input::File(path) => path.display().to_string(),
        }
    }

    /// Opens the input, decompressing gzip (detected by its magic bytes, not its name).
    pub fn open(&self) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Input::Stdin => decompressed(BufReader::with_capacity(1 << 16, io::stdin())),
            Input::File(path) => open_file(path),
        }
    }
}

fn open_file(path: &Path) -> io::Result<Box<dyn Read + Send>> {
    let file = File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "is a directory (JSON-lines inputs are files)",
        ));
    }
    decompressed(BufReader::with_capacity(1 << 16, file))
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn decompressed<R: BufRead + Send + 'static>(mut reader: R) -> io::Result<Box<dyn Read + Send>> {
    let head = reader.fill_buf()?;
    if head.starts_with(&GZIP_MAGIC) {
        Ok(Box::new(MultiGzDecoder::new(reader)))
    } else {
        Ok(Box::new(reader))
    }
}
