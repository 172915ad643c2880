//! How a client reaches the store: one endpoint builder for every client
//! (the compute layer's remote backend, `riverbed-store query` and
//! `tables`), so that TLS and timeouts mean the same everywhere.

use std::time::Duration;

use tonic::transport::{Certificate, ClientTlsConfig, Endpoint};

/// TLS as a client sees it: the certificate authority that signed the
/// store's certificate, and the name to check it against.
#[derive(Debug, Clone)]
pub struct ClientTls {
    /// PEM of the CA (or of the store's self-signed certificate).
    pub ca_pem: Vec<u8>,
    /// The name the certificate must carry; the host of the address when
    /// `None`.
    pub domain: Option<String>,
}

impl ClientTls {
    /// Reads the CA's PEM file; the error names the file.
    pub fn from_ca_file(path: &std::path::Path, domain: Option<String>) -> Result<Self, String> {
        let ca_pem = std::fs::read(path)
            .map_err(|e| format!("cannot read the TLS CA file {}: {e}", path.display()))?;
        Ok(ClientTls { ca_pem, domain })
    }
}

/// The endpoint of the store at `addr` (`HOST:PORT`): plain HTTP/2, or TLS
/// with `tls`.
pub fn endpoint(
    addr: &str,
    tls: Option<&ClientTls>,
    connect_timeout: Duration,
    timeout: Duration,
) -> Result<Endpoint, String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let e = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|_| format!("{addr:?} is not HOST:PORT"))?
        .connect_timeout(connect_timeout)
        .tcp_nodelay(true)
        .timeout(timeout);
    let Some(tls) = tls else {
        return Ok(e);
    };
    let host = addr.rsplit_once(':').map(|(h, _)| h).unwrap_or(addr);
    let domain = tls.domain.clone().unwrap_or_else(|| host.to_string());
    e.tls_config(
        ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&tls.ca_pem))
            .domain_name(domain),
    )
    .map_err(|e| format!("TLS settings: {e}"))
}

/// Why a connection failed, with every cause: tonic's own message is only
/// "transport error", the causes say refused, timed out or which TLS check.
pub fn connect_error(e: &tonic::transport::Error) -> String {
    let mut why = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        why = format!("{why}: {s}");
        src = s.source();
    }
    why
}
