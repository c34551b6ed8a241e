//! Who is calling: agents by API key, people by SSO session (console) or terminal token;
//! their roles from group mappings; role-gated extractors; CSRF defences.

pub use crate::sso::{AuthState, RoleMap, SessionUser, TERMINAL_TOKEN_PREFIX};

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use time::OffsetDateTime;
use tower_sessions::Session;

use signoff_app::ui::UserBadge;
use signoff_app::wire::Role;
use signoff_app::{Channel, Identity};

use crate::service::now;
use crate::state::AppState;
use crate::{Error, Result, keys};

pub const USER_KEY: &str = "user";
pub const CSRF_KEY: &str = "csrf";
pub const LOGIN_KEY: &str = "login";
/// When the session was last saved by activity (Unix seconds).
const SEEN_KEY: &str = "seen";
/// Activity extends the session's idle timeout, saved at most this often (a write per
/// page view would be wasted on SQLite's single writer).
const TOUCH_EVERY_S: i64 = 300;
/// A signed-in person (who may still have no role).
#[derive(Clone, Debug)]
pub struct Person {
    pub identity: Identity,
    pub roles: Vec<Role>,
    pub auth_time: Option<OffsetDateTime>,
    /// Web for a console session, terminal for a terminal token.
    pub channel: Channel,
    /// The session's CSRF token (console sessions only).
    csrf: Option<String>,
    /// What they signed in with, so long-lived responses can end when it does.
    pub credential: Credential,
}

/// How a person proved who they are on this call.
#[derive(Clone, Debug)]
pub enum Credential {
    /// A console session (by id).
    Session(Option<tower_sessions::session::Id>),
    /// A terminal token (by hash).
    Terminal { token_hash: String },
}

impl Credential {
    /// What the writer checks again for a change this person asks for.
    pub fn held(&self) -> crate::engine::Held {
        match self {
            Credential::Terminal { token_hash } => crate::engine::Held::TerminalToken(token_hash.clone()),
            // Read from the session store on every call.
            Credential::Session(_) => crate::engine::Held::Nothing,
        }
    }

    /// Whether the credential still stands: the session exists, unexpired and within its
    /// lifetime; the token is neither revoked nor expired.
    pub async fn still_valid(&self, state: &AppState) -> Result<bool> {
        use tower_sessions::SessionStore;
        match self {
            Credential::Terminal { token_hash } => {
                Ok(state.service.terminal_token_by_hash(token_hash).await?.is_some())
            }
            Credential::Session(None) => Ok(false),
            Credential::Session(Some(id)) => {
                let record = state
                    .sessions
                    .load(id)
                    .await
                    .map_err(|err| Error::Internal(format!("session store: {err}")))?;
                let Some(record) = record else { return Ok(false) };
                let user = record
                    .data
                    .get(USER_KEY)
                    .and_then(|user| serde_json::from_value::<SessionUser>(user.clone()).ok());
                Ok(record.expiry_date > now()
                    && user.is_some_and(|user| now() - user.signed_in_at <= state.auth.session_lifetime))
            }
        }
    }
}

impl Person {
    /// This person's desk at the service: what their roles let them read and do.
    pub fn desk<'a>(&'a self, service: &'a crate::service::Service) -> crate::service::Desk<'a> {
        service
            .desk(&self.identity, &self.roles)
            .holding(self.credential.held())
    }

    /// This person's admin desk at the service, refused without the admin role.
    pub fn admin_desk<'a>(&'a self, service: &'a crate::service::Service) -> Result<crate::service::AdminDesk<'a>> {
        self.desk(service).admin()
    }
}

impl Person {
    pub fn badge(&self) -> UserBadge {
        UserBadge {
            name: self.identity.display_name().to_string(),
            roles: self.roles.clone(),
        }
    }

    pub fn csrf(&self) -> Option<&str> {
        self.csrf.as_deref()
    }

    /// Cookie-borne calls must prove they come from our own pages; token-borne calls
    /// cannot be forged by another site and need nothing more.
    pub fn check_csrf(&self, provided: Option<&str>) -> Result<()> {
        match &self.csrf {
            None => Ok(()),
            Some(expected) if provided.is_some_and(|given| constant_time_eq(given, expected)) => Ok(()),
            Some(_) => Err(Error::Forbidden(
                "this form has expired or did not come from Signoff (CSRF check failed); reload the page and try again"
                    .into(),
            )),
        }
    }
}

pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim())
}

/// Reads the person from a terminal token or the console session; `None` when neither.
async fn signed_in(parts: &mut Parts, state: &AppState) -> Result<Option<Person>> {
    if let Some(token) = bearer(parts) {
        if !token.starts_with(TERMINAL_TOKEN_PREFIX) {
            return Err(Error::Unauthorized(
                "this endpoint is for people: use a terminal token from `signoff login`".into(),
            ));
        }
        let token_hash = keys::hash(token);
        let record = state
            .service
            .terminal_token_by_hash(&token_hash)
            .await?
            .ok_or_else(|| {
                Error::Unauthorized("unknown, expired or revoked terminal token: run `signoff login`".into())
            })?;
        let roles = state.auth.roles.roles(&record.identity.groups);
        return Ok(Some(Person {
            identity: record.identity,
            roles,
            auth_time: None,
            channel: Channel::Terminal,
            csrf: None,
            credential: Credential::Terminal { token_hash },
        }));
    }
    let session = Session::from_request_parts(parts, state)
        .await
        .map_err(|(_, message)| Error::Internal(format!("session layer missing: {message}")))?;
    let Some(user) = session.get::<SessionUser>(USER_KEY).await.map_err(session_error)? else {
        return Ok(None);
    };
    if now() - user.signed_in_at > state.auth.session_lifetime {
        // Past the absolute lifetime: sign in again, whatever the activity.
        session.flush().await.map_err(session_error)?;
        return Ok(None);
    }
    let seen: Option<i64> = session.get(SEEN_KEY).await.map_err(session_error)?;
    let now_s = now().unix_timestamp();
    if seen.is_none_or(|seen| now_s - seen >= TOUCH_EVERY_S) {
        // Modifying the session makes the layer save it, which moves its idle expiry.
        session.insert(SEEN_KEY, now_s).await.map_err(session_error)?;
    }
    let csrf = csrf_token(&session).await?;
    let roles = state.auth.roles.roles(&user.identity.groups);
    Ok(Some(Person {
        identity: user.identity,
        roles,
        auth_time: user.auth_time,
        channel: Channel::Web,
        csrf: Some(csrf),
        credential: Credential::Session(session.id()),
    }))
}

/// The session's CSRF token, created on first use.
pub async fn csrf_token(session: &Session) -> Result<String> {
    if let Some(token) = session.get::<String>(CSRF_KEY).await.map_err(session_error)? {
        return Ok(token);
    }
    let token = keys::generate("");
    session.insert(CSRF_KEY, &token).await.map_err(session_error)?;
    Ok(token)
}

pub fn session_error(err: tower_sessions::session::Error) -> Error {
    Error::Internal(format!("session store: {err}"))
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        signed_in(parts, state)
            .await?
            .ok_or_else(|| Error::Unauthorized("sign in first (console) or run `signoff login` (terminal)".into()))
    }
}

impl OptionalFromRequestParts<AppState> for Person {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Option<Self>, Self::Rejection> {
        signed_in(parts, state).await
    }
}

macro_rules! role_gate {
    ($(#[$doc:meta])* $name:ident, $check:expr, $refusal:expr) => {
        $(#[$doc])*
        pub struct $name(pub Person);

        impl AsRef<Person> for $name {
            fn as_ref(&self) -> &Person {
                &self.0
            }
        }

        impl FromRequestParts<AppState> for $name {
            type Rejection = Error;

            async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
                let person = <Person as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
                // The rule is the service's: the extractor only refuses early, in its words.
                let allowed: fn(&crate::service::Desk<'_>) -> bool = $check;
                if allowed(&person.desk(&state.service)) {
                    Ok($name(person))
                } else {
                    Err(Error::Forbidden($refusal.into()))
                }
            }
        }
    };
}

role_gate!(
    /// Someone who may read requests: a reviewer or an admin.
    Viewer,
    |desk| desk.may_read().is_ok(),
    "you have no role in Signoff: none of your groups is mapped to reviewer or admin"
);
role_gate!(
    /// Someone who may decide requests (still subject to each request's policy).
    Reviewer,
    |desk| desk.may_decide().is_ok(),
    "deciding needs the reviewer role"
);
role_gate!(
    /// Someone who may manage Signoff.
    Admin,
    |desk| desk.admin().is_ok(),
    "this needs the admin role"
);

/// Refuses cross-site state changes carried by cookies: a browser always names the
/// page's origin on such requests, and it must be ours.
pub async fn refuse_cross_site(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let headers = request.headers();
    let uses_cookies = headers.contains_key(header::COOKIE) && !headers.contains_key(header::AUTHORIZATION);
    if changes_state && uses_cookies {
        let origin = headers
            .get(header::ORIGIN)
            .or_else(|| headers.get(header::REFERER))
            .and_then(|value| value.to_str().ok());
        if let Some(origin) = origin {
            let ours = state.auth.public_origin();
            let same = origin == ours || origin.strip_prefix(ours).is_some_and(|rest| rest.starts_with('/'));
            if !same {
                use axum::response::IntoResponse;
                tracing::warn!(origin, "refused a cross-site request");
                return Error::Forbidden("cross-site request refused: this form was not sent from Signoff".into())
                    .into_response();
            }
        }
    }
    next.run(request).await
}

/// The dev-mode users (only with `--dev`).
pub fn dev_users() -> Vec<Identity> {
    let person = |key: &str, name: &str, groups: &[&str]| Identity {
        issuer: "signoff-dev".into(),
        subject: format!("dev-{key}"),
        email: Some(format!("{key}@example.com")),
        email_verified: true,
        name: Some(name.into()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    };
    vec![
        person("riley", "Riley Reviewer", &["signoff-reviewers"]),
        person("ada", "Ada Admin", &["signoff-admins", "signoff-reviewers"]),
        person("reese", "Reese Requester", &["signoff-reviewers"]),
    ]
}
