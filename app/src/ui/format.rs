//! Times as reviewers read them.

use time::OffsetDateTime;
use time::macros::format_description;

/// `2026-11-21 19:04 UTC`
pub fn timestamp(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
        .unwrap_or_default()
}

/// `4m`, `3h 12m`, `2d 5h`: a span rounded for a glance.
pub fn span(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h {}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d {}h", seconds / 86400, seconds % 86400 / 3600),
    }
}

pub fn age(created: OffsetDateTime, now: OffsetDateTime) -> String {
    format!("{} ago", span((now - created).whole_seconds()))
}

pub fn time_left(expires: OffsetDateTime, now: OffsetDateTime) -> String {
    let left = (expires - now).whole_seconds();
    if left <= 0 {
        "expired".into()
    } else {
        format!("{} left", span(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_at_a_glance() {
        assert_eq!(span(42), "42s");
        assert_eq!(span(3 * 60 + 5), "3m");
        assert_eq!(span(2 * 3600 + 15 * 60), "2h 15m");
        assert_eq!(span(3 * 86400 + 7200), "3d 2h");
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        assert_eq!(time_left(now - time::Duration::seconds(1), now), "expired");
        assert_eq!(timestamp(now), "2027-01-15 08:00 UTC");
    }
}
