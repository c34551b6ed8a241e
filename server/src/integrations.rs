//! Slack's door: the interactions its buttons and modals send, and the console pages that
//! link a Slack user to the SSO identity signed in. Nothing is taken without a valid,
//! fresh, unused signature; nothing is decided for a Slack user not linked to an identity
//! (never matched by e-mail address); a decision goes through the reviewer's desk like
//! the console's, with channel `slack` (see ARCHITECTURE.md, "Notifications").

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;

use signoff_app::ui::{Nav, SlackLinkPage, slack_link_page};
use signoff_app::wire::DecisionInput;
use signoff_app::{Channel, Identity, RequestId, Verdict};

use crate::door::{ConsoleForm, NoFields, PageError, PageViewer, chrome};
use crate::notify::SlackApp;
use crate::notify::slack::{APPROVE, COMMENT, DENY, DENY_MODAL, deny_modal};
use crate::service::now;
use crate::state::AppState;
use crate::store::millis;
use crate::throttle::{Bucket, ClientAddress};
use crate::{Error, Result};

/// How old a signed interaction may be.
const FRESH: Duration = Duration::from_secs(5 * 60);
/// How long a Slack user stays linked before signing in again to re-link: the groups
/// recorded at linking decide eligibility, so they must not grow stale.
pub const LINK_LIFETIME: Duration = Duration::from_secs(30 * 86_400);
/// How long a one-time link is valid.
const LINK_VALID: Duration = Duration::from_secs(10 * 60);
/// The most an interaction may weigh.
const BODY_BYTES: usize = 64 * 1024;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/integrations/slack/interactions", post(interaction))
        .layer(DefaultBodyLimit::max(BODY_BYTES))
}

/// The linking pages: console pages, behind sign-in.
pub fn pages() -> Router<AppState> {
    Router::new().route("/integrations/slack/link/{token}", get(link_form).post(link))
}

/// Checks Slack's v0 signature over `v0:{timestamp}:{body}`, the timestamp's freshness,
/// and that the signature was not used before.
async fn verify(state: &AppState, slack: &SlackApp, headers: &HeaderMap, body: &[u8]) -> Result<()> {
    let refused = |why: &str| Error::Unauthorized(format!("not a valid Slack request: {why}"));
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let timestamp = header("x-slack-request-timestamp").ok_or_else(|| refused("no timestamp"))?;
    let signature = header("x-slack-signature").ok_or_else(|| refused("no signature"))?;
    let sent: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| refused("a timestamp that is no number"))?;
    let at = now().unix_timestamp();
    if (at - sent).unsigned_abs() > FRESH.as_secs() {
        return Err(refused("stale timestamp"));
    }
    let given = signature
        .strip_prefix("v0=")
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or_else(|| refused("a malformed signature"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(slack.signing_secret.expose().as_bytes())
        .map_err(|_| Error::Internal("the Slack signing secret cannot key HMAC".into()))?;
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    // Constant time: nothing about the right signature leaks through timing.
    mac.verify_slice(&given).map_err(|_| refused("a wrong signature"))?;
    let now_ms = millis(now());
    let forget_before = now_ms - 2 * FRESH.as_millis() as i64;
    if !state
        .service
        .store()
        .take_slack_signature(signature, now_ms, forget_before)
        .await?
    {
        return Err(refused("a replay"));
    }
    Ok(())
}

#[derive(Deserialize)]
struct Form {
    payload: String,
}

#[derive(Deserialize)]
struct Interaction {
    #[serde(rename = "type")]
    kind: String,
    user: SlackUser,
    team: Option<Team>,
    trigger_id: Option<String>,
    response_url: Option<String>,
    #[serde(default)]
    actions: Vec<Action>,
    view: Option<View>,
}

#[derive(Deserialize)]
struct SlackUser {
    id: String,
    team_id: Option<String>,
}

#[derive(Deserialize)]
struct Team {
    id: String,
}

#[derive(Deserialize)]
struct Action {
    action_id: String,
    value: Option<String>,
}

#[derive(Deserialize)]
struct View {
    callback_id: String,
    private_metadata: String,
    state: Value,
}

/// `POST /integrations/slack/interactions`: a button click or a modal's submission.
async fn interaction(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response> {
    let Some(slack) = state.channels.slack() else {
        return Err(Error::NotFound("no Slack app is configured".into()));
    };
    if let Err(refusal) = verify(&state, slack, &headers, &body).await {
        // Only refusals count against the address: Slack's own calls are never slowed.
        state.throttle.check(Bucket::SignIn, client)?;
        tracing::warn!(%client, %refusal, "a Slack interaction was refused");
        return Err(refusal);
    }
    let form: Form = serde_urlencoded::from_bytes(&body)
        .map_err(|_| Error::BadRequest("a Slack interaction carries a `payload` field".into()))?;
    let interaction: Interaction = serde_json::from_str(&form.payload)
        .map_err(|err| Error::BadRequest(format!("an interaction Signoff cannot read: {err}")))?;
    let team = interaction
        .team
        .as_ref()
        .map(|team| team.id.clone())
        .or_else(|| interaction.user.team_id.clone())
        .ok_or_else(|| Error::BadRequest("the interaction names no workspace".into()))?;
    match interaction.kind.as_str() {
        "block_actions" => clicked(&state, slack, &team, &interaction).await,
        "view_submission" => submitted(&state, &team, &interaction).await,
        _ => Ok(StatusCode::OK.into_response()),
    }
}

/// The identity a Slack user decides as, and the roles it held when linked.
async fn linked(state: &AppState, team: &str, user: &str) -> Result<Option<Identity>> {
    let linked_after = millis(now()) - LINK_LIFETIME.as_millis() as i64;
    state.service.store().slack_identity(team, user, linked_after).await
}

async fn decide(state: &AppState, who: &Identity, id: RequestId, verdict: Verdict, comment: String) -> Result<()> {
    let roles = state.auth.roles.roles(&who.groups);
    let input = DecisionInput {
        verdict,
        comment,
        break_glass: false,
        grant: None,
    };
    state
        .service
        .desk(who, &roles)
        .decide(id, &input, Channel::Slack)
        .await?;
    Ok(())
}

/// A button: Approve decides at once; Deny opens the modal that asks why. An unlinked
/// user gets a one-time link to link their account, and nothing is decided.
async fn clicked(state: &AppState, slack: &SlackApp, team: &str, interaction: &Interaction) -> Result<Response> {
    let Some(action) = interaction
        .actions
        .iter()
        .find(|action| action.action_id == APPROVE || action.action_id == DENY)
    else {
        return Ok(StatusCode::OK.into_response());
    };
    let response_url = interaction.response_url.as_deref().unwrap_or_default();
    let id: RequestId = action
        .value
        .as_deref()
        .and_then(|value| value.parse().ok())
        .ok_or_else(|| Error::BadRequest("the button names no request".into()))?;
    let user = &interaction.user.id;
    let Some(who) = linked(state, team, user).await? else {
        let token = hex::encode(rand::rng().random::<[u8; 32]>());
        let expires = millis(now()) + LINK_VALID.as_millis() as i64;
        state
            .service
            .store()
            .open_slack_link(&crate::keys::hash(&token), team, user, expires)
            .await?;
        let url = format!("{}/integrations/slack/link/{token}", state.auth.public_url);
        let text = format!(
            "Nothing was decided: link your Slack account to your Signoff sign-in first. <{url}|Link it> \
             (valid 10 minutes, for you only), then click again."
        );
        slack.api.respond(response_url, &text).await;
        return Ok(StatusCode::OK.into_response());
    };
    if action.action_id == DENY {
        let request = state
            .service
            .desk(&who, &state.auth.roles.roles(&who.groups))
            .request(id)
            .await;
        let request = match request {
            Ok(_) => state.service.store().get_request(id).await?,
            Err(refusal) => {
                slack.api.respond(response_url, &format!("Not opened: {refusal}")).await;
                return Ok(StatusCode::OK.into_response());
            }
        };
        if let (Some(request), Some(trigger)) = (request, interaction.trigger_id.as_deref()) {
            let opened = slack
                .api
                .call(
                    "views.open",
                    &json!({"trigger_id": trigger, "view": deny_modal(&request)}),
                )
                .await;
            if let crate::notify::slack::Called::Later(error) | crate::notify::slack::Called::Refused(error) = opened {
                tracing::warn!(%error, "could not open the deny modal");
                slack
                    .api
                    .respond(response_url, "Slack would not open the form: deny in Signoff.")
                    .await;
            }
        }
        return Ok(StatusCode::OK.into_response());
    }
    match decide(state, &who, id, Verdict::Approve, String::new()).await {
        Ok(()) => {
            slack
                .api
                .respond(response_url, "Approved: recorded under your sign-in.")
                .await
        }
        Err(refusal) => {
            slack
                .api
                .respond(response_url, &format!("Not approved: {refusal}"))
                .await
        }
    }
    Ok(StatusCode::OK.into_response())
}

/// The deny modal's submission: denies with its comment, or shows the refusal at the field.
async fn submitted(state: &AppState, team: &str, interaction: &Interaction) -> Result<Response> {
    let Some(view) = interaction.view.as_ref().filter(|view| view.callback_id == DENY_MODAL) else {
        return Ok(StatusCode::OK.into_response());
    };
    let at_field = |message: String| Json(json!({"response_action": "errors", "errors": {COMMENT: message}}));
    let Some(who) = linked(state, team, &interaction.user.id).await? else {
        return Ok(at_field("Link your Slack account first: click Deny on the message again.".into()).into_response());
    };
    let id: RequestId = view
        .private_metadata
        .parse()
        .map_err(|_| Error::BadRequest("the form names no request".into()))?;
    let comment = view.state["values"][COMMENT][COMMENT]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    match decide(state, &who, id, Verdict::Deny, comment).await {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(refusal) => Ok(at_field(refusal.to_string()).into_response()),
    }
}

/// `GET /integrations/slack/link/{token}`: who is asking to be linked, to confirm.
async fn link_form(
    State(state): State<AppState>,
    PageViewer(person): PageViewer,
    Path(token): Path<String>,
) -> Result<Response, PageError> {
    let page_chrome = chrome(&state, Some(&person), "Link Slack", Nav::None);
    let found = state
        .service
        .store()
        .slack_link(&crate::keys::hash(&token), millis(now()))
        .await?;
    let page = match found {
        Some((team, slack_user)) => SlackLinkPage::Confirm {
            token,
            slack_user,
            team,
            email: person
                .identity
                .email
                .clone()
                .unwrap_or_else(|| person.identity.subject.clone()),
        },
        None => SlackLinkPage::Unknown,
    };
    Ok(Html(slack_link_page(page_chrome, page)).into_response())
}

/// `POST /integrations/slack/link/{token}`: binds the Slack user to the person signed in.
async fn link(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ConsoleForm {
        who: PageViewer(person),
        ..
    }: ConsoleForm<PageViewer, NoFields>,
) -> Result<Response, PageError> {
    let page_chrome = chrome(&state, Some(&person), "Link Slack", Nav::None);
    let linked = state
        .service
        .store()
        .use_slack_link(&crate::keys::hash(&token), &person.identity, millis(now()))
        .await?;
    let page = if linked {
        SlackLinkPage::Done
    } else {
        SlackLinkPage::Unknown
    };
    if linked {
        tracing::info!(subject = %person.identity.subject, "a Slack user was linked");
    }
    Ok(Html(slack_link_page(page_chrome, page)).into_response())
}
