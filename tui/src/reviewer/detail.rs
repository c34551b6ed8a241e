//! The detail of one request as a document of lines, wrapped to a width: what the detail
//! view scrolls through and what `signoff show` prints.
//!
//! Everything in it is independent of the clock (absolute times only) so it can be built
//! once when a request loads and kept while the reviewer scrolls.

use ratatui::style::Style;
use ratatui::text::{Line, Span};
use signoff_app::Verdict;
use signoff_app::wire::ReviewView;

use crate::reviewer::theme::Theme;
use crate::text::{hard_wrap, sanitize, timestamp, wrap};
use signoff_app::difftext::{self, LineRole};

/// How wide the field names column is.
const LABEL_COLUMNS: usize = 11;
/// Digest characters shown; enough to compare by eye, with the whole in `show --json`.
pub const DIGEST_PREFIX: usize = 12;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Document {
    pub lines: Vec<Line<'static>>,
    /// For each file of the diff, the line where it starts (for `n`/`p`).
    pub file_starts: Vec<usize>,
    pub file_names: Vec<String>,
}

impl Document {
    /// The lines as plain text (for `signoff show`).
    pub fn plain(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            for span in &line.spans {
                out.push_str(&span.content);
            }
            out.push('\n');
        }
        out
    }
}

/// The first characters of a digest, as the confirmation and the detail show it.
pub fn digest_prefix(digest: &str) -> String {
    digest.chars().take(DIGEST_PREFIX).collect()
}

struct Builder<'t> {
    width: usize,
    theme: &'t Theme,
    lines: Vec<Line<'static>>,
}

impl Builder<'_> {
    fn blank(&mut self) {
        self.lines.push(Line::default());
    }

    fn heading(&mut self, text: &str) {
        self.blank();
        self.lines
            .push(Line::from(Span::styled(text.to_string(), self.theme.heading())));
    }

    /// `Label      value`, the value wrapped under itself.
    fn field(&mut self, label: &str, value: &str) {
        self.field_styled(label, value, Style::new());
    }

    fn field_styled(&mut self, label: &str, value: &str, style: Style) {
        let value_width = self.width.saturating_sub(LABEL_COLUMNS).max(8);
        let value = sanitize(value, false);
        let mut pieces = wrap(&value, value_width);
        if pieces.is_empty() {
            pieces.push(String::new());
        }
        for (index, piece) in pieces.into_iter().enumerate() {
            let label_text = if index == 0 {
                format!("{label:<LABEL_COLUMNS$}")
            } else {
                " ".repeat(LABEL_COLUMNS)
            };
            self.lines.push(Line::from(vec![
                Span::styled(label_text, self.theme.label()),
                Span::styled(piece, style),
            ]));
        }
    }

    /// Prose, indented by two, wrapped at words.
    fn prose(&mut self, text: &str) {
        let text = sanitize(text, true);
        for piece in wrap(&text, self.width.saturating_sub(2)) {
            self.lines.push(Line::from(format!("  {piece}")));
        }
    }

    /// Code-like text, indented by two, broken at the width without looking for words.
    fn code(&mut self, text: &str, style: Style) {
        for raw in text.lines() {
            self.wrapped_code_line(raw, style);
        }
    }

    /// One line of code or diff; pieces after the first start with `↪` so that a wrapped
    /// line cannot pass for a line of its own.
    fn wrapped_code_line(&mut self, raw: &str, style: Style) {
        let clean = sanitize(raw, false);
        let pieces = hard_wrap(&clean, self.width.saturating_sub(2));
        for (index, piece) in pieces.into_iter().enumerate() {
            let gutter = if index == 0 {
                Span::raw("  ")
            } else {
                Span::styled("↪ ", self.theme.dim())
            };
            self.lines.push(Line::from(vec![gutter, Span::styled(piece, style)]));
        }
    }
}

/// Builds the detail document of `review` for `width` columns.
pub fn document(review: &ReviewView, width: usize, theme: &Theme) -> Document {
    let request = &review.request;
    let mut b = Builder {
        width: width.max(20),
        theme,
        lines: Vec::new(),
    };

    b.field("Title", &request.title);
    if request.break_glass {
        b.field_styled(
            "Status",
            &format!(
                "{} · BREAK-GLASS: an admin approved their own request",
                request.status.as_str()
            ),
            theme.warn(),
        );
    } else {
        b.field("Status", request.status.as_str());
    }
    b.field("Action", &request.action);
    b.field("Resource", &request.resource);
    let agent = match &request.agent.owner {
        Some(owner) => format!("{} (owner {owner})", request.agent.name),
        None => request.agent.name.clone(),
    };
    b.field("Initiator", &agent);
    b.field("For", request.on_behalf_of.as_deref().unwrap_or("(nobody named)"));
    let labels = if request.labels.is_empty() {
        "(none)".to_string()
    } else {
        request
            .labels
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect::<Vec<_>>()
            .join("  ")
    };
    b.field("Labels", &labels);
    let policy = &request.policy;
    let groups = if policy.approver_groups.is_empty() {
        "any reviewer".to_string()
    } else {
        policy.approver_groups.join(", ")
    };
    b.field(
        "Policy",
        &format!(
            "{} v{} · needs {} approval{} · approvers: {groups}",
            policy.name,
            policy.version,
            policy.approvals_required,
            if policy.approvals_required == 1 { "" } else { "s" }
        ),
    );
    if !policy.one_from_each.is_empty() {
        b.field("One from each", &policy.one_from_each.join(", "));
    }
    if let Some(reason) = &policy.deny_reason {
        b.field("Denied by policy", reason);
    }
    for why in &policy.why {
        b.field("Matched", why);
    }
    b.field(
        "Approvals",
        &format!("{} of {}", request.approvals, policy.approvals_required),
    );
    b.field("Created", &timestamp(request.created_at));
    b.field("Expires", &timestamp(request.expires_at));
    if let Some(decided_at) = request.decided_at {
        b.field("Decided", &timestamp(decided_at));
    }
    b.field("Digest", &request.digest);
    b.field("ID", &request.id.to_string());
    if !review.viewer.can_decide {
        let why = review
            .viewer
            .reason
            .as_deref()
            .unwrap_or("you cannot decide this request");
        b.field_styled("You", &format!("cannot decide: {why}"), theme.warn());
    }

    b.heading("Reason");
    if request.reason.trim().is_empty() {
        b.prose("(no reason given)");
    } else {
        b.prose(&request.reason);
    }

    b.heading(&format!("Decisions ({})", request.decisions.len()));
    if request.decisions.is_empty() {
        b.prose("(none yet)");
    }
    for decision in &request.decisions {
        let (mark, style) = match decision.verdict {
            Verdict::Approve => ("✓ approved", theme.good()),
            Verdict::Deny => ("✗ denied", theme.bad()),
        };
        let who = sanitize(decision.reviewer.display_name(), false);
        b.lines.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(mark, style),
            Span::raw(format!(
                "  {who} · {} · {}",
                decision.channel.as_str(),
                timestamp(decision.decided_at)
            )),
        ]));
        if !decision.comment.trim().is_empty() {
            let comment = sanitize(&decision.comment, true);
            for piece in wrap(&comment, b.width.saturating_sub(6)) {
                b.lines.push(Line::from(format!("    “ {piece}")));
            }
        }
    }

    b.heading("Payload");
    let payload = serde_json::to_string_pretty(&request.payload).unwrap_or_else(|_| request.payload.to_string());
    b.code(&payload, Style::new());

    let mut file_starts = Vec::new();
    let mut file_names = Vec::new();
    match request.diff.as_deref() {
        Some(diff_text) if !diff_text.trim().is_empty() => {
            let analysis = difftext::outline(diff_text);
            if analysis.files.len() > 1 {
                b.heading(&format!("Files ({})", analysis.files.len()));
                let count_width = analysis.files.len().to_string().len();
                for (number, file) in analysis.files.iter().enumerate() {
                    let name = sanitize(&file.name, false);
                    b.lines.push(Line::from(vec![
                        Span::raw(format!("  {:>count_width$}. {name}  ", number + 1)),
                        Span::styled(format!("+{}", file.added), theme.added()),
                        Span::raw(" "),
                        Span::styled(format!("-{}", file.removed), theme.removed()),
                    ]));
                }
            }
            b.heading("Diff");
            let mut next_file = analysis.files.iter().peekable();
            for (index, raw) in diff_text.lines().enumerate() {
                if let Some(file) = next_file.next_if(|file| file.first_line == index) {
                    file_starts.push(b.lines.len());
                    file_names.push(sanitize(&file.name, false));
                }
                let style = match analysis.roles.get(index) {
                    Some(LineRole::Added) => theme.added(),
                    Some(LineRole::Removed) => theme.removed(),
                    Some(LineRole::Hunk) => theme.hunk(),
                    Some(LineRole::FileHeader) => theme.file_header(),
                    _ => Style::new(),
                };
                b.wrapped_code_line(raw, style);
            }
        }
        _ => {
            b.heading("Diff");
            b.prose("(no diff)");
        }
    }

    if let Some(context) = &request.context {
        b.heading("Context");
        let text = match context {
            serde_json::Value::String(text) => text.clone(),
            other => serde_json::to_string_pretty(other).unwrap_or_else(|_| other.to_string()),
        };
        b.code(&text, Style::new());
    }

    if let Some(result) = &request.result {
        b.heading("Result");
        b.field("Outcome", result.status.status().as_str());
        if let Some(detail) = &result.detail {
            let text = serde_json::to_string_pretty(detail).unwrap_or_else(|_| detail.to_string());
            b.code(&text, Style::new());
        }
    }

    Document {
        lines: b.lines,
        file_starts,
        file_names,
    }
}
