//! Signed webhooks: each endpoint a channel reading the audit trail (see
//! [`reader`](super::reader)), every event it asked for sent as JSON, signed per Standard
//! Webhooks, with a stable `webhook-id` receivers deduplicate by (see ARCHITECTURE.md,
//! "Notifications").

use std::collections::HashSet;
use std::net::IpAddr;

use reqwest::Url;

use signoff_app::Kind;

use super::reader::{Sent, Sink, TrailEvent, refusal, without_url};
use crate::clock::now;
use crate::config::{NotifyConfig, WebhookConfig};
use crate::store::AuditEvent;
use crate::{Error, Result};

/// An endpoint, checked: where, how to sign, which kinds.
pub struct Endpoint {
    pub name: String,
    url: Url,
    signer: standardwebhooks::Webhook,
    /// `None`: every kind.
    kinds: Option<HashSet<Kind>>,
}

impl Endpoint {
    /// Checks an endpoint's configuration, saying what to change.
    pub fn from_config(config: &WebhookConfig) -> Result<Endpoint> {
        let name = config.name.trim();
        let refuse = |what: String| Error::Config(format!("notify.webhooks `{name}`: {what}"));
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        {
            return Err(Error::Config(format!(
                "notify.webhooks: `{name}` is not a name of 1 to 64 lowercase letters, digits, `-` or `_`"
            )));
        }
        let url = checked_url(&config.url).map_err(|what| refuse(format!("url: {what}")))?;
        let secret = config.secret.expose().trim();
        if !secret.starts_with("whsec_") || secret.len() < "whsec_".len() + 24 {
            return Err(refuse(
                "secret must be `whsec_` and at least 18 random bytes in base64".into(),
            ));
        }
        let signer = standardwebhooks::Webhook::new(secret)
            .map_err(|_| refuse("secret must be `whsec_` followed by base64".into()))?;
        let kinds = if config.events.is_empty() {
            None
        } else {
            let mut kinds = HashSet::new();
            for kind in &config.events {
                let known = Kind::parse(kind.trim()).ok_or_else(|| {
                    refuse(format!(
                        "`{kind}` is not an event kind; kinds are {}",
                        Kind::ALL
                            .iter()
                            .map(|kind| kind.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
                kinds.insert(known);
            }
            Some(kinds)
        };
        Ok(Endpoint {
            name: name.to_string(),
            url,
            signer,
            kinds,
        })
    }

    fn wants(&self, kind: &str) -> bool {
        match (&self.kinds, Kind::parse(kind)) {
            (None, _) => true,
            (Some(kinds), Some(kind)) => kinds.contains(&kind),
            // A kind this version does not know: sent only to endpoints that take all.
            (Some(_), None) => false,
        }
    }
}

/// An outgoing URL as configured: https, or plain http only to this machine (tests and a
/// local relay). The error never repeats the URL, which may hold a token.
pub fn checked_url(text: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|err| format!("not a URL ({err})"))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback => Ok(url),
        _ => Err("must be https (plain http only to this machine)".into()),
    }
}

/// Checks every endpoint of the configuration: names unique, each usable.
pub fn check(config: &NotifyConfig) -> Result<Vec<Endpoint>> {
    let mut names = HashSet::new();
    config
        .webhooks
        .iter()
        .map(|webhook| {
            let endpoint = Endpoint::from_config(webhook)?;
            if !names.insert(endpoint.name.clone()) {
                return Err(Error::Config(format!(
                    "notify.webhooks: two endpoints are named `{}`",
                    endpoint.name
                )));
            }
            Ok(endpoint)
        })
        .collect()
}

#[async_trait::async_trait]
impl Sink for Webhook {
    fn name(&self) -> &str {
        &self.endpoint.name
    }

    fn describe(&self) -> String {
        let kinds = match &self.endpoint.kinds {
            None => "every event".to_string(),
            Some(kinds) => {
                let mut kinds: Vec<&str> = kinds.iter().map(|kind| kind.as_str()).collect();
                kinds.sort_unstable();
                kinds.join(", ")
            }
        };
        // The origin only: a path or query may carry a token.
        format!(
            "signed webhook to {} ({kinds})",
            self.endpoint.url.origin().ascii_serialization()
        )
    }

    fn wants(&self, event: &AuditEvent) -> bool {
        self.endpoint.wants(&event.kind)
    }

    async fn deliver(&self, event: &TrailEvent) -> Sent {
        match event.published() {
            Ok(body) => match self.send(&message_id(event.seq), body).await {
                Ok(()) => Sent::Accepted,
                Err(error) => Sent::Retry(error),
            },
            // Never stall the endpoint on one event: say so, and go on.
            Err(err) => Sent::GaveUp(format!("the event cannot be published: {err}")),
        }
    }

    async fn test(&self) -> std::result::Result<(), String> {
        // The envelope every event has, so a receiver reads a test as it reads the rest:
        // sequence 0, no request, the server as the actor.
        let body = serde_json::json!({
            "type": "signoff.test",
            "timestamp": crate::clock::now()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "data": {
                "seq": 0,
                "request_id": null,
                "actor": {"type": "system"},
                "event": {"message": "A test from Signoff: this endpoint receives events."},
            },
        });
        let id = format!("msg_signoff_test_{}", uuid::Uuid::new_v4().simple());
        self.send(&id, &body.to_string()).await
    }
}

/// A signed webhook endpoint as a channel.
pub struct Webhook {
    endpoint: Endpoint,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(endpoint: Endpoint, client: reqwest::Client) -> Webhook {
        Webhook { endpoint, client }
    }

    /// One signed POST; `Err` says why it was not accepted.
    async fn send(&self, id: &str, body: &str) -> std::result::Result<(), String> {
        let post = self.client.post(self.endpoint.url.clone());
        let response = signed(post, &self.endpoint.signer, id, body)?
            .send()
            .await
            .map_err(without_url)?;
        if response.status().is_success() {
            return Ok(());
        }
        Err(refusal(response).await)
    }
}

/// `post` with `body` as JSON, signed per Standard Webhooks as message `id`, now.
pub(super) fn signed(
    post: reqwest::RequestBuilder,
    signer: &standardwebhooks::Webhook,
    id: &str,
    body: &str,
) -> std::result::Result<reqwest::RequestBuilder, String> {
    let timestamp = now().unix_timestamp();
    let signature = signer
        .sign(id, timestamp, body.as_bytes())
        .map_err(|err| format!("signing failed: {err}"))?;
    Ok(post
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_string()))
}

/// The stable id of an event's message: receivers deduplicate by it.
pub(super) fn message_id(seq: i64) -> String {
    format!("msg_signoff_{seq}")
}
