//! Sizes shared by `update` (paging, scrolling) and `view` (drawing), so both agree on
//! how many rows a screen shows; and the key map the help screen lists.

/// Rows of a list: the screen less the title bar, the column header, the hints line and
/// the status line.
pub fn list_rows(height: u16) -> usize {
    usize::from(height.saturating_sub(4))
}

/// Rows of the detail document: the screen less the title bar, hints and status lines.
pub fn detail_rows(height: u16) -> usize {
    usize::from(height.saturating_sub(3))
}

/// Columns of the detail document: a margin on the left, the scrollbar on the right.
pub fn detail_width(width: u16) -> usize {
    usize::from(width.saturating_sub(3)).max(20)
}

/// Every key, by where it applies; the help screen shows exactly this.
pub const KEY_MAP: &[(&str, &[(&str, &str)])] = &[
    (
        "Queue and history",
        &[
            ("j / ↓", "next request"),
            ("k / ↑", "previous request"),
            ("g / Home", "first request"),
            ("G / End", "last request"),
            ("PgDn / PgUp", "page down / up (also Ctrl-D / Ctrl-U)"),
            ("Enter", "open the request"),
            ("a", "approve the selected request (opens it first)"),
            ("d", "deny the selected request (opens it first)"),
            ("/", "filter by words (Enter keeps, Esc clears)"),
            ("Tab", "queue: only requests that need my vote, on/off"),
            ("h", "history of decided requests, or back"),
            ("r", "reload now"),
            ("Esc", "clear the filter / back to the queue"),
        ],
    ),
    (
        "Request detail",
        &[
            ("j / k, ↓ / ↑", "scroll a line"),
            ("Space, PgDn / PgUp", "scroll a page"),
            ("g / G", "top / bottom"),
            ("n / p", "next / previous file of the diff"),
            ("a", "approve"),
            ("d", "deny (a comment is required)"),
            ("r", "reload the request"),
            ("Esc / Backspace", "back to the list"),
        ],
    ),
    (
        "Deciding",
        &[
            ("type, Enter", "write the comment, then review"),
            ("y / Enter", "confirm: sign off what is shown"),
            ("n / Esc", "cancel: nothing is sent"),
        ],
    ),
    (
        "Anywhere",
        &[
            ("?", "this help (Esc closes)"),
            ("mouse wheel", "scroll"),
            ("q", "quit (Ctrl-C too)"),
        ],
    ),
];

/// Lines the help screen has: per section a heading, its keys and a blank line.
pub fn help_line_count() -> usize {
    KEY_MAP.iter().map(|(_, keys)| keys.len() + 2).sum::<usize>()
}

/// Rows of text inside the help window (less its border and footer).
pub fn help_rows(height: u16) -> usize {
    usize::from(height.saturating_sub(4)).clamp(1, help_line_count())
}

pub fn help_max_scroll(height: u16) -> usize {
    help_line_count().saturating_sub(help_rows(height))
}
