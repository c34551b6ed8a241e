//! Extractors that turn every bad input into our JSON error, and authenticate callers.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

use signoff_app::check_exact_json;
use signoff_app::wire::limits;

use crate::Error;
use crate::auth::Person;
use crate::state::AppState;
use crate::store::Agent;

/// A JSON body: 415 without a JSON content type, 413 past the size limit, 400 when it
/// is not JSON, 422 when it is JSON of the wrong shape or has an integer beyond ±2^53 or
/// a duplicate key (the digest could not tell it apart). Keeps the text, for callers
/// that need the document as sent.
pub struct JsonBody<T> {
    pub value: T,
    bytes: Bytes,
}

impl<T> JsonBody<T> {
    /// The body as a JSON document (parsed again: only the few callers that need it pay).
    pub fn document(&self) -> Result<Value, Error> {
        serde_json::from_slice(&self.bytes)
            .map_err(|err| Error::BadRequest(format!("the body is not valid JSON: {err}")))
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .split(';')
                    .next()
                    .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
            });
        if !is_json {
            return Err(Error::UnsupportedMediaType(
                "send the body as JSON with Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::PayloadTooLarge(format!(
                    "the request body is larger than the limit of {} bytes (1 MiB)",
                    limits::BODY_BYTES
                ))
            } else {
                Error::BadRequest(rejection.body_text())
            }
        })?;
        // Straight from the text into `T`: no intermediate document to build and drop.
        let value = serde_json::from_slice::<T>(&bytes).map_err(|err| match err.classify() {
            serde_json::error::Category::Data => Error::Invalid(format!("the body does not fit: {err}")),
            _ => Error::BadRequest(format!("the body is not valid JSON: {err}")),
        })?;
        // Checked on the raw text: a parsed document has already dropped a duplicate key's
        // first value, and the digest would round integers past ±2^53.
        check_exact_json(&bytes).map_err(|refusal| Error::Invalid(refusal.to_string()))?;
        Ok(JsonBody { value, bytes })
    }
}

/// Query parameters; bad ones are a 400 that names the problem.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for Query<T> {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| Error::BadRequest(rejection.body_text()))
    }
}

/// The agent calling, from `Authorization: Bearer <key>`.
pub struct AgentAuth(pub Agent);

impl FromRequestParts<AppState> for AgentAuth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let key = bearer(parts)
            .ok_or_else(|| Error::Unauthorized("missing API key: send Authorization: Bearer <key>".into()))?;
        state.service.authenticate_agent(key).await.map(AgentAuth)
    }
}

use crate::auth::bearer;

use crate::keys::AGENT_KEY_PREFIX;

/// Either kind of caller, for endpoints both may use.
pub enum Caller {
    Agent(Agent),
    Person(Person),
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if bearer(parts).is_some_and(|token| token.starts_with(AGENT_KEY_PREFIX)) {
            let AgentAuth(agent) = AgentAuth::from_request_parts(parts, state).await?;
            return Ok(Caller::Agent(agent));
        }
        Person::from_request_parts(parts, state).await.map(Caller::Person)
    }
}
