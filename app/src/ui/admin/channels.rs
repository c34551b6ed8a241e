//! Notification channels: where each stands, its delivery log, a test, sending again.

use super::*;

/// A channel, as the server described it (never a secret).
#[derive(Clone, Debug)]
pub struct ChannelRow {
    pub name: String,
    pub description: String,
    pub behind: i64,
    pub delivered: i64,
    pub retrying: i64,
    pub failed: i64,
    pub last_error: Option<String>,
}

/// One event's delivery to a channel.
#[derive(Clone, Debug)]
pub struct DeliveryRow {
    pub seq: i64,
    /// The event in the one sentence every screen uses.
    pub event: String,
    pub request_id: Option<String>,
    /// delivered, retrying or failed.
    pub status: String,
    pub attempts: i32,
    pub last_attempt_at: OffsetDateTime,
    pub delivered_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
}

pub fn channels_page(chrome: Chrome, rows: Vec<ChannelRow>, notice: Option<Notice>) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let body = view! {
        <h1>"Channels"</h1>
        {admin_nav(AdminSection::Channels)}
        {notice_view(notice)}
        <p class="muted">"Where notices and events go. Each channel reads the audit trail in order; configure channels in the server's configuration file or environment (secrets never show here)."</p>
        {if rows.is_empty() {
            view! { <p class="empty">"No channels are configured."</p> }.into_any()
        } else {
            view! {
                <table id="channels" class="requests">
                    <thead><tr><th scope="col">"Channel"</th><th scope="col">"Behind"</th><th scope="col">"Delivered"</th>
                        <th scope="col">"Retrying"</th><th scope="col">"Failed"</th><th scope="col">"Last error"</th><th scope="col"></th></tr></thead>
                    <tbody>
                        {rows.into_iter().map(|row| {
                            let log = format!("/admin/channels/{}/deliveries", url_encode(&row.name));
                            let test = format!("/admin/channels/{}/test", url_encode(&row.name));
                            view! {
                                <tr data-name=row.name.clone()>
                                    <td><a class="open" href=log>{row.name.clone()}</a><div class="sub">{agent_text(row.description)}</div></td>
                                    <td class="behind">{row.behind}</td>
                                    <td>{row.delivered}</td>
                                    <td class="retrying">{row.retrying}</td>
                                    <td class="failed">{row.failed}</td>
                                    <td class="last-error">{row.last_error.map(agent_text)}</td>
                                    <td><form method="post" action=test class="inline">
                                        {csrf_input(&csrf)}
                                        <button type="submit" class="button">"Send a test"</button>
                                    </form></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
    };
    render(chrome, body)
}

pub fn deliveries_page(
    chrome: Chrome,
    channel: String,
    rows: Vec<DeliveryRow>,
    older: Option<i64>,
    notice: Option<Notice>,
) -> String {
    let csrf = chrome.csrf.clone().unwrap_or_default();
    let base = format!("/admin/channels/{}/deliveries", url_encode(&channel));
    let body = view! {
        <h1>"Deliveries to " <code>{channel.clone()}</code></h1>
        {admin_nav(AdminSection::Channels)}
        {notice_view(notice)}
        {if rows.is_empty() {
            view! { <p class="empty">"Nothing delivered yet."</p> }.into_any()
        } else {
            view! {
                <table id="deliveries" class="requests">
                    <thead><tr><th scope="col">"Event"</th><th scope="col">"Status"</th><th scope="col">"Attempts"</th>
                        <th scope="col">"Last attempt"</th><th scope="col">"Delivered"</th><th scope="col">"Last error"</th><th scope="col"></th></tr></thead>
                    <tbody>
                        {rows.into_iter().map(|row| {
                            let again = format!("{base}/{}/send", row.seq);
                            let class = format!("delivery-status {}", row.status);
                            view! {
                                <tr data-seq=row.seq.to_string()>
                                    <td>{format!("#{} ", row.seq)}{agent_text(row.event)}
                                        {row.request_id.map(|id| view! { <div class="sub"><a href=format!("/requests/{id}")>{id.clone()}</a></div> })}</td>
                                    <td><span class=class>{row.status}</span></td>
                                    <td>{row.attempts}</td>
                                    <td>{timestamp(row.last_attempt_at)}</td>
                                    <td>{row.delivered_at.map(timestamp)}</td>
                                    <td class="last-error">{row.last_error.map(agent_text)}</td>
                                    <td><form method="post" action=again class="inline">
                                        {csrf_input(&csrf)}
                                        <button type="submit" class="button">"Send again"</button>
                                    </form></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }.into_any()
        }}
        {older.map(|before| view! { <p><a href=format!("{base}?before={before}") id="older">"Older deliveries"</a></p> })}
    };
    render(chrome, body)
}
