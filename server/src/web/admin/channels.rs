//! Notification channels: where each stands, its delivery log, a test, sending again.

use signoff_app::Event;
use signoff_app::ui::{ChannelRow, DeliveryRow};

use super::*;
use crate::service::DELIVERIES_PAGE;
use crate::store::from_millis;

#[derive(Deserialize, Default)]
pub(super) struct DeliveriesParams {
    before: Option<i64>,
}

async fn render_channels(
    state: &AppState,
    person: &Person,
    notice: Option<Notice>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let rows = person
        .admin_desk(&state.service)?
        .channels(&state.channels)
        .await?
        .into_iter()
        .map(|channel| ChannelRow {
            name: channel.name,
            description: channel.description,
            behind: channel.behind,
            delivered: channel.delivered,
            retrying: channel.retrying,
            failed: channel.failed,
            last_error: channel.last_error,
        })
        .collect();
    Ok(html(
        status,
        ui::channels_page(admin_chrome(state, person, "Channels"), rows, notice),
    ))
}

pub(super) async fn channels(
    State(state): State<AppState>,
    PageAdmin(person): PageAdmin,
) -> Result<Response, PageError> {
    render_channels(&state, &person, None, StatusCode::OK).await
}

pub(super) async fn test_channel(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ConsoleForm {
        who: PageAdmin(person), ..
    }: ConsoleForm<PageAdmin, NoFields>,
) -> Result<Response, PageError> {
    let notice = match person
        .admin_desk(&state.service)?
        .test_channel(&state.channels, &name)
        .await?
    {
        Ok(()) => Notice::good(format!("Test sent to {name}: it was accepted.")),
        Err(why) => Notice::bad(format!("The test to {name} failed: {why}")),
    };
    render_channels(&state, &person, Some(notice), StatusCode::OK).await
}

async fn render_deliveries(
    state: &AppState,
    person: &Person,
    name: &str,
    before: Option<i64>,
    notice: Option<Notice>,
) -> Result<Response, PageError> {
    let page = person
        .admin_desk(&state.service)?
        .deliveries(&state.channels, name, before)
        .await?;
    let older = (page.len() as i64 == DELIVERIES_PAGE)
        .then(|| page.last().map(|(delivery, _)| delivery.seq))
        .flatten();
    let mut rows = Vec::with_capacity(page.len());
    for (delivery, event) in page {
        let described = event
            .as_ref()
            .and_then(|event| event.event().ok())
            .map(|event: Event| event.describe())
            .unwrap_or_else(|| delivery.kind.clone());
        rows.push(DeliveryRow {
            seq: delivery.seq,
            event: format!("{} ({})", described, delivery.kind),
            request_id: event.and_then(|event| event.request_id),
            status: delivery.status.as_str().to_string(),
            attempts: delivery.attempts,
            last_attempt_at: from_millis(delivery.last_attempt_at)?,
            delivered_at: delivery.delivered_at.map(from_millis).transpose()?,
            last_error: delivery.last_error,
        });
    }
    Ok(html(
        StatusCode::OK,
        ui::deliveries_page(
            admin_chrome(state, person, "Deliveries"),
            name.to_string(),
            rows,
            older,
            notice,
        ),
    ))
}

pub(super) async fn deliveries(
    State(state): State<AppState>,
    PageAdmin(person): PageAdmin,
    Path(name): Path<String>,
    Query(params): Query<DeliveriesParams>,
) -> Result<Response, PageError> {
    render_deliveries(&state, &person, &name, params.before, None).await
}

pub(super) async fn send_again(
    State(state): State<AppState>,
    Path((name, seq)): Path<(String, i64)>,
    ConsoleForm {
        who: PageAdmin(person), ..
    }: ConsoleForm<PageAdmin, NoFields>,
) -> Result<Response, PageError> {
    let delivery = person
        .admin_desk(&state.service)?
        .send_again(&state.channels, &name, seq)
        .await?;
    let notice = match delivery.last_error {
        None => Notice::good(format!("Event {seq} sent again to {name}: accepted.")),
        Some(error) => Notice::bad(format!("Event {seq} sent again to {name}: {error}")),
    };
    render_deliveries(&state, &person, &name, None, Some(notice)).await
}
