//! The door to the log's public evidence (`crate::evidence`), for monitors, auditors and
//! executors: its keys, its newest signed checkpoint, and proofs (hashes only, never
//! events). Open without sign-in, as Certificate Transparency logs are, and limited per
//! client address.

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use signoff_app::wire::ErrorBody;

use crate::evidence::{ConsistencyProof, InclusionProof, KeyView, Keys};
use crate::state::AppState;
use crate::throttle::{Bucket, ClientAddress};
use crate::{Error, Result};

pub fn router() -> Router<AppState> {
    routes().route("/.well-known/signoff/keys", get(keys)).into()
}

/// The API's routes here, each with its OpenAPI description.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(checkpoint))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
}

/// `GET /.well-known/signoff/keys`: every key the log is known by, current first.
async fn keys(State(state): State<AppState>, ClientAddress(client): ClientAddress) -> Result<Json<Keys>> {
    state.throttle.check(Bucket::Evidence, client)?;
    let evidence = state.service.evidence();
    Ok(Json(Keys {
        origin: evidence.origin.clone(),
        keys: evidence
            .keys()
            .iter()
            .enumerate()
            .map(|(at, key)| KeyView {
                name: key.name.clone(),
                key_id: key.id_hex(),
                verifier: key.verifier(),
                current: at == 0,
            })
            .collect(),
    }))
}

/// The newest signed checkpoint of the audit log, as a C2SP signed note.
#[utoipa::path(
    get, path = "/api/v1/audit/checkpoint", tag = "audit", operation_id = "audit_checkpoint",
    responses(
        (status = 200, description = "The note: origin, tree size and base64 root on three lines, a blank line, then `— NAME BASE64(key id ‖ Ed25519 signature)`.", content_type = "text/plain", body = String),
        (status = 404, description = "No checkpoint yet: the log has no events.", body = ErrorBody),
        (status = 429, description = "Too many calls from this address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        (status = 503, description = "The database did not answer; try again.", body = ErrorBody),
    )
)]
async fn checkpoint(State(state): State<AppState>, ClientAddress(client): ClientAddress) -> Result<Response> {
    state.throttle.check(Bucket::Evidence, client)?;
    let checkpoint = state
        .service
        .latest_checkpoint()
        .await?
        .ok_or_else(|| Error::NotFound("no checkpoint yet: the log has no events".into()))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], checkpoint.note).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct InclusionParams {
    /// The event's sequence number (it is leaf `seq - 1`).
    seq: i64,
    /// The tree's size: a checkpoint's, at least `seq`.
    size: i64,
}

/// That event `seq` is in the tree of `size` events (RFC 6962 audit path).
#[utoipa::path(
    get, path = "/api/v1/audit/proof/inclusion", tag = "audit", operation_id = "audit_inclusion_proof",
    params(InclusionParams),
    responses(
        (status = 200, description = "The event's leaf hash and the hashes up to the root.", body = InclusionProof),
        (status = 400, description = "Parameters missing, not numbers, or not 1 <= seq <= size <= the log's size.", body = ErrorBody),
        (status = 429, description = "Too many calls from this address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        (status = 503, description = "The database did not answer; try again.", body = ErrorBody),
    )
)]
async fn inclusion(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    params: std::result::Result<Query<InclusionParams>, QueryRejection>,
) -> Result<Json<InclusionProof>> {
    state.throttle.check(Bucket::Evidence, client)?;
    let Query(params) = params.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    Ok(Json(state.service.inclusion_proof(params.seq, params.size).await?))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ConsistencyParams {
    /// The smaller tree's size (at least 1).
    from: i64,
    /// The larger tree's size, at most the log's.
    to: i64,
}

/// That the tree of `from` events is a prefix of the tree of `to` (RFC 6962 consistency).
#[utoipa::path(
    get, path = "/api/v1/audit/proof/consistency", tag = "audit", operation_id = "audit_consistency_proof",
    params(ConsistencyParams),
    responses(
        (status = 200, description = "The hashes that prove it.", body = ConsistencyProof),
        (status = 400, description = "Parameters missing, not numbers, or not 1 <= from <= to <= the log's size.", body = ErrorBody),
        (status = 429, description = "Too many calls from this address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        (status = 503, description = "The database did not answer; try again.", body = ErrorBody),
    )
)]
async fn consistency(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    params: std::result::Result<Query<ConsistencyParams>, QueryRejection>,
) -> Result<Json<ConsistencyProof>> {
    state.throttle.check(Bucket::Evidence, client)?;
    let Query(params) = params.map_err(|rejection| Error::BadRequest(rejection.body_text()))?;
    Ok(Json(state.service.consistency_proof(params.from, params.to).await?))
}
