//! The request model and the rules that hold everywhere (DESIGN.md).

mod digest;
mod ids;
mod rules;
mod status;

pub use digest::{action_digest, canonical_json, sha256_hex};
pub use ids::{AgentId, ParseIdError, RequestId};
pub use rules::{
    Ballot, Channel, DecisionContext, Identity, Outcome, PolicySnapshot, RequestParties, RuleError, Verdict,
    check_eligibility, count_distinct_approvals, evaluate,
};
pub use status::{Status, TransitionError, UnknownStatus};
