//! The server's settings: a TOML file, then `RIVERBED_*` environment
//! variables, then flags, each overriding the one before.
//!
//! ```toml
//! listen = "127.0.0.1:7070"     # gRPC; port 0 picks a free port
//! http_listen = "127.0.0.1:7071" # probes, /metrics and JSON queries ("" for none)
//! token_file = "tokens.txt"     # optional: without it every request is accepted
//! tls_cert = "store.pem"        # optional, with tls_key: gRPC over TLS only
//! tls_key = "store-key.pem"
//!
//! [store]                       # the engine's Options (see options.rs)
//! url = "/var/lib/riverbed"     # a directory, file:///path or s3://bucket/prefix
//! block_cache_bytes = 268435456
//! compression_per_level = ["lz4", "lz4", "zstd"]  # L0, L1, then every deeper level
//!
//! [limits]                      # see server::Limits
//! max_key_bytes = 65536
//! ```

use std::path::PathBuf;

use serde::Deserialize;

use super::server::Limits;
use crate::error::{Error, Result};
use crate::Options;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    /// The HTTP side (see `http.rs`); empty for none.
    pub http_listen: String,
    pub token_file: Option<PathBuf>,
    /// The certificate chain and private key (PEM) of gRPC over TLS; both
    /// or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub store: Options,
    pub limits: Limits,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:7070".into(),
            http_listen: "127.0.0.1:7071".into(),
            token_file: None,
            tls_cert: None,
            tls_key: None,
            store: Options::default(),
            limits: Limits::default(),
        }
    }
}

impl ServerConfig {
    /// Reads `path`; unknown keys are an error so that a typo is not ignored.
    pub fn load(path: &std::path::Path) -> Result<ServerConfig> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Applies `RIVERBED_*` variables from `env` (a name → value lookup).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<()> {
        if let Some(v) = env("RIVERBED_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = env("RIVERBED_HTTP_LISTEN") {
            self.http_listen = v;
        }
        if let Some(v) = env("RIVERBED_URL") {
            self.store.url = v;
        }
        if let Some(v) = env("RIVERBED_TOKEN_FILE") {
            self.token_file = Some(v.into());
        }
        if let Some(v) = env("RIVERBED_TLS_CERT") {
            self.tls_cert = Some(v.into());
        }
        if let Some(v) = env("RIVERBED_TLS_KEY") {
            self.tls_key = Some(v.into());
        }
        let num = |name: &str, v: String| {
            v.parse::<usize>()
                .map_err(|_| Error::Config(format!("{name}={v:?} is not a number of bytes")))
        };
        if let Some(v) = env("RIVERBED_BLOCK_CACHE_BYTES") {
            self.store.block_cache_bytes = num("RIVERBED_BLOCK_CACHE_BYTES", v)?;
        }
        if let Some(v) = env("RIVERBED_MEMTABLE_BYTES") {
            self.store.memtable_bytes = num("RIVERBED_MEMTABLE_BYTES", v)?;
        }
        if let Some(v) = env("RIVERBED_MAX_MEMORY_BYTES") {
            self.store.max_memory_bytes = num("RIVERBED_MAX_MEMORY_BYTES", v)?;
        }
        if let Some(v) = env("RIVERBED_S3_ENDPOINT") {
            self.store.s3.endpoint = Some(v);
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        self.listen.parse::<std::net::SocketAddr>().map_err(|_| {
            Error::Config(format!(
                "listen address {:?} is not HOST:PORT (e.g. 127.0.0.1:7070)",
                self.listen
            ))
        })?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(Error::Config(
                "TLS needs both a certificate (tls_cert, --tls-cert) and its key (tls_key, --tls-key)"
                    .into(),
            ));
        }
        if !self.http_listen.is_empty() {
            self.http_listen.parse::<std::net::SocketAddr>().map_err(|_| {
                Error::Config(format!(
                    "http_listen address {:?} is not HOST:PORT (e.g. 127.0.0.1:7071), or empty for none",
                    self.http_listen
                ))
            })?;
        }
        self.store.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("store.toml");
        std::fs::write(
            &p,
            "listen = \"127.0.0.1:0\"\n[store]\nurl = \"/data\"\nmemtable_bytes = 4096\n[limits]\nmax_key_bytes = 10\n",
        )
        .unwrap();
        let mut c = ServerConfig::load(&p).unwrap();
        assert_eq!(c.store.url, "/data");
        assert_eq!(c.limits.max_key_bytes, 10);
        c.apply_env(|k| (k == "RIVERBED_URL").then(|| "/other".to_string()))
            .unwrap();
        assert_eq!(c.store.url, "/other");
        c.validate().unwrap();
        std::fs::write(&p, "lisen = \"x\"").unwrap();
        assert!(ServerConfig::load(&p).is_err());
        c.listen = "nowhere".into();
        assert!(c.validate().unwrap_err().to_string().contains("HOST:PORT"));
        assert!(c
            .apply_env(|k| (k == "RIVERBED_MEMTABLE_BYTES").then(|| "lots".to_string()))
            .is_err());
    }
}
