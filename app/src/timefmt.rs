//! Times as both screens write them, so the console and the terminal never disagree: the
//! console spells spans out (`3h 12m left`), the terminal packs them into columns
//! (`3h12m`). Every function takes `now` first, then the other time.

use time::{Duration, OffsetDateTime};

/// How a span is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// For reading: `42s`, `4m`, `3h 12m`, `2d 5h`.
    Spaced,
    /// For columns: `42s`, `4m`, `3h05m`, `3h`, `2d5h`, `2d`.
    Compact,
}

/// A span rounded for a glance; negative spans count as 0.
pub fn span(duration: Duration, style: Style) -> String {
    let seconds = duration.whole_seconds().max(0);
    match (seconds, style) {
        (0..60, _) => format!("{seconds}s"),
        (60..3600, _) => format!("{}m", seconds / 60),
        (3600..86_400, Style::Spaced) => format!("{}h {}m", seconds / 3600, seconds % 3600 / 60),
        (3600..86_400, Style::Compact) => match seconds % 3600 / 60 {
            0 => format!("{}h", seconds / 3600),
            minutes => format!("{}h{minutes:02}m", seconds / 3600),
        },
        (_, Style::Spaced) => format!("{}d {}h", seconds / 86_400, seconds % 86_400 / 3600),
        (_, Style::Compact) => match seconds % 86_400 / 3600 {
            0 => format!("{}d", seconds / 86_400),
            hours => format!("{}d{hours}h", seconds / 86_400),
        },
    }
}

/// How long ago `then` was: `12m ago`.
pub fn ago(now: OffsetDateTime, then: OffsetDateTime, style: Style) -> String {
    format!("{} ago", span(now - then, style))
}

/// Time left until `deadline`, or `expired`: `3h 12m left` (spaced) or `3h12m` (compact,
/// where the column says what it is).
pub fn time_left(now: OffsetDateTime, deadline: OffsetDateTime, style: Style) -> String {
    if deadline <= now {
        return "expired".to_string();
    }
    match style {
        Style::Spaced => format!("{} left", span(deadline - now, style)),
        Style::Compact => span(deadline - now, style),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_at_a_glance_on_both_screens() {
        let cases = [
            (42, "42s", "42s"),
            (3 * 60 + 5, "3m", "3m"),
            (2 * 3600 + 15 * 60, "2h 15m", "2h15m"),
            (2 * 3600 + 5 * 60, "2h 5m", "2h05m"),
            (3 * 3600, "3h 0m", "3h"),
            (3 * 86_400 + 7200, "3d 2h", "3d2h"),
            (2 * 86_400, "2d 0h", "2d"),
            (52 * 3600, "2d 4h", "2d4h"),
            (-5, "0s", "0s"),
        ];
        for (seconds, spaced, compact) in cases {
            let duration = Duration::seconds(seconds);
            assert_eq!(span(duration, Style::Spaced), spaced);
            assert_eq!(span(duration, Style::Compact), compact);
        }
    }

    #[test]
    fn time_left_takes_now_first() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        let later = now + Duration::minutes(90);
        assert_eq!(time_left(now, later, Style::Spaced), "1h 30m left");
        assert_eq!(time_left(now, later, Style::Compact), "1h30m");
        assert_eq!(time_left(later, now, Style::Spaced), "expired");
        assert_eq!(ago(later, now, Style::Compact), "1h30m ago");
    }
}
