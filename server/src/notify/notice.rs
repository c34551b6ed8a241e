//! What every chat and mail message about a request says, computed once from the stored
//! request, so Slack, Teams and e-mail never disagree on the facts. Every text field has
//! hidden characters marked (`⟨U+202E⟩`), as the console and the terminal show them:
//! a reviewer deciding from a phone must not be fooled by what they cannot see.

use time::OffsetDateTime;

use signoff_app::timefmt::{Style, time_left};
use signoff_app::{DecideIn, Kind, Request, Status, marked_for_terminal};

/// Lines of the diff a message carries at most...
const DIFF_LINES: usize = 20;
/// ...and characters.
const DIFF_CHARS: usize = 1_500;
/// Characters of the reason a message carries at most.
const REASON_CHARS: usize = 1_000;

/// The facts of one request, ready for a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    pub id: String,
    /// What happened, in a few words: `New request`, `Escalated`, `Expires soon`, or the
    /// outcome.
    pub headline: String,
    pub title: String,
    pub action: String,
    pub resource: String,
    /// `key=value`, in order.
    pub labels: Vec<String>,
    /// The agent, and its owner when known.
    pub agent: String,
    pub on_behalf_of: Option<String>,
    pub reason: String,
    /// The start of the diff, and whether it was cut.
    pub diff: Option<(String, bool)>,
    pub policy: String,
    /// `1 of 2 approvals`.
    pub quorum: String,
    pub status: Status,
    /// `3h 12m left`, or `expired`; empty once decided.
    pub time_left: String,
    /// The request's page in the console.
    pub link: String,
    /// Whether chat may carry decision buttons: pending, and the policy allows it.
    pub buttons: bool,
}

impl Notice {
    /// The notice of an event of `kind` about `request`, as of `now`.
    pub fn new(request: &Request, kind: Kind, link: String, now: OffsetDateTime) -> Notice {
        let pending = request.status == Status::Pending;
        let headline = match (kind, request.status) {
            (Kind::RequestEscalated, Status::Pending) => "Escalated: more reviewers may approve".to_string(),
            (Kind::RequestReminded, Status::Pending) => format!(
                "Reminder: expires in {}",
                signoff_app::timefmt::span(request.expires_at - now, Style::Spaced)
            ),
            (_, Status::Pending) => "Approval needed".to_string(),
            (_, status) => capitalised(status.as_str()),
        };
        let diff = request.diff.as_deref().map(|diff| {
            let mut excerpt = String::new();
            let mut cut = false;
            for (index, line) in diff.lines().enumerate() {
                if index == DIFF_LINES || excerpt.len() + line.len() > DIFF_CHARS {
                    cut = true;
                    break;
                }
                excerpt.push_str(&marked_for_terminal(line));
                excerpt.push('\n');
            }
            (excerpt.trim_end().to_string(), cut)
        });
        let agent = match &request.agent.owner {
            Some(owner) => format!("{} (owner {})", request.agent.name, owner),
            None => request.agent.name.clone(),
        };
        Notice {
            id: request.id.to_string(),
            headline,
            title: marked_for_terminal(&request.title),
            action: marked_for_terminal(&request.action),
            resource: marked_for_terminal(&request.resource),
            labels: request
                .labels
                .iter()
                .map(|(key, value)| marked_for_terminal(&format!("{key}={value}")))
                .collect(),
            agent: marked_for_terminal(&agent),
            on_behalf_of: request.on_behalf_of.as_deref().map(marked_for_terminal),
            reason: marked_for_terminal(&request.reason.chars().take(REASON_CHARS).collect::<String>()),
            diff,
            policy: format!("{} (version {})", request.policy.name, request.policy.version),
            quorum: format!(
                "{} of {} approvals",
                request.approvals, request.policy.approvals_required
            ),
            status: request.status,
            time_left: if pending {
                time_left(now, request.expires_at, Style::Spaced)
            } else {
                String::new()
            },
            link,
            buttons: pending && request.policy.decide_in == DecideIn::Anywhere,
        }
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;
    use time::Duration;

    use signoff_app::{AgentRef, PolicySnapshot, RequestId};

    use super::*;

    fn request(created_at: OffsetDateTime) -> Request {
        Request {
            id: RequestId::new(),
            agent: AgentRef {
                id: signoff_app::AgentId::new(),
                name: "deploy-bot".into(),
                owner: Some("platform@example.com".into()),
            },
            on_behalf_of: Some("alice@example.com".into()),
            action: "deploy.service".into(),
            resource: "k8s://prod/api".into(),
            title: "Deploy api\u{202E}gnp.exe".into(),
            reason: "release 42".into(),
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
            payload: json!({}),
            diff: Some((0..30).map(|n| format!("+line {n}\n")).collect()),
            context: None,
            digest: "d".into(),
            status: Status::Pending,
            policy: PolicySnapshot::simple("prod deploys", 2, Vec::new()),
            approvals: 1,
            created_at,
            expires_at: created_at + Duration::hours(1),
            decided_at: None,
            result: None,
            body_hash: None,
            break_glass: false,
            escalates_at: None,
            started_at: None,
            remind_at: None,
            callback_url: None,
            receipt: None,
            receipt_used_at: None,
        }
    }

    #[test]
    fn a_notice_carries_the_facts_with_hidden_characters_marked() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let notice = Notice::new(
            &request(now),
            Kind::RequestCreated,
            "https://signoff.example/requests/x".into(),
            now,
        );
        assert_eq!(notice.headline, "Approval needed");
        assert_eq!(
            notice.title, "Deploy api⟨U+202E⟩gnp.exe",
            "a reviewer sees the override character"
        );
        assert_eq!(notice.labels, ["env=prod"]);
        assert_eq!(notice.agent, "deploy-bot (owner platform@example.com)");
        assert_eq!(notice.quorum, "1 of 2 approvals");
        assert_eq!(notice.time_left, "1h 0m left");
        let (diff, cut) = notice.diff.expect("a diff");
        assert!(cut, "thirty lines are cut");
        assert_eq!(diff.lines().count(), DIFF_LINES);
        assert!(notice.buttons);
    }

    #[test]
    fn buttons_only_while_pending_and_when_the_policy_allows_chat() {
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let mut console_only = request(now);
        console_only.policy.decide_in = DecideIn::Console;
        assert!(!Notice::new(&console_only, Kind::RequestCreated, String::new(), now).buttons);
        let mut approved = request(now);
        approved.status = Status::Approved;
        let notice = Notice::new(&approved, Kind::RequestApproved, String::new(), now);
        assert!(!notice.buttons);
        assert_eq!(notice.headline, "Approved");
        assert_eq!(notice.time_left, "");
        let reminded = Notice::new(
            &request(now),
            Kind::RequestReminded,
            String::new(),
            now + Duration::minutes(50),
        );
        assert_eq!(reminded.headline, "Reminder: expires in 10m");
    }
}
