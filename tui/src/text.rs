//! Text helpers for a terminal: make untrusted text safe to print, measure it in columns,
//! cut it to a width, wrap it, and write a time for plain output. Spans and time left are
//! `signoff_app::timefmt`'s, the console's rule.

use signoff_app::marked_for_terminal;
use time::OffsetDateTime;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Makes text written by an agent safe to put on a terminal, showing what a reader could
/// not otherwise see exactly as the console does.
///
/// Control characters (escape sequences could move the cursor, recolour or hide text and so
/// change what a reviewer believes they approve), bidirectional overrides ("trojan source"
/// reordering) and invisible characters (zero-width, word joiners, byte-order marks,
/// variation selectors, TAG characters that carry hidden text) are written as a visible
/// `⟨U+202E⟩` naming them, by the app's one rule ([`marked_for_terminal`]). Only the layout
/// is the terminal's: tabs become spaces, newlines are kept when `keep_newlines` is set.
pub fn sanitize(text: &str, keep_newlines: bool) -> String {
    let spaced = text.replace('\t', "    ");
    if !keep_newlines {
        return marked_for_terminal(&spaced.replace(['\n', '\r'], " "));
    }
    spaced
        .split('\n')
        .map(|line| marked_for_terminal(&line.replace('\r', "")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Columns the text takes on a terminal.
pub fn width(text: &str) -> usize {
    UnicodeWidthStr::width(text)
}

fn char_width(c: char) -> usize {
    UnicodeWidthChar::width(c).unwrap_or(0)
}

/// Cuts `text` to at most `max` columns, ending with `…` when something was cut.
pub fn ellipsize(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = char_width(c);
        if used + w > max - 1 {
            break;
        }
        out.push(c);
        used += w;
    }
    out.push('…');
    out
}

/// `text` cut or padded with spaces to exactly `columns` columns.
pub fn fit(text: &str, columns: usize) -> String {
    let mut out = ellipsize(text, columns);
    let used = width(&out);
    out.extend(std::iter::repeat_n(' ', columns.saturating_sub(used)));
    out
}

/// `text` padded on the left to `columns` columns (for numbers and durations).
pub fn fit_right(text: &str, columns: usize) -> String {
    let cut = ellipsize(text, columns);
    let pad = columns.saturating_sub(width(&cut));
    format!("{}{cut}", " ".repeat(pad))
}

/// Wraps prose at word boundaries to `max` columns; words longer than a line are broken.
/// Newlines in the text start new lines; an empty text gives no lines.
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    for paragraph in text.split('\n') {
        let mut line = String::new();
        let mut used = 0;
        for word in paragraph.split(' ') {
            let word_width = width(word);
            let gap = usize::from(!line.is_empty());
            if used + gap + word_width <= max {
                if gap == 1 {
                    line.push(' ');
                }
                line.push_str(word);
                used += gap + word_width;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            if word_width <= max {
                line.push_str(word);
                used = word_width;
            } else {
                let mut pieces = hard_wrap(word, max);
                let last = pieces.pop().unwrap_or_default();
                lines.extend(pieces);
                used = width(&last);
                line = last;
            }
        }
        lines.push(line);
    }
    if lines.len() == 1 && lines[0].is_empty() {
        lines.clear();
    }
    lines
}

/// Breaks a line into pieces of at most `max` columns without looking for words
/// (diff and code lines, where every character matters). Always at least one piece.
pub fn hard_wrap(line: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut pieces = Vec::new();
    let mut piece = String::new();
    let mut used = 0;
    for c in line.chars() {
        let w = char_width(c);
        if used + w > max && !piece.is_empty() {
            pieces.push(std::mem::take(&mut piece));
            used = 0;
        }
        piece.push(c);
        used += w;
    }
    pieces.push(piece);
    pieces
}

/// An absolute time for plain output, e.g. `2026-03-01 12:00:00Z`.
pub fn timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_marks_escapes_bidi_overrides_and_invisible_characters() {
        assert_eq!(
            sanitize("ok\x1b[2Jgone\u{202E}txt", false),
            "ok⟨U+001B⟩[2Jgone⟨U+202E⟩txt"
        );
        assert_eq!(
            sanitize("a\u{200B}b\u{FEFF}c\u{2060}d\u{E0041}\u{FE0F}", false),
            "a⟨U+200B⟩b⟨U+FEFF⟩c⟨U+2060⟩d⟨U+E0041⟩⟨U+FE0F⟩"
        );
        assert_eq!(sanitize("a\r\nb\tc", true), "a\nb    c");
        assert_eq!(sanitize("a\r\nb\u{7}\n", true), "a\nb⟨U+0007⟩\n");
        assert_eq!(sanitize("a\nb", false), "a b");
    }

    #[test]
    fn ellipsize_and_fit_count_columns_not_bytes() {
        assert_eq!(ellipsize("hello world", 8), "hello w…");
        assert_eq!(ellipsize("short", 8), "short");
        assert_eq!(ellipsize("日本語テキスト", 5), "日本…");
        assert_eq!(fit("ab", 4), "ab  ");
        assert_eq!(fit_right("1/2", 5), "  1/2");
        assert_eq!(ellipsize("abc", 0), "");
    }

    #[test]
    fn wrap_breaks_at_words_and_splits_long_words() {
        assert_eq!(wrap("the quick brown fox", 10), vec!["the quick", "brown fox"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap("one\n\ntwo", 10), vec!["one", "", "two"]);
        assert!(wrap("", 10).is_empty());
        assert_eq!(hard_wrap("", 5), vec![""]);
    }
}
