//! Where commands write what the user asked for (`replay --out`, `merge -o`, report and archive
//! folders): one policy for every output path. A regular file (or a path that does not exist
//! yet) is written whole under a hidden temporary name beside it and renamed into place, so a
//! reader never sees half an output; what is not a regular file — a device such as
//! `/dev/null`, a fifo, a socket — is written to in place and never replaced. A symlink to a
//! regular file is written through: its target is replaced. Files hold principal names, so
//! they are created 0600 and folders 0700.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// An output being written: to a temporary file renamed over the target by
/// [`OutputFile::finish`], or straight into a device or fifo.
#[derive(Debug)]
pub struct OutputFile {
    file: File,
    /// `(temporary, target)` for a regular file; `None` when written in place.
    rename: Option<(PathBuf, PathBuf)>,
}

/// Whether `path` names something other than a regular file (following symlinks): written in
/// place, never replaced.
fn is_special(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| !m.is_file())
}

/// The file a regular output at `path` ends up as: the target of a symlink.
fn target_of(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    }
}

impl OutputFile {
    /// Starts writing the output `path`.
    pub fn create(path: &Path) -> io::Result<OutputFile> {
        if is_special(path) {
            let file = fs::OpenOptions::new().write(true).open(path)?;
            return Ok(OutputFile { file, rename: None });
        }
        let target = target_of(path);
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let temp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)?;
        Ok(OutputFile {
            file,
            rename: Some((temp, target)),
        })
    }

    /// Ends the output: synced and renamed into place (a regular file), or flushed.
    pub fn finish(mut self) -> io::Result<()> {
        let Some((temp, target)) = self.rename.take() else {
            return Ok(());
        };
        let renamed = self
            .file
            .sync_all()
            .and_then(|()| fs::rename(&temp, &target));
        if renamed.is_err() {
            let _ = fs::remove_file(&temp);
        }
        renamed?;
        let dir = target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        File::open(dir).and_then(|d| d.sync_all())
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Drop for OutputFile {
    /// An output never finished leaves no temporary file behind (the target is untouched).
    fn drop(&mut self) {
        if let Some((temp, _)) = &self.rename {
            let _ = fs::remove_file(temp);
        }
    }
}

/// Writes `bytes` as the whole output `path` (see the module's policy).
pub fn write_whole(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut out = OutputFile::create(path)?;
    out.write_all(bytes)?;
    out.finish()
}

/// Creates the output folder `dir` (and its parents) 0700 if missing.
pub fn create_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    #[test]
    fn a_regular_output_is_replaced_whole_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("alerts.jsonl");
        fs::write(&path, b"old").unwrap();
        let mut out = OutputFile::create(&path).unwrap();
        out.write_all(b"new ").unwrap();
        assert_eq!(
            fs::read(&path).unwrap(),
            b"old",
            "not replaced before finish"
        );
        out.write_all(b"content").unwrap();
        out.finish().unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new content");
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
        // Never finished (an error mid-way): the old output stays, no temporary is left.
        drop(OutputFile::create(&path).unwrap());
        assert_eq!(fs::read(&path).unwrap(), b"new content");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_fifo_is_written_in_place_and_stays_a_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        write_whole(&fifo, b"through the pipe\n").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe\n");
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }

    #[test]
    fn a_device_is_written_in_place_and_stays_a_device() {
        write_whole(Path::new("/dev/null"), b"nothing").unwrap();
        assert!(
            fs::metadata("/dev/null")
                .unwrap()
                .file_type()
                .is_char_device()
        );
    }

    #[test]
    fn a_symlink_to_a_file_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("real.jsonl");
        fs::write(&target, b"old").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        write_whole(&link, b"new").unwrap();
        assert!(
            fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(fs::read(&target).unwrap(), b"new");
    }
}
