//! The credential behind each command, and the batch's one check that it still stands
//! (see ARCHITECTURE.md, "Who may do what").

use time::OffsetDateTime;

use super::Command;
use crate::store::{Agent, WriteTx};
use crate::{Error, Result};

/// The credential a command was asked with. The writer checks, in the batch's transaction
/// and with one statement for the whole batch, that each still stands: a key or token
/// revoked by any process before the batch is refused, even while this process's table of
/// credentials has not heard of it yet (see `crate::credentials`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Held {
    /// Nothing to check again: the operator's command line, the server's own sweeper, a
    /// console session (the session store is read on every call).
    #[default]
    Nothing,
    /// An agent's API key, by hash.
    AgentKey(String),
    /// A terminal token, by hash.
    TerminalToken(String),
}

impl Held {
    /// What an agent authenticated with, when it did.
    pub fn agent(agent: &Agent) -> Held {
        agent.key_hash.clone().map_or(Held::Nothing, Held::AgentKey)
    }

    /// The refusal of a command whose credential no longer stands.
    pub(super) fn refusal(&self) -> Error {
        match self {
            Held::TerminalToken(_) => {
                Error::Unauthorized("this terminal token was revoked or has expired: run `signoff login`".into())
            }
            Held::AgentKey(_) | Held::Nothing => Error::Unauthorized("unknown or revoked API key".into()),
        }
    }
}

/// For each command, whether the credential it was asked with still stands: read in the
/// batch's transaction, so after every revocation committed before it, by any process.
pub(super) async fn standing(tx: &mut WriteTx, asked: &[(Command, Held)], now: OffsetDateTime) -> Result<Vec<bool>> {
    let mut keys = Vec::new();
    let mut tokens = Vec::new();
    for (_, held) in asked {
        match held {
            Held::Nothing => {}
            Held::AgentKey(hash) => keys.push(hash.as_str()),
            Held::TerminalToken(hash) => tokens.push(hash.as_str()),
        }
    }
    // A batch is often one agent's key many times over.
    for hashes in [&mut keys, &mut tokens] {
        hashes.sort_unstable();
        hashes.dedup();
    }
    let standing = tx.standing_credentials(&keys, &tokens, now).await?;
    Ok(asked
        .iter()
        .map(|(_, held)| match held {
            Held::Nothing => true,
            Held::AgentKey(hash) | Held::TerminalToken(hash) => standing.contains(hash),
        })
        .collect())
}
