//! The request model and the rules that hold everywhere (ARCHITECTURE.md, "Who may do what").

#[cfg(feature = "policy")]
mod condition;
mod digest;
pub mod event;
mod exact;
mod grant;
pub use grant::*;
mod ids;
pub mod lifecycle;
#[cfg(feature = "policy")]
pub mod policy;
mod request;
mod route;
mod rules;
mod status;
mod text;

pub use digest::{action_digest, canonical_json, sha256_hex};
pub use event::{Actor, Event, Kind, UnreadableEvent};
pub use exact::{InexactJson, InexactProblem, PathSegment, check_exact_json};
pub use ids::{AgentId, ParseIdError, RequestId};
pub use request::{AgentRef, Decision, ExecutionStatus, Grant, Request, ResultReport, unix_millis};
pub use route::{BadRoute, DecideIn, Route};
pub use rules::{
    Ballot, Channel, DecisionContext, EffectKind, Escalation, GrantTerms, Identity, Outcome, PartyMatch,
    PolicySnapshot, RequestParties, RuleError, Verdict, check_eligibility, count_distinct_approvals, evaluate,
    evaluate_break_glass, parse_duration,
};
pub use status::{Status, TransitionError, UnknownStatus};
pub use text::{check_visible_line, hidden_char_name, marked_for_terminal};
