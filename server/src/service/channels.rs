//! What admins see and do of the notification channels: where each stands, its delivery
//! log, a test message, and sending one event again. Admin-only: only an [`AdminDesk`]
//! offers these (see ARCHITECTURE.md, "Notifications").

use std::sync::Arc;

use super::AdminDesk;
use crate::notify::{Channels, Sink, reader};
use crate::store::{AuditEvent, Delivery, DeliveryStatus};
use crate::{Error, Result};

/// One channel, as the channels page shows it.
#[derive(Clone, Debug)]
pub struct ChannelStatus {
    pub name: String,
    pub description: String,
    /// Events in the trail after the channel's cursor.
    pub behind: i64,
    pub delivered: i64,
    pub retrying: i64,
    pub failed: i64,
    pub last_error: Option<String>,
}

/// Deliveries a page of the log shows.
pub const DELIVERIES_PAGE: i64 = 50;

impl AdminDesk<'_> {
    /// Every configured channel and where it stands.
    pub async fn channels(&self, channels: &Channels) -> Result<Vec<ChannelStatus>> {
        let store = self.service.store();
        let (head, _) = store.audit_head().await?;
        let mut statuses = Vec::new();
        for sink in channels.sinks() {
            let cursor = store.webhook_cursor(sink.name()).await?.unwrap_or(head);
            let (counts, last_error) = store.delivery_counts(sink.name()).await?;
            let count = |wanted: DeliveryStatus| {
                counts
                    .iter()
                    .filter(|(status, _)| *status == wanted)
                    .map(|(_, n)| n)
                    .sum()
            };
            statuses.push(ChannelStatus {
                name: sink.name().to_string(),
                description: sink.describe(),
                behind: (head - cursor).max(0),
                delivered: count(DeliveryStatus::Delivered),
                retrying: count(DeliveryStatus::Retrying),
                failed: count(DeliveryStatus::Failed),
                last_error,
            });
        }
        Ok(statuses)
    }

    /// A page of a channel's delivery log, newest first, before event `before`, with the
    /// events (when still readable).
    pub async fn deliveries(
        &self,
        channels: &Channels,
        name: &str,
        before: Option<i64>,
    ) -> Result<Vec<(Delivery, Option<AuditEvent>)>> {
        let sink = channel(channels, name)?;
        let store = self.service.store();
        let page = store
            .deliveries_page(sink.name(), before.unwrap_or(i64::MAX), DELIVERIES_PAGE)
            .await?;
        let mut rows = Vec::with_capacity(page.len());
        for delivery in page {
            let event = event(self, delivery.seq).await?;
            rows.push((delivery, event));
        }
        Ok(rows)
    }

    /// Sends the channel a test message: `Err` inside says why it failed.
    pub async fn test_channel(&self, channels: &Channels, name: &str) -> Result<std::result::Result<(), String>> {
        let sink = channel(channels, name)?;
        tracing::info!(channel = %name, admin = %self.who.subject, "channel test");
        Ok(sink.test().await)
    }

    /// Sends one event to the channel again, now, and records the attempt.
    pub async fn send_again(&self, channels: &Channels, name: &str, seq: i64) -> Result<Delivery> {
        let sink = channel(channels, name)?;
        let event = event(self, seq)
            .await?
            .ok_or_else(|| Error::not_found(format_args!("event {seq}")))?;
        tracing::info!(channel = %name, seq, admin = %self.who.subject, "sending an event again");
        reader::send_again(self.service.store(), sink.as_ref(), &event).await
    }
}

fn channel<'a>(channels: &'a Channels, name: &str) -> Result<&'a Arc<dyn Sink>> {
    channels
        .get(name)
        .ok_or_else(|| Error::not_found(format_args!("channel {name}")))
}

async fn event(desk: &AdminDesk<'_>, seq: i64) -> Result<Option<AuditEvent>> {
    let found = desk.service.store().audit_events(seq - 1, 1).await?;
    Ok(found.into_iter().find(|event| event.seq == seq))
}
