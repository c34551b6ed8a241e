use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Where a request is in its lifecycle.
///
/// ```text
/// pending --> approved --> executed | failed
/// pending --> denied | expired | cancelled
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Expired,
    Cancelled,
    Executed,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a request that is {from} cannot become {to}")]
pub struct TransitionError {
    pub from: Status,
    pub to: Status,
}

#[derive(Debug, thiserror::Error)]
#[error("unknown status `{0}`")]
pub struct UnknownStatus(pub String);

impl Status {
    pub const ALL: [Status; 7] = [
        Status::Pending,
        Status::Approved,
        Status::Denied,
        Status::Expired,
        Status::Cancelled,
        Status::Executed,
        Status::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Cancelled => "cancelled",
            Status::Executed => "executed",
            Status::Failed => "failed",
        }
    }

    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Pending, Approved | Denied | Expired | Cancelled) | (Approved, Executed | Failed)
        )
    }

    /// The status after a legal transition, or why it is illegal.
    pub fn transition(self, to: Status) -> Result<Status, TransitionError> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(TransitionError { from: self, to })
        }
    }

    /// True when nothing can happen to the request any more.
    pub fn is_final(self) -> bool {
        Status::ALL.iter().all(|&to| !self.can_become(to))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.chars().take(32).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_status() -> impl Strategy<Value = Status> {
        proptest::sample::select(Status::ALL.to_vec())
    }

    #[test]
    fn lifecycle_edges_are_exactly_the_documented_ones() {
        use Status::*;
        let legal: Vec<(Status, Status)> = Status::ALL
            .iter()
            .flat_map(|&from| Status::ALL.iter().map(move |&to| (from, to)))
            .filter(|&(from, to)| from.can_become(to))
            .collect();
        assert_eq!(
            legal,
            vec![
                (Pending, Approved),
                (Pending, Denied),
                (Pending, Expired),
                (Pending, Cancelled),
                (Approved, Executed),
                (Approved, Failed),
            ]
        );
        assert!(!Pending.is_final() && !Approved.is_final());
        assert!(
            [Denied, Expired, Cancelled, Executed, Failed]
                .iter()
                .all(|s| s.is_final())
        );
    }

    #[test]
    fn names_round_trip() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().ok(), Some(status));
        }
        assert!("PENDING".parse::<Status>().is_err());
    }

    proptest! {
        /// Any walk of transitions only visits legal edges, never leaves a final status,
        /// and is at most two steps long (pending -> approved -> executed|failed).
        #[test]
        fn random_walks_follow_the_lifecycle(steps in proptest::collection::vec(any_status(), 0..20)) {
            let mut current = Status::Pending;
            let mut taken = 0;
            for to in steps {
                match current.transition(to) {
                    Ok(next) => {
                        prop_assert!(!current.is_final());
                        current = next;
                        taken += 1;
                    }
                    Err(err) => {
                        prop_assert_eq!(err, TransitionError { from: current, to });
                    }
                }
            }
            prop_assert!(taken <= 2);
        }
    }
}
