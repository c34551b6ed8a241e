//! The server's one error type, mapped once to an HTTP response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use signoff_app::wire::{ErrorBody, ErrorDetail};
use signoff_app::{RuleError, TransitionError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Invalid(String),
    /// A policy (or policy file) that cannot be saved, each problem at its field.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    PolicyInvalid(Vec<signoff_app::policy::PolicyProblem>),
    /// Over a rate or concurrency limit; the caller may try again after this many seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Internal(String),
    /// The change could not be committed (the database failed under it); nothing of it
    /// was stored, and the caller may try again.
    #[error("{0}")]
    Unavailable(String),
    /// The OpenID Provider answered wrongly or not at all. People read only `public`;
    /// `detail` (URLs, error chains) goes to the log.
    #[error("{public}: {detail}")]
    Provider { public: &'static str, detail: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Error::NotFound(format!("no {what}"))
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Error::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Error::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            Error::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            Error::PolicyInvalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "policy_invalid"),
            Error::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Error::Rule(rule) => match rule {
                RuleError::NotPending(_) => (StatusCode::CONFLICT, "not_pending"),
                RuleError::Expired => (StatusCode::CONFLICT, "expired"),
                RuleError::NotEligible => (StatusCode::FORBIDDEN, "not_eligible"),
                RuleError::OwnRequest => (StatusCode::FORBIDDEN, "own_request"),
                RuleError::PartyUnknown => (StatusCode::FORBIDDEN, "party_unknown"),
                RuleError::AlreadyDecided => (StatusCode::CONFLICT, "already_decided"),
                RuleError::CommentRequired | RuleError::ApprovalCommentRequired => {
                    (StatusCode::UNPROCESSABLE_ENTITY, "comment_required")
                }
                RuleError::BreakGlassNotAllowed => (StatusCode::FORBIDDEN, "break_glass_not_allowed"),
                RuleError::BreakGlassCommentRequired => (StatusCode::UNPROCESSABLE_ENTITY, "comment_required"),
                RuleError::BreakGlassNotOwnRequest => (StatusCode::FORBIDDEN, "break_glass_not_own_request"),
                RuleError::BreakGlassWithGrant => (StatusCode::UNPROCESSABLE_ENTITY, "break_glass_with_grant"),
            },
            Error::Transition(_) => (StatusCode::CONFLICT, "illegal_transition"),
            Error::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Error::Provider { .. } => (StatusCode::BAD_GATEWAY, "provider_error"),
            Error::Config(_) | Error::Database(_) | Error::Migrate(_) | Error::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl Error {
    /// What the client may read: the message, except for internal failures, whose
    /// detail goes to the log only.
    pub fn public_message(&self) -> String {
        match self {
            Error::Provider { public, .. } => {
                tracing::warn!(error = %self, "the OpenID Provider failed");
                (*public).to_string()
            }
            _ if self.status_and_code().0 == StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(error = %self, "request failed");
                "internal error; the server log has the details".to_string()
            }
            _ => self.to_string(),
        }
    }

    /// Headers the status needs: `Retry-After` with 429, `WWW-Authenticate` with 401.
    pub fn add_headers(&self, headers: &mut axum::http::HeaderMap) {
        match self {
            Error::TooManyRequests { retry_after_s, .. } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_s));
            }
            Error::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = self.public_message();
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_string(),
                message,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        self.add_headers(response.headers_mut());
        response
    }
}
