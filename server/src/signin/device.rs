//! Terminal sign-in brokered by the server (the `gh auth login` pattern): the terminal
//! gets a device code and a short user code; a reviewer signed in to the console confirms
//! the code at `/device`; the terminal's polling then returns a bearer token bound to
//! that reviewer's SSO identity. The provider needs no device-grant support.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use rand::Rng;
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use signoff_app::ui::{DeviceCodeView, DevicePage, Nav, device_page};
use signoff_app::wire::{DeviceCode, DeviceCodeRequest, DeviceToken, DeviceTokenError, DeviceTokenRequest, ErrorBody};

use signoff_app::Channel;

use crate::auth::{Person, TERMINAL_TOKEN_PREFIX};
use crate::door::no_access;
use crate::door::schemas::{BodyTooLarge, ReadUnavailable};
use crate::door::{ConsoleForm, MaybeSignedIn, PageError, chrome, sign_in_redirect};
use crate::service::now;
use crate::state::AppState;
use crate::store::{DeviceState, Poll};
use crate::throttle::{Bucket, ClientAddress};
use crate::{Error, keys};

/// How long a code waits for its confirmation.
const CODE_LIFETIME: time::Duration = time::Duration::minutes(10);
/// Letters that cannot be confused with each other or spell words (no vowels, no 0/O, 1/I).
const USER_CODE_ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";

pub fn router() -> Router<AppState> {
    routes().route("/device", get(device_form).post(device_answer)).into()
}

/// The terminal's API routes, each with its OpenAPI description (`crate::api::openapi`).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(new_code))
        .routes(routes!(poll_token))
}

fn user_code() -> String {
    let mut rng = rand::rng();
    let mut letters = (0..8).map(|_| USER_CODE_ALPHABET[rng.random_range(0..USER_CODE_ALPHABET.len())] as char);
    let first: String = letters.by_ref().take(4).collect();
    let second: String = letters.collect();
    format!("{first}-{second}")
}

/// Accepts codes typed loosely: lower case, spaces, no dash.
fn normalise_user_code(typed: &str) -> String {
    let letters: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() == 8 {
        format!("{}-{}", &letters[..4], &letters[4..])
    } else {
        letters
    }
}

/// Start a terminal sign-in: a code for the reviewer to type at `verification_uri`.
#[utoipa::path(
    post,
    path = "/api/v1/device/code",
    tag = "terminal sign-in",
    operation_id = "device_code",
    request_body(content = Option<DeviceCodeRequest>, content_type = "application/json", description = "Optional."),
    responses(
        (status = 200, description = "A device code to poll with and a user code to show.", body = DeviceCode),
        BodyTooLarge,
        (status = 422, description = "A body that is not a `DeviceCodeRequest`.", body = ErrorBody),
        (status = 429, description = "Too many codes from this address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        (status = 503, description = "The code could not be stored; try again.", body = ErrorBody),
    )
)]
async fn new_code(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DeviceCode>, Error> {
    state.throttle.check(Bucket::DeviceCode, client)?;
    let body = body.map_err(body_refused)?;
    let request: DeviceCodeRequest = if body.iter().all(u8::is_ascii_whitespace) {
        DeviceCodeRequest::default()
    } else {
        // `null` says "nothing", like no body at all.
        serde_json::from_slice::<Option<DeviceCodeRequest>>(&body)
            .map_err(|err| Error::Invalid(format!("the body does not fit: {err}")))?
            .unwrap_or_default()
    };
    let client_name = request
        .client_name
        .map(|name| name.chars().filter(|c| !c.is_control()).take(100).collect::<String>());
    let device_code = keys::generate("so_device_");
    let user_code = user_code();
    state
        .service
        .open_device_code(
            &device_code,
            &user_code,
            client_name.as_deref(),
            &client.to_string(),
            CODE_LIFETIME,
        )
        .await?;
    let verification_uri = format!("{}/device", state.auth.public_url);
    Ok(Json(DeviceCode {
        verification_uri_complete: None,
        verification_uri,
        device_code,
        user_code,
        expires_in: CODE_LIFETIME.whole_seconds() as u64,
        interval: state.auth.device_poll_interval.whole_seconds().max(1) as u64,
    }))
}

/// A body that could not be read, as the API's JSON error (axum's own answer is plain text).
fn body_refused(rejection: BytesRejection) -> Error {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Error::PayloadTooLarge(format!(
            "the request body is larger than the limit of {} bytes (1 MiB)",
            signoff_app::wire::limits::BODY_BYTES
        ))
    } else {
        Error::BadRequest(rejection.body_text())
    }
}

/// RFC 8628 answers: 200 with a token, or 400 with `{"error": "..."}`.
fn device_error(error: &str, description: &str) -> Response {
    let body = DeviceTokenError {
        error: error.into(),
        error_description: Some(description.into()),
    };
    (StatusCode::BAD_REQUEST, Json(body)).into_response()
}

/// Poll for the terminal token, every `interval` seconds until the code is confirmed.
#[utoipa::path(
    post,
    path = "/api/v1/device/token",
    tag = "terminal sign-in",
    operation_id = "device_token",
    request_body(content(
        (DeviceTokenRequest = "application/json"),
        (DeviceTokenRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Confirmed: the terminal token.", body = DeviceToken),
        (status = 400, description = "Not (yet) a token, as RFC 8628 words it: `authorization_pending`, `slow_down`, `expired_token`, `access_denied` or `invalid_grant`.", body = DeviceTokenError),
        BodyTooLarge,
        (status = 422, description = "A body without a `device_code`.", body = ErrorBody),
        (status = 429, description = "Too many polls from this address.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        ReadUnavailable,
    )
)]
async fn poll_token(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Error> {
    state.throttle.check(Bucket::DevicePoll, client)?;
    let body = body.map_err(body_refused)?;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let device_code = if is_form {
        serde_urlencoded_device_code(&body)?
    } else {
        serde_json::from_slice::<DeviceTokenRequest>(&body)
            .map_err(|err| Error::Invalid(format!("send {{\"device_code\": \"...\"}}: {err}")))?
            .device_code
    };
    let token = keys::generate(TERMINAL_TOKEN_PREFIX);
    let poll = state
        .service
        .poll_device_code(
            &keys::hash(&device_code),
            state.auth.device_poll_interval,
            &keys::hash(&token),
            state.auth.terminal_token_lifetime,
        )
        .await?;
    Ok(match poll {
        Poll::Issued { expires_at, .. } => Json(DeviceToken {
            access_token: token,
            token_type: "Bearer".into(),
            expires_in: (expires_at - now()).whole_seconds().max(0) as u64,
        })
        .into_response(),
        Poll::Pending => device_error(
            "authorization_pending",
            "waiting for a reviewer to confirm the code at /device",
        ),
        Poll::SlowDown => device_error("slow_down", "polling too fast; wait the interval between polls"),
        Poll::Expired => device_error(
            "expired_token",
            "the code expired before anyone confirmed it; run `signoff login` again",
        ),
        Poll::Denied => device_error("access_denied", "the sign-in was refused in the browser"),
        Poll::AlreadyUsed => device_error("invalid_grant", "this device code was already used"),
        Poll::Unknown => device_error("invalid_grant", "unknown device code"),
    })
}

fn serde_urlencoded_device_code(body: &[u8]) -> Result<String, Error> {
    openidconnect::url::form_urlencoded::parse(body)
        .find(|(name, _)| name == "device_code")
        .map(|(_, value)| value.into_owned())
        .ok_or_else(|| Error::Invalid("send device_code".into()))
}

#[derive(Deserialize)]
struct CodeQuery {
    user_code: Option<String>,
}

/// Only a person signed in through the provider, in a browser, may let a terminal in: a
/// terminal token confirming a code would renew itself forever and outlive its own
/// revocation.
fn browser_reviewer(state: &AppState, person: &Person) -> Result<(), Box<Response>> {
    if person.channel != Channel::Web {
        let refusal = Error::Forbidden(
            "terminal sign-ins are confirmed in a browser signed in through your provider, not with a terminal token"
                .into(),
        );
        return Err(Box::new(PageError::from(refusal).into_response()));
    }
    if person.desk(&state.service).may_read().is_err() {
        return Err(Box::new(no_access(state, person)));
    }
    Ok(())
}

async fn device_form(
    State(state): State<AppState>,
    person: Option<Person>,
    Query(query): Query<CodeQuery>,
) -> Result<Response, PageError> {
    let Some(person) = person else {
        return Ok(sign_in_redirect("/device"));
    };
    if let Err(refusal) = browser_reviewer(&state, &person) {
        return Ok(*refusal);
    }
    let page_chrome = chrome(&state, Some(&person), "Terminal sign-in", Nav::None);
    let page = DevicePage::Enter {
        error: None,
        from_link: query.user_code.is_some(),
    };
    Ok(Html(device_page(page_chrome, page)).into_response())
}

#[derive(Deserialize)]
struct Answer {
    user_code: String,
    /// Absent when the code was just typed: then the request is shown for confirmation.
    answer: Option<String>,
}

async fn device_answer(
    State(state): State<AppState>,
    ConsoleForm {
        who: MaybeSignedIn(person),
        form,
    }: ConsoleForm<MaybeSignedIn, Answer>,
) -> Result<Response, PageError> {
    let Some(person) = person else {
        return Ok(Redirect::to("/device").into_response());
    };
    if let Err(refusal) = browser_reviewer(&state, &person) {
        return Ok(*refusal);
    }
    let code = normalise_user_code(&form.user_code);
    let page_chrome = chrome(&state, Some(&person), "Terminal sign-in", Nav::None);
    let approve = match form.answer.as_deref() {
        None => return confirmation(&state, page_chrome, &code).await,
        Some("approve") => true,
        Some("deny") => false,
        Some(_) => return Err(PageError::from(Error::BadRequest("answer with approve or deny".into()))),
    };
    let answered = state
        .service
        .answer_device_code(&code, &person.identity, approve)
        .await?;
    if !answered {
        return Err(PageError::from(Error::Conflict {
            code: "device_code_unavailable",
            message: "that code is unknown, already answered or expired".into(),
        }));
    }
    Ok(Html(device_page(page_chrome, DevicePage::Done { approved: approve })).into_response())
}

/// The code the reviewer typed, with where and when it was asked for, to confirm.
async fn confirmation(
    state: &AppState,
    page_chrome: signoff_app::ui::Chrome,
    code: &str,
) -> Result<Response, PageError> {
    let info = state.service.device_code_info(code).await?;
    let at = now();
    let page = match info {
        Some(info) if info.state == DeviceState::Pending && info.expires_at > at => {
            let started = info
                .created_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            DevicePage::Confirm(DeviceCodeView {
                user_code: info.user_code,
                client_name: info
                    .client_name
                    .unwrap_or_else(|| "a terminal that did not give its name".into()),
                client_address: info.client_address.unwrap_or_else(|| "unknown".into()),
                requested: format!("{started} ({} minute(s) ago)", (at - info.created_at).whole_minutes()),
            })
        }
        _ => DevicePage::Enter {
            error: Some("That code is unknown, already used or expired. Check the terminal and try again.".into()),
            from_link: false,
        },
    };
    Ok(Html(device_page(page_chrome, page)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_readable_and_typed_loosely() {
        let code = user_code();
        assert_eq!(code.len(), 9);
        assert!(
            code.chars()
                .all(|c| c == '-' || USER_CODE_ALPHABET.contains(&(c as u8)))
        );
        assert_eq!(normalise_user_code("bcdf ghjk"), "BCDF-GHJK");
        assert_eq!(normalise_user_code(&code.to_lowercase()), code);
    }
}
