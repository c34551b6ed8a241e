//! Console sessions live in the same database as everything else, on either store.

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::Result;
use crate::store::Store;

/// The session store for whichever database the server uses. On SQLite, sessions are
/// read on the reader pool and written on the writer: a page view's session load never
/// queues behind (or holds up) the lifecycle engine's batches.
#[derive(Clone, Debug)]
pub enum SessionBackend {
    Sqlite { reads: SqliteStore, writes: SqliteStore },
    Postgres(PostgresStore),
}

impl SessionBackend {
    /// Opens (and creates if needed) the session table.
    pub async fn open(store: &Store) -> Result<SessionBackend> {
        let backend = match store.session_pools() {
            (Some((reader, writer)), _) => {
                let writes = SqliteStore::new(writer.clone());
                writes.migrate().await?;
                SessionBackend::Sqlite {
                    reads: SqliteStore::new(reader.clone()),
                    writes,
                }
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
            SessionBackend::Sqlite { writes, .. } => {
                drop(tokio::spawn(
                    async move { writes.continuously_delete_expired(period).await },
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
            SessionBackend::Sqlite { writes, .. } => writes.create(record).await,
            SessionBackend::Postgres(store) => store.create(record).await,
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite { writes, .. } => writes.save(record).await,
            SessionBackend::Postgres(store) => store.save(record).await,
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SessionBackend::Sqlite { reads, .. } => reads.load(id).await,
            SessionBackend::Postgres(store) => store.load(id).await,
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SessionBackend::Sqlite { writes, .. } => writes.delete(id).await,
            SessionBackend::Postgres(store) => store.delete(id).await,
        }
    }
}
