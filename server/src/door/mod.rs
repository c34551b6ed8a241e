//! What every door shares, below all of them: the page extractors and their refusals,
//! page errors rendered by one `IntoResponse`, the console's chrome, the sign-in redirect,
//! the CSRF-checking form extractor, a request id from the path, and list parameters.

pub mod form;
mod list;
pub mod schemas;

pub use form::{ConsoleForm, MaybeSignedIn, NoFields, Visitor};
pub use list::ListParams;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use signoff_app::RequestId;
use signoff_app::ui::{Chrome, Nav, error_page, no_access_page};

use crate::Error;
use crate::auth::Person;
use crate::state::AppState;

/// A person who may read requests, for a page: the extractor refuses with a page, never
/// JSON (nobody signed in: to sign-in and back; no role: the no-access page), so a page
/// handler cannot forget the check (ARCHITECTURE.md, "Who may do what").
pub struct PageViewer(pub Person);

/// An admin, for an admin page or form: refused like [`PageViewer`], and with a 403 page
/// for people without the admin role.
pub struct PageAdmin(pub Person);

impl FromRequestParts<AppState> for PageViewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let person = <Person as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map_err(|error| PageError::from(error).into_response())?;
        match person {
            None => Err(sign_in_redirect(&return_path(parts))),
            Some(person) if person.desk(&state.service).may_read().is_err() => Err(no_access(state, &person)),
            Some(person) => Ok(PageViewer(person)),
        }
    }
}

impl FromRequestParts<AppState> for PageAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let PageViewer(person) = PageViewer::from_request_parts(parts, state).await?;
        if person.admin_desk(&state.service).is_ok() {
            Ok(PageAdmin(person))
        } else {
            let refusal = Error::Forbidden("the admin pages need the admin role".into());
            Err(PageError::from(refusal).into_response())
        }
    }
}

/// An admin or an auditor, for the audit trail's pages: refused like [`PageViewer`] (an
/// auditor needs no other role), with a 403 page for everyone else.
pub struct PageAuditor(pub Person);

impl FromRequestParts<AppState> for PageAuditor {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let person = <Person as OptionalFromRequestParts<AppState>>::from_request_parts(parts, state)
            .await
            .map_err(|error| PageError::from(error).into_response())?;
        let Some(person) = person else {
            return Err(sign_in_redirect(&return_path(parts)));
        };
        let desk = person.desk(&state.service);
        if desk.audit().is_ok() {
            return Ok(PageAuditor(person));
        }
        if desk.may_read().is_err() {
            return Err(no_access(state, &person));
        }
        let refusal =
            Error::Forbidden("the admin pages need the admin role (the audit trail, the auditor role)".into());
        Err(PageError::from(refusal).into_response())
    }
}

/// Where to come back to after signing in: this page, or for a form post (which cannot be
/// replayed by a redirect) the page the form was on.
fn return_path(parts: &Parts) -> String {
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    if parts.method == Method::GET || parts.method == Method::HEAD {
        return path;
    }
    match parts.uri.path() {
        admin if admin.starts_with("/admin") => "/admin".into(),
        decide if decide.starts_with("/requests/") && decide.ends_with("/decide") => {
            decide.trim_end_matches("/decide").to_string()
        }
        _ => "/".into(),
    }
}

/// An error shown to a person as a page with a way back, not as JSON.
pub struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(error: Error) -> Self {
        PageError(error)
    }
}

/// What a failed page leaves for [`render_page_errors`]: its status and the sentence to show.
#[derive(Clone)]
struct PageFailure {
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, _) = self.0.status_and_code();
        let mut response = status.into_response();
        if matches!(self.0, Error::TooManyRequests { .. }) {
            self.0.add_headers(response.headers_mut());
        }
        response.extensions_mut().insert(PageFailure {
            message: self.0.public_message(),
        });
        response
    }
}

/// The one layer that renders page errors: a handler returns a [`PageError`] (with `?`
/// from any `Error`), and this renders it as the error page in the chrome of whoever is
/// signed in, so no handler builds error pages itself.
pub async fn render_page_errors(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // Who is asking is read only if the page failed: keep what the extractor needs.
    let mut asker = axum::http::Request::new(());
    *asker.headers_mut() = request.headers().clone();
    *asker.extensions_mut() = request.extensions().clone();
    let response = next.run(request).await;
    let Some(failure) = response.extensions().get::<PageFailure>().cloned() else {
        return response;
    };
    let (mut parts, ()) = asker.into_parts();
    let person = <Person as OptionalFromRequestParts<AppState>>::from_request_parts(&mut parts, &state)
        .await
        .ok()
        .flatten();
    let mut rendered = error_response(&state, person.as_ref(), response.status(), failure.message);
    for name in [axum::http::header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            rendered.headers_mut().insert(name, value.clone());
        }
    }
    rendered
}

/// The error page, in the chrome of `person` (or of nobody).
pub fn error_response(state: &AppState, person: Option<&Person>, status: StatusCode, message: String) -> Response {
    let page = error_page(chrome(state, person, "Error", Nav::None), status.as_u16(), message);
    (status, Html(page)).into_response()
}

/// A page for a person, or the sign-in page for nobody.
pub fn chrome(state: &AppState, person: Option<&Person>, title: &str, nav: Nav) -> Chrome {
    let mut chrome = Chrome::new(title);
    chrome.dev = state.auth.dev;
    chrome.nav = nav;
    if let Some(person) = person {
        chrome.user = Some(person.badge());
        chrome.csrf = person.csrf().map(String::from);
    }
    chrome
}

/// Sends someone who is not signed in to sign in, coming back to `next` afterwards.
pub fn sign_in_redirect(next: &str) -> Response {
    Redirect::to(&format!("/auth/login?next={}", signoff_app::ui::url_encode(next))).into_response()
}

/// Only local paths are followed after sign-in: never another site. Browsers forgive a
/// lot (they drop tabs and newlines, read `\\` as `/`), so anything but plain visible
/// ASCII is refused rather than cleaned, as is a path that could read as `//host`
/// once decoded.
pub fn safe_next(next: Option<&str>) -> String {
    let local = |path: &str| {
        path.starts_with('/')
            && !path.starts_with("//")
            && path.len() < 2048
            && path
                .bytes()
                .all(|byte| byte.is_ascii_graphic() && byte != b'\\' && byte != b'@')
    };
    match next {
        Some(path) if local(path) && local(&percent_decoded(path)) => path.to_string(),
        _ => "/".to_string(),
    }
}

/// `text` with `%XX` escapes decoded (bytes that do not decode stay as they are).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn no_access(state: &AppState, person: &Person) -> Response {
    let email = person
        .identity
        .email
        .clone()
        .unwrap_or_else(|| person.identity.subject.clone());
    let page = no_access_page(
        chrome(state, Some(person), "No access", Nav::None),
        email,
        person.identity.groups.clone(),
        state.auth.roles.granting_groups(),
    );
    (StatusCode::FORBIDDEN, Html(page)).into_response()
}

/// A state-changing API call by the person `G` lets through, with the session's CSRF token
/// in `X-CSRF-Token` when it comes with the console's cookie (a terminal token needs none:
/// another site cannot send it). Checked before the path or the body is read.
pub struct CsrfChecked<G>(pub G);

impl<G> FromRequestParts<AppState> for CsrfChecked<G>
where
    G: FromRequestParts<AppState, Rejection = Error> + AsRef<Person> + Send,
{
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let who = G::from_request_parts(parts, state).await?;
        let provided = parts.headers.get("x-csrf-token").and_then(|value| value.to_str().ok());
        who.as_ref().check_csrf(provided)?;
        Ok(CsrfChecked(who))
    }
}

/// A request's id from the path (`/…/{id}…`), typed: anything that is not an id is a
/// request that does not exist (404), never a 400 that tells ids from other text.
#[derive(utoipa::IntoParams)]
#[into_params(names("id"), parameter_in = Path)]
pub struct RequestPath(
    /// The request's id (a UUID).
    #[param(value_type = String)]
    pub RequestId,
);

impl<S: Send + Sync> FromRequestParts<S> for RequestPath {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            <axum::extract::Path<String> as FromRequestParts<S>>::from_request_parts(parts, state)
                .await
                .map_err(|_| Error::NotFound("no such request".into()))?;
        request_id(&raw).map(RequestPath)
    }
}

/// A request id from text: anything not an id is a request that does not exist.
pub fn request_id(raw: &str) -> Result<RequestId, Error> {
    raw.parse()
        .map_err(|_| Error::NotFound(format!("no request {}", raw.chars().take(64).collect::<String>())))
}

/// Query text from name and value pairs, the values percent-encoded.
pub fn encode_query(pairs: &[(&str, String)]) -> String {
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", signoff_app::ui::url_encode(value)))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn only_plain_local_paths_are_followed_after_sign_in() {
        for good in [
            "/",
            "/requests/0193?view=split",
            "/history?status=all&label=env%3Dprod",
            "/device",
        ] {
            assert_eq!(safe_next(Some(good)), good);
        }
        for bad in [
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "/ /evil.example",
            "\\\\evil.example",
            "/\\evil.example",
            "//evil.example",
            "/%2F%2Fevil.example",
            "%2F%2Fevil.example",
            "/%2F/evil.example",
            "/%5Cevil.example",
            "/%09/evil.example",
            "/@evil.example",
            "https://evil.example/",
            "javascript:alert(1)",
            "evil.example",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?} is refused");
        }
        assert_eq!(safe_next(None), "/");
    }
}
