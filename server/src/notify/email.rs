//! E-mail: one message (plain text and HTML) to each `email:ADDRESS` route of a new,
//! escalated or expiring request, with the facts and a link that opens the request in the
//! console, through SSO sign-in when needed. Nothing is decided by replying (see
//! ARCHITECTURE.md, "Notifications").

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use signoff_app::Route;

use super::reader::{Sent, Sink, TrailEvent};
use super::{Notice, Reading, calls_for_notice};
use crate::config::EmailConfig;
use crate::store::AuditEvent;
use crate::{Error, Result};

/// The `[notify.email]` channel.
pub struct Email {
    mailer: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Where it sends, for admins: the host and port, never the credentials.
    server: String,
    reading: Reading,
}

impl Email {
    /// Checks the SMTP URL and the sender. A plain `smtp://` URL is refused unless it
    /// reaches this machine or asks for STARTTLS (`?tls=required`): mail about approvals
    /// must not cross a network in the clear.
    pub fn new(config: &EmailConfig, timeout: Duration, reading: Reading) -> Result<Email> {
        let refuse = |what: String| Error::Config(format!("notify.email: {what}"));
        let text = config.smtp_url.expose().trim();
        let url = reqwest::Url::parse(text).map_err(|err| refuse(format!("smtp_url is not a URL ({err})")))?;
        let host = url.host_str().unwrap_or_default().to_string();
        let loopback = host == "localhost"
            || host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let tls_asked = url
            .query_pairs()
            .any(|(key, value)| key == "tls" && (value == "required" || value == "opportunistic"));
        match url.scheme() {
            "smtps" => {}
            "smtp" if loopback || tls_asked => {}
            "smtp" => {
                return Err(refuse(
                    "smtp_url: plain smtp:// only to this machine; add `?tls=required` (STARTTLS) or use smtps://"
                        .into(),
                ));
            }
            _ => return Err(refuse("smtp_url must be smtp:// or smtps://".into())),
        }
        let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(text)
            .map_err(|err| refuse(format!("smtp_url: {err}")))?
            .timeout(Some(timeout))
            .build();
        let from: Mailbox = config
            .from
            .trim()
            .parse()
            .map_err(|err| refuse(format!("from `{}` is not an address ({err})", config.from)))?;
        Ok(Email {
            mailer,
            from,
            server: format!(
                "{host}:{}",
                url.port().unwrap_or(if url.scheme() == "smtps" { 465 } else { 25 })
            ),
            reading,
        })
    }

    async fn send(&self, to: &str, subject: &str, plain: String, html: String) -> Sent {
        let to: Mailbox = match to.parse() {
            Ok(to) => to,
            Err(err) => return Sent::GaveUp(format!("`{to}` is not an address: {err}")),
        };
        let message = match Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(MultiPart::alternative_plain_html(plain, html))
        {
            Ok(message) => message,
            Err(err) => return Sent::GaveUp(format!("the message cannot be built: {err}")),
        };
        match self.mailer.send(message).await {
            Ok(_) => Sent::Accepted,
            Err(err) if err.is_permanent() => Sent::GaveUp(err.to_string()),
            Err(err) => Sent::Retry(err.to_string()),
        }
    }
}

#[async_trait::async_trait]
impl Sink for Email {
    fn name(&self) -> &str {
        "email:"
    }

    fn describe(&self) -> String {
        format!(
            "e-mail through {} from {} (new, escalated and expiring requests routed email:…)",
            self.server, self.from
        )
    }

    fn wants(&self, event: &AuditEvent) -> bool {
        calls_for_notice(&event.kind)
    }

    async fn deliver(&self, event: &TrailEvent) -> Sent {
        let (notice, addresses) = match self
            .reading
            .notice(event, |route| match route {
                Route::Email(address) => Some(address.clone()),
                _ => None,
            })
            .await
        {
            Ok(found) => found,
            Err(sent) => return sent,
        };
        let subject = format!("[Signoff] {}: {}", notice.headline, one_line(&notice.title));
        // Each address in turn; a retry sends to all again (at least once, never lost).
        for address in addresses {
            match self.send(&address, &subject, plain_text(&notice), html(&notice)).await {
                Sent::Accepted | Sent::NothingToSend => {}
                failed => return failed,
            }
        }
        Sent::Accepted
    }

    async fn test(&self) -> std::result::Result<(), String> {
        self.mailer
            .test_connection()
            .await
            .map_err(|err| err.to_string())
            .and_then(|connected| connected.then_some(()).ok_or("the SMTP server did not answer".into()))
    }
}

/// At most 150 characters, no line breaks: a subject cannot carry a forged header.
fn one_line(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).take(150).collect()
}

/// The facts as label and value, in the order both bodies show them.
fn facts(notice: &Notice) -> Vec<(&'static str, String)> {
    let mut facts = vec![
        ("Action", notice.action.clone()),
        ("Resource", notice.resource.clone()),
        ("Agent", notice.agent.clone()),
    ];
    if let Some(person) = &notice.on_behalf_of {
        facts.push(("On behalf of", person.clone()));
    }
    if !notice.labels.is_empty() {
        facts.push(("Labels", notice.labels.join(", ")));
    }
    facts.push(("Reason", notice.reason.clone()));
    facts.push(("Policy", notice.policy.clone()));
    facts.push(("Approvals", notice.quorum.clone()));
    facts.push(("Time left", notice.time_left.clone()));
    facts
}

const NO_REPLY: &str = "Decide in Signoff: replying to this message decides nothing.";

fn plain_text(notice: &Notice) -> String {
    let mut text = format!("{}\n\n{}\n\n", notice.headline, notice.title);
    for (label, value) in facts(notice) {
        text.push_str(&format!("{label}: {value}\n"));
    }
    if let Some((diff, cut)) = &notice.diff {
        text.push_str(&format!("\nDiff{}:\n{diff}\n", if *cut { " (the start)" } else { "" }));
    }
    text.push_str(&format!("\nReview it: {}\n\n{NO_REPLY}\n", notice.link));
    text
}

fn html(notice: &Notice) -> String {
    let mut rows = String::new();
    for (label, value) in facts(notice) {
        rows.push_str(&format!(
            "<tr><th align=\"left\" style=\"padding-right:1em\">{label}</th><td>{}</td></tr>",
            escape(&value)
        ));
    }
    let diff = notice
        .diff
        .as_ref()
        .map(|(diff, cut)| {
            format!(
                "<p>Diff{}:</p><pre style=\"background:#f6f8fa;padding:8px\">{}</pre>",
                if *cut { " (the start)" } else { "" },
                escape(diff)
            )
        })
        .unwrap_or_default();
    format!(
        "<!doctype html><html><body style=\"font-family:sans-serif\"><p><strong>{}</strong></p>\
         <h2>{}</h2><table>{rows}</table>{diff}<p><a href=\"{}\">Review it in Signoff</a></p>\
         <p style=\"color:#666\">{NO_REPLY}</p></body></html>",
        escape(&notice.headline),
        escape(&notice.title),
        escape(&notice.link),
    )
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_and_subjects_stay_on_one_line() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(one_line("Deploy\r\nBcc: all@example.com"), "DeployBcc: all@example.com");
    }
}
