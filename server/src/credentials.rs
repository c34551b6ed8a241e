//! Who holds which credential, answered from memory: agent keys and terminal tokens by
//! hash, loaded at start. The engine loads the table again in the step that answers a
//! change to a credential (so this process never reads its own revocation late), and a
//! task looks every [`CHECK_EVERY`] at one counter the database bumps on every such change,
//! so a change made by another process (the command line, a replica) is seen within that.
//! A table may therefore lag another process by a moment; the writer closes that gap by
//! checking, inside each batch's transaction, that the credential behind every command
//! still stands (`engine::Held`). See ARCHITECTURE.md, "Who may do what".

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock, Weak};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::Result;
use crate::store::{Agent, Store, TokenRecord};

/// How often each server looks whether another process changed a credential.
pub const CHECK_EVERY: Duration = Duration::from_millis(50);

pub struct Credentials {
    store: Store,
    table: RwLock<Table>,
    /// Bumped on every table installed: long-polls look at their key again.
    changes: watch::Sender<u64>,
}

#[derive(Default)]
struct Table {
    /// The database's `credential_version` the table was read at (or later).
    version: i64,
    keys: HashMap<String, Agent>,
    tokens: HashMap<String, TokenRecord>,
}

impl Credentials {
    /// The table as the store holds it now.
    pub async fn load(store: Store) -> Result<Arc<Credentials>> {
        let credentials = Arc::new(Credentials {
            store,
            table: RwLock::new(Table {
                version: -1,
                ..Table::default()
            }),
            changes: watch::Sender::new(0),
        });
        credentials.reload().await?;
        Ok(credentials)
    }

    /// The agent holding an active key with this hash (its `key_hash` set).
    pub fn agent(&self, key_hash: &str) -> Option<Agent> {
        self.read().keys.get(key_hash).cloned()
    }

    /// The terminal token with this hash, if neither revoked nor expired at `now`.
    pub fn terminal_token(&self, token_hash: &str, now: OffsetDateTime) -> Option<TokenRecord> {
        self.read()
            .tokens
            .get(token_hash)
            .filter(|token| token.expires_at > now)
            .cloned()
    }

    /// [`Credentials::agent`]; when the table has no such key, it first looks (one small
    /// read) whether another process changed a credential since the table was read, so a
    /// key made a moment ago by the command line works at once.
    pub async fn agent_now(&self, key_hash: &str) -> Result<Option<Agent>> {
        if let Some(agent) = self.agent(key_hash) {
            return Ok(Some(agent));
        }
        self.reload_if_changed().await?;
        Ok(self.agent(key_hash))
    }

    /// [`Credentials::terminal_token`], looking for a change made elsewhere on a miss, as
    /// [`Credentials::agent_now`] does.
    pub async fn terminal_token_now(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<TokenRecord>> {
        if let Some(token) = self.terminal_token(token_hash, now) {
            return Ok(Some(token));
        }
        self.reload_if_changed().await?;
        Ok(self.terminal_token(token_hash, now))
    }

    /// Changes whenever the table is loaded again.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Reads every standing credential and installs them, unless a table read at a later
    /// version was installed meanwhile.
    pub async fn reload(&self) -> Result<()> {
        let active = self.store.active_credentials(crate::clock::now()).await?;
        let installed = {
            let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
            if active.version < table.version {
                false
            } else {
                *table = Table {
                    version: active.version,
                    keys: active.keys.into_iter().collect(),
                    tokens: active.tokens.into_iter().collect(),
                };
                true
            }
        };
        if installed {
            self.changes.send_modify(|count| *count += 1);
        }
        Ok(())
    }

    /// Loads the table again if the store says a credential changed since it was read (one
    /// small read), so what the table answers next is as current as the store.
    pub async fn reload_if_changed(&self) -> Result<()> {
        let version = self.store.credential_version().await?;
        if version != self.read().version {
            self.reload().await?;
        }
        Ok(())
    }

    /// Keeps the table current with changes other processes make, until `shutdown` or
    /// until the table is dropped.
    pub fn keep_current(self: &Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let credentials: Weak<Credentials> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECK_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = shutdown.changed() => return,
                }
                let Some(credentials) = credentials.upgrade() else {
                    return;
                };
                if let Err(err) = credentials.reload_if_changed().await {
                    // The writer still checks every command's credential in its batch.
                    tracing::warn!(%err, "could not check for changed credentials; trying again");
                }
            }
        });
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Table> {
        self.table.read().unwrap_or_else(PoisonError::into_inner)
    }
}
