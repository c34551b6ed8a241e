//! Drawing: a pure function of the [`State`] onto a frame.

use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Padding, Paragraph, Scrollbar, ScrollbarOrientation, ScrollbarState};
use signoff_app::Verdict;
use signoff_app::timefmt::{Style as TimeStyle, ago, span, time_left};
use signoff_app::wire::RequestSummary;

use crate::reviewer::detail::digest_prefix;
use crate::reviewer::keys::{self, Action, Place};
use crate::reviewer::layout;
use crate::reviewer::state::{Connection, ListView, Modal, Screen, State, Tone};
use crate::reviewer::theme::Theme;
use crate::text::{ellipsize, fit, fit_right, sanitize, width, wrap};

/// Draws the whole screen.
pub fn view(state: &State, frame: &mut Frame) {
    let area = frame.area();
    if area.width < 20 || area.height < 6 {
        frame.render_widget(Paragraph::new("signoff: window too small"), area);
        return;
    }
    match state.screen {
        Screen::Queue | Screen::History => list_screen(state, frame, area),
        Screen::Detail => detail_screen(state, frame, area),
    }
    if let Some(modal) = &state.modal {
        draw_modal(state, modal, frame, area);
    }
}

fn row(area: Rect, y: u16) -> Rect {
    Rect {
        x: area.x,
        y: area.y + y,
        width: area.width,
        height: 1,
    }
}

/// A full-width bar with `left` and `right` text.
fn bar(left: &str, right: &str, columns: usize, theme: &Theme) -> Line<'static> {
    let right = ellipsize(right, columns / 2);
    let left_room = columns.saturating_sub(width(&right) + 1);
    let left = fit(left, left_room);
    Line::from(format!("{left} {right}")).style(theme.bar())
}

fn identity(state: &State) -> String {
    state
        .me
        .as_ref()
        .map(|me| sanitize(me.identity.display_name(), false))
        .unwrap_or_default()
}

// ----- lists ---------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Column {
    Title,
    Action,
    Resource,
    Env,
    Agent,
    Age,
    Left,
    Approvals,
    Outcome,
    Deciders,
    When,
}

impl Column {
    fn heading(self) -> &'static str {
        match self {
            Column::Title => "Title",
            Column::Action => "Action",
            Column::Resource => "Resource",
            Column::Env => "Env",
            Column::Agent => "Agent",
            Column::Age => "Age",
            Column::Left => "Left",
            Column::Approvals => "Appr",
            Column::Outcome => "Outcome",
            Column::Deciders => "Deciders",
            Column::When => "When",
        }
    }

    fn right_aligned(self) -> bool {
        matches!(self, Column::Age | Column::Left | Column::Approvals | Column::When)
    }
}

/// Fixed columns keep their width; flexible ones share what is left by weight.
enum Size {
    Fixed(usize),
    Flex(usize),
}

const MARKER: usize = 2;

fn columns(screen: Screen, total: usize) -> Vec<(Column, usize)> {
    let wide = total >= 110;
    let spec: Vec<(Column, Size)> = match screen {
        Screen::History => {
            let mut spec = vec![
                (Column::Title, Size::Flex(4)),
                (Column::Outcome, Size::Fixed(9)),
                (Column::Deciders, Size::Flex(2)),
                (Column::Resource, Size::Flex(3)),
            ];
            if wide {
                spec.insert(1, (Column::Action, Size::Fixed(18)));
            }
            spec.push((Column::When, Size::Fixed(5)));
            spec
        }
        _ => {
            let mut spec = vec![
                (Column::Title, Size::Flex(3)),
                (Column::Action, Size::Fixed(if wide { 18 } else { 12 })),
                (Column::Resource, Size::Flex(2)),
                (Column::Env, Size::Fixed(if wide { 8 } else { 5 })),
            ];
            if wide {
                spec.push((Column::Agent, Size::Fixed(14)));
            }
            spec.extend([
                (Column::Age, Size::Fixed(5)),
                (Column::Left, Size::Fixed(7)),
                (Column::Approvals, Size::Fixed(5)),
            ]);
            spec
        }
    };
    let gaps = spec.len().saturating_sub(1);
    let fixed: usize = spec
        .iter()
        .map(|(_, size)| match size {
            Size::Fixed(n) => *n,
            Size::Flex(_) => 0,
        })
        .sum();
    let weights: usize = spec
        .iter()
        .map(|(_, size)| match size {
            Size::Flex(w) => *w,
            Size::Fixed(_) => 0,
        })
        .sum();
    let flexible = total.saturating_sub(MARKER + gaps + fixed);
    let mut left_over = flexible;
    let flex_count = spec.iter().filter(|(_, size)| matches!(size, Size::Flex(_))).count();
    let mut seen_flex = 0;
    spec.into_iter()
        .map(|(column, size)| {
            let columns = match size {
                Size::Fixed(n) => n,
                Size::Flex(weight) => {
                    seen_flex += 1;
                    // The last flexible column takes the rounding remainder.
                    let share = if seen_flex == flex_count {
                        left_over
                    } else {
                        flexible * weight / weights.max(1)
                    };
                    left_over = left_over.saturating_sub(share);
                    share
                }
            };
            (column, columns)
        })
        .collect()
}

fn cell(state: &State, item: &RequestSummary, column: Column) -> String {
    let clean = |text: &str| sanitize(text, false);
    match column {
        Column::Title if item.break_glass => format!("BREAK-GLASS {}", clean(&item.title)),
        Column::Title => clean(&item.title),
        Column::Action => clean(&item.action),
        Column::Resource => clean(&item.resource),
        Column::Env => item
            .labels
            .get("env")
            .map(|env| clean(env))
            .unwrap_or_else(|| "-".into()),
        Column::Agent => clean(&item.agent),
        Column::Age => span(state.now - item.created_at, TimeStyle::Compact),
        Column::Left => time_left(state.now, item.expires_at, TimeStyle::Compact),
        Column::Approvals => format!("{}/{}", item.approvals, item.approvals_required),
        Column::Outcome => item.status.as_str().to_string(),
        Column::Deciders => {
            let names: Vec<String> = item
                .deciders
                .iter()
                .map(|decider| {
                    let mark = match decider.verdict {
                        Verdict::Approve => '✓',
                        Verdict::Deny => '✗',
                    };
                    format!("{}{mark}", clean(&decider.name))
                })
                .collect();
            if names.is_empty() { "-".into() } else { names.join(" ") }
        }
        Column::When => item
            .decided_at
            .map(|at| span(state.now - at, TimeStyle::Compact))
            .unwrap_or_else(|| "-".into()),
    }
}

fn cell_style(state: &State, item: &RequestSummary, column: Column) -> Style {
    let theme = &state.theme;
    match column {
        Column::Left => {
            let left = item.expires_at - state.now;
            if left.is_negative() || left.is_zero() {
                theme.bad()
            } else if left.whole_minutes() < 5 {
                theme.warn()
            } else {
                Style::new()
            }
        }
        Column::Outcome => match item.status {
            signoff_app::Status::Approved | signoff_app::Status::Executed => theme.good(),
            signoff_app::Status::Denied | signoff_app::Status::Failed => theme.bad(),
            _ => theme.dim(),
        },
        _ => Style::new(),
    }
}

fn list_screen(state: &State, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    let columns_total = usize::from(area.width);
    let list_screen = match state.screen {
        Screen::History => Screen::History,
        _ => Screen::Queue,
    };
    let list: &ListView = state.current_list();

    // Title bar.
    let count = if list.visible.len() == list.items.len() {
        list.items.len().to_string()
    } else {
        format!("{} of {}", list.visible.len(), list.items.len())
    };
    let mut left = match list_screen {
        Screen::History => format!(" Signoff · History ({count} decided)"),
        _ => format!(" Signoff · Queue ({count} pending)"),
    };
    if list.truncated {
        left.push_str(" (first ones only)");
    }
    if list_screen == Screen::Queue && state.needs_my_vote {
        left.push_str(" · needs my vote");
    }
    if !state.filter.is_empty() && !state.filter_editing {
        left.push_str(&format!(" · filter “{}”", sanitize(&state.filter, false)));
    }
    if list.loading {
        left.push_str(" · loading…");
    }
    frame.render_widget(
        Paragraph::new(bar(&left, &identity(state), columns_total, theme)),
        row(area, 0),
    );

    // Column header.
    let columns = columns(list_screen, columns_total);
    let mut header = " ".repeat(MARKER);
    for (index, (column, columns)) in columns.iter().enumerate() {
        if index > 0 {
            header.push(' ');
        }
        if column.right_aligned() {
            header.push_str(&fit_right(column.heading(), *columns));
        } else {
            header.push_str(&fit(column.heading(), *columns));
        }
    }
    frame.render_widget(
        Paragraph::new(Line::from(Span::styled(header, theme.header()))),
        row(area, 1),
    );

    // Rows.
    let body = Rect {
        x: area.x,
        y: area.y + 2,
        width: area.width,
        height: area.height.saturating_sub(4),
    };
    let rows = usize::from(body.height);
    if list.visible.is_empty() {
        let message = empty_message(state, list, list_screen);
        let lines: Vec<Line> = std::iter::once(Line::default())
            .chain(
                wrap(&message, columns_total.saturating_sub(4))
                    .into_iter()
                    .map(|text| Line::from(format!("  {text}"))),
            )
            .collect();
        frame.render_widget(Paragraph::new(lines), body);
    } else {
        // Keep the selection in view even if the state's idea of the height is stale.
        let mut offset = list.offset.min(list.visible.len().saturating_sub(1));
        if list.selected >= offset + rows {
            offset = list.selected + 1 - rows;
        }
        if list.selected < offset {
            offset = list.selected;
        }
        let lines: Vec<Line> = list
            .visible_items()
            .enumerate()
            .skip(offset)
            .take(rows)
            .map(|(index, item)| {
                let selected = index == list.selected;
                let mut spans = vec![Span::raw(if selected { "> " } else { "  " })];
                for (position, (column, columns)) in columns.iter().enumerate() {
                    if position > 0 {
                        spans.push(Span::raw(" "));
                    }
                    let text = cell(state, item, *column);
                    let text = if column.right_aligned() {
                        fit_right(&text, *columns)
                    } else {
                        fit(&text, *columns)
                    };
                    spans.push(Span::styled(text, cell_style(state, item, *column)));
                }
                let line = Line::from(spans);
                let undecidable = item.viewer.as_ref().is_some_and(|v| !v.can_decide) && list_screen == Screen::Queue;
                if selected {
                    line.style(theme.selected())
                } else if undecidable {
                    line.style(theme.dim())
                } else {
                    line
                }
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), body);
    }

    // Hints or the filter being typed.
    let hints_row = row(area, area.height - 2);
    if state.filter_editing {
        let prompt = format!(" Filter: {}", sanitize(&state.filter, false));
        let help = format!(
            "  {}",
            keys::footer(Place::FilterInput, &[Action::Confirm, Action::Cancel], " ")
        );
        let shown = ellipsize(&prompt, columns_total.saturating_sub(width(&help) + 1));
        let cursor_x = area.x + width(&shown) as u16;
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(shown, theme.key()),
                Span::styled(help, theme.dim()),
            ])),
            hints_row,
        );
        frame.set_cursor_position(Position::new(cursor_x.min(area.x + area.width - 1), hints_row.y));
    } else {
        let hints: Vec<Hint> = match list_screen {
            Screen::History => vec![
                Hint::of(Place::List, Action::Open).when(list.selected_item().is_some()),
                Hint::of(Place::List, Action::Filter),
                Hint::named(Place::List, Action::History, "queue"),
                Hint::of(Place::List, Action::Reload),
                Hint::of(Place::Anywhere, Action::Help),
                Hint::of(Place::Anywhere, Action::Quit),
            ],
            _ => {
                let mut hints = Vec::new();
                if list.selected_item().is_some() {
                    hints.push(Hint::of(Place::List, Action::Open));
                    // Why a/d cannot apply matters more than the other hints: it comes first.
                    match state.decision_blocked() {
                        None => {
                            hints.push(Hint::of(Place::List, Action::Approve));
                            hints.push(Hint::of(Place::List, Action::Deny));
                        }
                        Some(reason) => hints.push(Hint::decisions_off(Place::List, &reason)),
                    }
                }
                hints.extend([
                    Hint::of(Place::List, Action::Filter),
                    Hint::of(Place::List, Action::ToggleMine),
                    Hint::of(Place::List, Action::History),
                    Hint::of(Place::Anywhere, Action::Help),
                    Hint::of(Place::Anywhere, Action::Quit),
                ]);
                hints
            }
        };
        frame.render_widget(Paragraph::new(hints_line(&hints, columns_total, theme)), hints_row);
    }

    frame.render_widget(
        Paragraph::new(status_line(state, columns_total)),
        row(area, area.height - 1),
    );
}

fn empty_message(state: &State, list: &ListView, screen: Screen) -> String {
    if let Some(error) = &list.error {
        return format!(
            "Could not load: {}. Retrying shortly (r to retry now).",
            sanitize(error, false).trim_end_matches('.')
        );
    }
    if list.loading && !list.loaded {
        return "Loading…".into();
    }
    if !state.filter.is_empty() {
        return format!(
            "Nothing matches “{}”. Esc clears the filter.",
            sanitize(&state.filter, false)
        );
    }
    match screen {
        Screen::History => "No decided requests yet.".into(),
        _ if state.needs_my_vote => "Nothing needs your vote. Tab shows the whole queue.".into(),
        _ => "The queue is empty: nothing is waiting for a decision. New requests appear here as they arrive.".into(),
    }
}

// ----- hints and status ------------------------------------------------------------------

struct Hint {
    key: String,
    label: String,
    enabled: bool,
}

impl Hint {
    /// The key bar's entry for `action`, as the keymap names it.
    fn of(place: Place, action: Action) -> Hint {
        let (key, word) = keys::hint(place, action);
        Hint {
            key: key.to_string(),
            label: word.to_string(),
            enabled: true,
        }
    }

    /// The keymap's key for `action`, with a word of the moment (`file 2/3`, `queue`).
    fn named(place: Place, action: Action, label: &str) -> Hint {
        Hint {
            label: label.to_string(),
            ..Hint::of(place, action)
        }
    }

    /// Shown only when `condition` holds (an invisible hint is skipped).
    fn when(mut self, condition: bool) -> Hint {
        if !condition {
            self.label.clear();
        }
        self
    }

    /// Approve and deny, which cannot apply now, with the reason: `a/d unavailable: …`.
    fn decisions_off(place: Place, reason: &str) -> Hint {
        let (approve, _) = keys::hint(place, Action::Approve);
        let (deny, _) = keys::hint(place, Action::Deny);
        Hint {
            key: format!("{approve}/{deny}"),
            label: format!("unavailable: {}", sanitize(reason, false)),
            enabled: false,
        }
    }
}

fn hints_line(hints: &[Hint], columns: usize, theme: &Theme) -> Line<'static> {
    let mut spans = Vec::new();
    let mut used = 0;
    for (index, hint) in hints.iter().filter(|hint| !hint.label.is_empty()).enumerate() {
        let gap = if index == 0 { " " } else { "  " };
        let key_width = width(&hint.key);
        let room = columns.saturating_sub(used + gap.len() + key_width + 1);
        if room < 3 {
            break;
        }
        let label = ellipsize(&hint.label, room);
        used += gap.len() + key_width + 1 + width(&label);
        let (key_style, label_style) = if hint.enabled {
            (theme.key(), Style::new())
        } else {
            (theme.disabled(), theme.warn())
        };
        spans.push(Span::raw(gap));
        spans.push(Span::styled(hint.key.clone(), key_style));
        spans.push(Span::styled(format!(" {label}"), label_style));
    }
    Line::from(spans)
}

fn status_line(state: &State, columns: usize) -> Line<'static> {
    let theme = &state.theme;
    let (connection, style) = match &state.connection {
        Connection::Connecting => ("◌ connecting…".to_string(), theme.dim()),
        Connection::Live => ("● live".to_string(), theme.good()),
        Connection::Reconnecting { attempt, .. } => (format!("◌ reconnecting… (attempt {attempt})"), theme.warn()),
        Connection::Offline { reason, .. } => (
            format!("○ offline: {} · retrying", sanitize(reason, false)),
            theme.bad(),
        ),
    };
    let updated = match state.last_update {
        Some(at) => format!(" · updated {}", ago(state.now, at, TimeStyle::Compact)),
        None => " · not updated yet".to_string(),
    };
    let mut spans = vec![Span::raw(" ")];
    let connection = ellipsize(&connection, columns.saturating_sub(1));
    let mut used = 1 + width(&connection);
    spans.push(Span::styled(connection, style));
    let updated = ellipsize(&updated, columns.saturating_sub(used));
    used += width(&updated);
    spans.push(Span::styled(updated, theme.dim()));
    if let Some(flash) = state.live_flash() {
        let room = columns.saturating_sub(used + 2);
        if room > 3 {
            let style = match flash.tone {
                Tone::Info => Style::new(),
                Tone::Good => theme.good(),
                Tone::Bad => theme.bad(),
            };
            spans.push(Span::raw("  "));
            spans.push(Span::styled(ellipsize(&sanitize(&flash.text, false), room), style));
        }
    }
    Line::from(spans)
}

// ----- detail ----------------------------------------------------------------------------

fn detail_screen(state: &State, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    let columns = usize::from(area.width);
    let Some(detail) = &state.detail else {
        return;
    };

    let title = format!(" Signoff · {}", sanitize(&detail.title, false));
    let right = match &detail.review {
        Some(review) => {
            let request = &review.request;
            let mut right = format!(
                "{} · {}/{}",
                request.status, request.approvals, request.policy.approvals_required
            );
            if request.status == signoff_app::Status::Pending {
                right.push_str(&format!(
                    " · {}",
                    time_left(state.now, request.expires_at, TimeStyle::Compact)
                ));
                if request.expires_at > state.now {
                    right.push_str(" left");
                }
            }
            right.push(' ');
            right
        }
        None if detail.loading => "loading… ".into(),
        None => String::new(),
    };
    frame.render_widget(Paragraph::new(bar(&title, &right, columns, theme)), row(area, 0));

    let body = Rect {
        x: area.x + 1,
        y: area.y + 1,
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(3),
    };
    let rows = usize::from(body.height);
    if detail.review.is_none() {
        let message = match &detail.error {
            Some(error) => format!(
                "Could not load this request: {}. r retries, Esc goes back.",
                sanitize(error, false).trim_end_matches('.')
            ),
            None => "Loading…".into(),
        };
        let lines: Vec<Line> = wrap(&message, usize::from(body.width))
            .into_iter()
            .map(Line::from)
            .collect();
        frame.render_widget(Paragraph::new(lines), body);
    } else {
        let total = detail.doc.lines.len();
        let scroll = detail.scroll.min(total.saturating_sub(rows.max(1)));
        let visible: Vec<Line> = detail.doc.lines[scroll.min(total)..]
            .iter()
            .take(rows)
            .cloned()
            .collect();
        frame.render_widget(Paragraph::new(visible), body);
        if total > rows {
            let mut scrollbar_state = ScrollbarState::new(total.saturating_sub(rows))
                .position(scroll)
                .viewport_content_length(rows);
            let scrollbar_area = Rect {
                x: area.x + area.width - 1,
                y: body.y,
                width: 1,
                height: body.height,
            };
            frame.render_stateful_widget(
                Scrollbar::new(ScrollbarOrientation::VerticalRight)
                    .begin_symbol(None)
                    .end_symbol(None),
                scrollbar_area,
                &mut scrollbar_state,
            );
        }
    }

    let mut hints = Vec::new();
    let blocked = state.decision_blocked();
    if blocked.is_none() {
        hints.push(Hint::of(Place::Detail, Action::Approve));
        hints.push(Hint::of(Place::Detail, Action::Deny));
    }
    let files = detail.doc.file_starts.len();
    if files > 1 {
        let current = detail
            .doc
            .file_starts
            .iter()
            .rposition(|&start| start <= detail.scroll + 1)
            .map(|index| index + 1)
            .unwrap_or(0);
        let label = if current == 0 {
            format!("files ({files})")
        } else {
            format!("file {current}/{files}")
        };
        hints.push(Hint::named(Place::Detail, Action::NextFile, &label));
    }
    hints.extend([
        Hint::of(Place::Detail, Action::Back),
        Hint::of(Place::Anywhere, Action::Help),
        Hint::of(Place::Anywhere, Action::Quit),
    ]);
    if let Some(reason) = blocked {
        hints.push(Hint::decisions_off(Place::Detail, &reason));
    }
    frame.render_widget(
        Paragraph::new(hints_line(&hints, columns, theme)),
        row(area, area.height - 2),
    );
    frame.render_widget(Paragraph::new(status_line(state, columns)), row(area, area.height - 1));
}

// ----- modals ----------------------------------------------------------------------------

/// A window of `width` x `height` centred in `area` (clipped to it).
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn modal_width(area: Rect) -> u16 {
    area.width.saturating_sub(4).min(72)
}

fn draw_modal(state: &State, modal: &Modal, frame: &mut Frame, area: Rect) {
    let theme = &state.theme;
    match modal {
        Modal::Help { scroll } => {
            let rows = layout::help_rows(area.height);
            let mut lines: Vec<Line> = Vec::new();
            for (section, bindings) in keys::help() {
                lines.push(Line::from(Span::styled(section, theme.heading())));
                for (key, what) in bindings {
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {key:<20}"), theme.key()),
                        Span::raw(what),
                    ]));
                }
                lines.push(Line::default());
            }
            let scroll = (*scroll).min(layout::help_max_scroll(area.height));
            let window = centered(area, modal_width(area).max(60), rows as u16 + 3);
            let inner_width = usize::from(window.width.saturating_sub(4));
            let shown: Vec<Line> = lines
                .into_iter()
                .skip(scroll)
                .take(rows)
                .map(|line| truncate_line(line, inner_width))
                .collect();
            let mut text = shown;
            while text.len() < rows {
                text.push(Line::default());
            }
            text.push(Line::from(Span::styled(
                ellipsize(
                    &format!(
                        "{} · server {}",
                        keys::footer(Place::HelpScreen, &[Action::Next, Action::Cancel], " "),
                        state.server
                    ),
                    inner_width,
                ),
                theme.dim(),
            )));
            frame.render_widget(Clear, window);
            frame.render_widget(Paragraph::new(text).block(modal_block().title(" Keys ")), window);
        }
        Modal::Comment { verdict, input, error } => {
            let window_width = modal_width(area);
            let inner = usize::from(window_width.saturating_sub(4));
            let (verb, need) = match verdict {
                Verdict::Approve => ("Approve", "Comment (optional):"),
                Verdict::Deny => ("Deny", "Comment (required, say why):"),
            };
            let mut lines = vec![
                Line::from(Span::styled(
                    ellipsize(&format!("{verb} “{}”", title_of(state)), inner),
                    theme.header(),
                )),
                Line::from(need),
            ];
            // Show the end of a long comment; the cursor sits after it.
            let typed = format!("> {}", sanitize(input, false));
            let mut input_lines = crate::text::hard_wrap(&typed, inner.saturating_sub(1));
            let skip = input_lines.len().saturating_sub(4);
            input_lines.drain(..skip);
            let last_width = input_lines.last().map(|line| width(line)).unwrap_or(0);
            let input_rows = input_lines.len();
            lines.extend(input_lines.into_iter().map(Line::from));
            if let Some(error) = error {
                lines.push(Line::from(Span::styled(error.clone(), theme.bad())));
            }
            lines.push(Line::from(Span::styled(
                keys::footer(Place::CommentInput, &[Action::Confirm, Action::Cancel], ": "),
                theme.dim(),
            )));
            let height = lines.len() as u16 + 2;
            let window = centered(area, window_width, height);
            frame.render_widget(Clear, window);
            frame.render_widget(
                Paragraph::new(lines).block(modal_block().title(format!(" {verb} "))),
                window,
            );
            let cursor_y = window.y + 1 + 2 + input_rows as u16 - 1;
            let cursor_x = window.x + 2 + last_width as u16;
            frame.set_cursor_position(Position::new(
                cursor_x.min(window.x + window.width.saturating_sub(3)),
                cursor_y.min(window.y + window.height.saturating_sub(2)),
            ));
        }
        Modal::Confirm { verdict, comment } => {
            let window_width = modal_width(area);
            let inner = usize::from(window_width.saturating_sub(4));
            let (question, yes) = match verdict {
                Verdict::Approve => (" Approve this request? ", "approve"),
                Verdict::Deny => (" Deny this request? ", "deny"),
            };
            let mut lines = Vec::new();
            let value_width = inner.saturating_sub(10);
            let mut field = |label: &str, value: &str, max_lines: usize| {
                let mut pieces = wrap(&sanitize(value, false), value_width);
                if pieces.is_empty() {
                    pieces.push("(none)".into());
                }
                if pieces.len() > max_lines {
                    pieces.truncate(max_lines);
                    if let Some(last) = pieces.last_mut() {
                        *last = ellipsize(&format!("{last} …"), value_width);
                    }
                }
                for (index, piece) in pieces.into_iter().enumerate() {
                    let label = if index == 0 { label } else { "" };
                    lines.push(Line::from(vec![
                        Span::styled(format!("{label:<10}"), theme.label()),
                        Span::raw(piece),
                    ]));
                }
            };
            if let Some(review) = state.detail.as_ref().and_then(|d| d.review.as_ref()) {
                let request = &review.request;
                field("Title", &request.title, 2);
                field("Action", &request.action, 1);
                field("Resource", &request.resource, 3);
                field("Digest", &format!("{}…", digest_prefix(&request.digest)), 1);
            }
            field("Comment", comment, 3);
            lines.push(Line::default());
            let (yes_key, _) = keys::hint(Place::Confirmation, Action::Confirm);
            let (no_key, no) = keys::hint(Place::Confirmation, Action::Cancel);
            lines.push(Line::from(vec![
                Span::styled(yes_key, theme.key()),
                Span::raw(format!(": {yes}   ")),
                Span::styled(no_key, theme.key()),
                Span::raw(format!(": {no}")),
            ]));
            let window = centered(area, window_width, lines.len() as u16 + 2);
            frame.render_widget(Clear, window);
            frame.render_widget(Paragraph::new(lines).block(modal_block().title(question)), window);
        }
        Modal::Submitting { verdict } => {
            let text = match verdict {
                Verdict::Approve => "Sending the approval…",
                Verdict::Deny => "Sending the denial…",
            };
            let window = centered(area, modal_width(area).min(40), 3);
            frame.render_widget(Clear, window);
            frame.render_widget(Paragraph::new(text).block(modal_block()), window);
        }
        Modal::Refused { verdict, message } => {
            let window_width = modal_width(area);
            let inner = usize::from(window_width.saturating_sub(4));
            let title = match verdict {
                Verdict::Approve => " Not approved ",
                Verdict::Deny => " Not denied ",
            };
            let mut lines: Vec<Line> = wrap(&sanitize(message, false), inner)
                .into_iter()
                .take(usize::from(area.height.saturating_sub(5)).max(1))
                .map(|text| Line::from(Span::styled(text, theme.bad())))
                .collect();
            lines.push(Line::default());
            lines.push(Line::from(Span::styled(
                keys::footer(Place::Refusal, &[Action::Cancel], ": "),
                theme.dim(),
            )));
            let window = centered(area, window_width, lines.len() as u16 + 2);
            frame.render_widget(Clear, window);
            frame.render_widget(Paragraph::new(lines).block(modal_block().title(title)), window);
        }
    }
}

fn title_of(state: &State) -> String {
    state
        .detail
        .as_ref()
        .map(|detail| sanitize(&detail.title, false))
        .unwrap_or_default()
}

/// Cuts a styled line to `columns`, keeping the styles of what remains.
fn truncate_line(line: Line<'static>, columns: usize) -> Line<'static> {
    let mut used = 0;
    let mut spans = Vec::new();
    for span in line.spans {
        let room = columns.saturating_sub(used);
        if room == 0 {
            break;
        }
        let text = ellipsize(&span.content, room);
        used += width(&text);
        spans.push(Span::styled(text, span.style));
    }
    Line::from(spans).style(line.style)
}

/// The frame of a modal window: a border and one column of room inside it.
fn modal_block() -> Block<'static> {
    Block::bordered().padding(Padding::horizontal(1))
}
