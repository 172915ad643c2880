//! `riverbed-store`: the state store as a service that many jobs share.
//!
//! `serve` listens for gRPC (`riverbed.store.v1`, see `proto/`), one
//! namespace per job, and prints `listening on ADDR` on stdout once it
//! accepts connections (port 0 picks a free port). SIGTERM or Ctrl-C stops
//! it gracefully: new requests are refused, the ones in flight finish, and
//! every namespace is closed.

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
    /// Tokens, one a line: `TOKEN NAMESPACE rw|ro` (namespace `*` for all).
    /// Without it every request is accepted
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// S3 endpoint for s3:// URLs (e.g. http://127.0.0.1:8333)
    #[arg(long)]
    s3_endpoint: Option<String>,
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RIVERBED_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
    }
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
        use std::io::Write;
        std::io::stdout().flush()?;
        let stopping = service.clone();
        tonic::transport::Server::builder()
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
