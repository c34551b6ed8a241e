//! Test harness: real servers (in-process `Application` or the `signoff-server` binary)
//! over real HTTP, on a fresh SQLite file or a fresh Postgres database per test.

pub mod browser;
pub mod chrome;
pub mod db;
pub mod fixtures;
pub mod forged_op;
pub mod oidc;
pub mod receiver;
pub mod server;
pub mod tmux;

pub use db::{Backend, TestDb};
pub use server::{
    AgentClient, Reply, ServerProcess, TestServer, client_binary, run_cli, server_binary, server_command,
};

/// Runs an async test body once per store: `sqlite::<name>` and `postgres::<name>`; and
/// the tests after `postgres_only:` (bodies without a backend argument) as `postgres::<name>`.
///
/// A Postgres test runs when a server accepts connections at `TEST_POSTGRES_URL` (by
/// default `postgres://postgres@127.0.0.1:5432/postgres`). When nothing listens there it is
/// skipped: libtest still shows it `ok`, so each skip prints a `SKIPPED` line to stderr
/// (past the output capture), and the last one a count. `SIGNOFF_REQUIRE_POSTGRES=1` (CI)
/// makes a missing server a failure instead.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),+ $(,)? $(; postgres_only: $($only:ident),+ $(,)?)?) => {
        /// How many Postgres tests this binary has, for the count of skipped ones.
        const POSTGRES_TESTS: usize = [$(stringify!($name)),+ $($(, stringify!($only))+)?].len();

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
                    } else {
                        $crate::db::report_postgres_skip(
                            concat!(module_path!(), "::", stringify!($name)),
                            super::POSTGRES_TESTS,
                        );
                    }
                }
            )+
            $($(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $only() {
                    if $crate::db::postgres_available().await {
                        super::$only().await
                    } else {
                        $crate::db::report_postgres_skip(
                            concat!(module_path!(), "::", stringify!($only)),
                            super::POSTGRES_TESTS,
                        );
                    }
                }
            )+)?
        }
    };
}
