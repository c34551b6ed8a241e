//! Slack: one message per request and Slack route, with the facts and, while the request
//! waits and its policy allows chat decisions, Approve and Deny buttons; each decision and
//! the outcome update it in place. The channel only posts and updates what the trail says;
//! the buttons reach `POST /integrations/slack/interactions`, which decides through the
//! one lifecycle under the clicker's linked SSO identity (see ARCHITECTURE.md,
//! "Notifications").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use signoff_app::{Kind, Request, RequestId, Route, Verdict};

use super::reader::{Posted, Sent, Sink, TrailEvent, without_url};
use super::{Notice, Reading, calls_for_notice};
use crate::clock::now;
use crate::config::SlackConfig;
use crate::store::{AuditEvent, SlackMessage};
use crate::{Error, Result};

/// The action ids of the message's buttons.
pub const APPROVE: &str = "signoff_approve";
pub const DENY: &str = "signoff_deny";
const OPEN: &str = "signoff_open";
/// The deny modal's callback id, and its comment field.
pub const DENY_MODAL: &str = "signoff_deny_modal";
pub const COMMENT: &str = "comment";

/// Slack's Web API with the bot token.
pub struct SlackApi {
    api_url: String,
    token: String,
    client: reqwest::Client,
}

/// What a Web API call answered.
pub enum Called {
    Ok(Value),
    /// Worth trying again: rate limited, Slack down, the network.
    Later(String),
    /// Refused for good: `channel_not_found`, `invalid_auth`, ….
    Refused(String),
}

impl SlackApi {
    pub fn new(config: &SlackConfig, client: reqwest::Client) -> Result<SlackApi> {
        let api_url = super::webhook::checked_url(&config.api_url)
            .map_err(|what| Error::Config(format!("notify.slack.api_url: {what}")))?
            .to_string();
        Ok(SlackApi {
            api_url: api_url.trim_end_matches('/').to_string(),
            token: config.bot_token.expose().trim().to_string(),
            client,
        })
    }

    /// `POST {api_url}/{method}` with a JSON body; Slack answers 200 with `ok` false for
    /// most refusals.
    pub async fn call(&self, method: &str, body: &Value) -> Called {
        let sent = self
            .client
            .post(format!("{}/{method}", self.api_url))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => return Called::Later(without_url(err)),
        };
        let status = response.status();
        if status == 429 || status.is_server_error() {
            return Called::Later(format!("{method}: HTTP {status}"));
        }
        let answer: Value = match response.json().await {
            Ok(answer) => answer,
            Err(err) => return Called::Later(format!("{method}: unreadable answer ({err})")),
        };
        if answer["ok"] == true {
            return Called::Ok(answer);
        }
        let error = answer["error"].as_str().unwrap_or("unknown_error").to_string();
        match error.as_str() {
            "ratelimited" | "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
                Called::Later(format!("{method}: {error}"))
            }
            _ => Called::Refused(format!("{method}: {error}")),
        }
    }

    /// Posts to an interaction's `response_url` (an ephemeral answer to the clicker). Only
    /// Slack's own hosts, or the configured API's host (tests), are called.
    pub async fn respond(&self, response_url: &str, text: &str) {
        let allowed = reqwest::Url::parse(response_url).is_ok_and(|url| {
            let host = url.host_str().unwrap_or_default();
            let api_host = reqwest::Url::parse(&self.api_url)
                .ok()
                .and_then(|api| api.host_str().map(str::to_string));
            (url.scheme() == "https" && (host == "hooks.slack.com" || host.ends_with(".slack.com")))
                || api_host.as_deref() == Some(host)
        });
        if !allowed {
            tracing::warn!("an interaction's response_url is not Slack's; no answer sent");
            return;
        }
        let body = json!({"response_type": "ephemeral", "replace_original": false, "text": text});
        if let Err(err) = self.client.post(response_url).json(&body).send().await {
            tracing::warn!(error = %without_url(err), "could not answer a Slack interaction");
        }
    }
}

/// The `[notify.slack]` channel.
pub struct Slack {
    api: Arc<SlackApi>,
    reading: Reading,
    /// Messages posted and not stored yet: the reader stores them with its next record
    /// (see [`Sink::unrecorded`]); until then they count as posted here.
    unrecorded: Mutex<Vec<Posted>>,
    /// What the page being delivered needs, read ahead for all its notices at once.
    read_ahead: Mutex<ReadAhead>,
}

/// The requests a page's notices are about, as stored when the page began, and the
/// messages already posted about them. A delivery takes what was read for it, so a retry
/// reads afresh.
#[derive(Default)]
struct ReadAhead {
    requests: HashMap<RequestId, Request>,
    messages: HashMap<RequestId, Vec<SlackMessage>>,
}

impl Slack {
    pub fn new(api: Arc<SlackApi>, reading: Reading) -> Slack {
        Slack {
            api,
            reading,
            unrecorded: Mutex::default(),
            read_ahead: Mutex::default(),
        }
    }

    fn unrecorded_list(&self) -> std::sync::MutexGuard<'_, Vec<Posted>> {
        self.unrecorded.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read_ahead(&self) -> std::sync::MutexGuard<'_, ReadAhead> {
        self.read_ahead.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The messages posted about `request`, one per route: those stored and those not
    /// stored yet.
    async fn messages(&self, request: RequestId) -> Result<Vec<SlackMessage>> {
        let read = self.read_ahead().messages.remove(&request);
        let mut messages = match read {
            Some(messages) => messages,
            None => {
                self.reading
                    .store
                    .run(move |store| async move { store.slack_messages(request).await })
                    .await?
            }
        };
        for (id, message) in self.unrecorded_list().iter() {
            if *id == request && !messages.iter().any(|stored| stored.route == message.route) {
                messages.push(message.clone());
            }
        }
        Ok(messages)
    }

    /// Posts the notice to each route with no message yet, records each message; a route
    /// with one already gets the headline as a reply in its thread.
    async fn post(&self, event: &AuditEvent) -> Sent {
        let read = request_of(event).and_then(|id| self.read_ahead().requests.remove(&id));
        let request = match read {
            Some(request) => request,
            None => match self.reading.request(event).await {
                Ok(request) => request,
                Err(sent) => return sent,
            },
        };
        let (notice, routes) = match self.reading.notice_of(event, request, |route| match route {
            Route::Slack(channel) => Some(channel.clone()),
            _ => None,
        }) {
            Ok(found) => found,
            Err(sent) => return sent,
        };
        let Ok(id) = notice.id.parse::<RequestId>() else {
            return Sent::GaveUp(format!("request id `{}` is not valid", notice.id));
        };
        let posted = match self.messages(id).await {
            Ok(posted) => posted,
            Err(err) => return Sent::Retry(format!("could not read the posted messages: {err}")),
        };
        let blocks = blocks(&notice, &[]);
        for route in routes {
            let earlier = posted.iter().find(|message| message.route == route);
            let body = match earlier {
                Some(message) => json!({
                    "channel": message.channel_id, "thread_ts": message.ts, "reply_broadcast": true,
                    "text": format!("{}: {}", notice.headline, notice.title),
                }),
                None => json!({"channel": route, "text": fallback(&notice), "blocks": blocks}),
            };
            match self.api.call("chat.postMessage", &body).await {
                Called::Ok(answer) if earlier.is_none() => {
                    let message = SlackMessage {
                        route: route.clone(),
                        channel_id: answer["channel"].as_str().unwrap_or(&route).to_string(),
                        ts: answer["ts"].as_str().unwrap_or_default().to_string(),
                    };
                    self.unrecorded_list().push((id, message));
                }
                Called::Ok(_) => {}
                Called::Later(error) => return Sent::Retry(error),
                Called::Refused(error) => return Sent::GaveUp(error),
            }
        }
        Sent::Accepted
    }

    /// Rewrites every message about the request with its state now: decisions so far, the
    /// outcome, and no buttons once decided.
    async fn update(&self, event: &AuditEvent) -> Sent {
        let request = match self.reading.request(event).await {
            Ok(request) => request,
            Err(sent) => return sent,
        };
        let messages = match self.messages(request.id).await {
            Ok(messages) if messages.is_empty() => return Sent::NothingToSend,
            Ok(messages) => messages,
            Err(err) => return Sent::Retry(format!("could not read the posted messages: {err}")),
        };
        let id = request.id;
        let decisions = match self
            .reading
            .store
            .run(move |store| async move { store.decisions(id).await })
            .await
        {
            Ok(decisions) => decisions,
            Err(err) => return Sent::Retry(format!("could not read the decisions: {err}")),
        };
        let kind = Kind::parse(&event.kind).unwrap_or(Kind::DecisionRecorded);
        let notice = Notice::new(&request, kind, self.reading.link(&request), now());
        let said: Vec<String> = decisions
            .iter()
            .map(|decision| {
                let verb = match decision.verdict {
                    Verdict::Approve => "approved",
                    Verdict::Deny => "denied",
                };
                let who = signoff_app::Actor::Reviewer(decision.reviewer.clone()).name();
                let comment = if decision.comment.is_empty() {
                    String::new()
                } else {
                    format!(": “{}”", signoff_app::marked_for_terminal(&decision.comment))
                };
                format!("{} {verb} ({}){comment}", escape(&who), decision.channel.as_str())
            })
            .collect();
        let blocks = blocks(&notice, &said);
        for message in messages {
            let body =
                json!({"channel": message.channel_id, "ts": message.ts, "text": fallback(&notice), "blocks": blocks});
            match self.api.call("chat.update", &body).await {
                Called::Ok(_) => {}
                Called::Later(error) => return Sent::Retry(error),
                Called::Refused(error) => return Sent::GaveUp(error),
            }
        }
        Sent::Accepted
    }
}

/// The request an event is about, when it names one.
fn request_of(event: &AuditEvent) -> Option<RequestId> {
    event.request_id.as_deref()?.parse().ok()
}

/// Events after which a posted message is rewritten.
fn changes_message(kind: &str) -> bool {
    matches!(
        Kind::parse(kind),
        Some(
            Kind::DecisionRecorded
                | Kind::RequestApproved
                | Kind::RequestDenied
                | Kind::RequestExpired
                | Kind::RequestCancelled
                | Kind::RequestExecuted
                | Kind::RequestFailed
                | Kind::RequestBreakGlass
        )
    )
}

#[async_trait::async_trait]
impl Sink for Slack {
    fn name(&self) -> &str {
        "slack:"
    }

    fn describe(&self) -> String {
        let host = reqwest::Url::parse(&self.api.api_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .unwrap_or_default();
        format!("Slack app through {host} (requests routed slack:#…, updated with each decision)")
    }

    fn wants(&self, event: &AuditEvent) -> bool {
        calls_for_notice(&event.kind) || changes_message(&event.kind)
    }

    async fn prepare(&self, events: &[Arc<TrailEvent>]) {
        let mut ids: Vec<RequestId> = events
            .iter()
            .filter(|event| calls_for_notice(&event.kind))
            .filter_map(|event| request_of(event))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return;
        }
        let asked = ids.clone();
        let read = self
            .reading
            .store
            .run(move |store| async move {
                Ok((
                    store.requests_by_id(&asked).await?,
                    store.slack_messages_of(&asked).await?,
                ))
            })
            .await;
        let mut ahead = ReadAhead::default();
        match read {
            Ok((requests, messages)) => {
                // Every request asked about has its list, empty when nothing was posted.
                ahead.messages = ids.into_iter().map(|id| (id, Vec::new())).collect();
                for (id, message) in messages {
                    ahead.messages.entry(id).or_default().push(message);
                }
                ahead.requests = requests.into_iter().map(|request| (request.id, request)).collect();
            }
            Err(err) => tracing::warn!(%err, "could not read ahead for a page of Slack notices; reading each"),
        }
        *self.read_ahead() = ahead;
    }

    async fn deliver(&self, event: &TrailEvent) -> Sent {
        if calls_for_notice(&event.kind) {
            self.post(event).await
        } else {
            self.update(event).await
        }
    }

    async fn test(&self) -> std::result::Result<(), String> {
        match self.api.call("auth.test", &json!({})).await {
            Called::Ok(_) => Ok(()),
            Called::Later(error) | Called::Refused(error) => Err(error),
        }
    }

    fn unrecorded(&self) -> Vec<Posted> {
        self.unrecorded_list().clone()
    }

    fn recorded(&self, posted: &[Posted]) {
        self.unrecorded_list().retain(|kept| !posted.contains(kept));
    }
}

/// The text notifications show (and screen readers read) when blocks are not shown.
fn fallback(notice: &Notice) -> String {
    format!("{}: {}", notice.headline, notice.title)
}

/// Slack's three control characters, escaped, so request text can neither link nor
/// mention anyone.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The message: the headline and title, the facts, the reason, the diff's start, what
/// reviewers said so far, and the buttons (decisions only while allowed; always a link).
fn blocks(notice: &Notice, decisions: &[String]) -> Value {
    let mut fields = vec![
        format!("*Action*\n{}", escape(&notice.action)),
        format!("*Resource*\n{}", escape(&notice.resource)),
        format!("*Agent*\n{}", escape(&notice.agent)),
    ];
    if let Some(person) = &notice.on_behalf_of {
        fields.push(format!("*On behalf of*\n{}", escape(person)));
    }
    if !notice.labels.is_empty() {
        fields.push(format!("*Labels*\n{}", escape(&notice.labels.join(", "))));
    }
    fields.push(format!("*Policy*\n{}", escape(&notice.policy)));
    fields.push(format!("*Approvals*\n{}", escape(&notice.quorum)));
    if !notice.time_left.is_empty() {
        fields.push(format!("*Time left*\n{}", notice.time_left));
    }
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn",
            "text": format!("*{}*\n*{}*", escape(&notice.headline), escape(&notice.title))}}),
        json!({"type": "section", "fields": fields.into_iter()
            .map(|text| json!({"type": "mrkdwn", "text": text})).collect::<Vec<_>>()}),
    ];
    if !notice.reason.is_empty() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": format!("*Reason*\n{}", escape(&notice.reason))}}));
    }
    if let Some((diff, cut)) = &notice.diff {
        let more = if *cut {
            "\n_(the start: the whole diff is in Signoff)_"
        } else {
            ""
        };
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": format!("```{}```{more}", escape(&diff.replace("```", "'''")))}}));
    }
    if !decisions.is_empty() {
        blocks.push(json!({"type": "context", "elements": decisions.iter()
            .map(|said| json!({"type": "mrkdwn", "text": said})).collect::<Vec<_>>()}));
    }
    let mut buttons = Vec::new();
    if notice.buttons {
        buttons.push(
            json!({"type": "button", "action_id": APPROVE, "style": "primary", "value": notice.id,
            "text": {"type": "plain_text", "text": "Approve"}}),
        );
        buttons.push(
            json!({"type": "button", "action_id": DENY, "style": "danger", "value": notice.id,
            "text": {"type": "plain_text", "text": "Deny"}}),
        );
    }
    buttons.push(json!({"type": "button", "action_id": OPEN, "url": notice.link,
        "text": {"type": "plain_text", "text": "Open in Signoff"}}));
    blocks.push(json!({"type": "actions", "elements": buttons}));
    Value::Array(blocks)
}

/// The modal a Deny opens: the comment a denial needs.
pub fn deny_modal(request: &Request) -> Value {
    json!({
        "type": "modal",
        "callback_id": DENY_MODAL,
        "private_metadata": request.id.to_string(),
        "title": {"type": "plain_text", "text": "Deny request"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn",
                "text": format!("*{}*\n{} on {}", escape(&signoff_app::marked_for_terminal(&request.title)),
                    escape(&request.action), escape(&request.resource))}},
            {"type": "input", "block_id": COMMENT, "label": {"type": "plain_text", "text": "Why deny it?"},
             "element": {"type": "plain_text_input", "action_id": COMMENT, "multiline": true, "max_length": 2000}},
        ],
    })
}
