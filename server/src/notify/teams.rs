//! Microsoft Teams: an Adaptive Card posted to a Workflows webhook ("When a Teams webhook
//! request is received") for each request routed `teams:NAME`, with the facts and a link
//! to the console. Teams carries no decision buttons: reviewers decide in the console (see
//! ARCHITECTURE.md, "Notifications").

use reqwest::Url;
use serde_json::{Value, json};

use signoff_app::Route;

use super::reader::{Sent, Sink, TrailEvent, answered};
use super::{Notice, Reading, calls_for_notice};
use crate::config::TeamsConfig;
use crate::store::AuditEvent;
use crate::{Error, Result};

/// One `[notify.teams.NAME]` webhook.
pub struct Teams {
    /// `teams:NAME`.
    channel: String,
    route: Route,
    url: Url,
    client: reqwest::Client,
    reading: Reading,
}

impl Teams {
    /// Checks the webhook's URL: https (plain http only to this machine).
    pub fn new(name: &str, config: &TeamsConfig, client: reqwest::Client, reading: Reading) -> Result<Teams> {
        let route: Route = format!("teams:{name}")
            .parse()
            .map_err(|err| Error::Config(format!("notify.teams.{name}: {err}")))?;
        let url = super::webhook::checked_url(config.webhook_url.expose())
            .map_err(|what| Error::Config(format!("notify.teams.{name}.webhook_url: {what}")))?;
        Ok(Teams {
            channel: route.to_string(),
            route,
            url,
            client,
            reading,
        })
    }

    async fn post(&self, card: Value) -> Sent {
        let message = json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card,
            }],
        });
        // The URL carries the workflow's signature: `answered` never repeats it.
        answered(self.client.post(self.url.clone()).json(&message).send().await).await
    }
}

#[async_trait::async_trait]
impl Sink for Teams {
    fn name(&self) -> &str {
        &self.channel
    }

    fn describe(&self) -> String {
        format!(
            "Teams Workflows webhook at {} (new, escalated and expiring requests routed {})",
            self.url.host_str().unwrap_or_default(),
            self.route
        )
    }

    fn wants(&self, event: &AuditEvent) -> bool {
        calls_for_notice(&event.kind)
    }

    async fn deliver(&self, event: &TrailEvent) -> Sent {
        match self
            .reading
            .notice(event, |route| (*route == self.route).then_some(()))
            .await
        {
            Ok((notice, _)) => self.post(card(&notice)).await,
            Err(sent) => sent,
        }
    }

    async fn test(&self) -> std::result::Result<(), String> {
        let card = json!({
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": "1.4",
            "body": [{"type": "TextBlock", "wrap": true,
                      "text": format!("A test from Signoff: this channel receives approval requests routed {}.", self.route)}],
            "actions": [{"type": "Action.OpenUrl", "title": "Open Signoff", "url": self.reading.public_url()}],
        });
        match self.post(card).await {
            Sent::Accepted | Sent::NothingToSend => Ok(()),
            Sent::Retry(error) | Sent::GaveUp(error) => Err(error),
        }
    }
}

/// The card: the headline, the title, the facts, the reason, the diff's start, and a
/// button that opens the request in the console.
fn card(notice: &Notice) -> Value {
    let mut facts = vec![
        fact("Action", &notice.action),
        fact("Resource", &notice.resource),
        fact("Agent", &notice.agent),
    ];
    if let Some(person) = &notice.on_behalf_of {
        facts.push(fact("On behalf of", person));
    }
    if !notice.labels.is_empty() {
        facts.push(fact("Labels", &notice.labels.join(", ")));
    }
    facts.push(fact("Policy", &notice.policy));
    facts.push(fact("Approvals", &notice.quorum));
    facts.push(fact("Time left", &notice.time_left));
    let mut body = vec![
        json!({"type": "TextBlock", "text": notice.headline, "weight": "Bolder", "color": "Attention", "wrap": true}),
        json!({"type": "TextBlock", "text": plain(&notice.title), "size": "Large", "weight": "Bolder", "wrap": true}),
        json!({"type": "FactSet", "facts": facts}),
    ];
    if !notice.reason.is_empty() {
        body.push(json!({"type": "TextBlock", "text": plain(&format!("Reason: {}", notice.reason)), "wrap": true}));
    }
    if let Some((diff, cut)) = &notice.diff {
        let mut text = plain(diff);
        if *cut {
            text.push_str("\n… (the whole diff is in the console)");
        }
        body.push(json!({"type": "TextBlock", "text": text, "fontType": "Monospace", "wrap": true, "size": "Small"}));
    }
    json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
        "actions": [{"type": "Action.OpenUrl", "title": "Review in Signoff", "url": notice.link}],
    })
}

fn fact(title: &str, value: &str) -> Value {
    json!({"title": title, "value": plain(value)})
}

/// Text without the Markdown Teams would otherwise render (a title could otherwise show a
/// link that is not the request's).
fn plain(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '*' | '_' | '[' | ']' | '#' | '`' | '~') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_in_request_text_is_shown_as_text() {
        assert_eq!(
            plain("[click](https://evil.example) *now*"),
            "\\[click\\](https://evil.example) \\*now\\*"
        );
    }
}
