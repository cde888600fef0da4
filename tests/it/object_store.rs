//! Inputs in object storage, against a real S3-compatible server (moto's server, started here
//! on 127.0.0.1; `scripts/install-test-deps.sh` installs it): logs and a Parquet archive
//! uploaded through the S3 API replay exactly as the same files on disk, by prefix and by glob;
//! and each way of naming the wrong thing says what and where. Azure Blob the same against
//! Azurite (npm), also started here.

use crate::TestEnv;
use crate::shard::{DETECT, write_exports};
use crate::util::eventually;
use object_store::ObjectStoreExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// A moto S3 server on a free port of 127.0.0.1, stopped on drop.
struct S3Server {
    child: Child,
    endpoint: String,
}

/// moto's server: `EXPOSURE_MOTO_SERVER`, `moto_server` on the PATH, or the module.
fn moto_server() -> Command {
    if let Ok(path) = std::env::var("EXPOSURE_MOTO_SERVER") {
        return Command::new(path);
    }
    let on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("moto_server"))
        .find(|p| p.exists());
    match on_path {
        Some(path) => Command::new(path),
        None => {
            let mut command = Command::new("python3");
            command.args(["-m", "moto.server"]);
            command
        }
    }
}

impl S3Server {
    fn start() -> S3Server {
        S3Server::start_with(&[])
    }

    /// A server started with `env` (moto's settings).
    fn start_with(env: &[(&str, &str)]) -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = moto_server()
            .envs(env.iter().copied())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto's server (`bash scripts/install-test-deps.sh` installs it)");
        let addr = format!("127.0.0.1:{port}");
        eventually(Duration::from_secs(30), || {
            crate::util::http_get(&addr, "/")
                .map(drop)
                .ok_or_else(|| "moto_server is not answering yet".to_string())
        });
        S3Server {
            child,
            endpoint: format!("http://{addr}"),
        }
    }

    /// The environment every client here is given (and nothing from the user's own).
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "exposure-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "exposure-test-secret".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent".into()),
            ("AWS_CONFIG_FILE", "/nonexistent".into()),
        ]
    }

    fn create_bucket(&self, bucket: &str) {
        use std::io::{Read, Write};
        let addr = self.endpoint.trim_start_matches("http://");
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    }

    /// Uploads every file under `dir` to `s3://bucket/prefix/…` through the S3 API.
    fn upload(&self, dir: &Path, bucket: &str, prefix: &str) {
        let store = self.store(bucket);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for entry in walkdir::WalkDir::new(dir) {
            let entry = entry.unwrap();
            if !entry.file_type().is_file() {
                continue;
            }
            let relative = entry.path().strip_prefix(dir).unwrap().to_string_lossy();
            let key = object_store::path::Path::from(format!("{prefix}/{relative}"));
            let bytes = std::fs::read(entry.path()).unwrap();
            runtime
                .block_on(store.put(&key, bytes.into()))
                .unwrap_or_else(|e| panic!("upload {key}: {e}"));
        }
    }
}

impl S3Server {
    /// A client of `bucket`, as exposure's are configured.
    fn store(&self, bucket: &str) -> object_store::aws::AmazonS3 {
        let mut builder = object_store::aws::AmazonS3Builder::new().with_bucket_name(bucket);
        for (key, value) in self.env() {
            if let Ok(key) = key.to_ascii_lowercase().parse() {
                builder = builder.with_config(key, value);
            }
        }
        builder.build().unwrap()
    }

    /// Deletes object `key` of `bucket`.
    fn delete(&self, bucket: &str, key: &str) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let location = object_store::path::Path::from(key);
        runtime
            .block_on(self.store(bucket).delete(&location))
            .unwrap_or_else(|e| panic!("delete {key}: {e}"));
    }

    /// The keys under `prefix` of `bucket`, relative to it, sorted.
    fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let (status, body) = crate::util::http_get(
            &self.endpoint,
            &format!("/{bucket}?list-type=2&prefix={prefix}"),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let mut keys: Vec<String> = body
            .split("<Key>")
            .skip(1)
            .filter_map(|k| k.split("</Key>").next())
            .map(|k| k.trim_start_matches(prefix).to_string())
            .collect();
        keys.sort();
        keys
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The files under `dir`, relative to it, sorted.
fn files_under(dir: &Path) -> Vec<String> {
    let files: std::collections::BTreeSet<String> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            e.path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.into_iter().collect()
}

/// Runs exposure in `env` with the server's environment.
fn exposure(env: &TestEnv, server: &S3Server, args: &[&str]) -> crate::Run {
    let mut command = env.command(args);
    store_env(&mut command, server.env());
    let output: Output = command.output().unwrap();
    crate::Run::from_output(output)
}

/// Gives `command` a test server's environment `vars`, and none of the user's own cloud
/// settings.
fn store_env<'c>(command: &'c mut Command, vars: Vec<(&'static str, String)>) -> &'c mut Command {
    for (key, _) in std::env::vars() {
        if ["AWS_", "AZURE_", "AZURITE_", "GOOGLE_"]
            .iter()
            .any(|prefix| key.starts_with(prefix))
        {
            command.env_remove(key);
        }
    }
    command.envs(vars)
}

fn replay(env: &TestEnv, server: &S3Server, inputs: &[&str]) -> String {
    let mut args = vec!["replay", "-q"];
    args.extend_from_slice(DETECT);
    args.extend_from_slice(inputs);
    let run = exposure(env, server, &args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stdout.is_empty());
    run.stdout
}

#[test]
fn logs_and_archives_in_s3_replay_as_the_same_files_on_disk() {
    let env = TestEnv::new();
    let server = S3Server::start();
    server.create_bucket("acme-logs");
    write_exports(&env);
    // One export gzipped, as shippers write them.
    let plain = env.path("logs/dt=1/eu.jsonl");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &std::fs::read(&plain).unwrap()).unwrap();
    std::fs::remove_file(&plain).unwrap();
    env.write("logs/dt=1/eu.jsonl.gz", gz.finish().unwrap());
    server.upload(&env.path("logs"), "acme-logs", "access/logs");

    let local = replay(&env, &server, &["logs/"]);
    assert_eq!(
        replay(&env, &server, &["s3://acme-logs/access/logs/"]),
        local,
        "a prefix"
    );
    assert_eq!(
        replay(&env, &server, &["s3://acme-logs/access/logs/dt=*/*.jsonl*"]),
        local,
        "a glob"
    );
    assert_eq!(
        replay(&env, &server, &["logs/dt=2/us.jsonl"]),
        replay(&env, &server, &["s3://acme-logs/access/logs/dt=2/us.jsonl"]),
        "one object"
    );

    // A Parquet archive: footers and row groups read by ranges.
    let run = exposure(
        &env,
        &server,
        &["archive", "--out", "archive", "-q", "logs/"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    server.upload(&env.path("archive"), "acme-logs", "archive");
    let archive = replay(&env, &server, &["archive/"]);
    assert_eq!(archive, local, "the archive replays as its logs");
    assert_eq!(replay(&env, &server, &["s3://acme-logs/archive/"]), archive);
    // --since: day folders wholly before it are not even listed for reading.
    let since = ["--since", "2026-03-04T12:00:00Z"];
    let recent = |inputs: &[&str]| {
        let mut args = vec!["replay"];
        args.extend_from_slice(DETECT);
        args.extend_from_slice(&since);
        args.extend_from_slice(inputs);
        exposure(&env, &server, &args)
    };
    let from_logs = recent(&["logs/"]);
    let from_store = recent(&["s3://acme-logs/archive/"]);
    assert_eq!(from_logs.code, 0, "{}", from_logs.stderr);
    assert!(!from_logs.stdout.is_empty());
    assert_eq!(from_store.stdout, from_logs.stdout);
    assert!(
        from_store
            .stderr
            .contains("1 files in dt= folders outside --since/--until not read"),
        "{}",
        from_store.stderr
    );
    assert_eq!(recent(&["archive/"]).stdout, from_logs.stdout);

    // Sharded from the store too.
    let shard = |k: &str| {
        let mut args = vec!["replay", "--shard", k];
        args.extend_from_slice(DETECT);
        args.push("s3://acme-logs/archive/");
        let run = exposure(&env, &server, &args);
        assert_eq!(run.code, 0, "{}", run.stderr);
        env.write(&format!("s{}.jsonl", &k[..1]), run.stdout);
    };
    shard("1/2");
    shard("2/2");
    let merged = exposure(&env, &server, &["merge", "s1.jsonl", "s2.jsonl"]);
    assert_eq!(merged.stdout, archive);

    // `archive --out` a store: the same layout, and the same alerts back.
    let run = exposure(
        &env,
        &server,
        &[
            "archive",
            "--out",
            "s3://acme-logs/exported/",
            "-q",
            "logs/",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        replay(&env, &server, &["s3://acme-logs/exported/"]),
        local,
        "archived to the store, replayed from it"
    );
    assert_eq!(
        server.keys("acme-logs", "exported/"),
        files_under(&env.path("archive"))
    );
    // Archiving again into it: refused (no part added); --replace writes it anew.
    let again = [
        "archive",
        "--out",
        "s3://acme-logs/exported/",
        "-q",
        "logs/",
    ];
    exposure(&env, &server, &again).expect(1, "s3://acme-logs/exported/: not empty");
    let replaced = exposure(&env, &server, &[&again[..], &["--replace"]].concat());
    assert_eq!(replaced.code, 0, "{}", replaced.stderr);
    assert_eq!(
        server.keys("acme-logs", "exported/"),
        files_under(&env.path("archive"))
    );
    // An archive in a store that lost its manifest is refused, named, like one on disk.
    server.delete("acme-logs", "exported/_manifest.json");
    let mut args = vec!["replay"];
    args.extend_from_slice(DETECT);
    args.push("s3://acme-logs/exported/");
    let refused = exposure(&env, &server, &args);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("s3://acme-logs/exported: an archive without its manifest"),
        "{}",
        refused.stderr
    );
    assert!(refused.stdout.is_empty());
}

#[test]
fn a_wrong_url_or_missing_credentials_say_what_and_where() {
    let env = TestEnv::new();
    let server = S3Server::start();
    server.create_bucket("acme-logs");
    env.write("x/a.jsonl", crate::util::read_line("alice", "hr.salaries"));
    server.upload(&env.path("x"), "acme-logs", "x");

    exposure(&env, &server, &["replay", "ftp://host/logs/"]).expect(
        2,
        "ftp://host/logs/: unknown scheme `ftp` (s3://, gs://, az://, file://, kafka://)",
    );
    exposure(&env, &server, &["replay", "s3://no-such-bucket/logs/"]).expect(
        1,
        "s3://no-such-bucket/logs/: not found (no such bucket or object)",
    );
    exposure(&env, &server, &["replay", "s3://acme-logs/nothing-here/"])
        .expect(1, "s3://acme-logs/nothing-here/: no file matches");
    // The other inputs are still read.
    let partly = exposure(
        &env,
        &server,
        &["replay", "s3://no-such-bucket/", "s3://acme-logs/x/"],
    );
    partly.expect(1, "s3://no-such-bucket/: not found");
    assert!(
        partly.stderr.contains("1 input, 1 events"),
        "{}",
        partly.stderr
    );

    let mut command = env.command(&["replay", "s3://acme-logs/x/"]);
    for (key, value) in server.env() {
        if !key.starts_with("AWS_ACCESS_KEY_ID") && !key.starts_with("AWS_SECRET") {
            command.env(key, value);
        }
    }
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    let run = crate::Run::from_output(command.output().unwrap());
    run.expect(
        1,
        "s3://acme-logs/x/: no credentials: set AWS_ACCESS_KEY_ID",
    );
    assert!(!run.stderr.contains("exposure-test-secret"));
}

#[test]
fn credentials_the_store_refuses_are_named_as_such() {
    // moto checks signatures against its own users once this many requests went unchecked
    // (the readiness probe's and the bucket's creation); the test's keys are nobody's.
    let server = S3Server::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "2")]);
    server.create_bucket("secure");
    let env = TestEnv::new();
    let run = exposure(&env, &server, &["replay", "s3://secure/logs/"]);
    run.expect(
        1,
        "s3://secure/logs/: credentials refused (InvalidAccessKeyId or SignatureDoesNotMatch)",
    );
    assert!(
        !run.stderr.contains("exposure-test-secret"),
        "{}",
        run.stderr
    );
}

#[test]
fn on_a_terminal_replay_shows_the_bytes_read_of_the_total_and_the_events() {
    let env = TestEnv::new();
    let server = S3Server::start();
    server.create_bucket("acme-logs");
    let mut logs = String::new();
    for i in 0..20_000 {
        logs.push_str(&format!(
            "{{\"ts\":\"2026-03-02T00:{:02}:{:02}Z\",\"principal\":\"emp{}\",\"table\":\"hr.t{}\",\"action\":\"SELECT\"}}\n",
            i / 600 % 60,
            i / 10 % 60,
            i % 40,
            i % 7
        ));
    }
    env.write("logs/dt=2026-03-02/a.jsonl", &logs);
    env.write("logs/dt=2026-03-02/b.jsonl", &logs);
    server.upload(&env.path("logs"), "acme-logs", "logs");
    // `script` gives the run a terminal (util-linux, on every Debian); what it drew is its
    // stdout.
    let mut command = Command::new("script");
    command
        .args(["-qec"])
        .arg(format!(
            "{} replay s3://acme-logs/logs/ > /dev/null",
            env!("CARGO_BIN_EXE_exposure")
        ))
        .arg("/dev/null")
        .current_dir(env.path(""));
    store_env(&mut command, server.env());
    let output = command.output().unwrap();
    let drawn = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{drawn}");
    let total = (2 * logs.len()) as f64 / 1024.0 / 1024.0;
    for shown in [
        format!("] {total:.2} MiB/{total:.2} MiB "),
        "MiB/s, eta".to_string(),
        "40,000 events (".to_string(),
        "input 2/2, at 2026-03-02T00:".to_string(),
    ] {
        assert!(drawn.contains(&shown), "`{shown}` in {drawn}");
    }
}

/// Sets up, through the S3 and IAM APIs (boto3, which moto's server comes with), bucket
/// `secure` holding `logs/a.jsonl`, and user `auditor` allowed `actions` only; gives the
/// user's access key and secret.
fn user_allowed_only(server: &S3Server, actions: &[&str]) -> (String, String) {
    let script = r#"
import boto3, json, sys
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id="exposure-test", aws_secret_access_key="exposure-test-secret")
s3, iam = boto3.client("s3", **kw), boto3.client("iam", **kw)
s3.create_bucket(Bucket="secure")
s3.put_object(Bucket="secure", Key="logs/a.jsonl", Body=sys.argv[3].encode())
iam.create_user(UserName="auditor")
policy = {"Version": "2012-10-17",
          "Statement": [{"Effect": "Allow", "Action": json.loads(sys.argv[2]), "Resource": "*"}]}
iam.put_user_policy(UserName="auditor", PolicyName="p", PolicyDocument=json.dumps(policy))
key = iam.create_access_key(UserName="auditor")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
"#;
    let output = Command::new("python3")
        .args(["-c", script, &server.endpoint])
        .arg(serde_json::to_string(actions).unwrap())
        .arg(crate::util::read_line("alice", "hr.salaries"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let (id, secret) = text.trim().split_once(' ').unwrap();
    (id.to_string(), secret.to_string())
}

#[test]
fn access_the_store_denies_is_named_as_such_and_nothing_is_half_read() {
    // Globs whose literal prefix has no `/`: moto checks the signature of a listing against
    // its prefix decoded, so a `%2F` in it never matches (boto3's fail the same way).
    for (actions, url, says) in [
        (
            vec!["s3:GetObject"],
            "s3://secure/log*/*.jsonl",
            "s3://secure/log*/*.jsonl: access denied",
        ),
        (
            vec!["s3:ListBucket"],
            "s3://secure/log*/*.jsonl",
            "s3://secure/logs/a.jsonl: cannot open: access denied",
        ),
    ] {
        // moto checks every request against its IAM users once this many went unchecked:
        // the readiness probe's and the five of the set-up.
        let server = S3Server::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "6")]);
        let (id, secret) = user_allowed_only(&server, &actions);
        let env = TestEnv::new();
        let mut command = env.command(&["replay", url]);
        store_env(&mut command, server.env());
        command
            .env("AWS_ACCESS_KEY_ID", &id)
            .env("AWS_SECRET_ACCESS_KEY", &secret);
        let run = crate::Run::from_output(command.output().unwrap());
        run.expect(1, says);
        assert!(run.stdout.is_empty(), "no alert from what was not read");
        assert!(!run.stderr.contains(&secret), "{}", run.stderr);
    }
}

#[test]
fn an_interrupted_upload_is_resumed_from_its_staging_folder() {
    let env = TestEnv::new();
    let server = S3Server::start();
    write_exports(&env);
    std::fs::create_dir_all(env.path("tmp")).unwrap();
    let archive_to = |args: &[&str]| {
        let mut command = env.command(args);
        store_env(&mut command, server.env()).env("TMPDIR", env.path("tmp"));
        crate::Run::from_output(command.output().unwrap())
    };
    // The bucket is not there yet: the upload fails, and keeps what it staged.
    let failed = archive_to(&["archive", "--out", "s3://acme-logs/exported/", "logs/"]);
    failed.expect(1, "s3://acme-logs/exported/: not found");
    let staging = std::fs::read_dir(env.path("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("exposure-archive-")
        })
        .expect("the staging folder is kept");
    let staging = staging.to_str().unwrap();
    assert!(
        failed.stderr.contains(&format!(
            "`exposure archive --resume {staging} --out s3://acme-logs/exported/` uploads them"
        )),
        "{}",
        failed.stderr
    );
    // Resumed to somewhere else, or from a folder that is not one: refused, nothing sent.
    archive_to(&[
        "archive",
        "--resume",
        staging,
        "--out",
        "s3://acme-logs/other/",
    ])
    .expect(
        1,
        "staged for s3://acme-logs/exported/, not s3://acme-logs/other/",
    );
    archive_to(&[
        "archive",
        "--resume",
        "logs",
        "--out",
        "s3://acme-logs/exported/",
    ])
    .expect(1, "not a staging folder of a finished archive");

    server.create_bucket("acme-logs");
    let resumed = archive_to(&[
        "archive",
        "--resume",
        staging,
        "--out",
        "s3://acme-logs/exported/",
    ]);
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(
        !Path::new(staging).exists(),
        "the staging folder is gone once uploaded"
    );
    let run = exposure(
        &env,
        &server,
        &["archive", "--out", "archive", "-q", "logs/"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        server.keys("acme-logs", "exported/"),
        files_under(&env.path("archive"))
    );
    assert_eq!(
        replay(&env, &server, &["s3://acme-logs/exported/"]),
        replay(&env, &server, &["logs/"]),
        "the resumed archive replays as its logs"
    );
}

/// Azurite's well-known development account and key (public, in Microsoft's documentation).
const AZURITE_ACCOUNT: &str = "devstoreaccount1";
const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Azurite's Blob service on a free port of 127.0.0.1 (`scripts/install-test-deps.sh`
/// installs it from npm), its data in a temp dir; stopped on drop.
struct AzureServer {
    child: Child,
    url: String,
    _data: tempfile::TempDir,
}

impl AzureServer {
    fn start() -> AzureServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = tempfile::tempdir().unwrap();
        let program =
            std::env::var("EXPOSURE_AZURITE").unwrap_or_else(|_| "azurite-blob".to_string());
        let child = Command::new(program)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .arg("--location")
            .arg(data.path())
            .args(["--silent", "--skipApiVersionCheck", "--loose"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Azurite (`bash scripts/install-test-deps.sh` installs it)");
        let addr = format!("127.0.0.1:{port}");
        eventually(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&addr)
                .map(drop)
                .map_err(|e| format!("Azurite is not answering yet: {e}"))
        });
        AzureServer {
            child,
            url: format!("http://{addr}"),
            _data: data,
        }
    }

    /// What a client of the emulator is given (its well-known account and key are the
    /// client's defaults), and nothing from the user's own environment.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".into()),
            ("AZURITE_BLOB_STORAGE_URL", self.url.clone()),
        ]
    }

    /// Creates `container`: a request signed with the emulator's well-known shared key
    /// (object_store has no call for it), by Python's standard library.
    fn create_container(&self, container: &str) {
        let script = r#"
import base64, hmac, hashlib, sys, urllib.request
from email.utils import formatdate
url, container, account, key = sys.argv[1], sys.argv[2], sys.argv[3], base64.b64decode(sys.argv[4])
date, version = formatdate(usegmt=True), "2021-08-06"
signed = ("PUT" + "\n" * 12 + f"x-ms-date:{date}\nx-ms-version:{version}\n"
          + f"/{account}/{account}/{container}\nrestype:container")
signature = base64.b64encode(hmac.new(key, signed.encode(), hashlib.sha256).digest()).decode()
request = urllib.request.Request(
    f"{url}/{account}/{container}?restype=container", method="PUT",
    headers={"x-ms-date": date, "x-ms-version": version, "Content-Length": "0",
             "Authorization": f"SharedKey {account}:{signature}"})
print(urllib.request.urlopen(request).status)
"#;
        let output = Command::new("python3")
            .args([
                "-c",
                script,
                &self.url,
                container,
                AZURITE_ACCOUNT,
                AZURITE_KEY,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "create container {container}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Uploads every file under `dir` to `az://container/prefix/…` through the Blob API.
    fn upload(&self, dir: &Path, container: &str, prefix: &str) {
        // As any Azure account, at the emulator's URL (in emulator mode the client takes that
        // URL from the environment only).
        let store = object_store::azure::MicrosoftAzureBuilder::new()
            .with_container_name(container)
            .with_account(AZURITE_ACCOUNT)
            .with_access_key(AZURITE_KEY)
            .with_endpoint(format!("{}/{AZURITE_ACCOUNT}", self.url))
            .with_allow_http(true)
            .build()
            .unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        for entry in walkdir::WalkDir::new(dir) {
            let entry = entry.unwrap();
            if entry.file_type().is_file() {
                let relative = entry.path().strip_prefix(dir).unwrap().to_string_lossy();
                let key = object_store::path::Path::from(format!("{prefix}/{relative}"));
                let bytes = std::fs::read(entry.path()).unwrap();
                runtime
                    .block_on(store.put(&key, bytes.into()))
                    .unwrap_or_else(|e| panic!("upload {key}: {e}"));
            }
        }
    }

    fn exposure(&self, env: &TestEnv, args: &[&str]) -> crate::Run {
        let mut command = env.command(args);
        store_env(&mut command, self.env());
        crate::Run::from_output(command.output().unwrap())
    }
}

impl Drop for AzureServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn logs_and_archives_in_azure_blob_replay_as_the_same_files_on_disk() {
    let env = TestEnv::new();
    let server = AzureServer::start();
    server.create_container("acme");
    write_exports(&env);
    server.upload(&env.path("logs"), "acme", "access/logs");
    let replay = |input: &str| {
        let mut args = vec!["replay", "-q"];
        args.extend_from_slice(DETECT);
        args.push(input);
        let run = server.exposure(&env, &args);
        assert_eq!(run.code, 0, "{input}: {}", run.stderr);
        assert!(!run.stdout.is_empty());
        run.stdout
    };
    let local = replay("logs/");
    assert_eq!(replay("az://acme/access/logs/"), local, "a prefix");
    assert_eq!(
        replay("az://acme/access/logs/dt=*/*.jsonl"),
        local,
        "a glob"
    );
    // `archive --out` a container, then replay its Parquet by ranges.
    let run = server.exposure(
        &env,
        &["archive", "-q", "--out", "az://acme/archive/", "logs/"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        replay("az://acme/archive/"),
        local,
        "archived to Azure, replayed from it"
    );
    server
        .exposure(&env, &["replay", "az://no-such-container/logs/"])
        .expect(1, "az://no-such-container/logs/: not found");
}

#[test]
fn an_object_that_vanishes_mid_replay_is_named_and_the_rest_is_kept() {
    let env = TestEnv::new();
    let server = S3Server::start();
    server.create_bucket("acme-logs");
    // Day 1: 400 tables learned by two readers, then exposed to three newcomers each — 800
    // alerts, far more than a pipe holds; days 2 to 5: one read a day.
    let mut logs = String::new();
    let line = |ts: &str, who: &str, table: &str| {
        format!(
            "{{\"ts\":\"{ts}\",\"principal\":\"{who}\",\"table\":\"{table}\",\"action\":\"SELECT\"}}\n"
        )
    };
    for t in 0..400 {
        let table = format!("wh.t{t:03}");
        for who in ["a", "b"] {
            logs.push_str(&line("2026-03-02T00:00:00Z", who, &table));
        }
        for who in ["n1", "n2", "n3"] {
            logs.push_str(&line("2026-03-02T02:00:00Z", who, &table));
        }
    }
    for day in 3..=6 {
        logs.push_str(&line(&format!("2026-03-0{day}T12:00:00Z"), "a", "wh.t000"));
    }
    env.write("logs/all.jsonl", &logs);
    let run = exposure(
        &env,
        &server,
        &["archive", "-q", "--out", "archive", "logs/"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    server.upload(&env.path("archive"), "acme-logs", "archive");
    let args = [
        "replay",
        "--threads",
        "1",
        "--learn",
        "1h",
        "--span",
        "10m",
        "--min-principals",
        "3",
        "--close-after",
        "30m",
    ];
    let mut local_args = args.to_vec();
    local_args.push("archive/");
    let whole = exposure(&env, &server, &local_args);
    assert_eq!(whole.code, 0, "{}", whole.stderr);

    // Replay from the store with stdout unread: it stops on a full pipe within day 1, its
    // footers read and the last day's row group not fetched yet. Then that object goes.
    let mut command = env.command(&args);
    command.arg("s3://acme-logs/archive/");
    store_env(&mut command, server.env());
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wchan = format!("/proc/{}/wchan", child.id());
    eventually(Duration::from_secs(30), || {
        let waits = std::fs::read_to_string(&wchan).unwrap_or_default();
        waits
            .ends_with("pipe_write")
            .then_some(())
            .ok_or_else(|| format!("not blocked on its output yet ({waits})"))
    });
    let last = "archive/dt=2026-03-06/part-00000.parquet";
    server.delete("acme-logs", last);
    let output = child.wait_with_output().unwrap();
    let run = crate::Run::from_output(output);
    run.expect(1, &format!("s3://acme-logs/{last}"));
    assert!(run.stderr.contains("not found"), "{}", run.stderr);
    // Everything read before it is kept: the alerts of the days before are all there.
    let kept: Vec<&str> = run.stdout.lines().collect();
    let expected: Vec<&str> = whole.stdout.lines().collect();
    assert!(kept.len() >= 800, "{} alerts kept", kept.len());
    assert_eq!(kept, expected[..kept.len()], "the same alerts, in order");
}
