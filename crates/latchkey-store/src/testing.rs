//! For tests of latchkey (and of programs embedding it): fresh PostgreSQL databases on a
//! server named by the environment.
//!
//! - `LATCHKEY_TEST_POSTGRES`: URL of a PostgreSQL server and a user allowed to create
//!   databases (`scripts/pg start` prints one). Each call makes a new database there.
//! - `LATCHKEY_REQUIRE_POSTGRES=1` (set by `scripts/test`, hence in CI): a missing or
//!   unreachable server fails the test instead of skipping it.

use sqlx::{Connection, PgConnection};

/// Environment variable naming the test server.
pub const POSTGRES_ENV: &str = "LATCHKEY_TEST_POSTGRES";
/// Environment variable that turns a missing server into a failure.
pub const REQUIRE_ENV: &str = "LATCHKEY_REQUIRE_POSTGRES";

/// The test server's URL, or `None` (after saying so on stderr) when none is configured
/// and none is required. Panics when one is required but not configured.
pub fn postgres_server(test: &str) -> Option<String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os(REQUIRE_ENV).is_some() => panic!(
            "{test} needs PostgreSQL: {REQUIRE_ENV} is set but {POSTGRES_ENV} is not \
             (scripts/test starts a throwaway server and sets both)"
        ),
        _ => {
            eprintln!("SKIPPED {test}: no PostgreSQL ({POSTGRES_ENV} unset; scripts/test runs it)");
            None
        }
    }
}

/// Creates an empty database on the test server and returns its URL, or `None` as
/// [`postgres_server`] does. Panics with the reason when the server cannot be used.
pub async fn fresh_postgres_database(test: &str) -> Option<String> {
    let server = postgres_server(test)?;
    let name = format!("latchkey_test_{}", latchkey_core::Id::random());
    let mut admin = PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("{test}: cannot reach PostgreSQL at {server}: {e}"));
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|e| panic!("{test}: cannot create a database: {e}"));
    admin.close().await.ok();
    Some(with_database(&server, &name))
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let mut parsed =
        url::Url::parse(url).unwrap_or_else(|e| panic!("{POSTGRES_ENV} is not a URL: {e}"));
    parsed.set_path(&format!("/{name}"));
    parsed.to_string()
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5433/postgres", "x"),
            "postgres://u@127.0.0.1:5433/x"
        );
        assert_eq!(
            with_database("postgres://u@h:1?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
    }
}
