//! grantflow-testkit: what the integration tests of every crate share.
//!
//! - [`Backend`] and [`TestDb`]: a fresh database per test, a SQLite file in a temporary
//!   directory or a new PostgreSQL database on the server named by
//!   `GRANTFLOW_TEST_POSTGRES_URL` (an unreachable server fails the test, never skips it);
//! - [`on_both_backends!`]: one `async fn(Backend)` scenario becomes a test per backend;
//! - [`registry`] and friends: the shipped workflows (or given sources) as a registry;
//! - [`seed`]: the organisation tree with one user per role that API tests share;
//! - [`spawn_app`]: the whole HTTP application on port 0, with a small GraphQL client;
//! - [`open_test_call`] / [`open_call`]: a stored call for the applications of a test;
//! - [`ServiceWorld`]: services on a fresh database with a manual clock, and the steps a
//!   service test takes to create organisations, users and calls and to fire events;
//!   [`FoshanWorld`] adds the manager, city bureau and applicant of most programme stories;
//! - [`CountingStore`]: a store that counts every call and can be told to fail or hang;
//! - [`pg_cluster::PgCluster`]: a throwaway PostgreSQL cluster of a test's own, to stop,
//!   kill, restart or fail over.
//!
//! Each crate's integration tests are one binary, `crates/<crate>/tests/it/main.rs`, with a
//! module per topic; they take this crate as a dev-dependency.

pub mod app;
pub mod calls;
pub mod counting;
pub mod db;
pub mod pg_cluster;
pub mod seed;
pub mod workflows;
pub mod world;

pub use app::{
    TEST_CALL, TEST_ITEM, TestApp, error_code, spawn_app, spawn_app_with, spawn_counting,
};
pub use calls::{CATALOGUE_2022, call_of, open_call, open_test_call};
pub use counting::CountingStore;
pub use db::{Backend, TempPostgres, TempSqlite, TestDb, fresh_store};
pub use seed::{PASSWORD, Seed, seed, start_time};
pub use workflows::{registry, registry_from, registry_of};
pub use world::{FoshanWorld, NO_PASSWORD, ServiceWorld, new_user};

/// Runs each named `async fn(Backend)` scenario once per backend, as the tests
/// `sqlite::<name>` and `postgres::<name>` of the calling module (one invocation per
/// module). A leading attribute replaces `#[tokio::test]`, e.g.
/// `on_both_backends!(#[tokio::test(flavor = "multi_thread")] a, b)`.
#[macro_export]
macro_rules! on_both_backends {
    (#[$test:meta] $($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[$test]
            async fn $name() {
                super::$name($crate::Backend::Sqlite).await;
            })*
        }
        mod postgres {
            $(#[$test]
            async fn $name() {
                super::$name($crate::Backend::Postgres).await;
            })*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(#[tokio::test] $($name),*);
    };
}
