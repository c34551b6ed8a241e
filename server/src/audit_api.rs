//! The door to the log's public evidence (`crate::evidence`), for monitors, auditors and executors: its keys, its newest
//! signed checkpoint, and proofs (hashes only, never events). Open without sign-in, as
//! Certificate Transparency logs are, and limited per client address.

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::evidence::{ConsistencyProof, InclusionProof, KeyView, Keys};
use crate::state::AppState;
use crate::throttle::{Bucket, ClientAddress};
use crate::{Error, Result};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/signoff/keys", get(keys))
        .route("/api/v1/audit/checkpoint", get(checkpoint))
        .route("/api/v1/audit/proof/inclusion", get(inclusion))
        .route("/api/v1/audit/proof/consistency", get(consistency))
}

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

/// `GET /api/v1/audit/checkpoint`: the newest signed checkpoint, as a C2SP note.
async fn checkpoint(State(state): State<AppState>, ClientAddress(client): ClientAddress) -> Result<Response> {
    state.throttle.check(Bucket::Evidence, client)?;
    let checkpoint = state
        .service
        .latest_checkpoint()
        .await?
        .ok_or_else(|| Error::NotFound("no checkpoint yet: the log has no events".into()))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], checkpoint.note).into_response())
}

#[derive(Deserialize)]
struct InclusionParams {
    seq: i64,
    size: i64,
}

/// `GET /api/v1/audit/proof/inclusion?seq=S&size=N`: event S is leaf S-1 of the tree of N.
async fn inclusion(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Query(params): Query<InclusionParams>,
) -> Result<Json<InclusionProof>> {
    state.throttle.check(Bucket::Evidence, client)?;
    Ok(Json(state.service.inclusion_proof(params.seq, params.size).await?))
}

#[derive(Deserialize)]
struct ConsistencyParams {
    from: i64,
    to: i64,
}

/// `GET /api/v1/audit/proof/consistency?from=A&to=B`: the tree of A events is a prefix of
/// the tree of B.
async fn consistency(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Query(params): Query<ConsistencyParams>,
) -> Result<Json<ConsistencyProof>> {
    state.throttle.check(Bucket::Evidence, client)?;
    Ok(Json(state.service.consistency_proof(params.from, params.to).await?))
}
