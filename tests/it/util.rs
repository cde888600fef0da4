//! Shared helpers of the integration tests: [`TestEnv`] runs the real binary in a temp dir,
//! [`repo`] finds fixtures, [`Watcher`] runs `exposure watch` and waits for what it does —
//! ready (its `watching` line, logged once the inputs are positioned and checkpointed), lines
//! read (its `/metrics`), alerts (its stdout) — instead of sleeping.

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A temp dir and a way to run the binary in it.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

/// What a run of the binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(output: Output) -> Run {
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the exit code and that stderr says `says`.
    pub fn expect(&self, code: i32, says: &str) {
        assert_eq!(self.code, code, "{}", self.stderr);
        assert!(self.stderr.contains(says), "{}", self.stderr);
    }

    /// The alert lines on stdout, parsed.
    pub fn alerts(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl TestEnv {
    /// A fresh temporary directory; kept after the test (and named on stderr) when
    /// `EXPOSURE_KEEP_TEST_DIRS` is set, to read a failed run's logs and states.
    pub fn new() -> TestEnv {
        let keep = std::env::var_os("EXPOSURE_KEEP_TEST_DIRS").is_some();
        let dir = tempfile::Builder::new()
            .prefix("exposure-test-")
            .disable_cleanup(keep)
            .tempdir()
            .expect("temp dir");
        if keep {
            eprintln!("test directory kept: {}", dir.path().display());
        }
        TestEnv { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `name` (creating its folders) and gives its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().expect("in the temp dir")).expect("create folders");
        std::fs::write(&path, contents).expect("write test file");
        path
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_exposure"));
        cmd.args(args).current_dir(self.dir.path());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from_output(self.command(args).output().expect("run exposure"))
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn exposure");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin)
            .expect("feed stdin");
        Run::from_output(child.wait_with_output().expect("wait"))
    }
}

/// The repository root (for sample-logs/ and tests/data/).
/// The checkpoint in state dir `state` as JSON (whole: its base and change logs folded), as
/// `watch` would restore it; `None` when there is none yet or it cannot be read right now.
pub fn checkpoint(state: &Path) -> Option<Value> {
    let dir = exposure::state::StateDir::new(state);
    let checkpoint = exposure::live::checkpoint::Checkpoint::load(&dir).ok()??;
    serde_json::to_value(checkpoint).ok()
}

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The configuration a [`Watcher`] runs with unless the test wrote its own `watch.toml`: short
/// spans so that windows open and close within a test.
pub const CONFIG: &str = r#"
[detect]
learn = "0s"
min_principals = 3
span = "10m"
close_after = "2s"
lateness = "1s"
allow = ["svc-*"]
"#;

/// A running `exposure watch` whose stdout is collected line by line.
pub struct Watcher {
    pub child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Its log (stderr), as far as written.
    logs: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    /// Where its `/metrics` and `/ready` are served.
    pub metrics_addr: String,
}

/// How long a watcher may take to say it is watching.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

impl Watcher {
    pub fn start(env: &TestEnv, extra: &[&str]) -> Watcher {
        Watcher::start_with(env, extra, Stdio::null())
    }

    pub fn start_with(env: &TestEnv, extra: &[&str], stdin: Stdio) -> Watcher {
        Watcher::start_full(env, extra, stdin, &[])
    }

    /// With `vars` set in the watcher's environment.
    pub fn start_env(env: &TestEnv, extra: &[&str], vars: &[(&str, &str)]) -> Watcher {
        Watcher::start_full(env, extra, Stdio::null(), vars)
    }

    fn start_full(env: &TestEnv, extra: &[&str], stdin: Stdio, vars: &[(&str, &str)]) -> Watcher {
        if !env.path("watch.toml").exists() {
            env.write("watch.toml", CONFIG);
        }
        let mut args = vec![
            "watch",
            "--config",
            "watch.toml",
            "--state-dir",
            "state",
            "--log-level",
            "info",
        ];
        // Checkpoints often, unless the test says otherwise.
        if !extra.contains(&"--checkpoint-every") {
            args.extend_from_slice(&["--checkpoint-every", "100ms"]);
        }
        args.extend_from_slice(extra);
        // Always served (on a free port unless the test chose one), so tests can wait on it.
        if !extra.contains(&"--metrics-addr") {
            args.extend_from_slice(&["--metrics-addr", "127.0.0.1:0"]);
        }
        let mut child = env
            .command(&args)
            .envs(vars.iter().copied())
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start exposure watch");
        // Ready once it says `watching` (the files are open, the sinks started); its log is
        // passed on to the test's output.
        let stderr = child.stderr.take().unwrap();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let log_sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("serving metrics") {
                    let addr = line.rsplit("addr=").next().unwrap_or_default();
                    let _ = addr_tx.send(addr.trim().to_string());
                }
                if line.contains(" watching") {
                    let _ = ready_tx.send(());
                }
                eprintln!("{line}");
                log_sink.lock().unwrap().push(line);
            }
        });
        let stdout = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut watcher = Watcher {
            child,
            lines,
            logs,
            reader: Some(reader),
            metrics_addr: String::new(),
        };
        if ready_rx.recv_timeout(READY_TIMEOUT).is_err() {
            let status = watcher.child.try_wait().unwrap();
            panic!("exposure watch did not get ready in {READY_TIMEOUT:?} (exit: {status:?})");
        }
        watcher.metrics_addr = addr_rx
            .try_recv()
            .expect("metrics served before `watching`");
        watcher
    }

    /// The value of metric `exposure_{name}` now (`None` if not served).
    pub fn metric(&self, name: &str) -> Option<f64> {
        let (status, body) = http_get(&self.metrics_addr, "/metrics")?;
        assert_eq!(status, 200, "{body}");
        let prefix = format!("exposure_{name} ");
        body.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|v| v.trim().parse().ok())
    }

    /// The lines taken in so far: events, malformed and not-access records.
    fn lines_taken(&self) -> u64 {
        [
            "events_read_total",
            "malformed_total",
            "not_access_total",
            "unattributable_total",
        ]
        .iter()
        .map(|m| self.metric(m).unwrap_or(0.0) as u64)
        .sum::<u64>()
    }

    /// Waits until the watcher has taken in `lines` lines (events, malformed and not-access
    /// records) in all; panics after a while.
    pub fn wait_lines(&self, lines: u64) {
        eventually(READY_TIMEOUT, || {
            let n = self.lines_taken();
            (n >= lines)
                .then_some(())
                .ok_or(format!("read {n} of {lines} lines"))
        });
    }

    /// Appends `bytes` (whole lines) to `path` and waits until the watcher has taken them in.
    pub fn append_and_wait(&self, path: &Path, bytes: impl AsRef<[u8]>) {
        let bytes = bytes.as_ref();
        let before = self.lines_taken();
        append(path, bytes);
        self.wait_lines(before + bytes.iter().filter(|b| **b == b'\n').count() as u64);
    }

    pub fn alerts(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    /// Waits until an alert satisfies `want`; panics after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, want: impl Fn(&Value) -> bool) -> Value {
        eventually(timeout, || {
            self.alerts()
                .into_iter()
                .find(&want)
                .ok_or_else(|| format!("no {what} alert; got {:?}", self.lines.lock().unwrap()))
        })
    }

    /// SIGTERM, and the exit status.
    pub fn stop(mut self) -> (i32, Vec<String>) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = self.child.wait().unwrap().code().unwrap_or(-1);
        self.reader.take().unwrap().join().unwrap();
        let lines = self.lines.lock().unwrap().clone();
        (code, lines)
    }

    /// Its log lines so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Lets it run for `time`, then `kill -9` (a kill point chosen by a test).
    pub fn kill9_after(mut self, time: Duration) -> Vec<String> {
        let exited = run_for(&mut self.child, time);
        assert!(exited.is_none(), "the watcher ended by itself: {exited:?}");
        self.kill9()
    }

    pub fn kill9(mut self) -> Vec<String> {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.reader.take().unwrap().join().unwrap();
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

pub fn read_line(principal: &str, table: &str) -> String {
    format!(
        "{{\"ts\":\"{}\",\"principal\":\"{principal}\",\"table\":\"{table}\",\"action\":\"SELECT\"}}\n",
        now_rfc3339()
    )
}

pub fn append(path: &Path, bytes: impl AsRef<[u8]>) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(bytes.as_ref()).unwrap();
}

/// `GET path` from `addr` (host:port or a URL): the status and the body.
pub fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::Read;
    let addr = addr.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// Polls `check` until it gives a value; panics with its last complaint after `timeout`.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Result<T, String>) -> T {
    let mut last = None;
    let got = poll_until(timeout, || match check() {
        Ok(value) => Some(value),
        Err(why) => {
            last = Some(why);
            None
        }
    });
    got.unwrap_or_else(|| panic!("after {timeout:?}: {}", last.unwrap_or_default()))
}

/// Polls `check` until it gives a value or `timeout` passes. The one polling loop of the tests
/// (and their one `sleep`, its interval): they wait for what they need, never for a fixed time.
pub fn poll_until<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if start.elapsed() >= timeout {
            return None;
        }
        // Fine enough for a kill point, coarse enough not to load the machine.
        std::thread::sleep(
            (timeout / 100).clamp(Duration::from_millis(1), Duration::from_millis(20)),
        );
    }
}

/// Lets `child` run for `time` (a kill point chosen by a test), returning early with its
/// status if it ends first; `None` if it is still running.
pub fn run_for(child: &mut Child, time: Duration) -> Option<std::process::ExitStatus> {
    poll_until(time, || child.try_wait().unwrap())
}

/// A CloudTrail S3 data event, as CloudTrail writes it.
pub fn cloudtrail_read(time: &str, user: &str, region: &str, key: &str) -> serde_json::Value {
    serde_json::json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": format!("AIDA{user}"),
            "arn": format!("arn:aws:iam::123456789012:user/{user}"),
            "accountId": "123456789012",
            "userName": user
        },
        "eventTime": time,
        "eventSource": "s3.amazonaws.com",
        "eventName": "GetObject",
        "awsRegion": region,
        "requestParameters": {"bucketName": "hr-exports", "key": key},
        "readOnly": true,
        "resources": [{"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::hr-exports/{key}")}],
        "eventType": "AwsApiCall",
        "managementEvent": false,
        "eventCategory": "Data"
    })
}

/// Writes `records` as one gzipped CloudTrail log file.
pub fn cloudtrail_file(env: &TestEnv, name: &str, records: Vec<serde_json::Value>) {
    let path = env.path(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, gzipped_document(records)).unwrap();
}

/// `records` as one gzipped CloudTrail log file's bytes.
pub fn gzipped_document(records: Vec<serde_json::Value>) -> Vec<u8> {
    let document = serde_json::json!({ "Records": records }).to_string();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(document.as_bytes()).unwrap();
    gz.finish().unwrap()
}

/// A tiny deterministic generator for test data (no dependency, the same data on every run).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A port on 127.0.0.1 that refuses connections, and that no other test can take until it
/// [`DownPort::comes_up`]: a socket bound to it, not listening. (A port found free and let go
/// can be bound by another test running meanwhile, whose server then answers what was meant to
/// find nothing there.)
pub struct DownPort {
    socket: socket2::Socket,
    pub port: u16,
}

impl DownPort {
    pub fn new() -> DownPort {
        use socket2::{Domain, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        let any_port: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        socket.bind(&any_port.into()).unwrap();
        let port = socket.local_addr().unwrap().as_socket().unwrap().port();
        DownPort { socket, port }
    }

    /// The endpoint comes back: the same socket starts listening (the port never free between).
    pub fn comes_up(self) -> std::net::TcpListener {
        self.socket.listen(128).unwrap();
        self.socket.into()
    }
}
