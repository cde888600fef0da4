//! Inputs in object storage: a URL (`s3://bucket/prefix/`, `gs://…`, `az://…`, `file://…`,
//! with globs) is listed into objects; a JSON-lines object (plain or gzip) is streamed, never
//! downloaded whole; a Parquet object is read by ranges — its footer once, then each row
//! group's column chunks with parallel range requests ([`RemoteParquet`]). An archive written
//! to a store is uploaded file by file, each object appearing only once complete
//! ([`ArchiveDestination`]).
//!
//! Credentials, region and endpoint come from each cloud's standard environment
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
//! `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP=true` for a plain-HTTP endpoint; `GOOGLE_*`; `AZURE_*`),
//! and for S3 also from the shared files the AWS CLI uses (`~/.aws/credentials` and
//! `~/.aws/config`, profile `AWS_PROFILE` or `default`) for what the environment leaves out.
//! They are never printed nor written anywhere.
//!
//! The stores are asynchronous; this module runs them on one small runtime of its own and
//! offers the blocking `Read` and Parquet `ChunkReader` the rest of the pipeline uses.

use super::InputError;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::io::{self, Read};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// The runtime the stores run on (two workers: requests are I/O, not CPU).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("exposure-object-io")
            .enable_all()
            .build()
            .expect("a tokio runtime for object storage")
    })
}

/// Whether an input argument is a URL rather than a path.
pub fn is_url(arg: &str) -> bool {
    arg.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+')
    })
}

/// One object to read.
#[derive(Debug)]
pub struct ObjectInput {
    /// The object's URL, as reports show it.
    pub url: String,
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
    pub size: u64,
}

/// The store a URL names and the key (or key prefix) within it.
fn store_for(url: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath, String), InputError> {
    let parsed = url::Url::parse(url).map_err(|e| InputError::BadUrl {
        url: url.to_string(),
        message: e.to_string(),
    })?;
    let bad = |message: String| InputError::BadUrl {
        url: url.to_string(),
        message,
    };
    let scheme = parsed.scheme();
    let store: Arc<dyn ObjectStore> = match scheme {
        "s3" | "s3a" => {
            let (builder, credentials) = aws_builder();
            // Without credentials the client would ask the instance metadata service; where
            // that is turned off (as the AWS CLI's AWS_EC2_METADATA_DISABLED says), say so now.
            let no_metadata = std::env::var("AWS_EC2_METADATA_DISABLED")
                .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
            let unsigned =
                std::env::var("AWS_SKIP_SIGNATURE").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
            if !credentials && no_metadata && !unsigned {
                return Err(InputError::Store {
                    url: url.to_string(),
                    message: "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, \
                              or AWS_PROFILE with ~/.aws/credentials, or \
                              AWS_WEB_IDENTITY_TOKEN_FILE"
                        .to_string(),
                });
            }
            Arc::new(
                builder
                    .with_url(url)
                    .build()
                    .map_err(|e| bad(e.to_string()))?,
            )
        }
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        ),
        "az" | "azure" | "abfs" | "abfss" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url)
                .build()
                .map_err(|e| bad(e.to_string()))?,
        ),
        "file" => Arc::new(object_store::local::LocalFileSystem::new()),
        other => {
            return Err(InputError::UnknownScheme {
                url: url.to_string(),
                scheme: other.to_string(),
            });
        }
    };
    // The key: the URL's path, percent-decoded (for `file://`, the absolute path).
    let raw = percent_encoding::percent_decode_str(parsed.path())
        .decode_utf8()
        .map_err(|e| bad(e.to_string()))?
        .to_string();
    let key = raw.trim_start_matches('/').to_string();
    let prefix = format!("{scheme}://{}/", parsed.host_str().unwrap_or_default());
    Ok((store, ObjectPath::from(key.as_str()), prefix))
}

/// The S3 settings: the environment first, then the AWS CLI's shared files; and whether they
/// hold credentials (keys, or a web identity token).
fn aws_builder() -> (object_store::aws::AmazonS3Builder, bool) {
    use object_store::aws::AmazonS3ConfigKey as Key;
    let mut builder = object_store::aws::AmazonS3Builder::from_env();
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_string());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let credentials = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config = std::env::var_os("AWS_CONFIG_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let from_files = |key: &str| -> Option<String> {
        let in_credentials = credentials
            .as_ref()
            .and_then(|f| ini_value(&std::fs::read_to_string(f).ok()?, &profile, key));
        in_credentials.or_else(|| {
            let section = if profile == "default" {
                "default".to_string()
            } else {
                format!("profile {profile}")
            };
            config
                .as_ref()
                .and_then(|f| ini_value(&std::fs::read_to_string(f).ok()?, &section, key))
        })
    };
    for (env, key, file_key) in [
        ("AWS_ACCESS_KEY_ID", Key::AccessKeyId, "aws_access_key_id"),
        (
            "AWS_SECRET_ACCESS_KEY",
            Key::SecretAccessKey,
            "aws_secret_access_key",
        ),
        ("AWS_SESSION_TOKEN", Key::Token, "aws_session_token"),
        ("AWS_REGION", Key::Region, "region"),
        ("AWS_ENDPOINT_URL", Key::Endpoint, "endpoint_url"),
    ] {
        if std::env::var_os(env).is_none()
            && let Some(value) = from_files(file_key)
        {
            builder = builder.with_config(key, value);
        }
    }
    let credentials = std::env::var_os("AWS_ACCESS_KEY_ID").is_some()
        || from_files("aws_access_key_id").is_some()
        || std::env::var_os("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
        || std::env::var_os("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || std::env::var_os("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
    (builder, credentials)
}

/// `key = value` in `[section]` of an INI file (the AWS CLI's shared files).
fn ini_value(text: &str, section: &str, key: &str) -> Option<String> {
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = name.trim().to_string();
        } else if current == section
            && let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().to_string());
        }
    }
    None
}

/// A data object's name: not hidden, not a marker (`_SUCCESS`), not a temporary.
fn is_data_object(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    !(name.is_empty() || name.starts_with('.') || name.starts_with('_') || name.ends_with(".tmp"))
}

/// The objects a URL names: the object itself, every data object under it (a prefix; sorted by
/// key), or those matching it (a URL with `*`, `?` or `[`). An argument naming nothing is
/// `Ok(empty)`; a store that cannot be listed (no such bucket, access denied, no
/// credentials) is an error naming the URL.
pub fn expand(url: &str) -> Result<Vec<ObjectInput>, InputError> {
    // A glob lists from its literal leading folders and matches keys as a local glob does.
    let (store, key, shown_prefix, matcher) = if url.contains(['*', '?', '[']) {
        let start = url.find("://").map_or(0, |i| i + 3);
        let bucket_end = url[start..].find('/').map_or(url.len(), |i| start + i + 1);
        let (root, matcher) = super::glob_root(&url[bucket_end..]).map_err(|e| match e {
            InputError::BadGlob { message, .. } => InputError::BadGlob {
                pattern: url.to_string(),
                message,
            },
            other => other,
        })?;
        let root = root.to_string_lossy();
        let listed = match root.as_ref() {
            "." => url[..bucket_end].to_string(),
            root => format!("{}{root}/", &url[..bucket_end]),
        };
        let (store, key, shown_prefix) = store_for(&listed)?;
        (store, key, shown_prefix, Some(matcher))
    } else {
        let (store, key, shown_prefix) = store_for(url)?;
        (store, key, shown_prefix, None)
    };
    let failed = |e: object_store::Error| InputError::Store {
        url: url.to_string(),
        message: store_error(&e),
    };
    runtime().block_on(async {
        // The URL itself, when it is an object.
        if matcher.is_none() && !url.ends_with('/') {
            match store.head(&key).await {
                Ok(meta) => {
                    return Ok(vec![ObjectInput {
                        url: url.to_string(),
                        store: Arc::clone(&store),
                        location: meta.location,
                        size: meta.size,
                    }]);
                }
                Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(failed(e)),
            }
        }
        let prefix = (!key.as_ref().is_empty()).then_some(&key);
        let mut listing = store.list(prefix);
        let mut objects = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(failed)?;
            let name = meta.location.as_ref();
            if !is_data_object(name) || matcher.as_ref().is_some_and(|m| !m.is_match(name)) {
                continue;
            }
            objects.push(ObjectInput {
                url: format!("{shown_prefix}{name}"),
                store: Arc::clone(&store),
                location: meta.location,
                size: meta.size,
            });
        }
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(objects)
    })
}

/// The manifest of the archive at `root` (a URL without the trailing `/`): `Ok(None)` when
/// the store holds none.
pub fn read_manifest(root: &str) -> super::manifest::Loaded {
    let url = format!("{root}/{}", super::manifest::MANIFEST_FILE);
    let (store, key, _) = store_for(&url).map_err(|e| e.to_string())?;
    let bytes = runtime().block_on(async {
        match store.get(&key).await {
            Ok(got) => got.bytes().await.map(Some),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    });
    match bytes {
        Ok(Some(bytes)) => super::manifest::parse_manifest(&bytes).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("{url}: {}", store_error(&e))),
    }
}

/// What a store's error says, without the request's headers (which may carry credentials)
/// or the server's whole response. Listing errors come from the stores as text carrying the
/// HTTP status and the S3 error code; they are told apart by those.
fn store_error(error: &object_store::Error) -> String {
    use object_store::Error as E;
    match error {
        E::NotFound { .. } => "not found (no such bucket or object)".to_string(),
        E::PermissionDenied { .. } => "access denied".to_string(),
        E::Unauthenticated { .. } => "not authenticated: no or wrong credentials".to_string(),
        other => {
            let text = other.to_string();
            let has = |needle: &str| text.contains(needle);
            if has("NoSuchBucket") || has("404 Not Found") {
                "not found (no such bucket or object)".to_string()
            } else if has("InvalidAccessKeyId") || has("SignatureDoesNotMatch") {
                "credentials refused (InvalidAccessKeyId or SignatureDoesNotMatch)".to_string()
            } else if has("AccessDenied") || has("403 Forbidden") {
                "access denied".to_string()
            } else {
                // The first line, and not the server's body after it.
                let line = text.lines().next().unwrap_or_default();
                let line = line.split(": <?xml").next().unwrap_or(line);
                line.chars().take(300).collect()
            }
        }
    }
}

/// Objects are the same when their URLs are.
impl PartialEq for ObjectInput {
    fn eq(&self, other: &Self) -> bool {
        self.url == other.url
    }
}

impl Eq for ObjectInput {}

impl ObjectInput {
    /// Whether the object is Parquet: by its name, else by its first bytes (`PAR1`).
    pub fn looks_like_parquet(&self) -> bool {
        if self.location.as_ref().ends_with(".parquet") {
            return true;
        }
        self.size >= 8 && self.bytes(0..4).is_ok_and(|head| head.as_ref() == b"PAR1")
    }

    /// Bytes `range` of the object (one range request).
    pub fn bytes(&self, range: Range<u64>) -> io::Result<Bytes> {
        runtime()
            .block_on(self.store.get_range(&self.location, range))
            .map_err(|e| self.error(&e))
    }

    /// Several ranges, fetched in parallel (near ones coalesced).
    pub fn ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Bytes>> {
        runtime()
            .block_on(self.store.get_ranges(&self.location, ranges))
            .map_err(|e| self.error(&e))
    }

    fn error(&self, error: &object_store::Error) -> io::Error {
        let kind = match error {
            object_store::Error::NotFound { .. } => io::ErrorKind::NotFound,
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        let message = match error {
            object_store::Error::NotFound { .. } => "vanished (not found) while being read".into(),
            other => store_error(other),
        };
        io::Error::new(kind, message)
    }

    /// The object as a byte stream: chunks are fetched ahead on the store's runtime (at most
    /// eight of them) while the caller reads.
    pub fn stream(self: &Arc<Self>) -> io::Result<Box<dyn Read + Send>> {
        const AHEAD: usize = 8;
        let (sender, receiver) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(AHEAD);
        let object = Arc::clone(self);
        // The request is made before returning, so that a missing object fails the open.
        let result = runtime()
            .block_on(object.store.get(&object.location))
            .map_err(|e| object.error(&e))?;
        runtime().spawn(async move {
            let mut stream = result.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| object.error(&e));
                let failed = chunk.is_err();
                // A full channel suspends this task (not a worker) until the reader takes one.
                if sender.send(chunk).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(Box::new(ChunkStream {
            receiver,
            current: Bytes::new(),
        }))
    }
}

/// A blocking `Read` over chunks arriving on a channel (read from threads outside the runtime).
struct ChunkStream {
    receiver: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl Read for ChunkStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.receiver.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0), // the stream ended
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

/// A Parquet object read by ranges: the footer through [`parquet::file::reader::ChunkReader`]
/// calls (one request each), a row group's column chunks all at once with
/// [`RemoteParquet::prefetch`].
#[derive(Clone)]
pub struct RemoteParquet(pub Arc<ObjectInput>);

impl parquet::file::reader::Length for RemoteParquet {
    fn len(&self) -> u64 {
        self.0.size
    }
}

impl parquet::file::reader::ChunkReader for RemoteParquet {
    type T = io::Cursor<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let bytes = self
            .0
            .bytes(start..self.0.size)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))?;
        Ok(io::Cursor::new(bytes))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.0
            .bytes(start..start + length as u64)
            .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
    }
}

impl RemoteParquet {
    /// Starts fetching `ranges` (a row group's column chunks, in parallel) in the background (on the object-storage runtime), for
    /// [`PendingFetch::wait`] to take when the decoder gets there.
    pub fn prefetch(&self, ranges: Vec<Range<u64>>) -> PendingFetch {
        let object = Arc::clone(&self.0);
        let task = runtime().spawn({
            let (store, location) = (Arc::clone(&object.store), object.location.clone());
            let ranges = ranges.clone();
            async move { store.get_ranges(&location, &ranges).await }
        });
        PendingFetch {
            object,
            ranges,
            task,
        }
    }
}

/// A row group's column chunks being fetched (see [`RemoteParquet::prefetch`]). Dropped, the
/// fetch runs to its end and is discarded.
pub struct PendingFetch {
    object: Arc<ObjectInput>,
    ranges: Vec<Range<u64>>,
    task: tokio::task::JoinHandle<Result<Vec<Bytes>, object_store::Error>>,
}

impl PendingFetch {
    /// The fetched ranges, once all have come.
    pub fn wait(self) -> io::Result<Fetched> {
        let bytes = runtime()
            .block_on(self.task)
            .map_err(io::Error::other)?
            .map_err(|e| self.object.error(&e))?;
        let mut pieces: Vec<(u64, Bytes)> =
            self.ranges.iter().map(|r| r.start).zip(bytes).collect();
        pieces.sort_by_key(|(start, _)| *start);
        Ok(Fetched {
            size: self.object.size,
            pieces: Arc::new(pieces),
        })
    }
}

/// Ranges of a Parquet object already fetched.
#[derive(Clone)]
pub struct Fetched {
    size: u64,
    pieces: Arc<Vec<(u64, Bytes)>>,
}

impl Fetched {
    fn piece(&self, start: u64, length: u64) -> parquet::errors::Result<Bytes> {
        let at = self.pieces.partition_point(|(s, _)| *s <= start);
        let found = at.checked_sub(1).and_then(|i| {
            let (s, bytes) = &self.pieces[i];
            let offset = (start - s) as usize;
            (offset as u64 + length <= bytes.len() as u64)
                .then(|| bytes.slice(offset..offset + length as usize))
        });
        found.ok_or_else(|| {
            parquet::errors::ParquetError::General(format!(
                "bytes {start}..{} were not fetched",
                start + length
            ))
        })
    }
}

impl parquet::file::reader::Length for Fetched {
    fn len(&self) -> u64 {
        self.size
    }
}

impl parquet::file::reader::ChunkReader for Fetched {
    type T = io::Cursor<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        let at = self.pieces.partition_point(|(s, _)| *s <= start);
        let (s, bytes) = at.checked_sub(1).map(|i| &self.pieces[i]).ok_or_else(|| {
            parquet::errors::ParquetError::General(format!("byte {start} was not fetched"))
        })?;
        Ok(io::Cursor::new(bytes.slice((start - s) as usize..)))
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.piece(start, length as u64)
    }
}

/// Where an archive is written in a store: `dt=…/part-NNNNN.parquet` objects under a prefix.
/// The file that marks a staging folder as a finished archive for a destination.
const STAGED_FOR: &str = ".exposure-staged-for";

pub struct ArchiveDestination {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    shown_prefix: String,
}

impl ArchiveDestination {
    /// The store and prefix `url` names (`s3://bucket/archive/`).
    pub fn new(url: &str) -> Result<ArchiveDestination, InputError> {
        let (store, key, shown_prefix) = store_for(url)?;
        Ok(ArchiveDestination {
            url: url.to_string(),
            store,
            prefix: key.as_ref().trim_end_matches('/').to_string(),
            shown_prefix,
        })
    }

    /// The destination's URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Marks `staging` as holding a complete archive for this destination (written before
    /// its upload starts), so that `--resume` uploads only what was whole and to where it was
    /// meant to go.
    pub fn mark_staged(&self, staging: &std::path::Path) -> io::Result<()> {
        std::fs::write(staging.join(STAGED_FOR), format!("{}\n", self.url))
    }

    /// Checks that `staging` was marked for this destination by [`Self::mark_staged`].
    pub fn check_staged(&self, staging: &std::path::Path) -> io::Result<()> {
        let marker = staging.join(STAGED_FOR);
        let meant = std::fs::read_to_string(&marker).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "{}: not a staging folder of a finished archive (no {STAGED_FOR}: {e}); \
                     archive the logs again",
                    staging.display()
                ),
            )
        })?;
        let meant = meant.trim();
        if meant != self.url {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{}: staged for {meant}, not {}; give --out {meant}",
                    staging.display(),
                    self.url
                ),
            ));
        }
        Ok(())
    }

    fn key(&self, relative: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(relative)
        } else {
            ObjectPath::from(format!("{}/{relative}", self.prefix))
        }
    }

    /// Checks the destination holds no archive (any object under its prefix), or with
    /// `replace` deletes the archive it holds (its part objects and manifest; any other object
    /// stops it): an archive is never added to, so no day is archived twice.
    pub fn prepare(&self, replace: bool) -> io::Result<()> {
        let failed =
            |e: object_store::Error| io::Error::other(format!("{}: {}", self.url, store_error(&e)));
        let prefix = (!self.prefix.is_empty()).then(|| ObjectPath::from(self.prefix.as_str()));
        let listed = runtime().block_on(async {
            let mut listing = self.store.list(prefix.as_ref());
            let mut found = Vec::new();
            while let Some(meta) = listing.next().await {
                found.push(meta?.location);
            }
            Ok::<_, object_store::Error>(found)
        });
        let existing = match listed {
            Ok(existing) => existing,
            // No such bucket: nothing to add to (the upload says what is wrong, and keeps
            // its staging folder for `--resume`).
            Err(e) if store_error(&e).starts_with("not found") => return Ok(()),
            Err(e) => return Err(failed(e)),
        };
        if existing.is_empty() {
            return Ok(());
        }
        if !replace {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{}: not empty ({} objects): archiving into it would add parts beside what \
                     is there (days twice); --replace deletes the archive there first, or give \
                     an empty prefix",
                    self.url,
                    existing.len()
                ),
            ));
        }
        let full = |p: &ObjectPath| format!("{}{}", self.shown_prefix, p);
        for location in &existing {
            let url = full(location);
            let is_archive = super::manifest::split_part(&url).is_some()
                || location.filename() == Some(super::manifest::MANIFEST_FILE);
            if !is_archive {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    format!(
                        "{url}: not part of an archive: --replace deletes only an archive's \
                         objects; move it away first"
                    ),
                ));
            }
        }
        // The manifest first: an archive half deleted is then one without a manifest.
        let mut ordered = existing;
        ordered.sort_by_key(|l| l.filename() != Some(super::manifest::MANIFEST_FILE));
        for location in ordered {
            runtime()
                .block_on(self.store.delete(&location))
                .map_err(failed)?;
        }
        Ok(())
    }

    /// Uploads each file written under `staging` (day folders of part files, the manifest) to
    /// the same place under the destination, the manifest last, so that the archive in the
    /// store is whole once its manifest is there. Each object is uploaded whole (multipart for
    /// large files) and appears only once complete; each file is removed from `staging` once
    /// uploaded. Gives the objects' URLs.
    pub fn upload(&self, staging: &std::path::Path) -> io::Result<Vec<String>> {
        let mut files: Vec<std::path::PathBuf> = walkdir::WalkDir::new(staging)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file() && e.file_name() != STAGED_FOR)
            .map(|e| e.into_path())
            .collect();
        files.sort_by_key(|f| {
            (
                f.file_name() == Some(std::ffi::OsStr::new(super::manifest::MANIFEST_FILE)),
                f.clone(),
            )
        });
        let mut urls = Vec::new();
        for file in files {
            let name = file
                .strip_prefix(staging)
                .map_err(io::Error::other)?
                .to_string_lossy()
                .replace('\\', "/");
            let key = self.key(&name);
            runtime()
                .block_on(async {
                    use tokio::io::AsyncWriteExt;
                    let mut source = tokio::fs::File::open(&file).await?;
                    let mut upload = object_store::buffered::BufWriter::new(
                        Arc::clone(&self.store),
                        key.clone(),
                    );
                    if let Err(e) = tokio::io::copy(&mut source, &mut upload).await {
                        let _ = upload.abort().await;
                        return Err(e);
                    }
                    upload.shutdown().await
                })
                .map_err(|e| {
                    // Said as a store's error is (no XML body, no request headers); a missing
                    // bucket names the destination.
                    let text = e.to_string();
                    if text.contains("NoSuchBucket") {
                        return io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("{}: not found (no such bucket)", self.url),
                        );
                    }
                    let line = text.lines().next().unwrap_or_default();
                    let line = line.split(": <?xml").next().unwrap_or(line);
                    io::Error::new(e.kind(), format!("{}{}: {line}", self.shown_prefix, key))
                })?;
            std::fs::remove_file(&file)?;
            urls.push(format!("{}{}", self.shown_prefix, key));
        }
        Ok(urls)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("s3://bucket/logs/"));
        assert!(is_url("file:///tmp/x"));
        assert!(!is_url("logs/2026-03-*.jsonl"));
        assert!(!is_url("./weird://name"));
    }

    #[test]
    fn an_unknown_scheme_is_named() {
        let error = expand("ftp://host/logs/").err().unwrap();
        assert_eq!(
            error.to_string(),
            "ftp://host/logs/: unknown scheme `ftp` (s3://, gs://, az://, file://, kafka://)"
        );
    }

    #[test]
    fn the_aws_shared_files_are_read_by_profile() {
        let text = "[default]\naws_access_key_id = A\n[profile ci]\nregion=eu-west-1\n";
        assert_eq!(
            ini_value(text, "default", "aws_access_key_id").as_deref(),
            Some("A")
        );
        assert_eq!(
            ini_value(text, "profile ci", "region").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(ini_value(text, "default", "region"), None);
    }

    #[test]
    fn fetched_ranges_serve_what_they_hold_and_refuse_the_rest() {
        use parquet::file::reader::ChunkReader;
        let fetched = Fetched {
            size: 100,
            pieces: Arc::new(vec![
                (10, Bytes::from_static(b"abcdef")),
                (50, Bytes::from_static(b"xyz")),
            ]),
        };
        assert_eq!(fetched.get_bytes(12, 3).unwrap().as_ref(), b"cde");
        assert_eq!(fetched.get_bytes(50, 3).unwrap().as_ref(), b"xyz");
        assert!(fetched.get_bytes(14, 4).is_err());
        assert!(fetched.get_bytes(0, 1).is_err());
    }
}
