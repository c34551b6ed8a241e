//! The server's clock, at the storage's precision (milliseconds): a leaf every module may
//! read the time from.

use time::OffsetDateTime;

/// Now, truncated to the millisecond, so that what is decided in memory is exactly what
/// is stored and read back.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(now)
}
