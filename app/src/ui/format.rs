//! Absolute times as the console writes them; spans and time left are `crate::timefmt`'s,
//! shared with the terminal.

use time::OffsetDateTime;
use time::macros::format_description;

/// `2026-11-21 19:04 UTC`
pub fn timestamp(at: OffsetDateTime) -> String {
    at.format(format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_writes_times_for_reading() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("time");
        assert_eq!(timestamp(now), "2027-01-15 08:00 UTC");
    }
}
