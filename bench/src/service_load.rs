//! A bounded load test of the store service on loopback: a real
//! `riverbed-store serve` process, concurrent gRPC clients, a fixed
//! duration per phase, and the figures the service issue sets goals for.
//!
//! 1. Batched writes: each client writes batches of `batch` entries
//!    (16-byte keys, 100-byte values) to the open epoch; entries/s over all.
//! 2. Multi-get of 100 keys that the store has in its block cache (the
//!    keys were written, committed and read once before the clock starts);
//!    latency per call, p50/p99.
//! 3. Queryable point lookups while a Nexmark query writes to the same
//!    store: `riverbed-nexmark run --query q20 --state remote://…` runs as
//!    its own process (under `nice -n N` with `--job-nice N`, as a batch job
//!    beside a serving store would), and one client looks up auctions of
//!    its join state (`Query`, table `q20-join`) from a current-thread
//!    runtime, as `riverbed-store query` does; latency per lookup, p50/p99.
//!
//! Beside each latency seen by the clients, the store's own: the bucket of
//! its request histogram (`/metrics`) the percentile falls in. What lies
//! between the two is the network stack and the scheduling of the client's
//! and the server's threads on the machine's cores.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use riverbed_state_store::grpc::client::{connect_error, endpoint};
use riverbed_state_store::grpc::pb;
use riverbed_state_store::grpc::pb::state_store_client::StateStoreClient;
use serde::Serialize;
use tonic::transport::Channel;

use crate::timing::Stopwatch;

/// What a run is asked to do.
pub struct LoadArgs {
    /// `riverbed-store` and `riverbed-nexmark` binaries.
    pub store_bin: PathBuf,
    pub nexmark_bin: PathBuf,
    pub clients: usize,
    pub duration: Duration,
    pub batch: usize,
    /// Events of the q20 run the lookups race.
    pub events: u64,
    /// Nice value the q20 run starts with (0: the same priority as the
    /// store and the clients).
    pub job_nice: i32,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub calls: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Percentiles of one method in the store's own request histogram: the
/// upper bound of the bucket each falls in (`None` past the last bound).
#[derive(Debug, Serialize)]
pub struct ServerLatency {
    pub calls: u64,
    pub p50_le_ms: Option<f64>,
    pub p99_le_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct LoadReport {
    pub clients: usize,
    pub duration_s: f64,
    pub write_batch: usize,
    pub write_entries_per_s: f64,
    pub write_batch_latency: Latency,
    pub multi_get_100_latency: Latency,
    pub multi_get_100_in_server: Option<ServerLatency>,
    pub lookup_latency_while_q20_writes: Latency,
    pub lookup_in_server: Option<ServerLatency>,
    pub job_nice: i32,
    /// Lookups that found the auction (the rest were not there yet).
    pub lookups_found: u64,
    pub q20_events: u64,
}

fn latency(mut ms: Vec<f64>) -> Latency {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        if ms.is_empty() {
            return 0.0;
        }
        ms[((ms.len() as f64 * q).ceil() as usize).clamp(1, ms.len()) - 1]
    };
    Latency {
        calls: ms.len() as u64,
        p50_ms: at(0.50),
        p99_ms: at(0.99),
    }
}

/// `method`'s percentiles in the store's `/metrics` text.
fn server_latency(metrics: &str, method: &str) -> Option<ServerLatency> {
    let prefix =
        format!("riverbed_store_request_duration_seconds_bucket{{method=\"{method}\",le=\"");
    // Cumulative counts by upper bound, +Inf last.
    let buckets: Vec<(Option<f64>, u64)> = metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = le.parse::<f64>().ok().filter(|v| v.is_finite());
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    let calls = buckets.last()?.1;
    if calls == 0 {
        return None;
    }
    let at = |q: f64| {
        let rank = (calls as f64 * q).ceil() as u64;
        buckets
            .iter()
            .find(|(_, c)| *c >= rank)
            .and_then(|(le, _)| le.map(|s| s * 1e3))
    };
    Some(ServerLatency {
        calls,
        p50_le_ms: at(0.50),
        p99_le_ms: at(0.99),
    })
}

/// The store's `/metrics` text, over plain HTTP/1.0.
fn scrape(http: &str) -> Result<String> {
    use std::io::{Read, Write};
    let mut c = std::net::TcpStream::connect(http)?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    c.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {http}\r\n\r\n").as_bytes())?;
    let mut text = String::new();
    c.read_to_string(&mut text)?;
    Ok(text)
}

/// A store process on free ports, killed when dropped.
struct StoreProcess {
    child: Child,
    addr: String,
    http: String,
}

impl StoreProcess {
    fn start(bin: &Path, dir: &Path) -> Result<StoreProcess> {
        use std::io::BufRead;
        let mut child = Command::new(bin)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(["--http-listen", "127.0.0.1:0"])
            .arg("--url")
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.with_extension("log"))?)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut out = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut line = |prefix: &str| -> Result<String> {
            let mut line = String::new();
            out.read_line(&mut line)?;
            Ok(line
                .trim()
                .strip_prefix(prefix)
                .ok_or_else(|| anyhow!("riverbed-store printed {line:?}"))?
                .to_string())
        };
        let addr = line("listening on ")?;
        let http = line("http listening on ")?;
        Ok(StoreProcess { child, addr, http })
    }
}

impl Drop for StoreProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn client(addr: &str) -> Result<StateStoreClient<Channel>> {
    let e = endpoint(addr, None, Duration::from_secs(5), Duration::from_secs(30))
        .map_err(|e| anyhow!(e))?;
    let ch = e.connect().await.map_err(|e| anyhow!(connect_error(&e)))?;
    Ok(StateStoreClient::new(ch)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX))
}

fn key(client: usize, i: u64) -> Vec<u8> {
    let mut k = vec![0, 0, 0, 1, 0, 0];
    k.extend_from_slice(&(client as u16).to_be_bytes());
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// Runs the three phases; progress goes to stderr.
pub fn run(a: &LoadArgs) -> Result<LoadReport> {
    if a.clients == 0 || a.batch == 0 {
        bail!("--clients and --batch must be at least 1");
    }
    let dir = tempfile::tempdir()?;
    let store = StoreProcess::start(&a.store_bin, &dir.path().join("store"))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let addr = store.addr.clone();
    let value = vec![7u8; 100];
    let ns = "load";

    // 1. Batched writes.
    eprintln!(
        "store-load: {} clients write for {:?}",
        a.clients, a.duration
    );
    let written = Arc::new(AtomicU64::new(0));
    let (write_ms, took) = rt.block_on(async {
        let watch = Stopwatch::start();
        let mut tasks = Vec::new();
        for c in 0..a.clients {
            let (addr, value, written) = (addr.clone(), value.clone(), written.clone());
            let (batch, duration) = (a.batch, a.duration);
            tasks.push(tokio::spawn(async move {
                let mut cl = client(&addr).await?;
                let watch = Stopwatch::start();
                let mut ms = Vec::new();
                let mut i = 0u64;
                while watch.elapsed() < duration {
                    let ops = (0..batch)
                        .map(|_| {
                            i += 1;
                            pb::WriteOp {
                                op: Some(pb::write_op::Op::Put(pb::Put {
                                    key: key(c, i).into(),
                                    value: value.clone().into(),
                                })),
                            }
                        })
                        .collect();
                    let t = Stopwatch::start();
                    cl.write(pb::WriteRequest {
                        namespace: ns.into(),
                        epoch: 1,
                        ops,
                        generation: 0,
                    })
                    .await?;
                    ms.push(t.elapsed().as_secs_f64() * 1e3);
                    written.fetch_add(batch as u64, Ordering::Relaxed);
                }
                anyhow::Ok(ms)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        anyhow::Ok((all, watch.elapsed()))
    })?;
    let entries = written.load(Ordering::Relaxed);
    let write_rate = entries as f64 / took.as_secs_f64();
    eprintln!("store-load: {entries} entries written, {write_rate:.0}/s");

    // 2. Multi-get of 100 cached keys.
    let get_ms = rt.block_on(async {
        let mut cl = client(&addr).await?;
        cl.commit(pb::CommitRequest {
            namespace: ns.into(),
            epoch: 1,
            checkpoint: None,
        })
        .await?;
        // The keys the gets pick from: the first 10,000 of client 0, read
        // once so that their blocks are cached.
        let pool: Vec<Vec<u8>> = (1..=10_000).map(|i| key(0, i)).collect();
        for chunk in pool.chunks(100) {
            cl.multi_get(pb::MultiGetRequest {
                namespace: ns.into(),
                epoch: 1,
                keys: chunk.iter().map(|k| k.clone().into()).collect(),
            })
            .await?;
        }
        eprintln!(
            "store-load: {} clients multi-get 100 keys for {:?}",
            a.clients, a.duration
        );
        let pool = Arc::new(pool);
        let mut tasks = Vec::new();
        for c in 0..a.clients {
            let (addr, pool, duration) = (addr.clone(), pool.clone(), a.duration);
            tasks.push(tokio::spawn(async move {
                let mut cl = client(&addr).await?;
                let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ c as u64;
                let watch = Stopwatch::start();
                let mut ms = Vec::new();
                while watch.elapsed() < duration {
                    let keys = (0..100)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            pool[(x % pool.len() as u64) as usize].clone().into()
                        })
                        .collect();
                    let t = Stopwatch::start();
                    let r = cl
                        .multi_get(pb::MultiGetRequest {
                            namespace: ns.into(),
                            epoch: 1,
                            keys,
                        })
                        .await?
                        .into_inner();
                    ms.push(t.elapsed().as_secs_f64() * 1e3);
                    if !r.values.iter().all(|v| v.found) {
                        bail!("a written key was not found");
                    }
                }
                anyhow::Ok(ms)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await??);
        }
        anyhow::Ok(all)
    })?;
    let multi_get_in_server = server_latency(&scrape(&store.http)?, "multi_get");

    // 3. Lookups while q20 writes to the same store.
    eprintln!(
        "store-load: q20 on {} events writes while lookups run",
        a.events
    );
    let mut job = Command::new("nice")
        .args(["-n", &a.job_nice.to_string()])
        .arg(&a.nexmark_bin)
        .args(["run", "--query", "q20", "--quiet", "-p", "2"])
        .args(["--events", &a.events.to_string()])
        .args(["--checkpoint-interval", "1s"])
        .arg("--state")
        .arg(format!("remote://{addr}"))
        .arg("--state-dir")
        .arg(dir.path().join("q20-state"))
        .arg("--output")
        .arg(dir.path().join("q20-out"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {}", a.nexmark_bin.display()))?;
    let job_pid = job.id();
    // The job's end (or failure) stops the lookups early.
    let done = Arc::new(AtomicBool::new(false));
    let waiter = {
        let done = done.clone();
        std::thread::spawn(move || {
            let status = job.wait();
            done.store(true, Ordering::Relaxed);
            let mut err = String::new();
            if let Some(mut e) = job.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            (status, err)
        })
    };
    // One lookup at a time: a current-thread runtime, as `riverbed-store
    // query` uses, wakes one thread per answer, not a worker and a poller.
    let lookup_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let lookups = lookup_rt.block_on(async {
        let mut cl = client(&addr).await?;
        // Until the job's first checkpoint there is nothing to look up.
        let watch = Stopwatch::start();
        loop {
            let s = cl
                .status(pb::StatusRequest {
                    namespace: "q20".into(),
                })
                .await?
                .into_inner();
            if s.committed_epoch > 0 {
                break;
            }
            if done.load(Ordering::Relaxed) || watch.elapsed() > Duration::from_secs(120) {
                bail!("q20 committed nothing");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut ms = Vec::new();
        let mut found = 0;
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let watch = Stopwatch::start();
        while watch.elapsed() < a.duration && !done.load(Ordering::Relaxed) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Auction ids start at 1000; the first thousands exist early.
            let id = 1000 + (x % 5000) as i64;
            let t = Stopwatch::start();
            let r = cl
                .query(pb::QueryRequest {
                    namespace: "q20".into(),
                    table: "q20-join".into(),
                    key: Some(pb::query_request::Key::KeyText(id.to_string())),
                    epoch: 0,
                    limit: 0,
                })
                .await?
                .into_inner();
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            found += u64::from(r.found);
        }
        anyhow::Ok((ms, found))
    });
    // The job has had its measured time: stop it if it still runs.
    if !done.load(Ordering::Relaxed) {
        // SAFETY: kill(2) on our own child's pid; it may have just ended,
        // which makes the call a harmless ESRCH.
        unsafe {
            libc::kill(job_pid as i32, libc::SIGKILL);
        }
        let _ = waiter.join();
    } else {
        let (status, err) = waiter
            .join()
            .map_err(|_| anyhow!("the job's waiter panicked"))?;
        if !status?.success() {
            bail!("q20 failed while the lookups ran: {err}");
        }
    }
    let (lookup_ms, found) = lookups?;
    let lookup_in_server = server_latency(&scrape(&store.http)?, "query");
    drop(store);
    Ok(LoadReport {
        clients: a.clients,
        duration_s: a.duration.as_secs_f64(),
        write_batch: a.batch,
        write_entries_per_s: write_rate,
        write_batch_latency: latency(write_ms),
        multi_get_100_latency: latency(get_ms),
        multi_get_100_in_server: multi_get_in_server,
        lookup_latency_while_q20_writes: latency(lookup_ms),
        lookup_in_server,
        job_nice: a.job_nice,
        lookups_found: found,
        q20_events: a.events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_percentiles_are_bucket_bounds() {
        let text = concat!(
            "riverbed_store_request_duration_seconds_bucket{method=\"query\",le=\"0.0001\"} 90\n",
            "riverbed_store_request_duration_seconds_bucket{method=\"query\",le=\"0.00025\"} 98\n",
            "riverbed_store_request_duration_seconds_bucket{method=\"query\",le=\"0.001\"} 99\n",
            "riverbed_store_request_duration_seconds_bucket{method=\"query\",le=\"+Inf\"} 100\n",
            "riverbed_store_request_duration_seconds_bucket{method=\"write\",le=\"+Inf\"} 7\n",
        );
        let q = server_latency(text, "query").unwrap();
        assert_eq!(q.calls, 100);
        assert_eq!(q.p50_le_ms, Some(0.1));
        assert_eq!(q.p99_le_ms, Some(1.0));
        let w = server_latency(text, "write").unwrap();
        assert_eq!((w.calls, w.p99_le_ms), (7, None));
        assert!(server_latency(text, "scan").is_none());
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let l = latency((1..=100).map(f64::from).collect());
        assert_eq!((l.calls, l.p50_ms, l.p99_ms), (100, 50.0, 99.0));
        let l = latency(vec![3.0]);
        assert_eq!((l.p50_ms, l.p99_ms), (3.0, 3.0));
        assert_eq!(latency(Vec::new()).calls, 0);
    }
}
