//! Test harness: real servers (in-process `Application` or the `signoff-server` binary)
//! over real HTTP, on a fresh SQLite file or a fresh Postgres database per test.

pub mod browser;
pub mod chrome;
pub mod db;
pub mod fixtures;
pub mod oidc;
pub mod server;
pub mod tmux;

pub use db::{Backend, TestDb};
pub use server::{AgentClient, Reply, ServerProcess, TestServer, client_binary, run_cli, server_binary};

/// Runs an async test body once per store: `<name>_sqlite` and `<name>_postgres`.
/// The Postgres variant is skipped (with a note) when no server answers, unless
/// `SIGNOFF_REQUIRE_POSTGRES=1` (CI) makes that a failure.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if $crate::db::postgres_available().await {
                        super::$name($crate::Backend::Postgres).await
                    }
                }
            )+
        }
    };
}
