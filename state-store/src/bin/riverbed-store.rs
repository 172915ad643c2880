//! `riverbed-store`: the state store as a service that many jobs share.
//!
//! `serve` listens for gRPC (`riverbed.store.v1`, see `proto/`), one
//! namespace per job, and prints `listening on ADDR` on stdout once it
//! accepts connections (port 0 picks a free port), then `http listening on
//! ADDR` for its HTTP side (probes, `/metrics`, JSON queries). SIGTERM or
//! Ctrl-C stops it gracefully: new requests are refused, the ones in
//! flight finish, and every namespace is closed.
//!
//! `query` and `tables` are clients of a running store: a job's state by
//! table and key (at the latest commit or a retained checkpoint), and the
//! tables there are.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use riverbed_state_store::grpc::config::ServerConfig;
use riverbed_state_store::grpc::pb::state_store_server::StateStoreServer;
use riverbed_state_store::grpc::server::{StoreService, Tokens};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(
    name = "riverbed-store",
    version,
    about = "Riverbed's state store service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the store over gRPC until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Looks up a key of a job's state in a running store and prints it as
    /// JSON (decoded by the table's schema; hex without one).
    Query(QueryArgs),
    /// Lists the tables of a running store with their namespaces and sizes.
    Tables(TablesArgs),
}

#[derive(clap::Args)]
struct ClientArgs {
    /// The store's gRPC address, HOST:PORT
    #[arg(long, env = "RIVERBED_STORE", default_value = "127.0.0.1:7070")]
    addr: String,
    /// Token, when the store has a token file
    #[arg(long, env = "RIVERBED_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Speak TLS, trusting the certificate authority in this PEM file (the
    /// store's own certificate when it is self-signed)
    #[arg(long, env = "RIVERBED_TLS_CA")]
    tls_ca: Option<PathBuf>,
    /// The name the store's certificate must carry [default: the host of --addr]
    #[arg(long, requires = "tls_ca")]
    tls_domain: Option<String>,
}

#[derive(clap::Args)]
struct QueryArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// NAMESPACE/TABLE, e.g. q20/join-auctions (the job's operator name)
    #[arg(long)]
    table: String,
    /// The key as JSON by the table's key schema (a number, a string — bare
    /// or quoted — or an array for a tuple key)
    #[arg(
        long,
        conflicts_with = "key_hex",
        required_unless_present = "key_hex",
        allow_hyphen_values = true
    )]
    key: Option<String>,
    /// The key's encoded bytes as hex, for a table without a key schema
    #[arg(long)]
    key_hex: Option<String>,
    /// A retained checkpoint's epoch [default: the latest committed epoch]
    #[arg(long)]
    epoch: Option<u64>,
    /// Most entries printed for a table with many entries per key
    #[arg(long, default_value_t = 1000)]
    limit: u32,
}

#[derive(clap::Args)]
struct TablesArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Only this namespace [default: every namespace the token may read]
    #[arg(long)]
    namespace: Option<String>,
    /// One JSON object a line instead of columns
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on, HOST:PORT; port 0 picks a free one. Overrides
    /// the config file and RIVERBED_LISTEN [default: 127.0.0.1:7070]
    #[arg(long)]
    listen: Option<String>,
    /// Object storage of every namespace: a directory, file:///path or
    /// s3://bucket/prefix. Overrides the config file and RIVERBED_URL
    #[arg(long)]
    url: Option<String>,
    /// TOML settings (listen, token_file, [store] engine options,
    /// [limits]); RIVERBED_* variables and flags override them
    #[arg(long, env = "RIVERBED_CONFIG")]
    config: Option<PathBuf>,
    /// Tokens, one a line: `TOKEN NAMESPACE rw|data|ro` (namespace `*` for all;
    /// `data` writes but cannot commit: a worker's token).
    /// Without it every request is accepted
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// S3 endpoint for s3:// URLs (e.g. http://127.0.0.1:8333)
    #[arg(long)]
    s3_endpoint: Option<String>,
    /// Serve gRPC over TLS with this certificate chain (PEM); needs --tls-key.
    /// Overrides the config file and RIVERBED_TLS_CERT
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert. Overrides RIVERBED_TLS_KEY
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Address of the HTTP side (/healthz, /readyz, /metrics, /v1/query),
    /// HOST:PORT, port 0 for a free one, "" for none. Overrides the config
    /// file and RIVERBED_HTTP_LISTEN [default: 127.0.0.1:7071]
    #[arg(long)]
    http_listen: Option<String>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RIVERBED_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let done = match Cli::parse().command {
        Command::Serve(args) => serve(args),
        Command::Query(args) => client::query(args),
        Command::Tables(args) => client::tables(args),
    };
    // One line with its causes, not a Debug dump with a backtrace.
    if let Err(e) = done {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
    Ok(())
}

fn config_of(args: &ServeArgs) -> Result<ServerConfig> {
    let mut config = match &args.config {
        Some(p) => ServerConfig::load(p)?,
        None => ServerConfig::default(),
    };
    config.apply_env(|k| std::env::var(k).ok())?;
    if let Some(v) = &args.listen {
        config.listen = v.clone();
    }
    if let Some(v) = &args.url {
        config.store.url = v.clone();
    }
    if let Some(v) = &args.token_file {
        config.token_file = Some(v.clone());
    }
    if let Some(v) = &args.s3_endpoint {
        config.store.s3.endpoint = Some(v.clone());
    }
    if let Some(v) = &args.http_listen {
        config.http_listen = v.clone();
    }
    if let Some(v) = &args.tls_cert {
        config.tls_cert = Some(v.clone());
    }
    if let Some(v) = &args.tls_key {
        config.tls_key = Some(v.clone());
    }
    config.validate()?;
    Ok(config)
}

fn serve(args: ServeArgs) -> Result<()> {
    let config = config_of(&args)?;
    let tokens = match &config.token_file {
        Some(p) => Some(Tokens::load(p)?),
        None => {
            tracing::warn!("no token file: every request is accepted");
            None
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let limits = config.limits.clone();
        let service = std::sync::Arc::new(StoreService::new(
            config.store.clone(),
            tokens,
            limits.clone(),
        ));
        let grpc = StateStoreServer::from_arc(service.clone())
            .max_decoding_message_size(limits.max_request_bytes)
            .max_encoding_message_size(limits.max_request_bytes);
        tracing::info!(%addr, url = %config.store.url, "serving");
        println!("listening on {addr}");
        let (http_stop, http_stopped) = tokio::sync::watch::channel(false);
        let http = if config.http_listen.is_empty() {
            None
        } else {
            let l = tokio::net::TcpListener::bind(&config.http_listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.http_listen))?;
            let http_addr = l.local_addr()?;
            tracing::info!(%http_addr, "http: /healthz /readyz /metrics /v1/query /v1/tables");
            println!("http listening on {http_addr}");
            let router = riverbed_state_store::grpc::http::router(service.clone());
            let mut stopped = http_stopped;
            Some(tokio::spawn(async move {
                axum::serve(l, router)
                    .with_graceful_shutdown(async move {
                        let _ = stopped.wait_for(|s| *s).await;
                    })
                    .await
            }))
        };
        use std::io::Write;
        std::io::stdout().flush()?;
        let stopping = service.clone();
        let mut builder = tonic::transport::Server::builder();
        if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            let read = |p: &PathBuf, what: &str| {
                std::fs::read(p)
                    .with_context(|| format!("cannot read the TLS {what} {}", p.display()))
            };
            let identity =
                tonic::transport::Identity::from_pem(read(cert, "certificate")?, read(key, "key")?);
            builder = builder
                .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
                .context("the TLS certificate or key is not usable")?;
            tracing::info!(cert = %cert.display(), "gRPC over TLS");
        }
        builder
            .add_service(grpc)
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY a small answer waits for the
                // client's delayed ACK (tens of ms a round trip).
                tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
                async move {
                    shutdown_signal().await;
                    tracing::info!("shutting down: finishing requests in flight");
                    stopping.begin_shutdown();
                },
            )
            .await
            .context("the server failed")?;
        let _ = http_stop.send(true);
        if let Some(h) = http {
            h.await
                .context("the http side panicked")?
                .context("the http side failed")?;
        }
        service.close().await?;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// The commands that talk to a running store.
mod client {
    use anyhow::{anyhow, bail, Context, Result};
    use riverbed_state_store::grpc::client::{connect_error, endpoint, ClientTls};
    use riverbed_state_store::grpc::pb;
    use riverbed_state_store::grpc::pb::state_store_client::StateStoreClient;
    use riverbed_state_store::grpc::{json, query};
    use tonic::transport::Channel;

    use super::{ClientArgs, QueryArgs, TablesArgs};

    fn runtime() -> Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the runtime")
    }

    async fn connect(c: &ClientArgs) -> Result<StateStoreClient<Channel>> {
        let tls = match &c.tls_ca {
            Some(p) => {
                Some(ClientTls::from_ca_file(p, c.tls_domain.clone()).map_err(|e| anyhow!(e))?)
            }
            None => None,
        };
        let secs = std::time::Duration::from_secs;
        let channel = endpoint(&c.addr, tls.as_ref(), secs(5), secs(30))
            .map_err(|e| anyhow!(e))?
            .connect()
            .await
            .map_err(|e| {
                anyhow!(
                    "cannot reach the store at {}: {}",
                    c.addr,
                    connect_error(&e)
                )
            })?;
        Ok(StateStoreClient::new(channel))
    }

    fn request<T>(c: &ClientArgs, msg: T) -> Result<tonic::Request<T>> {
        let mut req = tonic::Request::new(msg);
        if let Some(t) = &c.token {
            let v = format!("Bearer {t}")
                .parse()
                .map_err(|_| anyhow!("the token has characters a header cannot carry"))?;
            req.metadata_mut().insert("authorization", v);
        }
        Ok(req)
    }

    fn refused(e: tonic::Status) -> anyhow::Error {
        // A plain client of a TLS server gets the connection's failure,
        // worded by whichever layer saw it first.
        let transport = ["transport error", "h2 protocol error", "http2 error"]
            .iter()
            .any(|w| e.message().contains(w));
        if matches!(e.code(), tonic::Code::Unknown | tonic::Code::Internal) && transport {
            return anyhow!(
                "the store did not answer gRPC ({}); a store serving TLS needs --tls-ca",
                e.message()
            );
        }
        anyhow!("{:?}: {}", e.code(), e.message())
    }

    pub fn query(a: QueryArgs) -> Result<()> {
        let Some((ns, table)) = a.table.split_once('/') else {
            bail!(
                "--table {:?} must be NAMESPACE/TABLE, e.g. q20/join-auctions",
                a.table
            );
        };
        let key = match (&a.key, &a.key_hex) {
            (Some(k), _) => pb::query_request::Key::KeyText(k.clone()),
            (None, Some(h)) => pb::query_request::Key::KeyBytes(
                json::unhex(h)
                    .map_err(|e| anyhow!("--key-hex: {e}"))?
                    .into(),
            ),
            (None, None) => bail!("give --key or --key-hex"),
        };
        let msg = pb::QueryRequest {
            namespace: ns.to_string(),
            table: table.to_string(),
            key: Some(key),
            epoch: a.epoch.unwrap_or(0),
            limit: a.limit,
        };
        runtime()?.block_on(async {
            let mut c = connect(&a.client).await?;
            let r = c
                .query(request(&a.client, msg)?)
                .await
                .map_err(refused)?
                .into_inner();
            println!("{}", query::answer_json(ns, table, &r));
            Ok(())
        })
    }

    pub fn tables(a: TablesArgs) -> Result<()> {
        let msg = pb::ListTablesRequest {
            namespace: a.namespace.clone().unwrap_or_default(),
        };
        runtime()?.block_on(async {
            let mut c = connect(&a.client).await?;
            let r = c
                .list_tables(request(&a.client, msg)?)
                .await
                .map_err(refused)?
                .into_inner();
            if a.json {
                for t in &r.tables {
                    println!("{}", query::summary_json(t));
                }
                return Ok(());
            }
            let rows: Vec<[String; 8]> = r
                .tables
                .iter()
                .map(|t| {
                    let i = t.info.clone().unwrap_or_default();
                    let or_dash = |s: &str| {
                        if s.is_empty() {
                            "-".to_string()
                        } else {
                            s.to_string()
                        }
                    };
                    [
                        t.namespace.clone(),
                        t.name.clone(),
                        i.kind,
                        t.committed_epoch.to_string(),
                        t.entries.to_string(),
                        t.bytes.to_string(),
                        or_dash(&i.key_schema),
                        or_dash(&i.value_schema),
                    ]
                })
                .collect();
            let head = [
                "NAMESPACE",
                "TABLE",
                "KIND",
                "EPOCH",
                "ENTRIES",
                "BYTES",
                "KEY",
                "VALUE",
            ];
            let mut width = head.map(str::len);
            for r in &rows {
                for (w, c) in width.iter_mut().zip(r) {
                    *w = (*w).max(c.len());
                }
            }
            let line = |cells: &[&str]| {
                let mut s = String::new();
                for (i, c) in cells.iter().enumerate() {
                    if i + 1 == cells.len() {
                        s.push_str(c);
                    } else {
                        s.push_str(&format!("{c:<w$}  ", w = width[i]));
                    }
                }
                println!("{s}");
            };
            line(&head);
            for r in &rows {
                line(&r.iter().map(String::as_str).collect::<Vec<_>>());
            }
            Ok(())
        })
    }
}
