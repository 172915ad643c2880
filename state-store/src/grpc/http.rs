//! The store's small HTTP side, beside gRPC on its own port: probes for
//! an orchestrator, metrics for Prometheus, and queryable state as JSON
//! for anything that speaks HTTP.
//!
//! ```text
//! GET /healthz                      200 "ok" while the process runs (liveness)
//! GET /readyz                       200 "ready", 503 once shutting down (readiness)
//! GET /metrics                      Prometheus text format
//! GET /v1/tables?namespace=NS       the tables (every readable namespace without NS)
//! GET /v1/query?namespace=NS&table=T&key=K[&epoch=E][&limit=N]
//! GET /v1/query?namespace=NS&table=T&key_hex=HEX[&epoch=E]
//! ```
//!
//! Queries take the same token as gRPC (`Authorization: Bearer TOKEN`) and
//! answer what the gRPC call answers, as JSON; an error is
//! `{"error": message}` with the HTTP status matching the gRPC one.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use super::pb::state_store_server::StateStore;
use super::server::StoreService;
use super::{json, pb, query};

/// The routes above, served by `service`.
pub fn router(service: Arc<StoreService>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/v1/tables", get(tables))
        .route("/v1/query", get(lookup))
        .with_state(service)
}

async fn ready(State(s): State<Arc<StoreService>>) -> Response {
    if s.is_serving() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    }
}

async fn metrics(State(s): State<Arc<StoreService>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.prometheus().await,
    )
        .into_response()
}

#[derive(Deserialize)]
struct TablesParams {
    #[serde(default)]
    namespace: String,
}

async fn tables(
    State(s): State<Arc<StoreService>>,
    headers: HeaderMap,
    Query(p): Query<TablesParams>,
) -> Response {
    let req = with_token(
        pb::ListTablesRequest {
            namespace: p.namespace,
        },
        &headers,
    );
    match s.list_tables(req).await {
        Ok(r) => {
            let tables: Vec<serde_json::Value> = r
                .into_inner()
                .tables
                .iter()
                .map(query::summary_json)
                .collect();
            json_response(StatusCode::OK, &serde_json::json!({ "tables": tables }))
        }
        Err(e) => error_response(&e),
    }
}

#[derive(Deserialize)]
struct QueryParams {
    namespace: String,
    table: String,
    key: Option<String>,
    key_hex: Option<String>,
    #[serde(default)]
    epoch: u64,
    #[serde(default)]
    limit: u32,
}

async fn lookup(
    State(s): State<Arc<StoreService>>,
    headers: HeaderMap,
    Query(p): Query<QueryParams>,
) -> Response {
    let started = super::metrics::started();
    let key = match (p.key, p.key_hex) {
        (Some(k), None) => pb::query_request::Key::KeyText(k),
        (None, Some(h)) => match json::unhex(&h) {
            Ok(b) => pb::query_request::Key::KeyBytes(b.into()),
            Err(e) => return error_response(&Status::invalid_argument(format!("key_hex: {e}"))),
        },
        _ => {
            return error_response(&Status::invalid_argument(
                "give the key as key=TEXT or key_hex=HEX, one of them",
            ))
        }
    };
    let req = pb::QueryRequest {
        namespace: p.namespace.clone(),
        table: p.table.clone(),
        key: Some(key),
        epoch: p.epoch,
        limit: p.limit,
    };
    // The gRPC call's own timing is recorded too; this one is the whole
    // HTTP answer.
    let answer = s.query(with_token(req, &headers)).await;
    s.request_metrics()
        .observe("http_query", started.elapsed(), answer.is_ok());
    match answer {
        Ok(r) => json_response(
            StatusCode::OK,
            &query::answer_json(&p.namespace, &p.table, &r.into_inner()),
        ),
        Err(e) => error_response(&e),
    }
}

/// A gRPC request carrying the HTTP request's bearer token.
fn with_token<T>(msg: T, headers: &HeaderMap) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| MetadataValue::try_from(v).ok())
    {
        req.metadata_mut().insert("authorization", v);
    }
    req
}

fn json_response(code: StatusCode, v: &serde_json::Value) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{v}\n"),
    )
        .into_response()
}

fn error_response(e: &Status) -> Response {
    let code = match e.code() {
        Code::InvalidArgument | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::FailedPrecondition => StatusCode::CONFLICT,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    json_response(code, &serde_json::json!({ "error": e.message() }))
}
