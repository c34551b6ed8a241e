//! Console forms: one extractor for every form a console page posts, so no form handler
//! can skip a check (ARCHITECTURE.md, "Who may do what"). [`ConsoleForm`] takes a console
//! session only: a terminal token or an agent key is refused, since those are for the API
//! and a form is the browser's door. It then checks the form's CSRF token against the
//! session's, and only then reads the form's fields.

use axum::extract::rejection::RawFormRejection;
use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequestParts, RawForm, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower_sessions::Session;

use crate::Error;
use crate::auth::{Credential, Person, constant_time_eq, csrf_token};
use crate::door::{PageAdmin, PageError, PageViewer};
use crate::state::AppState;

/// A console form of fields `T`, posted by the person `G` lets through (an admin, a viewer,
/// or anyone signed in), from a console session, with the session's CSRF token.
pub struct ConsoleForm<G, T> {
    pub who: G,
    pub form: T,
}

/// A form with no fields but its CSRF token.
#[derive(Deserialize)]
pub struct NoFields {}

/// Who may post a form: the extractor's refusal is a page.
pub trait FormGate: FromRequestParts<AppState, Rejection = Response> {
    /// The person posting; `None` for [`MaybeSignedIn`] with nobody signed in, and for a
    /// [`Visitor`].
    fn person(&self) -> Option<&Person>;

    /// The token a form must carry that nobody signed in posts: the session's.
    fn visitor_csrf(&self) -> Option<&str> {
        None
    }
}

/// Someone signing in: their form carries the CSRF token the session gave the sign-in
/// page, whoever (if anyone) is signed in already.
pub struct Visitor {
    csrf: String,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, message)| {
                PageError::from(Error::Internal(format!("session layer missing: {message}"))).into_response()
            })?;
        let csrf = csrf_token(&session)
            .await
            .map_err(|error| PageError::from(error).into_response())?;
        Ok(Visitor { csrf })
    }
}

impl FormGate for Visitor {
    fn person(&self) -> Option<&Person> {
        None
    }

    fn visitor_csrf(&self) -> Option<&str> {
        Some(&self.csrf)
    }
}

impl FormGate for PageAdmin {
    fn person(&self) -> Option<&Person> {
        Some(&self.0)
    }
}

impl FormGate for PageViewer {
    fn person(&self) -> Option<&Person> {
        Some(&self.0)
    }
}

/// Anyone signed in to the console, with or without a role, or nobody: for the forms
/// whose handler answers nobody itself (signing out, terminal sign-in, one's own tokens).
pub struct MaybeSignedIn(pub Option<Person>);

impl FromRequestParts<AppState> for MaybeSignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        <Person as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map(MaybeSignedIn)
            .map_err(|error| PageError::from(error).into_response())
    }
}

impl FormGate for MaybeSignedIn {
    fn person(&self) -> Option<&Person> {
        self.0.as_ref()
    }
}

#[derive(Deserialize)]
struct CsrfField {
    csrf: Option<String>,
}

impl<G, T> FromRequest<AppState> for ConsoleForm<G, T>
where
    G: FormGate + Send,
    T: DeserializeOwned,
{
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        // Before anything reads the credential: a bearer credential on a form is refused
        // whoever it names, so an admin's terminal token cannot drive the admin forms.
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Err(refusal());
        }
        let who = G::from_request_parts(&mut parts, state).await?;
        let person = who.person();
        let RawForm(bytes) = RawForm::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(|rejection| PageError::from(unreadable(rejection)).into_response())?;
        if let Some(expected) = who.visitor_csrf() {
            let CsrfField { csrf } = fields(&bytes).map_err(page)?;
            if !csrf.is_some_and(|given| constant_time_eq(&given, expected)) {
                return Err(page(Error::Forbidden("the sign-in form expired; reload it".into())));
            }
        }
        if let Some(person) = person {
            if !matches!(person.credential, Credential::Session(_)) {
                return Err(refusal());
            }
            let CsrfField { csrf } = fields(&bytes).map_err(page)?;
            // A session's person always has a token; one without is refused all the same.
            if person.csrf().is_none() {
                return Err(refusal());
            }
            person.check_csrf(csrf.as_deref()).map_err(page)?;
        }
        let form = fields(&bytes).map_err(page)?;
        Ok(ConsoleForm { who, form })
    }
}

/// A form's fields, from its body.
fn fields<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    serde_urlencoded::from_bytes(bytes).map_err(|err| Error::BadRequest(format!("the form could not be read: {err}")))
}

/// An error as the page that shows it.
fn page(error: Error) -> Response {
    PageError::from(error).into_response()
}

/// The page for a form posted with anything but a console session.
fn refusal() -> Response {
    let error = Error::Forbidden(
        "console forms take a signed-in browser session only: terminal tokens and API keys are for the API".into(),
    );
    PageError::from(error).into_response()
}

/// A form body that could not be read: too large, not a form, or cut short.
fn unreadable(rejection: RawFormRejection) -> Error {
    match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Error::PayloadTooLarge(format!(
            "the form is larger than {} bytes",
            signoff_app::wire::limits::BODY_BYTES
        )),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            Error::UnsupportedMediaType("a console form is sent as application/x-www-form-urlencoded".into())
        }
        _ => Error::BadRequest(rejection.body_text()),
    }
}
