//! Console sign-in: `/auth/login` → provider → `/auth/callback` → session;
//! `/auth/logout`; and with `--dev` only, `/auth/dev`.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Deserialize;
use tower_sessions::Session;

use signoff_app::ui::{DevUser, Nav, dev_signin_page, signed_out_page, url_encode};

use crate::auth::{CSRF_KEY, LOGIN_KEY, SessionUser, USER_KEY, constant_time_eq, csrf_token, dev_users, session_error};
use crate::door::{ConsoleForm, MaybeSignedIn, NoFields, PageError, Visitor, chrome, safe_next};
use crate::service::now;
use crate::sso::oidc::PendingLogin;
use crate::state::AppState;
use crate::throttle::{Bucket, ClientAddress};
use crate::{Error, keys};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/login", get(login))
        .route("/auth/callback", get(callback))
        .route("/auth/logout", axum::routing::post(logout))
        .route("/auth/logged-out", get(logged_out))
        .route("/auth/dev", get(dev_page).post(dev_signin))
}

#[derive(Deserialize)]
struct LoginParams {
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    session: Session,
    Query(params): Query<LoginParams>,
) -> Result<Response, PageError> {
    let next = safe_next(params.next.as_deref());
    // Each start writes a session: anonymous writes are limited per address.
    state.throttle.check(Bucket::SignIn, client)?;
    match &state.auth.oidc {
        None if state.auth.dev => Ok(Redirect::to(&format!("/auth/dev?next={}", url_encode(&next))).into_response()),
        None => Err(PageError::from(Error::Config(
            "no OpenID Provider is configured".into(),
        ))),
        Some(oidc) => {
            let (url, pending) = oidc.begin(next).await?;
            session
                .insert(LOGIN_KEY, &pending)
                .await
                .map_err(|err| PageError::from(session_error(err)))?;
            Ok(Redirect::to(&url).into_response())
        }
    }
}

#[derive(Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

async fn callback(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<CallbackParams>,
) -> Result<Response, PageError> {
    // Taken out, so a state (and its nonce and verifier) works once.
    let pending: Option<PendingLogin> = session
        .remove(LOGIN_KEY)
        .await
        .map_err(|err| PageError::from(session_error(err)))?;
    let Some(pending) = pending else {
        return Err(PageError::from(Error::BadRequest(
            "this sign-in was already completed or has expired; start again from the sign-in page".into(),
        )));
    };
    if let Some(error) = params.error {
        // Only the standard error code: the description may carry the provider's
        // internals, and anyone can put text in this URL.
        let code: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        tracing::info!(error = %code, description = ?params.error_description, "the provider did not sign someone in");
        return Err(PageError::from(Error::Unauthorized(format!(
            "the provider did not sign you in ({code})"
        ))));
    }
    let returned_state = params.state.unwrap_or_default();
    if !constant_time_eq(&returned_state, &pending.state) {
        return Err(PageError::from(Error::BadRequest(
            "the sign-in response does not match this browser's sign-in (state mismatch); start again".into(),
        )));
    }
    let code = params
        .code
        .ok_or_else(|| PageError::from(Error::BadRequest("the provider sent no code".into())))?;
    let oidc = state
        .auth
        .oidc
        .as_ref()
        .ok_or_else(|| PageError::from(Error::Config("no OpenID Provider is configured".into())))?;
    let login = oidc.finish(&code, &pending).await?;
    tracing::info!(issuer = %login.identity.issuer, subject = %login.identity.subject, "signed in");
    let user = SessionUser {
        identity: login.identity,
        auth_time: login.auth_time,
        signed_in_at: now(),
        id_token: Some(login.id_token),
    };
    start_session(&session, user).await?;
    Ok(Redirect::to(&pending.next).into_response())
}

/// A new session id and CSRF token at every sign-in: nothing set before it survives.
async fn start_session(session: &Session, user: SessionUser) -> Result<(), Error> {
    session.cycle_id().await.map_err(session_error)?;
    session.insert(USER_KEY, &user).await.map_err(session_error)?;
    session
        .insert(CSRF_KEY, keys::generate(""))
        .await
        .map_err(session_error)?;
    Ok(())
}

/// Signing out is a console form like any other: a session with its CSRF token, so
/// another site cannot sign people out.
async fn logout(
    State(state): State<AppState>,
    session: Session,
    ConsoleForm {
        who: MaybeSignedIn(person),
        ..
    }: ConsoleForm<MaybeSignedIn, NoFields>,
) -> Result<Response, PageError> {
    if person.is_none() {
        return Ok(Redirect::to("/auth/logged-out").into_response());
    }
    let user: Option<SessionUser> = session
        .get(USER_KEY)
        .await
        .map_err(|err| PageError::from(session_error(err)))?;
    session
        .flush()
        .await
        .map_err(|err| PageError::from(session_error(err)))?;
    let post_logout = format!("{}/auth/logged-out", state.auth.public_url);
    if let Some(oidc) = &state.auth.oidc
        && let Some(url) = oidc
            .logout_url(user.and_then(|u| u.id_token).as_deref(), &post_logout)
            .await
    {
        return Ok(Redirect::to(&url).into_response());
    }
    Ok(Redirect::to("/auth/logged-out").into_response())
}

async fn logged_out(State(state): State<AppState>) -> Html<String> {
    Html(signed_out_page(chrome(&state, None, "Signed out", Nav::None)))
}

async fn dev_page(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<LoginParams>,
) -> Result<Response, PageError> {
    if !state.auth.dev {
        return Err(PageError::from(Error::NotFound("no such page".into())));
    }
    let csrf = csrf_token(&session).await?;
    let users = dev_users()
        .into_iter()
        .map(|identity| DevUser {
            key: identity.subject.trim_start_matches("dev-").to_string(),
            name: identity.display_name().to_string(),
            email: identity.email.clone().unwrap_or_default(),
            groups: identity.groups.clone(),
        })
        .collect();
    let next = safe_next(params.next.as_deref());
    Ok(Html(dev_signin_page(
        chrome(&state, None, "Development sign-in", Nav::None),
        users,
        csrf,
        next,
    ))
    .into_response())
}

#[derive(Deserialize)]
struct DevSignIn {
    user: String,
    next: Option<String>,
}

async fn dev_signin(
    State(state): State<AppState>,
    session: Session,
    ConsoleForm { form, .. }: ConsoleForm<Visitor, DevSignIn>,
) -> Result<Response, PageError> {
    if !state.auth.dev {
        return Err(PageError::from(Error::NotFound("no such page".into())));
    }
    let identity = dev_users()
        .into_iter()
        .find(|identity| identity.subject == format!("dev-{}", form.user))
        .ok_or_else(|| PageError::from(Error::BadRequest("no such development user".into())))?;
    let user = SessionUser {
        identity,
        auth_time: Some(now()),
        signed_in_at: now(),
        id_token: None,
    };
    start_session(&session, user).await?;
    Ok(Redirect::to(&safe_next(form.next.as_deref())).into_response())
}
