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

/// Whether Postgres tests can run here: a server accepts connections at
/// [`postgres_admin_url`]. When nothing listens there (the connection is refused at once),
/// they cannot, and are skipped, unless `SIGNOFF_REQUIRE_POSTGRES=1` (CI) makes that a
/// failure. A server that is there but slow to answer (a busy machine, a server still
/// starting) is waited for, never taken for absent; one that still does not answer after a
/// minute is a failure.
pub async fn postgres_available() -> bool {
    static AVAILABLE: OnceCell<bool> = OnceCell::const_new();
    *AVAILABLE.get_or_init(probe_postgres).await
}

fn postgres_required() -> bool {
    std::env::var("SIGNOFF_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

async fn probe_postgres() -> bool {
    let url = postgres_admin_url();
    let required = postgres_required();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let failure = match PgConnection::connect(&url).await {
            Ok(_) => return true,
            Err(err) => err,
        };
        let nobody_listens = matches!(
            &failure,
            sqlx::Error::Io(io) if matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::AddrNotAvailable
            )
        );
        if nobody_listens && !required {
            return false;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Postgres at {url} did not accept a connection within 60 s{}: {failure}",
            if required { " (SIGNOFF_REQUIRE_POSTGRES=1)" } else { "" }
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// How many Postgres variants this test binary skipped so far.
static SKIPPED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Says, past the test harness's output capture, that the Postgres variant `test` did not
/// run, with how many of the binary's `total` Postgres variants were skipped so far (so
/// the last line of a run, filtered or not, has the count); once every one of them has
/// been skipped, says so in one line. (libtest shows a skipped variant as `ok`: these
/// lines are how a run without Postgres is told apart from one with it.)
pub fn report_postgres_skip(test: &str, total: usize) {
    use std::io::Write;
    let skipped = SKIPPED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
    let mut line = format!(
        "SKIPPED (no Postgres at {}): {test} ({skipped} of this binary's {total} Postgres tests skipped so far)\n",
        postgres_admin_url()
    );
    if skipped == total {
        line.push_str(&format!(
            "SKIPPED {skipped} of {total} Postgres tests in this binary: none ran. Start Postgres \
             (see README, \"Quick start\") or set TEST_POSTGRES_URL; SIGNOFF_REQUIRE_POSTGRES=1 makes this a failure.\n"
        ));
    }
    // Straight to the process's stderr: libtest captures only the print macros.
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// A database that exists for one test and is removed after it.
pub struct TestDb {
    pub backend: Backend,
    pub url: String,
    pub dir: PathBuf,
    pg_name: Option<String>,
    /// Removed when dropped; a [`TestDb::handle`] is not.
    owned: bool,
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
                owned: true,
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
                    owned: true,
                }
            }
        }
    }
}

impl TestDb {
    /// The same database, for a server that stops before the test is done with it:
    /// dropping the handle removes nothing.
    pub fn handle(&self) -> TestDb {
        TestDb {
            backend: self.backend,
            url: self.url.clone(),
            dir: self.dir.clone(),
            pg_name: self.pg_name.clone(),
            owned: false,
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
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

    /// An agent and one pending `db.export` request of it, as rows in the columns the
    /// first schema had, for stores made by earlier versions ([`TestDb::as_of_migration`]).
    pub fn old_pending_request(agent_id: &str, agent_name: &str, id: &str, title: &str, labels: &str) -> [String; 2] {
        [
            format!(
                "INSERT INTO agents (id, name, owner, created_at) \
                 VALUES ('{agent_id}', '{agent_name}', NULL, 1764000000000)"
            ),
            format!(
                "INSERT INTO requests (id, agent_id, action, resource, title, reason, labels, payload, \
                 digest, status, policy, approvals, created_at, expires_at) VALUES ('{id}', '{agent_id}', \
                 'db.export', 'orders', '{title}', '', '{labels}', '{{}}', 'abc', 'pending', \
                 '{{\"name\":\"default\",\"version\":0,\"approvals_required\":1,\"approver_groups\":[\"signoff-reviewers\"]}}', \
                 0, 1764000000000, 4102444800000)"
            ),
        ]
    }

    /// Makes this new database what an earlier version of Signoff left: the repository's
    /// migrations numbered up to `version`, then `rows`. Upgrade tests start from it.
    pub async fn as_of_migration(&self, version: i64, rows: &[String]) {
        let dialect = match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        };
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../migrations")
            .join(dialect);
        let mut previous = sqlx::migrate::Migrator::new(path).await.expect("the migrations");
        previous.migrations = std::borrow::Cow::Owned(
            previous
                .migrations
                .iter()
                .filter(|migration| migration.version <= version)
                .cloned()
                .collect(),
        );
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", self.url))
                    .await
                    .expect("connect");
                previous.run(&pool).await.expect("the previous schema");
                for row in rows {
                    sqlx::query(row).execute(&pool).await.expect("old rows");
                }
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.url).await.expect("connect");
                previous.run(&pool).await.expect("the previous schema");
                for row in rows {
                    sqlx::query(row).execute(&pool).await.expect("old rows");
                }
                pool.close().await;
            }
        }
    }

    /// Moves a request's times (created, expires, reminder) `by` earlier, as if that much
    /// time had passed since it was submitted: the sweeper then finds what became due.
    pub async fn age_request(&self, id: &str, by: Duration) {
        let ms = by.as_millis();
        self.execute(&format!(
            "UPDATE requests SET created_at = created_at - {ms}, expires_at = expires_at - {ms}, \
             remind_at = remind_at - {ms} WHERE id = '{id}'"
        ))
        .await
        .expect("age the request");
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

impl TestDb {
    /// Every row of every table, as text: (table, row). Binary columns are read as text
    /// too, so a secret stored as bytes is found by a text search like any other.
    pub async fn all_rows(&self) -> Vec<(String, String)> {
        let mut rows = Vec::new();
        match self.backend {
            Backend::Sqlite => {
                let mut conn = <sqlx::SqliteConnection as Connection>::connect(&self.url)
                    .await
                    .expect("connect");
                let tables: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
                        .fetch_all(&mut conn)
                        .await
                        .expect("tables");
                for table in tables {
                    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                        .bind(&table)
                        .fetch_all(&mut conn)
                        .await
                        .expect("columns");
                    let row = columns
                        .iter()
                        .map(|column| format!("COALESCE(CAST(\"{column}\" AS TEXT), '')"))
                        .collect::<Vec<_>>()
                        .join(" || '|' || ");
                    // As bytes: a BLOB read as text need not be UTF-8.
                    let texts: Vec<Vec<u8>> =
                        sqlx::query_scalar(&format!("SELECT CAST(({row}) AS BLOB) FROM \"{table}\""))
                            .fetch_all(&mut conn)
                            .await
                            .expect("rows");
                    rows.extend(
                        texts
                            .into_iter()
                            .map(|text| (table.clone(), String::from_utf8_lossy(&text).into_owned())),
                    );
                }
            }
            Backend::Postgres => {
                let mut conn = PgConnection::connect(&self.url).await.expect("connect");
                let tables: Vec<String> = sqlx::query_scalar(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
                )
                .fetch_all(&mut conn)
                .await
                .expect("tables");
                for table in tables {
                    let columns: Vec<(String, String)> = sqlx::query_as(
                        "SELECT column_name::text, data_type::text FROM information_schema.columns \
                         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
                    )
                    .bind(&table)
                    .fetch_all(&mut conn)
                    .await
                    .expect("columns");
                    let row = columns
                        .iter()
                        .map(|(column, kind)| match kind.as_str() {
                            "bytea" => format!("COALESCE(encode(\"{column}\", 'escape'), '')"),
                            _ => format!("COALESCE(\"{column}\"::text, '')"),
                        })
                        .collect::<Vec<_>>()
                        .join(" || '|' || ");
                    let texts: Vec<String> = sqlx::query_scalar(&format!("SELECT {row} FROM \"{table}\""))
                        .fetch_all(&mut conn)
                        .await
                        .expect("rows");
                    rows.extend(texts.into_iter().map(|text| (table.clone(), text)));
                }
            }
        }
        rows
    }
}
