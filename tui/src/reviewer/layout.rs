//! Sizes shared by `update` (paging, scrolling) and `view` (drawing), so both agree on
//! how many rows a screen shows.

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

/// Rows of text inside the help window (less its border and footer).
pub fn help_rows(height: u16) -> usize {
    usize::from(height.saturating_sub(4)).clamp(1, crate::reviewer::keys::help_line_count())
}

pub fn help_max_scroll(height: u16) -> usize {
    crate::reviewer::keys::help_line_count().saturating_sub(help_rows(height))
}
