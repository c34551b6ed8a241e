//! Console sessions live in the same database as everything else, on either store.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::Result;
use crate::store::Store;

/// The session store for whichever database the server uses.
#[derive(Clone, Debug)]
pub enum SessionBackend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl SessionBackend {
    /// Opens (and creates if needed) the session table.
    pub async fn open(store: &Store) -> Result<SessionBackend> {
        let backend = match store.session_pools() {
            (Some(sqlite), _) => {
                let sessions = SqliteStore::new(sqlite.clone());
                sessions.migrate().await?;
                SessionBackend::Sqlite(sessions)
            }
            (_, Some(pg)) => {
                let sessions = PostgresStore::new(pg.clone());
                sessions.migrate().await?;
                SessionBackend::Postgres(sessions)
            }
            (None, None) => return Err(crate::Error::Internal("no database for sessions".into())),
        };
        Ok(backend)
    }

    /// Removes expired sessions now and then, for as long as the server runs.
    pub fn spawn_cleanup(&self) {
        use tower_sessions::ExpiredDeletion;
        let period = tokio::time::Duration::from_secs(600);
        match self.clone() {
            SessionBackend::Sqlite(store) => {
                drop(tokio::spawn(
                    async move { store.continuously_delete_expired(period).await },
                ))
            }
            SessionBackend::Postgres(store) => {
                drop(tokio::spawn(
                    async move { store.continuously_delete_expired(period).await },
                ))
            }
        }
    }
}

#[async_trait]
impl SessionStore for SessionBackend {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(store) => store.create(record).await,
            SessionBackend::Postgres(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(store) => store.save(record).await,
            SessionBackend::Postgres(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionBackend::Sqlite(store) => store.load(id).await,
            SessionBackend::Postgres(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite(store) => store.delete(id).await,
            SessionBackend::Postgres(store) => store.delete(id).await,
        }
    }
}
