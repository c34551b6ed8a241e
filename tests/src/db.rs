//! A fresh database per test, on either store.

use std::path::PathBuf;
use std::time::Duration;

use sqlx::Connection;
use sqlx::postgres::PgConnection;
use tokio::sync::OnceCell;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The Postgres server tests use: `TEST_POSTGRES_URL`, or the local one.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Whether Postgres tests can run here. Panics when they must (`SIGNOFF_REQUIRE_POSTGRES=1`)
/// and cannot.
pub async fn postgres_available() -> bool {
    static AVAILABLE: OnceCell<bool> = OnceCell::const_new();
    let available = *AVAILABLE
        .get_or_init(|| async {
            tokio::time::timeout(Duration::from_secs(3), PgConnection::connect(&postgres_admin_url()))
                .await
                .is_ok_and(|connected| connected.is_ok())
        })
        .await;
    let required = std::env::var("SIGNOFF_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    assert!(
        available || !required,
        "Postgres is required (SIGNOFF_REQUIRE_POSTGRES=1) but {} does not answer",
        postgres_admin_url()
    );
    if !available {
        eprintln!("skipping: no Postgres at {}", postgres_admin_url());
    }
    available
}

/// A database that exists for one test and is removed after it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: PathBuf,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let dir = std::env::temp_dir().join(format!("signoff-test-{unique}"));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        match backend {
            Backend::Sqlite => TestDb {
                backend,
                url: format!("sqlite://{}", dir.join("signoff.db").display()),
                dir,
                pg_name: None,
            },
            Backend::Postgres => {
                let name = format!("signoff_test_{unique}");
                let mut admin = PgConnection::connect(&postgres_admin_url())
                    .await
                    .expect("connect to Postgres");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut admin)
                    .await
                    .expect("create database");
                let base = postgres_admin_url();
                let server = base.rsplit_once('/').map(|(server, _)| server).unwrap_or(&base);
                TestDb {
                    backend,
                    url: format!("{server}/{name}"),
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside async: a short-lived thread and runtime do the cleanup.
            let _ = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                runtime.block_on(async {
                    let mut admin = PgConnection::connect(&postgres_admin_url()).await.ok()?;
                    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut admin)
                        .await
                        .ok()
                })
            })
            .join();
        }
    }
}

impl TestDb {
    /// Rows in `table` (a fixed name from the test, never input).
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) FROM {table}")).await
    }

    /// Runs one statement that returns a single integer.
    pub async fn scalar(&self, sql: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => {
                let mut conn = <sqlx::SqliteConnection as Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query")
            }
            Backend::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                sqlx::query_scalar(sql).fetch_one(&mut conn).await.expect("query")
            }
        }
    }

    /// Runs one statement; returns the database's error message if it refused.
    pub async fn execute(&self, sql: &str) -> Result<u64, String> {
        let result = match self.backend {
            Backend::Sqlite => {
                let mut conn = <sqlx::SqliteConnection as Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                sqlx::query(sql)
                    .execute(&mut conn)
                    .await
                    .map(|done| done.rows_affected())
            }
            Backend::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                sqlx::query(sql)
                    .execute(&mut conn)
                    .await
                    .map(|done| done.rows_affected())
            }
        };
        result.map_err(|err| err.to_string())
    }
}
