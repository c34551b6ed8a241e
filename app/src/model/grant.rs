//! Whether a grant may still approve anything: one pure rule that the store, the engine's
//! lifecycle and the admin pages all read, so they cannot disagree.

use time::OffsetDateTime;

/// Where a grant stands at a moment, by its own terms (whether its policy version is still
/// in force is the policy's question, not the grant's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantStanding {
    Active,
    Revoked,
    UsedUp,
    Expired,
}

impl GrantStanding {
    /// How the admin pages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            GrantStanding::Active => "active",
            GrantStanding::Revoked => "revoked",
            GrantStanding::UsedUp => "used up",
            GrantStanding::Expired => "expired",
        }
    }
}

/// Where a grant with these terms stands at `now`. A revoked grant reads as revoked even
/// when also used up or expired: revoking is what a person did, the rest only happened.
pub fn grant_standing(
    revoked_at: Option<OffsetDateTime>,
    expires_at: OffsetDateTime,
    uses: i64,
    max_uses: i64,
    now: OffsetDateTime,
) -> GrantStanding {
    if revoked_at.is_some() {
        GrantStanding::Revoked
    } else if uses >= max_uses {
        GrantStanding::UsedUp
    } else if now >= expires_at {
        GrantStanding::Expired
    } else {
        GrantStanding::Active
    }
}

/// Whether a grant with these terms may still approve a request at `now`: not revoked,
/// before its expiry, and with a use left.
pub fn grant_is_active(
    revoked_at: Option<OffsetDateTime>,
    expires_at: OffsetDateTime,
    uses: i64,
    max_uses: i64,
    now: OffsetDateTime,
) -> bool {
    grant_standing(revoked_at, expires_at, uses, max_uses, now) == GrantStanding::Active
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-01-01 12:00 UTC);

    #[test]
    fn a_grant_is_active_until_revoked_expired_or_used_up() {
        let later = NOW + Duration::hours(1);
        assert!(grant_is_active(None, later, 0, 1, NOW));
        assert!(grant_is_active(None, later, 4, 5, NOW));
        assert!(!grant_is_active(None, later, 5, 5, NOW), "used up");
        assert!(
            !grant_is_active(None, NOW, 0, 5, NOW),
            "expires at its expiry, not after"
        );
        assert!(!grant_is_active(None, NOW - Duration::seconds(1), 0, 5, NOW));
        assert!(!grant_is_active(Some(NOW), later, 0, 5, NOW), "revoked");
    }

    #[test]
    fn revoking_names_a_grant_before_what_merely_happened_to_it() {
        let earlier = NOW - Duration::hours(1);
        assert_eq!(
            grant_standing(Some(earlier), earlier, 5, 5, NOW),
            GrantStanding::Revoked
        );
        assert_eq!(grant_standing(None, earlier, 5, 5, NOW), GrantStanding::UsedUp);
        assert_eq!(grant_standing(None, earlier, 1, 5, NOW), GrantStanding::Expired);
        assert_eq!(
            grant_standing(None, NOW + Duration::hours(1), 1, 5, NOW).as_str(),
            "active"
        );
    }
}
